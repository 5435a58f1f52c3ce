// Builder side of the CUDA backend: precision, kernel choice per node, memory plan.
#include <map>
#include <set>
#include <string>

#include "builder/channel_padding.h"
#include "builder/layout.h"
#include "builder/memory_plan.h"
#include "builder/precision.h"
#include "builder/timing_cache.h"
#include "cuda/autotune.h"
#include "cuda/backend.h"
#include "cuda/handles.h"
#include "cuda/lower_node.h"
#include "ops/fused_conv.h"
#include "ops/registry.h"

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

Status lower_graph(ir::Graph& g, const BuilderConfig& cfg, plan::PlanInfo& info, Logger& logger,
                   const std::function<void(const char*)>& phase, LowerStats& stats) {
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
  phase("precision");

  Handles h;
  KILN_RETURN_IF_ERROR(h.init(cfg.device));
  Precision p;
  p.allow_tf32 = cfg.allow_tf32;
  if (cfg.nhwc) {
    KILN_ASSIGN_OR_RETURN(int padded, builder::pad_conv_input_channels(g));
    if (padded) {
      KILN_RETURN_IF_ERROR(resolve_schemas(g));
      logger.log(LogLevel::kInfo, "layout: " + std::to_string(padded) +
                                      " convolution inputs padded to 4 channels (channels-last tensor-core engines)");
    }
    KILN_ASSIGN_OR_RETURN(builder::LayoutStats ls, builder::assign_layouts(g, layout_rules(h.res(), p)));
    logger.log(LogLevel::kInfo, "layout: " + std::to_string(ls.nhwc_nodes) + " nodes NHWC, " +
                                    std::to_string(ls.reformats) + " reformats, " + std::to_string(ls.relabels) +
                                    " relabels, " + std::to_string(ls.absorbed) + " reformats fused into producers, " +
                                    std::to_string(ls.constants) + " constants permuted");
  }
  phase("layout");

  // Tactic selection: the timing cache first, then timing on this GPU.
  const std::string env = timing_environment(cfg.device);
  builder::TimingCache cache(env);
  if (!cfg.timing_cache.empty()) {
    KILN_ASSIGN_OR_RETURN(cache, builder::TimingCache::load(cfg.timing_cache, env, logger));
  }
  AutotuneOptions ao;
  ao.enabled = cfg.autotune;
  ao.workspace_limit = cfg.workspace_limit;
  ao.logger = &logger;
  AutotuneProgress progress = [&](size_t done, size_t total, const ir::Node& n, const builder::TimingEntry& e,
                                  bool cached) {
    if (logger.enabled(LogLevel::kInfo))
      logger.log(LogLevel::kInfo, "autotune " + std::to_string(done) + "/" + std::to_string(total) + " '" + n.name +
                                      "' (" + n.op_type + "): " + e.tactic + " " + std::to_string(e.ms) + " ms" +
                                      (cached ? " (timing cache)" : " (best of " + std::to_string(e.candidates) + ")"));
    if (cfg.progress) cfg.progress({"autotune", done, total, n.name, n.op_type, e.tactic, e.ms, cached});
  };
  AutotuneStats as;
  KILN_ASSIGN_OR_RETURN(std::set<const ir::Node*> tuned, autotune_graph(g, h.res(), p, cache, ao, progress, as));
  stats.tuned = as.tuned;
  stats.from_cache = as.from_cache;
  stats.candidates = as.candidates;
  stats.skipped = as.skipped;
  if (cfg.autotune)
    logger.log(LogLevel::kInfo, "autotune: " + std::to_string(as.tuned) + " layers timed (" +
                                    std::to_string(as.candidates) + " candidates, " + std::to_string(as.skipped) +
                                    " skipped), " + std::to_string(as.from_cache) + " from the timing cache");
  phase("autotune");

  std::map<std::string, int> host_ops;
  std::map<const ir::Node*, bool> view;
  const std::string extra = precision_signature(p);
  for (const auto& n : g.nodes()) {
    NodeKind kind;
    if (tuned.count(n.get())) {
      kind = NodeKind::kKernel;  // built and timed by the autotuner: no need to build it again
    } else {
      auto lowered = lower_node(*n, h.res(), p, false);
      if (!lowered.is_ok() && lowered.status().code() == ErrorCode::kTacticUnavailable && !cfg.timing_cache.empty()) {
        // A timing cache entry this cuDNN/cuBLASLt cannot rebuild: forget it, use heuristics.
        logger.log(LogLevel::kWarning, lowered.status().message() + "; dropping it from the timing cache");
        cache.erase(builder::layer_signature(*n, extra));
        n->tactic_params.clear();
        n->tactic_ms = -1;
        lowered = lower_node(*n, h.res(), p, false);
      }
      if (!lowered.is_ok()) return lowered.status();
      LoweredNode& ln = *lowered;
      kind = ln.kind;
      if (ln.kernel) n->tactic_artifact = ln.kernel->artifact();
      switch (ln.kind) {
        case NodeKind::kKernel: n->tactic = ln.kernel->tactic(); break;
        case NodeKind::kView: n->tactic = ln.kernel ? std::string(kTacticView) + "+" + ln.kernel->tactic() : kTacticView; break;
        case NodeKind::kHost:
          n->tactic = kTacticHost;
          ++host_ops[n->op_type];
          if (logger.enabled(LogLevel::kInfo))
            logger.log(LogLevel::kInfo, "node '" + n->name + "' (" + n->op_type + ") runs on the host: " +
                                            ln.why_host.message());
          break;
      }
    }
    if (kind == NodeKind::kKernel) ++stats.gpu_kernels;
    if (kind == NodeKind::kHost) ++stats.host_nodes;
    KILN_RETURN_IF_ERROR(check_layouts(*n, kind));
    view[n.get()] = kind == NodeKind::kView;
  }
  if (!cfg.timing_cache.empty()) KILN_RETURN_IF_ERROR(cache.save(cfg.timing_cache));
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
  logger.log(LogLevel::kInfo, "cuda lowering: " + std::to_string(stats.gpu_kernels) + " GPU kernels, arena " +
                                  std::to_string(mp.arena_bytes) + " bytes (naive " + std::to_string(mp.naive_bytes) +
                                  ")");
  phase("lower");
  return Status::ok();
}

}  // namespace kiln::cuda
