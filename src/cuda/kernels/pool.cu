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
//
// 2-D MaxPool / AveragePool on floats without Indices, with x and y in the same layout
// and fewer than 2^31 elements each, take a faster kernel (pool2d_kernel): 32-bit index
// math with FastDiv, window bounds computed once per thread, and on channels-last data one
// thread per 16 bytes of channels of an output pixel (8 x f16/bf16, 4 x f32, 2 x f64: one
// vector load per tap, one vector store) when C is a multiple of that. The general kernel
// serves everything else (1-D / 3-D, LpPool, Indices, integers, mixed layouts).
#include <cstdint>
#include <limits>
#include <memory>
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
__device__ __forceinline__ float dsqrt(float a) { return ::sqrtf(a); }
__device__ __forceinline__ double dsqrt(double a) { return ::sqrt(a); }

/// Taps [lo, hi) of one dim whose position o * stride - pad + k * dilation lies in the input,
/// and the number of taps inside the padded input (ceil-mode overhang excluded). I is
/// int64_t in the general kernel, int32_t in the 2-D fast path (its dims fit 31 bits).
template <typename I>
struct TapRange {
  I lo, hi, padded;
};

template <typename I>
__device__ __forceinline__ TapRange<I> window_taps(I o, I stride, I pad_begin, I pad_end, I dil,
                                                   I k, I in) {
  const I base = o * stride - pad_begin;
  TapRange<I> t;
  t.lo = base >= 0 ? 0 : (-base + dil - 1) / dil;
  t.hi = in - 1 - base >= 0 ? (k < (in - 1 - base) / dil + 1 ? k : (in - 1 - base) / dil + 1) : 0;
  if (t.hi < t.lo) t.hi = t.lo;
  const I room = in + pad_end - base;  // taps with position < in + pad_end
  t.padded = room <= 0 ? 0 : (k < (room - 1) / dil + 1 ? k : (room - 1) / dil + 1);
  return t;
}

__device__ __forceinline__ TapRange<int64_t> taps(const PoolGeometry& g, int d, int64_t o) {
  return window_taps<int64_t>(o, g.stride[d], g.pad_begin[d], g.pad_end[d], g.dilation[d],
                              g.kernel[d], g.in[d]);
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
    TapRange<int64_t> t[kDims];
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

// ---- 2-D fast path ---------------------------------------------------------------------

/// V consecutive elements moved as one 16-byte (or narrower) load / store.
template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

/// Geometry of pool2d_kernel: `images` of ih x iw pixels with `c` interleaved lanes each
/// (channels-last: images = N, c = C; row-major: images = N * C, c = 1), every thread
/// computing `V` lanes of one output pixel. All offsets fit in 31 bits.
struct Pool2d {
  int32_t total = 0;  ///< work items: output pixels * c / V
  FastDiv lanes;      ///< c / V: work items per output pixel
  FastDiv ow, oh;     ///< output width, height
  int32_t c = 1, ih = 1, iw = 1;
  int32_t kernel[2], stride[2], dilation[2], pad_begin[2], pad_end[2];
  bool count_include_pad = false;
};

// The window of output (oh, ow) is the same for the V lanes of a thread, so its bounds are
// computed once and each tap is one vector load. Same tap order, first-tap rule for max
// (a NaN first tap stays; later NaNs never win), accumulation type and divisor as
// pool_kernel; output item i lies at y + i * V in either layout.
template <typename T, int V, PoolKind K>
__global__ void __launch_bounds__(kBlock) pool2d_kernel(const T* __restrict__ x,
                                                        T* __restrict__ y, Pool2d g) {
  using C = compute_t<T>;
  using Acc = std::conditional_t<std::is_same_v<C, double>, double, float>;
  using Pack = Vec<T, V>;
  // total < 2^31 and the grid is at most 2^27 threads, so i + step never wraps.
  const uint32_t total = static_cast<uint32_t>(g.total), step = blockDim.x * gridDim.x;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
    const uint32_t pix = g.lanes.div(i);
    const int32_t c0 = static_cast<int32_t>(i - pix * g.lanes.d) * V;
    const uint32_t r = g.ow.div(pix);
    const int32_t ow = static_cast<int32_t>(pix - r * g.ow.d);
    const uint32_t img = g.oh.div(r);
    const int32_t oh = static_cast<int32_t>(r - img * g.oh.d);
    const TapRange<int32_t> th = window_taps<int32_t>(oh, g.stride[0], g.pad_begin[0],
                                                      g.pad_end[0], g.dilation[0], g.kernel[0],
                                                      g.ih);
    const TapRange<int32_t> tw = window_taps<int32_t>(ow, g.stride[1], g.pad_begin[1],
                                                      g.pad_end[1], g.dilation[1], g.kernel[1],
                                                      g.iw);
    const T* base = x + static_cast<int32_t>(img) * g.ih * g.iw * g.c + c0;
    const int32_t h0 = oh * g.stride[0] - g.pad_begin[0];
    const int32_t w0 = ow * g.stride[1] - g.pad_begin[1];
    C best[V];
    Acc sum[V];
#pragma unroll
    for (int j = 0; j < V; ++j) {
      best[j] = std::numeric_limits<C>::lowest();
      sum[j] = 0;
    }
    bool first = true;
    for (int32_t kh = th.lo; kh < th.hi; ++kh) {
      const T* row = base + (h0 + kh * g.dilation[0]) * g.iw * g.c;
      for (int32_t kw = tw.lo; kw < tw.hi; ++kw) {
        const Pack v = *reinterpret_cast<const Pack*>(row + (w0 + kw * g.dilation[1]) * g.c);
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const C e = to_compute(v.v[j]);
          if constexpr (K == PoolKind::kMax) {
            if (first || e > best[j]) best[j] = e;
          } else {
            sum[j] += static_cast<Acc>(e);
          }
        }
        first = false;
      }
    }
    Pack out;
    if constexpr (K == PoolKind::kMax) {
#pragma unroll
      for (int j = 0; j < V; ++j) out.v[j] = from_compute<T>(best[j]);
    } else {
      const int32_t count = g.count_include_pad ? th.padded * tw.padded
                                                : (th.hi - th.lo) * (tw.hi - tw.lo);
#pragma unroll
      for (int j = 0; j < V; ++j)
        out.v[j] = from_compute<T>(count > 0 ? static_cast<C>(sum[j] / static_cast<Acc>(count))
                                             : C(0));
    }
    *reinterpret_cast<Pack*>(y + static_cast<int64_t>(i) * V) = out;
  }
}

/// MaxPool / AveragePool through pool2d_kernel. `vec` lanes per thread (16 bytes of
/// channels, or 1); a misaligned buffer at enqueue (never with the planner's 256-byte
/// aligned buffers) falls back to one lane per thread.
template <PoolKind K>
class Pool2dKernel final : public Kernel {
 public:
  Pool2dKernel(DataType dt, const Pool2d& scalar, const Pool2d& wide, int vec, bool nhwc)
      : dt_(dt), scalar_(scalar), wide_(wide), vec_(vec), nhwc_(nhwc) {}

  std::string tactic() const override {
    return std::string(K == PoolKind::kMax ? "kiln:max_pool2d" : "kiln:avg_pool2d") +
           (nhwc_ ? "_nhwc_v" + std::to_string(vec_) : "_nchw");
  }

  Status enqueue(const LaunchArgs& a) override {
    if (scalar_.total == 0) return Status::ok();
    const size_t bytes = static_cast<size_t>(vec_) * dtype_size(dt_);
    const bool wide = vec_ > 1 && (reinterpret_cast<uintptr_t>(a.inputs[0]) |
                                   reinterpret_cast<uintptr_t>(a.outputs[0])) % bytes == 0;
    return dispatch_launch<DataType::kF32, DataType::kF16, DataType::kBF16, DataType::kF64>(
        dt_, [&](auto t) -> Status {
          using T = decltype(t);
          constexpr int kWide = static_cast<int>(16 / sizeof(T));
          const T* x = a.in<T>(0);
          T* y = a.out<T>(0);
          if (wide)
            pool2d_kernel<T, kWide, K>
                <<<grid_for(wide_.total), kBlock, 0, a.stream>>>(x, y, wide_);
          else
            pool2d_kernel<T, 1, K><<<grid_for(scalar_.total), kBlock, 0, a.stream>>>(x, y, scalar_);
          KILN_CUDA_CHECK_LAUNCH("pool2d_kernel");
          return Status::ok();
        });
  }

 private:
  DataType dt_;
  Pool2d scalar_, wide_;
  int vec_;
  bool nhwc_;
};

/// The fast path's kernel for `g` when it applies (see the file comment), else null.
template <PoolKind K>
std::unique_ptr<Kernel> make_pool2d_max_avg(const KernelConfig& cfg, const PoolGeometry& g,
                                            bool indices) {
  const Operand& x = cfg.in(0);
  const Operand& y = cfg.out(0);
  const DataType dt = x.dtype;
  const bool float_type = dt == DataType::kF32 || dt == DataType::kF16 ||
                          dt == DataType::kBF16 || dt == DataType::kF64;
  if (indices || !float_type || x.rank() != 4 || x.layout != y.layout ||
      x.numel() >= kFastIndexLimit || y.numel() >= kFastIndexLimit)
    return nullptr;
  const bool nhwc = x.layout == Layout::kNhwc;
  Pool2d p;
  const int64_t ch = x.dims[1];
  p.c = static_cast<int32_t>(nhwc ? ch : 1);
  p.ih = static_cast<int32_t>(g.in[1]);
  p.iw = static_cast<int32_t>(g.in[2]);
  p.ow = FastDiv(static_cast<uint32_t>(g.out[2]));
  p.oh = FastDiv(static_cast<uint32_t>(g.out[1]));
  for (int d = 0; d < 2; ++d) {  // PoolGeometry's dims 1, 2 (dim 0 is the unit padding dim)
    p.kernel[d] = static_cast<int32_t>(g.kernel[d + 1]);
    p.stride[d] = static_cast<int32_t>(g.stride[d + 1]);
    p.dilation[d] = static_cast<int32_t>(g.dilation[d + 1]);
    p.pad_begin[d] = static_cast<int32_t>(g.pad_begin[d + 1]);
    p.pad_end[d] = static_cast<int32_t>(g.pad_end[d + 1]);
    // Window arithmetic (o * stride, in + pad_end) must stay inside 31 bits too.
    const int64_t reach = (g.out[d + 1] + 1) * g.stride[d + 1] + g.pad_begin[d + 1] +
                          g.pad_end[d + 1] + g.kernel[d + 1] * g.dilation[d + 1] + g.in[d + 1];
    if (reach >= kFastIndexLimit) return nullptr;
  }
  p.count_include_pad = g.count_include_pad;
  const int vec = nhwc && ch % static_cast<int64_t>(16 / dtype_size(dt)) == 0
                      ? static_cast<int>(16 / dtype_size(dt))
                      : 1;
  Pool2d scalar = p, wide = p;
  scalar.total = static_cast<int32_t>(y.numel());
  scalar.lanes = FastDiv(static_cast<uint32_t>(p.c));
  wide.total = static_cast<int32_t>(y.numel() / vec);
  wide.lanes = FastDiv(static_cast<uint32_t>(p.c / vec));
  return std::make_unique<Pool2dKernel<K>>(dt, scalar, wide, vec, nhwc);
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

/// make_pool2d_max_avg for MaxPool and AveragePool; null for LpPool (general kernel).
template <PoolKind K>
std::unique_ptr<Kernel> make_pool2d(const KernelConfig& cfg, const PoolGeometry& g, bool indices) {
  if constexpr (K == PoolKind::kLp)
    return nullptr;
  else
    return make_pool2d_max_avg<K>(cfg, g, indices);
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
  if (std::unique_ptr<Kernel> fast = make_pool2d<K>(cfg, g, indices)) return std::move(fast);
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
