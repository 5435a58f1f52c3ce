#include "cuda/lower_node.h"

#include <string>
#include <unordered_map>
#include <unordered_set>

#include "builder/specialize.h"
#include "ops/fused_pointwise.h"

namespace kiln::cuda {

std::vector<Operand> operands_of(const std::vector<ir::Value*>& vs) {
  std::vector<Operand> ops(vs.size());
  for (size_t i = 0; i < vs.size(); ++i) {
    const ir::Value* v = vs[i];
    if (!v) continue;
    Operand& o = ops[i];
    o.dtype = v->dtype;
    for (const auto& d : v->shape.dims) o.dims.push_back(d.value);
    o.layout = static_cast<Layout>(v->layout);
    o.value = v->constant.get();
  }
  return ops;
}

Result<LoweredNode> lower_node(const ir::Node& n, const Resources& res, const Precision& p, bool force_host) {
  LoweredNode out;
  out.entry = KernelRegistry::instance().find(n.domain == "ai.onnx" ? "" : n.domain, n.op_type);
  if (force_host) return out;
  if (!n.subgraphs().empty()) {
    out.why_host = Status(ErrorCode::kNoGpuKernel, "control flow runs on the host", "", n.loc());
    return out;
  }
  if (!out.entry) {
    out.why_host = Status(ErrorCode::kNoGpuKernel, "no GPU kernel is registered for " + n.op_type, "", n.loc());
    return out;
  }
  if (out.entry->alias_input0 && !out.entry->create) {
    out.kind = NodeKind::kView;
    return out;
  }
  KernelConfig cfg{n, operands_of(n.inputs), operands_of(n.outputs), res, p};
  if (!n.tactic_params.empty()) cfg.tactic = &n.tactic_params;
  if (!n.tactic_artifact.empty()) cfg.artifact = &n.tactic_artifact;
  auto k = out.entry->create(cfg);
  if (!k.is_ok()) {
    if (k.status().code() != ErrorCode::kNoGpuKernel) return k.status().at(n.loc());
    out.why_host = k.status();
    out.entry = nullptr;
    return out;
  }
  out.kernel = std::move(k.value());
  out.kind = out.entry->alias_input0 ? NodeKind::kView : NodeKind::kKernel;
  return out;
}

builder::MemoryPlanRules memory_rules(std::function<bool(const ir::Node&)> is_view) {
  builder::MemoryPlanRules rules;
  rules.is_alias = std::move(is_view);
  rules.inplace_input = [](const ir::Node& n) { return inplace_input(n); };
  return rules;
}

Result<LoweredGraph> lower_for_shapes(const ir::Graph& g, const std::map<std::string, std::vector<int64_t>>& dims,
                                      const Resources& res, const Precision& p, bool keep_artifacts) {
  LoweredGraph out;
  KILN_ASSIGN_OR_RETURN(out.graph, builder::specialize(g, dims, true));
  std::unordered_map<const ir::Node*, bool> view;
  for (const auto& n : out.graph->nodes()) {
    if (!keep_artifacts) n->tactic_artifact.clear();
    auto ln = lower_node(*n, res, p, n->tactic == kTacticHost);
    if (!ln.is_ok() && ln.status().code() == ErrorCode::kTacticUnavailable) {
      // The tactic timed at the opt dims does not run at these: the library chooses.
      n->tactic_params.clear();
      n->tactic_artifact.clear();
      ++out.heuristic_fallbacks;
      ln = lower_node(*n, res, p, false);
    }
    if (!ln.is_ok()) return ln.status();
    view[n.get()] = ln->kind == NodeKind::kView;
    out.nodes.push_back(std::move(*ln));
  }
  KILN_ASSIGN_OR_RETURN(out.memory,
                        builder::plan_memory(*out.graph, memory_rules([&](const ir::Node& n) { return view.at(&n); })));
  return out;
}

int inplace_input(const ir::Node& n) {
  // Ops whose kernel reads element i of every input only to write element i of output 0.
  static const std::unordered_set<std::string> elementwise = {
      "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip", "Elu", "Selu", "Celu",
      "Gelu", "Erf", "Softplus", "Softsign", "Mish", "Abs", "Neg", "Sqrt", "Reciprocal", "Exp", "Log",
      "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Cast"};
  // kiln.FusedPointwise: each thread reads its element of every input before writing it.
  const bool fused = n.domain == ops::kFusedPointwiseDomain && n.op_type == ops::kFusedPointwiseOp;
  if (!fused && (!n.domain.empty() || !elementwise.count(n.op_type))) return -1;
  if (n.outputs.empty() || !n.outputs[0]) return -1;
  const ir::Value* out = n.outputs[0];
  int candidate = -1;
  for (size_t k = 0; k < n.inputs.size(); ++k) {
    const ir::Value* in = n.inputs[k];
    if (!in) continue;
    if (in->shape.concrete() != out->shape.concrete() || in->layout != out->layout) {
      if (in->shape.is_static() && in->shape.numel() == 1 && in->constant) continue;  // scalar operand
      return -1;
    }
    if (candidate < 0 && dtype_size(in->dtype) == dtype_size(out->dtype) && !in->constant)
      candidate = static_cast<int>(k);
  }
  return candidate;
}

}  // namespace kiln::cuda
