// Shared machinery of kiln's reduction-style CUDA kernels (reduce.cu, softmax.cu,
// normalization.cu): warp/block combining of arbitrary accumulators, and one reduction
// engine driven by a reducer functor and a ReducePlan.
//
// A reducer is a small value type with
//   using In, Acc, Out;                       element read, accumulator, value written
//   Acc init() const;                         identity accumulator
//   void step(Acc&, In v, int64_t r) const;   fold element v (r: its index along the reduced
//                                             extent, for ArgMax-style reducers)
//   void combine(Acc&, const Acc&) const;     merge two partial accumulators
//   Out finish(const Acc&) const;             final value
// combine must be associative and commutative (threads merge partials in any order).
//
// ReducePlan maps a reduction over any axis set to one of two kernels after dropping
// size-1 dims and merging adjacent dims of the same role:
//   rows: output o reduces `reduce` values at a stride of 1 (a whole row per warp/block,
//         16-byte loads), used when the innermost group is reduced;
//   cols: output (o, i) reduces `reduce` values at a stride of `inner` (threads across
//         i, so loads coalesce), used when the innermost group is kept.
// When the reduced axes are not one contiguous extent after merging (e.g. axes {0, 2} of
// [A, B, C, D]), the plan is "general": offsets come from StridedIndex maps of the kept
// and the reduced groups. When too few blocks would fill the GPU the reduced extent is
// split over blocks; partial accumulators go to the workspace and a third kernel merges
// them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "cuda/kernels/common.cuh"

namespace kiln::cuda {

/// Float accumulation type of a float element type: double for f64, float otherwise.
template <typename T>
using float_acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

/// Element types with the contiguous fast paths (vector loads, column kernels); other
/// types (f64, integers, bool) take the general kernel to bound the instantiation count.
template <typename T>
constexpr bool has_fast_reduce_v =
    std::is_same_v<T, float> || std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

constexpr int kReduceBlock = 256;  ///< threads per block of every reduction kernel
constexpr int kWarp = 32;

// ---- combining accumulators across threads --------------------------------------------------

/// __shfl_xor_sync of any trivially copyable value, as 32-bit words.
template <typename A>
__device__ __forceinline__ A shfl_xor_any(const A& v, int lane_mask) {
  constexpr int kWords = (sizeof(A) + 3) / 4;
  unsigned w[kWords] = {};
  memcpy(w, &v, sizeof(A));
#pragma unroll
  for (int k = 0; k < kWords; ++k) w[k] = __shfl_xor_sync(0xffffffffu, w[k], lane_mask);
  A r;
  memcpy(&r, w, sizeof(A));
  return r;
}

/// __shfl_up_sync of any trivially copyable value, as 32-bit words.
template <typename A>
__device__ __forceinline__ A shfl_up_any(const A& v, unsigned delta) {
  constexpr int kWords = (sizeof(A) + 3) / 4;
  unsigned w[kWords] = {};
  memcpy(w, &v, sizeof(A));
#pragma unroll
  for (int k = 0; k < kWords; ++k) w[k] = __shfl_up_sync(0xffffffffu, w[k], delta);
  A r;
  memcpy(&r, w, sizeof(A));
  return r;
}

/// Reduces v over the 32 lanes of a warp; every lane gets the same result (the butterfly
/// gives each lane the same operands, and combine is commutative).
template <typename A, typename Combine>
__device__ __forceinline__ A warp_allreduce(A v, const Combine& combine) {
#pragma unroll
  for (int m = kWarp / 2; m > 0; m /= 2) {
    const A o = shfl_xor_any(v, m);
    // Lower lane keeps (v, o) order, upper lane (o, v): both evaluate the same expression.
    if (threadIdx.x & m) {
      A t = o;
      combine(t, v);
      v = t;
    } else {
      combine(v, o);
    }
  }
  return v;
}

/// Reduces v over consecutive groups of `group` threads of the block (group a multiple of
/// 32 dividing blockDim.x, or 32 for one warp); all threads of a group get the result.
/// Must be reached by every thread of the block (it synchronises when group > 32).
/// `smem` holds blockDim.x / 32 accumulators.
template <typename A, typename Combine>
__device__ __forceinline__ A group_allreduce(A v, int group, const Combine& combine, A* smem) {
  v = warp_allreduce(v, combine);
  if (group <= kWarp) return v;
  const int warp = threadIdx.x / kWarp;
  if (threadIdx.x % kWarp == 0) smem[warp] = v;
  __syncthreads();
  const int first = (threadIdx.x / group) * (group / kWarp);
  A r = smem[first];
  for (int w = 1; w < group / kWarp; ++w) combine(r, smem[first + w]);
  __syncthreads();  // smem may be reused right after
  return r;
}

/// Raw shared storage for `n` values of A (A may have default member initialisers, which
/// __shared__ variables cannot).
#define KILN_SHARED_ARRAY(A, name, n)                                   \
  __shared__ __align__(16) unsigned char name##_raw[(n) * sizeof(A)];   \
  A* name = reinterpret_cast<A*>(name##_raw)

/// `V` consecutive elements loaded or stored as one aligned vector access.
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};
/// Elements per 16-byte access.
template <typename T>
constexpr int pack_of_v = (16 / sizeof(T)) > 0 ? static_cast<int>(16 / sizeof(T)) : 1;

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

/// Saturating float → integer conversion matching the CPU reference (ops/helpers.h
/// float_to_int): NaN → 0, truncation toward zero, out-of-range → INT64_MIN's pattern.
template <typename T>
__device__ __forceinline__ T float_to_int_dev(double v) {
  if (isnan(v)) return T(0);
  if constexpr (std::is_same_v<T, uint64_t>) {
    if (v >= 18446744073709551616.0) return ~uint64_t(0);
    if (v >= 9223372036854775808.0) return static_cast<uint64_t>(v);
  }
  if (v >= 9223372036854775808.0 || v < -9223372036854775808.0)
    return static_cast<T>(static_cast<uint64_t>(1) << 63);
  return static_cast<T>(static_cast<int64_t>(v));
}

// ---- math in the accumulation type ------------------------------------------------------------

template <typename F> __device__ __forceinline__ F dev_exp(F x) {
  if constexpr (std::is_same_v<F, float>) return expf(x); else return ::exp(x);
}
template <typename F> __device__ __forceinline__ F dev_log(F x) {
  if constexpr (std::is_same_v<F, float>) return logf(x); else return ::log(x);
}
template <typename F> __device__ __forceinline__ F dev_sqrt(F x) {
  if constexpr (std::is_same_v<F, float>) return sqrtf(x); else return ::sqrt(x);
}
template <typename F> __device__ __forceinline__ F dev_pow(F x, F y) {
  if constexpr (std::is_same_v<F, float>) return powf(x, y); else return ::pow(x, y);
}

/// Running log-sum-exp (one pass, no overflow): s = sum(exp(x - m)) with m the largest
/// element so far. s == 0 means nothing was folded: every non-empty accumulator holds the
/// 1 of its maximum. Used by ReduceLogSumExp and the softmax kernels.
template <typename F>
struct LseAcc {
  F m;
  F s;
};
template <typename F>
__device__ __forceinline__ LseAcc<F> lse_init() {
  return LseAcc<F>{-std::numeric_limits<F>::infinity(), F(0)};
}
template <typename F>
__device__ __forceinline__ void lse_step(LseAcc<F>& a, F x) {
  if (x == -std::numeric_limits<F>::infinity()) return;  // exp(-inf) adds nothing
  if (x > a.m) {
    a.s = a.s * dev_exp(a.m - x) + F(1);
    a.m = x;
  } else {
    a.s += dev_exp(x - a.m);  // NaN propagates through here
  }
}
template <typename F>
__device__ __forceinline__ void lse_combine(LseAcc<F>& a, const LseAcc<F>& b) {
  if (b.s == F(0)) return;
  if (a.s == F(0)) {
    a = b;
    return;
  }
  const F m = a.m > b.m ? a.m : b.m;
  a.s = a.s * dev_exp(a.m - m) + b.s * dev_exp(b.m - m);
  a.m = m;
}

// ---- plan ------------------------------------------------------------------------------------

/// How one reduction runs; built on the host at kernel-creation time.
struct ReducePlan {
  bool cols = false;     ///< column kernel (innermost group kept) instead of the row kernel
  bool general = false;  ///< offsets through `kept` / `red` instead of closed forms
  int64_t outputs = 0;   ///< values written
  int64_t outer = 1;     ///< rows (row kernel) or outer index (column kernel)
  int64_t reduce = 1;    ///< reduced elements per output
  int64_t inner = 1;     ///< column kernel: contiguous kept extent
  StridedIndex kept{};   ///< general: row / outer index → input offset
  StridedIndex red{};    ///< general: reduced index → input offset
  int threads = kWarp;   ///< row kernel: threads per row; column kernel: blockDim.y
  int vec = 1;           ///< column kernel: adjacent kept columns per thread (16-byte loads)
  int splits = 1;        ///< blocks sharing one output's reduced extent
  int64_t chunk = 0;     ///< reduced elements per split (a multiple of 8 when split)
};

/// Plans reducing a row-major tensor of `dims` over the dims where `mask` is true (for a
/// channels-last tensor pass its physical dims). `fast`: the element type has the
/// contiguous kernels (has_fast_reduce_v). `pack`: elements of one 16-byte load
/// (pack_of_v), which the column kernel reads per thread when the kept inner extent is a
/// multiple of it (e.g. a global pool over NHWC: channels contiguous). Returns false when
/// more than kMaxRank groups remain after merging (the caller reports unsupported).
inline bool make_reduce_plan(const std::vector<int64_t>& dims, const std::vector<bool>& mask,
                             bool fast, int sm_count, ReducePlan& p, int pack = 1) {
  p = ReducePlan{};
  std::vector<int64_t> sizes;
  std::vector<bool> red;
  p.outputs = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (!mask[d]) p.outputs *= dims[d];
    if (dims[d] == 1) continue;  // changes no offsets
    if (!sizes.empty() && red.back() == mask[d])
      sizes.back() *= dims[d];
    else {
      sizes.push_back(dims[d]);
      red.push_back(mask[d]);
    }
  }
  if (sizes.size() > static_cast<size_t>(kMaxRank)) return false;
  std::vector<int64_t> strides(sizes.size(), 1);
  for (int g = static_cast<int>(sizes.size()) - 2; g >= 0; --g)
    strides[g] = strides[g + 1] * sizes[g + 1];
  int reduced_groups = 0;
  for (bool r : red) reduced_groups += r;
  const bool inner_kept = !sizes.empty() && !red.back();
  p.reduce = 1;
  for (size_t g = 0; g < sizes.size(); ++g)
    if (red[g]) p.reduce *= sizes[g];

  // Groups alternate roles, so one reduced group means [K] R (rows) or [K] R K (cols);
  // nothing reduced is cols with reduce 1.
  if (fast && reduced_groups <= 1) {
    p.cols = inner_kept;
    p.inner = inner_kept ? sizes.back() : 1;
    p.outer = p.outputs / std::max<int64_t>(p.inner, 1);
    if (p.inner == 0) p.outer = 0;
  } else {
    // General: rows over all kept groups unless the innermost group is kept and the type
    // has the column kernel.
    p.general = true;
    p.cols = fast && inner_kept;
    std::vector<int64_t> kd, ks, rd, rs;
    const size_t kept_groups = sizes.size() - (p.cols ? 1 : 0);
    for (size_t g = 0; g < sizes.size(); ++g) {
      if (red[g]) {
        rd.push_back(sizes[g]);
        rs.push_back(strides[g]);
      } else if (g < kept_groups) {
        kd.push_back(sizes[g]);
        ks.push_back(strides[g]);
      }
    }
    p.kept = make_index(kd, ks);
    p.red = make_index(rd, rs);
    p.inner = p.cols ? sizes.back() : 1;
    p.outer = p.inner ? p.outputs / p.inner : 0;
  }

  // Geometry, and splitting the reduced extent when the outputs alone cannot fill the GPU.
  const int64_t want_blocks = 2LL * std::max(sm_count, 1);
  int64_t blocks, min_chunk;
  if (!p.cols) {
    p.threads = kWarp;
    while (p.threads < kReduceBlock && p.threads * 16LL < p.reduce) p.threads *= 2;
    blocks = (p.outer + kReduceBlock / p.threads - 1) / (kReduceBlock / p.threads);
    min_chunk = 16LL * p.threads;
  } else {
    p.threads = 1;
    while (p.threads < 8 && p.threads < p.reduce) p.threads *= 2;
    if (!p.general && pack > 1 && p.inner % pack == 0) p.vec = pack;
    const int tx = kReduceBlock / p.threads;
    blocks = p.outer * ((p.inner + static_cast<int64_t>(tx) * p.vec - 1) / (static_cast<int64_t>(tx) * p.vec));
    min_chunk = 32LL * p.threads;
  }
  p.splits = 1;
  p.chunk = p.reduce;
  if (blocks > 0 && blocks < want_blocks && p.reduce >= 2 * min_chunk) {
    int64_t s = std::min<int64_t>({p.reduce / min_chunk, (want_blocks + blocks - 1) / blocks, 512});
    p.chunk = ((p.reduce + s - 1) / s + 7) / 8 * 8;
    p.splits = static_cast<int>((p.reduce + p.chunk - 1) / p.chunk);
  }
  return true;
}

/// Workspace bytes a plan needs for partial accumulators of `acc_size` bytes.
inline size_t reduce_workspace_bytes(const ReducePlan& p, size_t acc_size) {
  return p.splits > 1 ? static_cast<size_t>(p.outputs) * p.splits * acc_size : 0;
}

// ---- kernels ---------------------------------------------------------------------------------

/// Row kernel: `threads` threads per row, rows of `reduce` elements, split s = blockIdx.y
/// covers [s * chunk, (s + 1) * chunk). Writes finish(acc) to y, or the accumulator to
/// partial[row * splits + s] when partial is non-null.
template <typename R, bool kGeneral>
__global__ void __launch_bounds__(kReduceBlock)
    reduce_rows_kernel(R rd, const typename R::In* __restrict__ x, typename R::Out* __restrict__ y,
                       typename R::Acc* __restrict__ partial, ReducePlan p, bool vec) {
  using In = typename R::In;
  using Acc = typename R::Acc;
  KILN_SHARED_ARRAY(Acc, smem, kReduceBlock / kWarp);
  const int tpr = p.threads;
  const int rows_per_block = kReduceBlock / tpr;
  const int t = threadIdx.x % tpr;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * p.chunk;
  const int64_t r1 = min(p.reduce, r0 + p.chunk);
  const auto comb = [&](Acc& a, const Acc& b) { rd.combine(a, b); };
  for (int64_t row0 = static_cast<int64_t>(blockIdx.x) * rows_per_block; row0 < p.outer;
       row0 += static_cast<int64_t>(gridDim.x) * rows_per_block) {
    const int64_t row = row0 + threadIdx.x / tpr;
    Acc acc = rd.init();
    if (row < p.outer) {
      if constexpr (kGeneral) {
        const In* px = x + p.kept.offset(row);
        for (int64_t r = r0 + t; r < r1; r += tpr) rd.step(acc, px[p.red.offset(r)], r);
      } else {
        const In* px = x + row * p.reduce;
        constexpr int V = pack_of_v<In>;
        if (vec) {
          for (int64_t r = r0 + static_cast<int64_t>(t) * V; r < r1; r += static_cast<int64_t>(tpr) * V) {
            const Pack<In, V> pk = *reinterpret_cast<const Pack<In, V>*>(px + r);
#pragma unroll
            for (int k = 0; k < V; ++k) rd.step(acc, pk.v[k], r + k);
          }
        } else {
          for (int64_t r = r0 + t; r < r1; r += tpr) rd.step(acc, px[r], r);
        }
      }
    }
    acc = group_allreduce(acc, tpr, comb, smem);
    if (row < p.outer && t == 0) {
      if (partial)
        partial[row * p.splits + blockIdx.y] = acc;
      else
        y[row] = rd.finish(acc);
    }
  }
}

/// The column kernels' end of a tile: merges each thread's accumulator into threadIdx.y 0
/// through `smem` (blockDim.x * blockDim.y entries; every thread of the block calls this),
/// which writes output `out` (or its partial of split blockIdx.y) when `in_range`.
template <typename R>
__device__ __forceinline__ void cols_merge_store(const R& rd, typename R::Acc acc, typename R::Acc* smem,
                                                 bool in_range, int64_t out, typename R::Out* y,
                                                 typename R::Acc* partial, int splits) {
  const int tx = blockDim.x, by = blockDim.y;
  if (by > 1) {
    smem[threadIdx.y * tx + threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0)
      for (int k = 1; k < by; ++k) rd.combine(acc, smem[k * tx + threadIdx.x]);
    __syncthreads();
  }
  if (threadIdx.y == 0 && in_range) {
    if (partial)
      partial[out * splits + blockIdx.y] = acc;
    else
      y[out] = rd.finish(acc);
  }
}

/// Column kernel: blockDim = (kReduceBlock / threads, threads); x threads walk `inner`
/// (coalesced), y threads share the reduced extent, then merge through shared memory.
template <typename R, bool kGeneral>
__global__ void __launch_bounds__(kReduceBlock)
    reduce_cols_kernel(R rd, const typename R::In* __restrict__ x, typename R::Out* __restrict__ y,
                       typename R::Acc* __restrict__ partial, ReducePlan p) {
  using In = typename R::In;
  using Acc = typename R::Acc;
  KILN_SHARED_ARRAY(Acc, smem, kReduceBlock);
  const int tx = blockDim.x, by = blockDim.y;
  const int64_t tiles = (p.inner + tx - 1) / tx;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * p.chunk;
  const int64_t r1 = min(p.reduce, r0 + p.chunk);
  for (int64_t b = blockIdx.x; b < p.outer * tiles; b += gridDim.x) {
    const int64_t o = b / tiles;
    const int64_t i = (b - o * tiles) * tx + threadIdx.x;
    Acc acc = rd.init();
    if (i < p.inner) {
      if constexpr (kGeneral) {
        const In* px = x + p.kept.offset(o) + i;
        for (int64_t r = r0 + threadIdx.y; r < r1; r += by) rd.step(acc, px[p.red.offset(r)], r);
      } else {
        const In* px = x + o * p.reduce * p.inner + i;
        for (int64_t r = r0 + threadIdx.y; r < r1; r += by) rd.step(acc, px[r * p.inner], r);
      }
    }
    cols_merge_store(rd, acc, smem, i < p.inner, o * p.inner + i, y, partial, p.splits);
  }
}

/// Column kernel reading V adjacent kept columns per thread with one 16-byte load per
/// reduced index (p.vec == V, p.inner a multiple of V, x 16-byte aligned, not general):
/// the global pool of an NHWC tensor reads whole channel vectors. Same split/partial
/// contract as reduce_cols_kernel; the V accumulators merge across threadIdx.y one at a
/// time through shared memory.
template <typename R, int V>
__global__ void __launch_bounds__(kReduceBlock)
    reduce_cols_vec_kernel(R rd, const typename R::In* __restrict__ x, typename R::Out* __restrict__ y,
                           typename R::Acc* __restrict__ partial, ReducePlan p) {
  using In = typename R::In;
  using Acc = typename R::Acc;
  KILN_SHARED_ARRAY(Acc, smem, kReduceBlock);
  const int tx = blockDim.x, by = blockDim.y;
  const int64_t span = static_cast<int64_t>(tx) * V;
  const int64_t tiles = (p.inner + span - 1) / span;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * p.chunk;
  const int64_t r1 = min(p.reduce, r0 + p.chunk);
  for (int64_t b = blockIdx.x; b < p.outer * tiles; b += gridDim.x) {
    const int64_t o = b / tiles;
    const int64_t i = (b - o * tiles) * span + static_cast<int64_t>(threadIdx.x) * V;
    Acc acc[V];
#pragma unroll
    for (int k = 0; k < V; ++k) acc[k] = rd.init();
    if (i < p.inner) {  // p.inner % V == 0: the whole vector is in range
      const In* px = x + o * p.reduce * p.inner + i;
      for (int64_t r = r0 + threadIdx.y; r < r1; r += by) {
        const Pack<In, V> pk = *reinterpret_cast<const Pack<In, V>*>(px + r * p.inner);
#pragma unroll
        for (int k = 0; k < V; ++k) rd.step(acc[k], pk.v[k], r);
      }
    }
#pragma unroll
    for (int k = 0; k < V; ++k)
      cols_merge_store(rd, acc[k], smem, i < p.inner, o * p.inner + i + k, y, partial, p.splits);
  }
}

/// Merges the `splits` partial accumulators of every output.
template <typename R>
__global__ void reduce_merge_kernel(R rd, const typename R::Acc* __restrict__ partial,
                                    typename R::Out* __restrict__ y, int64_t outputs, int splits) {
  KILN_GRID_STRIDE_LOOP(o, outputs) {
    typename R::Acc acc = partial[o * splits];
    for (int s = 1; s < splits; ++s) rd.combine(acc, partial[o * splits + s]);
    y[o] = rd.finish(acc);
  }
}

/// Enqueues the reduction planned by `p` of x into y (p.outputs values). `ws` must hold
/// reduce_workspace_bytes(p, sizeof(R::Acc)) bytes.
template <typename R>
Status launch_reduce(const ReducePlan& p, const R& rd, const typename R::In* x,
                     typename R::Out* y, void* ws, cudaStream_t stream) {
  using In = typename R::In;
  using Acc = typename R::Acc;
  if (p.outputs == 0) return Status::ok();
  Acc* partial = p.splits > 1 ? static_cast<Acc*>(ws) : nullptr;
  const unsigned splits = static_cast<unsigned>(p.splits);
  if (!p.cols) {
    const int64_t rows_per_block = kReduceBlock / p.threads;
    const unsigned grid = static_cast<unsigned>(
        std::min<int64_t>((p.outer + rows_per_block - 1) / rows_per_block, 1LL << 30));
    if constexpr (has_fast_reduce_v<In>) {
      if (!p.general) {
        constexpr int V = pack_of_v<In>;
        const bool vec = p.reduce % V == 0 && p.chunk % V == 0 && aligned16(x);
        reduce_rows_kernel<R, false>
            <<<dim3(grid, splits), kReduceBlock, 0, stream>>>(rd, x, y, partial, p, vec);
        KILN_CUDA_CHECK_LAUNCH("reduce_rows");
      }
    }
    if (p.general || !has_fast_reduce_v<In>) {
      reduce_rows_kernel<R, true>
          <<<dim3(grid, splits), kReduceBlock, 0, stream>>>(rd, x, y, partial, p, false);
      KILN_CUDA_CHECK_LAUNCH("reduce_rows_general");
    }
  } else {
    if constexpr (has_fast_reduce_v<In>) {
      const int tx = kReduceBlock / p.threads;
      const dim3 block(tx, p.threads);
      constexpr int V = pack_of_v<In>;
      const bool vec = p.vec == V && V > 1 && !p.general && aligned16(x);
      const int64_t span = static_cast<int64_t>(tx) * (vec ? V : 1);
      const int64_t tiles = (p.inner + span - 1) / span;
      const unsigned grid = static_cast<unsigned>(std::min<int64_t>(p.outer * tiles, 1LL << 30));
      if (vec) {
        reduce_cols_vec_kernel<R, V><<<dim3(grid, splits), block, 0, stream>>>(rd, x, y, partial, p);
        KILN_CUDA_CHECK_LAUNCH("reduce_cols_vec");
      } else if (p.general) {
        reduce_cols_kernel<R, true><<<dim3(grid, splits), block, 0, stream>>>(rd, x, y, partial, p);
        KILN_CUDA_CHECK_LAUNCH("reduce_cols_general");
      } else {
        reduce_cols_kernel<R, false><<<dim3(grid, splits), block, 0, stream>>>(rd, x, y, partial, p);
        KILN_CUDA_CHECK_LAUNCH("reduce_cols");
      }
    } else {
      return Status(ErrorCode::kInternal, "column reduction planned for a type without one");
    }
  }
  if (partial) {
    reduce_merge_kernel<R><<<grid_for(p.outputs), kBlock, 0, stream>>>(rd, partial, y, p.outputs,
                                                                         p.splits);
    KILN_CUDA_CHECK_LAUNCH("reduce_merge");
  }
  return Status::ok();
}

}  // namespace kiln::cuda
