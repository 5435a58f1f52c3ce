// Comparisons (Equal, Less, Greater, LessOrEqual, GreaterOrEqual), logical And/Or/Xor and
// Where, all with numpy multidirectional broadcasting (ONNX Operators.md, Broadcasting.md).
// Comparisons and logic produce bool; narrow floats compare in f32.
#include "ops/elementwise.h"

namespace kiln::ops {
namespace {

struct Equal { template <typename C> bool operator()(C a, C b) const { return a == b; } };
struct Less { template <typename C> bool operator()(C a, C b) const { return a < b; } };
struct Greater { template <typename C> bool operator()(C a, C b) const { return a > b; } };
struct LessOrEqual { template <typename C> bool operator()(C a, C b) const { return a <= b; } };
struct GreaterOrEqual { template <typename C> bool operator()(C a, C b) const { return a >= b; } };
struct And { bool operator()(bool a, bool b) const { return a && b; } };
struct Or { bool operator()(bool a, bool b) const { return a || b; } };
struct Xor { bool operator()(bool a, bool b) const { return a != b; } };

/// Both operands of type in Set and equal; bool output of the broadcast shape.
template <uint32_t Set>
Status infer_compare(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_input_type(ctx, 0, Set));
  KILN_RETURN_IF_ERROR(check_same_types(ctx, 0, 2));
  return infer_binary_broadcast(ctx, DataType::kBool);
}

template <uint32_t Set, typename Op>
Status compare_cpu(KernelContext& ctx) {
  return dispatch_types<Set>(ctx.input(0).dtype(), [&](auto t) {
    using T = decltype(t);
    binary_map<T, T, bool>(ctx.input(0), rhs_input(ctx), ctx.output(0), Op{});
    return Status::ok();
  });
}

// ---- Where(condition, X, Y) ----------------------------------------------------------------

Status where_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_input_type(ctx, 0, kTsBool, "condition input"));
  KILN_RETURN_IF_ERROR(check_same_types(ctx, 1, 3));
  KILN_RETURN_IF_ERROR(infer_broadcast(ctx));  // shape over all three inputs
  ctx.set_output(0, ctx.input_type(1), ctx.output_shape(0));
  return Status::ok();
}

Status where_cpu(KernelContext& ctx) {
  const HostTensor& cond = ctx.input(0);
  const HostTensor& x = ctx.input(1);
  const HostTensor& y = ctx.input(2);
  HostTensor& out = ctx.output(0);
  return dispatch_types<kTsAll>(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const bool* pc = cond.data<bool>();
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    T* po = out.data<T>();
    for_each_broadcast_row<3>({&cond.dims(), &x.dims(), &y.dims()}, out.dims(),
                              [&](const std::array<int64_t, 3>& off,
                                  const std::array<int64_t, 3>& step, int64_t o, int64_t n) {
                                const bool* c = pc + off[0];
                                const T* a = px + off[1];
                                const T* b = py + off[2];
                                T* z = po + o;
                                if (step[0] && step[1] && step[2]) {
                                  for (int64_t i = 0; i < n; ++i) z[i] = c[i] ? a[i] : b[i];
                                } else {
                                  for (int64_t i = 0; i < n; ++i)
                                    z[i] = c[i * step[0]] ? a[i * step[1]] : b[i * step[2]];
                                }
                              });
    return Status::ok();
  });
}

constexpr uint32_t kEqualTypes = kTsNumeric | kTsBool;  // Equal also compares bools

// clang-format off
const ElementwiseEntry kEntries[] = {
    {"Equal", 1, 2, infer_compare<kEqualTypes>, compare_cpu<kEqualTypes, Equal>, "a == b (bool)"},
    {"Less", 1, 2, infer_compare<kTsNumeric>, compare_cpu<kTsNumeric, Less>, "a < b (bool)"},
    {"Greater", 1, 2, infer_compare<kTsNumeric>, compare_cpu<kTsNumeric, Greater>, "a > b (bool)"},
    {"LessOrEqual", 12, 2, infer_compare<kTsNumeric>, compare_cpu<kTsNumeric, LessOrEqual>,
     "a <= b (bool)"},
    {"GreaterOrEqual", 12, 2, infer_compare<kTsNumeric>, compare_cpu<kTsNumeric, GreaterOrEqual>,
     "a >= b (bool)"},
    {"And", 1, 2, infer_compare<kTsBool>, compare_cpu<kTsBool, And>, "logical and of bool tensors"},
    {"Or", 1, 2, infer_compare<kTsBool>, compare_cpu<kTsBool, Or>, "logical or of bool tensors"},
    {"Xor", 1, 2, infer_compare<kTsBool>, compare_cpu<kTsBool, Xor>, "logical xor of bool tensors"},
    {"Where", 9, 3, where_infer, where_cpu, "condition ? X : Y with 3-way broadcasting"},
};
// clang-format on

}  // namespace

KILN_REGISTER_OPS(compare_logic) {
  register_elementwise(reg, kEntries);
}

}  // namespace kiln::ops
