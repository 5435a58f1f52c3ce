// Clip, Identity and inference-mode Dropout (ONNX Operators.md). Clip reads its bounds from
// attributes before opset 11 and from optional scalar inputs from opset 11 on. Dropout is an
// identity at inference; its optional mask output is all ones (T before opset 10, bool after).
#include <cmath>
#include <limits>

#include "ops/elementwise.h"

namespace kiln::ops {
namespace {

// ---- Clip ---------------------------------------------------------------------------------

Status clip_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_input_type(ctx, 0, kTsNumeric));
  if (ctx.opset() < 11 && ctx.num_inputs() > 1 && (ctx.has_input(1) || ctx.has_input(2)))
    return ctx.error(ErrorCode::kOnnxBadInputs,
                     "Clip before opset 11 takes min/max as attributes, not inputs",
                     "re-export the model, or set the model's opset to 11 or later");
  KILN_RETURN_IF_ERROR(check_same_types(ctx, 0, std::min<size_t>(ctx.num_inputs(), 3)));
  for (size_t i = 1; i < std::min<size_t>(ctx.num_inputs(), 3); ++i) {
    if (!ctx.has_input(i)) continue;
    int64_t n = ctx.input_shape(i).numel();
    if (n >= 0 && n != 1)
      return ctx.error(ErrorCode::kShapeMismatch,
                       std::string(i == 1 ? "min" : "max") + " must be a scalar, got shape " +
                           ctx.input_shape(i).to_string(),
                       "pass Clip bounds as rank-0 tensors");
  }
  return infer_same_as_input0(ctx);
}

Status clip_cpu(KernelContext& ctx) {
  return dispatch_types<kTsNumeric>(ctx.input(0).dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    using C = compute_t<T>;
    C lo = std::numeric_limits<C>::lowest(), hi = std::numeric_limits<C>::max();
    if constexpr (std::is_floating_point_v<C>) {  // ±inf bounds let ±inf inputs through
      lo = -std::numeric_limits<C>::infinity();
      hi = std::numeric_limits<C>::infinity();
    }
    if (ctx.opset() < 11) {
      const ir::Node& n = ctx.node();
      if (n.has_attr("min")) lo = static_cast<C>(n.attr_f("min", 0.0f));
      if (n.has_attr("max")) hi = static_cast<C>(n.attr_f("max", 0.0f));
    } else {
      for (size_t i = 1; i < std::min<size_t>(ctx.num_inputs(), 3); ++i) {
        if (!ctx.has_input(i)) continue;
        const HostTensor& b = ctx.input(i);
        if (b.numel() != 1 || b.dtype() != ctx.input(0).dtype())
          return ctx.error(ErrorCode::kShapeMismatch,
                           "Clip bounds must be scalars of the input's type");
        (i == 1 ? lo : hi) = static_cast<C>(b.data<T>()[0]);
      }
    }
    // min(max(x, lo), hi): NaN propagates, and lo > hi yields hi as the spec requires.
    unary_map<T, T>(ctx.input(0), ctx.output(0),
                    [lo, hi](C x) { return std::min(std::max(x, lo), hi); });
    return Status::ok();
  });
}

// ---- Identity -----------------------------------------------------------------------------

Status identity_cpu(KernelContext& ctx) {
  ctx.set_output(0, ctx.input(0));  // shares storage: no kernel writes its inputs
  return Status::ok();
}

// ---- Dropout ------------------------------------------------------------------------------

constexpr uint32_t kDropoutTypes = kTsFloat | kTsF8;

Status dropout_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_input_type(ctx, 0, kDropoutTypes));
  if (ctx.opset() < 12 && ctx.num_inputs() > 1 && (ctx.has_input(1) || ctx.has_input(2)))
    return ctx.error(ErrorCode::kOnnxBadInputs, "Dropout before opset 12 takes one input",
                     "re-export the model");
  if (ctx.has_input(2))
    KILN_RETURN_IF_ERROR(check_input_type(ctx, 2, kTsBool, "training_mode input"));
  ctx.set_output(0, ctx.input_type(0), ctx.input_shape(0));
  // Dropout-7 typed the mask like the data; Dropout-10 made it bool.
  ctx.set_output(1, ctx.opset() < 10 ? ctx.input_type(0) : DataType::kBool, ctx.input_shape(0));
  return Status::ok();
}

Status dropout_cpu(KernelContext& ctx) {
  // Training mode: the training_mode input from opset 12; before opset 7 the is_test
  // attribute, whose default 0 means training.
  const ir::Node& n = ctx.node();
  bool training = ctx.opset() >= 12 ? ctx.has_input(2) && ctx.input(2).numel() > 0 &&
                                          ctx.input(2).data<bool>()[0]
                                    : ctx.opset() < 7 && n.attr_i("is_test", 0) == 0;
  if (training) {
    double ratio = n.attr_f("ratio", 0.5f);
    if (ctx.opset() >= 12) {
      ratio = 0.5;
      if (ctx.has_input(1) && ctx.input(1).numel() > 0) ratio = ctx.input(1).get_f64(0);
    }
    // With ratio 0 training-mode Dropout keeps every element: still deterministic.
    if (ratio != 0.0)
      return ctx.error(ErrorCode::kOnnxUnsupportedOp,
                       "Dropout in training mode (training_mode=true, or is_test=0 before opset "
                       "7) is not supported",
                       "kiln runs inference: feed training_mode=false (before opset 7: set "
                       "is_test=1), or remove the Dropout");
  }
  ctx.set_output(0, ctx.input(0));
  if (ctx.has_output(1)) {
    HostTensor& mask = ctx.output(1);
    return dispatch_types<kTsAll>(mask.dtype(), [&](auto t) {
      using T = decltype(t);
      T one = static_cast<T>(1);
      T* p = mask.data<T>();
      for (int64_t i = 0; i < mask.numel(); ++i) p[i] = one;
      return Status::ok();
    });
  }
  return Status::ok();
}

}  // namespace

KILN_REGISTER_OPS(clip_dropout) {
  reg.add({.op_type = "Clip", .min_opset = 1, .min_inputs = 1, .max_inputs = 3,
           .infer = clip_infer, .cpu = clip_cpu,
           .summary = "clamp x to [min, max] (attributes before opset 11, scalar inputs after)"});
  // Identity-24/25 only add types kiln lacks.
  reg.add({.op_type = "Identity", .min_opset = 1, .max_opset = 25, .min_inputs = 1,
           .max_inputs = 1, .infer = infer_same_as_input0, .cpu = identity_cpu,
           .summary = "y = x (no copy)"});
  reg.add({.op_type = "Dropout", .min_opset = 1, .min_inputs = 1, .max_inputs = 3,
           .max_outputs = 2, .infer = dropout_infer, .cpu = dropout_cpu,
           .summary = "inference Dropout: y = x, mask = all true (training_mode=true is "
                      "rejected)"});
}

}  // namespace kiln::ops
