// Shared building blocks for op-table entries: dtype dispatch for CPU kernels, value types
// for narrow floats, common shape-inference functions and broadcasting index helpers.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/half.h"
#include "core/tensor.h"
#include "ops/registry.h"

namespace kiln::ops {

/// fp16 / bf16 / fp8 storage types usable in templated kernels: arithmetic happens in f32.
struct f16 {
  uint16_t bits = 0;
  f16() = default;
  f16(float f) : bits(f32_to_f16(f)) {}  // NOLINT
  operator float() const { return f16_to_f32(bits); }  // NOLINT
};
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  bf16(float f) : bits(f32_to_bf16(f)) {}  // NOLINT
  operator float() const { return bf16_to_f32(bits); }  // NOLINT
};
struct f8e4m3 {
  uint8_t bits = 0;
  f8e4m3() = default;
  f8e4m3(float f) : bits(f32_to_f8e4m3(f)) {}  // NOLINT
  operator float() const { return f8e4m3_to_f32(bits); }  // NOLINT
};

/// The arithmetic type used to compute on T: float for narrow floats, T otherwise.
template <typename T> struct compute_type { using type = T; };
template <> struct compute_type<f16> { using type = float; };
template <> struct compute_type<bf16> { using type = float; };
template <> struct compute_type<f8e4m3> { using type = float; };
template <typename T> using compute_t = typename compute_type<T>::type;

template <typename T>
constexpr bool is_float_v = std::is_floating_point_v<T> || std::is_same_v<T, f16> ||
                            std::is_same_v<T, bf16> || std::is_same_v<T, f8e4m3>;

/// Float (any width) → integer T the way ONNX Cast does on common hardware: truncation toward
/// zero; values outside T's range wrap through int64 (undefined in the spec, but never UB
/// here); NaN → 0.
template <typename T>
T float_to_int(double v) {
  if (std::isnan(v)) return T(0);
  if constexpr (std::is_same_v<T, uint64_t>) {
    if (v >= 18446744073709551616.0) return std::numeric_limits<uint64_t>::max();
    if (v >= 9223372036854775808.0) return static_cast<uint64_t>(v);
  }
  if (v >= 9223372036854775808.0) return static_cast<T>(std::numeric_limits<int64_t>::min());
  if (v < -9223372036854775808.0) return static_cast<T>(std::numeric_limits<int64_t>::min());
  return static_cast<T>(static_cast<int64_t>(v));
}

/// Error for a dtype a kernel does not handle.
Status unsupported_dtype(DataType t, const char* what = "kernel");

// Dispatch: calls f(T{}) with the C++ type of `t`. Variants restrict the set of types.
#define KILN_DISPATCH_CASE(DT, T) case DataType::DT: return f(T{});
template <typename F>
Status dispatch_float(DataType t, F&& f) {
  switch (t) {
    KILN_DISPATCH_CASE(kF32, float) KILN_DISPATCH_CASE(kF64, double)
    KILN_DISPATCH_CASE(kF16, f16) KILN_DISPATCH_CASE(kBF16, bf16)
    default: return unsupported_dtype(t);
  }
}
template <typename F>
Status dispatch_numeric(DataType t, F&& f) {  // floats (no fp8) and all integers
  switch (t) {
    KILN_DISPATCH_CASE(kF32, float) KILN_DISPATCH_CASE(kF64, double)
    KILN_DISPATCH_CASE(kF16, f16) KILN_DISPATCH_CASE(kBF16, bf16)
    KILN_DISPATCH_CASE(kI8, int8_t) KILN_DISPATCH_CASE(kU8, uint8_t)
    KILN_DISPATCH_CASE(kI16, int16_t) KILN_DISPATCH_CASE(kU16, uint16_t)
    KILN_DISPATCH_CASE(kI32, int32_t) KILN_DISPATCH_CASE(kU32, uint32_t)
    KILN_DISPATCH_CASE(kI64, int64_t) KILN_DISPATCH_CASE(kU64, uint64_t)
    default: return unsupported_dtype(t);
  }
}
template <typename F>
Status dispatch_all(DataType t, F&& f) {  // numeric + bool (as uint8_t... use bool_t tag) + fp8
  switch (t) {
    KILN_DISPATCH_CASE(kBool, bool) KILN_DISPATCH_CASE(kF8E4M3, f8e4m3)
    default: return dispatch_numeric(t, std::forward<F>(f));
  }
}
#undef KILN_DISPATCH_CASE

// ---- shape inference helpers --------------------------------------------------------

/// Output 0 = input 0's type and shape.
Status infer_same_as_input0(InferContext& ctx);
/// Output 0 type = input 0's, shape = multidirectional broadcast of all inputs.
Status infer_broadcast(InferContext& ctx);
/// Output 0 = bool, shape = broadcast of inputs (comparisons, logical ops).
Status infer_broadcast_bool(InferContext& ctx);

/// True when both dims are known and differ: a mismatch certain at build time.
inline bool known_to_differ(const Dim& a, const Dim& b) {
  return a.is_known() && b.is_known() && a.value != b.value;
}
/// True when the dim lists differ in length or some pair is known_to_differ.
bool known_to_differ(const std::vector<Dim>& a, const std::vector<Dim>& b);

/// [start, end) of the dims a Shape node returns (ONNX Shape-15 start/end attributes):
/// negative values count from the back, then both clamp to [0, rank]; end < start gives
/// an empty range. Shared by Shape's inference, shape propagation and constant folding.
std::pair<int64_t, int64_t> shape_range(const ir::Node& n, int64_t rank);

// ---- broadcasting for CPU kernels -------------------------------------------------

/// Maps a flat output index to the flat index of an input broadcast to `out_dims`.
/// Construct once per (input, output) pair, then call index(i) in the loop.
class BroadcastIndexer {
 public:
  BroadcastIndexer(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& out_dims);
  /// True when the input has the output's shape (index(i) == i).
  bool identity() const { return identity_; }
  bool scalar() const { return scalar_; }
  int64_t index(int64_t out_flat) const {
    if (identity_) return out_flat;
    if (scalar_) return 0;
    int64_t r = 0;
    for (size_t d = 0; d < out_strides_.size(); ++d) {
      int64_t c = out_flat / out_strides_[d];
      out_flat -= c * out_strides_[d];
      r += c * in_strides_[d];
    }
    return r;
  }

 private:
  std::vector<int64_t> out_strides_, in_strides_;  // in_strides_ 0 on broadcast dims
  bool identity_ = false, scalar_ = false;
};

}  // namespace kiln::ops
