// kiln.FusedConv (see ops/fused_conv.h): Y = act(Conv(X, W) + B + Z). Inference is Conv's,
// plus the residual Z, which must have Y's shape; the CPU reference is Conv's kernel with
// the epilogue applied to its f32 (f64 for f64 tensors) result, rounded once into Y, as the
// fused GPU kernel computes it.
#include "ops/fused_conv.h"

#include <limits>
#include <string>

#include "ops/conv.h"
#include "ops/helpers.h"
#include "ops/window.h"

namespace kiln::ops {
namespace {

struct ActivationName {
  FusedActivation act;
  const char* name;
};

constexpr ActivationName kActivations[] = {
    {FusedActivation::kNone, ""},           {FusedActivation::kRelu, "Relu"},
    {FusedActivation::kLeakyRelu, "LeakyRelu"}, {FusedActivation::kClip, "Clip"},
    {FusedActivation::kSigmoid, "Sigmoid"},     {FusedActivation::kHardSwish, "HardSwish"},
    {FusedActivation::kSiLU, "SiLU"},
};

Status infer_fused_conv(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(infer_conv(ctx));
  if (!ctx.has_input(3)) return Status::ok();
  if (ctx.input_type(3) != ctx.input_type(0))
    return ctx.error(ErrorCode::kTypeMismatch,
                     std::string("residual is ") + dtype_name(ctx.input_type(3)) +
                         " but the convolution computes " + dtype_name(ctx.input_type(0)),
                     "the residual input Z must have the output's dtype");
  const Shape& z = ctx.input_shape(3);
  const Shape& y = ctx.output_shape(0);
  if (z.rank_known && y.rank_known && known_to_differ(z.dims, y.dims))
    return ctx.error(ErrorCode::kShapeMismatch,
                     "residual " + z.to_string() + " does not have the output's shape " +
                         y.to_string(),
                     "FusedConv adds Z element-wise without broadcasting");
  return Status::ok();
}

// act(y + z) in place; z may be null.
template <typename C>
void apply_epilogue(C* y, const C* z, int64_t n, const FusedEpilogue& e) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = apply_fused_activation<C>(e, z ? y[i] + z[i] : y[i]);
}

Status fused_conv_cpu(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(FusedEpilogue e, read_fused_epilogue(ctx.node()));
  return conv_cpu_with_epilogue(
      ctx, [&](const std::vector<const HostTensor*>& in, HostTensor& y) -> Status {
        const HostTensor* z = in.size() > 3 ? in[3] : nullptr;
        if (z && (z->numel() != y.numel() || z->dtype() != y.dtype()))
          return ctx.error(ErrorCode::kShapeMismatch,
                           "residual " + z->shape().to_string() + " does not match the output " +
                               ctx.output(0).shape().to_string());
        if (!z && e.act == FusedActivation::kNone) return Status::ok();
        if (y.dtype() == DataType::kF64)
          apply_epilogue<double>(y.data<double>(), z ? z->data<double>() : nullptr, y.numel(), e);
        else
          apply_epilogue<float>(y.data<float>(), z ? z->data<float>() : nullptr, y.numel(), e);
        return Status::ok();
      });
}

Status check_fused_conv(const ir::Node& n) {
  KILN_RETURN_IF_ERROR(check_window_attrs(n));
  if (n.attr_i("group", 1) < 1)
    return Status(ErrorCode::kOnnxBadAttribute, "group must be >= 1", "fix the attribute value");
  return read_fused_epilogue(n).status();
}

}  // namespace

const char* fused_activation_name(FusedActivation a) {
  for (const auto& e : kActivations)
    if (e.act == a) return e.name;
  return "";
}

Result<FusedEpilogue> read_fused_epilogue(const ir::Node& n) {
  const std::string name = n.attr_s("activation", "");
  FusedEpilogue e;
  bool found = false;
  for (const auto& a : kActivations)
    if (name == a.name) {
      e.act = a.act;
      found = true;
    }
  if (!found)
    return Status(ErrorCode::kOnnxBadAttribute,
                  "FusedConv activation '" + name + "' is not one of Relu, LeakyRelu, Clip, "
                  "Sigmoid, HardSwish, SiLU",
                  "FusedConv nodes are created by kiln's fuse_conv_activation pass; rebuild "
                  "the plan", n.loc());
  if (e.act == FusedActivation::kLeakyRelu) e.p0 = n.attr_f("alpha", 0.01f);
  if (e.act == FusedActivation::kClip) {
    e.p0 = n.attr_f("clip_min", -std::numeric_limits<float>::infinity());
    e.p1 = n.attr_f("clip_max", std::numeric_limits<float>::infinity());
  }
  return e;
}

void write_fused_epilogue(ir::Node& n, const FusedEpilogue& e) {
  n.attrs["activation"] = ir::Attribute::from_string(fused_activation_name(e.act));
  if (e.act == FusedActivation::kLeakyRelu) n.attrs["alpha"] = ir::Attribute::from_float(e.p0);
  if (e.act == FusedActivation::kClip) {
    n.attrs["clip_min"] = ir::Attribute::from_float(e.p0);
    n.attrs["clip_max"] = ir::Attribute::from_float(e.p1);
  }
}

KILN_REGISTER_OPS(fused_conv) {
  reg.add({.op_type = kFusedConvOp, .domain = kFusedConvDomain,
           .min_opset = kFusedConvVersion, .max_opset = kFusedConvVersion,
           .min_inputs = 2, .max_inputs = 4, .infer = infer_fused_conv,
           .cpu = fused_conv_cpu, .check = check_fused_conv,
           .summary = "kiln: act(Conv(X, W) + B + Z), created by fuse_conv_activation"});
}

}  // namespace kiln::ops
