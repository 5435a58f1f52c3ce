// Binary arithmetic with numpy broadcasting (ONNX Operators.md: Add, Sub, Mul, Div, Pow,
// Mod, Max/Min/Sum/Mean are variadic elsewhere). Narrow floats compute in f32.
#include <cmath>

#include "ops/helpers.h"

namespace kiln::ops {
namespace {

template <typename T, typename Op>
Status binary_kernel(KernelContext& ctx, Op op) {
  const HostTensor& a = ctx.input(0);
  const HostTensor& b = ctx.input(1);
  HostTensor& out = ctx.output(0);
  BroadcastIndexer ia(a.dims(), out.dims()), ib(b.dims(), out.dims());
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  using C = compute_t<T>;
  const int64_t n = out.numel();
  if (ia.identity() && ib.identity()) {
    for (int64_t i = 0; i < n; ++i) po[i] = static_cast<T>(op(static_cast<C>(pa[i]), static_cast<C>(pb[i])));
  } else if (ia.identity() && ib.scalar()) {
    const C s = static_cast<C>(pb[0]);
    for (int64_t i = 0; i < n; ++i) po[i] = static_cast<T>(op(static_cast<C>(pa[i]), s));
  } else {
    for (int64_t i = 0; i < n; ++i)
      po[i] = static_cast<T>(op(static_cast<C>(pa[ia.index(i)]), static_cast<C>(pb[ib.index(i)])));
  }
  return Status::ok();
}

Status check_same_types(InferContext& ctx) {
  if (ctx.input_type(0) != ctx.input_type(1))
    return ctx.error(ErrorCode::kTypeMismatch,
                     std::string("operands have different types: ") + dtype_name(ctx.input_type(0)) + " and " +
                         dtype_name(ctx.input_type(1)),
                     "insert a Cast so both operands have the same type");
  return infer_broadcast(ctx);
}

Status add_cpu(KernelContext& ctx) {
  return dispatch_numeric(ctx.input(0).dtype(), [&](auto t) {
    return binary_kernel<decltype(t)>(ctx, [](auto x, auto y) { return x + y; });
  });
}
Status sub_cpu(KernelContext& ctx) {
  return dispatch_numeric(ctx.input(0).dtype(), [&](auto t) {
    return binary_kernel<decltype(t)>(ctx, [](auto x, auto y) { return x - y; });
  });
}
Status mul_cpu(KernelContext& ctx) {
  return dispatch_numeric(ctx.input(0).dtype(), [&](auto t) {
    return binary_kernel<decltype(t)>(ctx, [](auto x, auto y) { return x * y; });
  });
}
Status div_cpu(KernelContext& ctx) {
  return dispatch_numeric(ctx.input(0).dtype(), [&](auto t) {
    using T = decltype(t);
    if constexpr (std::is_integral_v<T>) {
      // Integer division by zero is undefined in ONNX; return 0 instead of trapping.
      return binary_kernel<T>(ctx, [](auto x, auto y) { return y == 0 ? decltype(x)(0) : decltype(x)(x / y); });
    } else {
      return binary_kernel<T>(ctx, [](auto x, auto y) { return x / y; });
    }
  });
}

}  // namespace

KILN_REGISTER_OPS(binary_arith) {
  for (auto [name, fn, summary] : {std::tuple{"Add", &add_cpu, "elementwise a + b with broadcasting"},
                                   std::tuple{"Sub", &sub_cpu, "elementwise a - b with broadcasting"},
                                   std::tuple{"Mul", &mul_cpu, "elementwise a * b with broadcasting"},
                                   std::tuple{"Div", &div_cpu, "elementwise a / b with broadcasting"}}) {
    OpSchema s;
    s.op_type = name;
    s.min_opset = 7;
    s.min_inputs = s.max_inputs = 2;
    s.infer = check_same_types;
    s.cpu = fn;
    s.summary = summary;
    reg.add(std::move(s));
  }
}

}  // namespace kiln::ops
