// Builder side of the CUDA backend: precision, kernel choice per node, memory plan.
#include <algorithm>
#include <map>
#include <unordered_map>
#include <set>
#include <string>

#include "builder/channel_padding.h"
#include "builder/layout.h"
#include "builder/memory_plan.h"
#include "builder/precision.h"
#include "builder/profiles.h"
#include "builder/specialize.h"
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

/// A dynamic plan at every profile's min and max (and the opt of profiles after the first,
/// whose opt was lowered already): specialised and lowered as an execution context will,
/// so a tactic or shape that fails there fails the build, not a user's first inference.
/// Returns the largest activation arena (and naive sum) over those points.
Result<builder::MemoryPlan> check_profiles(const ir::Graph& g, const plan::PlanInfo& info, const Resources& res,
                                           const Precision& p, Logger& logger) {
  builder::MemoryPlan worst;
  for (size_t k = 0; k < info.profiles.size(); ++k) {
    std::vector<std::pair<const char*, builder::ProfilePoint>> points = {{"min", builder::ProfilePoint::kMin},
                                                                         {"max", builder::ProfilePoint::kMax}};
    if (k > 0) points.push_back({"opt", builder::ProfilePoint::kOpt});
    for (const auto& [what, point] : points) {
      auto dims = builder::profile_dims(info.profiles[k], point);
      auto lg = lower_for_shapes(g, dims, res, p, false);
      if (!lg.is_ok())
        return lg.status().with_context("optimisation profile " + std::to_string(k) + " at its " + what + " shapes");
      worst.arena_bytes = std::max(worst.arena_bytes, lg->memory.arena_bytes);
      worst.naive_bytes = std::max(worst.naive_bytes, lg->memory.naive_bytes);
      logger.log(LogLevel::kInfo, "profile " + std::to_string(k) + " " + what + ": arena " +
                                      std::to_string(lg->memory.arena_bytes) + " bytes, " +
                                      std::to_string(lg->heuristic_fallbacks) +
                                      " layers re-chosen by heuristics (their tactic does not run there)");
    }
  }
  return worst;
}

}  // namespace

Status lower_graph(ir::Graph& g, const BuilderConfig& cfg, plan::PlanInfo& info, Logger& logger,
                   const std::function<void(const char*)>& phase, LowerStats& stats) {
  KILN_ASSIGN_OR_RETURN(int cc, compute_capability(cfg.device));
  // A dynamic plan is lowered at its first profile's opt dims: the structural steps
  // (precision, padding, layouts) on the graph itself with those shapes set in place, the
  // per-node choices (tactics) on a specialised copy; then the graph gets its symbolic
  // shapes back and every profile's extremes are checked.
  const bool dynamic = !info.profiles.empty();
  const auto opt_dims = dynamic ? builder::profile_dims(info.profiles[0], builder::ProfilePoint::kOpt)
                                : std::map<std::string, std::vector<int64_t>>{};
  builder::SymbolicShapes symbolic;
  if (dynamic) {
    KILN_ASSIGN_OR_RETURN(symbolic, builder::set_shapes_in_place(g, opt_dims));
  }
  for (const auto& v : g.values())
    if (!v->shape.is_static() && (v->producer || std::find(g.inputs.begin(), g.inputs.end(), v.get()) != g.inputs.end()))
      return Status(ErrorCode::kDynamicShapeUnresolved,
                    "tensor '" + v->name + "' has shape " + v->shape.to_string() +
                        " after shape inference; the CUDA backend needs static shapes or an optimisation profile",
                    dynamic ? "its shape depends on tensor data (NonZero, Unique...), which the CUDA backend cannot "
                              "plan memory for"
                            : "give every input a concrete shape (--shapes name:1x3x224x224), or a range with "
                              "--min-shapes/--opt-shapes/--max-shapes for a dynamic plan");
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
  // Per-node choices are made on `lg`: the graph itself when static, else a copy
  // specialised to the opt dims whose shape arithmetic is folded (as an execution
  // context's will be), so that a node sees its shape inputs as constants.
  std::unique_ptr<ir::Graph> opt_graph;
  ir::Graph* lg = &g;
  if (dynamic) {
    KILN_RETURN_IF_ERROR(builder::restore_symbolic(g, symbolic));
    KILN_ASSIGN_OR_RETURN(opt_graph, builder::specialize(g, opt_dims, true));
    lg = opt_graph.get();
  }

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
  ao.sources = cfg.tactic_sources;
  AutotuneProgress progress = [&](size_t done, size_t total, const ir::Node& n, const builder::TimingEntry& e,
                                  bool cached) {
    if (logger.enabled(LogLevel::kInfo))
      logger.log(LogLevel::kInfo, "autotune " + std::to_string(done) + "/" + std::to_string(total) + " '" + n.name +
                                      "' (" + n.op_type + "): " + e.tactic + " " + std::to_string(e.ms) + " ms" +
                                      (cached ? " (timing cache)" : " (best of " + std::to_string(e.candidates) + ")"));
    if (cfg.progress) cfg.progress({"autotune", done, total, n.name, n.op_type, e.tactic, e.ms, cached});
  };
  AutotuneStats as;
  KILN_ASSIGN_OR_RETURN(std::set<const ir::Node*> tuned, autotune_graph(*lg, h.res(), p, cache, ao, progress, as));
  KILN_ASSIGN_OR_RETURN(uint32_t dropped,
                        drop_costly_libraries(*lg, h.res(), p, cache, ao, cfg.library_tradeoff, tuned, as));
  stats.tuned = as.tuned;
  stats.from_cache = as.from_cache;
  stats.candidates = as.candidates;
  stats.skipped = as.skipped;
  stats.sources_dropped = dropped;
  if (cfg.autotune)
    logger.log(LogLevel::kInfo, "autotune: " + std::to_string(as.tuned) + " layers timed (" +
                                    std::to_string(as.candidates) + " candidates, " + std::to_string(as.skipped) +
                                    " skipped), " + std::to_string(as.from_cache) + " from the timing cache");
  phase("autotune");

  std::map<std::string, int> host_ops;
  std::map<const ir::Node*, bool> view;
  const std::string extra = tuning_signature(p, cfg.tactic_sources);
  for (const auto& n : lg->nodes()) {
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
      if (ln.kernel) {
        n->tactic_artifact = ln.kernel->artifact();
        n->tactic_source = tactic_source_bit(ln.kernel->tactic_source());
      }
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
    if (kind == NodeKind::kKernel) {
      ++stats.gpu_kernels;
      stats.sources_used |= n->tactic_source;
    }
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
  builder::MemoryPlan mp;
  if (dynamic) {
    // Copy the choices back; nodes the specialisation folded are shape arithmetic.
    std::unordered_map<std::string, const ir::Node*> chosen;
    for (const auto& n : lg->nodes()) chosen[n->name] = n.get();
    for (const auto& n : g.nodes()) {
      auto it = chosen.find(n->name);
      if (it == chosen.end()) {
        n->tactic = kTacticShape;
        continue;
      }
      n->tactic = it->second->tactic;
      n->tactic_params = it->second->tactic_params;
      n->tactic_ms = it->second->tactic_ms;
      n->tactic_artifact = it->second->tactic_artifact;
    }
    opt_graph.reset();
    KILN_ASSIGN_OR_RETURN(mp, check_profiles(g, info, h.res(), p, logger));
  } else {
    KILN_ASSIGN_OR_RETURN(mp, builder::plan_memory(g, memory_rules([&](const ir::Node& n) { return view.at(&n); })));
  }
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
