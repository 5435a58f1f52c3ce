// Pooling on the GPU (ONNX Operators.md: MaxPool with the optional Indices output,
// AveragePool, LpPool), 1-D to 3-D, explicit pads or auto_pad, strides, dilations,
// ceil_mode, count_include_pad, storage_order; row-major or channels-last tensors.
//
// One thread per output element, in the output's memory order: with channels-last data
// consecutive threads read consecutive channels, so every tap is a coalesced load. Window
// bounds come from the same window equations as the CPU reference (src/ops/window.h) and
// each dim's taps are clipped to the input once, so the loops only visit valid positions;
// the count_include_pad divisor counts taps inside the padded input but not the ceil-mode
// overhang, and max ties keep the first tap in row-major order, exactly as in
// src/ops/pool.cc. Narrow floats accumulate in f32, f64 in f64.
#include <limits>
#include <string>
#include <type_traits>

#include "cuda/kernels/common.cuh"
#include "ops/window.h"

namespace kiln::cuda {
namespace {

enum class PoolKind { kMax, kAverage, kLp };

/// Spatial dims are padded to 3 with leading unit dims (kernel 1, stride 1, no padding), so
/// one kernel serves 1-D, 2-D and 3-D pooling.
constexpr int kDims = 3;

struct PoolGeometry {
  int64_t total = 0;  ///< output elements
  int64_t channels = 0;
  int64_t in[kDims], out[kDims], kernel[kDims], stride[kDims], dilation[kDims];
  int64_t pad_begin[kDims], pad_end[kDims];
  int64_t in_size = 1;  ///< product of input spatial dims
  bool x_nhwc = false, y_nhwc = false, idx_nhwc = false;
  bool count_include_pad = false;
  bool column_major_indices = false;  ///< MaxPool storage_order = 1
  int p = 2;                          ///< LpPool norm
};

__device__ __forceinline__ float dpow(float a, float b) { return ::powf(a, b); }
__device__ __forceinline__ double dpow(double a, double b) { return ::pow(a, b); }
__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ float dsqrt(float a) { return ::sqrtf(a); }
__device__ __forceinline__ double dsqrt(double a) { return ::sqrt(a); }

/// Taps [lo, hi) of one dim whose position o * stride - pad + k * dilation lies in the input,
/// and the number of taps inside the padded input (ceil-mode overhang excluded).
struct TapRange {
  int64_t lo, hi, padded;
};

__device__ __forceinline__ TapRange taps(const PoolGeometry& g, int d, int64_t o) {
  const int64_t base = o * g.stride[d] - g.pad_begin[d];
  const int64_t dil = g.dilation[d], k = g.kernel[d], in = g.in[d];
  TapRange t;
  t.lo = base >= 0 ? 0 : (-base + dil - 1) / dil;
  t.hi = in - 1 - base >= 0 ? imin(k, (in - 1 - base) / dil + 1) : 0;
  if (t.hi < t.lo) t.hi = t.lo;
  const int64_t room = in + g.pad_end[d] - base;  // taps with position < in + pad_end
  t.padded = room <= 0 ? 0 : imin(k, (room - 1) / dil + 1);
  return t;
}

template <typename T, PoolKind K>
__global__ void pool_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ idx,
                            PoolGeometry g) {
  using C = compute_t<T>;
  using Acc = std::conditional_t<std::is_same_v<C, double>, double, float>;
  const int64_t ch = g.channels;
  KILN_GRID_STRIDE_LOOP(i, g.total) {
    // Logical (n, c, o0, o1, o2) of output element i in the output's memory order.
    int64_t r = i, c = 0, o[kDims];
    if (g.y_nhwc) {
      c = r % ch;
      r /= ch;
    }
    for (int d = kDims - 1; d >= 0; --d) {
      o[d] = r % g.out[d];
      r /= g.out[d];
    }
    if (!g.y_nhwc) {
      c = r % ch;
      r /= ch;
    }
    const int64_t n = r;
    TapRange t[kDims];
    int64_t padded = 1, valid = 1;
    for (int d = 0; d < kDims; ++d) {
      t[d] = taps(g, d, o[d]);
      padded *= t[d].padded;
      valid *= t[d].hi - t[d].lo;
    }
    const int64_t plane = n * ch + c;
    C best = std::numeric_limits<C>::lowest();
    int64_t best_sp = -1;
    Acc sum = 0;
    for (int64_t k0 = t[0].lo; k0 < t[0].hi; ++k0) {
      const int64_t p0 = o[0] * g.stride[0] - g.pad_begin[0] + k0 * g.dilation[0];
      for (int64_t k1 = t[1].lo; k1 < t[1].hi; ++k1) {
        const int64_t p1 = o[1] * g.stride[1] - g.pad_begin[1] + k1 * g.dilation[1];
        const int64_t row = (p0 * g.in[1] + p1) * g.in[2];
        for (int64_t k2 = t[2].lo; k2 < t[2].hi; ++k2) {
          const int64_t sp = row + o[2] * g.stride[2] - g.pad_begin[2] + k2 * g.dilation[2];
          const int64_t off = g.x_nhwc ? (n * g.in_size + sp) * ch + c : plane * g.in_size + sp;
          const C v = to_compute(x[off]);
          if constexpr (K == PoolKind::kMax) {
            if (best_sp < 0 || v > best) {
              best = v;
              best_sp = sp;
            }
          } else if constexpr (K == PoolKind::kAverage) {
            sum += static_cast<Acc>(v);
          } else {
            const Acc a = static_cast<Acc>(v) < Acc(0) ? -static_cast<Acc>(v) : static_cast<Acc>(v);
            sum += g.p == 1 ? a : g.p == 2 ? a * a : dpow(a, static_cast<Acc>(g.p));
          }
        }
      }
    }
    if constexpr (K == PoolKind::kMax) {
      y[i] = from_compute<T>(best);
      if (idx) {
        int64_t sp = best_sp;
        if (sp >= 0 && g.column_major_indices) {  // first spatial dim fastest
          const int64_t p2 = sp % g.in[2], p1 = (sp / g.in[2]) % g.in[1];
          const int64_t p0 = sp / (g.in[2] * g.in[1]);
          sp = p0 + g.in[0] * (p1 + g.in[1] * p2);
        }
        int64_t at = i;
        if (g.idx_nhwc != g.y_nhwc) {
          const int64_t out_size = g.out[0] * g.out[1] * g.out[2];
          const int64_t o_sp = (o[0] * g.out[1] + o[1]) * g.out[2] + o[2];
          at = g.idx_nhwc ? (n * out_size + o_sp) * ch + c : plane * out_size + o_sp;
        }
        idx[at] = best_sp < 0 ? -1 : plane * g.in_size + sp;
      }
    } else if constexpr (K == PoolKind::kAverage) {
      const int64_t count = g.count_include_pad ? padded : valid;
      y[i] = from_compute<T>(count > 0 ? static_cast<C>(sum / static_cast<Acc>(count)) : C(0));
    } else {
      const Acc v = g.p == 1   ? sum
                    : g.p == 2 ? dsqrt(sum)
                               : dpow(sum, Acc(1) / static_cast<Acc>(g.p));
      y[i] = from_compute<T>(static_cast<C>(v));
    }
  }
}

template <PoolKind K>
class PoolKernel final : public Kernel {
 public:
  PoolKernel(DataType dt, const PoolGeometry& g) : dt_(dt), g_(g) {}

  std::string tactic() const override {
    return std::string(K == PoolKind::kMax       ? "kiln:max_pool"
                       : K == PoolKind::kAverage ? "kiln:avg_pool"
                                                 : "kiln:lp_pool") +
           (g_.y_nhwc ? "_nhwc" : "");
  }

  Status enqueue(const LaunchArgs& a) override {
    if (g_.total == 0) return Status::ok();
    auto launch = [&](auto t) -> Status {
      using T = decltype(t);
      int64_t* idx = K == PoolKind::kMax ? static_cast<int64_t*>(indices_ ? a.outputs[1] : nullptr)
                                         : nullptr;
      pool_kernel<T, K><<<grid_for(g_.total), kBlock, 0, a.stream>>>(a.in<T>(0), a.out<T>(0),
                                                                       idx, g_);
      KILN_CUDA_CHECK_LAUNCH("pool_kernel");
      return Status::ok();
    };
    if constexpr (K == PoolKind::kMax)
      return dispatch_launch<KILN_FLOAT_TYPES, KILN_INT_TYPES>(dt_, launch);
    else
      return dispatch_launch<KILN_FLOAT_TYPES>(dt_, launch);
  }

  bool indices_ = false;  ///< MaxPool writes output 1 (Indices)

 private:
  DataType dt_;
  PoolGeometry g_;
};

bool is_supported_dtype(PoolKind kind, DataType dt) {
  switch (dt) {
    case DataType::kF32: case DataType::kF16: case DataType::kBF16: case DataType::kF64:
      return true;
    case DataType::kI8: case DataType::kU8: case DataType::kI16: case DataType::kU16:
    case DataType::kI32: case DataType::kU32: case DataType::kI64: case DataType::kU64:
      return kind == PoolKind::kMax;  // the CPU kernel's dispatch_numeric
    default:
      return false;
  }
}

template <PoolKind K>
Result<std::unique_ptr<Kernel>> create_pool(const KernelConfig& cfg) {
  const Operand& x = cfg.in(0);
  const Operand& y = cfg.out(0);
  if (!is_supported_dtype(K, x.dtype) || y.dtype != x.dtype)
    return cfg.unsupported(std::string("dtype ") + dtype_name(x.dtype));
  const size_t r = cfg.node.attr_ints("kernel_shape").size();
  if (r < 1 || r > static_cast<size_t>(kDims) || x.rank() != r + 2 || y.rank() != r + 2)
    return cfg.unsupported("rank " + std::to_string(x.rank()) + " (1-D to 3-D pooling only)");
  KILN_ASSIGN_OR_RETURN(ops::WindowAttrs w, ops::read_window_attrs(cfg.node, r, {}));
  const std::vector<int64_t> in(x.dims.begin() + 2, x.dims.end());
  KILN_ASSIGN_OR_RETURN(std::vector<ops::WindowDim> wd, ops::forward_window_dims(w, in));
  PoolGeometry g;
  g.total = y.numel();
  g.channels = x.dims[1];
  const size_t lead = kDims - r;
  for (size_t d = 0; d < kDims; ++d) {
    const bool real = d >= lead;
    const size_t s = d - lead;
    g.in[d] = real ? in[s] : 1;
    g.out[d] = real ? y.dims[2 + s] : 1;
    g.kernel[d] = real ? w.kernel[s] : 1;
    g.stride[d] = real ? w.strides[s] : 1;
    g.dilation[d] = real ? w.dilations[s] : 1;
    g.pad_begin[d] = real ? wd[s].pad_begin : 0;
    g.pad_end[d] = real ? wd[s].pad_end : 0;
    if (real && wd[s].out != g.out[d])
      return cfg.error(ErrorCode::kShapeMismatch,
                       "pooling output dim " + std::to_string(2 + s) + " is " +
                           std::to_string(g.out[d]) + " but the window gives " +
                           std::to_string(wd[s].out));
    g.in_size *= g.in[d];
  }
  g.x_nhwc = x.layout == Layout::kNhwc;
  g.y_nhwc = y.layout == Layout::kNhwc;
  g.count_include_pad = cfg.node.attr_i("count_include_pad", 0) != 0;
  g.p = static_cast<int>(cfg.node.attr_i("p", 2));
  g.column_major_indices = cfg.node.attr_i("storage_order", 0) == 1;
  const bool indices = K == PoolKind::kMax && cfg.outputs.size() > 1 && cfg.out(1).present();
  if (indices) {
    if (cfg.out(1).dtype != DataType::kI64 || cfg.out(1).dims != y.dims)
      return cfg.unsupported("Indices output must be int64 with the output's dims");
    g.idx_nhwc = cfg.out(1).layout == Layout::kNhwc;
  }
  auto k = std::make_unique<PoolKernel<K>>(x.dtype, g);
  k->indices_ = indices;
  return std::unique_ptr<Kernel>(std::move(k));
}

}  // namespace

KILN_REGISTER_CUDA_KERNELS(pool) {
  reg.add({.op_type = "MaxPool", .create = create_pool<PoolKind::kMax>, .nhwc = true});
  reg.add({.op_type = "AveragePool", .create = create_pool<PoolKind::kAverage>, .nhwc = true});
  reg.add({.op_type = "LpPool", .create = create_pool<PoolKind::kLp>, .nhwc = true});
}

}  // namespace kiln::cuda
