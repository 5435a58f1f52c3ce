// Convolutions (ONNX Operators.md: Conv, ConvTranspose, ConvInteger), N-D with groups,
// dilations, strides, explicit or automatic padding. Computed as im2col + GEMM per group
// (col2im after the GEMM for the transpose) through OpenBLAS; f16/bf16 run in f32 and
// ConvInteger runs exactly in f64 (integer products stay far below 2^53).
#include <algorithm>
#include <cmath>
#include <string>

#include "cpu/gemm.h"
#include "ops/conv.h"
#include "ops/helpers.h"
#include "ops/widen.h"
#include "ops/window.h"

namespace kiln::ops {
namespace {

// ---- shapes ---------------------------------------------------------------------------

// Spatial rank of a conv node from whatever is known: X's rank, W's rank, kernel_shape.
// -1 when nothing tells. ShapeMismatch when X is known to have rank < 3.
Result<int64_t> conv_spatial_rank(const InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  const Shape& w = ctx.input_shape(1);
  if (x.rank_known) {
    if (x.rank() < 3)
      return ctx.error(ErrorCode::kShapeMismatch, "input " + x.to_string() + " must have rank >= 3",
                       "convolution input is [N, C, D1, ..., Dn]");
    return static_cast<int64_t>(x.rank()) - 2;
  }
  if (w.rank_known && w.rank() >= 3) return static_cast<int64_t>(w.rank()) - 2;
  if (ctx.node().has_attr("kernel_shape"))
    return static_cast<int64_t>(ctx.node().attr_ints("kernel_shape").size());
  return -1;
}

// Kernel dims from W (-1 where unknown); checked against kernel_shape when both are known.
Result<std::vector<int64_t>> weight_kernel(const InferContext& ctx, size_t rank) {
  const Shape& w = ctx.input_shape(1);
  std::vector<int64_t> k(rank, -1);
  if (w.rank_known) {
    if (w.rank() != rank + 2)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "weights " + w.to_string() + " must have rank " + std::to_string(rank + 2) +
                           " to match input " + ctx.input_shape(0).to_string(),
                       "weights are [out_channels, in_channels/group, k1, ..., kn]");
    for (size_t d = 0; d < rank; ++d) k[d] = w.dims[2 + d].is_known() ? w.dims[2 + d].value : -1;
  }
  if (ctx.node().has_attr("kernel_shape")) {
    auto attr = ctx.node().attr_ints("kernel_shape");
    for (size_t d = 0; d < rank && d < attr.size(); ++d) {
      if (k[d] >= 0 && k[d] != attr[d])
        return ctx.error(ErrorCode::kShapeMismatch,
                         "kernel_shape attribute disagrees with weights " + w.to_string(),
                         "drop kernel_shape or make it equal to the weights' spatial dims");
    }
  }
  return k;
}

// Checks input channels against weights and returns the output channel Dim.
// `transpose`: W is [C, M/group, k...] (ConvTranspose) instead of [M, C/group, k...].
Result<Dim> conv_channels(const InferContext& ctx, int64_t group, bool transpose) {
  const Shape& x = ctx.input_shape(0);
  const Shape& w = ctx.input_shape(1);
  if (group < 1)
    return ctx.error(ErrorCode::kOnnxBadAttribute,
                     "group " + std::to_string(group) + " must be >= 1");
  if (!w.rank_known || w.rank() < 2) return Dim::unknown();
  const Dim& w0 = w.dims[0];
  const Dim& w1 = w.dims[1];
  const Dim c = x.rank_known && x.rank() >= 2 ? x.dims[1] : Dim::unknown();
  const std::string hint = transpose
                               ? "ConvTranspose weights are [in_channels, out_channels/group, k...]"
                               : "Conv weights are [out_channels, in_channels/group, k...]";
  if (transpose) {
    if (known_to_differ(c, w0))
      return ctx.error(ErrorCode::kShapeMismatch,
                       "input " + x.to_string() + " has " + c.to_string() +
                           " channels but weights " + w.to_string() + " expect " + w0.to_string(),
                       hint);
    if (w0.is_known() && w0.value % group != 0)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "input channels " + w0.to_string() + " are not divisible by group " +
                           std::to_string(group),
                       hint);
    return w1.is_known() ? Dim(w1.value * group) : Dim::unknown();
  }
  if (c.is_known() && w1.is_known() && c.value != w1.value * group)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "input " + x.to_string() + " has " + c.to_string() + " channels but weights " +
                         w.to_string() + " with group " + std::to_string(group) + " expect " +
                         std::to_string(w1.value * group),
                     hint);
  if (w0.is_known() && w0.value % group != 0)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "output channels " + w0.to_string() + " are not divisible by group " +
                         std::to_string(group),
                     hint);
  return w0;
}

Status check_bias(const InferContext& ctx, size_t i, const Dim& channels) {
  if (!ctx.has_input(i)) return Status::ok();
  const Shape& b = ctx.input_shape(i);
  if (!b.rank_known) return Status::ok();
  if (b.rank() != 1 || known_to_differ(b.dims[0], channels))
    return ctx.error(ErrorCode::kShapeMismatch,
                     "bias " + b.to_string() + " must be a vector of " + channels.to_string() +
                         " output channels",
                     "bias has one value per output channel");
  return Status::ok();
}

// Output shape of Conv / ConvInteger (output dtype `out_type`).
Status infer_conv_common(InferContext& ctx, DataType out_type, size_t bias_input) {
  KILN_ASSIGN_OR_RETURN(const int64_t rank, conv_spatial_rank(ctx));
  const int64_t group = ctx.node().attr_i("group", 1);
  KILN_ASSIGN_OR_RETURN(Dim m, conv_channels(ctx, group, false));
  if (bias_input) KILN_RETURN_IF_ERROR(check_bias(ctx, bias_input, m));
  if (rank < 0) {
    ctx.set_output(0, out_type, Shape::unknown_rank());
    return Status::ok();
  }
  const Shape& x = ctx.input_shape(0);
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> kernel, weight_kernel(ctx, rank));
  Shape xs = x.rank_known ? x : Shape(std::vector<Dim>(rank + 2, Dim::unknown()));
  if (std::count(kernel.begin(), kernel.end(), -1) > 0 && !ctx.node().has_attr("kernel_shape")) {
    Shape out = xs;  // kernel unknown: only N and M are known
    out.dims[1] = m;
    for (int64_t d = 0; d < rank; ++d) out.dims[2 + d] = Dim::unknown();
    ctx.set_output(0, out_type, out);
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(WindowAttrs w, read_window_attrs(ctx.node(), rank, kernel));
  KILN_ASSIGN_OR_RETURN(Shape out, forward_window_shape(w, xs, m));
  ctx.set_output(0, out_type, std::move(out));
  return Status::ok();
}

}  // namespace

Status infer_conv(InferContext& ctx) {
  if (ctx.input_type(0) != ctx.input_type(1))
    return ctx.error(ErrorCode::kTypeMismatch,
                     std::string("input is ") + dtype_name(ctx.input_type(0)) +
                         " but weights are " + dtype_name(ctx.input_type(1)),
                     "cast the weights to the input's type");
  return infer_conv_common(ctx, ctx.input_type(0), 2);
}

namespace {

Status infer_conv_integer(InferContext& ctx) { return infer_conv_common(ctx, DataType::kI32, 0); }

}  // namespace

// When output_shape is given the total padding is derived from it (negative totals, i.e.
// an output larger than the natural size, leave the extra positions at the end as zeros).
Result<TransposeDims> conv_transpose_dims(const ir::Node& n, const WindowAttrs& w,
                                          const std::vector<int64_t>& in) {
  const size_t r = w.rank();
  std::vector<int64_t> out_pad = n.attr_ints("output_padding", std::vector<int64_t>(r, 0));
  if (out_pad.empty()) out_pad.assign(r, 0);
  std::vector<int64_t> out_shape = n.attr_ints("output_shape");
  if (out_shape.size() == r + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  if (out_pad.size() != r)
    return Status(ErrorCode::kOnnxBadAttribute,
                  "output_padding must have one entry per spatial dim", "re-export the model");
  if (!out_shape.empty() && out_shape.size() != r)
    return Status(ErrorCode::kOnnxBadAttribute, "output_shape must have one entry per spatial dim",
                  "re-export the model");
  TransposeDims t;
  for (size_t d = 0; d < r; ++d) {
    const int64_t s = w.strides[d];
    const int64_t eff = (w.kernel[d] - 1) * w.dilations[d] + 1;
    if (in[d] < 0) {
      t.out.push_back(out_shape.empty() ? -1 : out_shape[d]);
      t.pad_begin.push_back(0);
      continue;
    }
    const int64_t natural = s * (in[d] - 1) + out_pad[d] + eff;
    int64_t out = 0, begin = 0;
    const bool same = w.auto_pad == AutoPad::kSameUpper || w.auto_pad == AutoPad::kSameLower;
    if (!out_shape.empty() || same) {
      out = !out_shape.empty() ? out_shape[d] : in[d] * s;
      const int64_t total = std::max<int64_t>(0, natural - out);
      begin = w.auto_pad == AutoPad::kSameUpper ? total / 2 : total - total / 2;
    } else if (w.auto_pad == AutoPad::kValid) {
      out = natural;
    } else {
      begin = w.pads[d];
      out = natural - w.pads[d] - w.pads[d + r];
    }
    if (out <= 0)
      return Status(
          ErrorCode::kShapeMismatch,
          "spatial dim " + std::to_string(d) + " of the output would be " + std::to_string(out),
          "check pads, output_padding and output_shape");
    t.out.push_back(out);
    t.pad_begin.push_back(begin);
  }
  return t;
}

namespace {

Status infer_conv_transpose(InferContext& ctx) {
  const DataType dt = ctx.input_type(0);
  KILN_ASSIGN_OR_RETURN(const int64_t rank, conv_spatial_rank(ctx));
  const int64_t group = ctx.node().attr_i("group", 1);
  KILN_ASSIGN_OR_RETURN(Dim m, conv_channels(ctx, group, true));
  KILN_RETURN_IF_ERROR(check_bias(ctx, 2, m));
  if (rank < 0) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> kernel, weight_kernel(ctx, rank));
  const Shape& x = ctx.input_shape(0);
  Shape out(std::vector<Dim>(rank + 2, Dim::unknown()));
  if (x.rank_known) out.dims[0] = x.dims[0];
  out.dims[1] = m;
  if (std::count(kernel.begin(), kernel.end(), -1) == 0 || ctx.node().has_attr("kernel_shape")) {
    KILN_ASSIGN_OR_RETURN(WindowAttrs w, read_window_attrs(ctx.node(), rank, kernel));
    std::vector<int64_t> in(rank, -1);
    for (int64_t d = 0; d < rank && x.rank_known; ++d)
      if (x.dims[2 + d].is_known()) in[d] = x.dims[2 + d].value;
    KILN_ASSIGN_OR_RETURN(TransposeDims t, conv_transpose_dims(ctx.node(), w, in));
    for (int64_t d = 0; d < rank; ++d)
      if (t.out[d] >= 0) out.dims[2 + d] = t.out[d];
  }
  ctx.set_output(0, dt, std::move(out));
  return Status::ok();
}

// ---- kernels --------------------------------------------------------------------------

std::vector<int64_t> spatial_of(const HostTensor& t) {
  return std::vector<int64_t>(t.dims().begin() + 2, t.dims().end());
}

// Fills each of `rows` rows of length `len` with bias[row] (or 0).
template <typename T>
void fill_rows(T* y, const T* bias, int64_t rows, int64_t len) {
  for (int64_t r = 0; r < rows; ++r)
    std::fill(y + r * len, y + (r + 1) * len, bias ? bias[r] : T(0));
}

/// Y[n, m, out...] = sum over (c, k) of W[m, c, k] * X[n, g·C/g + c, window] + bias[m].
template <typename T>
void conv_forward(const T* x, const T* w, const T* bias, T* y, int64_t batch, int64_t c_in,
                  int64_t m, int64_t group, const cpu::ConvGeometry& g) {
  const int64_t cg = c_in / group, mg = m / group;
  const int64_t kdim = cg * g.kernel_size();
  const int64_t in_size = g.image_size(), out_size = g.column_size();
  const bool pointwise = g.is_pointwise();
  std::vector<T> col(pointwise ? 0 : static_cast<size_t>(kdim * out_size));
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t gi = 0; gi < group; ++gi) {
      const T* xg = x + (n * c_in + gi * cg) * in_size;
      T* yg = y + (n * m + gi * mg) * out_size;
      const T* cols = xg;
      if (!pointwise) {
        cpu::im2col(xg, cg, g, col.data());
        cols = col.data();
      }
      fill_rows(yg, bias ? bias + gi * mg : nullptr, mg, out_size);
      cpu::gemm(false, false, mg, out_size, kdim, T(1), w + gi * mg * kdim, kdim, cols, out_size,
                bias ? T(1) : T(0), yg, out_size);
    }
  }
}

/// The adjoint of conv_forward: every input pixel scatters W[c, m, k] * X[n, c, i] into
/// the output window it reaches (GEMM into columns, then col2im).
template <typename T>
void conv_transpose_forward(const T* x, const T* w, const T* bias, T* y, int64_t batch,
                            int64_t c_in, int64_t m, int64_t group, const cpu::ConvGeometry& g) {
  const int64_t cg = c_in / group, mg = m / group;
  const int64_t ksize = g.kernel_size();
  const int64_t in_size = g.column_size(), out_size = g.image_size();
  std::vector<T> col(static_cast<size_t>(mg * ksize * in_size));
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t gi = 0; gi < group; ++gi) {
      const T* xg = x + (n * c_in + gi * cg) * in_size;
      const T* wg = w + gi * cg * mg * ksize;
      T* yg = y + (n * m + gi * mg) * out_size;
      cpu::gemm(true, false, mg * ksize, in_size, cg, T(1), wg, mg * ksize, xg, in_size, T(0),
                col.data(), in_size);
      fill_rows(yg, bias ? bias + gi * mg : nullptr, mg, out_size);
      cpu::col2im(col.data(), mg, g, yg);
    }
  }
}

}  // namespace

Status conv_cpu(KernelContext& ctx) { return conv_cpu_with_epilogue(ctx, nullptr); }

Status conv_cpu_with_epilogue(KernelContext& ctx, const ConvCpuEpilogue& epilogue) {
  const HostTensor& x = ctx.input(0);
  const HostTensor& wt = ctx.input(1);
  const size_t rank = x.rank() - 2;
  KILN_ASSIGN_OR_RETURN(WindowAttrs w, read_window_attrs(ctx.node(), rank, spatial_of(wt)));
  KILN_ASSIGN_OR_RETURN(cpu::ConvGeometry g, forward_geometry(w, spatial_of(x)));
  g.kernel = spatial_of(wt);
  const int64_t group = ctx.node().attr_i("group", 1);
  return compute_in_float(
      ctx, x.dtype(),
      [&](auto t, const std::vector<const HostTensor*>& in, HostTensor& out) -> Status {
        using T = decltype(t);
        const T* bias = in.size() > 2 && in[2] ? in[2]->data<T>() : nullptr;
        conv_forward<T>(in[0]->data<T>(), in[1]->data<T>(), bias, out.data<T>(), x.dims()[0],
                        x.dims()[1], wt.dims()[0], group, g);
        return epilogue ? epilogue(in, out) : Status::ok();
      });
}

namespace {

Status conv_transpose_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const HostTensor& wt = ctx.input(1);
  const size_t rank = x.rank() - 2;
  KILN_ASSIGN_OR_RETURN(WindowAttrs w, read_window_attrs(ctx.node(), rank, spatial_of(wt)));
  w.kernel = spatial_of(wt);
  KILN_ASSIGN_OR_RETURN(TransposeDims t, conv_transpose_dims(ctx.node(), w, spatial_of(x)));
  cpu::ConvGeometry g{t.out, spatial_of(x), w.kernel, w.strides, w.dilations, t.pad_begin};
  const int64_t group = ctx.node().attr_i("group", 1);
  return compute_in_float(
      ctx, x.dtype(),
      [&](auto tag, const std::vector<const HostTensor*>& in, HostTensor& out) -> Status {
        using T = decltype(tag);
        const T* bias = in.size() > 2 && in[2] ? in[2]->data<T>() : nullptr;
        conv_transpose_forward<T>(in[0]->data<T>(), in[1]->data<T>(), bias, out.data<T>(),
                                  x.dims()[0], x.dims()[1], wt.dims()[1] * group, group, g);
        return Status::ok();
      });
}

// (value - zero point) as f64. `zp` is null (0), a scalar, or one value per block of
// `block` consecutive elements (per output channel for the weights).
std::vector<double> centered(const HostTensor& v, const HostTensor* zp, int64_t block) {
  std::vector<double> out(v.numel());
  for (int64_t i = 0; i < v.numel(); ++i) {
    double z = 0;
    if (zp && zp->numel() == 1)
      z = zp->get_f64(0);
    else if (zp)
      z = zp->get_f64(i / block);
    out[i] = v.get_f64(i) - z;
  }
  return out;
}

Status conv_integer_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const HostTensor& wt = ctx.input(1);
  const HostTensor* xzp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const HostTensor* wzp = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  const int64_t m = wt.dims()[0];
  if (xzp && xzp->numel() != 1)
    return ctx.error(ErrorCode::kShapeMismatch, "x_zero_point must be a scalar (per-tensor)",
                     "ConvInteger quantizes the input per tensor");
  if (wzp && wzp->numel() != 1 && wzp->numel() != m)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "w_zero_point has " + std::to_string(wzp->numel()) +
                         " values, expected 1 or " + std::to_string(m),
                     "weights are quantized per tensor or per output channel");
  const size_t rank = x.rank() - 2;
  KILN_ASSIGN_OR_RETURN(WindowAttrs w, read_window_attrs(ctx.node(), rank, spatial_of(wt)));
  KILN_ASSIGN_OR_RETURN(cpu::ConvGeometry g, forward_geometry(w, spatial_of(x)));
  g.kernel = spatial_of(wt);
  // Padding with 0 after centering equals padding with the zero point before it.
  std::vector<double> xd = centered(x, xzp, x.numel());
  std::vector<double> wd = centered(wt, wzp, m ? wt.numel() / m : 1);
  HostTensor& out = ctx.output(0);
  std::vector<double> yd(out.numel());
  conv_forward<double>(xd.data(), wd.data(), nullptr, yd.data(), x.dims()[0], x.dims()[1], m,
                       ctx.node().attr_i("group", 1), g);
  int32_t* y = out.data<int32_t>();
  for (int64_t i = 0; i < out.numel(); ++i) y[i] = static_cast<int32_t>(std::llround(yd[i]));
  return Status::ok();
}

Status check_conv(const ir::Node& n) {
  KILN_RETURN_IF_ERROR(check_window_attrs(n));
  if (n.attr_i("group", 1) < 1)
    return Status(ErrorCode::kOnnxBadAttribute, "group must be >= 1", "fix the attribute value");
  return Status::ok();
}

}  // namespace

KILN_REGISTER_OPS(conv) {
  reg.add({.op_type = "Conv", .min_opset = 1, .min_inputs = 2, .max_inputs = 3,
           .infer = infer_conv, .cpu = conv_cpu, .check = check_conv,
           .summary = "N-D convolution with groups, dilations, padding (im2col + BLAS GEMM)"});
  reg.add({.op_type = "ConvTranspose", .min_opset = 1, .min_inputs = 2, .max_inputs = 3,
           .infer = infer_conv_transpose, .cpu = conv_transpose_cpu, .check = check_conv,
           .summary = "N-D transposed convolution (GEMM + col2im)"});
  reg.add({.op_type = "ConvInteger", .min_opset = 10, .min_inputs = 2, .max_inputs = 4,
           .infer = infer_conv_integer, .cpu = conv_integer_cpu, .check = check_conv,
           .summary = "8-bit integer convolution with zero points, int32 output"});
}

}  // namespace kiln::ops
