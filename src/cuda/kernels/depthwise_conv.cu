// Depthwise 2-D convolution over channels-last tensors (see cuda/conv_nhwc.h), with
// FusedConv's epilogue act(conv + bias + residual) applied in f32 before the one rounding.
//
// Design, for bandwidth: a thread owns a vector of V channels (16 bytes where C allows)
// and P adjacent outputs along W. A block stages the weights of its channel slice in
// shared memory as f32 [tap][channel]: W's [C][kh*kw] memory makes that slice one
// contiguous read, and afterwards every tap is one conflict-free vector load per P outputs.
// For the specialised windows (3x3 and 5x5, width stride 1 or 2, width dilation 1) the
// input columns of one row that the P outputs share are loaded once into registers;
// other windows load per tap and rely on L1. Rows outside the input are skipped, columns
// outside it read as zero, so any padding (asymmetric, SAME_*) needs no special case.
// Threads of a warp cover consecutive channel vectors, then consecutive output chunks, so
// every load and store is coalesced. Blocks stride over the output chunks so that the
// weight staging is amortised over many outputs. Indices are 32-bit (tensors < 2^31
// elements, checked by the factory); chunk decoding uses FastDiv.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "cuda/conv_nhwc.h"
#include "cuda/kernels/common.cuh"
#include "ops/fused_conv.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;
/// Most channel vectors per block: beyond that blocks split the channels.
constexpr int kMaxBlockVectors = 128;
/// Shared memory for a block's weights: the slice is narrowed to stay under the target (so
/// several blocks fit an SM); a single channel vector may use up to the hard limit.
constexpr int64_t kWeightSmemTarget = 24 * 1024;
constexpr int64_t kWeightSmemMax = 48 * 1024;

/// Launch-time geometry, passed by value.
struct DwParams {
  int c, h, w, oh, ow;
  int kh, kw, sh, sw, dh, dw, ph, pw;
  int nvec;       ///< C / V channel vectors
  int bx, by;     ///< block: bx channel vectors x by output chunks
  int ow_chunks;  ///< ceil(OW / P)
  uint32_t chunks;  ///< N * OH * ow_chunks
  FastDiv div_chunks;  ///< by ow_chunks
  FastDiv div_oh;      ///< by OH
  bool z_nhwc;
  ops::FusedEpilogue act;
};

/// Window specialisation: KH x KW taps with width stride SW (0 = all runtime), P outputs
/// per thread. A fixed window holds the `span` input columns of its P outputs in registers.
template <int KH, int KW, int SW, int P>
struct Tile {
  static constexpr bool kFixed = KH > 0;
  static constexpr int kKh = KH, kKw = KW, kSw = SW, kP = P;
  static constexpr int kSpan = kFixed ? (P - 1) * SW + KW : 1;
  static_assert(P >= 1 && kSpan >= 1, "a tile computes at least one output");
};
using Tile3x3S1 = Tile<3, 3, 1, 4>;
using Tile3x3S2 = Tile<3, 3, 2, 2>;
using Tile5x5S1 = Tile<5, 5, 1, 4>;
using Tile5x5S2 = Tile<5, 5, 2, 2>;
using TileGeneric = Tile<0, 0, 0, 2>;

enum class TileKind { k3x3S1, k3x3S2, k5x5S1, k5x5S2, kGeneric };

/// Outputs per thread of each tile (host side).
int tile_outputs(TileKind k) {
  switch (k) {
    case TileKind::k3x3S1: return Tile3x3S1::kP;
    case TileKind::k3x3S2: return Tile3x3S2::kP;
    case TileKind::k5x5S1: return Tile5x5S1::kP;
    case TileKind::k5x5S2: return Tile5x5S2::kP;
    case TileKind::kGeneric: return TileGeneric::kP;
  }
  return 1;
}

/// V adjacent elements, loaded and stored as one access of V * sizeof(T) bytes.
template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

template <typename T, int V>
__device__ __forceinline__ Vec<T, V> zero_vec() {
  Vec<T, V> r;
#pragma unroll
  for (int i = 0; i < V; ++i) r.v[i] = from_compute<T>(compute_t<T>(0));
  return r;
}

/// V consecutive f32 weights from shared memory (16-byte aligned when V % 4 == 0).
template <int V>
__device__ __forceinline__ void load_weights(const float* p, float (&out)[V]) {
  if constexpr (V % 4 == 0) {
#pragma unroll
    for (int i = 0; i < V; i += 4) {
      const float4 q = *reinterpret_cast<const float4*>(p + i);
      out[i] = q.x;
      out[i + 1] = q.y;
      out[i + 2] = q.z;
      out[i + 3] = q.w;
    }
  } else if constexpr (V == 2) {
    const float2 q = *reinterpret_cast<const float2*>(p);
    out[0] = q.x;
    out[1] = q.y;
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) out[i] = p[i];
  }
}

template <typename T, int V, typename S>
__global__ void __launch_bounds__(kThreads)
    dwconv_nhwc_kernel(const T* __restrict__ x, const T* __restrict__ wt,
                       const T* __restrict__ bias, const T* __restrict__ z, T* __restrict__ y,
                       const DwParams p) {
  using VecT = Vec<T, V>;
  constexpr int P = S::kP;
  extern __shared__ float4 smem_raw[];
  float* const sweights = reinterpret_cast<float*>(smem_raw);

  const int kh_n = S::kFixed ? S::kKh : p.kh;
  const int kw_n = S::kFixed ? S::kKw : p.kw;
  const int sw = S::kFixed ? S::kSw : p.sw;
  const int taps = kh_n * kw_n;
  const int cw = p.bx * V;  // channels of this block's slice = row length of sweights
  const int c0 = blockIdx.y * cw;
  const int cb = min(cw, p.c - c0);
  const T* const wblk = wt + c0 * taps;
  for (int i = threadIdx.x; i < cb * taps; i += blockDim.x) {
    const int cl = i / taps;
    sweights[(i - cl * taps) * cw + cl] = static_cast<float>(to_compute(wblk[i]));
  }
  __syncthreads();

  const int tx = threadIdx.x % p.bx, ty = threadIdx.x / p.bx;
  const int cv = blockIdx.y * p.bx + tx;
  if (ty >= p.by || cv >= p.nvec) return;
  const int ch = cv * V;
  const float* const wv = sweights + tx * V;
  float b[V];
#pragma unroll
  for (int i = 0; i < V; ++i) b[i] = bias ? static_cast<float>(to_compute(bias[ch + i])) : 0.0f;
  const int plane = p.oh * p.ow;

  for (uint32_t m = blockIdx.x * p.by + ty; m < p.chunks; m += gridDim.x * p.by) {
    const uint32_t q = p.div_chunks.div(m);  // n * OH + oh
    const int ow0 = static_cast<int>(m - q * p.ow_chunks) * P;
    const int n = static_cast<int>(p.div_oh.div(q));
    const int oh = static_cast<int>(q) - n * p.oh;
    const int iw0 = ow0 * sw - p.pw;
    float acc[P][V];
#pragma unroll
    for (int o = 0; o < P; ++o)
#pragma unroll
      for (int i = 0; i < V; ++i) acc[o][i] = 0.0f;

#pragma unroll(S::kFixed ? S::kKh : 1)
    for (int r = 0; r < kh_n; ++r) {
      const int ih = oh * p.sh - p.ph + r * p.dh;
      if (static_cast<unsigned>(ih) >= static_cast<unsigned>(p.h)) continue;
      const T* const row = x + (n * p.h + ih) * p.w * p.c + ch;  // (n, ih, 0, ch)
      if constexpr (S::kFixed) {
        VecT xr[S::kSpan];
#pragma unroll
        for (int j = 0; j < S::kSpan; ++j) {
          const int iw = iw0 + j;
          xr[j] = static_cast<unsigned>(iw) < static_cast<unsigned>(p.w)
                      ? *reinterpret_cast<const VecT*>(row + iw * p.c)
                      : zero_vec<T, V>();
        }
#pragma unroll
        for (int k = 0; k < S::kKw; ++k) {
          float wk[V];
          load_weights<V>(wv + (r * S::kKw + k) * cw, wk);
#pragma unroll
          for (int o = 0; o < P; ++o)
#pragma unroll
            for (int i = 0; i < V; ++i)
              acc[o][i] = fmaf(static_cast<float>(to_compute(xr[o * S::kSw + k].v[i])), wk[i],
                               acc[o][i]);
        }
      } else {
        for (int k = 0; k < kw_n; ++k) {
          float wk[V];
          load_weights<V>(wv + (r * kw_n + k) * cw, wk);
#pragma unroll
          for (int o = 0; o < P; ++o) {
            const int iw = iw0 + o * sw + k * p.dw;
            if (static_cast<unsigned>(iw) >= static_cast<unsigned>(p.w)) continue;
            const VecT xv = *reinterpret_cast<const VecT*>(row + iw * p.c);
#pragma unroll
            for (int i = 0; i < V; ++i)
              acc[o][i] = fmaf(static_cast<float>(to_compute(xv.v[i])), wk[i], acc[o][i]);
          }
        }
      }
    }

#pragma unroll
    for (int o = 0; o < P; ++o) {
      const int ow = ow0 + o;
      if (ow >= p.ow) break;
      const int yo = (static_cast<int>(q) * p.ow + ow) * p.c + ch;  // (n, oh, ow, ch)
      float zv[V];
#pragma unroll
      for (int i = 0; i < V; ++i) zv[i] = 0.0f;
      if (z) {
        if (p.z_nhwc) {
          const VecT zz = *reinterpret_cast<const VecT*>(z + yo);
#pragma unroll
          for (int i = 0; i < V; ++i) zv[i] = static_cast<float>(to_compute(zz.v[i]));
        } else {
          const int zo = (n * p.c + ch) * plane + oh * p.ow + ow;  // (n, ch, oh, ow)
#pragma unroll
          for (int i = 0; i < V; ++i) zv[i] = static_cast<float>(to_compute(z[zo + i * plane]));
        }
      }
      VecT out;
#pragma unroll
      for (int i = 0; i < V; ++i)
        out.v[i] =
            from_compute<T>(ops::apply_fused_activation<float>(p.act, acc[o][i] + b[i] + zv[i]));
      *reinterpret_cast<VecT*>(y + yo) = out;
    }
  }
}

/// Grid, block and shared memory of one launch.
struct LaunchPlan {
  DwParams params;
  dim3 grid, block;
  size_t smem = 0;
};

using LaunchFn = Status (*)(const LaunchPlan&, const void* x, const void* w, const void* b,
                            const void* z, void* y, cudaStream_t stream);

template <typename T, int V, typename S>
Status launch(const LaunchPlan& lp, const void* x, const void* w, const void* b, const void* z,
              void* y, cudaStream_t stream) {
  dwconv_nhwc_kernel<T, V, S><<<lp.grid, lp.block, lp.smem, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
      static_cast<const T*>(z), static_cast<T*>(y), lp.params);
  KILN_CUDA_CHECK_LAUNCH("dwconv_nhwc_kernel");
  return Status::ok();
}

/// Channels per thread instantiated for T: 16-byte vectors down to single elements.
template <typename T, typename S>
LaunchFn pick_vec(int vec) {
  switch (vec) {
    case 8:
      if constexpr (sizeof(T) == 2) return &launch<T, 8, S>;
      return nullptr;
    case 4: return &launch<T, 4, S>;
    case 2: return &launch<T, 2, S>;
    case 1: return &launch<T, 1, S>;
  }
  return nullptr;
}

template <typename T>
LaunchFn pick_tile(TileKind kind, int vec) {
  switch (kind) {
    case TileKind::k3x3S1: return pick_vec<T, Tile3x3S1>(vec);
    case TileKind::k3x3S2: return pick_vec<T, Tile3x3S2>(vec);
    case TileKind::k5x5S1: return pick_vec<T, Tile5x5S1>(vec);
    case TileKind::k5x5S2: return pick_vec<T, Tile5x5S2>(vec);
    case TileKind::kGeneric: return pick_vec<T, TileGeneric>(vec);
  }
  return nullptr;
}

LaunchFn pick(DataType dt, TileKind kind, int vec) {
  switch (dt) {
    case DataType::kF32: return pick_tile<float>(kind, vec);
    case DataType::kF16: return pick_tile<__half>(kind, vec);
    case DataType::kBF16: return pick_tile<__nv_bfloat16>(kind, vec);
    default: return nullptr;
  }
}

TileKind tile_for(const ConvNhwcGeometry& g) {
  if (g.kh == g.kw && (g.kh == 3 || g.kh == 5) && g.dilation_w == 1 &&
      (g.stride_w == 1 || g.stride_w == 2)) {
    const bool s1 = g.stride_w == 1;
    if (g.kh == 3) return s1 ? TileKind::k3x3S1 : TileKind::k3x3S2;
    return s1 ? TileKind::k5x5S1 : TileKind::k5x5S2;
  }
  return TileKind::kGeneric;
}

/// Widest instantiated channel vector (elements) that divides C and whose weights for one
/// vector fit the shared memory limit; 0 when even one channel's window does not fit.
int widest_vec(const ConvNhwcGeometry& g) {
  const int64_t taps = g.kh * g.kw;
  const int widest = static_cast<int>(16 / dtype_size(g.dt));
  for (int v = widest; v >= 1; v /= 2)
    if (g.c % v == 0 && taps * v * static_cast<int64_t>(sizeof(float)) <= kWeightSmemMax)
      return v;
  return 0;
}

/// Launch geometry for `vec` channels per thread. Requires widest_vec(g) >= vec > 0.
LaunchPlan make_plan(const ConvNhwcGeometry& g, TileKind kind, int vec) {
  const int64_t taps = g.kh * g.kw;
  const int64_t nvec = g.c / vec;
  const int64_t per_vec = taps * vec * static_cast<int64_t>(sizeof(float));
  const int64_t cap = std::clamp<int64_t>(kWeightSmemTarget / per_vec, 1, kMaxBlockVectors);
  const int64_t nblk = (nvec + cap - 1) / cap;
  const int64_t bx = (nvec + nblk - 1) / nblk;
  const int64_t by = std::max<int64_t>(1, kThreads / bx);
  const int64_t outs = tile_outputs(kind);
  const int64_t ow_chunks = (g.ow + outs - 1) / outs;
  const int64_t chunks = g.n * g.oh * ow_chunks;

  LaunchPlan lp;
  DwParams& p = lp.params;
  p.c = static_cast<int>(g.c);
  p.h = static_cast<int>(g.h);
  p.w = static_cast<int>(g.w);
  p.oh = static_cast<int>(g.oh);
  p.ow = static_cast<int>(g.ow);
  p.kh = static_cast<int>(g.kh);
  p.kw = static_cast<int>(g.kw);
  p.sh = static_cast<int>(g.stride_h);
  p.sw = static_cast<int>(g.stride_w);
  p.dh = static_cast<int>(g.dilation_h);
  p.dw = static_cast<int>(g.dilation_w);
  p.ph = static_cast<int>(g.pad_h);
  p.pw = static_cast<int>(g.pad_w);
  p.nvec = static_cast<int>(nvec);
  p.bx = static_cast<int>(bx);
  p.by = static_cast<int>(by);
  p.ow_chunks = static_cast<int>(ow_chunks);
  p.chunks = static_cast<uint32_t>(chunks);
  p.div_chunks = FastDiv(static_cast<uint32_t>(ow_chunks));
  p.div_oh = FastDiv(static_cast<uint32_t>(g.oh));
  p.z_nhwc = g.z_nhwc;
  p.act = g.act;

  // Enough blocks for a few waves; each strides over the remaining chunks, reusing the
  // weights it staged.
  const int64_t sms = g.sm_count > 0 ? g.sm_count : 132;
  const int64_t blocks_x = (chunks + by - 1) / by;
  const int64_t cap_x = std::max<int64_t>(1, sms * 16 / nblk);
  lp.grid = dim3(static_cast<unsigned>(std::max<int64_t>(1, std::min(blocks_x, cap_x))),
                 static_cast<unsigned>(nblk));
  lp.block = dim3(static_cast<unsigned>(bx * by));
  lp.smem = static_cast<size_t>(bx * per_vec);
  return lp;
}

const char* dtype_tag(DataType dt) {
  return dt == DataType::kF16 ? "f16" : dt == DataType::kBF16 ? "bf16" : "f32";
}

class DepthwiseConvKernel final : public Kernel {
 public:
  DepthwiseConvKernel(const ConvNhwcGeometry& g, TileKind kind, int vec, std::string tactic)
      : g_(g), kind_(kind), vec_(vec), tactic_(std::move(tactic)) {
    if (vec_ > 0) {
      plan_ = make_plan(g_, kind_, vec_);
      fn_ = pick(g_.dt, kind_, vec_);
    }
  }

  std::string tactic() const override { return tactic_; }
  /// The candidate's identity for replay (cudnn_conv.cc): the geometry picks the rest.
  std::string tactic_params() const override { return kDepthwiseTacticParams; }

  Status enqueue(const LaunchArgs& a) override {
    if (vec_ == 0) return Status::ok();  // empty output
    const void* x = a.inputs[0];
    const void* z = g_.residual ? a.inputs[3] : nullptr;
    void* y = a.outputs[0];
    // Vector accesses need X, Y (and a channels-last Z) aligned to the vector; buffers from
    // the memory planner are, views at odd offsets fall back to narrower vectors.
    const size_t es = dtype_size(g_.dt);
    auto aligned = [&](int v) {
      const uintptr_t mask = static_cast<uintptr_t>(v) * es - 1;
      return (reinterpret_cast<uintptr_t>(x) & mask) == 0 &&
             (reinterpret_cast<uintptr_t>(y) & mask) == 0 &&
             (!z || !g_.z_nhwc || (reinterpret_cast<uintptr_t>(z) & mask) == 0);
    };
    if (aligned(vec_))
      return fn_(plan_, x, a.inputs[1], g_.bias ? a.inputs[2] : nullptr, z, y, a.stream);
    int v = vec_ / 2;
    while (v > 1 && !aligned(v)) v /= 2;
    const LaunchPlan lp = make_plan(g_, kind_, v);
    return pick(g_.dt, kind_, v)(lp, x, a.inputs[1], g_.bias ? a.inputs[2] : nullptr, z, y,
                                 a.stream);
  }

 private:
  ConvNhwcGeometry g_;
  TileKind kind_;
  int vec_;  ///< channels per thread; 0 = nothing to launch
  std::string tactic_;
  LaunchPlan plan_;
  LaunchFn fn_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<Kernel>> make_depthwise_conv_kernel(const KernelConfig& cfg,
                                                           const ConvNhwcGeometry& g) {
  const TileKind kind = tile_for(g);
  const std::string window = std::to_string(g.kh) + "x" + std::to_string(g.kw);
  if (g.n * g.c * g.oh * g.ow == 0)
    return std::unique_ptr<Kernel>(std::make_unique<DepthwiseConvKernel>(
        g, kind, 0, "kiln:dwconv_nhwc_" + window + "_empty"));
  const int vec = widest_vec(g);
  if (vec == 0)
    return cfg.unsupported("a " + window + " window: its weights exceed shared memory");
  const int64_t per_vec = g.kh * g.kw * vec * static_cast<int64_t>(sizeof(float));
  const int64_t cap = std::clamp<int64_t>(kWeightSmemTarget / per_vec, 1, kMaxBlockVectors);
  if ((g.c / vec + cap - 1) / cap > 65535)
    return cfg.unsupported(std::to_string(g.c) + " channels (grid limit)");
  std::string tactic = "kiln:dwconv_nhwc_" + window;
  if (kind == TileKind::k3x3S2 || kind == TileKind::k5x5S2) tactic += "_s2";
  if (kind == TileKind::kGeneric) tactic += "_generic";
  tactic += std::string("_") + dtype_tag(g.dt) + "_v" + std::to_string(vec);
  return std::unique_ptr<Kernel>(
      std::make_unique<DepthwiseConvKernel>(g, kind, vec, std::move(tactic)));
}

}  // namespace kiln::cuda
