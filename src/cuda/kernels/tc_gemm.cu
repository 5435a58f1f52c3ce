// kiln's tensor-core GEMM with a fused epilogue and cluster split-K (see cuda/tc_gemm.h):
// Y[M][N] = act(alpha · X[M][K] · W[N][K]ᵀ + bias[N] + Z[M][N]), 16-bit operands, FP32
// accumulation, one rounding.
//
// CTA: BM x BN outputs, a 32x32 tile per warp (2 x 4 MMA tiles of m16n8), GEMM-K in steps
// of kBK = 32. Both operands are K-contiguous, so each step copies BM + BN rows of 64 bytes
// with 16-byte cp.async into rows padded to 80 bytes (eight consecutive rows start in
// distinct 16-byte bank groups: ldmatrix is conflict-free without a swizzle), four stages
// deep. A fragments come from ldmatrix.x4 over rows, B fragments from ldmatrix.x4 over W's
// rows (W[N][K] row-major is the column-major B that mma.sync's .col wants).
//
// Epilogue and split-K: the grid's z dim is the split of GEMM-K, and the splits of a tile
// form one cluster (cluster dims 1 x 1 x S). Every CTA stores its FP32 tile in its own
// shared memory (the pipeline's, reused); after a cluster barrier CTA r owns rows
// [r·BM/S, (r+1)·BM/S) of the tile, sums them over the S CTAs' shared memory (DSMEM, split
// order: deterministic), applies alpha, bias, residual and the activation, and writes rows
// with 8-byte stores (consecutive threads, consecutive columns). A second barrier keeps
// every CTA's shared memory alive until the others have read it; S = 1 needs neither
// barrier. A thread's four columns are the same in every row it writes, so it loads their
// bias before the main loop; the row loop is compiled once per activation (write_rows).
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/mma.cuh"
#include "cuda/tc_gemm.h"

namespace kiln::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kBK = 32;          ///< GEMM-K per pipeline stage
constexpr int kStages = 4;       ///< pipeline depth
constexpr int kRow = kBK + 8;    ///< shared row, elements (80 bytes)
constexpr int kMaxSplits = 8;    ///< the portable cluster size

/// Launch-time values, passed by value.
struct TcParams {
  int m, n, k;
  int k_tiles;    ///< ceil(K / kBK)
  float alpha;
  bool vec_in;    ///< X and W 16-byte aligned and K % 8 == 0: 16-byte cp.async
  bool vec_out;   ///< Y and Z 8-byte aligned and N % 4 == 0: 8-byte epilogue accesses
  ops::FusedEpilogue act;
};

template <int BM, int BN>
struct TcShape {
  static constexpr int kWarpsM = BM / 32, kWarpsN = BN / 32;
  static constexpr int kThreads = kWarpsM * kWarpsN * 32;
  static constexpr int kStageElems = (BM + BN) * kRow;
  static constexpr int kPipeBytes = kStages * kStageElems * 2;
  /// FP32 tile row in shared memory: BN + 8 floats, so that the fragment stores of a
  /// half-warp (8 rows x 4 float2) hit distinct banks.
  static constexpr int kOutRow = BN + 8;
  static constexpr int kOutBytes = BM * kOutRow * 4;
  static constexpr int kSmem = kPipeBytes > kOutBytes ? kPipeBytes : kOutBytes;
  static_assert(BM % 32 == 0 && BN % 32 == 0, "32x32 warp tiles");
};

/// Copies rows [row0, row0 + ROWS) x columns [k0, k0 + kBK) of a row-major matrix with
/// `rows` rows of K elements into `sm` ([ROWS][kRow]); zeros outside the matrix.
template <typename T, int ROWS, int THREADS>
__device__ __forceinline__ void load_rows(T* sm, const T* __restrict__ g, int rows, int row0,
                                          int k0, int k, bool vec) {
  if (vec) {
    constexpr int kChunks = ROWS * (kBK / 8);  // 16-byte chunks
#pragma unroll
    for (int c0 = 0; c0 < kChunks; c0 += THREADS) {
      const int c = c0 + static_cast<int>(threadIdx.x);
      if (kChunks % THREADS != 0 && c >= kChunks) break;
      const int r = c / (kBK / 8), col = (c % (kBK / 8)) * 8;
      const int gr = row0 + r, gk = k0 + col;
      const bool inside = gr < rows && gk < k;  // K % 8 == 0: a chunk is all in or all out
      const T* src = inside ? g + static_cast<int64_t>(gr) * k + gk : g;
      cp_async16(smem_addr(sm + r * kRow + col), src, inside ? 16 : 0);
    }
  } else {  // unaligned operands or K % 8 != 0: element copies (correct, not fast)
    for (int e = threadIdx.x; e < ROWS * kBK; e += THREADS) {
      const int r = e / kBK, col = e % kBK;
      const int gr = row0 + r, gk = k0 + col;
      sm[r * kRow + col] = gr < rows && gk < k ? g[static_cast<int64_t>(gr) * k + gk]
                                               : from_compute<T>(0.0f);
    }
  }
}

/// Writes rows [r0, r1) of the CTA's tile (bias in `bq`, this thread's four columns at
/// `qc`): the sum of the splits' FP32 tiles `part` (in split order: the same sum on every
/// run), act(alpha·sum + bias + z) rounded once. One copy per activation, chosen once per
/// CTA: a switch per element made the kernel 200 KB of code, and its warps stalled on
/// instruction fetch (Nsight Compute: 63% of their cycles).
template <typename T, int kOutRow, int kQuads, int kRowStep, ops::FusedActivation A>
__device__ __forceinline__ void write_rows(const float* part, cg::cluster_group& cluster,
                                           int split, int splits, int r0, int r1, int m0,
                                           int gn, int qc, const float (&bq)[4], const T* z,
                                           T* y, const TcParams& p) {
  const ops::FusedEpilogue act{A, p.act.p0, p.act.p1};
#pragma unroll 2
  for (int r = r0 + static_cast<int>(threadIdx.x) / kQuads; r < r1; r += kRowStep) {
    const int gm = m0 + r;
    if (gm >= p.m) break;
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int s = 0; s < splits; ++s) {
      const float* tile = s == split ? part : cluster.map_shared_rank(part, s);
      const float4 t = *reinterpret_cast<const float4*>(tile + r * kOutRow + qc);
      v.x += t.x;
      v.y += t.y;
      v.z += t.z;
      v.w += t.w;
    }
    const int64_t at = static_cast<int64_t>(gm) * p.n + gn;
    float o[4] = {v.x * p.alpha + bq[0], v.y * p.alpha + bq[1], v.z * p.alpha + bq[2],
                  v.w * p.alpha + bq[3]};
    if (p.vec_out) {  // N % 4 == 0: the four columns are inside
      if (z) {
        const uint2 zr = *reinterpret_cast<const uint2*>(z + at);
        const T* zv = reinterpret_cast<const T*>(&zr);
#pragma unroll
        for (int j = 0; j < 4; ++j) o[j] += to_compute(zv[j]);
      }
      T out[4];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        out[j] = from_compute<T>(ops::apply_fused_activation<float>(act, o[j]));
      *reinterpret_cast<uint2*>(y + at) = *reinterpret_cast<const uint2*>(out);
    } else {
      for (int j = 0; j < 4 && gn + j < p.n; ++j) {
        const float v1 = z ? o[j] + to_compute(z[at + j]) : o[j];
        y[at + j] = from_compute<T>(ops::apply_fused_activation<float>(act, v1));
      }
    }
  }
}

template <typename T, int BM, int BN>
__global__ void __launch_bounds__(TcShape<BM, BN>::kThreads)
    tc_gemm_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                   const T* __restrict__ z, T* __restrict__ y, const TcParams p) {
  using Sh = TcShape<BM, BN>;
  extern __shared__ __align__(16) unsigned char smem[];
  T* const pipe = reinterpret_cast<T*>(smem);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / Sh::kWarpsN, wn = warp % Sh::kWarpsN;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int splits = gridDim.z, split = blockIdx.z;
  // This split's K-steps: an even share of the k_tiles.
  const int kt0 = p.k_tiles * split / splits;
  const int nk = p.k_tiles * (split + 1) / splits - kt0;

  // Epilogue mapping: a thread owns four columns (fixed) of every kRowStep-th row, so its
  // bias values are loaded now, their latency hidden by the main loop.
  constexpr int kQuads = BN / 4;
  static_assert(Sh::kThreads % kQuads == 0, "a thread's columns stay fixed");
  constexpr int kRowStep = Sh::kThreads / kQuads;
  const int qc = (threadIdx.x % kQuads) * 4, gn = n0 + qc;
  float bq[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (bias)
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (gn + j < p.n) bq[j] = to_compute(bias[gn + j]);

  auto load = [&](int i) {  // K-step kt0 + i into stage i % kStages
    T* const a = pipe + (i % kStages) * Sh::kStageElems;
    const int k0 = (kt0 + i) * kBK;
    load_rows<T, BM, Sh::kThreads>(a, x, p.m, m0, k0, p.k, p.vec_in);
    load_rows<T, BN, Sh::kThreads>(a + BM * kRow, w, p.n, n0, k0, p.k, p.vec_in);
  };
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) {
    if (i < nk) load(i);
    cp_async_commit();
  }

  // ldmatrix addresses. A: lanes 0-15 rows 0-15 at k 0, lanes 16-31 rows 0-15 at k 8 (the
  // fragment's a0..a3). B: lane l row (l / 16) * 8 + l % 8, k ((l / 8) % 2) * 8: two N
  // tiles (k-lo, k-hi each) per ldmatrix.x4.
  const int a_off = (wm * 32 + lane % 16) * kRow + (lane / 16) * 8;
  const int b_off = BM * kRow + (wn * 32 + (lane / 16) * 8 + lane % 8) * kRow + ((lane / 8) % 2) * 8;
  float acc[2][4][4] = {};
  for (int i = 0; i < nk; ++i) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // step i is in place; every warp is done with step i - 1's stage
    if (i + kStages - 1 < nk) load(i + kStages - 1);
    cp_async_commit();
    const uint32_t stage = smem_addr(pipe + (i % kStages) * Sh::kStageElems);
#pragma unroll
    for (int ks = 0; ks < kBK / 16; ++ks) {
      uint32_t a[2][4], b[2][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
        ldmatrix_x4(a[mt], stage + (a_off + mt * 16 * kRow + ks * 16) * 2);
#pragma unroll
      for (int np = 0; np < 2; ++np)
        ldmatrix_x4(b[np], stage + (b_off + np * 16 * kRow + ks * 16) * 2);
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)
          mma16816<T>(acc[mt][nt], a[mt], b[nt / 2][(nt % 2) * 2], b[nt / 2][(nt % 2) * 2 + 1]);
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the pipeline's shared memory becomes this CTA's FP32 tile

  float* const part = reinterpret_cast<float*>(smem);
  const int g = lane / 4, tig = lane % 4;
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = wm * 32 + mt * 16 + h * 8 + g, c = wn * 32 + nt * 8 + 2 * tig;
        *reinterpret_cast<float2*>(part + r * Sh::kOutRow + c) =
            make_float2(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
      }
  cg::cluster_group cluster = cg::this_cluster();
  if (splits > 1) cluster.sync();  // every split's tile is in its CTA's shared memory
  else __syncthreads();

  const int r0 = BM * split / splits, r1 = BM * (split + 1) / splits;
  if (gn < p.n) {
    ops::visit_fused_activation(p.act.act, [&](auto a) {
      write_rows<T, Sh::kOutRow, kQuads, kRowStep, decltype(a)::value>(
          part, cluster, split, splits, r0, r1, m0, gn, qc, bq, z, y, p);
    });
  }
  if (splits > 1) cluster.sync();  // the other CTAs have read this one's tile
}

/// The launch configuration of `grid` whose z dim (the splits of a tile) is one cluster.
struct SplitLaunch {
  cudaLaunchAttribute attr[1];
  cudaLaunchConfig_t cfg = {};
  SplitLaunch(dim3 grid, int threads, int smem, cudaStream_t stream) {
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = 1;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = grid.z;
    cfg.gridDim = grid;
    cfg.blockDim = dim3(threads);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  SplitLaunch(const SplitLaunch&) = delete;  // cfg points at attr
  SplitLaunch& operator=(const SplitLaunch&) = delete;
};

using LaunchFn = Status (*)(const TcParams& p, dim3 grid, const void* x, const void* w,
                            const void* b, const void* z, void* y, cudaStream_t stream);

template <typename T, int BM, int BN>
Status launch(const TcParams& p, dim3 grid, const void* x, const void* w, const void* b,
              const void* z, void* y, cudaStream_t stream) {
  using Sh = TcShape<BM, BN>;
  const SplitLaunch l(grid, Sh::kThreads, Sh::kSmem, stream);
  KILN_CUDA_CHECK(cudaLaunchKernelEx(&l.cfg, tc_gemm_kernel<T, BM, BN>, static_cast<const T*>(x),
                                     static_cast<const T*>(w), static_cast<const T*>(b),
                                     static_cast<const T*>(z), static_cast<T*>(y), p));
  return Status::ok();
}

/// A compiled tile: its launcher, kernel symbol, threads and shared memory.
struct Variant {
  LaunchFn fn = nullptr;
  const void* kernel = nullptr;
  int threads = 0, smem = 0;
};

template <typename T, int BM, int BN>
Variant variant() {
  using Sh = TcShape<BM, BN>;
  return {&launch<T, BM, BN>, reinterpret_cast<const void*>(&tc_gemm_kernel<T, BM, BN>),
          Sh::kThreads, Sh::kSmem};
}

/// The compiled tiles (tc_gemm.h): one instantiation per (dtype, BM, BN).
template <typename T>
Variant pick(int bm, int bn) {
  if (bm == 32 && bn == 64) return variant<T, 32, 64>();
  if (bm == 64 && bn == 64) return variant<T, 64, 64>();
  if (bm == 64 && bn == 128) return variant<T, 64, 128>();
  if (bm == 128 && bn == 64) return variant<T, 128, 64>();
  if (bm == 128 && bn == 128) return variant<T, 128, 128>();
  return {};
}

class TcGemmKernel final : public Kernel {
 public:
  TcGemmKernel(const TcGemmSpec& s, const TcGemmTile& t, const Variant& v, std::string tactic)
      : s_(s), t_(t), v_(v), tactic_(std::move(tactic)) {
    p_.m = static_cast<int>(s.m);
    p_.n = static_cast<int>(s.n);
    p_.k = static_cast<int>(s.k);
    p_.k_tiles = static_cast<int>((s.k + kBK - 1) / kBK);
    p_.alpha = s.alpha;
    p_.act = s.act;
    grid_ = dim3(static_cast<unsigned>((s.n + t.bn - 1) / t.bn),
                 static_cast<unsigned>((s.m + t.bm - 1) / t.bm), static_cast<unsigned>(t.splits));
  }

  std::string tactic() const override { return tactic_; }
  std::string tactic_params() const override { return tc_gemm_params(t_); }

  Status enqueue(const LaunchArgs& a) override {
    if (s_.m == 0 || s_.n == 0) return Status::ok();
    auto in = [&](int i) { return i >= 0 ? a.inputs[i] : nullptr; };
    const void *x = in(s_.x_input), *w = in(s_.w_input), *z = in(s_.z_input);
    void* y = a.outputs[0];
    auto aligned = [](const void* ptr, uintptr_t n) {
      return reinterpret_cast<uintptr_t>(ptr) % n == 0;
    };
    TcParams p = p_;
    p.vec_in = s_.k % 8 == 0 && aligned(x, 16) && aligned(w, 16);
    p.vec_out = s_.n % 4 == 0 && aligned(y, 8) && aligned(z, 8);
    return v_.fn(p, grid_, x, w, in(s_.bias_input), z, y, a.stream);
  }

 private:
  TcGemmSpec s_;
  TcGemmTile t_;
  Variant v_;
  std::string tactic_;
  TcParams p_{};
  dim3 grid_;
};

}  // namespace

Result<std::unique_ptr<Kernel>> make_tc_gemm_kernel(const KernelConfig& cfg, const TcGemmSpec& s,
                                                    const TcGemmTile& t) {
  if (s.dt != DataType::kF16 && s.dt != DataType::kBF16)
    return cfg.unsupported(std::string("dtype ") + dtype_name(s.dt) +
                           " (the tensor-core GEMM runs f16 and bf16)");
  if (cfg.res.cc_major != 0 && cfg.res.cc_major < 9)
    return cfg.unsupported("compute capability below 9.0 (the tensor-core GEMM's split-K "
                           "uses thread-block clusters)");
  const Variant v = s.dt == DataType::kF16 ? pick<__half>(t.bm, t.bn) : pick<__nv_bfloat16>(t.bm, t.bn);
  const std::string name = std::to_string(t.bm) + "x" + std::to_string(t.bn);
  if (!v.fn) return cfg.unsupported("tile " + name + " is not compiled");
  const int64_t k_tiles = (s.k + kBK - 1) / kBK;
  if (t.splits < 1 || t.splits > kMaxSplits || (t.splits > 1 && t.splits > k_tiles))
    return cfg.unsupported("split-K " + std::to_string(t.splits) + " for GEMM-K " +
                           std::to_string(s.k) + " (1.." + std::to_string(kMaxSplits) +
                           ", at most one split per " + std::to_string(kBK) + " of K)");
  constexpr int64_t kMax = int64_t{1} << 31;
  if (s.m < 0 || s.n < 0 || s.k < 0 || s.m * s.k >= kMax || s.n * s.k >= kMax ||
      s.m * s.n >= kMax || (s.m + t.bm - 1) / t.bm > 65535)
    return cfg.unsupported("a GEMM of " + std::to_string(s.m) + " x " + std::to_string(s.n) +
                           " x " + std::to_string(s.k) + " (operands of 2^31 elements or more)");
  KILN_CUDA_CHECK(
      cudaFuncSetAttribute(v.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, v.smem));
  if (t.splits > 1) {  // the cluster must fit on the GPU
    const SplitLaunch l(dim3(1, 1, t.splits), v.threads, v.smem, nullptr);
    int clusters = 0;
    KILN_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, v.kernel, &l.cfg));
    if (clusters < 1)
      return cfg.unsupported("a cluster of " + std::to_string(t.splits) + " " + name +
                             " CTAs does not fit on this GPU");
  }
  const char* dt = s.dt == DataType::kF16 ? "f16" : "bf16";
  return std::unique_ptr<Kernel>(std::make_unique<TcGemmKernel>(
      s, t, v, "kiln:tc_gemm_" + name + "_splitk" + std::to_string(t.splits) + "_" + dt));
}

}  // namespace kiln::cuda
