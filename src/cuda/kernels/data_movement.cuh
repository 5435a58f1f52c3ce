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

/// Logical axes of `o` in memory order, outermost first: identity for row-major,
/// [0, 2, ..., r-1, 1] for kNhwc.
inline std::vector<int> memory_order(const Operand& o) {
  const int r = static_cast<int>(o.rank());
  std::vector<int> order;
  if (o.layout == Layout::kNhwc && r >= 3) {
    order.push_back(0);
    for (int d = 2; d < r; ++d) order.push_back(d);
    order.push_back(1);
  } else {
    for (int d = 0; d < r; ++d) order.push_back(d);
  }
  return order;
}

/// Memory stride, in elements, of each logical axis of `o`.
inline std::vector<int64_t> logical_strides(const Operand& o) {
  const std::vector<int> order = memory_order(o);
  std::vector<int64_t> st(o.rank(), 1);
  int64_t s = 1;
  for (int k = static_cast<int>(order.size()) - 1; k >= 0; --k) {
    st[order[k]] = s;
    s *= o.dims[order[k]];
  }
  return st;
}

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

/// StridedIndex with index type I (int64_t: walks of any size; FastStrided below is the
/// faster one for fewer than 2^31 elements).
template <typename I>
struct Strided {
  int rank = 0;
  I dims[kMaxRank];
  I strides[kMaxRank];
  __device__ __forceinline__ I offset(I linear) const {
    I off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const I q = linear / dims[d];
      off += (linear - q * dims[d]) * strides[d];
      linear = q;
    }
    return off;
  }
};

/// Strided<I> over `dims` reading with element `strides`.
template <typename I>
Strided<I> make_strided(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  Strided<I> s;
  s.rank = static_cast<int>(dims.size());
  for (int d = 0; d < s.rank && d < kMaxRank; ++d) {
    s.dims[d] = static_cast<I>(dims[d]);
    s.strides[d] = static_cast<I>(strides[d]);
  }
  return s;
}

/// n / d for a fixed divisor and n < 2^31 by a multiply-high and a shift (Granlund and
/// Montgomery; PyTorch's IntDivider): index decoding divides by every dim per element, and
/// 64-bit division is a long instruction sequence on the GPU.
struct FastDiv {
  uint32_t d = 1, m = 0, s = 0;
  FastDiv() = default;
  explicit FastDiv(uint32_t divisor) : d(divisor) {
    while (s < 32 && (uint64_t{1} << s) < d) ++s;
    m = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << s) - d)) / d + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, m) + n) >> s; }
};

/// Strided walk over fewer than 2^31 elements with FastDiv decoding (offsets stay 64-bit).
struct FastStrided {
  int rank = 0;
  FastDiv div[kMaxRank];
  int64_t strides[kMaxRank];
  __device__ __forceinline__ int64_t offset(uint32_t linear) const {
    int64_t off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const uint32_t q = div[d].div(linear);
      off += static_cast<int64_t>(linear - q * div[d].d) * strides[d];
      linear = q;
    }
    return off;
  }
};

/// FastStrided over `dims` (each > 0, product < 2^31) reading with element `strides`.
inline FastStrided make_fast_strided(const std::vector<int64_t>& dims,
                                     const std::vector<int64_t>& strides) {
  FastStrided s;
  s.rank = static_cast<int>(dims.size());
  for (int d = 0; d < s.rank && d < kMaxRank; ++d) {
    s.div[d] = FastDiv(static_cast<uint32_t>(dims[d]));
    s.strides[d] = strides[d];
  }
  return s;
}

/// Element counts below this use FastDiv / FastStrided.
constexpr int64_t kFastIndexLimit = int64_t{1} << 31;

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
