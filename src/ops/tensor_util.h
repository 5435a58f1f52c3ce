// Shared machinery of the tensor-manipulation op families (shape_ops, layout_ops, pad,
// indexing, scatter, generators, sort_scan): build-time value propagation for integer
// "shape tensors", strided copies that serve every pure data-movement kernel, index
// normalisation with located errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ops/helpers.h"

namespace kiln::ops {

// ---- build-time values of shape tensors ---------------------------------------------

/// One element of an integer shape tensor (the output of Shape, Gather, Concat... that
/// feeds Reshape/Expand/Slice) as far as it is known at build time: a concrete integer of
/// any sign, a named dimension ("batch") or unknown. Dim cannot hold negative numbers (the
/// -1 of a Reshape target), hence this type.
struct SymInt {
  bool known = false;
  int64_t value = 0;
  std::string symbol;  ///< non-empty for a named dimension (then known == false)

  static SymInt of(int64_t v) {
    SymInt s;
    s.known = true;
    s.value = v;
    return s;
  }
  static SymInt unknown() { return SymInt(); }
  static SymInt from_dim(const Dim& d);
  /// Known non-negative → that dim; symbol → Dim::sym; anything else → unknown.
  Dim to_dim() const;
  bool is_symbol() const { return !known && !symbol.empty(); }
  bool same_as(const SymInt& o) const {
    return known ? (o.known && value == o.value) : (is_symbol() && symbol == o.symbol);
  }
};
using SymInts = std::vector<SymInt>;

/// Elements of integer input `i` as far as known: its value when known (constants at build
/// time, always at run time), else derived by following producers through shape arithmetic
/// (ONNX's "data propagation": Shape, Size, Gather, Slice, Concat, Unsqueeze, Squeeze,
/// Reshape, Flatten, Identity, integer Cast, Add/Sub/Mul/Div, Equal, Where,
/// ConstantOfShape). Elements may be unknown; nullopt when not even the element count is
/// known.
std::optional<SymInts> sym_input(const InferContext& ctx, size_t i);
/// Concrete elements of integer input `i` (value or propagated); nullopt if any is unknown.
std::optional<std::vector<int64_t>> known_input_ints(const InferContext& ctx, size_t i);
/// Product of dims[begin, end): concrete when all are known; the single symbolic dim when
/// all others are known 1; else unknown.
Dim dim_product(const std::vector<Dim>& dims, size_t begin, size_t end);


// ---- data movement ------------------------------------------------------------------

/// Copies a strided view of `src` into contiguous `dst`: the element at multi-index i of
/// `dims` is read at src element `offset + sum_d i[d] * strides[d]`. Strides are in
/// elements and may be 0 (broadcast) or negative (reversed slices); elements are
/// `elem_size` bytes. Contiguous innermost runs are copied with memcpy. Transpose, Slice,
/// Expand, Tile, DepthToSpace and SpaceToDepth are all one call of this.
void strided_copy(const void* src, int64_t offset, std::vector<int64_t> dims,
                  std::vector<int64_t> strides, void* dst, size_t elem_size);

/// Writes `n` copies of the `elem_size`-byte value at `value` to `dst`.
void fill_pattern(void* dst, int64_t n, const void* value, size_t elem_size);

/// Product of dims[begin, end) of a concrete shape.
int64_t prod(const std::vector<int64_t>& dims, size_t begin, size_t end);

/// Walks the elements of an index tensor of dims `idx_dims` (GatherElements,
/// ScatterElements) in row-major order, calling fn(flat_index, base) where `base` is the
/// data offset (strides `data_strides`) of the same multi-index with the `axis` coordinate
/// zeroed. Requires idx_dims[d] <= data dims off the axis (checked by inference).
template <typename Fn>
void for_each_element_index(const std::vector<int64_t>& idx_dims,
                            const std::vector<int64_t>& data_strides, int64_t axis, Fn fn) {
  const size_t r = idx_dims.size();
  const int64_t n = prod(idx_dims, 0, r);
  std::vector<int64_t> c(r, 0);
  int64_t base = 0;
  for (int64_t i = 0; i < n; ++i) {
    fn(i, base);
    for (int64_t d = static_cast<int64_t>(r) - 1; d >= 0; --d) {
      if (d != axis) base += data_strides[d];
      if (++c[d] < idx_dims[d]) break;
      if (d != axis) base -= data_strides[d] * idx_dims[d];
      c[d] = 0;
    }
  }
}

// ---- indices --------------------------------------------------------------------------

/// Maps an index in [-dim, dim-1] to [0, dim-1] (ONNX negative-index semantics). False when
/// it is outside that range.
inline bool wrap_index(int64_t& i, int64_t dim) {
  if (i < -dim || i >= dim) return false;
  if (i < 0) i += dim;
  return true;
}

/// The error for an out-of-range index: names the op's input, the index, the axis and its
/// size (kInvalidArgument, located at the node).
Status index_out_of_range(const KernelContext& ctx, const char* what, int64_t index, int64_t axis,
                          int64_t dim);

/// kOutOfMemory when a tensor of known dims `s` and type `t` would not fit in memory (more
/// than 2^40 bytes, or an overflowing element count). Ops whose output size comes from
/// input *values* (Expand, Tile, ConstantOfShape, Range, Pad) call it so that a bad shape
/// tensor gives a diagnostic instead of a failed allocation.
Status check_output_size(const InferContext& ctx, const Shape& s, DataType t);

/// Normalised axis or a kBadAxis error naming the attribute/input and the rank.
Result<int64_t> checked_axis(const InferContext& ctx, int64_t axis, int64_t rank,
                             const char* what = "axis");

/// Reads element i of an int32/int64 index tensor.
inline int64_t index_at(const HostTensor& t, int64_t i) {
  return t.dtype() == DataType::kI64 ? t.data<int64_t>()[i] : t.get_i64(i);
}

/// kTypeMismatch unless input `i` is int32 or int64 (index tensors); build time passes
/// when the type is not known yet.
Status require_index_type(const InferContext& ctx, size_t i, const char* what);

/// kTypeMismatch unless input `i` is int64 (GatherND, ScatterND indices); passes while the
/// type is unknown.
Status require_int64(const InferContext& ctx, size_t i, const char* what);

/// The index-shape rule of GatherElements and ScatterElements (ONNX Operators.md): indices
/// have data's rank and, off attribute `axis`, no dim larger than data's. Checks what is
/// known (kShapeMismatch, kBadAxis); `prefix` starts the messages ("GatherElements "), and
/// `verb` names the axis in the hint ("gather", "scatter").
Status check_element_indices(const InferContext& ctx, const Shape& data, const Shape& idx,
                             const std::string& prefix, const char* verb);

}  // namespace kiln::ops
