// Linear quantization (ONNX Operators.md): QuantizeLinear, DequantizeLinear (per-tensor,
// per-axis from opset 13, blocked from opset 21) and DynamicQuantizeLinear.
//
//   QuantizeLinear:   y = saturate(round_half_even(x / scale) + zero_point)
//                     (fp8 e4m3fn: y = cast(x / scale), clamped to ±448 when saturate=1)
//   DequantizeLinear: y = (x - zero_point) * scale
//
// The output type of QuantizeLinear is the zero point's, else the `output_dtype` attribute
// (opset 21), else uint8. Quantized types: int8, uint8, int16, uint16 (opset 21) and
// float8 e4m3fn (opset 19); int4/uint4/e5m2 are not kiln data types and fail at import.
// x / scale is computed in the `precision` attribute's type (opset 24), else the scale's
// type (double for int32 inputs); dequantization computes in f32, like the ONNX reference.
// Versions 10 to 28 are implemented (24-28 only add types kiln does not represent).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "onnx/importer.h"
#include "ops/helpers.h"

namespace kiln::ops {
namespace {

bool is_quantized_type(DataType t) {
  switch (t) {
    case DataType::kI8:
    case DataType::kU8:
    case DataType::kI16:
    case DataType::kU16:
    case DataType::kF8E4M3:
      return true;
    default:
      return false;
  }
}

/// How a scale / zero-point tensor maps onto x: one value, one per index of `axis`, or
/// one per block of `block` consecutive indices along `axis`.
struct QuantLayout {
  enum class Kind { kTensor, kAxis, kBlocked } kind = Kind::kTensor;
  int64_t outer = 1, n = 1, inner = 1, block = 0, blocks = 1;

  int64_t index(int64_t o, int64_t a, int64_t i) const {
    switch (kind) {
      case Kind::kTensor:
        return 0;
      case Kind::kAxis:
        return a;
      case Kind::kBlocked:
        return (o * blocks + a / block) * inner + i;
    }
    return 0;
  }
};

/// Validates the scale shape against x (both concrete) and builds the layout.
Result<QuantLayout> quant_layout(const ir::Node& node, const std::vector<int64_t>& x,
                                 const std::vector<int64_t>& scale) {
  QuantLayout l;
  int64_t scale_numel = 1;
  for (auto d : scale) scale_numel *= d;
  const int64_t block = node.opset >= 21 ? node.attr_i("block_size", 0) : 0;
  if (block <= 0 && (scale.empty() || (scale.size() == 1 && scale_numel == 1))) return l;
  const int64_t rank = static_cast<int64_t>(x.size());
  const int64_t axis_attr = node.attr_i("axis", 1);
  auto axis = normalize_axis(axis_attr, rank);
  if (!axis)
    return Status(
        ErrorCode::kBadAxis,
        "axis " + std::to_string(axis_attr) + " is out of range for rank " + std::to_string(rank),
        "axis must lie in [-rank, rank-1]", node.loc());
  for (int64_t d = 0; d < *axis; ++d) l.outer *= x[d];
  l.n = x[*axis];
  for (int64_t d = *axis + 1; d < rank; ++d) l.inner *= x[d];
  if (block <= 0) {
    if (scale.size() != 1 || scale[0] != l.n)
      return Status(ErrorCode::kShapeMismatch,
                    "per-axis scale has shape " + dims_to_string(scale) + ", expected " +
                        std::to_string(l.n) + " values for axis " + std::to_string(*axis) + " of " +
                        dims_to_string(x),
                    "the scale must be a scalar or a 1-D tensor with one value per index of `axis`",
                    node.loc());
    l.kind = QuantLayout::Kind::kAxis;
    return l;
  }
  l.kind = QuantLayout::Kind::kBlocked;
  l.block = block;
  l.blocks = (l.n + block - 1) / block;
  std::vector<int64_t> want = x;
  want[*axis] = l.blocks;
  if (scale != want)
    return Status(
        ErrorCode::kShapeMismatch,
        "blocked scale has shape " + dims_to_string(scale) + ", expected " + dims_to_string(want),
        "with block_size B the scale has x's shape with ceil(dim/B) along `axis`", node.loc());
  return l;
}

/// The layout of a (De)QuantizeLinear kernel's scale (input 1) over x (input 0), after
/// checking that the zero point (input 2) indexes like the scale. A per-tensor layout spans
/// all of x.
Result<QuantLayout> kernel_layout(const KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const HostTensor& scale = ctx.input(1);
  // Shapes may differ in form ([1] vs scalar) but must index alike.
  if (ctx.has_input(2) && ctx.input(2).numel() != scale.numel())
    return ctx.error(ErrorCode::kShapeMismatch,
                     "zero point shape " + dims_to_string(ctx.input(2).dims()) +
                         " differs from scale shape " + dims_to_string(scale.dims()),
                     "scale and zero point must have the same shape");
  KILN_ASSIGN_OR_RETURN(QuantLayout l, quant_layout(ctx.node(), x.dims(), scale.dims()));
  if (l.kind == QuantLayout::Kind::kTensor) l.outer = x.numel();
  return l;
}

// ---- QuantizeLinear ---------------------------------------------------------------------

Result<DataType> quantize_output_type(const ir::Node& n, DataType zero_point) {
  if (zero_point != DataType::kUndefined) return zero_point;
  if (n.opset >= 21 && n.attr_i("output_dtype", 0) != 0) {
    const int code = static_cast<int>(n.attr_i("output_dtype", 0));
    return onnx_import::from_onnx_dtype(code);
  }
  return DataType::kU8;
}

Status quantize_check(const ir::Node& n) {
  if (n.attr_i("precision", 0) != 0) {
    const DataType p = onnx_import::from_onnx_dtype(static_cast<int>(n.attr_i("precision", 0)));
    if (p != DataType::kF32 && p != DataType::kF16 && p != DataType::kBF16 && p != DataType::kF64)
      return Status(ErrorCode::kOnnxUnsupportedType,
                    "precision " + std::to_string(n.attr_i("precision", 0)) + " is not supported",
                    "kiln divides in float, float16, bfloat16 or double",
                    n.loc("attribute 'precision'"));
  }
  KILN_ASSIGN_OR_RETURN(DataType t, quantize_output_type(n, DataType::kUndefined));
  if (n.opset >= 21 && n.attr_i("output_dtype", 0) != 0 && !is_quantized_type(t))
    return Status(ErrorCode::kOnnxUnsupportedType,
                  "output_dtype " + std::to_string(n.attr_i("output_dtype", 0)) +
                      " is not a supported quantized type",
                  "kiln quantizes to int8, uint8, int16, uint16 and float8 e4m3fn",
                  n.loc("attribute 'output_dtype'"));
  return Status::ok();
}

Status quantize_infer(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DataType t, quantize_output_type(ctx.node(), ctx.input_type(2)));
  if (!is_quantized_type(t))
    return ctx.error(ErrorCode::kTypeMismatch, std::string("cannot quantize to ") + dtype_name(t),
                     "use an int8, uint8, int16, uint16 or float8 e4m3fn zero point");
  ctx.set_output(0, t, ctx.input_shape(0));
  return Status::ok();
}

/// The type x / scale is computed in: the `precision` attribute (opset 24), else the
/// scale's type; int32 inputs divide in double as numpy does.
DataType division_precision(const ir::Node& n, DataType x, DataType scale) {
  if (n.attr_i("precision", 0) != 0)
    return onnx_import::from_onnx_dtype(static_cast<int>(n.attr_i("precision", 0)));
  if (x == DataType::kI32 || scale == DataType::kI32) return DataType::kF64;
  return scale;
}

/// y = saturate(round(x / scale) + zp); X = input type, P = division precision.
template <typename Q, typename X, typename P>
void quantize_loop(const HostTensor& x, const HostTensor& scale, const HostTensor* zp,
                   const QuantLayout& l, HostTensor& y, bool saturate) {
  using C = compute_t<P>;
  // Rounds through P so f16/bf16 precision divides like the reference.
  auto in_p = [](C v) { return static_cast<C>(static_cast<P>(v)); };
  const X* src = x.data<X>();
  Q* dst = y.data<Q>();
  const Q* zpd = zp ? zp->data<Q>() : nullptr;
  std::vector<C> sc(static_cast<size_t>(scale.numel()));
  for (int64_t i = 0; i < scale.numel(); ++i) sc[i] = in_p(static_cast<C>(scale.get_f64(i)));
  for (int64_t o = 0, flat = 0; o < l.outer; ++o)
    for (int64_t a = 0; a < l.n; ++a)
      for (int64_t i = 0; i < l.inner; ++i, ++flat) {
        const int64_t s = l.index(o, a, i);
        const C v = in_p(in_p(static_cast<C>(static_cast<compute_t<X>>(src[flat]))) / sc[s]);
        if constexpr (std::is_same_v<Q, f8e4m3>) {
          dst[flat].bits = f32_to_f8e4m3(static_cast<float>(v), saturate);
        } else {
          double q =
              std::nearbyint(static_cast<double>(v)) + (zpd ? static_cast<double>(zpd[s]) : 0.0);
          q = std::clamp(q, static_cast<double>(std::numeric_limits<Q>::lowest()),
                         static_cast<double>(std::numeric_limits<Q>::max()));
          dst[flat] = static_cast<Q>(q);
        }
      }
}

/// Calls f(X{}) for the input types QuantizeLinear accepts.
template <typename F>
Status dispatch_quantize_input(DataType t, F&& f) {
  switch (t) {
    case DataType::kF32: return f(float{});
    case DataType::kF16: return f(f16{});
    case DataType::kBF16: return f(bf16{});
    case DataType::kI32: return f(int32_t{});
    default: return unsupported_dtype(t, "QuantizeLinear input");
  }
}

Status quantize_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const HostTensor& scale = ctx.input(1);
  const HostTensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  KILN_ASSIGN_OR_RETURN(const QuantLayout l, kernel_layout(ctx));
  HostTensor& y = ctx.output(0);
  const bool saturate = ctx.node().attr_i("saturate", 1) != 0;
  const DataType prec = division_precision(ctx.node(), x.dtype(), scale.dtype());
  auto run = [&](auto q) -> Status {
    using Q = decltype(q);
    return dispatch_quantize_input(x.dtype(), [&](auto xt) {
      return dispatch_float(prec, [&](auto pt) {
        quantize_loop<Q, decltype(xt), decltype(pt)>(x, scale, zp, l, y, saturate);
        return Status::ok();
      });
    });
  };
  switch (y.dtype()) {
    case DataType::kI8: return run(int8_t{});
    case DataType::kU8: return run(uint8_t{});
    case DataType::kI16: return run(int16_t{});
    case DataType::kU16: return run(uint16_t{});
    case DataType::kF8E4M3: return run(f8e4m3{});
    default: return unsupported_dtype(y.dtype(), "QuantizeLinear");
  }
}

// ---- DequantizeLinear -------------------------------------------------------------------

Status dequantize_infer(InferContext& ctx) {
  DataType t = ctx.input_type(1);
  if (ctx.opset() >= 23 && ctx.node().attr_i("output_dtype", 0) != 0)
    t = onnx_import::from_onnx_dtype(static_cast<int>(ctx.node().attr_i("output_dtype", 0)));
  if (!dtype_is_float(t))
    return ctx.error(ErrorCode::kTypeMismatch,
                     std::string("DequantizeLinear cannot produce ") + dtype_name(t),
                     "the scale (or output_dtype) must be a float type");
  if (ctx.has_input(2) && ctx.input_type(2) != ctx.input_type(0))
    return ctx.error(ErrorCode::kTypeMismatch,
                     std::string("zero point type ") + dtype_name(ctx.input_type(2)) +
                         " differs from input type " + dtype_name(ctx.input_type(0)),
                     "x and x_zero_point must have the same type");
  ctx.set_output(0, t, ctx.input_shape(0));
  return Status::ok();
}

Status dequantize_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const HostTensor& scale = ctx.input(1);
  const HostTensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  KILN_ASSIGN_OR_RETURN(const QuantLayout l, kernel_layout(ctx));
  HostTensor& y = ctx.output(0);
  // float8 zero points must be 0 (spec); they are ignored like in the reference.
  const bool use_zp = zp && x.dtype() != DataType::kF8E4M3;
  const std::vector<float> sc = scale.to_f32_vector();
  const std::vector<float> zv = use_zp ? zp->to_f32_vector() : std::vector<float>{};
  return dispatch_all(x.dtype(), [&](auto xt) {
    using X = decltype(xt);
    const X* src = x.data<X>();
    return dispatch_float(y.dtype(), [&](auto t) {
      using T = decltype(t);
      T* dst = y.data<T>();
      for (int64_t o = 0, flat = 0; o < l.outer; ++o)
        for (int64_t a = 0; a < l.n; ++a)
          for (int64_t i = 0; i < l.inner; ++i, ++flat) {
            const int64_t s = l.index(o, a, i);
            const float xv = static_cast<float>(static_cast<compute_t<X>>(src[flat]));
            dst[flat] =
                static_cast<T>(static_cast<compute_t<T>>((xv - (use_zp ? zv[s] : 0.0f)) * sc[s]));
          }
      return Status::ok();
    });
  });
}

// ---- DynamicQuantizeLinear --------------------------------------------------------------

Status dynamic_quantize_infer(InferContext& ctx) {
  if (ctx.input_type(0) != DataType::kF32)
    return ctx.error(
        ErrorCode::kTypeMismatch,
        std::string("DynamicQuantizeLinear takes f32, got ") + dtype_name(ctx.input_type(0)),
        "insert a Cast to float");
  ctx.set_output(0, DataType::kU8, ctx.input_shape(0));
  ctx.set_output(1, DataType::kF32, Shape());
  ctx.set_output(2, DataType::kU8, Shape());
  return Status::ok();
}

/// uint8 asymmetric quantization over the range [min(0, min x), max(0, max x)], in f32
/// exactly as the spec's reference formula.
Status dynamic_quantize_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const float* src = x.data<float>();
  float mx = 0.0f, mn = 0.0f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    mx = std::max(mx, src[i]);
    mn = std::min(mn, src[i]);
  }
  const float scale = (mx == mn ? 1.0f : mx - mn) / 255.0f;
  const float zp = std::nearbyint(std::clamp(0.0f - mn / scale, 0.0f, 255.0f));
  uint8_t* y = ctx.output(0).data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i)
    y[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(src[i] / scale) + zp, 0.0f, 255.0f));
  ctx.output(1).data<float>()[0] = scale;
  ctx.output(2).data<uint8_t>()[0] = static_cast<uint8_t>(zp);
  return Status::ok();
}

}  // namespace

KILN_REGISTER_OPS(quantize) {
  reg.add({.op_type = "QuantizeLinear", .min_opset = 10, .max_opset = 28, .min_inputs = 2,
           .max_inputs = 3, .infer = quantize_infer, .cpu = quantize_cpu,
           .check = quantize_check,
           .summary = "saturate(round(x / scale) + zero_point): per-tensor, per-axis or blocked"});
  reg.add({.op_type = "DequantizeLinear", .min_opset = 10, .max_opset = 28, .min_inputs = 2,
           .max_inputs = 3, .infer = dequantize_infer, .cpu = dequantize_cpu,
           .summary = "(x - zero_point) * scale: per-tensor, per-axis or blocked"});
  reg.add({.op_type = "DynamicQuantizeLinear", .min_opset = 11, .max_opset = 28, .min_inputs = 1,
           .max_inputs = 1, .min_outputs = 3, .max_outputs = 3, .infer = dynamic_quantize_infer,
           .cpu = dynamic_quantize_cpu,
           .summary = "uint8 quantization with scale and zero point computed from the data"});
}

}  // namespace kiln::ops
