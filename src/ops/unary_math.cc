// Elementwise unary math (ONNX Operators.md: Abs, Neg, Exp, Log, Sqrt, Reciprocal, Floor,
// Ceil, Round, Sign, the trigonometric and hyperbolic functions, Erf, IsNaN, IsInf, Not).
// Output has the input's shape; narrow floats compute in f32, f64 in f64.
#include <cmath>

#include "ops/elementwise.h"

namespace kiln::ops {
namespace {

// ---- functors: operator() takes and returns the compute type ---------------------------

struct Abs {
  template <typename C> C operator()(C x) const {
    if constexpr (std::is_floating_point_v<C>) return std::fabs(x);
    else if constexpr (std::is_unsigned_v<C>) return x;
    else  // negate in unsigned arithmetic: INT_MIN wraps to itself as in numpy, without UB
      return x < 0 ? static_cast<C>(-static_cast<std::make_unsigned_t<C>>(x)) : x;
  }
};
struct Neg {
  template <typename C> C operator()(C x) const {
    if constexpr (std::is_integral_v<C>)  // negate in unsigned arithmetic: INT_MIN wraps, no UB
      return static_cast<C>(-static_cast<std::make_unsigned_t<C>>(x));
    else return -x;
  }
};
struct Sign {
  template <typename C> C operator()(C x) const {
    if constexpr (std::is_unsigned_v<C>) return x > 0 ? C(1) : C(0);
    else return x > 0 ? C(1) : (x < 0 ? C(-1) : x);  // keeps NaN (and ±0) as numpy.sign does
  }
};
// Round: half to even, as required by the spec; nearbyint uses the default FE_TONEAREST mode.
struct Round { template <typename C> C operator()(C x) const { return std::nearbyint(x); } };
struct Reciprocal { template <typename C> C operator()(C x) const { return C(1) / x; } };

#define KILN_STD_UNARY(NAME, FN) \
  struct NAME { template <typename C> auto operator()(C x) const { return std::FN(x); } };
KILN_STD_UNARY(Exp, exp) KILN_STD_UNARY(Log, log) KILN_STD_UNARY(Sqrt, sqrt)
KILN_STD_UNARY(Floor, floor) KILN_STD_UNARY(Ceil, ceil) KILN_STD_UNARY(Sin, sin)
KILN_STD_UNARY(Cos, cos) KILN_STD_UNARY(Tan, tan) KILN_STD_UNARY(Asin, asin)
KILN_STD_UNARY(Acos, acos) KILN_STD_UNARY(Atan, atan) KILN_STD_UNARY(Sinh, sinh)
KILN_STD_UNARY(Cosh, cosh) KILN_STD_UNARY(Asinh, asinh) KILN_STD_UNARY(Acosh, acosh)
KILN_STD_UNARY(Atanh, atanh)
#undef KILN_STD_UNARY

// Erf accepts integer tensors from opset 13: evaluate in double, truncate like Cast.
struct ErfAny {
  template <typename C> C operator()(C x) const {
    if constexpr (std::is_integral_v<C>) return float_to_int<C>(std::erf(static_cast<double>(x)));
    else return std::erf(x);
  }
};

struct IsNaN { template <typename C> bool operator()(C x) const { return std::isnan(x); } };
struct IsInf {
  bool neg = true, pos = true;
  explicit IsInf(const ir::Node& n)
      : neg(n.attr_i("detect_negative", 1) != 0), pos(n.attr_i("detect_positive", 1) != 0) {}
  template <typename C> bool operator()(C x) const { return std::isinf(x) && (x < 0 ? neg : pos); }
};
struct Not { bool operator()(bool x) const { return !x; } };

constexpr uint32_t kF = kTsFloat;
constexpr uint32_t kSignedNum = kTsFloat | kTsSigned;
constexpr uint32_t kFloatF8 = kTsFloat | kTsF8;

// clang-format off
const ElementwiseEntry kEntries[] = {
    {"Abs", 1, 1, infer_unary<kTsNumeric>, unary_cpu<kTsNumeric, Abs>, "|x|"},
    {"Neg", 1, 1, infer_unary<kSignedNum>, unary_cpu<kSignedNum, Neg>, "-x"},
    {"Sign", 9, 1, infer_unary<kTsNumeric>, unary_cpu<kTsNumeric, Sign>, "sign of x: -1, 0 or 1"},
    {"Exp", 1, 1, infer_unary<kF>, unary_cpu<kF, Exp>, "e^x"},
    {"Log", 1, 1, infer_unary<kF>, unary_cpu<kF, Log>, "natural logarithm"},
    {"Sqrt", 1, 1, infer_unary<kF>, unary_cpu<kF, Sqrt>, "square root"},
    {"Reciprocal", 1, 1, infer_unary<kF>, unary_cpu<kF, Reciprocal>, "1/x"},
    {"Floor", 1, 1, infer_unary<kF>, unary_cpu<kF, Floor>, "round toward -inf"},
    {"Ceil", 1, 1, infer_unary<kF>, unary_cpu<kF, Ceil>, "round toward +inf"},
    {"Round", 11, 1, infer_unary<kF>, unary_cpu<kF, Round>, "round half to even"},
    {"Sin", 7, 1, infer_unary<kF>, unary_cpu<kF, Sin>, "sine"},
    {"Cos", 7, 1, infer_unary<kF>, unary_cpu<kF, Cos>, "cosine"},
    {"Tan", 7, 1, infer_unary<kF>, unary_cpu<kF, Tan>, "tangent"},
    {"Asin", 7, 1, infer_unary<kF>, unary_cpu<kF, Asin>, "arcsine"},
    {"Acos", 7, 1, infer_unary<kF>, unary_cpu<kF, Acos>, "arccosine"},
    {"Atan", 7, 1, infer_unary<kF>, unary_cpu<kF, Atan>, "arctangent"},
    {"Sinh", 9, 1, infer_unary<kF>, unary_cpu<kF, Sinh>, "hyperbolic sine"},
    {"Cosh", 9, 1, infer_unary<kF>, unary_cpu<kF, Cosh>, "hyperbolic cosine"},
    {"Asinh", 9, 1, infer_unary<kF>, unary_cpu<kF, Asinh>, "inverse hyperbolic sine"},
    {"Acosh", 9, 1, infer_unary<kF>, unary_cpu<kF, Acosh>, "inverse hyperbolic cosine"},
    {"Atanh", 9, 1, infer_unary<kF>, unary_cpu<kF, Atanh>, "inverse hyperbolic tangent"},
    {"Erf", 9, 1, infer_unary<kTsNumeric>, unary_cpu<kTsNumeric, ErfAny>, "Gauss error function"},
    {"IsNaN", 9, 1, infer_unary_bool<kFloatF8>, unary_bool_cpu<kFloatF8, IsNaN>,
     "x is NaN (bool output)"},
    {"IsInf", 10, 1, infer_unary_bool<kFloatF8>, unary_bool_cpu<kFloatF8, IsInf>,
     "x is +inf/-inf (detect_positive/detect_negative; bool output)"},
    {"Not", 1, 1, infer_unary<kTsBool>, unary_cpu<kTsBool, Not>, "logical not of a bool tensor"},
};
// clang-format on

}  // namespace

KILN_REGISTER_OPS(unary_math) {
  register_elementwise(reg, kEntries);
}

}  // namespace kiln::ops
