// kiln's fused pointwise op, domain "kiln", op_type "FusedPointwise" (src/ops/fused_pointwise.cc):
// a straight-line program of elementwise ops over N inputs with numpy broadcasting (ONNX
// Broadcasting.md, multidirectional), evaluated per output element in float (double when
// an input or the output is f64) and rounded once into the output's dtype. The graph pass
// fuse_pointwise (src/passes/) makes one of every chain of ONNX pointwise nodes for the CUDA
// backend, which runs it as one kernel generated with NVRTC (src/cuda/fused_pointwise.cc).
//
// The program lives in four attributes:
//   ops    (strings) one instruction per entry: "Input", "Const", or a PwOp name below
//   args   (ints)    two per instruction: Input: (node input index, -1); ops: operand
//                    registers (a, b), b = -1 for unary ops. Register r is the result of
//                    instruction r; operands name earlier registers only.
//   params (floats)  two per instruction: Const: (value, 0); ops: (p0, p1), the op's
//                    attributes (LeakyRelu alpha, Clip min/max...; 0 where unused)
//   to     (int)     the output's dtype as an onnx.TensorProto.DataType code (as Cast's)
// The last instruction's register is the output. Inputs may be f32, f16, bf16 or f64, each
// its own; the output dtype is `to` (a float type). All inputs broadcast to the output.
//
// THE op table, KILN_PW_OPS, is the one definition of the arithmetic: each entry's formula is
// C++ source text that the CPU interpreter here compiles and that the CUDA code generator
// pastes into the NVRTC kernel (stringified), so both run literally the same expression.
// The formulas are those of kiln's CPU kernels of the ONNX ops (src/ops/activations.cc,
// unary_math.cc, binary_arith.cc, variadic.cc, clip_dropout.cc), operand order included so
// that NaN propagates the same way; tests/unit/fuse_pointwise_test.cc checks every entry
// against its ONNX op. Formula vocabulary: x, y (operands, compute type C), p0, p1 (float
// parameters), C(v) (a constant in C), the math functions of KILN_PW_MATH1/2 and the
// helpers of KILN_PW_HELPERS1/2; nothing else (the generated kernel includes no header).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/half.h"
#include "ir/graph.h"
#include "kiln/status.h"
#include "kiln/types.h"

namespace kiln::ops {

/// Domain and op type of the fused pointwise node.
inline constexpr const char* kFusedPointwiseDomain = "kiln";
inline constexpr const char* kFusedPointwiseOp = "FusedPointwise";
/// Version of the kiln-domain FusedPointwise node (the op table's entry covers 1..1).
inline constexpr int kFusedPointwiseVersion = 1;
/// Most instructions one program may hold (a guard against damaged attributes).
inline constexpr size_t kMaxPwInstructions = 4096;
/// Most inputs fuse_pointwise gives one node (the GPU kernel's parameter list; the CPU
/// kernel takes any number).
inline constexpr size_t kMaxPwInputs = 32;

// ---- formula vocabulary -------------------------------------------------------------------

/// Math functions of one argument the formulas may call: std:: on the host; on the GPU the
/// float/double device functions of the same name (expf for float...).
#define KILN_PW_MATH1(X)                                                                    \
  X(exp) X(expm1) X(log) X(log1p) X(sqrt) X(tanh) X(erf) X(fabs) X(floor) X(ceil) X(rint)  \
  X(sin) X(cos) X(tan) X(asin) X(acos) X(atan) X(sinh) X(cosh) X(asinh) X(acosh) X(atanh)
/// Math functions of two arguments.
#define KILN_PW_MATH2(X) X(pow)

/// Helpers of one argument x: name, expression.
#define KILN_PW_HELPERS1(X)                                                                 \
  /* Sigmoid as the CPU kernel writes it: e^-x never overflows for large negative x. */    \
  X(pw_sigmoid, x >= C(0) ? C(1) / (C(1) + exp(-x)) : exp(x) / (C(1) + exp(x)))              \
  /* log(1 + e^x) without overflow for large x. */                                          \
  X(pw_softplus, x > C(0) ? x + log1p(exp(-x)) : log1p(exp(x)))
/// Helpers of two arguments x, y: std::max and std::min exactly, so NaN propagates (or not)
/// as in the CPU kernels that call them.
#define KILN_PW_HELPERS2(X) X(pw_max, (x < y) ? y : x) X(pw_min, (y < x) ? y : x)

// ---- the op table -------------------------------------------------------------------------

/// X(Name, "OnnxOp", arity, "param0 attribute", default0, "param1 attribute", default1,
///   formula). Entries are instructions; the pass fuse_pointwise maps ONNX nodes onto them
/// (variadic Max/Min/Sum/Mean fold left over Max/Min/Add; Mean divides by the count;
/// Gelu picks Gelu or GeluTanh by "approximate"; Clip's bounds come from its attributes
/// before opset 11, from constant inputs after; a Cast between float types is a Round*).
/// Parameter defaults are the ONNX Operators.md ones. Append only: names are stored in plans.
#define KILN_PW_OPS(X)                                                                       \
  X(Add, "Add", 2, "", 0.0f, "", 0.0f, x + y)                                                 \
  X(Sub, "Sub", 2, "", 0.0f, "", 0.0f, x - y)                                                 \
  X(Mul, "Mul", 2, "", 0.0f, "", 0.0f, x * y)                                                 \
  X(Div, "Div", 2, "", 0.0f, "", 0.0f, x / y)                                                 \
  X(Pow, "Pow", 2, "", 0.0f, "", 0.0f, pow(x, y))                                             \
  /* numpy.maximum/minimum: a NaN in y wins, else std::max/std::min (variadic.cc) */          \
  X(Max, "Max", 2, "", 0.0f, "", 0.0f, y != y ? y : pw_max(x, y))                              \
  X(Min, "Min", 2, "", 0.0f, "", 0.0f, y != y ? y : pw_min(x, y))                              \
  X(PRelu, "PRelu", 2, "", 0.0f, "", 0.0f, x < C(0) ? y * x : x)                              \
  X(Neg, "Neg", 1, "", 0.0f, "", 0.0f, -x)                                                    \
  X(Abs, "Abs", 1, "", 0.0f, "", 0.0f, fabs(x))                                               \
  /* NaN and signed zeros pass through, as numpy.sign */                                      \
  X(Sign, "Sign", 1, "", 0.0f, "", 0.0f, x > C(0) ? C(1) : (x < C(0) ? C(-1) : x))            \
  X(Reciprocal, "Reciprocal", 1, "", 0.0f, "", 0.0f, C(1) / x)                                \
  X(Sqrt, "Sqrt", 1, "", 0.0f, "", 0.0f, sqrt(x))                                             \
  X(Exp, "Exp", 1, "", 0.0f, "", 0.0f, exp(x))                                                \
  X(Log, "Log", 1, "", 0.0f, "", 0.0f, log(x))                                                \
  X(Erf, "Erf", 1, "", 0.0f, "", 0.0f, erf(x))                                                \
  X(Floor, "Floor", 1, "", 0.0f, "", 0.0f, floor(x))                                          \
  X(Ceil, "Ceil", 1, "", 0.0f, "", 0.0f, ceil(x))                                             \
  /* half to even (rint in the default rounding mode, like the CPU's nearbyint) */            \
  X(Round, "Round", 1, "", 0.0f, "", 0.0f, rint(x))                                           \
  X(Sin, "Sin", 1, "", 0.0f, "", 0.0f, sin(x))                                                \
  X(Cos, "Cos", 1, "", 0.0f, "", 0.0f, cos(x))                                                \
  X(Tan, "Tan", 1, "", 0.0f, "", 0.0f, tan(x))                                                \
  X(Asin, "Asin", 1, "", 0.0f, "", 0.0f, asin(x))                                             \
  X(Acos, "Acos", 1, "", 0.0f, "", 0.0f, acos(x))                                             \
  X(Atan, "Atan", 1, "", 0.0f, "", 0.0f, atan(x))                                             \
  X(Sinh, "Sinh", 1, "", 0.0f, "", 0.0f, sinh(x))                                             \
  X(Cosh, "Cosh", 1, "", 0.0f, "", 0.0f, cosh(x))                                             \
  X(Asinh, "Asinh", 1, "", 0.0f, "", 0.0f, asinh(x))                                          \
  X(Acosh, "Acosh", 1, "", 0.0f, "", 0.0f, acosh(x))                                          \
  X(Atanh, "Atanh", 1, "", 0.0f, "", 0.0f, atanh(x))                                          \
  X(Tanh, "Tanh", 1, "", 0.0f, "", 0.0f, tanh(x))                                             \
  X(Relu, "Relu", 1, "", 0.0f, "", 0.0f, x < C(0) ? C(0) : x)                                 \
  X(LeakyRelu, "LeakyRelu", 1, "alpha", 0.01f, "", 0.0f, x < C(0) ? C(p0) * x : x)            \
  X(Elu, "Elu", 1, "alpha", 1.0f, "", 0.0f, x < C(0) ? C(p0) * expm1(x) : x)                  \
  /* defaults: Klambauer et al. 2017, "Self-Normalizing Neural Networks" */                   \
  X(Selu, "Selu", 1, "alpha", 1.67326319217681884765625f, "gamma",                            \
    1.05070102214813232421875f, x <= C(0) ? C(p1) * (C(p0) * exp(x) - C(p0)) : C(p1) * x)   \
  X(Celu, "Celu", 1, "alpha", 1.0f, "", 0.0f, x > C(0) ? x : C(p0) * expm1(x / C(p0)))        \
  X(ThresholdedRelu, "ThresholdedRelu", 1, "alpha", 1.0f, "", 0.0f, x > C(p0) ? x : C(0))     \
  X(Sigmoid, "Sigmoid", 1, "", 0.0f, "", 0.0f, pw_sigmoid(x))                                 \
  X(HardSigmoid, "HardSigmoid", 1, "alpha", 0.2f, "beta", 0.5f,                               \
    pw_max(C(0), pw_min(C(1), C(p0) * x + C(p1))))                                            \
  X(HardSwish, "HardSwish", 1, "", 0.0f, "", 0.0f,                                            \
    x * pw_max(C(0), pw_min(C(1), x / C(6) + C(0.5))))                                        \
  X(Softplus, "Softplus", 1, "", 0.0f, "", 0.0f, pw_softplus(x))                              \
  X(Softsign, "Softsign", 1, "", 0.0f, "", 0.0f, x / (C(1) + fabs(x)))                        \
  /* Misra 2019: x * tanh(softplus(x)) */                                                     \
  X(Mish, "Mish", 1, "", 0.0f, "", 0.0f, x * tanh(pw_softplus(x)))                            \
  /* Ramachandran et al. 2017: x * sigmoid(alpha * x) */                                      \
  X(Swish, "Swish", 1, "alpha", 1.0f, "", 0.0f, x * pw_sigmoid(C(p0) * x))                    \
  /* Hendrycks & Gimpel 2016; GeluTanh is their tanh approximation (approximate="tanh") */   \
  X(Gelu, "Gelu", 1, "", 0.0f, "", 0.0f, C(0.5) * x * (C(1) + erf(x * C(0.7071067811865476)))) \
  X(GeluTanh, "Gelu", 1, "", 0.0f, "", 0.0f,                                                  \
    C(0.5) * x * (C(1) + tanh(C(0.7978845608028654) * (x + C(0.044715) * x * x * x))))        \
  X(Shrink, "Shrink", 1, "lambd", 0.5f, "bias", 0.0f,                                         \
    x < C(-p0) ? x + C(p1) : (x > C(p0) ? x - C(p1) : C(0)))                                  \
  /* min(max(x, p0), p1): NaN propagates, p0 > p1 yields p1 (Clip-13) */                      \
  X(Clip, "Clip", 1, "min", -std::numeric_limits<float>::infinity(), "max",                   \
    std::numeric_limits<float>::infinity(), pw_min(pw_max(x, C(p0)), C(p1)))                 \
  /* Cast between float types inside a chain: rounding to the narrower format (RNE) */       \
  X(RoundF32, "Cast", 1, "", 0.0f, "", 0.0f, pw_round_f32(x))                                 \
  X(RoundF16, "Cast", 1, "", 0.0f, "", 0.0f, pw_round_f16(x))                                 \
  X(RoundBF16, "Cast", 1, "", 0.0f, "", 0.0f, pw_round_bf16(x))

/// One instruction kind: load an input, a constant, or a table op.
enum class PwOp : uint8_t {
  kInput,  ///< register = input `a` at the output element's (broadcast) position
  kConst,  ///< register = p0
#define KILN_PW_ENUM(Name, ...) k##Name,
  KILN_PW_OPS(KILN_PW_ENUM)
#undef KILN_PW_ENUM
};

/// What the table says about one PwOp.
struct PwOpInfo {
  PwOp op;
  const char* name;    ///< instruction name in the "ops" attribute ("Relu", "GeluTanh", "Input")
  const char* onnx;    ///< the ONNX op computed ("" for Input and Const)
  int arity;           ///< register operands: 0 (Input, Const), 1 or 2
  const char* param0;  ///< ONNX attribute holding p0 ("" = none)
  float default0;      ///< its ONNX default
  const char* param1;  ///< ONNX attribute holding p1 ("" = none)
  float default1;
  const char* formula;  ///< the formula's source text (empty for Input and Const)
};

/// Every instruction kind, indexed by PwOp's value.
std::span<const PwOpInfo> pw_ops();
/// The table entry of `op`.
const PwOpInfo& pw_op_info(PwOp op);
/// The instruction kind named `name` ("Relu"); nullopt for unknown names.
std::optional<PwOp> pw_op_by_name(std::string_view name);

// ---- programs -----------------------------------------------------------------------------

/// One instruction; its result is the register of its index in the program.
struct PwInstr {
  PwOp op = PwOp::kConst;
  int32_t a = -1;    ///< Input: node input index; ops: register of operand x
  int32_t b = -1;    ///< binary ops: register of operand y; else -1
  float p0 = 0.0f;   ///< Const: the value; ops: first parameter
  float p1 = 0.0f;   ///< second parameter
};

/// A FusedPointwise node's program.
struct PwProgram {
  std::vector<PwInstr> code;  ///< the last instruction's register is the output
  DataType out_dtype = DataType::kUndefined;
};

/// The program of FusedPointwise node `n`, validated against its `num_inputs` inputs: known
/// instruction names, attribute lengths (2 args and 2 params per instruction), operands
/// naming earlier registers, the right arity, Input indices in range, at most
/// kMaxPwInstructions, and a float `to`. Errors: OnnxBadAttribute naming the problem.
Result<PwProgram> read_pw_program(const ir::Node& n, size_t num_inputs);

/// Sets the "ops", "args", "params" and "to" attributes of `n` to describe `p`.
void write_pw_program(ir::Node& n, const PwProgram& p);

/// True when `dt` is a dtype FusedPointwise reads and writes: f32, f16, bf16 or f64.
bool pw_dtype_ok(DataType dt);

// ---- the CPU evaluation of the formulas ------------------------------------------------------

/// The formulas' vocabulary on the host: std:: math (float and double overloads) and the
/// table's helpers. Device code gets its own definitions of the same names.
namespace pw_formulas {
#define KILN_PW_USING(f) using std::f;
KILN_PW_MATH1(KILN_PW_USING)
KILN_PW_MATH2(KILN_PW_USING)
#undef KILN_PW_USING

/// Rounding of a Cast to f32 / f16 / bf16 inside a chain (round to nearest even), computed
/// like the CPU Cast kernel (src/core/half.h).
template <typename C> C pw_round_f32(C x) { return static_cast<C>(static_cast<float>(x)); }
template <typename C> C pw_round_f16(C x) {
  return static_cast<C>(f16_to_f32(f32_to_f16(static_cast<float>(x))));
}
template <typename C> C pw_round_bf16(C x) {
  return static_cast<C>(bf16_to_f32(f32_to_bf16(static_cast<float>(x))));
}

#define KILN_PW_HELPER1(name, ...) \
  template <typename C> inline C name(C x) { return __VA_ARGS__; }
#define KILN_PW_HELPER2(name, ...) \
  template <typename C> inline C name(C x, C y) { return __VA_ARGS__; }
KILN_PW_HELPERS1(KILN_PW_HELPER1)
KILN_PW_HELPERS2(KILN_PW_HELPER2)
#undef KILN_PW_HELPER1
#undef KILN_PW_HELPER2

/// out[i] = formula of `op`(xs[i], ys[i]) with parameters p0, p1, for i < n, in compute type C
/// (float or double). `op` must be a table op (not Input/Const); ys is read only by binary
/// ops (may be null for unary ones). The switch sits outside the loop, so each case is a
/// plain loop over one formula.
template <typename C>
void pw_eval_span(PwOp op, const C* xs, const C* ys, float p0, float p1, C* out, int64_t n) {
  switch (op) {
#define KILN_PW_CASE(Name, onnx, arity, a0, d0, a1, d1, ...) \
  case PwOp::k##Name:                                        \
    for (int64_t i = 0; i < n; ++i) {                        \
      [[maybe_unused]] const C x = xs[i];                    \
      [[maybe_unused]] const C y = (arity) == 2 ? ys[i] : C(0); \
      out[i] = static_cast<C>(__VA_ARGS__);                  \
    }                                                        \
    break;
    KILN_PW_OPS(KILN_PW_CASE)
#undef KILN_PW_CASE
    case PwOp::kInput:
    case PwOp::kConst:
      break;
  }
}
}  // namespace pw_formulas

}  // namespace kiln::ops
