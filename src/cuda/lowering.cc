// Builder side of the CUDA backend: precision, kernel choice per node, memory plan.
#include <map>
#include <string>

#include "builder/layout.h"
#include "builder/memory_plan.h"
#include "builder/precision.h"
#include "cuda/backend.h"
#include "cuda/handles.h"
#include "cuda/lower_node.h"
#include "ops/fused_conv.h"

namespace kiln::cuda {
namespace {

/// The CUDA backend's layout rules: FP16/BF16 2-D convolutions prefer NHWC (cuDNN's
/// tensor-core kernels are channels-last; on NCHW they transpose around every call), and
/// an op takes NHWC operands when its registry entry says the factory reads layouts and
/// the factory builds a kernel for exactly those layouts.
builder::LayoutRules layout_rules(const Resources& res, const Precision& p) {
  builder::LayoutRules r;
  r.prefers_nhwc = [](const ir::Node& n) {
    if (n.op_type != "Conv" && n.op_type != "ConvTranspose" && n.op_type != ops::kFusedConvOp) return false;
    const ir::Value* x = n.input(0);
    return x && x->shape.rank() == 4 && (x->dtype == DataType::kF16 || x->dtype == DataType::kBF16);
  };
  r.accepts = [&res, p](const ir::Node& n, const std::vector<uint8_t>& ins, const std::vector<uint8_t>& outs) {
    const KernelEntry* e = KernelRegistry::instance().find(n.domain == "ai.onnx" ? "" : n.domain, n.op_type);
    if (!e || !e->nhwc || !e->create) return false;
    KernelConfig cfg{n, operands_of(n.inputs), operands_of(n.outputs), res, p};
    for (size_t i = 0; i < ins.size(); ++i) cfg.inputs[i].layout = static_cast<Layout>(ins[i]);
    for (size_t i = 0; i < outs.size(); ++i) cfg.outputs[i].layout = static_cast<Layout>(outs[i]);
    return e->create(cfg).is_ok();
  };
  return r;
}

/// Layouts a node's lowering can run on: host code and views read row-major bytes (a view
/// may relabel a tensor whose layouts share bytes). A failure is a layout-pass bug.
Status check_layouts(const ir::Node& n, NodeKind kind) {
  if (kind == NodeKind::kKernel) return Status::ok();
  for (const auto* list : {&n.inputs, &n.outputs})
    for (const ir::Value* v : *list) {
      if (!v || v->layout == builder::kLayoutRowMajor) continue;
      if (kind != NodeKind::kView || !builder::layouts_share_bytes(v))
        return Status(ErrorCode::kInternal,
                      "tensor '" + v->name + "' is NHWC but node '" + n.name + "' (" + n.op_type +
                          ") runs on the host or as a view",
                      "a kiln bug: build with --no-nhwc to work around it, and report it", n.loc());
    }
  return Status::ok();
}

}  // namespace

Status lower_graph(ir::Graph& g, const BuilderConfig& cfg, plan::PlanInfo& info, Logger& logger) {
  KILN_ASSIGN_OR_RETURN(int cc, compute_capability(cfg.device));
  for (const auto& v : g.values())
    if (!v->shape.is_static() && (v->producer || std::find(g.inputs.begin(), g.inputs.end(), v.get()) != g.inputs.end()))
      return Status(ErrorCode::kDynamicShapeUnresolved,
                    "tensor '" + v->name + "' has shape " + v->shape.to_string() +
                        " after shape inference; the CUDA backend needs static shapes",
                    "give every input a concrete shape with --shapes name:1x3x224x224 (optimisation profiles for "
                    "dynamic shapes come with a later kiln); data-dependent ops (NonZero, Unique...) cannot "
                    "run on the CUDA backend yet");
  if (cfg.precision != kiln::Precision::kFp32)
    KILN_RETURN_IF_ERROR(builder::lower_precision(g, cfg.precision == kiln::Precision::kFp16 ? DataType::kF16 : DataType::kBF16));

  Handles h;
  KILN_RETURN_IF_ERROR(h.init(cfg.device));
  Precision p;
  p.allow_tf32 = cfg.allow_tf32;
  if (cfg.nhwc) {
    KILN_ASSIGN_OR_RETURN(builder::LayoutStats ls, builder::assign_layouts(g, layout_rules(h.res(), p)));
    logger.log(LogLevel::kInfo, "layout: " + std::to_string(ls.nhwc_nodes) + " nodes NHWC, " +
                                    std::to_string(ls.reformats) + " reformats, " + std::to_string(ls.relabels) +
                                    " relabels, " + std::to_string(ls.absorbed) + " reformats fused into producers, " +
                                    std::to_string(ls.constants) + " constants permuted");
  }
  std::map<std::string, int> host_ops;
  int n_kernels = 0;
  std::map<const ir::Node*, bool> view;
  for (const auto& n : g.nodes()) {
    KILN_ASSIGN_OR_RETURN(LoweredNode ln, lower_node(*n, h.res(), p, false));
    switch (ln.kind) {
      case NodeKind::kKernel: n->tactic = ln.kernel->tactic(); ++n_kernels; break;
      case NodeKind::kView: n->tactic = ln.kernel ? std::string(kTacticView) + "+" + ln.kernel->tactic() : kTacticView; break;
      case NodeKind::kHost:
        n->tactic = kTacticHost;
        ++host_ops[n->op_type];
        if (logger.enabled(LogLevel::kInfo))
          logger.log(LogLevel::kInfo, "node '" + n->name + "' (" + n->op_type + ") runs on the host: " +
                                          ln.why_host.message());
        break;
    }
    KILN_RETURN_IF_ERROR(check_layouts(*n, ln.kind));
    view[n.get()] = ln.kind == NodeKind::kView;
  }
  if (!host_ops.empty()) {
    std::string list;
    for (const auto& [op, c] : host_ops) list += (list.empty() ? "" : ", ") + op + " x" + std::to_string(c);
    logger.log(LogLevel::kWarning, "no GPU kernel for " + list +
                                       ": those nodes run on the host (slow; CUDA graphs are disabled). "
                                       "`kiln build -v` says why per node");
  }
  builder::MemoryPlanRules rules;
  rules.is_alias = [&](const ir::Node& n) { return view.at(&n); };
  rules.inplace_input = [](const ir::Node& n) { return inplace_input(n); };
  KILN_ASSIGN_OR_RETURN(builder::MemoryPlan mp, builder::plan_memory(g, rules));
  info.compute_capability = cc;
  info.precision = cfg.precision;
  info.allow_tf32 = cfg.allow_tf32;
  info.arena_bytes = mp.arena_bytes;
  info.naive_bytes = mp.naive_bytes;
  logger.log(LogLevel::kInfo, "cuda lowering: " + std::to_string(n_kernels) + " GPU kernels, arena " +
                                  std::to_string(mp.arena_bytes) + " bytes (naive " + std::to_string(mp.naive_bytes) +
                                  ")");
  return Status::ok();
}

}  // namespace kiln::cuda
