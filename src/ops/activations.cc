// Pointwise activation functions (ONNX Operators.md: Relu, LeakyRelu, PRelu, Elu, Selu, Celu,
// Sigmoid, Swish, HardSigmoid, HardSwish, Softplus, Softsign, Tanh, Gelu, Mish,
// ThresholdedRelu, Shrink). Attribute defaults are the spec's. Narrow floats compute in f32, f64 in
// f64. Formulas are rearranged only where the literal one overflows (Sigmoid, Softplus).
#include <cmath>

#include "ops/elementwise.h"

namespace kiln::ops {
namespace {

struct Relu {
  template <typename C> C operator()(C x) const { return x < C(0) ? C(0) : x; }  // NaN stays NaN
};
struct LeakyRelu {
  float alpha;
  explicit LeakyRelu(const ir::Node& n) : alpha(n.attr_f("alpha", 0.01f)) {}
  template <typename C> C operator()(C x) const { return x < C(0) ? C(alpha) * x : x; }
};
struct ThresholdedRelu {
  float alpha;
  explicit ThresholdedRelu(const ir::Node& n) : alpha(n.attr_f("alpha", 1.0f)) {}
  template <typename C> C operator()(C x) const { return x > C(alpha) ? x : C(0); }
};
struct Elu {
  float alpha;
  explicit Elu(const ir::Node& n) : alpha(n.attr_f("alpha", 1.0f)) {}
  template <typename C> C operator()(C x) const { return x < C(0) ? C(alpha) * std::expm1(x) : x; }
};
struct Selu {  // defaults: Klambauer et al. 2017, "Self-Normalizing Neural Networks"
  float alpha, gamma;
  explicit Selu(const ir::Node& n)
      : alpha(n.attr_f("alpha", 1.67326319217681884765625f)),
        gamma(n.attr_f("gamma", 1.05070102214813232421875f)) {}
  template <typename C> C operator()(C x) const {
    return x <= C(0) ? C(gamma) * (C(alpha) * std::exp(x) - C(alpha)) : C(gamma) * x;
  }
};
struct Celu {  // max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
  float alpha;
  explicit Celu(const ir::Node& n) : alpha(n.attr_f("alpha", 1.0f)) {}
  template <typename C> C operator()(C x) const {
    return x > C(0) ? x : C(alpha) * std::expm1(x / C(alpha));
  }
};
struct Sigmoid {
  template <typename C> C operator()(C x) const {
    if (x >= C(0)) return C(1) / (C(1) + std::exp(-x));
    C e = std::exp(x);
    return e / (C(1) + e);
  }
};
struct Swish {  // Ramachandran et al. 2017: x * sigmoid(alpha * x)
  float alpha;
  explicit Swish(const ir::Node& n) : alpha(n.attr_f("alpha", 1.0f)) {}
  template <typename C> C operator()(C x) const { return x * Sigmoid{}(C(alpha) * x); }
};
struct HardSigmoid {
  float alpha, beta;
  explicit HardSigmoid(const ir::Node& n)
      : alpha(n.attr_f("alpha", 0.2f)), beta(n.attr_f("beta", 0.5f)) {}
  template <typename C> C operator()(C x) const {
    return std::max(C(0), std::min(C(1), C(alpha) * x + C(beta)));
  }
};
struct HardSwish {  // x * HardSigmoid(x) with alpha = 1/6, beta = 0.5
  template <typename C> C operator()(C x) const {
    return x * std::max(C(0), std::min(C(1), x / C(6) + C(0.5)));
  }
};
template <typename C> C softplus(C x) {  // log(1 + e^x) without overflow for large x
  return x > C(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
struct Softplus { template <typename C> C operator()(C x) const { return softplus(x); } };
struct Softsign {
  template <typename C>
  C operator()(C x) const {
    return x / (C(1) + std::fabs(x));
  }
};
struct Tanh { template <typename C> C operator()(C x) const { return std::tanh(x); } };
struct Mish {  // Misra 2019: x * tanh(softplus(x))
  template <typename C> C operator()(C x) const { return x * std::tanh(softplus(x)); }
};
struct Gelu {  // Hendrycks & Gimpel 2016; "tanh" is the paper's approximation
  bool tanh_approx;
  explicit Gelu(const ir::Node& n) : tanh_approx(n.attr_s("approximate", "none") == "tanh") {}
  template <typename C> C operator()(C x) const {
    if (tanh_approx) {
      const C k = C(0.7978845608028654);  // sqrt(2 / pi)
      return C(0.5) * x * (C(1) + std::tanh(k * (x + C(0.044715) * x * x * x)));
    }
    return C(0.5) * x * (C(1) + std::erf(x * C(0.7071067811865476)));
  }
};
// Shrink accepts every numeric type; integer results are truncated like the reference's
// astype(x.dtype).
struct Shrink {
  float lambd, bias;
  explicit Shrink(const ir::Node& n)
      : lambd(n.attr_f("lambd", 0.5f)), bias(n.attr_f("bias", 0.0f)) {}
  template <typename C> C operator()(C x) const {
    if constexpr (std::is_integral_v<C>) {
      double v = static_cast<double>(x);
      return float_to_int<C>(v < -lambd ? v + bias : (v > lambd ? v - bias : 0.0));
    } else {
      return x < C(-lambd) ? x + C(bias) : (x > C(lambd) ? x - C(bias) : C(0));
    }
  }
};

Status check_gelu(const ir::Node& n) {
  std::string a = n.attr_s("approximate", "none");
  if (a == "none" || a == "tanh") return Status::ok();
  return Status(ErrorCode::kOnnxBadAttribute, "Gelu approximate='" + a + "' is not defined",
                "use approximate 'none' or 'tanh' (ONNX Gelu-20)",
                n.loc("attribute 'approximate'"));
}

// ---- PRelu: y = x < 0 ? slope * x : x, slope broadcast to x (unidirectional) -------------

constexpr uint32_t kPReluTypes = kTsFloat | kTsInt;

/// Before opset 7 a 1-D slope holds one value per channel (dim 1 of X, as PyTorch exported
/// it); numpy alignment needs it as [C, 1, ..., 1]. True when that reshape applies.
bool legacy_channel_slope(int opset, size_t x_rank, const Shape& slope, const Dim& channels) {
  return opset < 7 && x_rank >= 3 && slope.rank_known && slope.rank() == 1 &&
         slope.dims[0].is_known() && slope.dims[0].value != 1 && slope.dims[0].same_as(channels);
}

Status prelu_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_input_type(ctx, 0, kPReluTypes));
  KILN_RETURN_IF_ERROR(check_same_types(ctx, 0, 2));
  const Shape& x = ctx.input_shape(0);
  Shape slope = ctx.input_shape(1);
  if (x.rank_known && x.rank() >= 3 &&
      legacy_channel_slope(ctx.opset(), x.rank(), slope, x.dims[1]))
    slope.dims.resize(x.rank() - 1, Dim(1));
  auto b = broadcast_shapes(x, slope);
  bool grows =
      b && x.rank_known && b->rank_known &&
      (b->rank() != x.rank() || (b->is_static() && x.is_static() && b->concrete() != x.concrete()));
  if (!b || grows)
    return ctx.error(
        ErrorCode::kShapeMismatch,
        "slope " + slope.to_string() + " cannot be broadcast to X " + x.to_string(),
        "PRelu broadcasts slope to X's shape (unidirectional): slope's dims must be 1 or "
        "equal X's trailing dims");
  ctx.set_output(0, ctx.input_type(0), x);
  return Status::ok();
}

Status prelu_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  HostTensor slope = ctx.input(1);
  if (x.rank() >= 3 && legacy_channel_slope(ctx.opset(), x.rank(), slope.shape(), x.dims()[1])) {
    std::vector<int64_t> d(x.rank() - 1, 1);
    d[0] = slope.numel();
    slope = slope.reshaped(std::move(d));
  }
  return dispatch_types<kPReluTypes>(x.dtype(), [&](auto t) {
    using T = decltype(t);
    binary_map<T, T, T>(x, slope, ctx.output(0), [](auto x, auto s) {
      using C = decltype(x);
      if constexpr (std::is_unsigned_v<C>) return x;
      else if constexpr (std::is_integral_v<C>)  // wraps on overflow, like numpy
        return x < C(0) ? static_cast<C>(static_cast<wrap_t<C>>(s) * static_cast<wrap_t<C>>(x)) : x;
      else return x < C(0) ? s * x : x;
    });
    return Status::ok();
  });
}

constexpr uint32_t kF = kTsFloat;
constexpr uint32_t kReluTypes = kTsFloat | kTsSigned;  // integer Relu from opset 14

// clang-format off
const ElementwiseEntry kEntries[] = {
    {"Relu", 1, 1, infer_unary<kReluTypes>, unary_cpu<kReluTypes, Relu>, "max(x, 0)"},
    {"LeakyRelu", 1, 1, infer_unary<kF>, unary_cpu<kF, LeakyRelu>, "x < 0 ? alpha * x : x"},
    {"ThresholdedRelu", 10, 1, infer_unary<kF>, unary_cpu<kF, ThresholdedRelu>,
     "x > alpha ? x : 0"},
    {"Elu", 1, 1, infer_unary<kF>, unary_cpu<kF, Elu>, "x < 0 ? alpha * (e^x - 1) : x"},
    {"Selu", 1, 1, infer_unary<kF>, unary_cpu<kF, Selu>, "scaled exponential linear unit"},
    // Celu-28 only adds f16/bf16.
    {"Celu", 12, 1, infer_unary<kF>, unary_cpu<kF, Celu>, "continuously differentiable ELU",
     nullptr, 28},
    {"Sigmoid", 1, 1, infer_unary<kF>, unary_cpu<kF, Sigmoid>, "1 / (1 + e^-x)"},
    {"HardSigmoid", 1, 1, infer_unary<kF>, unary_cpu<kF, HardSigmoid>,
     "clamp(alpha * x + beta, 0, 1)"},
    {"HardSwish", 14, 1, infer_unary<kF>, unary_cpu<kF, HardSwish>, "x * clamp(x / 6 + 0.5, 0, 1)"},
    {"Softplus", 1, 1, infer_unary<kF>, unary_cpu<kF, Softplus>, "log(1 + e^x)"},
    {"Softsign", 1, 1, infer_unary<kF>, unary_cpu<kF, Softsign>, "x / (1 + |x|)"},
    {"Tanh", 1, 1, infer_unary<kF>, unary_cpu<kF, Tanh>, "hyperbolic tangent"},
    {"Swish", 24, 1, infer_unary<kF>, unary_cpu<kF, Swish>, "x * sigmoid(alpha * x)", nullptr, 24},
    {"Mish", 18, 1, infer_unary<kF>, unary_cpu<kF, Mish>, "x * tanh(softplus(x))"},
    {"Gelu", 20, 1, infer_unary<kF>, unary_cpu<kF, Gelu>,
     "Gaussian error linear unit (exact or tanh)",
     check_gelu},
    {"Shrink", 9, 1, infer_unary<kTsNumeric>, unary_cpu<kTsNumeric, Shrink>,
     "x < -lambd ? x + bias : x > lambd ? x - bias : 0"},
    {"PRelu", 1, 2, prelu_infer, prelu_cpu, "x < 0 ? slope * x : x, slope broadcast to x"},
};
// clang-format on

}  // namespace

KILN_REGISTER_OPS(activations) {
  register_elementwise(reg, kEntries);
}

}  // namespace kiln::ops
