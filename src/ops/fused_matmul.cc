// FusedMatMul (domain "kiln"): y = activation(numpy.matmul(A, B) + bias), the node the
// fuse_matmul_epilogue pass makes of MatMul → Add(bias) → Relu/Gelu so the CUDA backend
// can run it as one cuBLASLt GEMM with a bias/activation epilogue. Not an ONNX op: models
// never import it, plans record it like any other node.
//
// Inputs: A, B (MatMul semantics: 1-D promotion, broadcast batch dims), optional bias
// [N] (N = last dim of the output; absent = 0). Attributes: activation "" | "Relu" |
// "Gelu"; approximate "none" (erf form) | "tanh" for Gelu, as ONNX Gelu-20.
// The CPU kernel computes the product in f32/f64 (f16/bf16 widened) and applies bias and
// activation before the one rounding to the output dtype.
#include <cmath>
#include <string>

#include "ops/helpers.h"
#include "ops/matmul.h"
#include "ops/widen.h"

namespace kiln::ops {
namespace {

// Gelu: Hendrycks & Gimpel 2016, "Gaussian Error Linear Units"; tanh is their
// approximation (ONNX Gelu-20, approximate="tanh").
template <typename C>
C activate(MatMulActivation a, C x) {
  switch (a) {
    case MatMulActivation::kRelu:
      return x < C(0) ? C(0) : x;
    case MatMulActivation::kGeluErf:
      return C(0.5) * x * (C(1) + std::erf(x * C(0.7071067811865476)));
    case MatMulActivation::kGeluTanh: {
      const C k = C(0.7978845608028654);  // sqrt(2 / pi)
      return C(0.5) * x * (C(1) + std::tanh(k * (x + C(0.044715) * x * x * x)));
    }
    case MatMulActivation::kNone:
      break;
  }
  return x;
}

Status check_fused_matmul(const ir::Node& n) { return fused_matmul_activation(n).status(); }

Status infer_fused_matmul(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(infer_matmul(ctx));
  const DataType dt = ctx.input_type(0);
  if (dt != DataType::kF32 && dt != DataType::kF64 && dt != DataType::kF16 && dt != DataType::kBF16)
    return ctx.error(ErrorCode::kTypeMismatch,
                     std::string("FusedMatMul is defined for float types, got ") + dtype_name(dt),
                     "only float MatMuls are fused");
  if (!ctx.has_input(2)) return Status::ok();
  const Shape& bias = ctx.input_shape(2);
  const Shape& out = ctx.output_shape(0);
  const Dim n = out.rank_known && out.rank() > 0 ? out.dims.back() : Dim::unknown();
  if (ctx.input_type(2) != ctx.input_type(0) ||
      (bias.rank_known && (bias.rank() != 1 || known_to_differ(bias.dims[0], n))))
    return ctx.error(ErrorCode::kShapeMismatch,
                     "bias " + bias.to_string() + " must be 1-D with the output's last dim " +
                         out.to_string() + " and A's dtype",
                     "the bias holds one value per output column");
  return Status::ok();
}

Status fused_matmul_cpu(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(MatMulActivation act, fused_matmul_activation(ctx.node()));
  const std::vector<int64_t>& a_dims = ctx.input(0).dims();
  const std::vector<int64_t>& b_dims = ctx.input(1).dims();
  return compute_in_float(
      ctx, ctx.input(0).dtype(),
      [&](auto t, const std::vector<const HostTensor*>& in, HostTensor& out) -> Status {
        using T = decltype(t);
        T* y = out.data<T>();
        matmul_dense(a_dims, in[0]->data<T>(), b_dims, in[1]->data<T>(), y);
        const T* bias = in.size() > 2 && in[2] ? in[2]->data<T>() : nullptr;
        const int64_t n = out.rank() > 0 ? out.dims().back() : 1;
        for (int64_t i = 0; i < out.numel(); ++i)
          y[i] = activate<T>(act, bias ? y[i] + bias[i % n] : y[i]);
        return Status::ok();
      });
}

}  // namespace

Result<MatMulActivation> fused_matmul_activation(const ir::Node& n) {
  const std::string act = n.attr_s("activation", "");
  const std::string approx = n.attr_s("approximate", "none");
  if (approx != "none" && approx != "tanh")
    return Status(ErrorCode::kOnnxBadAttribute, "approximate='" + approx + "' is not defined",
                  "use 'none' (erf) or 'tanh', as ONNX Gelu", n.loc("attribute 'approximate'"));
  if (act.empty()) return MatMulActivation::kNone;
  if (act == "Relu") return MatMulActivation::kRelu;
  if (act == "Gelu")
    return approx == "tanh" ? MatMulActivation::kGeluTanh : MatMulActivation::kGeluErf;
  return Status(ErrorCode::kOnnxBadAttribute, "activation='" + act + "' is not defined",
                "FusedMatMul fuses '', 'Relu' or 'Gelu'", n.loc("attribute 'activation'"));
}

KILN_REGISTER_OPS(fused_matmul) {
  reg.add({.op_type = "FusedMatMul",
           .domain = kFusedMatMulDomain,
           .min_opset = 1,
           .max_opset = 1,
           .min_inputs = 2,
           .max_inputs = 3,
           .infer = infer_fused_matmul,
           .cpu = fused_matmul_cpu,
           .check = check_fused_matmul,
           .summary = "activation(MatMul(A, B) + bias), made by fuse_matmul_epilogue "
                      "(activation '', Relu, Gelu erf/tanh)"});
}

}  // namespace kiln::ops
