// GPU kernels of the index- and position-driven ops (ONNX Operators.md: Gather,
// GatherElements, GatherND, ScatterElements / Scatter, ScatterND, OneHot, ReverseSequence,
// Trilu). Index tensors are runtime device tensors, read by the kernels.
//
// Index semantics: negative indices count from the end. The CPU reference rejects an
// out-of-range index with an error, which a kernel cannot raise without a host round trip
// (enqueue may be captured in a CUDA graph). So the gathers clamp such an index to the
// nearest valid one, and the scatters skip its update: no kernel reads or writes outside
// a tensor, whatever the index values.
//
// Scatter with reduction none: ONNX leaves duplicate indices undefined, the CPU reference
// applies updates in index order (the last one wins). The GPU reproduces that
// deterministically: each targeted slot records the largest update number that hits it
// (atomicMax in a workspace array), then only that update writes. Reductions add / mul /
// max / min combine atomically (compare-and-swap where no native atomic exists); float
// add and mul therefore sum in a run-dependent order (within rounding of the CPU result).
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cuda/kernels/data_movement.cuh"

namespace kiln::cuda {
namespace {

using dm::address_bits;
using dm::dispatch_unit;
using dm::node_axis;
using dm::prod;
using dm::Strided;
using dm::widest_unit;

/// Widest unit (bytes, >= es) for copying runs of `run` elements between `a` and `b`.
size_t run_unit(size_t es, int64_t run, const void* a, const void* b) {
  return std::max(es,
                  widest_unit(static_cast<uint64_t>(run) * es | address_bits(a) | address_bits(b)));
}

// ---- Gather -----------------------------------------------------------------------------

// out [outer, nidx, inner] = data [outer, dim, inner] at data[o][idx[k]][i].
template <typename Unit, typename Idx>
__global__ void gather_kernel(const Unit* __restrict__ data, const Idx* __restrict__ idx,
                              Unit* __restrict__ out, int64_t n, int64_t inner, int64_t nidx,
                              int64_t dim) {
  KILN_GRID_STRIDE_LOOP(e, n) {
    const int64_t q = e / inner, i = e - q * inner;
    const int64_t o = q / nidx, k = q - o * nidx;
    const int64_t v = dm::wrap_clamp(static_cast<int64_t>(idx[k]), dim);
    out[e] = data[(o * dim + v) * inner + i];
  }
}

class GatherKernel final : public Kernel {
 public:
  GatherKernel(size_t es, DataType idx_type, int64_t outer, int64_t nidx, int64_t dim,
               int64_t inner)
      : es_(es), idx_type_(idx_type), outer_(outer), nidx_(nidx), dim_(dim), inner_(inner) {}
  std::string tactic() const override { return "kiln:gather"; }
  Status enqueue(const LaunchArgs& a) override {
    const int64_t total = outer_ * nidx_ * inner_;
    if (total == 0) return Status::ok();
    const size_t unit = run_unit(es_, inner_, a.inputs[0], a.outputs[0]);
    const int64_t f = static_cast<int64_t>(unit / es_);
    return dispatch_unit(unit, [&](auto u) -> Status {
      using U = decltype(u);
      return dispatch_launch<DataType::kI32, DataType::kI64>(idx_type_, [&](auto t) -> Status {
        using Idx = decltype(t);
        gather_kernel<U, Idx><<<grid_for(total / f), kBlock, 0, a.stream>>>(
            static_cast<const U*>(a.inputs[0]), static_cast<const Idx*>(a.inputs[1]),
            static_cast<U*>(a.outputs[0]), total / f, inner_ / f, nidx_, dim_);
        KILN_CUDA_CHECK_LAUNCH("gather_kernel");
        return Status::ok();
      });
    });
  }

 private:
  size_t es_;
  DataType idx_type_;
  int64_t outer_, nidx_, dim_, inner_;
};

/// kInvalidArgument when indices select from an empty axis (every index is out of range).
Status check_nonempty_axis(const KernelConfig& cfg, int64_t dim, int64_t selections) {
  if (dim == 0 && selections > 0)
    return cfg.error(ErrorCode::kInvalidArgument, "indices select from an axis of size 0",
                     "every index is out of range");
  return Status::ok();
}

Status check_index_input(const KernelConfig& cfg, bool int64_only) {
  if (!dm::all_row_major(cfg)) return cfg.unsupported("kNhwc operands");
  const DataType t = cfg.in(1).dtype;
  if (t != DataType::kI64 && (int64_only || t != DataType::kI32))
    return cfg.unsupported(std::string("indices of type ") + dtype_name(t));
  return Status::ok();
}

Result<std::unique_ptr<Kernel>> create_gather(const KernelConfig& cfg) {
  KILN_RETURN_IF_ERROR(check_index_input(cfg, false));
  const Operand& data = cfg.in(0);
  KILN_ASSIGN_OR_RETURN(int64_t axis, node_axis(cfg, cfg.node.attr_i("axis", 0), data.rank()));
  const int64_t nidx = cfg.in(1).numel();
  const int64_t outer = prod(data.dims, 0, axis), inner = prod(data.dims, axis + 1, data.rank());
  KILN_RETURN_IF_ERROR(check_nonempty_axis(cfg, data.dims[axis], outer * nidx * inner));
  return std::unique_ptr<Kernel>(new GatherKernel(dtype_size(data.dtype), cfg.in(1).dtype, outer,
                                                  nidx, data.dims[axis], inner));
}

// ---- GatherElements ---------------------------------------------------------------------

// out[i] = data[base(i) + idx[i] * axis_stride]; base walks the indices' multi-index with
// data strides, the axis coordinate left out.
template <typename Unit, typename Idx>
__global__ void gather_elements_kernel(const Unit* __restrict__ data, const Idx* __restrict__ idx,
                                       Unit* __restrict__ out, int64_t n, Strided<int64_t> base,
                                       int64_t axis_stride, int64_t dim) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t v = dm::wrap_clamp(static_cast<int64_t>(idx[i]), dim);
    out[i] = data[base.offset(i) + v * axis_stride];
  }
}

/// The data-offset walk over an index tensor of `idx_dims` (GatherElements,
/// ScatterElements): data strides, the axis stride zeroed.
Strided<int64_t> element_base(const std::vector<int64_t>& data_dims,
                              const std::vector<int64_t>& idx_dims, int64_t axis) {
  std::vector<int64_t> st = row_major_strides(data_dims);
  st[axis] = 0;
  return dm::make_strided<int64_t>(idx_dims, st);
}

class GatherElementsKernel final : public Kernel {
 public:
  GatherElementsKernel(size_t es, DataType idx_type, int64_t n, Strided<int64_t> base,
                       int64_t axis_stride, int64_t dim)
      : es_(es), idx_type_(idx_type), n_(n), base_(base), axis_stride_(axis_stride), dim_(dim) {}
  std::string tactic() const override { return "kiln:gather_elements"; }
  Status enqueue(const LaunchArgs& a) override {
    if (n_ == 0) return Status::ok();
    return dispatch_unit(es_, [&](auto u) -> Status {
      using U = decltype(u);
      return dispatch_launch<DataType::kI32, DataType::kI64>(idx_type_, [&](auto t) -> Status {
        using Idx = decltype(t);
        gather_elements_kernel<U, Idx><<<grid_for(n_), kBlock, 0, a.stream>>>(
            static_cast<const U*>(a.inputs[0]), static_cast<const Idx*>(a.inputs[1]),
            static_cast<U*>(a.outputs[0]), n_, base_, axis_stride_, dim_);
        KILN_CUDA_CHECK_LAUNCH("gather_elements_kernel");
        return Status::ok();
      });
    });
  }

 private:
  size_t es_;
  DataType idx_type_;
  int64_t n_;
  Strided<int64_t> base_;
  int64_t axis_stride_, dim_;
};

/// Shared checks of GatherElements / ScatterElements: same rank, index dims within data's.
Status check_element_indices(const KernelConfig& cfg, int64_t axis) {
  const Operand& data = cfg.in(0);
  const Operand& idx = cfg.in(1);
  if (idx.rank() != data.rank() || data.rank() > static_cast<size_t>(kMaxRank))
    return cfg.error(ErrorCode::kShapeMismatch, "indices must have the data's rank (<= 8)", "");
  for (size_t d = 0; d < data.rank(); ++d)
    if (static_cast<int64_t>(d) != axis && idx.dims[d] > data.dims[d])
      return cfg.error(ErrorCode::kShapeMismatch, "an index dim exceeds the data dim", "");
  return check_nonempty_axis(cfg, data.dims[axis], idx.numel());
}

Result<std::unique_ptr<Kernel>> create_gather_elements(const KernelConfig& cfg) {
  KILN_RETURN_IF_ERROR(check_index_input(cfg, false));
  const Operand& data = cfg.in(0);
  KILN_ASSIGN_OR_RETURN(int64_t axis, node_axis(cfg, cfg.node.attr_i("axis", 0), data.rank()));
  KILN_RETURN_IF_ERROR(check_element_indices(cfg, axis));
  return std::unique_ptr<Kernel>(
      new GatherElementsKernel(dtype_size(data.dtype), cfg.in(1).dtype, cfg.in(1).numel(),
                               element_base(data.dims, cfg.in(1).dims, axis),
                               row_major_strides(data.dims)[axis], data.dims[axis]));
}

// ---- GatherND ---------------------------------------------------------------------------

/// Index tuples of length m address data axes [b, b+m) (b = batch_dims); offsets in units.
struct NdArgs {
  int m = 0;
  int64_t dims[kMaxRank];
  int64_t strides[kMaxRank];
  int64_t per_batch = 1;     ///< index tuples per batch entry
  int64_t batch_stride = 0;  ///< data units per batch entry
  int64_t slice = 1;         ///< units copied per tuple
};

// out [tuples, slice]: tuple t of batch t / per_batch reads the slice at its index tuple.
template <typename Unit>
__global__ void gather_nd_kernel(const Unit* __restrict__ data, const int64_t* __restrict__ idx,
                                 Unit* __restrict__ out, int64_t n, NdArgs p) {
  KILN_GRID_STRIDE_LOOP(e, n) {
    const int64_t t = e / p.slice, s = e - t * p.slice;
    int64_t off = (t / p.per_batch) * p.batch_stride;
    for (int j = 0; j < p.m; ++j) off += dm::wrap_clamp(idx[t * p.m + j], p.dims[j]) * p.strides[j];
    out[e] = data[off + s];
  }
}

class GatherNdKernel final : public Kernel {
 public:
  GatherNdKernel(size_t es, int64_t tuples, NdArgs p) : es_(es), tuples_(tuples), p_(p) {}
  std::string tactic() const override { return "kiln:gather_nd"; }
  Status enqueue(const LaunchArgs& a) override {
    if (tuples_ * p_.slice == 0) return Status::ok();
    const size_t unit = run_unit(es_, p_.slice, a.inputs[0], a.outputs[0]);
    const int64_t f = static_cast<int64_t>(unit / es_);
    NdArgs p = p_;
    p.slice /= f;
    p.batch_stride /= f;
    for (int j = 0; j < p.m; ++j) p.strides[j] /= f;
    return dispatch_unit(unit, [&](auto u) -> Status {
      using U = decltype(u);
      const int64_t n = tuples_ * p.slice;
      gather_nd_kernel<U><<<grid_for(n), kBlock, 0, a.stream>>>(
          static_cast<const U*>(a.inputs[0]), static_cast<const int64_t*>(a.inputs[1]),
          static_cast<U*>(a.outputs[0]), n, p);
      KILN_CUDA_CHECK_LAUNCH("gather_nd_kernel");
      return Status::ok();
    });
  }

 private:
  size_t es_;
  int64_t tuples_;
  NdArgs p_;  ///< in elements; scaled to the unit at enqueue
};

/// NdArgs of data `dims` for tuples of length m after b batch dims (elements).
NdArgs nd_args(const std::vector<int64_t>& dims, int64_t b, int64_t m) {
  NdArgs p;
  const auto st = row_major_strides(dims);
  p.m = static_cast<int>(m);
  for (int64_t j = 0; j < m; ++j) {
    p.dims[j] = dims[b + j];
    p.strides[j] = st[b + j];
  }
  p.slice = prod(dims, b + m, dims.size());
  p.batch_stride = prod(dims, b, dims.size());
  return p;
}

Result<std::unique_ptr<Kernel>> create_gather_nd(const KernelConfig& cfg) {
  KILN_RETURN_IF_ERROR(check_index_input(cfg, true));
  const Operand& data = cfg.in(0);
  const Operand& idx = cfg.in(1);
  const int64_t b = cfg.node.attr_i("batch_dims", 0);
  const int64_t r = static_cast<int64_t>(data.rank()), q = static_cast<int64_t>(idx.rank());
  const int64_t m = q > 0 ? idx.dims.back() : 0;
  if (b < 0 || b >= std::min(r, q) || m < 1 || m > r - b || m > kMaxRank)
    return cfg.error(ErrorCode::kShapeMismatch, "GatherND indices / batch_dims do not fit the data",
                     "");
  NdArgs p = nd_args(data.dims, b, m);
  const int64_t tuples = prod(idx.dims, 0, idx.rank() - 1);
  p.per_batch = std::max<int64_t>(1, prod(idx.dims, b, idx.rank() - 1));
  for (int j = 0; j < p.m; ++j)
    KILN_RETURN_IF_ERROR(check_nonempty_axis(cfg, p.dims[j], tuples * p.slice));
  return std::unique_ptr<Kernel>(new GatherNdKernel(dtype_size(data.dtype), tuples, p));
}

// ---- ScatterElements / Scatter / ScatterND ----------------------------------------------

enum Reduction : int { kRedNone, kRedAdd, kRedMul, kRedMax, kRedMin };

/// Update k of ScatterElements targets one element: offset base(k) + idx[k] * axis_stride.
template <typename Idx>
struct ElementsTarget {
  using Index = Idx;
  const Idx* idx = nullptr;
  Strided<int64_t> base;
  int64_t axis_stride = 0, dim = 0;
  /// Element offset of update k, or -1 when its index is out of range.
  __device__ __forceinline__ int64_t operator()(int64_t k) const {
    const int64_t v = dm::wrap_or_invalid(static_cast<int64_t>(idx[k]), dim);
    return v < 0 ? -1 : base.offset(k) + v * axis_stride;
  }
};

/// Update tuple k of ScatterND targets the slice at its m-element index tuple.
struct NdTarget {
  using Index = int64_t;
  const int64_t* idx = nullptr;
  NdArgs p;
  __device__ __forceinline__ int64_t operator()(int64_t k) const {
    int64_t off = 0;
    for (int j = 0; j < p.m; ++j) {
      const int64_t v = dm::wrap_or_invalid(idx[k * p.m + j], p.dims[j]);
      if (v < 0) return -1;
      off += v * p.strides[j];
    }
    return off;
  }
};

template <typename Target>
__global__ void scatter_mark_kernel(Target t, int64_t tuples, int64_t slice, int32_t* winner) {
  KILN_GRID_STRIDE_LOOP(k, tuples) {
    const int64_t off = t(k);
    if (off >= 0) winner[off / slice] = -1;  // racing writers all store -1
  }
}

template <typename Target>
__global__ void scatter_claim_kernel(Target t, int64_t tuples, int64_t slice, int32_t* winner) {
  KILN_GRID_STRIDE_LOOP(k, tuples) {
    const int64_t off = t(k);
    if (off >= 0) atomicMax(&winner[off / slice], static_cast<int32_t>(k));
  }
}

// Updates [tuples, slice units]; with `winner`, only the last update of a slot writes.
// `f` elements per unit; `slice` elements per update (the winner slot size).
template <typename Unit, typename Target>
__global__ void scatter_write_kernel(Target t, int64_t n, int64_t slice_units, int64_t slice,
                                     int64_t f, const int32_t* __restrict__ winner,
                                     const Unit* __restrict__ upd, Unit* __restrict__ out) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t k = i / slice_units, s = i - k * slice_units;
    const int64_t off = t(k);
    if (off < 0 || (winner && winner[off / slice] != static_cast<int32_t>(k))) continue;
    out[off / f + s] = upd[i];
  }
}

/// a (op) b as the CPU kernel computes it: in compute_t<T>, max/min as std::max/std::min.
template <typename T>
__device__ __forceinline__ T combine(T a, T b, int red) {
  const auto x = to_compute(a), y = to_compute(b);
  switch (red) {
    case kRedAdd: return from_compute<T>(x + y);
    case kRedMul: return from_compute<T>(x * y);
    case kRedMax: return x < y ? b : a;
    default: return y < x ? b : a;
  }
}

template <typename To, typename From>
__device__ __forceinline__ To bits_as(From v) {
  static_assert(sizeof(To) == sizeof(From));
  To t;
  memcpy(&t, &v, sizeof(To));
  return t;
}

/// *addr = combine(*addr, v, red) atomically: native atomics where CUDA has them, else a
/// compare-and-swap loop on the element (bytes: on their aligned 32-bit word).
template <typename T>
__device__ void atomic_combine(T* addr, T v, int red) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> ||
                std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16> ||
                std::is_same_v<T, int32_t> || std::is_same_v<T, uint32_t> ||
                std::is_same_v<T, uint64_t>) {
    if (red == kRedAdd) {
      if constexpr (std::is_same_v<T, uint64_t>)
        atomicAdd(reinterpret_cast<unsigned long long*>(addr), static_cast<unsigned long long>(v));
      else
        atomicAdd(addr, v);
      return;
    }
  }
  if constexpr (std::is_same_v<T, int64_t>) {
    if (red == kRedAdd) {  // two's complement: the unsigned sum is the signed wrap-around sum
      atomicAdd(reinterpret_cast<unsigned long long*>(addr), static_cast<unsigned long long>(v));
      return;
    }
  }
  if constexpr (std::is_same_v<T, int32_t> || std::is_same_v<T, uint32_t>) {
    if (red == kRedMax) return (void)atomicMax(addr, v);
    if (red == kRedMin) return (void)atomicMin(addr, v);
  }
  if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, uint64_t>) {
    using W = std::conditional_t<std::is_same_v<T, int64_t>, long long, unsigned long long>;
    if (red == kRedMax) return (void)atomicMax(reinterpret_cast<W*>(addr), static_cast<W>(v));
    if (red == kRedMin) return (void)atomicMin(reinterpret_cast<W*>(addr), static_cast<W>(v));
  }
  if constexpr (sizeof(T) == 1) {
    auto* word = reinterpret_cast<unsigned int*>(reinterpret_cast<uintptr_t>(addr) & ~uintptr_t{3});
    const unsigned shift = (reinterpret_cast<uintptr_t>(addr) & 3) * 8;
    unsigned int old = *word, assumed;
    do {
      assumed = old;
      const T cur = bits_as<T>(static_cast<uint8_t>((assumed >> shift) & 0xffu));
      const unsigned nb = bits_as<uint8_t>(combine(cur, v, red));
      old = atomicCAS(word, assumed, (assumed & ~(0xffu << shift)) | (nb << shift));
    } while (assumed != old);
  } else {
    using W =
        std::conditional_t<sizeof(T) == 2, unsigned short,
                           std::conditional_t<sizeof(T) == 4, unsigned int, unsigned long long>>;
    W* w = reinterpret_cast<W*>(addr);
    W old = *w, assumed;
    do {
      assumed = old;
      old = atomicCAS(w, assumed, bits_as<W>(combine(bits_as<T>(assumed), v, red)));
    } while (assumed != old);
  }
}

template <typename T, typename Target>
__global__ void scatter_reduce_kernel(Target t, int64_t n, int64_t slice, int red,
                                      const T* __restrict__ upd, T* out) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t k = i / slice, s = i - k * slice;
    const int64_t off = t(k);
    if (off >= 0) atomic_combine(out + off + s, upd[i], red);
  }
}

/// ScatterElements / ScatterND: out = data, then `tuples` updates of `slice` elements each
/// written (none) or combined (reductions) at the offsets `Target` computes.
template <typename Target>
class ScatterKernel final : public Kernel {
 public:
  ScatterKernel(Target t, DataType dt, int red, int64_t numel, int64_t tuples, int64_t slice)
      : target_(t),
        dt_(dt),
        es_(dtype_size(dt)),
        red_(red),
        numel_(numel),
        tuples_(tuples),
        slice_(slice) {}
  std::string tactic() const override {
    static const char* names[] = {"none", "add", "mul", "max", "min"};
    return std::string("kiln:scatter_") + names[red_];
  }
  /// One int32 winner per addressable slot (reduction none only).
  size_t workspace_bytes() const override {
    return red_ == kRedNone && slice_ > 0 ? static_cast<size_t>(numel_ / slice_) * sizeof(int32_t)
                                          : 0;
  }

  Status enqueue(const LaunchArgs& a) override {
    if (numel_ == 0) return Status::ok();
    if (a.outputs[0] != a.inputs[0])
      KILN_CUDA_CHECK(cudaMemcpyAsync(a.outputs[0], a.inputs[0], static_cast<size_t>(numel_) * es_,
                                      cudaMemcpyDeviceToDevice, a.stream));
    if (tuples_ * slice_ == 0) return Status::ok();
    Target t = target_;
    t.idx = static_cast<const typename Target::Index*>(a.inputs[1]);
    if (red_ != kRedNone) {
      const int64_t n = tuples_ * slice_;
      return dispatch_launch<KILN_FLOAT_TYPES, KILN_INT_TYPES>(dt_, [&](auto v) -> Status {
        using T = decltype(v);
        scatter_reduce_kernel<T, Target><<<grid_for(n), kBlock, 0, a.stream>>>(
            t, n, slice_, red_, static_cast<const T*>(a.inputs[2]), static_cast<T*>(a.outputs[0]));
        KILN_CUDA_CHECK_LAUNCH("scatter_reduce_kernel");
        return Status::ok();
      });
    }
    auto* winner = static_cast<int32_t*>(a.workspace);
    scatter_mark_kernel<Target>
        <<<grid_for(tuples_), kBlock, 0, a.stream>>>(t, tuples_, slice_, winner);
    KILN_CUDA_CHECK_LAUNCH("scatter_mark_kernel");
    scatter_claim_kernel<Target>
        <<<grid_for(tuples_), kBlock, 0, a.stream>>>(t, tuples_, slice_, winner);
    KILN_CUDA_CHECK_LAUNCH("scatter_claim_kernel");
    const size_t unit = run_unit(es_, slice_, a.inputs[2], a.outputs[0]);
    const int64_t f = static_cast<int64_t>(unit / es_);
    return dispatch_unit(unit, [&](auto u) -> Status {
      using U = decltype(u);
      const int64_t n = tuples_ * slice_ / f;
      scatter_write_kernel<U, Target><<<grid_for(n), kBlock, 0, a.stream>>>(
          t, n, slice_ / f, slice_, f, winner, static_cast<const U*>(a.inputs[2]),
          static_cast<U*>(a.outputs[0]));
      KILN_CUDA_CHECK_LAUNCH("scatter_write_kernel");
      return Status::ok();
    });
  }

 private:
  Target target_;
  DataType dt_;
  size_t es_;
  int red_;
  int64_t numel_, tuples_, slice_;
};

Result<int> scatter_reduction(const KernelConfig& cfg) {
  const std::string r = cfg.node.attr_s("reduction", "none");
  const int red = r == "none"  ? kRedNone
                  : r == "add" ? kRedAdd
                  : r == "mul" ? kRedMul
                  : r == "max" ? kRedMax
                  : r == "min" ? kRedMin
                               : -1;
  if (red < 0)
    return cfg.error(ErrorCode::kOnnxBadAttribute, "reduction '" + r + "' is not supported", "");
  const DataType t = cfg.in(0).dtype;
  if (red != kRedNone && (t == DataType::kBool || dtype_size(t) > 8 || t == DataType::kF8E4M3))
    return cfg.unsupported(std::string("reduction ") + r + " on " + dtype_name(t));
  if (cfg.in(2).dtype != t)
    return cfg.error(ErrorCode::kTypeMismatch, "updates must have the data's type", "");
  return red;
}

Result<std::unique_ptr<Kernel>> create_scatter_elements(const KernelConfig& cfg) {
  KILN_RETURN_IF_ERROR(check_index_input(cfg, false));
  KILN_ASSIGN_OR_RETURN(int red, scatter_reduction(cfg));
  const Operand& data = cfg.in(0);
  KILN_ASSIGN_OR_RETURN(int64_t axis, node_axis(cfg, cfg.node.attr_i("axis", 0), data.rank()));
  KILN_RETURN_IF_ERROR(check_element_indices(cfg, axis));
  if (cfg.in(2).dims != cfg.in(1).dims)
    return cfg.error(ErrorCode::kShapeMismatch, "updates must have the indices' shape", "");
  if (cfg.in(1).numel() >= (int64_t{1} << 31)) return cfg.unsupported("2^31 or more updates");
  auto make = [&](auto tag) -> std::unique_ptr<Kernel> {
    ElementsTarget<decltype(tag)> t;
    t.base = element_base(data.dims, cfg.in(1).dims, axis);
    t.axis_stride = row_major_strides(data.dims)[axis];
    t.dim = data.dims[axis];
    return std::make_unique<ScatterKernel<ElementsTarget<decltype(tag)>>>(
        t, data.dtype, red, data.numel(), cfg.in(1).numel(), 1);
  };
  if (cfg.in(1).dtype == DataType::kI32) return make(int32_t{});
  return make(int64_t{});
}

Result<std::unique_ptr<Kernel>> create_scatter_nd(const KernelConfig& cfg) {
  KILN_RETURN_IF_ERROR(check_index_input(cfg, true));
  KILN_ASSIGN_OR_RETURN(int red, scatter_reduction(cfg));
  const Operand& data = cfg.in(0);
  const Operand& idx = cfg.in(1);
  const int64_t m = idx.rank() > 0 ? idx.dims.back() : 0;
  if (m < 1 || m > static_cast<int64_t>(data.rank()) || m > kMaxRank)
    return cfg.error(ErrorCode::kShapeMismatch,
                     "ScatterND indices.shape[-1] must be in [1, rank(data)]", "");
  NdTarget t;
  t.p = nd_args(data.dims, 0, m);
  const int64_t tuples = prod(idx.dims, 0, idx.rank() - 1);
  if (cfg.in(2).numel() != tuples * t.p.slice)
    return cfg.error(ErrorCode::kShapeMismatch, "ScatterND updates do not match indices and data",
                     "");
  if (tuples >= (int64_t{1} << 31)) return cfg.unsupported("2^31 or more update slices");
  return std::unique_ptr<Kernel>(std::make_unique<ScatterKernel<NdTarget>>(
      t, data.dtype, red, data.numel(), tuples, t.p.slice));
}

// ---- OneHot -----------------------------------------------------------------------------

/// Element i of an index tensor of any numeric type, as int64 (floats truncate like the
/// CPU kernel's static_cast).
__device__ __forceinline__ int64_t load_as_i64(const void* p, DataType t, int64_t i) {
  switch (t) {
    case DataType::kF32: return static_cast<int64_t>(static_cast<const float*>(p)[i]);
    case DataType::kF64: return static_cast<int64_t>(static_cast<const double*>(p)[i]);
    case DataType::kF16:
      return static_cast<int64_t>(__half2float(static_cast<const __half*>(p)[i]));
    case DataType::kBF16:
      return static_cast<int64_t>(__bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]));
    case DataType::kI8: return static_cast<const int8_t*>(p)[i];
    case DataType::kU8: return static_cast<const uint8_t*>(p)[i];
    case DataType::kI16: return static_cast<const int16_t*>(p)[i];
    case DataType::kU16: return static_cast<const uint16_t*>(p)[i];
    case DataType::kI32: return static_cast<const int32_t*>(p)[i];
    case DataType::kU32: return static_cast<const uint32_t*>(p)[i];
    case DataType::kU64: return static_cast<int64_t>(static_cast<const uint64_t*>(p)[i]);
    default: return static_cast<const int64_t*>(p)[i];
  }
}

// out [outer, depth, inner] = values[1] where idx[o][i] (wrapped) == d, else values[0];
// an index outside [-depth, depth-1] gives an all-off row, as the spec says.
template <typename Unit>
__global__ void onehot_kernel(const void* __restrict__ idx, DataType idx_type,
                              const Unit* __restrict__ values, Unit* __restrict__ out, int64_t n,
                              int64_t depth, int64_t inner) {
  const Unit off = values[0], on = values[1];
  KILN_GRID_STRIDE_LOOP(e, n) {
    const int64_t q = e / inner, i = e - q * inner;
    const int64_t o = q / depth, d = q - o * depth;
    int64_t v = load_as_i64(idx, idx_type, o * inner + i);
    if (v < 0) v += depth;
    out[e] = v == d ? on : off;
  }
}

class OneHotKernel final : public Kernel {
 public:
  OneHotKernel(size_t es, DataType idx_type, int64_t n, int64_t depth, int64_t inner)
      : es_(es), idx_type_(idx_type), n_(n), depth_(depth), inner_(inner) {}
  std::string tactic() const override { return "kiln:onehot"; }
  Status enqueue(const LaunchArgs& a) override {
    if (n_ == 0) return Status::ok();
    return dispatch_unit(es_, [&](auto u) -> Status {
      using U = decltype(u);
      onehot_kernel<U><<<grid_for(n_), kBlock, 0, a.stream>>>(
          a.inputs[0], idx_type_, static_cast<const U*>(a.inputs[2]), static_cast<U*>(a.outputs[0]),
          n_, depth_, inner_);
      KILN_CUDA_CHECK_LAUNCH("onehot_kernel");
      return Status::ok();
    });
  }

 private:
  size_t es_;
  DataType idx_type_;
  int64_t n_, depth_, inner_;
};

Result<std::unique_ptr<Kernel>> create_onehot(const KernelConfig& cfg) {
  if (!dm::all_row_major(cfg)) return cfg.unsupported("kNhwc operands");
  const Operand& out = cfg.out(0);
  const DataType it = cfg.in(0).dtype;
  if (!dtype_is_int(it) && !dtype_is_float(it))
    return cfg.unsupported(std::string("indices of type ") + dtype_name(it));
  if (it == DataType::kF8E4M3) return cfg.unsupported("f8 indices");
  if (cfg.in(2).numel() != 2)
    return cfg.error(ErrorCode::kShapeMismatch, "OneHot values must hold [off, on]", "");
  KILN_ASSIGN_OR_RETURN(int64_t axis, node_axis(cfg, cfg.node.attr_i("axis", -1), out.rank()));
  const int64_t depth = out.dims[axis];
  const int64_t inner = prod(cfg.in(0).dims, axis, cfg.in(0).rank());
  return std::unique_ptr<Kernel>(
      new OneHotKernel(dtype_size(out.dtype), it, out.numel(), depth, inner));
}

// ---- ReverseSequence --------------------------------------------------------------------

// in/out [d0, d1, block...]: element (b, t, r) reads (b, len[b]-1-t, r) for t < len[b].
// Lengths outside [0, steps] (a CPU error) are clamped into that range.
template <typename Unit, typename L>
__global__ void reverse_sequence_kernel(const Unit* __restrict__ src, const L* __restrict__ lens,
                                        Unit* __restrict__ dst, int64_t n, int64_t block,
                                        int64_t d1, int64_t steps, bool batch_first) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t q = i / block, r = i - q * block;
    const int64_t a0 = q / d1, a1 = q - a0 * d1;
    const int64_t b = batch_first ? a0 : a1, t = batch_first ? a1 : a0;
    int64_t len = static_cast<int64_t>(lens[b]);
    len = len < 0 ? 0 : (len > steps ? steps : len);
    const int64_t ts = t < len ? len - 1 - t : t;
    dst[i] = src[(batch_first ? b * d1 + ts : ts * d1 + b) * block + r];
  }
}

class ReverseSequenceKernel final : public Kernel {
 public:
  ReverseSequenceKernel(size_t es, DataType len_type, int64_t numel, int64_t block, int64_t d1,
                        int64_t steps, bool batch_first)
      : es_(es),
        len_type_(len_type),
        numel_(numel),
        block_(block),
        d1_(d1),
        steps_(steps),
        batch_first_(batch_first) {}
  std::string tactic() const override { return "kiln:reverse_sequence"; }
  Status enqueue(const LaunchArgs& a) override {
    if (numel_ == 0) return Status::ok();
    const size_t unit = widest_unit(address_bits(a.inputs[0]) | address_bits(a.outputs[0]) |
                                    static_cast<uint64_t>(block_) * es_);
    const int64_t f = static_cast<int64_t>(std::max(unit, es_) / es_);
    return dispatch_unit(std::max(unit, es_), [&](auto u) -> Status {
      using U = decltype(u);
      return dispatch_launch<DataType::kI32, DataType::kI64>(len_type_, [&](auto l) -> Status {
        using L = decltype(l);
        const int64_t n = numel_ / f;
        reverse_sequence_kernel<U, L><<<grid_for(n), kBlock, 0, a.stream>>>(
            static_cast<const U*>(a.inputs[0]), static_cast<const L*>(a.inputs[1]),
            static_cast<U*>(a.outputs[0]), n, block_ / f, d1_, steps_, batch_first_);
        KILN_CUDA_CHECK_LAUNCH("reverse_sequence_kernel");
        return Status::ok();
      });
    });
  }

 private:
  size_t es_;
  DataType len_type_;
  int64_t numel_, block_, d1_, steps_;
  bool batch_first_;
};

Result<std::unique_ptr<Kernel>> create_reverse_sequence(const KernelConfig& cfg) {
  const Operand& in = cfg.in(0);
  if (!dm::all_row_major(cfg)) return cfg.unsupported("kNhwc operands");
  const int64_t baxis = cfg.node.attr_i("batch_axis", 1), taxis = cfg.node.attr_i("time_axis", 0);
  if (in.rank() < 2 || !((baxis == 0 && taxis == 1) || (baxis == 1 && taxis == 0)))
    return cfg.error(ErrorCode::kOnnxBadAttribute, "needs rank >= 2 and batch/time axes 0 and 1",
                     "");
  if (cfg.in(1).dtype != DataType::kI32 && cfg.in(1).dtype != DataType::kI64)
    return cfg.unsupported("sequence_lens must be int32 or int64");
  if (cfg.in(1).numel() != in.dims[baxis])
    return cfg.error(ErrorCode::kShapeMismatch, "sequence_lens needs one length per batch entry",
                     "");
  int64_t block = 1;
  for (size_t d = 2; d < in.rank(); ++d) block *= in.dims[d];
  return std::unique_ptr<Kernel>(new ReverseSequenceKernel(dtype_size(in.dtype), cfg.in(1).dtype,
                                                           in.numel(), block, in.dims[1],
                                                           in.dims[1 - baxis], baxis == 0));
}

// ---- Trilu ------------------------------------------------------------------------------

// Keeps (i, j) of each [rows, cols] matrix when j - i >= k (upper) or j - i <= k (lower)
// and writes zero bytes (zero in every dtype) elsewhere. k is read on the device.
template <typename Unit>
__global__ void trilu_kernel(const Unit* __restrict__ src, Unit* __restrict__ dst, int64_t n,
                             int64_t rows, int64_t cols, bool upper, const void* k_ptr, bool k64) {
  int64_t k = 0;
  if (k_ptr) k = k64 ? *static_cast<const int64_t*>(k_ptr) : *static_cast<const int32_t*>(k_ptr);
  k = k < -rows - 1 ? -rows - 1 : (k > cols + 1 ? cols + 1 : k);  // as the CPU: no overflow
  KILN_GRID_STRIDE_LOOP(e, n) {
    const int64_t q = e / cols, j = e - q * cols, i = q % rows;
    const bool keep = upper ? j - i >= k : j - i <= k;
    dst[e] = keep ? src[e] : Unit{};
  }
}

class TriluKernel final : public Kernel {
 public:
  TriluKernel(size_t es, int64_t numel, int64_t rows, int64_t cols, bool upper, int k_input,
              bool k64)
      : es_(es),
        numel_(numel),
        rows_(rows),
        cols_(cols),
        upper_(upper),
        k_input_(k_input),
        k64_(k64) {}
  std::string tactic() const override { return "kiln:trilu"; }
  Status enqueue(const LaunchArgs& a) override {
    if (numel_ == 0) return Status::ok();
    const void* k = k_input_ >= 0 ? a.inputs[k_input_] : nullptr;
    return dispatch_unit(es_, [&](auto u) -> Status {
      using U = decltype(u);
      trilu_kernel<U><<<grid_for(numel_), kBlock, 0, a.stream>>>(
          static_cast<const U*>(a.inputs[0]), static_cast<U*>(a.outputs[0]), numel_, rows_, cols_,
          upper_, k, k64_);
      KILN_CUDA_CHECK_LAUNCH("trilu_kernel");
      return Status::ok();
    });
  }

 private:
  size_t es_;
  int64_t numel_, rows_, cols_;
  bool upper_;
  int k_input_;
  bool k64_;
};

Result<std::unique_ptr<Kernel>> create_trilu(const KernelConfig& cfg) {
  const Operand& in = cfg.in(0);
  if (!dm::all_row_major(cfg)) return cfg.unsupported("kNhwc operands");
  if (in.rank() < 2) return cfg.error(ErrorCode::kShapeMismatch, "Trilu needs rank >= 2", "");
  int k_input = -1;
  bool k64 = true;
  if (cfg.has_input(1)) {
    if (cfg.in(1).numel() != 1)
      return cfg.error(ErrorCode::kShapeMismatch, "Trilu k must be a scalar", "");
    if (cfg.in(1).dtype != DataType::kI64 && cfg.in(1).dtype != DataType::kI32)
      return cfg.unsupported("k must be int32 or int64");
    k_input = 1;
    k64 = cfg.in(1).dtype == DataType::kI64;
  }
  return std::unique_ptr<Kernel>(new TriluKernel(dtype_size(in.dtype), in.numel(),
                                                 in.dims[in.rank() - 2], in.dims[in.rank() - 1],
                                                 cfg.node.attr_i("upper", 1) != 0, k_input, k64));
}

}  // namespace

KILN_REGISTER_CUDA_KERNELS(gather_scatter) {
  reg.add({.op_type = "Gather", .create = create_gather});
  reg.add({.op_type = "GatherElements", .create = create_gather_elements});
  reg.add({.op_type = "GatherND", .create = create_gather_nd});
  reg.add({.op_type = "ScatterElements", .create = create_scatter_elements});
  reg.add({.op_type = "Scatter", .create = create_scatter_elements});
  reg.add({.op_type = "ScatterND", .create = create_scatter_nd});
  reg.add({.op_type = "OneHot", .create = create_onehot});
  reg.add({.op_type = "ReverseSequence", .create = create_reverse_sequence});
  reg.add({.op_type = "Trilu", .create = create_trilu});
}

}  // namespace kiln::cuda
