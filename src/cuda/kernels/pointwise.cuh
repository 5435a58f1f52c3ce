// Launch machinery shared by the pointwise kernel families (unary.cu, binary.cu): an
// elementwise functor applied over N inputs of possibly different element types with numpy
// broadcasting (ONNX Broadcasting.md, multidirectional and unidirectional).
//
// The host side merges the output dims into as few dims as the broadcast pattern allows
// (size-1 dims dropped, adjacent dims merged when every input walks them contiguously, the
// same rule as ops::for_each_broadcast_row), then enqueue picks one of three kernels:
//  - pointwise_flat_kernel: every input has the output's shape or is a single element; the
//    tensors are walked as flat arrays with 16-byte vector loads/stores (4 floats, 8 halves
//    per thread). Needs every pointer aligned for it.
//  - pointwise_broadcast_vec_kernel: real broadcasting whose innermost merged dim is a
//    multiple of the vector width (bias [C,1,1], row [H] operands...): one index
//    computation per 16-byte pack; inputs broadcast along that dim are splatted.
//  - pointwise_strided_kernel: anything else (odd inner dims, unaligned data); each input
//    has its own strides over the merged dims, 32-bit index math when it fits.
// Functors take and return compute types (f32 for f16/bf16, see common.cuh) and are
// trivially copyable structs built on the host from the node's attributes.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda/kernels/common.cuh"

namespace kiln::cuda {

// ---- device math: one overload per compute type ------------------------------------------

/// Float and double overloads of the libm functions the pointwise functors use, so a
/// functor templated on its compute type calls the f32 intrinsic for f32/f16/bf16 data and
/// the f64 one for f64 data (mirrors std:: overload resolution in the CPU kernels).
namespace dmath {
#define KILN_DMATH1(NAME, FN)                                                             \
  __device__ __forceinline__ float NAME(float x) { return FN##f(x); }                    \
  __device__ __forceinline__ double NAME(double x) { return FN(x); }
#define KILN_DMATH2(NAME, FN)                                                             \
  __device__ __forceinline__ float NAME(float x, float y) { return FN##f(x, y); }        \
  __device__ __forceinline__ double NAME(double x, double y) { return FN(x, y); }
KILN_DMATH1(exp, ::exp) KILN_DMATH1(expm1, ::expm1) KILN_DMATH1(log, ::log)
KILN_DMATH1(log1p, ::log1p) KILN_DMATH1(sqrt, ::sqrt) KILN_DMATH1(sin, ::sin)
KILN_DMATH1(cos, ::cos) KILN_DMATH1(tan, ::tan) KILN_DMATH1(asin, ::asin)
KILN_DMATH1(acos, ::acos) KILN_DMATH1(atan, ::atan) KILN_DMATH1(sinh, ::sinh)
KILN_DMATH1(cosh, ::cosh) KILN_DMATH1(tanh, ::tanh) KILN_DMATH1(asinh, ::asinh)
KILN_DMATH1(acosh, ::acosh) KILN_DMATH1(atanh, ::atanh) KILN_DMATH1(erf, ::erf)
KILN_DMATH1(floor, ::floor) KILN_DMATH1(ceil, ::ceil) KILN_DMATH1(fabs, ::fabs)
KILN_DMATH1(rint, ::rint)
KILN_DMATH2(fmod, ::fmod) KILN_DMATH2(copysign, ::copysign) KILN_DMATH2(pow, ::pow)
#undef KILN_DMATH1
#undef KILN_DMATH2
__device__ __forceinline__ bool isnan(float x) { return ::isnan(x); }
__device__ __forceinline__ bool isnan(double x) { return ::isnan(x); }
__device__ __forceinline__ bool isinf(float x) { return ::isinf(x); }
__device__ __forceinline__ bool isinf(double x) { return ::isinf(x); }
}  // namespace dmath

/// Device twin of ops::float_to_int (src/ops/helpers.h), so GPU Cast/Erf/Shrink/Pow on
/// integers give bit-identical results: truncation toward zero, NaN → 0, values outside
/// the target range wrap through int64 (u64 saturates above 2^64).
template <typename T>
__device__ __forceinline__ T float_to_int(double v) {
  if (::isnan(v)) return T(0);
  if constexpr (std::is_same_v<T, uint64_t>) {
    if (v >= 18446744073709551616.0) return ~uint64_t{0};
    if (v >= 9223372036854775808.0) return static_cast<uint64_t>(v);
  }
  if (v >= 9223372036854775808.0 || v < -9223372036854775808.0)
    return static_cast<T>(std::numeric_limits<int64_t>::min());
  return static_cast<T>(static_cast<int64_t>(v));
}

// ---- dtype sets -----------------------------------------------------------------------------

/// Element-type sets of the pointwise ops (the CPU kernels' ops::TypeSet minus f8e4m3,
/// which has no device type); combine with |.
enum PwTypes : uint32_t {
  kPwFloat = 1u << 0,     ///< f32 f16 bf16 f64
  kPwSigned = 1u << 1,    ///< i8 i16 i32 i64
  kPwUnsigned = 1u << 2,  ///< u8 u16 u32 u64
  kPwBool = 1u << 3,
  kPwInt = kPwSigned | kPwUnsigned,
  kPwNumeric = kPwFloat | kPwInt,
  kPwAll = kPwNumeric | kPwBool,
};

/// The PwTypes bit of a dtype (0 for dtypes without a device type).
constexpr uint32_t pw_type_bit(DataType d) {
  switch (d) {
    case DataType::kF32: case DataType::kF16: case DataType::kBF16: case DataType::kF64:
      return kPwFloat;
    case DataType::kI8: case DataType::kI16: case DataType::kI32: case DataType::kI64:
      return kPwSigned;
    case DataType::kU8: case DataType::kU16: case DataType::kU32: case DataType::kU64:
      return kPwUnsigned;
    case DataType::kBool: return kPwBool;
    default: return 0;
  }
}

/// What a pointwise factory returns.
using KernelResult = Result<std::unique_ptr<Kernel>>;

// dispatch_set's fold: one compile-time-filtered comparison per dtype.
template <uint32_t Set, DataType D, typename F>
void dispatch_one(DataType dt, KernelResult& result, F& f) {
  if constexpr ((pw_type_bit(D) & Set) != 0)
    if (dt == D) (void)(result = f(typename DeviceType<D>::type{}));
}
template <uint32_t Set, DataType... Ds, typename F>
void dispatch_each(DataType dt, KernelResult& result, F& f) {
  (dispatch_one<Set, Ds>(dt, result, f), ...);
}

/// Calls f(T{}) (T = the device type of `dt`) when dt is in the compile-time Set, generating
/// only those instantiations; returns f's KernelResult, or NoGpuKernel for other dtypes.
template <uint32_t Set, typename F>
KernelResult dispatch_set(DataType dt, const KernelConfig& cfg, F&& f) {
  KernelResult result = cfg.unsupported(std::string("dtype ") + dtype_name(dt));
  dispatch_each<Set, KILN_ALL_TYPES>(dt, result, f);
  return result;
}

/// Element 0 of a host tensor of device type T, in T's compute type (Clip bounds).
template <typename T>
compute_t<T> host_scalar(const HostTensor& t) {
  T v;
  std::memcpy(&v, t.raw(), sizeof(T));
  if constexpr (std::is_same_v<T, __half>) return __half2float(v);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
  else return v;
}

/// Builds a functor from the node's attributes when it takes them, else default-constructs.
template <typename Op>
Op make_op(const ir::Node& n) {
  if constexpr (std::is_constructible_v<Op, const ir::Node&>) return Op(n);
  else return Op{};
}

// ---- broadcast plan (host) ------------------------------------------------------------------

/// Maximum number of inputs one variadic (Max/Min/Sum/Mean) launch reads; more inputs are
/// folded in over several launches.
constexpr int kMaxVariadicInputs = 16;

/// Output dims merged as far as the broadcast pattern allows, with each input's element
/// strides over them (0 = broadcast).
struct BroadcastPlan {
  int64_t numel = 0;
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> strides;  ///< [input][dim]
  /// Every input is the output's shape or a single element: a flat walk works.
  bool flat() const { return dims.size() <= 1; }
};

/// Plans the broadcast of inputs with dims `in_dims` (already adjusted for legacy axis
/// broadcasting) and memory layouts `in_layouts` to the output `out`. The plan walks the
/// output in its memory order (channels last for kNhwc) and gives every input its element
/// strides along that walk, so operands of any mix of row-major and kNhwc layouts work: the
/// same layout everywhere stays a flat walk, a per-channel [N,C,1,1] operand of an NHWC
/// output broadcasts along the innermost dim, and mixed layouts (a reformat fused into the
/// op) take the strided kernel. Errors: ShapeMismatch when an input does not broadcast to
/// the output (shape inference should have caught it); NoGpuKernel for a kNhwc input whose
/// rank differs from the output's, or more than kMaxRank dims left after merging.
inline Result<BroadcastPlan> plan_broadcast(const KernelConfig& cfg,
                                            const std::vector<std::vector<int64_t>>& in_dims,
                                            const std::vector<Layout>& in_layouts,
                                            const Operand& out) {
  BroadcastPlan plan;
  const std::vector<int64_t>& out_dims = out.dims;
  const size_t n_in = in_dims.size();
  plan.strides.resize(n_in);
  plan.numel = out.numel();
  const size_t r = out_dims.size();
  std::vector<std::vector<int64_t>> full(n_in, std::vector<int64_t>(r, 0));
  for (size_t k = 0; k < n_in; ++k) {
    const std::vector<int64_t>& id = in_dims[k];
    auto mismatch = [&] {
      std::string msg = "input " + std::to_string(k) + " dims [";
      for (size_t j = 0; j < id.size(); ++j) msg += (j ? "," : "") + std::to_string(id[j]);
      msg += "] do not broadcast to the output's [";
      for (size_t j = 0; j < r; ++j) msg += (j ? "," : "") + std::to_string(out_dims[j]);
      return cfg.error(ErrorCode::kShapeMismatch, msg + "]");
    };
    if (id.size() > r) return mismatch();
    const size_t lead = r - id.size();
    const bool nhwc = in_layouts[k] == Layout::kNhwc && id.size() >= 3;
    if (nhwc && lead != 0) return cfg.unsupported("a kNhwc input of another rank than the output");
    Operand view;
    view.dims = id;
    view.layout = nhwc ? Layout::kNhwc : Layout::kRowMajor;
    const std::vector<int64_t> st = logical_strides(view);
    for (size_t j = 0; j < id.size(); ++j) {
      if (id[j] != out_dims[lead + j] && id[j] != 1) return mismatch();
      full[k][lead + j] = id[j] == 1 ? 0 : st[j];
    }
  }
  if (plan.numel == 0) return plan;
  // Walk the output in memory order.
  const std::vector<int> order = memory_order(out);
  // Drop size-1 dims; merge dim d into the previous kept dim when every input steps
  // through the pair as through one dim (stride_prev == stride_d * dim_d).
  for (int d : order) {
    if (out_dims[d] == 1) continue;
    bool merge = !plan.dims.empty();
    for (size_t k = 0; merge && k < n_in; ++k)
      merge = plan.strides[k].back() == full[k][d] * out_dims[d];
    if (merge) {
      plan.dims.back() *= out_dims[d];
      for (size_t k = 0; k < n_in; ++k) plan.strides[k].back() = full[k][d];
    } else {
      plan.dims.push_back(out_dims[d]);
      for (size_t k = 0; k < n_in; ++k) plan.strides[k].push_back(full[k][d]);
    }
  }
  if (plan.dims.empty()) {  // a single element
    plan.dims.push_back(1);
    for (auto& st : plan.strides) st.push_back(0);
  }
  if (plan.dims.size() > static_cast<size_t>(kMaxRank))
    return cfg.unsupported("broadcast of rank " + std::to_string(plan.dims.size()) +
                           " after merging dims (max " + std::to_string(kMaxRank) + ")");
  return plan;
}

/// B's dims as numpy broadcasting must see them for binary ops before opset 7 (attribute
/// broadcast=1 aligns B with A from attribute `axis`: append trailing 1s), else in(1).dims.
/// Mirrors ops::rhs_broadcast_shape. Errors: ShapeMismatch when B does not fit at axis.
inline Result<std::vector<int64_t>> legacy_rhs_dims(const KernelConfig& cfg) {
  std::vector<int64_t> b = cfg.in(1).dims;
  const ir::Node& n = cfg.node;
  if (n.opset >= 7 || n.attr_i("broadcast", 0) == 0 || !n.has_attr("axis")) return b;
  const int64_t a_rank = static_cast<int64_t>(cfg.in(0).rank());
  int64_t axis = n.attr_i("axis", 0);
  if (axis < 0) axis += a_rank;
  const int64_t ones = a_rank - axis - static_cast<int64_t>(b.size());
  if (axis < 0 || ones < 0)
    return cfg.error(ErrorCode::kShapeMismatch,
                     "B of rank " + std::to_string(b.size()) + " does not fit into A of rank " +
                         std::to_string(a_rank) + " at axis " + std::to_string(axis));
  b.insert(b.end(), ones, 1);
  return b;
}

// ---- device indexing ------------------------------------------------------------------------

/// Pointers of a launch's inputs (typed per input by the kernel).
template <int N> struct PwPtrs { const void* p[N]; };

/// Merged output dims with per-input strides; offsets() maps a linear output index to every
/// input's element offset in one pass of divisions. I = uint32_t when numel < 2^31.
template <int N> struct PwIndex {
  int rank = 0;
  int64_t dims[kMaxRank];
  int64_t strides[N][kMaxRank];

  template <typename I>
  __device__ __forceinline__ void offsets(I linear, I (&off)[N], int count = N) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = rank - 1; d > 0; --d) {
      const I dim = static_cast<I>(dims[d]);
      const I q = linear / dim;
      const I r = linear - q * dim;
#pragma unroll
      for (int k = 0; k < N; ++k)
        if (k < count) off[k] += r * static_cast<I>(strides[k][d]);
      linear = q;
    }
    // linear < dims[0] now: the outermost dim needs no division.
#pragma unroll
    for (int k = 0; k < N; ++k)
      if (k < count) off[k] += linear * static_cast<I>(strides[k][0]);
  }
};

/// PwIndex of a plan's first `count` inputs starting at `first` (count <= N).
template <int N>
PwIndex<N> make_pw_index(const BroadcastPlan& plan, size_t first = 0, size_t count = N) {
  PwIndex<N> ix{};
  ix.rank = static_cast<int>(plan.dims.size());
  for (int d = 0; d < ix.rank; ++d) {
    ix.dims[d] = plan.dims[d];
    for (size_t k = 0; k < count; ++k) ix.strides[k][d] = plan.strides[first + k][d];
  }
  return ix;
}

// ---- kernels --------------------------------------------------------------------------------

/// V elements of T as one aligned vector access (16 bytes for the widest operand).
template <typename T, int V> struct alignas(sizeof(T) * V) Pack { T v[V]; };

/// Element offsets processed per thread iteration on the flat path: a 16-byte access of the
/// widest operand.
template <typename Out, typename... Ins>
constexpr int pack_width() {
  constexpr size_t widest = std::max({sizeof(Out), sizeof(Ins)...});
  return widest >= 16 ? 1 : static_cast<int>(16 / widest);
}

/// Applies fn to the compute values of each input's element and converts to Out.
template <typename Out, typename Fn, typename... Ins>
__device__ __forceinline__ Out pw_apply(const Fn& fn, Ins... x) {
  return from_compute<Out>(static_cast<compute_t<Out>>(fn(to_compute(x)...)));
}

template <typename Out, typename Fn, typename... Ins, typename I, size_t... Is>
__device__ __forceinline__ void pw_store(const Fn& fn, Out* out, I i,
                                         const PwPtrs<sizeof...(Ins)>& in,
                                         const I (&off)[sizeof...(Ins)],
                                         std::index_sequence<Is...>) {
  out[i] = pw_apply<Out>(fn, static_cast<const Ins*>(in.p[Is])[off[Is]]...);
}

/// Grid-stride loop over n outputs calling body(i, off) with off[k] input k's element offset
/// (k < count). Rank <= 1: each input's stride is 0 or 1, no division; otherwise 32-bit
/// index math when n fits. kBroadcast = false compiles only the rank-1 loop.
template <bool kBroadcast, int N, typename Body>
__device__ __forceinline__ void pw_for_each(int64_t n, const PwIndex<N>& ix, int count,
                                            Body&& body) {
  if (!kBroadcast || ix.rank <= 1) {
    KILN_GRID_STRIDE_LOOP(i, n) {
      int64_t off[N];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] = k < count ? i * ix.strides[k][0] : 0;
      body(i, off);
    }
  } else if constexpr (kBroadcast) {
    if (n <= std::numeric_limits<int32_t>::max()) {
      KILN_GRID_STRIDE_LOOP(i, n) {
        uint32_t off[N];
        ix.offsets(static_cast<uint32_t>(i), off, count);
        body(static_cast<uint32_t>(i), off);
      }
    } else {
      KILN_GRID_STRIDE_LOOP(i, n) {
        int64_t off[N];
        ix.offsets(i, off, count);
        body(i, off);
      }
    }
  }
}

/// General path of PointwiseKernel: out[i] = fn(inputs at their broadcast offsets).
template <bool kBroadcast, typename Out, typename Fn, typename... Ins>
__global__ void __launch_bounds__(kBlock)
    pointwise_strided_kernel(Fn fn, Out* out, int64_t n, PwPtrs<sizeof...(Ins)> in,
                             PwIndex<sizeof...(Ins)> ix) {
  pw_for_each<kBroadcast>(n, ix, sizeof...(Ins), [&](auto i, const auto& off) {
    pw_store<Out, Fn, Ins...>(fn, out, i, in, off, std::index_sequence_for<Ins...>{});
  });
}

/// Registers of one input on the flat path: either its broadcast scalar or the current pack.
template <size_t K, typename T, int V> struct PackSlot { Pack<T, V> pk; };
template <int V, typename Seq, typename... Ins> struct PackSet;
template <int V, size_t... Is, typename... Ins>
struct PackSet<V, std::index_sequence<Is...>, Ins...> : PackSlot<Is, Ins, V>... {};

template <size_t K, typename T, int V>
__device__ __forceinline__ Pack<T, V>& slot(PackSlot<K, T, V>& s) { return s.pk; }

/// Splats input K's single element into its pack (scalar inputs, once per thread).
template <size_t K, typename T, int V, typename Packs, int N>
__device__ __forceinline__ void load_scalar(Packs& ps, const PwPtrs<N>& in, uint32_t mask) {
  if (((mask >> K) & 1u) == 0) return;
  const T s = *static_cast<const T*>(in.p[K]);
#pragma unroll
  for (int j = 0; j < V; ++j) slot<K>(ps).v[j] = s;
}

/// Loads pack c of input K unless it is a scalar (already splatted).
template <size_t K, typename T, int V, typename Packs, int N>
__device__ __forceinline__ void load_pack(Packs& ps, const PwPtrs<N>& in, uint32_t mask,
                                          int64_t c) {
  if (((mask >> K) & 1u) == 0) slot<K>(ps) = static_cast<const Pack<T, V>*>(in.p[K])[c];
}

template <int V, typename Out, typename Fn, typename... Ins, size_t... Is>
__device__ __forceinline__ void pw_flat_body(const Fn& fn, Out* out, int64_t n,
                                             const PwPtrs<sizeof...(Ins)>& in,
                                             uint32_t scalar_mask, std::index_sequence<Is...>) {
  PackSet<V, std::index_sequence<Is...>, Ins...> ps;
  (load_scalar<Is, Ins, V>(ps, in, scalar_mask), ...);
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  const int64_t tid = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t packs = n / V;
  for (int64_t c = tid; c < packs; c += stride) {
    (load_pack<Is, Ins, V>(ps, in, scalar_mask, c), ...);
    Pack<Out, V> o;
#pragma unroll
    for (int j = 0; j < V; ++j) o.v[j] = pw_apply<Out>(fn, slot<Is>(ps).v[j]...);
    reinterpret_cast<Pack<Out, V>*>(out)[c] = o;
  }
  // Tail of fewer than V elements.
  for (int64_t i = packs * V + tid; i < n; i += stride)
    out[i] = pw_apply<Out>(
        fn, static_cast<const Ins*>(in.p[Is])[((scalar_mask >> Is) & 1u) ? 0 : i]...);
}

/// Flat path: inputs are the output's shape (walked with V-element vector accesses) or a
/// single element (bit set in scalar_mask). Pointers must be aligned to their Pack.
template <int V, typename Out, typename Fn, typename... Ins>
__global__ void __launch_bounds__(kBlock)
    pointwise_flat_kernel(Fn fn, Out* out, int64_t n, PwPtrs<sizeof...(Ins)> in,
                          uint32_t scalar_mask) {
  pw_flat_body<V, Out, Fn, Ins...>(fn, out, n, in, scalar_mask, std::index_sequence_for<Ins...>{});
}

/// Loads input K's pack at element offset `off` of a broadcast: a splat of one element when
/// the input is broadcast along the innermost dim, else V contiguous elements (aligned: the
/// innermost dim is a multiple of V, so are the input's outer strides).
template <size_t K, typename T, int V, typename Packs, int N, typename I>
__device__ __forceinline__ void load_strided(Packs& ps, const PwPtrs<N>& in, uint32_t inner_bcast,
                                             I off) {
  const T* p = static_cast<const T*>(in.p[K]) + off;
  if ((inner_bcast >> K) & 1u) {
    const T s = *p;
#pragma unroll
    for (int j = 0; j < V; ++j) slot<K>(ps).v[j] = s;
  } else {
    slot<K>(ps) = *reinterpret_cast<const Pack<T, V>*>(p);
  }
}

template <int V, typename I, typename Out, typename Fn, typename... Ins, size_t... Is>
__device__ __forceinline__ void pw_broadcast_vec_body(const Fn& fn, Out* out, int64_t n,
                                                      const PwPtrs<sizeof...(Ins)>& in,
                                                      const PwIndex<sizeof...(Ins)>& ix,
                                                      uint32_t inner_bcast,
                                                      std::index_sequence<Is...>) {
  PackSet<V, std::index_sequence<Is...>, Ins...> ps;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  const int64_t packs = n / V;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < packs;
       c += stride) {
    I off[sizeof...(Ins)];
    ix.offsets(static_cast<I>(c * V), off);
    (load_strided<Is, Ins, V>(ps, in, inner_bcast, off[Is]), ...);
    Pack<Out, V> o;
#pragma unroll
    for (int j = 0; j < V; ++j) o.v[j] = pw_apply<Out>(fn, slot<Is>(ps).v[j]...);
    reinterpret_cast<Pack<Out, V>*>(out)[c] = o;
  }
}

/// Broadcast path with vector accesses: V consecutive outputs per thread iteration share
/// one index computation. Requires the innermost merged dim to be a multiple of V and the
/// pointers aligned to their Pack; bit k of inner_bcast: input k is broadcast along the
/// innermost dim (splatted).
template <int V, typename Out, typename Fn, typename... Ins>
__global__ void __launch_bounds__(kBlock)
    pointwise_broadcast_vec_kernel(Fn fn, Out* out, int64_t n, PwPtrs<sizeof...(Ins)> in,
                                   PwIndex<sizeof...(Ins)> ix, uint32_t inner_bcast) {
  constexpr auto seq = std::index_sequence_for<Ins...>{};
  if (n <= std::numeric_limits<int32_t>::max())
    pw_broadcast_vec_body<V, uint32_t, Out, Fn, Ins...>(fn, out, n, in, ix, inner_bcast, seq);
  else
    pw_broadcast_vec_body<V, int64_t, Out, Fn, Ins...>(fn, out, n, in, ix, inner_bcast, seq);
}

// ---- the Kernel -----------------------------------------------------------------------------

/// Code paths a PointwiseKernel instantiates (each costs compile time and binary size).
enum PwPaths : unsigned {
  kPathVector = 1u << 0,     ///< vectorised kernels (off: rare type combinations)
  kPathBroadcast = 1u << 1,  ///< real broadcasting (off: unary ops, input shape = output's)
  kPathAll = kPathVector | kPathBroadcast,
};

/// A pointwise node: out = fn(in[slots[0]], in[slots[1]], ...) elementwise with broadcasting.
/// Out/Ins are device element types; kPaths a PwPaths set. The strided kernel's rank-1 loop
/// is always there (flat data that is not aligned for vector accesses).
/// Functors with a `void bind(const LaunchArgs&)` member get it called before each launch
/// (Clip reads non-constant bounds through device pointers that way).
template <unsigned kPaths, typename Out, typename Fn, typename... Ins>
class PointwiseKernel final : public Kernel {
 public:
  static constexpr int N = sizeof...(Ins);

  PointwiseKernel(Fn fn, const BroadcastPlan& plan, std::array<int, N> slots, std::string name)
      : fn_(fn), n_(plan.numel), flat_(plan.flat()), ix_(make_pw_index<N>(plan)), slots_(slots) {
    for (int k = 0; k < N; ++k) {
      if (plan.strides[k].empty() || (plan.flat() && plan.strides[k][0] == 0))
        scalar_mask_ |= 1u << k;
      if (!plan.strides[k].empty() && plan.strides[k].back() == 0) inner_bcast_ |= 1u << k;
      // An input read across the output's innermost dim (mixed layouts) cannot be packed.
      if (!plan.strides[k].empty() && plan.strides[k].back() > 1) inner_packable_ = false;
    }
    inner_ = plan.dims.empty() ? 0 : plan.dims.back();
    tactic_ = "kiln:" + name + (flat_ ? ":flat" : ":broadcast(rank " +
                                                      std::to_string(plan.dims.size()) + ")");
  }

  std::string tactic() const override { return tactic_; }

  Status enqueue(const LaunchArgs& a) override {
    if (n_ == 0) return Status::ok();
    Fn fn = fn_;
    if constexpr (requires(Fn& f) { f.bind(a); }) fn.bind(a);
    PwPtrs<N> in;
    for (int k = 0; k < N; ++k) in.p[k] = a.inputs[slots_[k]];
    Out* out = a.out<Out>(0);
    if constexpr ((kPaths & kPathVector) != 0) {
      constexpr int V = pack_width<Out, Ins...>();
      constexpr auto seq = std::index_sequence_for<Ins...>{};
      if (flat_ && aligned(in, out, V, scalar_mask_, seq)) {
        const int64_t packs = n_ / V;
        pointwise_flat_kernel<V, Out, Fn, Ins...>
            <<<grid_for(packs > 0 ? packs : n_), kBlock, 0, a.stream>>>(fn, out, n_, in,
                                                                        scalar_mask_);
        KILN_CUDA_CHECK_LAUNCH("pointwise_flat_kernel");
        return Status::ok();
      }
      if constexpr ((kPaths & kPathBroadcast) != 0) {
        if (!flat_ && V > 1 && inner_packable_ && inner_ % V == 0 &&
            aligned(in, out, V, inner_bcast_, seq)) {
          pointwise_broadcast_vec_kernel<V, Out, Fn, Ins...>
              <<<grid_for(n_ / V), kBlock, 0, a.stream>>>(fn, out, n_, in, ix_, inner_bcast_);
          KILN_CUDA_CHECK_LAUNCH("pointwise_broadcast_vec_kernel");
          return Status::ok();
        }
      }
    }
    pointwise_strided_kernel<(kPaths & kPathBroadcast) != 0, Out, Fn, Ins...>
        <<<grid_for(n_), kBlock, 0, a.stream>>>(fn, out, n_, in, ix_);
    KILN_CUDA_CHECK_LAUNCH("pointwise_strided_kernel");
    return Status::ok();
  }

 private:
  /// Output and every input not in `skip` aligned for Pack accesses of v elements.
  template <size_t... Is>
  static bool aligned(const PwPtrs<N>& in, const Out* out, int v, uint32_t skip,
                      std::index_sequence<Is...>) {
    auto ok = [](const void* p, size_t bytes) {
      return reinterpret_cast<uintptr_t>(p) % bytes == 0;
    };
    return ok(out, sizeof(Out) * v) &&
           ((((skip >> Is) & 1u) != 0 || ok(in.p[Is], sizeof(Ins) * v)) && ...);
  }

  Fn fn_;
  int64_t n_;
  bool flat_;
  PwIndex<N> ix_;
  std::array<int, N> slots_;
  uint32_t scalar_mask_ = 0;   ///< flat plans: inputs of one element
  uint32_t inner_bcast_ = 0;   ///< inputs broadcast along the innermost merged dim
  int64_t inner_ = 0;          ///< innermost merged dim
  bool inner_packable_ = true;  ///< every input's innermost stride is 0 or 1
  std::string tactic_;
};

/// Layouts of the inputs in `slots` (for plan_broadcast).
template <typename Slots>
std::vector<Layout> pointwise_layouts(const KernelConfig& cfg, const Slots& slots) {
  std::vector<Layout> l;
  for (int s : slots) l.push_back(cfg.in(s).layout);
  return l;
}

/// Factory tail shared by the pointwise ops: validates element sizes (against the node's
/// dtypes) and the broadcast (any mix of layouts, see plan_broadcast), and builds the
/// kernel. `slots` are the node input indices read as Ins...; `in_dims` their dims as
/// broadcasting sees them (empty = the operands' own dims). kPaths: see PwPaths. Errors:
/// NoGpuKernel (layouts that differ without kPathBroadcast, rank), ShapeMismatch, Internal
/// (dtype sizes, or broadcasting without kPathBroadcast).
template <unsigned kPaths, typename Out, typename... Ins, typename Fn>
KernelResult make_pointwise(const KernelConfig& cfg, const Fn& fn,
                            std::array<int, sizeof...(Ins)> slots, const std::string& name,
                            std::vector<std::vector<int64_t>> in_dims = {}) {
  constexpr size_t kSizes[] = {sizeof(Ins)...};
  if (cfg.outputs.empty() || dtype_size(cfg.out(0).dtype) != sizeof(Out))
    return cfg.error(ErrorCode::kInternal, "pointwise kernel: output dtype does not match");
  for (size_t k = 0; k < slots.size(); ++k) {
    if (!cfg.has_input(slots[k]) || dtype_size(cfg.in(slots[k]).dtype) != kSizes[k])
      return cfg.error(ErrorCode::kInternal, "pointwise kernel: input " +
                                                 std::to_string(slots[k]) +
                                                 " missing or of an unexpected dtype");
  }
  if (in_dims.empty())
    for (int s : slots) in_dims.push_back(cfg.in(s).dims);
  KILN_ASSIGN_OR_RETURN(BroadcastPlan plan,
                        plan_broadcast(cfg, in_dims, pointwise_layouts(cfg, slots), cfg.out(0)));
  if ((kPaths & kPathBroadcast) == 0 && !plan.flat()) {
    for (int s : slots)
      if (cfg.in(s).dims != cfg.out(0).dims)
        return cfg.error(ErrorCode::kInternal, "pointwise kernel built without broadcasting "
                                               "got operands of different shapes");
    return cfg.unsupported("input and output layouts differ");
  }
  return std::unique_ptr<Kernel>(
      std::make_unique<PointwiseKernel<kPaths, Out, Fn, Ins...>>(fn, plan, slots, name));
}

}  // namespace kiln::cuda
