// Cast and CastLike (ONNX Operators.md, Cast-19/21/23 conversion rules) between every dtype
// kiln has. float → integer truncates toward zero (out of range is undefined in the spec;
// here it wraps through int64, never UB); integer → integer wraps (two's complement);
// anything → bool is x != 0; narrow floats round to nearest even; → f8e4m3fn saturates to
// ±448 unless saturate=0 (then out of range → NaN). String and the float8/int4 formats
// kiln lacks are rejected at import with OnnxUnsupportedType.
#include "onnx/importer.h"
#include "ops/elementwise.h"

namespace kiln::ops {
namespace {

template <typename D, typename S>
D convert(S x, bool saturate) {
  using CS = compute_t<S>;
  const CS v = static_cast<CS>(x);
  if constexpr (std::is_same_v<D, bool>) {
    return v != CS(0);  // NaN → true, ±0 → false
  } else if constexpr (std::is_integral_v<D>) {
    if constexpr (std::is_floating_point_v<CS>) return float_to_int<D>(static_cast<double>(v));
    else return static_cast<D>(v);
  } else if constexpr (std::is_same_v<D, f8e4m3>) {
    D r;
    r.bits = f32_to_f8e4m3(static_cast<float>(v), saturate);
    return r;
  } else {
    return static_cast<D>(static_cast<compute_t<D>>(v));
  }
}

Status cast_tensor(const HostTensor& in, HostTensor& out, bool saturate) {
  return dispatch_types<kTsAll>(in.dtype(), [&](auto s) {
    using S = decltype(s);
    return dispatch_types<kTsAll>(out.dtype(), [&](auto d) {
      using D = decltype(d);
      const S* ps = in.data<S>();
      D* pd = out.data<D>();
      const int64_t n = in.numel();
      for (int64_t i = 0; i < n; ++i) pd[i] = convert<D>(ps[i], saturate);
      return Status::ok();
    });
  });
}

/// ONNX dtype code of the `to` attribute: Cast-1 names the type as a string ("FLOAT"),
/// later versions give the TensorProto.DataType code. 0 when absent or unknown.
int cast_to_code(const ir::Node& n) {
  const ir::Attribute* a = n.attr("to");
  if (!a) return 0;
  if (a->kind != ir::Attribute::Kind::kString) return static_cast<int>(a->i);
  for (int code = 1; code < 64; ++code)
    if (onnx_import::onnx_dtype_name(code) == a->s) return code;
  return 0;
}

/// `to` must name a dtype kiln has; string, float8 e5m2/fnuz, int4, float4... are not.
Status cast_check(const ir::Node& n) {
  if (!n.has_attr("to"))
    return Status(ErrorCode::kOnnxBadAttribute, "Cast needs the 'to' attribute",
                  "re-export the model", n.loc("attribute 'to'"));
  int to = cast_to_code(n);
  if (onnx_import::from_onnx_dtype(to) == DataType::kUndefined)
    return Status(
        ErrorCode::kOnnxUnsupportedType,
        "Cast to " + (to ? onnx_import::onnx_dtype_name(to) : n.attr_s("to", "?")) +
            " is not supported",
        "kiln supports float (f32, f64, f16, bf16, f8e4m3fn), integer and bool tensors",
        n.loc("attribute 'to'"));
  return Status::ok();
}

Status cast_infer(InferContext& ctx) {
  DataType to = onnx_import::from_onnx_dtype(cast_to_code(ctx.node()));
  if (to == DataType::kUndefined) return cast_check(ctx.node());
  ctx.set_output(0, to, ctx.input_shape(0));
  return Status::ok();
}

Status castlike_infer(InferContext& ctx) {
  ctx.set_output(0, ctx.input_type(1), ctx.input_shape(0));
  return Status::ok();
}

Status cast_cpu(KernelContext& ctx) {
  // saturate exists from opset 19 and only affects float8 targets; earlier opsets saturate.
  bool saturate = ctx.node().attr_i("saturate", 1) != 0;
  // CastLike takes the target type from its second input.
  DataType to = ctx.has_input(1) ? ctx.input(1).dtype()
                                 : onnx_import::from_onnx_dtype(cast_to_code(ctx.node()));
  if (ctx.input(0).dtype() == to) {  // no-op cast: share the input's storage
    ctx.set_output(0, ctx.input(0));
    return Status::ok();
  }
  return cast_tensor(ctx.input(0), ctx.output(0), saturate);
}

}  // namespace

KILN_REGISTER_OPS(cast) {
  // Cast-24/25/28 add types kiln lacks (rejected by cast_check) and round_mode, which only
  // applies to float8e8m0.
  reg.add({.op_type = "Cast", .min_opset = 1, .max_opset = 28, .min_inputs = 1, .max_inputs = 1,
           .infer = cast_infer, .cpu = cast_cpu, .check = cast_check,
           .summary = "convert to dtype 'to' (f8e4m3fn honours saturate)"});
  reg.add({.op_type = "CastLike", .min_opset = 15, .max_opset = 25, .min_inputs = 2,
           .max_inputs = 2, .infer = castlike_infer, .cpu = cast_cpu,
           .summary = "convert to the dtype of the second input"});
}

}  // namespace kiln::ops
