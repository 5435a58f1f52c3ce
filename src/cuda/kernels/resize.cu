// GPU kernels of Resize (opsets 10, 11, 13, 18, 19) and the deprecated Upsample (7, 9),
// ONNX Operators.md, with the CPU reference's semantics (src/ops/resize.cc, itself the
// ONNX reference implementation onnx/reference/ops/op_resize.py): every coordinate
// transformation mode, every nearest_mode (and the pre-opset-11 legacy rounding),
// linear / cubic (cubic_coeff_a, exclude_outside) over any number of axes, antialias,
// tf_crop_and_resize with extrapolation_value, axes and keep_aspect_ratio_policy.
//
// One thread computes one output element in a single pass: for each resized axis it maps
// the output index to a source coordinate with the CPU's formulas, in double precision
// with unfused multiplies (__dmul_rn / __dadd_rn), so rounding decisions at exact ties come
// out as on the host; then it sums the product of the per-axis filter taps. The CPU
// resizes one axis at a time instead; the sums are equal up to float rounding, and the
// extrapolated case replays the CPU's axis order exactly. Nearest is a pure copy and runs
// on byte units (16-byte units when channels are innermost and not resized, e.g. NHWC).
//
// Operands may be row-major or kNhwc (logical NCHW dims, channels-last memory), input and
// output independently. The attributes and the output plan are read by the CPU's own code
// (ops/resize.h), so both report the same errors; scales / sizes / roi must be constants
// (read at create time), otherwise the node runs on the host.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cuda/kernels/data_movement.cuh"
#include "ops/resize.h"

namespace kiln::cuda {
namespace {

// The kernels switch on plain ints holding the values of the shared host enums
// (ops/resize.h), so a ResizeParams field converts with a static_cast.
using ops::ResizeCoordMode;
using ops::ResizeMode;
using ops::ResizeNearestMode;
enum Mode : int {
  kNearest = static_cast<int>(ResizeMode::kNearest),
  kLinear = static_cast<int>(ResizeMode::kLinear),
  kCubic = static_cast<int>(ResizeMode::kCubic)
};
enum Coord : int {
  kHalfPixel = static_cast<int>(ResizeCoordMode::kHalfPixel),
  kHalfPixelSymmetric = static_cast<int>(ResizeCoordMode::kHalfPixelSymmetric),
  kPytorchHalfPixel = static_cast<int>(ResizeCoordMode::kPytorchHalfPixel),
  kAlignCorners = static_cast<int>(ResizeCoordMode::kAlignCorners),
  kAsymmetric = static_cast<int>(ResizeCoordMode::kAsymmetric),
  kTfCropAndResize = static_cast<int>(ResizeCoordMode::kTfCropAndResize),
  kTfHalfPixelForNn = static_cast<int>(ResizeCoordMode::kTfHalfPixelForNn)
};
enum NearestMode : int {
  kRoundPreferFloor = static_cast<int>(ResizeNearestMode::kRoundPreferFloor),
  kRoundPreferCeil = static_cast<int>(ResizeNearestMode::kRoundPreferCeil),
  kFloor = static_cast<int>(ResizeNearestMode::kFloor),
  kCeil = static_cast<int>(ResizeNearestMode::kCeil),
  kLegacy = static_cast<int>(ResizeNearestMode::kLegacy)
};

/// Product of the taps of all resized axes above which the kernel declines (antialias
/// with tiny scales widens the filter to 2/scale taps per axis).
constexpr int64_t kMaxTapProduct = 4096;

/// One resized axis, in the logical order the CPU processes axes.
struct AxisMap {
  int64_t in = 0, out = 0;
  double scale = 1, roi_s = 0, roi_e = 1;
  int64_t stride = 0;  ///< input memory stride of this axis (units)
};

/// Everything a resize kernel needs; passed by value.
struct ResizeArgs {
  int rank = 0;                 ///< output axes, memory order
  int64_t out_dims[kMaxRank];   ///< output dims in memory order (units for the innermost)
  int64_t in_stride[kMaxRank];  ///< input memory stride of the same logical axis (non-resized)
  int slot[kMaxRank];           ///< index into ax[] of a resized axis, -1 otherwise
  int n_axes = 0;
  AxisMap ax[kMaxRank];
  int mode = kNearest, coord = kAsymmetric, nearest = kLegacy;
  bool exclude_outside = false, antialias = false;
  /// The CPU's 2-D fast path applies (see resize_interp_kernel): nest the sums the other way.
  bool fast2d = false;
  double cubic_a = -0.75, extrapolation = 0;
};

// ---- per-axis mapping (device; mirrors ops/resize.cc) -----------------------------------

// Unfused double arithmetic: nvcc contracts a * b + c into one FMA, the host does not (no
// -march), and a rounding difference at an exact tie would pick another pixel or round an
// integer result the other way. Every product that meets a sum goes through these.
__host__ __device__ __forceinline__ double dmul(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
__host__ __device__ __forceinline__ double dadd(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
__host__ __device__ __forceinline__ double dsub(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}

/// Source coordinate of output index y (onnx reference _compute_x_ori), bit-identical to
/// the CPU's (host code here computes tf_crop_and_resize's extrapolation too).
__host__ __device__ double source_coord(int coord, const AxisMap& a, double y, bool& extrapolated) {
  const double out_w = dmul(a.scale, static_cast<double>(a.in));
  const double in_w = static_cast<double>(a.in);
  extrapolated = false;
  switch (coord) {
    case kAlignCorners: return out_w == 1 ? 0.0 : dmul(y, in_w - 1) / (out_w - 1);
    case kAsymmetric: return y / a.scale;
    case kTfCropAndResize: {
      const double span = dsub(a.roi_e, a.roi_s);
      double x =
          out_w == 1 ? dmul(span, in_w - 1) / 2 : dmul(dmul(y, span), in_w - 1) / (out_w - 1);
      x = dadd(x, dmul(a.roi_s, in_w - 1));
      extrapolated = x < 0 || x > in_w - 1;
      return x;
    }
    case kPytorchHalfPixel: return out_w == 1 ? -0.5 : (y + 0.5) / a.scale - 0.5;
    case kHalfPixel: return (y + 0.5) / a.scale - 0.5;
    case kTfHalfPixelForNn: return (y + 0.5) / a.scale;
    default: {  // half_pixel_symmetric
      const double adjustment = static_cast<double>(a.out) / out_w;
      const double offset = dmul(in_w / 2, dsub(1, adjustment));
      return dsub(dadd(offset, (y + 0.5) / a.scale), 0.5);
    }
  }
}

__device__ int64_t nearest_index(int mode, double x, double scale) {
  const double fl = floor(x);
  if (x == fl) return static_cast<int64_t>(x);
  const double r = x - fl;
  switch (mode) {
    case kRoundPreferFloor: return static_cast<int64_t>(r <= 0.5 ? fl : fl + 1);
    case kRoundPreferCeil: return static_cast<int64_t>(r < 0.5 ? fl : fl + 1);
    case kFloor: return static_cast<int64_t>(fl);
    case kCeil: return static_cast<int64_t>(fl + 1);
    default: return static_cast<int64_t>(scale < 1 ? fl + 1 : fl);  // legacy
  }
}

__device__ __forceinline__ int64_t clamp_index(int64_t i, int64_t n) {
  return i < 0 ? 0 : (i >= n ? n - 1 : i);
}

/// Taps of one axis at one output index: n input indices from `start` (clamped when read),
/// weight(k) = inside(k) * raw(k) / sum1 / sum2 as the CPU's build_taps computes it.
struct Taps {
  int64_t start = 0;
  int n = 1;
  double ratio = 0, s = 1;
  double sum1 = 1, sum2 = 1;
  bool extrap = false;
};

/// Unnormalised filter coefficient k (onnx reference _linear_coeffs / _cubic_coeffs and
/// their antialias variants, Keys' cubic convolution with parameter a), evaluated in the
/// CPU's operation order without fused multiply-adds.
__device__ double keys_outer(double A, double x) {  // ((A x - 5A) x + 8A) x - 4A
  return dsub(dmul(dadd(dmul(dsub(dmul(A, x), dmul(5, A)), x), dmul(8, A)), x), dmul(4, A));
}
__device__ double keys_inner(double A, double x) {  // ((A + 2) x - (A + 3)) x x + 1
  return dadd(dmul(dmul(dsub(dmul(A + 2, x), A + 3), x), x), 1);
}
__device__ double raw_coeff(const ResizeArgs& p, const Taps& t, int k) {
  const double A = p.cubic_a, ratio = t.ratio;
  if (!p.antialias) {
    if (p.mode == kLinear) return k == 0 ? 1 - ratio : ratio;
    switch (k) {
      case 0: return keys_outer(A, ratio + 1);
      case 1: return keys_inner(A, ratio);
      case 2: return keys_inner(A, 1 - ratio);
      default: return keys_outer(A, (1 - ratio) + 1);
    }
  }
  if (p.mode == kLinear) {
    const double i = floor(-1 / t.s) + 1 + k;
    const double v = 1 - fabs(dmul(i - ratio, t.s));
    return v < 0 ? 0 : (v > 1 ? 1 : v);
  }
  const double i = floor(-2 / t.s) + 1 + k;
  const double x = fabs(dmul(t.s, i - ratio)), x2 = dmul(x, x), x3 = dmul(x2, x);
  if (x <= 1) return dadd(dsub(dmul(A + 2, x3), dmul(A + 3, x2)), 1);
  if (x < 2)
    return dsub(dadd(dsub(dmul(A, x3), dmul(dmul(5, A), x2)), dmul(dmul(8, A), x)), dmul(4, A));
  return 0.0;
}

__device__ __forceinline__ bool tap_inside(const Taps& t, const AxisMap& a, int k) {
  return t.start + k >= 0 && t.start + k < a.in;
}

__device__ double tap_weight(const ResizeArgs& p, const AxisMap& a, const Taps& t, int k) {
  if (p.exclude_outside && !tap_inside(t, a, k)) return 0;
  double c = raw_coeff(p, t, k);
  if (p.antialias) c /= t.sum1;
  if (p.exclude_outside) c /= t.sum2;
  return c;
}

/// Linear / cubic taps of output index y (CPU build_taps: the window prefers the pixel
/// left of x, so an exact integer has ratio 1; the n nearest indices, ties to the smaller).
__device__ Taps interp_taps(const ResizeArgs& p, const AxisMap& a, int64_t y) {
  Taps t;
  const double x = source_coord(p.coord, a, static_cast<double>(y), t.extrap);
  const double fl = floor(x);
  t.ratio = x == fl ? 1.0 : x - fl;
  t.s = a.scale < 1 ? a.scale : 1.0;
  if (!p.antialias) {
    t.n = p.mode == kLinear ? 2 : 4;
  } else {
    const int64_t st = static_cast<int64_t>(floor((p.mode == kLinear ? -1 : -2) / t.s) + 1);
    t.n = static_cast<int>(2 - 2 * st);
    t.sum1 = 0;
    for (int k = 0; k < t.n; ++k) t.sum1 = dadd(t.sum1, raw_coeff(p, t, k));
  }
  const int n = t.n;
  const int pad = (n + 1) / 2;
  const double xp = x + static_cast<double>(pad);
  const double pp = floor(xp);
  const double frac = xp - pp;
  int64_t off;
  if (n % 2 == 0)
    off = frac == 0 ? -(n / 2) : -(n / 2) + 1;
  else
    off = frac <= 0.5 ? -((n - 1) / 2) : -((n - 1) / 2) + 1;
  t.start = static_cast<int64_t>(pp) + off - pad;
  if (p.exclude_outside) {
    double sum = 0;
    for (int k = 0; k < n; ++k)
      if (tap_inside(t, a, k))
        sum = dadd(sum, p.antialias ? raw_coeff(p, t, k) / t.sum1 : raw_coeff(p, t, k));
    t.sum2 = sum == 0 ? 1 : sum;
  }
  return t;
}

// ---- tap tables -------------------------------------------------------------------------
//
// The per-axis mapping above costs double-precision divisions; it depends only on the
// output index along the axis, so a first small kernel tabulates it in the workspace and
// the resize kernels read the tables: for each resized axis and output index, n taps
// (input offset and weight in the accumulation type) and flags (extrapolated; nearest's
// zero-weight tap under exclude_outside).

constexpr uint8_t kExtrapolated = 1, kWeightless = 2;

/// Workspace tables of the resized axes (pointers set at enqueue).
struct TapTables {
  int n[kMaxRank];              ///< taps per output index
  int64_t* off[kMaxRank];       ///< [out][n] input offsets (units)
  void* w[kMaxRank];            ///< [out][n] weights, accumulation type
  uint8_t* flags[kMaxRank];     ///< [out]
  int64_t first[kMaxRank + 1];  ///< prefix sums of the axes' output sizes
};

template <typename A>
__global__ void resize_taps_kernel(ResizeArgs p, TapTables t) {
  KILN_GRID_STRIDE_LOOP(i, t.first[p.n_axes]) {
    int a = 0;
    while (i >= t.first[a + 1]) ++a;
    const AxisMap& m = p.ax[a];
    const int64_t o = i - t.first[a];
    const int n = t.n[a];
    int64_t* off = t.off[a] + o * n;
    A* w = static_cast<A*>(t.w[a]) + o * n;
    uint8_t flags = 0;
    if (p.mode == kNearest) {
      bool ex;
      const double x = source_coord(p.coord, m, static_cast<double>(o), ex);
      const int64_t k = nearest_index(p.nearest, x, m.scale);
      flags =
          (ex ? kExtrapolated : 0) | (p.exclude_outside && (k < 0 || k >= m.in) ? kWeightless : 0);
      off[0] = clamp_index(k, m.in) * m.stride;
      w[0] = flags & kWeightless ? A(0) : A(1);
    } else {
      const Taps tp = interp_taps(p, m, o);
      flags = tp.extrap ? kExtrapolated : 0;
      for (int k = 0; k < n; ++k) {
        off[k] = clamp_index(tp.start + k, m.in) * m.stride;
        w[k] = static_cast<A>(tap_weight(p, m, tp, k));
      }
    }
    t.flags[a][o] = flags;
  }
}

using dm::FastDiv;

/// Output decoding: dims in memory order with the slot of each resized axis.
struct Decoder {
  int rank = 0;
  FastDiv div[kMaxRank];
  int64_t dims[kMaxRank];
  bool fast = false;  ///< every linear index < 2^31: FastDiv
};

/// Splits output element e (memory order) into the input offset of its non-resized axes
/// and the output index of each resized axis.
__device__ __forceinline__ int64_t decode(const ResizeArgs& p, const Decoder& dc, int64_t e,
                                          int64_t* y) {
  int64_t base = 0;
  for (int d = dc.rank - 1; d >= 0; --d) {
    int64_t q, c;
    if (dc.fast) {
      const uint32_t u = static_cast<uint32_t>(e), uq = dc.div[d].div(u);
      q = uq, c = u - uq * dc.div[d].d;
    } else {
      q = e / dc.dims[d], c = e - q * dc.dims[d];
    }
    e = q;
    if (p.slot[d] < 0)
      base += c * p.in_stride[d];
    else
      y[p.slot[d]] = c;
  }
  return base;
}

// ---- kernels ----------------------------------------------------------------------------

// Nearest: a copy of one source unit, the extrapolation value, or zero. The CPU runs the
// axes in order and an extrapolated axis overwrites its whole row, so only the axes after
// the last extrapolated one can still zero the value (exclude_outside taps of weight 0).
template <typename Unit>
__global__ void resize_nearest_kernel(const Unit* __restrict__ src, Unit* __restrict__ dst,
                                      int64_t n, ResizeArgs p, Decoder dc, TapTables t,
                                      Unit extrap) {
  KILN_GRID_STRIDE_LOOP(e, n) {
    int64_t y[kMaxRank];
    int64_t off = decode(p, dc, e, y);
    int last_ex = -1, last_zero = -1;
    for (int a = 0; a < p.n_axes; ++a) {
      const uint8_t f = t.flags[a][y[a]];
      if (f & kExtrapolated) last_ex = a;
      if (f & kWeightless) last_zero = a;
      off += t.off[a][y[a]];
    }
    if (last_zero > last_ex)
      dst[e] = Unit{};
    else
      dst[e] = last_ex >= 0 ? extrap : src[off];
  }
}

/// Intermediate precision as in the CPU kernel: double for f64 and integers, float else.
template <typename T>
using interp_t =
    std::conditional_t<std::is_same_v<T, double> || std::is_integral_v<T>, double, float>;

/// The CPU's store<T>: integers round half to even and saturate, floats convert.
template <typename T, typename A>
__device__ __forceinline__ T store(A v) {
  if constexpr (std::is_integral_v<T>) {
    double r = rint(static_cast<double>(v));
    const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
    const double hi = static_cast<double>(std::numeric_limits<T>::max());
    if (!(r >= lo)) r = lo;  // NaN (undefined behaviour on the CPU) saturates low
    if (r >= hi) return std::numeric_limits<T>::max();
    return static_cast<T>(r);
  } else {
    return from_compute<T>(static_cast<compute_t<T>>(v));
  }
}

/// acc + w * v rounded twice, like the host (no FMA).
__device__ __forceinline__ float madd(float acc, float w, float v) {
  return __fadd_rn(acc, __fmul_rn(w, v));
}
__device__ __forceinline__ double madd(double acc, double w, double v) {
  return __dadd_rn(acc, __dmul_rn(w, v));
}

// Linear / cubic / antialias. The sum runs in the CPU's order so that results agree to
// the last bit (integer outputs round at .5): the CPU filters one axis at a time, the
// first resized axis first, each pass accumulating its taps in order into an A-typed
// intermediate and skipping zero weights. Here that is a nest of sums, the first axis
// innermost: level l sums taps of axis l over partial sums of level l - 1. Its 2-D fast
// path (the two innermost axes only, <= 2 taps each, nothing extrapolated: p.fast2d)
// nests the other way round and keeps zero weights. kR > 0 fixes the number of resized
// axes at compile time (registers instead of local memory); 0 = p.n_axes.
template <typename T, int kR>
__global__ void resize_interp_kernel(const T* __restrict__ src, T* __restrict__ dst, int64_t n,
                                     ResizeArgs p, Decoder dc, TapTables t) {
  using A = interp_t<T>;
  constexpr int kCap = kR > 0 ? kR : kMaxRank;
  const int levels = kR > 0 ? kR : p.n_axes;
  KILN_GRID_STRIDE_LOOP(e, n) {
    int64_t y[kMaxRank];
    const int64_t base = decode(p, dc, e, y);
    int last_ex = -1;
#pragma unroll
    for (int a = 0; a < kCap; ++a)
      if (a < levels && (t.flags[a][y[a]] & kExtrapolated)) last_ex = a;
    A val = 0;
    if (last_ex >= 0) {
      // The row of axis last_ex is the extrapolation value; later axes filter it.
      val = static_cast<A>(p.extrapolation);
      for (int a = last_ex + 1; a < levels; ++a) {
        const A* w = static_cast<const A*>(t.w[a]) + y[a] * t.n[a];
        A acc = 0;
        for (int k = 0; k < t.n[a]; ++k)
          if (w[k] != A(0)) acc = madd(acc, w[k], val);
        val = acc;
      }
    } else {
      const bool skip_zero = !p.fast2d;
      const int64_t* offs[kCap];
      const A* ws[kCap];
      int ns[kCap], k[kCap];
      A acc[kCap];
#pragma unroll
      for (int l = 0; l < kCap; ++l) {
        if (l >= levels) break;
        const int a = p.fast2d ? levels - 1 - l : l;
        ns[l] = t.n[a];
        offs[l] = t.off[a] + y[a] * ns[l];
        ws[l] = static_cast<const A*>(t.w[a]) + y[a] * ns[l];
        k[l] = 0;
        acc[l] = 0;
      }
      for (bool more = true; more;) {
        int64_t off = base;
#pragma unroll
        for (int l = 0; l < kCap; ++l)
          if (l < levels) off += offs[l][k[l]];
        const A w0 = ws[0][k[0]];
        if (!skip_zero || w0 != A(0))
          acc[0] = madd(acc[0], w0, static_cast<A>(to_compute(src[off])));
          // Advance the innermost level; a level that wraps is complete and folds into the next.
#pragma unroll
        for (int l = 0; l < kCap; ++l) {
          if (++k[l] < ns[l]) break;
          k[l] = 0;
          if (l + 1 >= levels) {
            more = false;
            break;
          }
          const A w1 = ws[l + 1][k[l + 1]];
          if (!skip_zero || w1 != A(0)) acc[l + 1] = madd(acc[l + 1], w1, acc[l]);
          acc[l] = 0;
        }
      }
      val = acc[levels - 1];
    }
    dst[e] = store<T>(val);
  }
}

/// Two adjacent resized memory axes Y, X between non-resized outer planes and an inner run
/// (NCHW: inner 1; NHWC: inner C), input and output in the same layout: the common image
/// resize, launched as a grid over (row of X * inner, Y, plane) with no index division
/// other than by `inner`.
struct Plane2d {
  int64_t planes = 1, in_plane = 0, out_y = 0, row = 0;  ///< row = out_x * inner (units)
  int64_t inner = 1;
  FastDiv inner_div;
};

// Grid: x over row, y over output rows, z over planes (grid-stride in y and z).
template <typename Unit>
__global__ void resize_nearest_2d_kernel(const Unit* __restrict__ src, Unit* __restrict__ dst,
                                         Plane2d g, TapTables t, Unit extrap) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= g.row) return;
  const int64_t x = g.inner == 1 ? i : g.inner_div.div(static_cast<uint32_t>(i));
  const int64_t c = i - x * g.inner;
  const uint8_t fx = t.flags[1][x];
  const int64_t off_x = t.off[1][x] + c;
  for (int64_t y = blockIdx.y; y < g.out_y; y += gridDim.y) {
    const uint8_t fy = t.flags[0][y];
    const int64_t off_y = t.off[0][y] + off_x;
    const int last_ex = fx & kExtrapolated ? 1 : (fy & kExtrapolated ? 0 : -1);
    const int last_zero = fx & kWeightless ? 1 : (fy & kWeightless ? 0 : -1);
    for (int64_t pl = blockIdx.z; pl < g.planes; pl += gridDim.z) {
      Unit v;
      if (last_zero > last_ex)
        v = Unit{};
      else
        v = last_ex >= 0 ? extrap : src[pl * g.in_plane + off_y];
      dst[(pl * g.out_y + y) * g.row + i] = v;
    }
  }
}

/// Taps per axis the 2-D kernel keeps in registers (linear 2, cubic 4; wider antialias
/// filters take the general kernel).
constexpr int kMaxTaps2d = 4;

// The same two-level sum as resize_interp_kernel with kR = 2 (see there for the order),
// with both axes' taps in registers.
template <typename T>
__global__ void resize_interp_2d_kernel(const T* __restrict__ src, T* __restrict__ dst,
                                        ResizeArgs p, Plane2d g, TapTables t) {
  using A = interp_t<T>;
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= g.row) return;
  const int64_t x = g.inner == 1 ? i : g.inner_div.div(static_cast<uint32_t>(i));
  const int64_t c = i - x * g.inner;
  const int nx = t.n[1], ny = t.n[0];
  int64_t ox[kMaxTaps2d], oy[kMaxTaps2d];
  A wx[kMaxTaps2d], wy[kMaxTaps2d];
#pragma unroll
  for (int k = 0; k < kMaxTaps2d; ++k) {
    ox[k] = k < nx ? t.off[1][x * nx + k] + c : 0;
    wx[k] = k < nx ? static_cast<const A*>(t.w[1])[x * nx + k] : A(0);
  }
  const bool ex_x = t.flags[1][x] & kExtrapolated;
  const A e = static_cast<A>(p.extrapolation);
  for (int64_t y = blockIdx.y; y < g.out_y; y += gridDim.y) {
#pragma unroll
    for (int k = 0; k < kMaxTaps2d; ++k) {
      oy[k] = k < ny ? t.off[0][y * ny + k] : 0;
      wy[k] = k < ny ? static_cast<const A*>(t.w[0])[y * ny + k] : A(0);
    }
    const bool ex_y = t.flags[0][y] & kExtrapolated;
    for (int64_t pl = blockIdx.z; pl < g.planes; pl += gridDim.z) {
      const T* s = src + pl * g.in_plane;
      A val = 0;
      if (ex_x) {
        val = e;
      } else if (ex_y) {  // the Y row is the extrapolation value; X filters it
#pragma unroll
        for (int k = 0; k < kMaxTaps2d; ++k)
          if (k < nx && wx[k] != A(0)) val = madd(val, wx[k], e);
      } else if (p.fast2d) {  // CPU 2-D path: X innermost, zero weights kept
#pragma unroll
        for (int ky = 0; ky < kMaxTaps2d; ++ky) {
          if (ky >= ny) break;
          A racc = 0;
#pragma unroll
          for (int kx = 0; kx < kMaxTaps2d; ++kx)
            if (kx < nx) racc = madd(racc, wx[kx], static_cast<A>(to_compute(s[oy[ky] + ox[kx]])));
          val = madd(val, wy[ky], racc);
        }
      } else {  // CPU general path: Y innermost, zero weights skipped
#pragma unroll
        for (int kx = 0; kx < kMaxTaps2d; ++kx) {
          if (kx >= nx) break;
          if (wx[kx] == A(0)) continue;
          A cacc = 0;
#pragma unroll
          for (int ky = 0; ky < kMaxTaps2d; ++ky)
            if (ky < ny && wy[ky] != A(0))
              cacc = madd(cacc, wy[ky], static_cast<A>(to_compute(s[oy[ky] + ox[kx]])));
          val = madd(val, wx[kx], cacc);
        }
      }
      dst[(pl * g.out_y + y) * g.row + i] = store<T>(val);
    }
  }
}

// ---- 4-D image fast path ------------------------------------------------------------------
//
// Bilinear or nearest resize of H and W of a 4-D tensor (N and C untouched), the final
// upsampling of segmentation models, in one launch without tap tables. A thread writes V
// consecutive units of an output row (one vector store) for a run of consecutive rows of
// one or more images. Its columns are mapped once, a block's rows once (into shared
// memory), both with the functions resize_taps_kernel uses (source_coord, interp_taps,
// tap_weight, nearest_index), so indices, weights and the CPU's 2-D summation order (X
// first per source row, then Y; zero weights kept; no fused multiply-adds) are unchanged.
// The X sum of a source row does not depend on the output row, so a thread keeps the
// sums of the two source rows it used last: upsampled rows that share source rows cost
// two multiply-adds per unit instead of four loads. Offsets are 32-bit. Input and output
// may each be NCHW or NHWC: a row of an NCHW output is the W units of one (n, c) plane,
// a row of an NHWC output the W * C units (x major, c minor) of one image.

/// V consecutive units moved by one store.
template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

/// Rows a thread walks at most (the run length is chosen at enqueue, <= this).
constexpr int kMaxRun = 16;
/// Rows of a block: (kBlock / 32 threads rows at most) * kMaxRun.
constexpr int kMaxBlockRows = kBlock / 32 * kMaxRun;

/// Geometry of resize_hw_kernel, in units of its element type (nearest on NHWC data with
/// 16-byte channel runs moves 16-byte units). Everything fits in 31 bits.
struct HwGeom {
  int32_t row_v = 0;   ///< work items per output row: row / V
  int32_t row = 0;     ///< units per output row
  int32_t out_h = 0;   ///< output rows per image
  int32_t images = 0;  ///< NCHW output: N * C planes; NHWC output: N images
  int32_t run = 1;     ///< consecutive rows per thread (set at enqueue)
  FastDiv inner;       ///< units per output pixel of a row: 1 (NCHW output) or C (NHWC)
  FastDiv image_c;     ///< splits an image index into (n, c): C (NCHW output) or 1 (NHWC)
  int32_t in_n = 0, in_c = 0, in_h = 0, in_w = 0;  ///< input strides of N, C, H, W (units)
};

/// Offsets (input stride units) and weights of the taps of output index o along resized
/// axis `m`, exactly as resize_taps_kernel tabulates them (nearest: one tap, weight 0 when
/// exclude_outside drops it).
template <typename A, bool kLinear>
__device__ __forceinline__ void hw_taps(const ResizeArgs& p, const AxisMap& m, int32_t o,
                                        int32_t stride, int32_t (&off)[2], A (&w)[2]) {
  if constexpr (kLinear) {
    const Taps t = interp_taps(p, m, o);
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      off[k] = static_cast<int32_t>(clamp_index(t.start + k, m.in)) * stride;
      w[k] = static_cast<A>(tap_weight(p, m, t, k));
    }
  } else {
    bool ex;
    const double x = source_coord(p.coord, m, static_cast<double>(o), ex);
    const int64_t k = nearest_index(p.nearest, x, m.scale);
    off[0] = off[1] = static_cast<int32_t>(clamp_index(k, m.in)) * stride;
    w[0] = w[1] = p.exclude_outside && (k < 0 || k >= m.in) ? A(0) : A(1);
  }
}

// Block: threadIdx.x over V-unit items of a row, threadIdx.y over runs of g.run rows.
// Grid: x over items, y over blocks of rows (grid-stride), z over images (grid-stride).
// p.ax[0] is H, p.ax[1] is W. Nearest "sums" are the source units themselves.
template <typename T, int V, bool kLinear>
__global__ void __launch_bounds__(kBlock) resize_hw_kernel(const T* __restrict__ src,
                                                           T* __restrict__ dst, ResizeArgs p,
                                                           HwGeom g) {
  using A = std::conditional_t<kLinear, interp_t<T>, float>;
  using H = std::conditional_t<kLinear, A, T>;  // what a thread keeps per source row and unit
  __shared__ int32_t s_off[kMaxBlockRows][2];
  __shared__ A s_w[kMaxBlockRows][2];
  const int32_t item = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x);
  const bool active = item < g.row_v;
  const int32_t f0 = (active ? item : 0) * V;
  int32_t xo[V][2];
  A wx[V][2];
  {
    int32_t x = static_cast<int32_t>(g.inner.div(static_cast<uint32_t>(f0)));
    int32_t c = f0 - x * static_cast<int32_t>(g.inner.d);
    int32_t off[2];
    A w[2];
    hw_taps<A, kLinear>(p, p.ax[1], x, g.in_w, off, w);
#pragma unroll
    for (int v = 0; v < V; ++v) {
      if (v > 0 && c == 0) hw_taps<A, kLinear>(p, p.ax[1], x, g.in_w, off, w);  // next pixel
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        xo[v][k] = off[k] + c * g.in_c;
        wx[v][k] = w[k];
      }
      if (++c == static_cast<int32_t>(g.inner.d)) {
        c = 0;
        ++x;
      }
    }
  }
  const int32_t block_rows = static_cast<int32_t>(blockDim.y) * g.run;
  const int32_t tid = static_cast<int32_t>(threadIdx.y * blockDim.x + threadIdx.x);
  // 64-bit counters: the last step may pass 2^31.
  for (int64_t rb = static_cast<int64_t>(blockIdx.y) * block_rows; rb < g.out_h;
       rb += static_cast<int64_t>(gridDim.y) * block_rows) {
    const int32_t row0 = static_cast<int32_t>(rb);
    __syncthreads();  // the previous block of rows is done with the shared taps
    for (int32_t r = tid; r < block_rows && row0 + r < g.out_h;
         r += static_cast<int32_t>(blockDim.x * blockDim.y)) {
      int32_t off[2];
      A w[2];
      hw_taps<A, kLinear>(p, p.ax[0], row0 + r, g.in_h, off, w);
      s_off[r][0] = off[0];
      s_off[r][1] = off[1];
      s_w[r][0] = w[0];
      s_w[r][1] = w[1];
    }
    __syncthreads();
    if (!active) continue;
    const int32_t r_first = static_cast<int32_t>(threadIdx.y) * g.run;
    const int32_t r_end = min(r_first + g.run, g.out_h - row0);
    for (int64_t im = blockIdx.z; im < g.images; im += gridDim.z) {
      const int32_t img = static_cast<int32_t>(im);
      const int32_t n = static_cast<int32_t>(g.image_c.div(static_cast<uint32_t>(img)));
      const int32_t ch = img - n * static_cast<int32_t>(g.image_c.d);
      const T* s = src + (n * g.in_n + ch * g.in_c);
      T* d = dst + (img * g.out_h + row0) * g.row + f0;
      // Per unit, the X sums (nearest: the units) of source rows at offsets o0 and o1.
      H h0[V], h1[V];
      int32_t o0 = -1, o1 = -1;
      auto row_sum = [&](int32_t o, H(&h)[V]) {
#pragma unroll
        for (int v = 0; v < V; ++v) {
          if constexpr (kLinear) {
            A racc = 0;
#pragma unroll
            for (int kx = 0; kx < 2; ++kx)
              racc = madd(racc, wx[v][kx], static_cast<A>(to_compute(s[o + xo[v][kx]])));
            h[v] = racc;
          } else {
            h[v] = s[o + xo[v][0]];
          }
        }
      };
      for (int32_t r = r_first; r < r_end; ++r) {
        const int32_t n0 = s_off[r][0], n1 = s_off[r][1];
        if (n0 != o0) {
          if (n0 == o1) {
#pragma unroll
            for (int v = 0; v < V; ++v) h0[v] = h1[v];
          } else {
            row_sum(n0, h0);
          }
          o0 = n0;
        }
        if (kLinear && n1 != o1) {
          if (n1 == o0) {
#pragma unroll
            for (int v = 0; v < V; ++v) h1[v] = h0[v];
          } else {
            row_sum(n1, h1);
          }
          o1 = n1;
        }
        Vec<T, V> out;
#pragma unroll
        for (int v = 0; v < V; ++v) {
          if constexpr (kLinear) {
            const A val = madd(madd(A(0), s_w[r][0], h0[v]), s_w[r][1], h1[v]);
            out.v[v] = store<T>(val);
          } else {
            out.v[v] = wx[v][0] == A(0) || s_w[r][0] == A(0) ? T{} : h0[v];
          }
        }
        *reinterpret_cast<Vec<T, V>*>(d + r * g.row) = out;
      }
    }
  }
}

// ---- host ------------------------------------------------------------------------------

/// The CPU's plan (ops/resize.h) from the constant scales / sizes / roi inputs.
/// NoGpuKernel when one of them is not a constant; the CPU's errors for bad values.
Result<ops::ResizePlan> make_plan(const KernelConfig& cfg, const ops::ResizeParams& p) {
  KILN_ASSIGN_OR_RETURN(
      std::optional<ops::ResizePlan> plan,
      ops::plan_resize_from_inputs(
          cfg.node, p, cfg.in(0).dims,
          [&](int i) { return cfg.in(i).value; },
          [&](int i) { return cfg.has_input(i); }));
  if (!plan) return cfg.unsupported("scales, sizes or roi is not a constant");
  if (plan->out_dims != cfg.out(0).dims)
    return cfg.error(ErrorCode::kInternal, "Resize output dims disagree with shape inference", "");
  return std::move(*plan);
}

/// Bytes of store<T>(v) in the output dtype (the extrapolation value of nearest).
uint64_t stored_bits(DataType t, double v) {
  HostTensor h(t, {});
  if (dtype_is_int(t)) {
    v = std::nearbyint(v);
    const double bits = static_cast<double>(dtype_size(t) * 8);
    const double lo = dtype_is_signed(t) ? -std::exp2(bits - 1) : 0.0;
    const double hi = dtype_is_signed(t) ? std::exp2(bits - 1) - 1 : std::exp2(bits) - 1;
    v = std::clamp(v, lo, hi);
    if (t == DataType::kU64 && v >= 18446744073709551615.0) {
      const uint64_t m = std::numeric_limits<uint64_t>::max();
      std::memcpy(h.raw(), &m, 8);
    } else if (t == DataType::kI64 && v >= 9223372036854775807.0) {
      h.set_i64(0, std::numeric_limits<int64_t>::max());
    } else {
      h.set_i64(0, static_cast<int64_t>(v));
    }
  } else {
    h.set_f64(0, t == DataType::kF64 ? v : static_cast<double>(static_cast<float>(v)));
  }
  uint64_t b = 0;
  std::memcpy(&b, h.raw(), dtype_size(t));
  return b;
}

class ResizeKernel final : public Kernel {
 public:
  /// `taps[k]`: taps per output index of resized axis k; `vec`: the widest unit nearest may
  /// copy (bytes); `extrap_bits`: the extrapolation value stored in the dtype.
  ResizeKernel(ResizeArgs p, DataType dt, int64_t numel, std::vector<int> taps, size_t vec,
               uint64_t extrap_bits, bool plane2d, Plane2d g)
      : plane2d_(plane2d),
        g_(g),
        p_(p),
        dt_(dt),
        es_(dtype_size(dt)),
        numel_(numel),
        taps_(std::move(taps)),
        vec_(vec),
        extrap_bits_(extrap_bits) {
    for (int w = 0; w < 2; ++w) {
      const int64_t f = static_cast<int64_t>((w ? vec_ : es_) / es_);
      Decoder& dc = dec_[w];
      dc.rank = p_.rank;
      dc.fast = numel_ > 0 && numel_ / f < dm::kFastIndexLimit;  // (FastDiv needs dims > 0)
      for (int d = 0; d < p_.rank; ++d) {
        dc.dims[d] = p_.out_dims[d] / (d + 1 == p_.rank ? f : 1);
        if (dc.fast) dc.div[d] = FastDiv(static_cast<uint32_t>(dc.dims[d]));
      }
    }
  }

  std::string tactic() const override {
    if (nearest()) return "kiln:resize_nearest" + std::to_string(vec_ * 8);
    return p_.mode == kLinear ? "kiln:resize_linear" : "kiln:resize_cubic";
  }

  /// The tap tables: per resized axis, out * taps offsets and weights (8 bytes each) and
  /// out flag bytes, each array 256-byte aligned.
  size_t workspace_bytes() const override {
    size_t b = 0;
    for (int k = 0; k < p_.n_axes; ++k) b += table_bytes(k);
    return b;
  }

  Status enqueue(const LaunchArgs& a) override {
    if (numel_ == 0) return Status::ok();
    const bool wide = nearest() && vec_ > es_ &&
                      (dm::address_bits(a.inputs[0]) | dm::address_bits(a.outputs[0])) % vec_ == 0;
    const size_t unit = wide ? vec_ : es_;
    const int64_t f = static_cast<int64_t>(unit / es_), n = numel_ / f;
    ResizeArgs p = p_;
    if (f > 1) {  // innermost axis is not resized and contiguous on both sides
      for (int d = 0; d + 1 < p.rank; ++d) p.in_stride[d] /= f;
      for (int k = 0; k < p.n_axes; ++k) p.ax[k].stride /= f;
    }
    TapTables t;
    char* ws = static_cast<char*>(a.workspace);
    t.first[0] = 0;
    for (int k = 0; k < p.n_axes; ++k) {
      const int64_t entries = p.ax[k].out * taps_[k];
      t.n[k] = taps_[k];
      t.off[k] = reinterpret_cast<int64_t*>(ws);
      t.w[k] = ws + align(entries * 8);
      t.flags[k] = reinterpret_cast<uint8_t*>(ws + 2 * align(entries * 8));
      ws += table_bytes(k);
      t.first[k + 1] = t.first[k] + p.ax[k].out;
    }
    const Decoder& dc = dec_[wide ? 1 : 0];
    Plane2d g = g_;
    if (plane2d_) {
      g.in_plane /= f;
      g.inner /= f;
      g.row /= f;
      g.inner_div = FastDiv(static_cast<uint32_t>(g.inner));
    }
    // Each thread walks several rows (grid-stride in y) so that its X taps are loaded once;
    // about kTargetBlocks blocks keep every SM busy.
    constexpr int64_t kTargetBlocks = 4096;
    const int64_t bx = std::max<int64_t>(1, (g.row + kBlock - 1) / kBlock);
    const int64_t bz = std::min<int64_t>(g.planes, 65535);
    const int64_t by = std::clamp<int64_t>((kTargetBlocks + bx * bz - 1) / (bx * bz), 1,
                                           std::clamp<int64_t>(g.out_y, 1, 65535));
    const dim3 grid2d(static_cast<unsigned>(bx), static_cast<unsigned>(by),
                      static_cast<unsigned>(bz));
    if (nearest()) {
      if (p.n_axes > 0) KILN_RETURN_IF_ERROR(build_tables<float>(p, t, a.stream));
      return dm::dispatch_unit(unit, [&](auto u) -> Status {
        using U = decltype(u);
        unsigned char bytes[sizeof(U)];
        for (size_t k = 0; k < sizeof(U); ++k)
          bytes[k] = reinterpret_cast<const unsigned char*>(&extrap_bits_)[k % es_];
        U extrap;
        std::memcpy(&extrap, bytes, sizeof(U));
        if (plane2d_)
          resize_nearest_2d_kernel<U><<<grid2d, kBlock, 0, a.stream>>>(
              static_cast<const U*>(a.inputs[0]), static_cast<U*>(a.outputs[0]), g, t, extrap);
        else
          resize_nearest_kernel<U><<<grid_for(n), kBlock, 0, a.stream>>>(
              static_cast<const U*>(a.inputs[0]), static_cast<U*>(a.outputs[0]), n, p, dc, t,
              extrap);
        KILN_CUDA_CHECK_LAUNCH("resize_nearest_kernel");
        return Status::ok();
      });
    }
    return dispatch_launch<KILN_FLOAT_TYPES, KILN_INT_TYPES>(dt_, [&](auto tag) -> Status {
      using T = decltype(tag);
      KILN_RETURN_IF_ERROR(build_tables<interp_t<T>>(p, t, a.stream));
      const T* src = static_cast<const T*>(a.inputs[0]);
      T* dst = static_cast<T*>(a.outputs[0]);
      if (plane2d_) {
        resize_interp_2d_kernel<T><<<grid2d, kBlock, 0, a.stream>>>(src, dst, p, g, t);
        KILN_CUDA_CHECK_LAUNCH("resize_interp_2d_kernel");
        return Status::ok();
      }
      switch (p.n_axes) {
        case 1:
          resize_interp_kernel<T, 1><<<grid_for(n), kBlock, 0, a.stream>>>(src, dst, n, p, dc, t);
          break;
        case 2:
          resize_interp_kernel<T, 2><<<grid_for(n), kBlock, 0, a.stream>>>(src, dst, n, p, dc, t);
          break;
        case 3:
          resize_interp_kernel<T, 3><<<grid_for(n), kBlock, 0, a.stream>>>(src, dst, n, p, dc, t);
          break;
        default:
          resize_interp_kernel<T, 0><<<grid_for(n), kBlock, 0, a.stream>>>(src, dst, n, p, dc, t);
      }
      KILN_CUDA_CHECK_LAUNCH("resize_interp_kernel");
      return Status::ok();
    });
  }

 private:
  static int64_t align(int64_t b) { return (b + 255) / 256 * 256; }
  size_t table_bytes(int k) const {
    const int64_t entries = p_.ax[k].out * taps_[k];
    return static_cast<size_t>(2 * align(entries * 8) + align(p_.ax[k].out));
  }
  bool nearest() const { return p_.n_axes == 0 || p_.mode == kNearest; }

  template <typename A>
  Status build_tables(const ResizeArgs& p, const TapTables& t, cudaStream_t stream) const {
    const int64_t total = t.first[p.n_axes];
    resize_taps_kernel<A><<<grid_for(total), kBlock, 0, stream>>>(p, t);
    KILN_CUDA_CHECK_LAUNCH("resize_taps_kernel");
    return Status::ok();
  }

  bool plane2d_;
  Plane2d g_;  ///< in elements; scaled to the unit at enqueue
  ResizeArgs p_;
  DataType dt_;
  size_t es_;
  int64_t numel_;
  std::vector<int> taps_;
  size_t vec_;
  uint64_t extrap_bits_;
  Decoder dec_[2];  ///< output decoding in element units and in vec_-byte units
};

/// Calls f(std::integral_constant<int, V>{}) for V in {1, 2, 4, 8}.
template <typename F>
Status dispatch_vec(int v, F&& f) {
  switch (v) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 8: return f(std::integral_constant<int, 8>{});
    default: break;
  }
  return Status(ErrorCode::kInternal, "no resize_hw_kernel for " + std::to_string(v) + " units");
}

/// Resize through resize_hw_kernel (see there). `vec` units of `unit` bytes per thread; a
/// buffer not aligned to that at enqueue (never with the planner's 256-byte aligned
/// buffers) falls back to one element per thread.
class ResizeHwKernel final : public Kernel {
 public:
  /// `unit`: bytes per unit (the dtype size, or 16 for nearest over 16-byte channel runs);
  /// `wide`: the geometry in those units with vec per thread; `scalar`: in elements, one
  /// per thread.
  ResizeHwKernel(ResizeArgs p, DataType dt, size_t unit, int vec, HwGeom wide, HwGeom scalar,
                 std::string layouts)
      : p_(p), dt_(dt), es_(dtype_size(dt)), unit_(unit), vec_(vec), wide_(wide),
        scalar_(scalar), layouts_(std::move(layouts)) {}

  std::string tactic() const override {
    return std::string(linear() ? "kiln:resize_linear2d_" : "kiln:resize_nearest2d_") + layouts_ +
           "_v" + std::to_string(vec_) + (linear() ? "" : "x" + std::to_string(unit_ * 8));
  }

  Status enqueue(const LaunchArgs& a) override {
    const size_t bytes = static_cast<size_t>(vec_) * unit_;
    const bool wide = bytes > es_ && (dm::address_bits(a.inputs[0]) |
                                      dm::address_bits(a.outputs[0])) % bytes == 0;
    HwGeom g = wide ? wide_ : scalar_;
    const int vec = wide ? vec_ : 1;
    const size_t unit = wide ? unit_ : es_;
    // Blocks span one row (up to kBlock items) and as many runs of rows as fit. Longer runs
    // reuse more source rows; shorter ones give more threads: runs shrink from kMaxRun to
    // 4 rows until about kTargetThreads threads cover the output, and images are split
    // over grid z evenly to reach it.
    constexpr int64_t kTargetThreads = int64_t{1} << 18;
    int tx = 32;
    while (tx < kBlock && tx < g.row_v) tx *= 2;
    const int ty = kBlock / tx;
    const int64_t bx = (g.row_v + tx - 1) / tx;
    auto row_blocks = [&](int run) {
      return std::min<int64_t>((g.out_h + int64_t{ty} * run - 1) / (int64_t{ty} * run), 65535);
    };
    g.run = kMaxRun;
    while (g.run > 4 && bx * row_blocks(g.run) * kBlock * g.images < kTargetThreads) g.run /= 2;
    const int64_t by = row_blocks(g.run);
    const int64_t want_z =
        std::clamp<int64_t>((kTargetThreads + bx * by * kBlock - 1) / (bx * by * kBlock), 1,
                            std::min<int64_t>(g.images, 65535));
    const int64_t per_z = (g.images + want_z - 1) / want_z;
    const int64_t bz = (g.images + per_z - 1) / per_z;
    const dim3 grid(static_cast<unsigned>(bx), static_cast<unsigned>(by),
                    static_cast<unsigned>(bz));
    const dim3 block(static_cast<unsigned>(tx), static_cast<unsigned>(ty));
    auto launch = [&](auto tag, auto vtag, auto lin) -> Status {
      using T = decltype(tag);
      constexpr int V = decltype(vtag)::value;
      if constexpr (sizeof(T) * V > 16) {
        return Status(ErrorCode::kInternal, "resize_hw_kernel vector wider than 16 bytes");
      } else {
        resize_hw_kernel<T, V, decltype(lin)::value><<<grid, block, 0, a.stream>>>(
            static_cast<const T*>(a.inputs[0]), static_cast<T*>(a.outputs[0]), p_, g);
        KILN_CUDA_CHECK_LAUNCH("resize_hw_kernel");
        return Status::ok();
      }
    };
    if (linear())
      return dispatch_launch<KILN_FLOAT_TYPES>(dt_, [&](auto tag) -> Status {
        return dispatch_vec(vec, [&](auto v) { return launch(tag, v, std::true_type{}); });
      });
    return dm::dispatch_unit(unit, [&](auto u) -> Status {
      return dispatch_vec(vec, [&](auto v) { return launch(u, v, std::false_type{}); });
    });
  }

 private:
  bool linear() const { return p_.mode == kLinear; }

  ResizeArgs p_;
  DataType dt_;
  size_t es_, unit_;
  int vec_;
  HwGeom wide_, scalar_;
  std::string layouts_;
};

/// The 4-D fast path for a plan when it applies, else null: rank 4, exactly H and W
/// resized, linear (float dtypes) or nearest (any dtype), no antialias, not
/// tf_crop_and_resize (nothing is extrapolated), both tensors non-empty and < 2^31 elements.
std::unique_ptr<Kernel> make_resize_hw(const KernelConfig& cfg, const ResizeArgs& a,
                                       const std::vector<int>& slot_of) {
  const Operand& in = cfg.in(0);
  const Operand& out = cfg.out(0);
  const DataType dt = in.dtype;
  const bool float_type = dt == DataType::kF32 || dt == DataType::kF16 ||
                          dt == DataType::kBF16 || dt == DataType::kF64;
  if (in.rank() != 4 || out.rank() != 4 || a.n_axes != 2 || slot_of[2] != 0 || slot_of[3] != 1 ||
      a.antialias || a.coord == kTfCropAndResize || in.numel() == 0 || out.numel() == 0 ||
      in.numel() >= dm::kFastIndexLimit || out.numel() >= dm::kFastIndexLimit)
    return nullptr;
  if (!(a.mode == kNearest || (a.mode == kLinear && float_type))) return nullptr;
  const bool in_nhwc = in.layout == Layout::kNhwc, out_nhwc = out.layout == Layout::kNhwc;
  const int64_t N = in.dims[0], C = in.dims[1], IH = in.dims[2], IW = in.dims[3];
  const int64_t OH = out.dims[2], OW = out.dims[3];
  const size_t es = dtype_size(dt);
  // Geometry with `unit`-byte units and `vec` units per thread.
  auto geometry = [&](size_t unit, int vec) {
    const int64_t cu = static_cast<int64_t>(static_cast<size_t>(C) * es / unit);  // C in units
    HwGeom g;
    g.out_h = static_cast<int32_t>(OH);
    g.row = static_cast<int32_t>(out_nhwc ? OW * cu : OW);
    g.row_v = g.row / vec;
    g.images = static_cast<int32_t>(out_nhwc ? N : N * C);
    g.inner = FastDiv(static_cast<uint32_t>(out_nhwc ? cu : 1));
    g.image_c = FastDiv(static_cast<uint32_t>(out_nhwc ? 1 : C));
    g.in_c = static_cast<int32_t>(in_nhwc ? 1 : IH * IW);
    g.in_w = static_cast<int32_t>(in_nhwc ? cu : 1);
    g.in_h = static_cast<int32_t>(in_nhwc ? IW * cu : IW);
    g.in_n = static_cast<int32_t>(IH * IW * cu);
    return g;
  };
  // Nearest on NHWC data moves whole 16-byte channel runs when C allows; otherwise up to 8
  // units (16 bytes) per thread, as many as divide a row.
  size_t unit = es;
  if (a.mode == kNearest && in_nhwc && out_nhwc && (static_cast<size_t>(C) * es) % 16 == 0)
    unit = 16;
  const int64_t row = geometry(unit, 1).row;
  int vec = 1;
  if (unit < 16)
    while (vec < 8 && static_cast<size_t>(vec) * 2 * unit <= 16 && row % (vec * 2) == 0) vec *= 2;
  const std::string layouts = in_nhwc == out_nhwc ? (in_nhwc ? "nhwc" : "nchw")
                                                  : (in_nhwc ? "nhwc_to_nchw" : "nchw_to_nhwc");
  return std::make_unique<ResizeHwKernel>(a, dt, unit, vec, geometry(unit, vec),
                                          geometry(es, 1), layouts);
}

Result<std::unique_ptr<Kernel>> create_resize(const KernelConfig& cfg) {
  const Operand& in = cfg.in(0);
  const Operand& out = cfg.out(0);
  const DataType dt = in.dtype;
  if (dt == DataType::kBool || dt == DataType::kF8E4M3 || dt == DataType::kUndefined)
    return cfg.unsupported(std::string("dtype ") + dtype_name(dt));
  if (in.rank() > static_cast<size_t>(kMaxRank) || !dm::layout_valid(in) || !dm::layout_valid(out))
    return cfg.unsupported("rank > 8 or a kNhwc operand of rank < 3");
  KILN_ASSIGN_OR_RETURN(ops::ResizeParams p, ops::parse_resize_params(cfg.node));
  KILN_ASSIGN_OR_RETURN(ops::ResizePlan plan, make_plan(cfg, p));
  if (out.numel() > 0 && in.numel() == 0)
    return cfg.error(ErrorCode::kShapeMismatch,
                     "cannot resize an empty input to a non-empty output", "");

  ResizeArgs a;
  a.mode = static_cast<int>(p.mode);
  a.coord = static_cast<int>(p.coord);
  a.nearest = static_cast<int>(p.nearest);
  a.exclude_outside = p.exclude_outside;
  a.antialias = p.antialias;
  a.cubic_a = p.cubic_a;
  a.extrapolation = p.extrapolation;
  const auto in_st = dm::logical_strides(in);
  std::vector<int> slot_of(in.rank(), -1);
  int64_t taps = 1;
  std::vector<int> axis_taps;
  bool narrow = true, any_extrap = false;  // conditions of the CPU's 2-D fast path
  for (size_t d = 0; d < in.rank(); ++d) {
    if (ops::resize_axis_is_identity(p, plan, d, in.dims[d])) continue;
    slot_of[d] = a.n_axes;
    a.ax[a.n_axes++] = {in.dims[d],        plan.out_dims[d], plan.scales[d],
                        plan.roi_start[d], plan.roi_end[d],  in_st[d]};
    int64_t n = a.mode == kNearest ? 1 : a.mode == kLinear ? 2 : 4;
    if (p.antialias) {
      const double s = std::min(plan.scales[d], 1.0);
      n = 2 - 2 * static_cast<int64_t>(std::floor((a.mode == kLinear ? -1 : -2) / s) + 1);
    }
    taps = std::min(taps * n, kMaxTapProduct + 1);
    axis_taps.push_back(static_cast<int>(std::min<int64_t>(n, kMaxTapProduct + 1)));
    narrow &= n <= 2;
    for (int64_t o = 0; a.coord == kTfCropAndResize && o < plan.out_dims[d] && !any_extrap; ++o) {
      bool ex;
      source_coord(a.coord, a.ax[a.n_axes - 1], static_cast<double>(o), ex);
      any_extrap |= ex;
    }
  }
  if (taps > kMaxTapProduct) return cfg.unsupported("antialias filter wider than 4096 taps");
  const int64_t r = static_cast<int64_t>(in.rank());
  a.fast2d = a.n_axes == 2 && r >= 2 && slot_of[r - 2] == 0 && slot_of[r - 1] == 1 && narrow &&
             !any_extrap;
  const std::vector<int> order = dm::memory_order(out);
  a.rank = static_cast<int>(order.size());
  for (int k = 0; k < a.rank; ++k) {
    a.out_dims[k] = out.dims[order[k]];
    a.in_stride[k] = in_st[order[k]];
    a.slot[k] = slot_of[order[k]];
  }
  if (a.rank == 0) {  // rank 0: one element
    a.rank = 1;
    a.out_dims[0] = 1;
    a.in_stride[0] = 1;
    a.slot[0] = -1;
  }
  if (std::unique_ptr<Kernel> fast = make_resize_hw(cfg, a, slot_of)) return std::move(fast);
  // Nearest copies units; widen them when the innermost axis is untouched and contiguous.
  const size_t es = dtype_size(dt);
  size_t vec = es;
  const int last = a.rank - 1;
  if ((a.n_axes == 0 || a.mode == kNearest) && a.slot[last] < 0 && a.in_stride[last] == 1) {
    uint64_t bits = static_cast<uint64_t>(a.out_dims[last]) * es;
    for (int d = 0; d < last; ++d) bits |= static_cast<uint64_t>(a.in_stride[d]) * es;
    for (int k = 0; k < a.n_axes; ++k) bits |= static_cast<uint64_t>(a.ax[k].stride) * es;
    vec = std::max(es, dm::widest_unit(bits));
  }
  // Plane2d: both resized axes adjacent in memory (Y then X), same layout on both sides.
  Plane2d g;
  bool plane2d = false;
  if (a.n_axes == 2 && in.layout == out.layout && out.numel() < dm::kFastIndexLimit) {
    int py = -1, px = -1;
    for (int k = 0; k < a.rank; ++k) {
      if (a.slot[k] == 0) py = k;
      if (a.slot[k] == 1) px = k;
    }
    plane2d = px == py + 1 &&
              (a.mode == kNearest || (axis_taps[0] <= kMaxTaps2d && axis_taps[1] <= kMaxTaps2d));
    if (plane2d) {
      for (int k = 0; k < py; ++k) g.planes *= a.out_dims[k];
      for (int k = px + 1; k < a.rank; ++k) g.inner *= a.out_dims[k];
      g.out_y = a.out_dims[py];
      g.row = a.out_dims[px] * g.inner;
      g.in_plane = a.ax[0].in * a.ax[1].in * g.inner;
    }
  }
  return std::unique_ptr<Kernel>(new ResizeKernel(a, dt, out.numel(), axis_taps, vec,
                                                  stored_bits(dt, p.extrapolation), plane2d, g));
}

}  // namespace

KILN_REGISTER_CUDA_KERNELS(resize) {
  reg.add({.op_type = "Resize", .create = create_resize, .nhwc = true});
  reg.add({.op_type = "Upsample", .create = create_resize, .nhwc = true});
}

}  // namespace kiln::cuda
