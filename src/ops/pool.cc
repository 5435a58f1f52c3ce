// Pooling (ONNX Operators.md: MaxPool with Indices, AveragePool, LpPool and their Global*
// forms), N-D with strides, dilations, explicit/automatic padding and ceil_mode. Every
// window's taps are precomputed per spatial dim, so padding and ceil-mode overhang are
// handled once and the inner loops only read valid input positions.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "ops/helpers.h"
#include "ops/window.h"

namespace kiln::ops {
namespace {

enum class PoolKind { kMax, kAverage, kLp };

/// The input elements each output coordinate of each spatial dim reads. For dim d and
/// output coordinate o, the taps inside the input are offset[d][first[d][o] ..
/// first[d][o + 1]) (positions already multiplied by the dim's row-major stride), and
/// padded[d][o] counts the taps inside the padded input (count_include_pad divisor).
struct PoolPlan {
  std::vector<int64_t> in, out;  // spatial dims
  std::vector<std::vector<int64_t>> first, offset, padded;
  int64_t in_size = 1, out_size = 1;
};

PoolPlan make_plan(const WindowAttrs& w, const std::vector<WindowDim>& dims,
                   const std::vector<int64_t>& in) {
  PoolPlan p;
  p.in = in;
  const size_t r = w.rank();
  p.first.resize(r);
  p.offset.resize(r);
  p.padded.resize(r);
  int64_t stride = 1;
  for (size_t d = r; d-- > 0;) {
    p.in_size *= in[d];
    p.out_size *= dims[d].out;
    for (int64_t o = 0; o < dims[d].out; ++o) {
      p.first[d].push_back(static_cast<int64_t>(p.offset[d].size()));
      int64_t padded = 0;
      for (int64_t k = 0; k < w.kernel[d]; ++k) {
        const int64_t pos = o * w.strides[d] - dims[d].pad_begin + k * w.dilations[d];
        if (pos < in[d] + dims[d].pad_end) ++padded;  // ceil-mode overhang is not counted
        if (pos >= 0 && pos < in[d]) p.offset[d].push_back(pos * stride);
      }
      p.padded[d].push_back(padded);
    }
    p.first[d].push_back(static_cast<int64_t>(p.offset[d].size()));
    stride *= in[d];
  }
  for (const auto& wd : dims) p.out.push_back(wd.out);
  return p;
}

struct PoolParams {
  bool count_include_pad = false;
  int64_t p = 2;              // LpPool norm
  int64_t storage_order = 0;  // MaxPool Indices: 0 row-major, 1 column-major
};

// Row-major spatial offset → column-major (MaxPool storage_order = 1).
int64_t to_column_major(int64_t off, const std::vector<int64_t>& dims) {
  int64_t r = 0, stride = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    int64_t inner = 1;
    for (size_t e = d + 1; e < dims.size(); ++e) inner *= dims[e];
    r += (off / inner) % dims[d] * stride;
    stride *= dims[d];
  }
  return r;
}

/// Pools `planes` (N·C) independent planes. `indices` (MaxPool only) may be null.
template <typename T, PoolKind K>
void pool_planes(const T* x, T* y, int64_t* indices, int64_t planes, const PoolPlan& plan,
                 const PoolParams& prm) {
  using C = compute_t<T>;
  using Acc = std::conditional_t<std::is_same_v<C, double>, double, float>;
  const size_t r = plan.in.size();
  if (r == 0) return;  // pooling ops always have kernel_shape (check_pool)
  const size_t last = r - 1;
  std::vector<int64_t> o(r, 0), t(r, 0);
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* xp = x + pl * plan.in_size;
    std::fill(o.begin(), o.end(), 0);
    for (int64_t oi = 0; oi < plan.out_size; ++oi) {
      bool empty = false;
      int64_t padded = 1, valid = 1;
      for (size_t d = 0; d < r; ++d) {
        const int64_t n = plan.first[d][o[d] + 1] - plan.first[d][o[d]];
        empty |= n == 0;
        valid *= n;
        padded *= plan.padded[d][o[d]];
      }
      C best = std::numeric_limits<C>::lowest();
      int64_t best_off = -1;
      Acc sum = 0;
      if (!empty) {
        // Odometer over the outer dims' taps; the innermost dim's taps are a tight loop.
        for (size_t d = 0; d < r; ++d) t[d] = plan.first[d][o[d]];
        const int64_t* inner = plan.offset[last].data() + t[last];
        const int64_t inner_n = plan.first[last][o[last] + 1] - t[last];
        for (;;) {
          int64_t base = 0;
          for (size_t d = 0; d < last; ++d) base += plan.offset[d][t[d]];
          for (int64_t i = 0; i < inner_n; ++i) {
            const int64_t off = base + inner[i];
            const C v = static_cast<C>(xp[off]);
            if constexpr (K == PoolKind::kMax) {
              if (best_off < 0 || v > best) {
                best = v;
                best_off = off;
              }
            } else if constexpr (K == PoolKind::kAverage) {
              sum += static_cast<Acc>(v);
            } else {
              const Acc a = std::fabs(static_cast<Acc>(v));
              sum += prm.p == 1 ? a : prm.p == 2 ? a * a : std::pow(a, static_cast<Acc>(prm.p));
            }
          }
          size_t d = last;
          while (d-- > 0) {
            if (++t[d] < plan.first[d][o[d] + 1]) break;
            t[d] = plan.first[d][o[d]];
          }
          if (d == static_cast<size_t>(-1)) break;
        }
      }
      T& out = y[pl * plan.out_size + oi];
      if constexpr (K == PoolKind::kMax) {
        out = static_cast<T>(best);
        if (indices) {
          const int64_t off = best_off < 0        ? 0
                              : prm.storage_order ? to_column_major(best_off, plan.in)
                                                  : best_off;
          indices[pl * plan.out_size + oi] = best_off < 0 ? -1 : pl * plan.in_size + off;
        }
      } else if constexpr (K == PoolKind::kAverage) {
        const int64_t count = prm.count_include_pad ? padded : valid;
        out = static_cast<T>(count > 0 ? static_cast<C>(sum / static_cast<Acc>(count)) : C(0));
      } else {
        out = static_cast<T>(prm.p == 1   ? sum
                             : prm.p == 2 ? std::sqrt(sum)
                                          : std::pow(sum, Acc(1) / static_cast<Acc>(prm.p)));
      }
      for (size_t d = r; d-- > 0;) {
        if (++o[d] < plan.out[d]) break;
        o[d] = 0;
      }
    }
  }
}

// ---- shapes ---------------------------------------------------------------------------

Result<WindowAttrs> pool_attrs(const ir::Node& n, const Shape& x) {
  const size_t rank = n.attr_ints("kernel_shape").size();
  if (x.rank_known && x.rank() != rank + 2)
    return Status(ErrorCode::kShapeMismatch,
                  "input " + x.to_string() + " must have rank " + std::to_string(rank + 2) +
                      " for kernel_shape of " + std::to_string(rank) + " dims",
                  "pooling input is [N, C, D1, ..., Dn] with one kernel size per Di");
  return read_window_attrs(n, rank, {});
}

Status infer_pool(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  KILN_ASSIGN_OR_RETURN(WindowAttrs w, pool_attrs(ctx.node(), x));
  Shape xs = x.rank_known ? x : Shape(std::vector<Dim>(w.rank() + 2, Dim::unknown()));
  KILN_ASSIGN_OR_RETURN(Shape out, forward_window_shape(w, xs, xs.dims[1]));
  ctx.set_output(0, ctx.input_type(0), out);
  if (ctx.num_outputs() > 1) ctx.set_output(1, DataType::kI64, out);  // MaxPool Indices
  return Status::ok();
}

Status infer_global_pool(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  Shape out = x;
  if (x.rank_known) {
    if (x.rank() < 2)
      return ctx.error(ErrorCode::kShapeMismatch, "input " + x.to_string() + " must have rank >= 2",
                       "pooling input is [N, C, D1, ..., Dn]");
    for (size_t d = 2; d < x.rank(); ++d) out.dims[d] = 1;
  }
  ctx.set_output(0, ctx.input_type(0), std::move(out));
  return Status::ok();
}

// ---- kernels --------------------------------------------------------------------------

PoolParams params_of(const ir::Node& n) {
  PoolParams p;
  p.count_include_pad = n.attr_i("count_include_pad", 0) != 0;
  p.p = n.attr_i("p", 2);
  p.storage_order = n.attr_i("storage_order", 0);
  return p;
}

template <PoolKind K>
Status pool_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(WindowAttrs w, pool_attrs(ctx.node(), x.shape()));
  std::vector<int64_t> in(x.dims().begin() + 2, x.dims().end());
  KILN_ASSIGN_OR_RETURN(std::vector<WindowDim> dims, forward_window_dims(w, in));
  const PoolPlan plan = make_plan(w, dims, in);
  const PoolParams prm = params_of(ctx.node());
  HostTensor& y = ctx.output(0);
  int64_t* indices =
      K == PoolKind::kMax && ctx.has_output(1) ? ctx.output(1).data<int64_t>() : nullptr;
  const int64_t planes = x.dims()[0] * x.dims()[1];
  auto run = [&](auto t) -> Status {
    using T = decltype(t);
    pool_planes<T, K>(x.data<T>(), y.data<T>(), indices, planes, plan, prm);
    return Status::ok();
  };
  return K == PoolKind::kMax ? dispatch_numeric(x.dtype(), run) : dispatch_float(x.dtype(), run);
}

template <PoolKind K>
Status global_pool_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const int64_t planes = x.dims()[0] * x.dims()[1];
  const int64_t size = planes ? x.numel() / planes : 0;
  const PoolParams prm = params_of(ctx.node());
  HostTensor& y = ctx.output(0);
  auto run = [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    using Acc = std::conditional_t<std::is_same_v<C, double>, double, float>;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for (int64_t pl = 0; pl < planes; ++pl, xp += size) {
      if constexpr (K == PoolKind::kMax) {
        C best = size ? static_cast<C>(xp[0]) : C(0);
        for (int64_t i = 1; i < size; ++i) best = std::max(best, static_cast<C>(xp[i]));
        yp[pl] = static_cast<T>(best);
        continue;
      }
      // Double accumulation: global pools sum whole feature maps.
      double sum = 0;
      for (int64_t i = 0; i < size; ++i) {
        const double v = static_cast<double>(static_cast<C>(xp[i]));
        sum += K == PoolKind::kAverage ? v : std::pow(std::fabs(v), static_cast<double>(prm.p));
      }
      const double r = K == PoolKind::kAverage ? (size ? sum / size : 0.0)
                                               : std::pow(sum, 1.0 / static_cast<double>(prm.p));
      yp[pl] = static_cast<T>(static_cast<C>(static_cast<Acc>(r)));
    }
    return Status::ok();
  };
  return K == PoolKind::kMax ? dispatch_numeric(x.dtype(), run) : dispatch_float(x.dtype(), run);
}

Status check_pool(const ir::Node& n) {
  if (!n.has_attr("kernel_shape") || n.attr_ints("kernel_shape").empty())
    return Status(ErrorCode::kOnnxBadAttribute, "kernel_shape is required",
                  "pooling ops need kernel_shape; use Global*Pool to pool whole feature maps");
  KILN_RETURN_IF_ERROR(check_window_attrs(n));
  const int64_t so = n.attr_i("storage_order", 0);
  if (so != 0 && so != 1)
    return Status(ErrorCode::kOnnxBadAttribute,
                  "storage_order must be 0 or 1, got " + std::to_string(so),
                  "0 = row-major, 1 = column-major Indices");
  return Status::ok();
}

Status check_lp(const ir::Node& n) {
  if (n.attr_i("p", 2) < 1)
    return Status(ErrorCode::kOnnxBadAttribute,
                  "p must be >= 1, got " + std::to_string(n.attr_i("p", 2)),
                  "LpPool computes (sum |x|^p)^(1/p) with a positive integer p");
  return n.op_type == "LpPool" ? check_pool(n) : Status::ok();
}

}  // namespace

KILN_REGISTER_OPS(pool) {
  // min_opset: the op version in effect at model opset 7 (LpPool-1 had a float p).
  reg.add({.op_type = "MaxPool", .min_opset = 1, .min_inputs = 1, .max_inputs = 1,
           .max_outputs = 2, .infer = infer_pool, .cpu = pool_cpu<PoolKind::kMax>,
           .check = check_pool, .summary = "N-D max pooling with optional Indices output"});
  reg.add({.op_type = "AveragePool", .min_opset = 1, .min_inputs = 1, .max_inputs = 1,
           .infer = infer_pool, .cpu = pool_cpu<PoolKind::kAverage>, .check = check_pool,
           .summary = "N-D average pooling (count_include_pad, ceil_mode, dilations)"});
  reg.add({.op_type = "LpPool", .min_opset = 2, .min_inputs = 1, .max_inputs = 1,
           .infer = infer_pool, .cpu = pool_cpu<PoolKind::kLp>, .check = check_lp,
           .summary = "N-D Lp-norm pooling"});
  reg.add({.op_type = "GlobalMaxPool", .min_opset = 1, .min_inputs = 1, .max_inputs = 1,
           .infer = infer_global_pool, .cpu = global_pool_cpu<PoolKind::kMax>,
           .summary = "max over all spatial positions"});
  reg.add({.op_type = "GlobalAveragePool", .min_opset = 1, .min_inputs = 1, .max_inputs = 1,
           .infer = infer_global_pool, .cpu = global_pool_cpu<PoolKind::kAverage>,
           .summary = "mean over all spatial positions"});
  reg.add({.op_type = "GlobalLpPool", .min_opset = 2, .min_inputs = 1, .max_inputs = 1,
           .infer = infer_global_pool, .cpu = global_pool_cpu<PoolKind::kLp>, .check = check_lp,
           .summary = "Lp norm over all spatial positions"});
}

}  // namespace kiln::ops
