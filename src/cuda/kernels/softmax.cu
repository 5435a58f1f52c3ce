// CUDA kernels for Softmax, LogSoftmax and Hardmax (ONNX Operators.md).
//
// Semantics follow the CPU reference (src/ops/softmax.cc): before opset 13 the input is
// coerced to 2-D at `axis` (default 1) and each row normalises over all trailing dims;
// from opset 13 the normalisation runs along the single axis `axis` (default -1). Both
// are [outer, n, inner] with inner = 1 when coerced. The maximum is subtracted before
// exp (numerically stable); math runs in float (double for f64). Hardmax is the one-hot
// of the first maximum.
//
// Kernels:
//   inner == 1, n <= 1024: one warp per row, the row cached in registers (one read, one
//     write; 16-byte accesses when aligned). BERT's attention rows of 128 take this path.
//   inner == 1, n > 1024: one block per row; pass 1 folds (max, sum) online, pass 2 writes.
//   inner > 1: one thread per (outer, inner) column, coalesced across inner.
#include <memory>
#include <string>

#include "cuda/kernels/reduce.cuh"

namespace kiln::cuda {
namespace {

enum class NormKind { kSoftmax, kLogSoftmax, kHardmax };

constexpr int kMaxWarpCols = 1024;  ///< longest row of the warp kernel (32 per lane)

/// (value, index) of the first maximum; NaN never wins (like the CPU's std::max), and
/// an accumulator holding NaN yields to any number.
template <typename F>
struct MaxIdx {
  F v;
  int64_t i;
};
template <typename F>
__device__ __forceinline__ void max_idx_combine(MaxIdx<F>& a, const MaxIdx<F>& b) {
  if (b.i < 0 || isnan(b.v)) return;
  if (a.i < 0 || isnan(a.v) || b.v > a.v || (b.v == a.v && b.i < a.i)) a = b;
}

template <typename F>
__device__ __forceinline__ F warp_max(F v) {
  return warp_allreduce(v, [](F& a, const F& b) { a = fmax(a, b); });
}
template <typename F>
__device__ __forceinline__ F warp_sum(F v) {
  return warp_allreduce(v, [](F& a, const F& b) { a += b; });
}

/// Warp-per-row kernel: lane l holds columns (it * 32 + l) * V + k of its row, V elements
/// per access (V > 1 only when rows and pointers are aligned to V elements).
template <typename T, NormKind K, int kPerLane, bool kVec>
__global__ void __launch_bounds__(kReduceBlock)
    softmax_warp_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int n) {
  using F = float_acc_t<T>;
  constexpr int V = kVec ? (kPerLane < pack_of_v<T> ? kPerLane : pack_of_v<T>) : 1;
  constexpr int kIters = kPerLane / V;
  constexpr int kWarps = kReduceBlock / kWarp;
  const int lane = threadIdx.x % kWarp;
  F v[kPerLane];
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / kWarp; row < rows;
       row += static_cast<int64_t>(gridDim.x) * kWarps) {
    const T* px = x + row * n;
    T* py = y + row * n;
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int col = (it * kWarp + lane) * V;
      if (col < n) {
        const Pack<T, V> pk = *reinterpret_cast<const Pack<T, V>*>(px + col);
#pragma unroll
        for (int k = 0; k < V; ++k) v[it * V + k] = static_cast<F>(to_compute(pk.v[k]));
      } else {
#pragma unroll
        for (int k = 0; k < V; ++k) v[it * V + k] = -std::numeric_limits<F>::infinity();
      }
    }
    F m = v[0];
#pragma unroll
    for (int j = 1; j < kPerLane; ++j) m = fmax(m, v[j]);
    m = warp_max(m);
    F out[kPerLane];
    if constexpr (K == NormKind::kHardmax) {
      // First column holding the maximum: per lane, then the smallest over the warp.
      int first = n;
#pragma unroll
      for (int it = kIters - 1; it >= 0; --it)
#pragma unroll
        for (int k = V - 1; k >= 0; --k) {
          const int col = (it * kWarp + lane) * V + k;
          if (col < n && v[it * V + k] == m) first = col;
        }
      first = warp_allreduce(first, [](int& a, const int& b) { a = min(a, b); });
#pragma unroll
      for (int it = 0; it < kIters; ++it)
#pragma unroll
        for (int k = 0; k < V; ++k) out[it * V + k] = (it * kWarp + lane) * V + k == first;
    } else {
      F sum = 0;
#pragma unroll
      for (int it = 0; it < kIters; ++it)
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const F e = dev_exp(v[it * V + k] - m);
          if ((it * kWarp + lane) * V < n) sum += e;
          out[it * V + k] = K == NormKind::kSoftmax ? e : v[it * V + k] - m;
        }
      sum = warp_sum(sum);
      if constexpr (K == NormKind::kSoftmax) {
        const F inv = F(1) / sum;
#pragma unroll
        for (int j = 0; j < kPerLane; ++j) out[j] *= inv;
      } else {
        const F ls = dev_log(sum);
#pragma unroll
        for (int j = 0; j < kPerLane; ++j) out[j] -= ls;
      }
    }
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int col = (it * kWarp + lane) * V;
      if (col < n) {
        Pack<T, V> pk;
#pragma unroll
        for (int k = 0; k < V; ++k) pk.v[k] = from_compute<T>(static_cast<compute_t<T>>(out[it * V + k]));
        *reinterpret_cast<Pack<T, V>*>(py + col) = pk;
      }
    }
  }
}

/// Writes one normalised element from the row statistics.
template <typename T, NormKind K, typename F>
__device__ __forceinline__ T normalized(F v, F m, F s_or_log, int64_t k, int64_t hot) {
  F r;
  if constexpr (K == NormKind::kHardmax)
    r = k == hot ? F(1) : F(0);
  else if constexpr (K == NormKind::kSoftmax)
    r = dev_exp(v - m) / s_or_log;
  else
    r = v - m - s_or_log;
  return from_compute<T>(static_cast<compute_t<T>>(r));
}

/// Block-per-row kernel for rows longer than kMaxWarpCols.
template <typename T, NormKind K>
__global__ void __launch_bounds__(kReduceBlock)
    softmax_block_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t n) {
  using F = float_acc_t<T>;
  using Acc = std::conditional_t<K == NormKind::kHardmax, MaxIdx<F>, LseAcc<F>>;
  KILN_SHARED_ARRAY(Acc, smem, kReduceBlock / kWarp);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* px = x + row * n;
    T* py = y + row * n;
    F m = 0, stat = 0;
    int64_t hot = -1;
    if constexpr (K == NormKind::kHardmax) {
      MaxIdx<F> acc{F(0), -1};
      for (int64_t k = threadIdx.x; k < n; k += blockDim.x)
        max_idx_combine(acc, MaxIdx<F>{static_cast<F>(to_compute(px[k])), k});
      acc = group_allreduce(acc, blockDim.x, [](MaxIdx<F>& a, const MaxIdx<F>& b) {
        max_idx_combine(a, b);
      }, smem);
      hot = isnan(acc.v) ? -1 : acc.i;
    } else {
      LseAcc<F> acc = lse_init<F>();
      for (int64_t k = threadIdx.x; k < n; k += blockDim.x)
        lse_step(acc, static_cast<F>(to_compute(px[k])));
      acc = group_allreduce(acc, blockDim.x, [](LseAcc<F>& a, const LseAcc<F>& b) {
        lse_combine(a, b);
      }, smem);
      m = acc.m;
      stat = K == NormKind::kSoftmax ? acc.s : dev_log(acc.s);
    }
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x)
      py[k] = normalized<T, K>(static_cast<F>(to_compute(px[k])), m, stat, k, hot);
  }
}

/// One thread per (outer, inner) column for a normalised axis that is not the last.
template <typename T, NormKind K>
__global__ void softmax_inner_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t outer,
                                     int64_t n, int64_t inner) {
  using F = float_acc_t<T>;
  KILN_GRID_STRIDE_LOOP(c, outer * inner) {
    const int64_t o = c / inner, i = c - o * inner;
    const T* px = x + o * n * inner + i;
    T* py = y + o * n * inner + i;
    F m = 0, stat = 0;
    int64_t hot = -1;
    if constexpr (K == NormKind::kHardmax) {
      MaxIdx<F> acc{F(0), -1};
      for (int64_t k = 0; k < n; ++k)
        max_idx_combine(acc, MaxIdx<F>{static_cast<F>(to_compute(px[k * inner])), k});
      hot = isnan(acc.v) ? -1 : acc.i;
    } else {
      LseAcc<F> acc = lse_init<F>();
      for (int64_t k = 0; k < n; ++k) lse_step(acc, static_cast<F>(to_compute(px[k * inner])));
      m = acc.m;
      stat = K == NormKind::kSoftmax ? acc.s : dev_log(acc.s);
    }
    for (int64_t k = 0; k < n; ++k)
      py[k * inner] = normalized<T, K>(static_cast<F>(to_compute(px[k * inner])), m, stat, k, hot);
  }
}

template <typename T, NormKind K, int kPerLane, bool kVec>
Status launch_warp(const T* x, T* y, int64_t rows, int n, cudaStream_t stream) {
  constexpr int kWarps = kReduceBlock / kWarp;
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>((rows + kWarps - 1) / kWarps, 1 << 30));
  softmax_warp_kernel<T, K, kPerLane, kVec><<<grid, kReduceBlock, 0, stream>>>(x, y, rows, n);
  KILN_CUDA_CHECK_LAUNCH("softmax_warp");
  return Status::ok();
}

/// Picks the warp kernel instance for rows of n <= kMaxWarpCols.
template <typename T, NormKind K>
Status launch_warp_rows(const T* x, T* y, int64_t rows, int n, cudaStream_t stream) {
  const bool vec = aligned16(x) && aligned16(y);
  // V of an instance is min(kPerLane, 16 bytes): n must be a multiple of it.
  auto v_ok = [&](int per_lane) { return vec && n % std::min(per_lane, pack_of_v<T>) == 0; };
  if (n <= 32) return launch_warp<T, K, 1, false>(x, y, rows, n, stream);
#define KILN_SOFTMAX_WARP_CASE(P)                                                          \
  if (n <= 32 * (P))                                                                       \
    return v_ok(P) ? launch_warp<T, K, P, true>(x, y, rows, n, stream)                     \
                   : launch_warp<T, K, P, false>(x, y, rows, n, stream);
  KILN_SOFTMAX_WARP_CASE(2)
  KILN_SOFTMAX_WARP_CASE(4)
  KILN_SOFTMAX_WARP_CASE(8)
  KILN_SOFTMAX_WARP_CASE(16)
  KILN_SOFTMAX_WARP_CASE(32)
#undef KILN_SOFTMAX_WARP_CASE
  return Status(ErrorCode::kInternal, "softmax warp kernel called for a row of " +
                                          std::to_string(n) + " elements");
}

/// A softmax-family node bound to its [outer, n, inner] split.
template <typename T, NormKind K>
class SoftmaxKernel final : public Kernel {
 public:
  SoftmaxKernel(int64_t outer, int64_t n, int64_t inner) : outer_(outer), n_(n), inner_(inner) {}
  std::string tactic() const override {
    if (inner_ > 1) return "kiln:softmax_inner";
    return n_ <= kMaxWarpCols ? "kiln:softmax_warp" : "kiln:softmax_block";
  }
  Status enqueue(const LaunchArgs& a) override {
    const T* x = a.in<T>(0);
    T* y = a.out<T>(0);
    if (outer_ * n_ * inner_ == 0) return Status::ok();
    if (inner_ > 1) {
      softmax_inner_kernel<T, K><<<grid_for(outer_ * inner_), kBlock, 0, a.stream>>>(
          x, y, outer_, n_, inner_);
      KILN_CUDA_CHECK_LAUNCH("softmax_inner");
      return Status::ok();
    }
    if (n_ <= kMaxWarpCols) return launch_warp_rows<T, K>(x, y, outer_, static_cast<int>(n_), a.stream);
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(outer_, 1 << 30));
    softmax_block_kernel<T, K><<<grid, kReduceBlock, 0, a.stream>>>(x, y, outer_, n_);
    KILN_CUDA_CHECK_LAUNCH("softmax_block");
    return Status::ok();
  }

 private:
  int64_t outer_, n_, inner_;
};

template <NormKind K>
Result<std::unique_ptr<Kernel>> create_softmax(const KernelConfig& cfg) {
  const Operand& x = cfg.in(0);
  if (x.layout != Layout::kRowMajor) return cfg.unsupported("channels-last input");
  const int64_t rank = static_cast<int64_t>(x.rank());
  const bool per_axis = cfg.opset() >= 13;
  const int64_t a = cfg.node.attr_i("axis", per_axis ? -1 : 1);
  // A rank-0 input has one element; treat it as rank 1 for the axis check (as the CPU).
  const int64_t r1 = std::max<int64_t>(rank, 1);
  const int64_t axis = a < 0 ? a + r1 : a;
  if (axis < 0 || axis >= r1)
    return cfg.error(ErrorCode::kBadAxis,
                     "axis " + std::to_string(a) + " is out of range for rank " +
                         std::to_string(rank),
                     "axis must lie in [-rank, rank-1]");
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t d = 0; d < std::min(axis, rank); ++d) outer *= x.dims[d];
  if (per_axis) {
    if (axis < rank) n = x.dims[axis];
    for (int64_t d = axis + 1; d < rank; ++d) inner *= x.dims[d];
  } else {
    for (int64_t d = axis; d < rank; ++d) n *= x.dims[d];
  }
  std::unique_ptr<Kernel> k;
  Status st = dispatch<KILN_FLOAT_TYPES>(x.dtype, cfg, [&](auto t) -> Status {
    k.reset(new SoftmaxKernel<decltype(t), K>(outer, n, inner));
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  return Result<std::unique_ptr<Kernel>>(std::move(k));
}

}  // namespace

KILN_REGISTER_CUDA_KERNELS(softmax) {
  reg.add({.op_type = "Softmax", .create = create_softmax<NormKind::kSoftmax>});
  reg.add({.op_type = "LogSoftmax", .create = create_softmax<NormKind::kLogSoftmax>});
  reg.add({.op_type = "Hardmax", .create = create_softmax<NormKind::kHardmax>});
}

}  // namespace kiln::cuda
