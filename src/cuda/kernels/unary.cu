// GPU kernels of the unary pointwise ops: math (ONNX Operators.md: Abs, Neg, Exp, Log, Sqrt,
// Reciprocal, the trigonometric and hyperbolic functions, Erf, Ceil, Floor, Round, Sign,
// IsNaN, IsInf, Not, BitwiseNot), activations (Relu, LeakyRelu, Elu, Selu, Celu,
// ThresholdedRelu, HardSigmoid, HardSwish, Sigmoid, Tanh, Softplus, Softsign, Mish, Gelu,
// Swish, Shrink) and Clip. Cast and CastLike are in cast.cu.
//
// Each functor is the device twin of the CPU reference's (src/ops/unary_math.cc,
// activations.cc, clip_dropout.cc): same formulas, same operand order in
// comparisons (so NaN propagates identically), same dtype sets; narrow floats compute in
// f32, f64 in f64. All run through PointwiseKernel (pointwise.cuh).
#include "cuda/kernels/pointwise.cuh"

namespace kiln::cuda {
namespace {

/// std::max / std::min exactly ((a < b) ? b : a and (b < a) ? b : a), whose NaN behaviour the
/// CPU kernels inherit.
template <typename C> __device__ __forceinline__ C std_max(C a, C b) { return (a < b) ? b : a; }
template <typename C> __device__ __forceinline__ C std_min(C a, C b) { return (b < a) ? b : a; }

// ---- math (unary_math.cc) -----------------------------------------------------------------

struct Abs {
  template <typename C> __device__ C operator()(C x) const {
    if constexpr (std::is_floating_point_v<C>) return dmath::fabs(x);
    else if constexpr (std::is_unsigned_v<C>) return x;
    else return x < 0 ? static_cast<C>(-static_cast<std::make_unsigned_t<C>>(x)) : x;
  }
};
struct Neg {
  template <typename C> __device__ C operator()(C x) const {
    if constexpr (std::is_integral_v<C>)  // in unsigned arithmetic: INT_MIN wraps, no UB
      return static_cast<C>(-static_cast<std::make_unsigned_t<C>>(x));
    else return -x;
  }
};
struct Sign {
  template <typename C> __device__ C operator()(C x) const {
    if constexpr (std::is_unsigned_v<C>) return x > 0 ? C(1) : C(0);
    else return x > 0 ? C(1) : (x < 0 ? C(-1) : x);  // NaN and ±0 pass through
  }
};
/// A stateless unary functor returning EXPR of its compute-type argument x.
#define KILN_UNARY_FN(NAME, RET, EXPR)                          \
  struct NAME {                                                 \
    template <typename C>                                       \
    __device__ RET operator()(C x) const {                      \
      return EXPR;                                              \
    }                                                           \
  };
// rint rounds half to even in the default rounding mode, as Round requires.
KILN_UNARY_FN(Exp, C, dmath::exp(x)) KILN_UNARY_FN(Log, C, dmath::log(x))
KILN_UNARY_FN(Sqrt, C, dmath::sqrt(x)) KILN_UNARY_FN(Reciprocal, C, C(1) / x)
KILN_UNARY_FN(Floor, C, dmath::floor(x)) KILN_UNARY_FN(Ceil, C, dmath::ceil(x))
KILN_UNARY_FN(Round, C, dmath::rint(x)) KILN_UNARY_FN(Sin, C, dmath::sin(x))
KILN_UNARY_FN(Cos, C, dmath::cos(x)) KILN_UNARY_FN(Tan, C, dmath::tan(x))
KILN_UNARY_FN(Asin, C, dmath::asin(x)) KILN_UNARY_FN(Acos, C, dmath::acos(x))
KILN_UNARY_FN(Atan, C, dmath::atan(x)) KILN_UNARY_FN(Sinh, C, dmath::sinh(x))
KILN_UNARY_FN(Cosh, C, dmath::cosh(x)) KILN_UNARY_FN(Asinh, C, dmath::asinh(x))
KILN_UNARY_FN(Acosh, C, dmath::acosh(x)) KILN_UNARY_FN(Atanh, C, dmath::atanh(x))
KILN_UNARY_FN(Tanh, C, dmath::tanh(x)) KILN_UNARY_FN(IsNaN, bool, dmath::isnan(x))
KILN_UNARY_FN(BitwiseNot, C, static_cast<C>(~x))
struct Erf {  // integers (Erf-13): evaluate in double, truncate like Cast
  template <typename C> __device__ C operator()(C x) const {
    if constexpr (std::is_integral_v<C>) return float_to_int<C>(dmath::erf(static_cast<double>(x)));
    else return dmath::erf(x);
  }
};
struct IsInf {
  bool neg = true, pos = true;
  explicit IsInf(const ir::Node& n)
      : neg(n.attr_i("detect_negative", 1) != 0), pos(n.attr_i("detect_positive", 1) != 0) {}
  template <typename C> __device__ bool operator()(C x) const {
    return dmath::isinf(x) && (x < C(0) ? neg : pos);
  }
};
struct Not { __device__ bool operator()(bool x) const { return !x; } };

// ---- activations (activations.cc) ------------------------------------------------------------

KILN_UNARY_FN(Relu, C, x < C(0) ? C(0) : x)
struct LeakyRelu {
  float alpha;
  explicit LeakyRelu(const ir::Node& n) : alpha(n.attr_f("alpha", 0.01f)) {}
  template <typename C> __device__ C operator()(C x) const { return x < C(0) ? C(alpha) * x : x; }
};
struct ThresholdedRelu {
  float alpha;
  explicit ThresholdedRelu(const ir::Node& n) : alpha(n.attr_f("alpha", 1.0f)) {}
  template <typename C> __device__ C operator()(C x) const { return x > C(alpha) ? x : C(0); }
};
struct Elu {
  float alpha;
  explicit Elu(const ir::Node& n) : alpha(n.attr_f("alpha", 1.0f)) {}
  template <typename C> __device__ C operator()(C x) const {
    return x < C(0) ? C(alpha) * dmath::expm1(x) : x;
  }
};
struct Selu {  // defaults: Klambauer et al. 2017, "Self-Normalizing Neural Networks"
  float alpha, gamma;
  explicit Selu(const ir::Node& n)
      : alpha(n.attr_f("alpha", 1.67326319217681884765625f)),
        gamma(n.attr_f("gamma", 1.05070102214813232421875f)) {}
  template <typename C> __device__ C operator()(C x) const {
    return x <= C(0) ? C(gamma) * (C(alpha) * dmath::exp(x) - C(alpha)) : C(gamma) * x;
  }
};
struct Celu {
  float alpha;
  explicit Celu(const ir::Node& n) : alpha(n.attr_f("alpha", 1.0f)) {}
  template <typename C> __device__ C operator()(C x) const {
    return x > C(0) ? x : C(alpha) * dmath::expm1(x / C(alpha));
  }
};
template <typename C> __device__ __forceinline__ C sigmoid(C x) {  // no overflow for x << 0
  if (x >= C(0)) return C(1) / (C(1) + dmath::exp(-x));
  const C e = dmath::exp(x);
  return e / (C(1) + e);
}
KILN_UNARY_FN(Sigmoid, C, sigmoid(x))
struct Swish {  // Ramachandran et al. 2017
  float alpha;
  explicit Swish(const ir::Node& n) : alpha(n.attr_f("alpha", 1.0f)) {}
  template <typename C> __device__ C operator()(C x) const { return x * sigmoid(C(alpha) * x); }
};
struct HardSigmoid {
  float alpha, beta;
  explicit HardSigmoid(const ir::Node& n)
      : alpha(n.attr_f("alpha", 0.2f)), beta(n.attr_f("beta", 0.5f)) {}
  template <typename C> __device__ C operator()(C x) const {
    return std_max(C(0), std_min(C(1), C(alpha) * x + C(beta)));
  }
};
KILN_UNARY_FN(HardSwish, C, x * std_max(C(0), std_min(C(1), x / C(6) + C(0.5))))
template <typename C> __device__ __forceinline__ C softplus(C x) {  // no overflow for x >> 0
  return x > C(0) ? x + dmath::log1p(dmath::exp(-x)) : dmath::log1p(dmath::exp(x));
}
KILN_UNARY_FN(Softplus, C, softplus(x))
KILN_UNARY_FN(Softsign, C, x / (C(1) + dmath::fabs(x)))
KILN_UNARY_FN(Mish, C, x * dmath::tanh(softplus(x)))  // Misra 2019
struct Gelu {  // Hendrycks & Gimpel 2016; "tanh" is the paper's approximation
  bool tanh_approx;
  explicit Gelu(const ir::Node& n) : tanh_approx(n.attr_s("approximate", "none") == "tanh") {}
  template <typename C> __device__ C operator()(C x) const {
    if (tanh_approx) {
      const C k = C(0.7978845608028654);  // sqrt(2 / pi)
      return C(0.5) * x * (C(1) + dmath::tanh(k * (x + C(0.044715) * x * x * x)));
    }
    return C(0.5) * x * (C(1) + dmath::erf(x * C(0.7071067811865476)));
  }
};
struct Shrink {  // integers: computed in double, truncated like the reference's astype
  float lambd, bias;
  explicit Shrink(const ir::Node& n)
      : lambd(n.attr_f("lambd", 0.5f)), bias(n.attr_f("bias", 0.0f)) {}
  template <typename C> __device__ C operator()(C x) const {
    if constexpr (std::is_integral_v<C>) {
      const double v = static_cast<double>(x);
      return float_to_int<C>(v < -lambd ? v + bias : (v > lambd ? v - bias : 0.0));
    } else {
      return x < C(-lambd) ? x + C(bias) : (x > C(lambd) ? x - C(bias) : C(0));
    }
  }
};

// ---- Clip (clip_dropout.cc) -------------------------------------------------------------------

/// min(max(x, lo), hi) with std::max/std::min's NaN behaviour (NaN x stays NaN; lo > hi gives
/// hi). A bound given by a non-constant input is read on the device through *_ptr, which
/// bind() sets from the launch's input pointers.
template <typename T>
struct ClipOp {
  using C = compute_t<T>;
  C lo, hi;
  int lo_slot = -1, hi_slot = -1;
  const T* lo_ptr = nullptr;
  const T* hi_ptr = nullptr;

  ClipOp() {
    if constexpr (std::is_floating_point_v<C>) {  // ±inf bounds let ±inf inputs through
      lo = -std::numeric_limits<C>::infinity();
      hi = std::numeric_limits<C>::infinity();
    } else {
      lo = std::numeric_limits<C>::lowest();
      hi = std::numeric_limits<C>::max();
    }
  }
  void bind(const LaunchArgs& a) {
    if (lo_slot >= 0) lo_ptr = a.in<T>(lo_slot);
    if (hi_slot >= 0) hi_ptr = a.in<T>(hi_slot);
  }
  __device__ C operator()(C x) const {
    const C l = lo_ptr ? to_compute(*lo_ptr) : lo;
    const C h = hi_ptr ? to_compute(*hi_ptr) : hi;
    return std_min(std_max(x, l), h);
  }
};

KernelResult create_clip(const KernelConfig& cfg) {
  return dispatch_set<kPwNumeric>(cfg.in(0).dtype, cfg, [&](auto t) -> KernelResult {
    using T = decltype(t);
    using C = compute_t<T>;
    ClipOp<T> op;
    if (cfg.opset() < 11) {  // Clip-6: bounds are float attributes
      if (cfg.node.has_attr("min")) op.lo = static_cast<C>(cfg.node.attr_f("min", 0.0f));
      if (cfg.node.has_attr("max")) op.hi = static_cast<C>(cfg.node.attr_f("max", 0.0f));
    } else {
      for (int i = 1; i < 3; ++i) {
        if (!cfg.has_input(i)) continue;
        const Operand& b = cfg.in(i);
        if (b.numel() != 1 || b.dtype != cfg.in(0).dtype)
          return cfg.error(ErrorCode::kShapeMismatch,
                           "Clip bounds must be scalars of the input's type");
        if (b.value) (i == 1 ? op.lo : op.hi) = host_scalar<T>(*b.value);
        else (i == 1 ? op.lo_slot : op.hi_slot) = i;
      }
    }
    return make_pointwise<kPathVector, T, T>(cfg, op, {0}, "clip");
  });
}

// ---- registration ----------------------------------------------------------------------------

/// Factory of a unary op with dtypes Set; the output has the input's type, or bool when
/// kBoolOut (IsNaN, IsInf).
template <typename Op, uint32_t Set, bool kBoolOut = false>
KernelResult create_unary(const KernelConfig& cfg) {
  const Op op = make_op<Op>(cfg.node);
  return dispatch_set<Set>(cfg.in(0).dtype, cfg, [&](auto t) {
    using T = decltype(t);
    return make_pointwise<kPathVector, std::conditional_t<kBoolOut, bool, T>, T>(cfg, op, {0},
                                                                                "unary");
  });
}

constexpr uint32_t kF = kPwFloat;
constexpr uint32_t kSignedNum = kPwFloat | kPwSigned;

struct UnaryEntry {
  const char* op_type;
  KernelFactory create;
};

// Dtype sets are the CPU entries' (f8e4m3 aside).
// clang-format off
const UnaryEntry kEntries[] = {
    {"Abs", create_unary<Abs, kPwNumeric>},         {"Neg", create_unary<Neg, kSignedNum>},
    {"Sign", create_unary<Sign, kPwNumeric>},       {"Exp", create_unary<Exp, kF>},
    {"Log", create_unary<Log, kF>},                 {"Sqrt", create_unary<Sqrt, kF>},
    {"Reciprocal", create_unary<Reciprocal, kF>},   {"Floor", create_unary<Floor, kF>},
    {"Ceil", create_unary<Ceil, kF>},               {"Round", create_unary<Round, kF>},
    {"Sin", create_unary<Sin, kF>},                 {"Cos", create_unary<Cos, kF>},
    {"Tan", create_unary<Tan, kF>},                 {"Asin", create_unary<Asin, kF>},
    {"Acos", create_unary<Acos, kF>},               {"Atan", create_unary<Atan, kF>},
    {"Sinh", create_unary<Sinh, kF>},               {"Cosh", create_unary<Cosh, kF>},
    {"Asinh", create_unary<Asinh, kF>},             {"Acosh", create_unary<Acosh, kF>},
    {"Atanh", create_unary<Atanh, kF>},             {"Erf", create_unary<Erf, kPwNumeric>},
    {"IsNaN", create_unary<IsNaN, kF, true>},       {"IsInf", create_unary<IsInf, kF, true>},
    {"Not", create_unary<Not, kPwBool>},
    {"BitwiseNot", create_unary<BitwiseNot, kPwInt>},
    {"Relu", create_unary<Relu, kSignedNum>},       {"LeakyRelu", create_unary<LeakyRelu, kF>},
    {"ThresholdedRelu", create_unary<ThresholdedRelu, kF>},
    {"Elu", create_unary<Elu, kF>},                 {"Selu", create_unary<Selu, kF>},
    {"Celu", create_unary<Celu, kF>},               {"Sigmoid", create_unary<Sigmoid, kF>},
    {"Swish", create_unary<Swish, kF>},             {"HardSigmoid", create_unary<HardSigmoid, kF>},
    {"HardSwish", create_unary<HardSwish, kF>},     {"Softplus", create_unary<Softplus, kF>},
    {"Softsign", create_unary<Softsign, kF>},       {"Tanh", create_unary<Tanh, kF>},
    {"Mish", create_unary<Mish, kF>},               {"Gelu", create_unary<Gelu, kF>},
    {"Shrink", create_unary<Shrink, kPwNumeric>},   {"Clip", create_clip},
};
// clang-format on

#undef KILN_UNARY_FN

}  // namespace

KILN_REGISTER_CUDA_KERNELS(unary) {
  for (const UnaryEntry& e : kEntries) reg.add({.op_type = e.op_type, .create = e.create, .nhwc = true});
}

}  // namespace kiln::cuda
