// kiln.FusedPointwise (see ops/fused_pointwise.h): a program of pointwise ops over broadcast
// inputs. Inference: the output is the numpy broadcast of all inputs with dtype `to`. The CPU
// reference interprets the program over blocks of output elements: each instruction runs as
// one loop over the block (the instruction switch is per block, not per element), in f32, or
// f64 when an input or the output is f64, and the last register is rounded once into the
// output — the arithmetic the fused GPU kernel does per element.
#include "ops/fused_pointwise.h"

#include <algorithm>
#include <string>

#include "onnx/importer.h"
#include "ops/helpers.h"

namespace kiln::ops {
namespace {

constexpr PwOpInfo kTable[] = {
    {PwOp::kInput, "Input", "", 0, "", 0.0f, "", 0.0f, ""},
    {PwOp::kConst, "Const", "", 0, "", 0.0f, "", 0.0f, ""},
#define KILN_PW_INFO(Name, onnx, arity, a0, d0, a1, d1, ...) \
  {PwOp::k##Name, #Name, onnx, arity, a0, d0, a1, d1, #__VA_ARGS__},
    KILN_PW_OPS(KILN_PW_INFO)
#undef KILN_PW_INFO
};

Status bad_program(const ir::Node& n, const std::string& what) {
  return Status(ErrorCode::kOnnxBadAttribute, "FusedPointwise program: " + what,
                "FusedPointwise nodes are made by kiln's fuse_pointwise pass; rebuild the plan "
                "with this kiln (or --disable-pass=fuse_pointwise) and report the model",
                n.loc());
}

Status check_fused_pointwise(const ir::Node& n) {
  return read_pw_program(n, n.inputs.size()).status();
}

Status infer_fused_pointwise(InferContext& ctx) {
  const ir::Node& n = ctx.node();
  KILN_ASSIGN_OR_RETURN(PwProgram p, read_pw_program(n, ctx.num_inputs()));
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i))
      return ctx.error(ErrorCode::kOnnxBadInputs,
                       "input " + std::to_string(i) + " is omitted; every input is read",
                       "FusedPointwise takes no optional inputs");
    if (!pw_dtype_ok(ctx.input_type(i)))
      return ctx.error(ErrorCode::kTypeMismatch,
                       "input " + std::to_string(i) + " is " + dtype_name(ctx.input_type(i)),
                       "FusedPointwise reads f32, f16, bf16 and f64 tensors");
  }
  KILN_RETURN_IF_ERROR(infer_broadcast(ctx));
  ctx.set_output(0, p.out_dtype, ctx.output_shape(0));
  return Status::ok();
}

/// Output elements evaluated per block: registers take code.size() * kBlock values.
constexpr int64_t kBlock = 256;

template <typename C>
Status run_program(KernelContext& ctx, const PwProgram& p) {
  HostTensor& out = ctx.output(0);
  const int64_t n = out.numel();
  std::vector<BroadcastIndexer> index;
  for (size_t k = 0; k < ctx.num_inputs(); ++k)
    index.emplace_back(ctx.input(k).dims(), out.dims());
  std::vector<C> regs(p.code.size() * kBlock);
  for (int64_t o = 0; o < n; o += kBlock) {
    const int64_t len = std::min(kBlock, n - o);
    for (size_t r = 0; r < p.code.size(); ++r) {
      const PwInstr& ins = p.code[r];
      C* dst = regs.data() + r * kBlock;
      if (ins.op == PwOp::kInput) {
        const HostTensor& t = ctx.input(static_cast<size_t>(ins.a));
        const BroadcastIndexer& ix = index[static_cast<size_t>(ins.a)];
        KILN_RETURN_IF_ERROR(dispatch_float(t.dtype(), [&](auto tag) {
          using T = decltype(tag);
          const T* src = t.data<T>();
          for (int64_t j = 0; j < len; ++j)
            dst[j] = static_cast<C>(static_cast<compute_t<T>>(src[ix.index(o + j)]));
          return Status::ok();
        }));
      } else if (ins.op == PwOp::kConst) {
        std::fill(dst, dst + len, static_cast<C>(ins.p0));
      } else {
        const C* y = ins.b >= 0 ? regs.data() + ins.b * kBlock : nullptr;
        pw_formulas::pw_eval_span<C>(ins.op, regs.data() + ins.a * kBlock, y, ins.p0, ins.p1,
                                     dst, len);
      }
    }
    const C* result = regs.data() + (p.code.size() - 1) * kBlock;
    KILN_RETURN_IF_ERROR(dispatch_float(out.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* dst = out.data<T>() + o;
      for (int64_t j = 0; j < len; ++j)
        dst[j] = static_cast<T>(static_cast<compute_t<T>>(result[j]));
      return Status::ok();
    }));
  }
  return Status::ok();
}

Status fused_pointwise_cpu(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(PwProgram p, read_pw_program(ctx.node(), ctx.num_inputs()));
  bool f64 = ctx.output(0).dtype() == DataType::kF64;
  for (size_t k = 0; k < ctx.num_inputs(); ++k) {
    if (!ctx.has_input(k) || !pw_dtype_ok(ctx.input(k).dtype()))
      return ctx.error(ErrorCode::kTypeMismatch,
                       "input " + std::to_string(k) + " is omitted or not a float tensor");
    f64 |= ctx.input(k).dtype() == DataType::kF64;
  }
  return f64 ? run_program<double>(ctx, p) : run_program<float>(ctx, p);
}

}  // namespace

std::span<const PwOpInfo> pw_ops() { return kTable; }

const PwOpInfo& pw_op_info(PwOp op) { return kTable[static_cast<size_t>(op)]; }

std::optional<PwOp> pw_op_by_name(std::string_view name) {
  for (const PwOpInfo& e : kTable)
    if (name == e.name) return e.op;
  return std::nullopt;
}

bool pw_dtype_ok(DataType dt) {
  return dt == DataType::kF32 || dt == DataType::kF16 || dt == DataType::kBF16 ||
         dt == DataType::kF64;
}

Result<PwProgram> read_pw_program(const ir::Node& n, size_t num_inputs) {
  const ir::Attribute* ops = n.attr("ops");
  if (!ops || ops->kind != ir::Attribute::Kind::kStrings || ops->strings.empty())
    return bad_program(n, "attribute 'ops' (strings) is missing or empty");
  const size_t count = ops->strings.size();
  if (count > kMaxPwInstructions)
    return bad_program(n, std::to_string(count) + " instructions (at most " +
                              std::to_string(kMaxPwInstructions) + ")");
  const std::vector<int64_t> args = n.attr_ints("args");
  const std::vector<float> params = n.attr_floats("params");
  if (args.size() != 2 * count || params.size() != 2 * count)
    return bad_program(n, std::to_string(count) + " instructions need " +
                              std::to_string(2 * count) + " 'args' and 'params', got " +
                              std::to_string(args.size()) + " and " +
                              std::to_string(params.size()));
  if (!n.has_attr("to")) return bad_program(n, "attribute 'to' (output dtype) is missing");
  PwProgram p;
  p.out_dtype = onnx_import::from_onnx_dtype(static_cast<int>(n.attr_i("to", 0)));
  if (!pw_dtype_ok(p.out_dtype))
    return bad_program(n, "'to' = " + std::to_string(n.attr_i("to", 0)) +
                              " is not f32, f16, bf16 or f64");
  p.code.resize(count);
  for (size_t r = 0; r < count; ++r) {
    const std::string& name = ops->strings[r];
    const std::string at = "instruction " + std::to_string(r) + " (" + name + ")";
    std::optional<PwOp> op = pw_op_by_name(name);
    if (!op) return bad_program(n, at + ": unknown instruction");
    PwInstr& ins = p.code[r];
    ins.op = *op;
    ins.a = static_cast<int32_t>(std::clamp<int64_t>(args[2 * r], -1, INT32_MAX));
    ins.b = static_cast<int32_t>(std::clamp<int64_t>(args[2 * r + 1], -1, INT32_MAX));
    ins.p0 = params[2 * r];
    ins.p1 = params[2 * r + 1];
    const int arity = pw_op_info(ins.op).arity;
    if (ins.op == PwOp::kInput) {
      if (ins.a < 0 || static_cast<size_t>(ins.a) >= num_inputs || ins.b != -1)
        return bad_program(n, at + " reads input " + std::to_string(args[2 * r]) + " of " +
                                  std::to_string(num_inputs));
      continue;
    }
    const int32_t r32 = static_cast<int32_t>(r);
    const bool a_ok = arity == 0 ? ins.a == -1 : ins.a >= 0 && ins.a < r32;
    const bool b_ok = arity == 2 ? ins.b >= 0 && ins.b < r32 : ins.b == -1;
    if (!a_ok || !b_ok)
      return bad_program(n, at + " takes " + std::to_string(arity) +
                                " operands from earlier registers, got (" +
                                std::to_string(args[2 * r]) + ", " +
                                std::to_string(args[2 * r + 1]) + ")");
  }
  return p;
}

void write_pw_program(ir::Node& n, const PwProgram& p) {
  ir::Attribute ops;
  ops.kind = ir::Attribute::Kind::kStrings;
  std::vector<int64_t> args;
  std::vector<float> params;
  for (const PwInstr& ins : p.code) {
    ops.strings.emplace_back(pw_op_info(ins.op).name);
    args.insert(args.end(), {ins.a, ins.b});
    params.insert(params.end(), {ins.p0, ins.p1});
  }
  n.attrs["ops"] = std::move(ops);
  n.attrs["args"] = ir::Attribute::from_ints(std::move(args));
  n.attrs["params"] = ir::Attribute::from_floats(std::move(params));
  n.attrs["to"] = ir::Attribute::from_int(onnx_import::to_onnx_dtype(p.out_dtype));
}

KILN_REGISTER_OPS(fused_pointwise) {
  reg.add({.op_type = kFusedPointwiseOp, .domain = kFusedPointwiseDomain,
           .min_opset = kFusedPointwiseVersion, .max_opset = kFusedPointwiseVersion,
           .min_inputs = 1, .max_inputs = -1, .infer = infer_fused_pointwise,
           .cpu = fused_pointwise_cpu, .check = check_fused_pointwise,
           .summary = "kiln: a program of pointwise ops over broadcast inputs, created by "
                      "fuse_pointwise"});
}

}  // namespace kiln::ops
