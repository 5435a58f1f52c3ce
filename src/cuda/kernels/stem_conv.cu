// Dense "stem" convolution on tensor cores (see cuda/conv_nhwc.h): channels-last 16-bit X
// with C = 4 channels, W [K][R][S][C], Y = act(conv + bias) channels-last, FP32
// accumulation, one rounding.
//
// Algorithm: implicit GEMM, Y[M = output pixels][N = K] = A[M][GEMM-K] * W^T with
// GEMM-K = R*S*C (196 for a 7x7 window), A the im2col matrix that is never built: a block
// copies the input patch of its output tile into shared memory, and each MMA operand
// register is one 32-bit shared load of two channels of one tap of one pixel. The warp MMA
// is mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16} (PTX ISA 8.x, "Matrix fragments for
// mma.m16n8k16"): per k-step a thread loads A rows g and g+8 (g = lane / 4) at columns
// 2*(lane % 4) (+8), and B (the weights, [K][GEMM-K] in shared memory, rows padded by 8
// elements so that ldmatrix is conflict-free) with ldmatrix.x4.
//
// Block: 4 warps own an 8 x 16 tile of output pixels (a warp two rows of 16 = two M tiles)
// times all K channels. A row of 16 pixels makes a warp's A loads conflict-free: with C = 4
// the 8 pixels of rows g are 8 (stride 2: 16) bytes apart and the 4 lanes of a group read
// 4 consecutive words. Every A load is a per-lane base address plus a compile-time tap
// offset (two bases: the pair of taps a lane group reads is in one window row, or wraps to
// the next), so the unrolled main loop is loads and MMAs only. Blocks are persistent
// (grid = what fits on the GPU, 4 per SM) and loop over tiles: the weights (up to 28 KB)
// and bias are staged once per block, and the next tile's patch is prefetched with
// cp.async (zero-fill outside the image: the padding) while the current one is computed.
// The accumulators start at the bias (the first k-step's C operand); the epilogue applies
// the activation (one branch-free copy per activation), rounds to 16 bits into a per-warp
// staging buffer, one M tile at a time, and writes whole pixels with 16-byte coalesced
// stores. Taps beyond R*S (GEMM-K padded to a multiple of 16) read zeros on both operands.
// Measured on an H200 (ResNet-50 conv1, batch 256): 0.29 ms against cuDNN's best 0.84 ms;
// shared-memory bandwidth (the B fragments every warp reloads per tile) is the limit.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include "cuda/conv_nhwc.h"
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/mma.cuh"
#include "cuda/stem_conv_variants.h"
#include "ops/fused_conv.h"

namespace kiln::cuda {
namespace {

constexpr int kC = 4;  ///< input channels (after builder/channel_padding)

/// Launch-time geometry, passed by value.
struct StemParams {
  int h, w, oh, ow;  ///< X [N, H, W, C], Y [N, OH, OW, K]
  int pad_h, pad_w;  ///< leading pads
  int tiles_w;       ///< tiles along OW
  int tiles_img;     ///< tiles per image
  int tiles;         ///< N * tiles_img
  bool w_krsc;       ///< W memory [K][R][S][C] (else [K][C][R][S])
  bool w_vec;        ///< W is 8-byte aligned: KRSC taps are loaded 8 bytes at a time
  bool x_vec;        ///< X is 8-byte aligned: patch pixels are copied with cp.async
  bool y_vec;        ///< Y is 16-byte aligned: pixels are written with 16-byte stores
  ops::FusedEpilogue act;
};

/// Compile-time shape of one variant: window R x S, stride, K output channels.
template <int R, int S, int STRIDE, int K>
struct StemShape {
  static constexpr int kTR = 8, kTC = 16;  ///< output tile: rows x cols
  static constexpr int kWarps = kTR * kTC / 32;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kTaps = R * S;
  static constexpr int kGemmK = kTaps * kC;
  static constexpr int kKSteps = (kGemmK + 15) / 16;
  /// Weight row in shared memory, elements: GEMM-K padded to the k-steps, plus 8 so that
  /// consecutive rows are an odd number of 16-byte units apart (ldmatrix conflict-free).
  static constexpr int kWRow = kKSteps * 16 + 8;
  static constexpr int kPR = (kTR - 1) * STRIDE + R;  ///< patch rows
  static constexpr int kPC = (kTC - 1) * STRIDE + S;  ///< patch cols
  static constexpr int kPRowWords = kPC * kC / 2;     ///< 32-bit words per patch row
  static constexpr int kPatchPixels = kPR * kPC;
  static constexpr int kNTiles = K / 8;  ///< MMA N tiles (8 channels each)
  /// Staged output pixel, elements: K plus 8 so that the epilogue's 4-byte writes of 8
  /// pixels hit distinct banks.
  static constexpr int kORow = K + 8;
  /// Blocks per SM the registers are capped for (4 x 4 warps: 128 registers a thread).
  static constexpr int kMinBlocks = 4;
  static constexpr int kWeightBytes = K * kWRow * 2;
  static constexpr int kBiasBytes = K * 4;  ///< f32
  static constexpr int kPatchBytes = (kPatchPixels * kC * 2 + 15) / 16 * 16;
  static constexpr int kStageBytes = 16 * kORow * 2;  ///< per warp: one M tile
  static constexpr int kSmemBytes =
      kWeightBytes + kBiasBytes + 2 * kPatchBytes + kWarps * kStageBytes;
  static_assert(K % 16 == 0 && K <= 256, "ldmatrix.x4 loads two N tiles at a time");
  static_assert(kTC == 16, "a warp's M tile is one row of 16 pixels");
};

/// Word offset of tap t (row-major over R x S) inside the patch, for a pixel at offset 0.
template <int S, int PRowWords>
__device__ __forceinline__ constexpr int tap_offset(int t) {
  return (t / S) * PRowWords + (t % S) * (kC / 2);
}

/// Copies the input patch of tile `t` into `patch` (kPR x kPC pixels of C elements).
template <typename T, typename Sh, int STRIDE>
__device__ __forceinline__ void load_patch(const T* __restrict__ x, T* patch, int t,
                                           const StemParams& p) {
  const int n = t / p.tiles_img;
  const int r = t - n * p.tiles_img;
  const int ty = r / p.tiles_w;
  const int iy0 = ty * Sh::kTR * STRIDE - p.pad_h;
  const int ix0 = (r - ty * p.tiles_w) * Sh::kTC * STRIDE - p.pad_w;
  const T* const img = x + static_cast<int64_t>(n) * p.h * p.w * kC;
  for (int i = threadIdx.x; i < Sh::kPatchPixels; i += Sh::kThreads) {
    const int pr = i / Sh::kPC;
    const int iy = iy0 + pr, ix = ix0 + (i - pr * Sh::kPC);
    const bool inside = static_cast<unsigned>(iy) < static_cast<unsigned>(p.h) &&
                        static_cast<unsigned>(ix) < static_cast<unsigned>(p.w);
    const T* src = inside ? img + (iy * p.w + ix) * kC : x;
    if (p.x_vec) {
      cp_async8(smem_addr(patch + i * kC), src, inside ? 8 : 0);
    } else {  // unaligned X: element copies (the kernel is then not at its best)
#pragma unroll
      for (int c = 0; c < kC; ++c)
        patch[i * kC + c] = inside ? src[c] : from_compute<T>(0.0f);
    }
  }
}

/// Writes one M tile of a warp's accumulators (bias already in them) as act(acc) in T into
/// the warp's staging buffer: 16 pixels, Sh::kORow elements each.
template <typename T, typename Sh, ops::FusedActivation A>
__device__ __forceinline__ void stage_mtile(const float (&acc)[Sh::kNTiles][4],
                                            const ops::FusedEpilogue& act, uint32_t* sw, int g,
                                            int tig) {
  const ops::FusedEpilogue e{A, act.p0, act.p1};
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int nt = 0; nt < Sh::kNTiles; ++nt) {
      const float v0 = ops::apply_fused_activation<float>(e, acc[nt][2 * h]);
      const float v1 = ops::apply_fused_activation<float>(e, acc[nt][2 * h + 1]);
      sw[((h * 8 + g) * Sh::kORow + nt * 8 + 2 * tig) / 2] = pack2<T>(v0, v1);
    }
}

template <typename T, typename Sh>
__device__ __forceinline__ void stage_mtile(const float (&acc)[Sh::kNTiles][4],
                                            const ops::FusedEpilogue& act, uint32_t* sw, int g,
                                            int tig) {
  ops::visit_fused_activation(act.act, [&](auto a) {
    stage_mtile<T, Sh, decltype(a)::value>(acc, act, sw, g, tig);
  });
}

template <typename T, int R, int S, int STRIDE, int K>
__global__ void __launch_bounds__(StemShape<R, S, STRIDE, K>::kThreads,
                                  StemShape<R, S, STRIDE, K>::kMinBlocks)
    stem_conv_kernel(const T* __restrict__ x, const T* __restrict__ wt,
                     const T* __restrict__ bias, T* __restrict__ y, const StemParams p) {
  using Sh = StemShape<R, S, STRIDE, K>;
  extern __shared__ __align__(16) unsigned char smem[];
  T* const wsm = reinterpret_cast<T*>(smem);
  T* const patches = reinterpret_cast<T*>(smem + Sh::kWeightBytes + Sh::kBiasBytes);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, tig = lane % 4;
  T* const stage = reinterpret_cast<T*>(smem + Sh::kWeightBytes + Sh::kBiasBytes +
                                        2 * Sh::kPatchBytes + warp * Sh::kStageBytes);

  int t = blockIdx.x;
  if (t >= p.tiles) return;
  load_patch<T, Sh, STRIDE>(x, patches, t, p);
  cp_async_commit();

  // Weights → [K][kWRow], GEMM-K index (r * S + s) * C + c, zeros beyond GEMM-K.
  // KRSC rows are GEMM-K rows: 8-byte loads of one tap each (every block does this once).
  constexpr int kRowTaps = Sh::kWRow / kC;
  for (int i = threadIdx.x; i < K * kRowTaps; i += Sh::kThreads) {
    const int n = i / kRowTaps, tap = i - n * kRowTaps;
    T v[kC];
#pragma unroll
    for (int c = 0; c < kC; ++c) v[c] = from_compute<T>(0.0f);
    if (tap < Sh::kTaps) {
      if (p.w_krsc && p.w_vec) {
        *reinterpret_cast<uint2*>(v) =
            *reinterpret_cast<const uint2*>(wt + (n * Sh::kTaps + tap) * kC);
      } else {
#pragma unroll
        for (int c = 0; c < kC; ++c)
          v[c] = wt[p.w_krsc ? (n * Sh::kTaps + tap) * kC + c : (n * kC + c) * Sh::kTaps + tap];
      }
    }
    *reinterpret_cast<uint2*>(wsm + n * Sh::kWRow + tap * kC) = *reinterpret_cast<const uint2*>(v);
  }
  float* const bias_sm = reinterpret_cast<float*>(smem + Sh::kWeightBytes);
  for (int i = threadIdx.x; i < K; i += Sh::kThreads)
    bias_sm[i] = bias ? static_cast<float>(to_compute(bias[i])) : 0.0f;

  // A operand. Rows g and g + 8 of M tile mt are pixels (2 * warp + mt, g [+ 8]) of the
  // tile. Columns 2 * tig (+1) of a k-step's 8-column half are channels 2 * (tig % 2) (+1)
  // of tap t0 + tig / 2, t0 the half's first tap (even). So every load is a per-lane base
  // plus the compile-time offset of t0: base [0] when t0 and t0 + 1 share a window row,
  // base [1] when t0 ends a row and t0 + 1 starts the next. No address arithmetic in the
  // main loop.
  static_assert(kC == 4, "two taps per 8-column half");
  const int sub = tig / 2, cword = tig % 2;
  int abase[2][2][2];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int pix =
          (2 * warp + mt) * STRIDE * Sh::kPRowWords + (g + 8 * h) * STRIDE * (kC / 2) + cword;
      abase[mt][h][0] = pix + sub * (kC / 2);
      abase[mt][h][1] = pix + sub * (Sh::kPRowWords - (S - 1) * (kC / 2));
    }
  // B operand: lane l addresses row (l / 16) * 8 + l % 8, column ((l / 8) % 2) * 8 of a
  // pair of N tiles (ldmatrix.x4 matrices: tile 0 k-lo, tile 0 k-hi, tile 1 k-lo, k-hi).
  const uint32_t wbase =
      smem_addr(wsm) + (((lane / 16) * 8 + lane % 8) * Sh::kWRow + ((lane / 8) % 2) * 8) * 2;
  // Copy-out: lane = (pixel pl of a group, 16-byte chunk ch of the pixel).
  constexpr int kChunks = K / 8;
  constexpr int kPixPerIter = 32 / kChunks;
  const int ch = lane % kChunks, pl = lane / kChunks;

  for (int buf = 0; t < p.tiles; t += gridDim.x, buf ^= 1) {
    const int next = t + gridDim.x;
    if (next < p.tiles)
      load_patch<T, Sh, STRIDE>(x, patches + (buf ^ 1) * (Sh::kPatchBytes / 2), next, p);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();  // this tile's patch (and, the first time, the weights) are in place

    // Shared addresses of this lane's A rows in the patch; every load adds a constant.
    const uint32_t pw = smem_addr(patches + buf * (Sh::kPatchBytes / 2));
    uint32_t aaddr[2][2][2];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int w = 0; w < 2; ++w) aaddr[mt][h][w] = pw + 4 * abase[mt][h][w];

    float acc[2][Sh::kNTiles][4];
#pragma unroll
    for (int ks = 0; ks < Sh::kKSteps; ++ks) {
      uint32_t a[2][4];
#pragma unroll
      for (int hk = 0; hk < 2; ++hk) {
        const int t0 = (ks * 2 + hk) * 2;  // compile-time after unrolling
        const int wrap = t0 % S == S - 1 ? 1 : 0;
        const uint32_t off = 4 * tap_offset<S, Sh::kPRowWords>(t0);
        // Taps past R*S (GEMM-K padding) read zero: all of them, or only t0 + 1.
        const bool none = t0 >= Sh::kTaps;
        const bool lo_only = t0 + 1 >= Sh::kTaps;
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
          for (int h = 0; h < 2; ++h)
            a[mt][hk * 2 + h] = none || (lo_only && sub) ? 0u : lds32(aaddr[mt][h][wrap] + off);
      }
#pragma unroll
      for (int np = 0; np < Sh::kNTiles / 2; ++np) {
        uint32_t bf[4];
        ldmatrix_x4(bf, wbase + (np * 16 * Sh::kWRow + ks * 16) * 2);
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int nt = 2 * np + j;
          if (ks == 0) {  // the accumulators start at the bias
            const float2 bv = *reinterpret_cast<const float2*>(bias_sm + nt * 8 + 2 * tig);
#pragma unroll
            for (int mt = 0; mt < 2; ++mt)
              mma16816<T>(acc[mt][nt], a[mt], bf[2 * j], bf[2 * j + 1], bv.x, bv.y);
          } else {
#pragma unroll
            for (int mt = 0; mt < 2; ++mt)
              mma16816<T>(acc[mt][nt], a[mt], bf[2 * j], bf[2 * j + 1]);
          }
        }
      }
    }

    // Epilogue, one M tile (16 pixels of one tile row) at a time: act(acc) rounded once,
    // staged per pixel, written as whole pixels with coalesced 16-byte stores.
    const int n = t / p.tiles_img;
    const int r = t - n * p.tiles_img;
    const int ty = r / p.tiles_w;
    const int ox0 = (r - ty * p.tiles_w) * Sh::kTC;
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
      stage_mtile<T, Sh>(acc[mt], p.act, reinterpret_cast<uint32_t*>(stage), g, tig);
      __syncwarp();
      const int oy = ty * Sh::kTR + 2 * warp + mt;
      if (oy < p.oh) {
        T* const row = y + (static_cast<int64_t>(n) * p.oh + oy) * p.ow * K + ch * 8;
#pragma unroll
        for (int it = 0; it < 16 / kPixPerIter; ++it) {
          const int px = it * kPixPerIter + pl;
          const int ox = ox0 + px;
          if (ox >= p.ow) continue;
          T* const dst = row + ox * K;
          const T* const src = stage + px * Sh::kORow + ch * 8;
          if (p.y_vec) {
            *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
          } else {
#pragma unroll
            for (int e = 0; e < 8; ++e) dst[e] = src[e];
          }
        }
      }
      __syncwarp();  // the staging buffer is reused by the next M tile
    }
    __syncthreads();  // every warp is done with this patch before it is refilled
  }
  cp_async_wait<0>();
}

using LaunchFn = Status (*)(const void* x, const void* w, const void* b, void* y,
                            const StemParams& p, int grid, cudaStream_t stream);

template <typename T, int R, int S, int STRIDE, int K>
Status launch(const void* x, const void* w, const void* b, void* y, const StemParams& p,
              int grid, cudaStream_t stream) {
  using Sh = StemShape<R, S, STRIDE, K>;
  stem_conv_kernel<T, R, S, STRIDE, K><<<grid, Sh::kThreads, Sh::kSmemBytes, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
      static_cast<T*>(y), p);
  KILN_CUDA_CHECK_LAUNCH("stem_conv_kernel");
  return Status::ok();
}

/// A compiled variant: its launcher, shared memory, threads and kernel symbol.
struct Variant {
  LaunchFn fn = nullptr;
  const void* kernel = nullptr;
  int smem = 0, threads = 0;
  int tile_rows = 0, tile_cols = 0;
};

template <typename T, int R, int S, int STRIDE, int K>
Variant variant() {
  using Sh = StemShape<R, S, STRIDE, K>;
  return {&launch<T, R, S, STRIDE, K>,
          reinterpret_cast<const void*>(&stem_conv_kernel<T, R, S, STRIDE, K>),
          Sh::kSmemBytes, Sh::kThreads, Sh::kTR, Sh::kTC};
}

template <typename T>
Variant pick_shape(const ConvNhwcGeometry& g) {
  if (!stem_conv_has_variant(g.kh, g.kw, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w,
                             g.k))
    return {};
  // One instantiation per entry of kStemConvVariants (stem_conv_variants.h).
  const int64_t win = g.kh, s = g.stride_h, k = g.k;
  if (win == 7 && s == 2 && k == 64) return variant<T, 7, 7, 2, 64>();
  if (win == 3 && s == 2 && k == 16) return variant<T, 3, 3, 2, 16>();
  if (win == 3 && s == 2 && k == 32) return variant<T, 3, 3, 2, 32>();
  if (win == 3 && s == 1 && k == 32) return variant<T, 3, 3, 1, 32>();
  if (win == 3 && s == 1 && k == 64) return variant<T, 3, 3, 1, 64>();
  return {};
}

const char* dtype_tag(DataType dt) { return dt == DataType::kF16 ? "f16" : "bf16"; }

class StemConvKernel final : public Kernel {
 public:
  StemConvKernel(const ConvNhwcGeometry& g, const Variant& v, int grid, std::string tactic)
      : g_(g), v_(v), grid_(grid), tactic_(std::move(tactic)) {
    p_.h = static_cast<int>(g.h);
    p_.w = static_cast<int>(g.w);
    p_.oh = static_cast<int>(g.oh);
    p_.ow = static_cast<int>(g.ow);
    p_.pad_h = static_cast<int>(g.pad_h);
    p_.pad_w = static_cast<int>(g.pad_w);
    p_.tiles_w = static_cast<int>((g.ow + v.tile_cols - 1) / v.tile_cols);
    p_.tiles_img = p_.tiles_w * static_cast<int>((g.oh + v.tile_rows - 1) / v.tile_rows);
    p_.tiles = static_cast<int>(g.n) * p_.tiles_img;
    p_.w_krsc = g.w_krsc;
    p_.act = g.act;
  }

  std::string tactic() const override { return tactic_; }
  /// The candidate's identity for replay (cudnn_conv.cc): the geometry picks the rest.
  std::string tactic_params() const override { return kStemConvTacticParams; }

  Status enqueue(const LaunchArgs& a) override {
    if (p_.tiles == 0) return Status::ok();  // empty output
    StemParams p = p_;
    p.x_vec = reinterpret_cast<uintptr_t>(a.inputs[0]) % 8 == 0;
    p.w_vec = reinterpret_cast<uintptr_t>(a.inputs[1]) % 8 == 0;
    p.y_vec = reinterpret_cast<uintptr_t>(a.outputs[0]) % 16 == 0;
    return v_.fn(a.inputs[0], a.inputs[1], g_.bias ? a.inputs[2] : nullptr, a.outputs[0], p,
                 std::min(grid_, p.tiles), a.stream);
  }

 private:
  ConvNhwcGeometry g_;
  Variant v_;
  int grid_;
  std::string tactic_;
  StemParams p_{};
};

}  // namespace

Result<std::unique_ptr<Kernel>> make_stem_conv_kernel(const KernelConfig& cfg,
                                                      const ConvNhwcGeometry& g) {
  if (g.c != kC)
    return cfg.unsupported(std::to_string(g.c) + " input channels (the stem kernel runs " +
                           std::to_string(kC) + ")");
  const Variant v = g.dt == DataType::kF16 ? pick_shape<__half>(g) : pick_shape<__nv_bfloat16>(g);
  const std::string shape = std::to_string(g.kh) + "x" + std::to_string(g.kw) + "s" +
                            std::to_string(g.stride_h) + "_c" + std::to_string(g.c) + "k" +
                            std::to_string(g.k);
  if (!v.fn)
    return cfg.unsupported("a " + shape +
                           " convolution (the stem kernel is compiled for 7x7s2 K64, 3x3s2 "
                           "K16/K32 and 3x3s1 K32/K64)");
  int per_sm = 0;
  KILN_CUDA_CHECK(
      cudaFuncSetAttribute(v.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, v.smem));
  KILN_CUDA_CHECK(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, v.kernel, v.threads, v.smem));
  if (per_sm < 1) return cfg.unsupported("the stem kernel does not fit an SM (" + shape + ")");
  const int grid = std::max(1, per_sm * std::max(1, g.sm_count));
  return std::unique_ptr<Kernel>(std::make_unique<StemConvKernel>(
      g, v, grid, "kiln:stem_conv_" + shape + "_" + dtype_tag(g.dt)));
}

}  // namespace kiln::cuda
