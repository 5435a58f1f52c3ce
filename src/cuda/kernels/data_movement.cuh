// Shared pieces of kiln's data-movement kernels (data_movement.cu, gather_scatter.cu,
// resize.cu). These kernels never look at a dtype's meaning: an element is an unsigned
// "unit" of dtype_size bytes, and where rows are contiguous several elements move as one
// wider unit (up to 16 bytes, one vector load/store). Operands may be row-major or kNhwc
// (logical NCHW dims, channels-last memory); logical_strides() hides the difference.
#pragma once

#include <string>
#include <vector>

#include "cuda/kernels/common.cuh"

namespace kiln::cuda::dm {

// Shared with the pointwise and reduce kernels (common.cuh); named here for dm:: users.
using cuda::FastDiv;
using cuda::FastStrided;
using cuda::kFastIndexLimit;
using cuda::logical_strides;
using cuda::make_fast_strided;
using cuda::memory_order;
template <typename I>
using Strided = StridedIndexT<I>;

// ---- units ------------------------------------------------------------------------------

/// Calls f(Unit{}) with the unsigned type of `bytes` bytes (1, 2, 4, 8, or 16 = uint4).
template <typename F>
Status dispatch_unit(size_t bytes, F&& f) {
  switch (bytes) {
    case 1: return f(uint8_t{});
    case 2: return f(uint16_t{});
    case 4: return f(uint32_t{});
    case 8: return f(uint64_t{});
    case 16: return f(uint4{});
    default: break;
  }
  return Status(ErrorCode::kInternal,
                "no data-movement unit of " + std::to_string(bytes) + " bytes");
}

/// Largest power of two <= 16 that divides every value OR-ed into `bits` (byte counts,
/// byte offsets, addresses): the widest unit a copy over those values may use.
inline size_t widest_unit(uint64_t bits) {
  size_t u = 16;
  while (u > 1 && (bits % u) != 0) u /= 2;
  return u;
}

/// Address bits of a device pointer, for widest_unit().
inline uint64_t address_bits(const void* p) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p));
}

// ---- layouts ----------------------------------------------------------------------------

/// True when every present operand is row-major (kernels without kNhwc support use it).
inline bool all_row_major(const KernelConfig& cfg) {
  for (const auto* list : {&cfg.inputs, &cfg.outputs})
    for (const Operand& o : *list)
      if (o.present() && o.layout != Layout::kRowMajor) return false;
  return true;
}

/// kNhwc is meaningful for rank >= 3 only; a lower-rank kNhwc operand is a caller bug.
inline bool layout_valid(const Operand& o) {
  return o.layout == Layout::kRowMajor || o.rank() >= 3;
}

// ---- strided indexing -------------------------------------------------------------------

/// Strided<I> over `dims` reading with element `strides` (int64_t: walks of any size;
/// FastStrided is the faster one for fewer than 2^31 elements).
template <typename I>
StridedIndexT<I> make_strided(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  StridedIndexT<I> s;
  s.rank = static_cast<int>(dims.size());
  for (int d = 0; d < s.rank && d < kMaxRank; ++d) {
    s.dims[d] = static_cast<I>(dims[d]);
    s.strides[d] = static_cast<I>(strides[d]);
  }
  return s;
}

// ---- factory helpers --------------------------------------------------------------------

/// Axis `a` (possibly negative) of a rank-`rank` tensor, or a kBadAxis error at the node.
inline Result<int64_t> node_axis(const KernelConfig& cfg, int64_t a, int64_t rank,
                                 const char* what = "axis") {
  if (a < -rank || a >= rank || rank == 0)
    return cfg.error(ErrorCode::kBadAxis,
                     std::string(what) + " " + std::to_string(a) + " is out of range for rank " +
                         std::to_string(rank),
                     "axes must lie in [-rank, rank-1]");
  return a < 0 ? a + rank : a;
}

/// Host values of constant integer input `i` (shape / axes / pads inputs), or NoGpuKernel
/// when the input is computed at run time.
inline Result<std::vector<int64_t>> const_ints(const KernelConfig& cfg, size_t i,
                                               const char* what) {
  if (!cfg.in(i).value) return cfg.unsupported(std::string(what) + " is not a constant");
  return cfg.in(i).value->to_i64_vector();
}

/// Product of d[begin, end).
inline int64_t prod(const std::vector<int64_t>& d, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < d.size(); ++i) p *= d[i];
  return p;
}

// ---- indices ----------------------------------------------------------------------------

/// Index `v` of an axis of size `dim` (> 0) in ONNX semantics (negative counts from the
/// end), clamped into [0, dim-1]. The CPU reference rejects an out-of-range index with
/// an error; a kernel cannot report one without a host round trip, so the GPU reads the
/// nearest valid element instead and never touches memory outside the tensor.
__device__ __forceinline__ int64_t wrap_clamp(int64_t v, int64_t dim) {
  if (v < 0) v += dim;
  return v < 0 ? 0 : (v >= dim ? dim - 1 : v);
}

/// Same without clamping: -1 when `v` is outside [-dim, dim-1] (scatters skip those).
__device__ __forceinline__ int64_t wrap_or_invalid(int64_t v, int64_t dim) {
  if (v < 0) v += dim;
  return (v < 0 || v >= dim) ? -1 : v;
}

}  // namespace kiln::cuda::dm
