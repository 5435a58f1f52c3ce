// Building blocks shared by the elementwise op families (unary math, activations,
// comparisons, logic, bitwise, variadic, Cast): compile-time restricted dtype dispatch, dtype
// validation for shape inference, and numpy-broadcasting loops that visit the output in
// contiguous rows (ONNX Broadcasting.md, "multidirectional broadcasting") so the inner loop
// is a plain strided-by-0-or-1 loop the compiler can vectorise.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/arith.h"
#include "ops/helpers.h"

namespace kiln::ops {

/// Sets of element types an op accepts; combine with |.
enum TypeSet : uint32_t {
  kTsFloat = 1u << 0,     ///< f32 f64 f16 bf16 (kernels compute narrow floats in f32)
  kTsF8 = 1u << 1,        ///< f8e4m3
  kTsSigned = 1u << 2,    ///< i8 i16 i32 i64
  kTsUnsigned = 1u << 3,  ///< u8 u16 u32 u64
  kTsBool = 1u << 4,
  kTsInt = kTsSigned | kTsUnsigned,
  kTsNumeric = kTsFloat | kTsInt,
  kTsAll = kTsNumeric | kTsF8 | kTsBool,
};

/// True when `t` belongs to `set`.
bool type_in_set(DataType t, uint32_t set);
/// "f32, f64, f16, bf16, i8, ..." for messages.
std::string type_set_names(uint32_t set);
/// TypeMismatch when input i's dtype is known and outside `set`; `what` names the operand.
Status check_input_type(const InferContext& ctx, size_t i, uint32_t set,
                        const char* what = "input");
/// TypeMismatch when a present input in [first, last) differs from input `first`'s dtype.
Status check_same_types(const InferContext& ctx, size_t first, size_t last);

/// Dims of input 1 (B) of a binary op as numpy broadcasting must see them. Before opset 7 the
/// binary ops (Add-6, Mul-6, Pow-1, Equal-1, ...) broadcast only with attribute broadcast=1,
/// aligning B's dims with A's starting at attribute `axis` (default: trailing); appending 1s
/// to B turns that into a numpy broadcast. Unchanged in every other case. Errors
/// (ShapeMismatch) when B does not fit into A at `axis`.
Result<Shape> rhs_broadcast_shape(const InferContext& ctx);
/// Output 0 = dtype `t` and the broadcast of input 0 with rhs_broadcast_shape.
Status infer_binary_broadcast(InferContext& ctx, DataType t);
/// Input 1 of a binary op reshaped as rhs_broadcast_shape describes (a view, no copy).
HostTensor rhs_input(const KernelContext& ctx);

/// Calls f(T{}) for the C++ type of `t` when `t` is in the compile-time `Set`; only those
/// instantiations are generated. Other dtypes → TypeMismatch.
template <uint32_t Set, typename F>
Status dispatch_types(DataType t, F&& f) {
#define KILN_TS_CASE(DT, T, BIT)                  \
  case DataType::DT:                              \
    if constexpr ((Set & (BIT)) != 0) return f(T{}); \
    break;
  switch (t) {
    KILN_TS_CASE(kF32, float, kTsFloat) KILN_TS_CASE(kF64, double, kTsFloat)
    KILN_TS_CASE(kF16, f16, kTsFloat) KILN_TS_CASE(kBF16, bf16, kTsFloat)
    KILN_TS_CASE(kF8E4M3, f8e4m3, kTsF8)
    KILN_TS_CASE(kI8, int8_t, kTsSigned) KILN_TS_CASE(kI16, int16_t, kTsSigned)
    KILN_TS_CASE(kI32, int32_t, kTsSigned) KILN_TS_CASE(kI64, int64_t, kTsSigned)
    KILN_TS_CASE(kU8, uint8_t, kTsUnsigned) KILN_TS_CASE(kU16, uint16_t, kTsUnsigned)
    KILN_TS_CASE(kU32, uint32_t, kTsUnsigned) KILN_TS_CASE(kU64, uint64_t, kTsUnsigned)
    KILN_TS_CASE(kBool, bool, kTsBool)
    default: break;
  }
#undef KILN_TS_CASE
  return unsupported_dtype(t);
}

/// Builds an op functor from the node's attributes when it takes them, else default.
template <typename Op>
Op make_op(const ir::Node& n) {
  if constexpr (std::is_constructible_v<Op, const ir::Node&>) return Op(n);
  else return Op{};
}

/// Visits the output of a broadcast over N inputs (dims right-aligned, numpy rules; the
/// caller has validated them, e.g. through shape inference) in rows of contiguous output
/// elements. For each row calls row(off, step, out_offset, len): off[k] is input k's flat
/// element offset at the row start and step[k] is 1 when input k advances with the output
/// along the row, 0 when it is broadcast. Size-1 output dims are dropped and adjacent dims
/// with the same broadcast pattern merged, so rows are as long as possible.
template <size_t N, typename Row>
void for_each_broadcast_row(const std::array<const std::vector<int64_t>*, N>& in_dims,
                            const std::vector<int64_t>& out_dims, Row&& row) {
  int64_t numel = 1;
  for (int64_t d : out_dims) numel *= d;
  if (numel == 0) return;
  std::vector<int64_t> dims;
  std::vector<uint32_t> masks;  // bit k: input k is broadcast along the dim
  const size_t r = out_dims.size();
  for (size_t d = 0; d < r; ++d) {
    if (out_dims[d] == 1) continue;
    uint32_t m = 0;
    for (size_t k = 0; k < N; ++k) {
      const std::vector<int64_t>& id = *in_dims[k];
      size_t lead = r - id.size();
      if (d < lead || id[d - lead] == 1) m |= 1u << k;
    }
    if (!masks.empty() && masks.back() == m) dims.back() *= out_dims[d];
    else { dims.push_back(out_dims[d]); masks.push_back(m); }
  }
  if (dims.empty()) { dims.push_back(1); masks.push_back(0); }
  const size_t nd = dims.size();
  std::array<std::vector<int64_t>, N> strides;
  for (size_t k = 0; k < N; ++k) {
    strides[k].resize(nd);
    int64_t s = 1;
    for (size_t d = nd; d-- > 0;) {
      bool b = (masks[d] >> k) & 1u;
      strides[k][d] = b ? 0 : s;
      if (!b) s *= dims[d];
    }
  }
  const int64_t len = dims[nd - 1];
  std::array<int64_t, N> step{}, off{};
  for (size_t k = 0; k < N; ++k) step[k] = strides[k][nd - 1];
  std::vector<int64_t> idx(nd, 0);
  for (int64_t o = 0; o < numel; o += len) {
    row(off, step, o, len);
    for (size_t d = nd - 1; d-- > 0;) {  // odometer over the outer dims
      if (++idx[d] < dims[d]) {
        for (size_t k = 0; k < N; ++k) off[k] += strides[k][d];
        break;
      }
      idx[d] = 0;
      for (size_t k = 0; k < N; ++k) off[k] -= strides[k][d] * (dims[d] - 1);
    }
  }
}

/// out[i] = op(x[i]) with x of element type I and out of type O; op sees compute_t<I> values
/// (f32 for narrow floats) and its result is converted to O.
template <typename I, typename O, typename Op>
void unary_map(const HostTensor& x, HostTensor& out, const Op& op) {
  const I* px = x.data<I>();
  O* po = out.data<O>();
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; ++i) po[i] = static_cast<O>(op(static_cast<compute_t<I>>(px[i])));
}

/// out = op(a, b) with numpy broadcasting of a and b to out's dims (out must be allocated
/// with the broadcast shape). op sees compute_t values; its result is converted to O.
template <typename A, typename B, typename O, typename Op>
void binary_map(const HostTensor& a, const HostTensor& b, HostTensor& out, const Op& op) {
  using CA = compute_t<A>;
  using CB = compute_t<B>;
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  O* po = out.data<O>();
  for_each_broadcast_row<2>(
      {&a.dims(), &b.dims()}, out.dims(),
      [&](const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& step, int64_t o,
          int64_t n) {
        const A* x = pa + off[0];
        const B* y = pb + off[1];
        O* z = po + o;
        if (step[0] && step[1]) {
          for (int64_t i = 0; i < n; ++i)
            z[i] = static_cast<O>(op(static_cast<CA>(x[i]), static_cast<CB>(y[i])));
        } else if (step[0]) {
          const CB s = static_cast<CB>(*y);
          for (int64_t i = 0; i < n; ++i) z[i] = static_cast<O>(op(static_cast<CA>(x[i]), s));
        } else if (step[1]) {
          const CA s = static_cast<CA>(*x);
          for (int64_t i = 0; i < n; ++i) z[i] = static_cast<O>(op(s, static_cast<CB>(y[i])));
        } else {
          const O v = static_cast<O>(op(static_cast<CA>(*x), static_cast<CB>(*y)));
          for (int64_t i = 0; i < n; ++i) z[i] = v;
        }
      });
}

/// Kernel for a unary op whose output has the input's type; Op is built by make_op.
template <uint32_t Set, typename Op>
Status unary_cpu(KernelContext& ctx) {
  const Op op = make_op<Op>(ctx.node());
  return dispatch_types<Set>(ctx.input(0).dtype(), [&](auto t) {
    using T = decltype(t);
    unary_map<T, T>(ctx.input(0), ctx.output(0), op);
    return Status::ok();
  });
}

/// Kernel for a unary predicate (bool output).
template <uint32_t Set, typename Op>
Status unary_bool_cpu(KernelContext& ctx) {
  const Op op = make_op<Op>(ctx.node());
  return dispatch_types<Set>(ctx.input(0).dtype(), [&](auto t) {
    unary_map<decltype(t), bool>(ctx.input(0), ctx.output(0), op);
    return Status::ok();
  });
}

/// Inference for unary_cpu: input 0's dtype must be in Set; output = input 0.
template <uint32_t Set>
Status infer_unary(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_input_type(ctx, 0, Set));
  return infer_same_as_input0(ctx);
}

/// Inference for unary_bool_cpu: bool output of input 0's shape.
template <uint32_t Set>
Status infer_unary_bool(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_input_type(ctx, 0, Set));
  ctx.set_output(0, DataType::kBool, ctx.input_shape(0));
  return Status::ok();
}

/// One row of an elementwise family's registration table. Opsets are op versions (see
/// OpSchema): min_opset is the op's first version, max_opset the newest one implemented.
struct ElementwiseEntry {
  const char* name;
  int min_opset;
  int num_inputs;
  InferFn infer;
  CpuKernelFn cpu;
  const char* summary;
  CheckFn check = nullptr;
  int max_opset = 23;
};

/// Registers every entry (exactly one output).
void register_elementwise(OpRegistry& reg, std::span<const ElementwiseEntry> entries);

}  // namespace kiln::ops
