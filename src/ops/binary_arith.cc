// Binary arithmetic with numpy broadcasting (ONNX Operators.md: Add, Sub, Mul, Div, Pow,
// Mod; Max/Min/Sum/Mean are variadic, in variadic.cc). Narrow floats compute in f32.
#include <cmath>

#include "ops/elementwise.h"

namespace kiln::ops {
namespace {

/// Mod (Mod-13; the float fmod=0 rules are those of Mod-28, the natural extension).
/// fmod=0: result takes the divisor's sign (Python %, numpy.mod); fmod=1: C fmod / truncated
/// integer remainder. Integer division by zero gives 0 rather than trapping.
struct ModOp {
  bool c_fmod;
  explicit ModOp(const ir::Node& n) : c_fmod(n.attr_i("fmod", 0) != 0) {}
  template <typename C> C operator()(C x, C y) const {
    if constexpr (std::is_floating_point_v<C>) {
      C r = std::fmod(x, y);
      if (c_fmod) return r;
      if (r != C(0) && ((r < C(0)) != (y < C(0)))) r += y;
      return r == C(0) ? std::copysign(C(0), y) : r;
    } else {
      if (y == 0) return C(0);
      if constexpr (std::is_signed_v<C>) {
        if (y == C(-1)) return C(0);  // avoids the INT_MIN % -1 trap
        C r = static_cast<C>(x % y);
        if (!c_fmod && r != 0 && ((r < 0) != (y < 0))) r = static_cast<C>(r + y);
        return r;
      } else {
        return static_cast<C>(x % y);
      }
    }
  }
};

/// Integer power by squaring, wrapping on overflow like numpy; negative exponents give the
/// truncated real result (0 unless |base| == 1).
template <typename C, typename E>
C int_pow(C base, E e) {
  if constexpr (std::is_signed_v<E>) {
    if (e < 0) {
      if (base == C(1)) return C(1);
      if constexpr (std::is_signed_v<C>)
        if (base == C(-1)) return (e % 2 == 0) ? C(1) : C(-1);
      return C(0);
    }
  }
  using U = wrap_t<C>;
  U result = 1, b = static_cast<U>(base);
  uint64_t n = static_cast<uint64_t>(e);
  while (n) {
    if (n & 1u) result = static_cast<U>(result * b);
    b = static_cast<U>(b * b);
    n >>= 1;
  }
  return static_cast<C>(result);
}

/// Pow: the output has the base's type; the exponent may have any numeric type (Pow-12+).
struct PowOp {
  template <typename CA, typename CB> CA operator()(CA x, CB y) const {
    if constexpr (std::is_integral_v<CA> && std::is_integral_v<CB>) {
      return int_pow(x, y);
    } else if constexpr (std::is_integral_v<CA>) {
      return float_to_int<CA>(std::pow(static_cast<double>(x), static_cast<double>(y)));
    } else if constexpr (std::is_same_v<CA, float> && std::is_same_v<CB, float>) {
      return std::pow(x, y);
    } else {
      return static_cast<CA>(std::pow(static_cast<double>(x), static_cast<double>(y)));
    }
  }
};

template <typename Op>
Status same_type_cpu(KernelContext& ctx) {
  const Op op = make_op<Op>(ctx.node());
  return dispatch_types<kTsNumeric>(ctx.input(0).dtype(), [&](auto t) {
    using T = decltype(t);
    binary_map<T, T, T>(ctx.input(0), rhs_input(ctx), ctx.output(0), op);
    return Status::ok();
  });
}

Status same_type_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_input_type(ctx, 0, kTsNumeric));
  KILN_RETURN_IF_ERROR(check_same_types(ctx, 0, 2));
  return infer_binary_broadcast(ctx, ctx.input_type(0));
}

constexpr uint32_t kPowBase = kTsFloat | kTsSigned | kTsUnsigned;

Status pow_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_input_type(ctx, 0, kPowBase));
  KILN_RETURN_IF_ERROR(check_input_type(ctx, 1, kTsNumeric));
  if (ctx.opset() < 12) KILN_RETURN_IF_ERROR(check_same_types(ctx, 0, 2));
  return infer_binary_broadcast(ctx, ctx.input_type(0));  // output type = base type
}

Status pow_cpu(KernelContext& ctx) {
  return dispatch_types<kPowBase>(ctx.input(0).dtype(), [&](auto a) {
    return dispatch_types<kTsNumeric>(ctx.input(1).dtype(), [&](auto b) {
      using A = decltype(a);
      binary_map<A, decltype(b), A>(ctx.input(0), rhs_input(ctx), ctx.output(0), PowOp{});
      return Status::ok();
    });
  });
}

Status check_mod(const ir::Node& n) {
  int64_t f = n.attr_i("fmod", 0);
  if (f == 0 || f == 1) return Status::ok();
  return Status(ErrorCode::kOnnxBadAttribute, "Mod fmod must be 0 or 1, got " + std::to_string(f),
                "fmod=0: sign of the divisor (Python %); fmod=1: sign of the dividend (C fmod)",
                n.loc("attribute 'fmod'"));
}

// clang-format off
const ElementwiseEntry kEntries[] = {
    {"Add", 1, 2, same_type_infer, same_type_cpu<AddOp>, "elementwise a + b with broadcasting"},
    {"Sub", 1, 2, same_type_infer, same_type_cpu<SubOp>, "elementwise a - b with broadcasting"},
    {"Mul", 1, 2, same_type_infer, same_type_cpu<MulOp>, "elementwise a * b with broadcasting"},
    {"Div", 1, 2, same_type_infer, same_type_cpu<DivOp>, "elementwise a / b with broadcasting"},
    {"Pow", 1, 2, pow_infer, pow_cpu,
     "a ^ b with broadcasting (exponent may have another numeric type)"},
    {"Mod", 10, 2, same_type_infer, same_type_cpu<ModOp>,
     "remainder with broadcasting (fmod=0: sign of divisor, fmod=1: C fmod)", check_mod, 28},
};
// clang-format on

}  // namespace

KILN_REGISTER_OPS(binary_arith) {
  register_elementwise(reg, kEntries);
}

}  // namespace kiln::ops
