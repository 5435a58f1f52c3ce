// CUDA kernels for reductions (ONNX Operators.md: ReduceSum, ReduceMean, ReduceMax,
// ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp,
// ReduceSumSquare, ArgMax, ArgMin), through the reduction engine of reduce.cuh (the global
// pools, on the same engine, are in global_pool.cu); and the along-an-axis scans and
// selections CumSum and TopK (CPU: src/ops/sort_scan.cc).
//
// Semantics follow the CPU reference (src/ops/reduce.cc, src/ops/pool.cc): axes are an
// attribute before opset 13 (ReduceSum) / 18 (the others) and a constant input after;
// empty axes mean "all axes" unless noop_with_empty_axes (identity); an empty reduced set
// yields the reduction's identity. f16/bf16/f32 accumulate in float, f64 in double,
// integers in 64 bits (Mean/L2/LogSum/LogSumExp of integers through double, converted
// back with the CPU's saturating rule). Max/Min propagate NaN; ArgMax/ArgMin return the
// first NaN, and ties go to the first index (last with select_last_index).
#include <memory>
#include <string>

#include "cuda/kernels/reduce_ops.cuh"

namespace kiln::cuda {
namespace {

/// ArgMax (kMax) / ArgMin as a reducer: the accumulator is (value, index), index -1 when
/// empty. `better` is a strict total order (NaN above every number, then the index rule),
/// so the merge order of partials does not matter.
template <typename T, bool kMax>
struct ArgReduce {
  using C = compute_t<T>;
  using In = T;
  using Out = int64_t;
  struct Acc {
    C v;
    int64_t i;
  };
  bool last = false;  ///< select_last_index: ties go to the larger index

  __device__ Acc init() const { return Acc{C(0), -1}; }
  __device__ __forceinline__ void step(Acc& a, T v, int64_t r) const {
    combine(a, Acc{to_compute(v), r});
  }
  __device__ __forceinline__ void combine(Acc& a, const Acc& b) const {
    if (better(b, a)) a = b;
  }
  __device__ __forceinline__ int64_t finish(const Acc& a) const { return a.i < 0 ? 0 : a.i; }

 private:
  __device__ __forceinline__ bool better(const Acc& b, const Acc& a) const {
    if (b.i < 0) return false;
    if (a.i < 0) return true;
    if constexpr (std::is_floating_point_v<C>) {
      const bool an = isnan(a.v), bn = isnan(b.v);
      if (an || bn) return an && bn ? b.i < a.i : bn;  // the first NaN wins
    }
    if (kMax ? b.v > a.v : b.v < a.v) return true;
    if (b.v == a.v) return last ? b.i > a.i : b.i < a.i;
    return false;
  }
};

// ---- Reduce* -----------------------------------------------------------------------------

/// First opset where an op's axes are input 1 instead of an attribute.
int axes_input_opset(ReduceKind k) { return k == ReduceKind::kSum ? 13 : 18; }

template <ReduceKind K>
Result<std::unique_ptr<Kernel>> create_reduce(const KernelConfig& cfg) {
  const Operand& x = cfg.in(0);
  if (x.layout != Layout::kRowMajor) return cfg.unsupported("channels-last input");
  const bool from_input = cfg.opset() >= axes_input_opset(K);
  std::vector<int64_t> axes;
  if (from_input) {
    if (cfg.has_input(1)) {
      if (!cfg.in(1).value)
        return cfg.unsupported("axes computed at run time (the axes input must be a constant)");
      axes = cfg.in(1).value->to_i64_vector();
    }
    if (axes.empty() && cfg.node.attr_i("noop_with_empty_axes", 0) != 0)
      return std::unique_ptr<Kernel>(new ReduceCopyKernel(x.bytes()));
  } else {
    axes = cfg.node.attr_ints("axes");
  }
  const int64_t rank = static_cast<int64_t>(x.rank());
  std::vector<bool> mask(x.rank(), axes.empty());
  int64_t count = 1;
  for (int64_t a : axes) {
    const int64_t na = a < 0 ? a + rank : a;
    if (na < 0 || na >= rank || mask[na])
      return cfg.error(ErrorCode::kBadAxis,
                       "reduction axis " + std::to_string(a) + " is out of range or repeated " +
                           "for rank " + std::to_string(rank),
                       "axes must be distinct and lie in [-rank, rank-1]");
    mask[na] = true;
  }
  for (size_t d = 0; d < x.rank(); ++d)
    if (mask[d]) count *= x.dims[d];
  auto make = [&](auto t) -> Result<std::unique_ptr<Kernel>> {
    using T = decltype(t);
    Reduce<T, K> rd;
    rd.count = count;
    return make_reduce_kernel(cfg, rd, x.dims, mask);
  };
  if constexpr (K == ReduceKind::kMax || K == ReduceKind::kMin)
    return make_typed<KILN_ALL_TYPES>(x.dtype, cfg, make);
  else
    return make_typed<KILN_FLOAT_TYPES, KILN_INT_TYPES>(x.dtype, cfg, make);
}

// ---- ArgMax / ArgMin ---------------------------------------------------------------------

template <bool kMax>
Result<std::unique_ptr<Kernel>> create_arg(const KernelConfig& cfg) {
  const Operand& x = cfg.in(0);
  if (x.layout != Layout::kRowMajor) return cfg.unsupported("channels-last input");
  const int64_t rank = static_cast<int64_t>(x.rank());
  const int64_t a = cfg.node.attr_i("axis", 0);
  const int64_t axis = a < 0 ? a + rank : a;
  if (rank == 0 || axis < 0 || axis >= rank)
    return cfg.error(ErrorCode::kBadAxis,
                     "axis " + std::to_string(a) + " is out of range for rank " +
                         std::to_string(rank),
                     "axis must lie in [-rank, rank-1]");
  if (x.dims[axis] == 0)
    return cfg.error(ErrorCode::kShapeMismatch,
                     "cannot take " + cfg.node.op_type + " over an empty axis",
                     "the reduced axis must have at least one element");
  std::vector<bool> mask(x.rank(), false);
  mask[axis] = true;
  const bool last = cfg.node.attr_i("select_last_index", 0) != 0;
  return make_typed<KILN_ALL_TYPES>(x.dtype, cfg, [&](auto t) {
    ArgReduce<decltype(t), kMax> rd;
    rd.last = last;
    return make_reduce_kernel(cfg, rd, x.dims, mask);
  });
}

// ---- CumSum -----------------------------------------------------------------------------
// Integers accumulate in 64 bits (the CPU's wrap-around in the element type is the same
// value modulo 2^bits), floats in float (double for f64).

template <typename T>
using scan_acc_t = std::conditional_t<is_float_v<T>, float_acc_t<T>,
                                      std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;

struct ScanArgs {
  int64_t outer = 1, n = 1, inner = 1;
  bool exclusive = false, reverse = false;
};

/// One thread per (outer, inner) line, sequential along the axis (coalesced across inner).
template <typename T>
__global__ void cumsum_lines_kernel(const T* __restrict__ x, T* __restrict__ y, ScanArgs a) {
  using A = scan_acc_t<T>;
  KILN_GRID_STRIDE_LOOP(line, a.outer * a.inner) {
    const int64_t o = line / a.inner, i = line - o * a.inner;
    const int64_t base = o * a.n * a.inner + i;
    A acc = 0;
    for (int64_t s = 0; s < a.n; ++s) {
      const int64_t at = base + (a.reverse ? a.n - 1 - s : s) * a.inner;
      const A v = static_cast<A>(to_compute(x[at]));
      if (a.exclusive) y[at] = from_compute<T>(static_cast<compute_t<T>>(acc));
      acc += v;
      if (!a.exclusive) y[at] = from_compute<T>(static_cast<compute_t<T>>(acc));
    }
  }
}

/// Exclusive scan of v over the block (blockDim.x a multiple of 32, <= 1024); `total`
/// gets the block's sum. smem holds 32 values.
template <typename A>
__device__ __forceinline__ A block_exclusive_scan(A v, A* smem, A& total) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  A inc = v;
#pragma unroll
  for (int d = 1; d < kWarp; d *= 2) {
    const A o = shfl_up_any(inc, d);
    if (lane >= d) inc += o;
  }
  if (lane == kWarp - 1) smem[warp] = inc;
  __syncthreads();
  if (warp == 0) {
    A w = lane < warps ? smem[lane] : A(0);
#pragma unroll
    for (int d = 1; d < kWarp; d *= 2) {
      const A o = shfl_up_any(w, d);
      if (lane >= d) w += o;
    }
    if (lane < warps) smem[lane] = w;
  }
  // The lane's exclusive prefix is its left neighbour's inclusive one (no inc - v rounding).
  A excl = shfl_up_any(inc, 1);
  if (lane == 0) excl = A(0);
  __syncthreads();
  const A before = (warp ? smem[warp - 1] : A(0)) + excl;
  total = smem[warps - 1];
  __syncthreads();
  return before;
}

constexpr int kScanItems = 8;  ///< consecutive elements per thread per tile of the row scan

/// One block per row (inner == 1): tiles of kReduceBlock * kScanItems elements, each
/// thread scanning kScanItems consecutive ones, a block scan of the thread totals, and a
/// carry across tiles.
template <typename T>
__global__ void __launch_bounds__(kReduceBlock)
    cumsum_rows_kernel(const T* __restrict__ x, T* __restrict__ y, ScanArgs a) {
  using A = scan_acc_t<T>;
  KILN_SHARED_ARRAY(A, smem, kWarp);
  constexpr int64_t kTile = static_cast<int64_t>(kReduceBlock) * kScanItems;
  for (int64_t row = blockIdx.x; row < a.outer; row += gridDim.x) {
    const T* px = x + row * a.n;
    T* py = y + row * a.n;
    A carry = 0;
    for (int64_t tile = 0; tile < a.n; tile += kTile) {
      const int64_t first = tile + static_cast<int64_t>(threadIdx.x) * kScanItems;
      A v[kScanItems];
      A local = 0;
#pragma unroll
      for (int k = 0; k < kScanItems; ++k) {
        const int64_t s = first + k;  // position in scan order
        v[k] = s < a.n ? static_cast<A>(to_compute(px[a.reverse ? a.n - 1 - s : s])) : A(0);
        local += v[k];
      }
      A total;
      A run = carry + block_exclusive_scan(local, smem, total);
#pragma unroll
      for (int k = 0; k < kScanItems; ++k) {
        const int64_t s = first + k;
        if (s >= a.n) break;
        if (!a.exclusive) run += v[k];
        py[a.reverse ? a.n - 1 - s : s] = from_compute<T>(static_cast<compute_t<T>>(run));
        if (a.exclusive) run += v[k];
      }
      carry += total;
    }
  }
}

template <typename T>
class CumSumKernel final : public Kernel {
 public:
  explicit CumSumKernel(const ScanArgs& a) : a_(a) {}
  std::string tactic() const override { return rows() ? "kiln:cumsum_rows" : "kiln:cumsum_lines"; }
  Status enqueue(const LaunchArgs& la) override {
    if (a_.outer * a_.n * a_.inner == 0) return Status::ok();
    if (rows()) {
      const unsigned grid = static_cast<unsigned>(std::min<int64_t>(a_.outer, 1 << 30));
      cumsum_rows_kernel<T><<<grid, kReduceBlock, 0, la.stream>>>(la.in<T>(0), la.out<T>(0), a_);
      KILN_CUDA_CHECK_LAUNCH("cumsum_rows");
    } else {
      cumsum_lines_kernel<T><<<grid_for(a_.outer * a_.inner), kBlock, 0, la.stream>>>(
          la.in<T>(0), la.out<T>(0), a_);
      KILN_CUDA_CHECK_LAUNCH("cumsum_lines");
    }
    return Status::ok();
  }

 private:
  // Short or strided lines scan sequentially per thread; long contiguous rows per block.
  bool rows() const { return a_.inner == 1 && a_.n > 64; }
  ScanArgs a_;
};

Result<std::unique_ptr<Kernel>> create_cumsum(const KernelConfig& cfg) {
  const Operand& x = cfg.in(0);
  if (x.layout != Layout::kRowMajor) return cfg.unsupported("channels-last input");
  if (!cfg.has_input(1) || !cfg.in(1).value)
    return cfg.unsupported("axis computed at run time (the axis input must be a constant)");
  if (cfg.in(1).value->numel() != 1)
    return cfg.error(ErrorCode::kShapeMismatch, "CumSum axis must be a scalar", "");
  const int64_t rank = static_cast<int64_t>(x.rank());
  const int64_t a = cfg.in(1).value->get_i64(0);
  const int64_t axis = a < 0 ? a + rank : a;
  if (axis < 0 || axis >= rank)
    return cfg.error(ErrorCode::kBadAxis,
                     "axis " + std::to_string(a) + " is out of range for rank " +
                         std::to_string(rank),
                     "axis must lie in [-rank, rank-1]");
  ScanArgs args;
  for (int64_t d = 0; d < rank; ++d)
    (d < axis ? args.outer : d == axis ? args.n : args.inner) *= x.dims[d];
  args.exclusive = cfg.node.attr_i("exclusive", 0) != 0;
  args.reverse = cfg.node.attr_i("reverse", 0) != 0;
  return make_typed<KILN_FLOAT_TYPES, KILN_INT_TYPES>(x.dtype, cfg, [&](auto t) {
    return Result<std::unique_ptr<Kernel>>(std::unique_ptr<Kernel>(new CumSumKernel<decltype(t)>(args)));
  });
}

// ---- TopK -------------------------------------------------------------------------------
// One block per (outer, inner) line. A shared buffer of P (a power of two) entries is
// bitonic-sorted by the CPU's order (larger / smaller first, NaN above every number, ties
// to the lower index); when the line is longer than P, the best k stay at the front and
// the rest of the buffer is refilled from the line and re-sorted until the line is done.

constexpr int kTopKMaxBuffer = 4096;

struct TopKArgs {
  int64_t outer = 1, n = 1, inner = 1, k = 0;
  int buffer = 2;  ///< P
  bool largest = true;
};

template <typename C>
__device__ __forceinline__ bool nan_last_less(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (isnan(a)) return false;
    if (isnan(b)) return true;
  }
  return a < b;
}

/// Strict order of buffer entries: valid (index >= 0) before invalid, then by value, then
/// by index.
template <typename C>
__device__ __forceinline__ bool topk_before(C av, int ai, C bv, int bi, bool largest) {
  if (ai < 0) return false;
  if (bi < 0) return true;
  if (largest ? nan_last_less(bv, av) : nan_last_less(av, bv)) return true;
  if (largest ? nan_last_less(av, bv) : nan_last_less(bv, av)) return false;
  return ai < bi;
}

template <typename T>
__global__ void topk_kernel(const T* __restrict__ x, T* __restrict__ values,
                            int64_t* __restrict__ indices, TopKArgs a) {
  using C = compute_t<T>;
  extern __shared__ __align__(16) unsigned char topk_smem[];
  C* sv = reinterpret_cast<C*>(topk_smem);
  int* si = reinterpret_cast<int*>(sv + a.buffer);
  const int p = a.buffer;
  for (int64_t line = blockIdx.x; line < a.outer * a.inner; line += gridDim.x) {
    const int64_t o = line / a.inner, i = line - o * a.inner;
    const T* px = x + o * a.n * a.inner + i;
    // Fills slots [from, p) with elements next, next + 1, ... of the line.
    auto fill = [&](int from, int64_t next) {
      for (int j = from + threadIdx.x; j < p; j += blockDim.x) {
        const int64_t e = next + (j - from);
        const bool ok = e < a.n;
        sv[j] = ok ? to_compute(px[e * a.inner]) : C(0);
        si[j] = ok ? static_cast<int>(e) : -1;
      }
    };
    auto sort = [&]() {
      __syncthreads();
      for (int size = 2; size <= p; size *= 2)
        for (int stride = size / 2; stride > 0; stride /= 2) {
          for (int t = threadIdx.x; t < p / 2; t += blockDim.x) {
            const int lo = 2 * stride * (t / stride) + t % stride, hi = lo + stride;
            const bool up = (lo & size) == 0;
            const bool swap = up ? topk_before(sv[hi], si[hi], sv[lo], si[lo], a.largest)
                                 : topk_before(sv[lo], si[lo], sv[hi], si[hi], a.largest);
            if (swap) {
              const C tv = sv[lo];
              sv[lo] = sv[hi];
              sv[hi] = tv;
              const int ti = si[lo];
              si[lo] = si[hi];
              si[hi] = ti;
            }
          }
          __syncthreads();
        }
    };
    fill(0, 0);
    sort();
    for (int64_t next = p; next < a.n; next += p - a.k) {
      fill(static_cast<int>(a.k), next);
      sort();
    }
    for (int64_t j = threadIdx.x; j < a.k; j += blockDim.x) {
      const int64_t at = (o * a.k + j) * a.inner + i;
      values[at] = from_compute<T>(sv[j]);
      indices[at] = si[j];
    }
    __syncthreads();  // the buffer is refilled for the next line
  }
}

template <typename T>
class TopKKernel final : public Kernel {
 public:
  explicit TopKKernel(const TopKArgs& a) : a_(a) {}
  std::string tactic() const override { return "kiln:topk_bitonic" + std::to_string(a_.buffer); }
  Status enqueue(const LaunchArgs& la) override {
    const int64_t lines = a_.outer * a_.inner;
    if (lines == 0 || a_.k == 0) return Status::ok();
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(lines, 1 << 30));
    const int threads = std::min(std::max(a_.buffer / 2, kWarp), 512);
    const size_t smem = static_cast<size_t>(a_.buffer) * (sizeof(compute_t<T>) + sizeof(int));
    topk_kernel<T><<<grid, threads, smem, la.stream>>>(la.in<T>(0), la.out<T>(0),
                                                        la.out<int64_t>(1), a_);
    KILN_CUDA_CHECK_LAUNCH("topk");
    return Status::ok();
  }

 private:
  TopKArgs a_;
};

Result<std::unique_ptr<Kernel>> create_topk(const KernelConfig& cfg) {
  const Operand& x = cfg.in(0);
  if (x.layout != Layout::kRowMajor) return cfg.unsupported("channels-last input");
  const int64_t rank = static_cast<int64_t>(x.rank());
  const int64_t a = cfg.node.attr_i("axis", -1);
  const int64_t axis = a < 0 ? a + rank : a;
  if (axis < 0 || axis >= rank || cfg.out(0).rank() != x.rank())
    return cfg.error(ErrorCode::kBadAxis,
                     "axis " + std::to_string(a) + " is out of range for rank " +
                         std::to_string(rank),
                     "axis must lie in [-rank, rank-1]");
  TopKArgs args;
  for (int64_t d = 0; d < rank; ++d)
    (d < axis ? args.outer : d == axis ? args.n : args.inner) *= x.dims[d];
  args.k = cfg.out(0).dims[axis];  // shapes are static: k is in the output dims
  args.largest = cfg.node.attr_i("largest", 1) != 0;
  if (args.k < 0 || args.k > args.n)
    return cfg.error(ErrorCode::kInvalidArgument,
                     "TopK k = " + std::to_string(args.k) + " exceeds the axis size " +
                         std::to_string(args.n), "k must be at most the axis size");
  if (args.n > std::numeric_limits<int>::max())
    return cfg.unsupported("axis longer than 2^31 - 1");
  int64_t buffer = 2;
  while (buffer < args.n && buffer < kTopKMaxBuffer) buffer *= 2;
  // A line longer than the buffer needs room for k kept entries plus new ones.
  if (args.n > buffer && args.k > buffer / 2)
    return cfg.unsupported("k = " + std::to_string(args.k) + " on an axis of " +
                           std::to_string(args.n) + " (k > " + std::to_string(buffer / 2) +
                           " with more than " + std::to_string(buffer) + " elements)");
  args.buffer = static_cast<int>(buffer);
  return make_typed<KILN_FLOAT_TYPES, KILN_INT_TYPES>(x.dtype, cfg, [&](auto t) {
    using T = decltype(t);
    if (buffer * (sizeof(compute_t<T>) + sizeof(int)) > 48 * 1024)
      return Result<std::unique_ptr<Kernel>>(cfg.unsupported("TopK buffer over 48 KiB"));
    return Result<std::unique_ptr<Kernel>>(std::unique_ptr<Kernel>(new TopKKernel<T>(args)));
  });
}

}  // namespace

KILN_REGISTER_CUDA_KERNELS(reduce) {
  using enum ReduceKind;
  const std::pair<const char*, KernelFactory> reductions[] = {
      {"ReduceSum", create_reduce<kSum>},
      {"ReduceMean", create_reduce<kMean>},
      {"ReduceMax", create_reduce<kMax>},
      {"ReduceMin", create_reduce<kMin>},
      {"ReduceProd", create_reduce<kProd>},
      {"ReduceL1", create_reduce<kL1>},
      {"ReduceL2", create_reduce<kL2>},
      {"ReduceLogSum", create_reduce<kLogSum>},
      {"ReduceLogSumExp", create_reduce<kLogSumExp>},
      {"ReduceSumSquare", create_reduce<kSumSquare>},
      {"ArgMax", create_arg<true>},
      {"ArgMin", create_arg<false>},
      {"CumSum", create_cumsum},
      {"TopK", create_topk},
  };
  for (const auto& [name, create] : reductions) reg.add({.op_type = name, .create = create});
}

}  // namespace kiln::cuda
