// Builder::build_serialized_network: fixes input shapes, infers shapes and types, runs the
// pass pipeline, verifies, and writes the plan.
#include <algorithm>
#include <chrono>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#ifdef KILN_WITH_CUDA
#include "cuda/backend.h"
#endif
#include "builder/profiles.h"
#include "builder/specialize.h"
#include "engine/plan.h"
#include "ir/graph.h"
#include "kiln/kiln.h"
#include "ops/registry.h"
#include "passes/pass.h"

namespace kiln {
namespace {

Status apply_input_shapes(ir::Graph& g, const BuilderConfig& cfg) {
  for (const auto& [name, dims] : cfg.input_shapes) {
    ir::Value* in = nullptr;
    for (auto* v : g.inputs) if (v->name == name) in = v;
    if (!in) {
      std::string names;
      for (auto* v : g.inputs) names += (names.empty() ? "" : ", ") + v->name;
      return Status(ErrorCode::kNotFound, "--shapes names input '" + name + "', which the model does not have",
                    "the model's inputs are: " + names);
    }
    if (in->shape.rank_known && in->shape.rank() != dims.size())
      return Status(ErrorCode::kShapeMismatch,
                    "input '" + name + "' has rank " + std::to_string(in->shape.rank()) + " (" + in->shape.to_string() +
                        "), but the given shape " + dims_to_string(dims) + " has rank " + std::to_string(dims.size()),
                    "give one value per dimension, e.g. --shapes " + name + ":1x3x224x224");
    if (in->shape.rank_known)
      for (size_t i = 0; i < dims.size(); ++i)
        if (in->shape.dims[i].is_known() && in->shape.dims[i].value != dims[i])
          return Status(ErrorCode::kShapeMismatch,
                        "input '" + name + "' has fixed dimension " + std::to_string(i) + " = " +
                            std::to_string(in->shape.dims[i].value) + ", but --shapes gives " + std::to_string(dims[i]),
                        "only symbolic dimensions (" + in->shape.to_string() + ") can be set");
    in->shape = Shape::from(dims);
  }
  return Status::ok();
}

/// Nodes that launch work at run time: all but constants and view ops (whose output
/// aliases their input). Without fusion, each launches (at least) one kernel.
int launching_nodes(const ir::Graph& g) {
  static const std::set<std::string> free = {"Constant", "Identity", "Reshape", "Flatten",
                                             "Squeeze",  "Unsqueeze", "Dropout"};
  int k = 0;
  for (const auto& n : g.nodes()) k += !(n->domain.empty() && free.count(n->op_type));
  return k;
}

}  // namespace

Result<std::vector<uint8_t>> Builder::build_serialized_network(NetworkDefinition& network, const BuilderConfig& cfg) {
  phases_.clear();
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  auto phase = [&](const char* name) {
    auto t1 = clock::now();
    phases_.push_back({name, std::chrono::duration<double, std::milli>(t1 - t0).count()});
    logger_.log(LogLevel::kInfo, std::string("build phase ") + name + ": " + std::to_string(phases_.back().ms) + " ms");
    t0 = t1;
  };
  ir::Graph& g = network.graph();
#ifndef KILN_WITH_CUDA
  if (cfg.backend != Backend::kCpu)
    return Status(ErrorCode::kInvalidArgument, std::string("backend '") + backend_name(cfg.backend) + "' is not available in this build",
                  "this kiln was built without CUDA: build for --backend cpu");
#endif
  if (cfg.backend == Backend::kCpu && (cfg.precision != Precision::kFp32))
    return Status(ErrorCode::kInvalidArgument,
                  std::string("precision ") + precision_name(cfg.precision) + " needs the CUDA backend",
                  "the CPU backend computes in FP32: drop --fp16/--bf16, or add --backend cuda");
  KILN_RETURN_IF_ERROR(apply_input_shapes(g, cfg));
  plan::PlanInfo info;
  info.backend = cfg.backend;
  KILN_ASSIGN_OR_RETURN(info.profiles, builder::apply_profiles(g, cfg));
  KILN_RETURN_IF_ERROR(resolve_schemas(g));
  KILN_RETURN_IF_ERROR(infer_graph(g));
  for (auto* v : g.inputs)
    if (!v->shape.is_static())
      logger_.log(LogLevel::kInfo, "input '" + v->name + "' has dynamic shape " + v->shape.to_string() +
                                       "; shapes are resolved at run time");
  phase("infer");
  // Level-1 passes (dead nodes, constant folding, folding BatchNorm and Add/Mul into
  // convolutions) first: what is left is the graph an unfused runtime would launch, node
  // by node. Then the fusions (level 2) on top.
  BuilderConfig unfused = cfg;
  unfused.opt_level = std::min(cfg.opt_level, 1);
  KILN_RETURN_IF_ERROR(passes::run_passes(g, unfused, logger_));
  const int before_fusion = launching_nodes(g);
  if (cfg.opt_level > unfused.opt_level) {
    // A dynamic plan's fusions see its first profile's opt dims (their legality compares
    // shapes, which symbolic inference often leaves unknown, e.g. after strided
    // convolutions); every fused node is checked again at each profile's min and max when
    // the backend specialises the plan there (cuda::lower_graph).
    const bool at_opt = !info.profiles.empty() && cfg.backend == Backend::kCuda;
    builder::SymbolicShapes symbolic;
    if (at_opt) {
      KILN_ASSIGN_OR_RETURN(symbolic, builder::set_shapes_in_place(
                                          g, builder::profile_dims(info.profiles[0], builder::ProfilePoint::kOpt)));
    }
    KILN_RETURN_IF_ERROR(passes::run_passes(g, cfg, logger_, unfused.opt_level + 1));
    if (at_opt) KILN_RETURN_IF_ERROR(builder::restore_symbolic(g, symbolic));
  }
  int after_fusion = launching_nodes(g);
  phase("passes");
  KILN_RETURN_IF_ERROR(ir::verify_graph(g));
#ifdef KILN_WITH_CUDA
  nlohmann::json bi;
  if (cfg.backend == Backend::kCuda) {
    cuda::LowerStats ls;
    KILN_RETURN_IF_ERROR(cuda::lower_graph(g, cfg, info, logger_, phase, ls));
    KILN_RETURN_IF_ERROR(ir::verify_graph(g));
    bi["gpu_kernels"] = ls.gpu_kernels;
    bi["host_nodes"] = ls.host_nodes;
    after_fusion = ls.gpu_kernels + ls.host_nodes;
    bi["autotune"] = {{"enabled", cfg.autotune},
                      {"layers_timed", ls.tuned},
                      {"layers_from_cache", ls.from_cache},
                      {"candidates_timed", ls.candidates},
                      {"candidates_skipped", ls.skipped},
                      {"timing_cache", cfg.timing_cache},
                      {"tactic_sources", tactic_sources_to_string(cfg.tactic_sources)},
                      {"sources_used", tactic_sources_to_string(ls.sources_used)},
                      {"sources_dropped", tactic_sources_to_string(ls.sources_dropped)}};
  }
#else
  nlohmann::json bi;
#endif
  bi["kernels_per_inference"] = {{"before_fusion", before_fusion}, {"after_fusion", after_fusion}};
  logger_.log(LogLevel::kInfo, "kernels per inference: " + std::to_string(before_fusion) + " before fusion, " +
                                   std::to_string(after_fusion) + " after");
  bi["opt_level"] = cfg.opt_level;
  bi["disabled_passes"] = cfg.disabled_passes;
  bi["precision"] = precision_name(cfg.precision);
  bi["allow_tf32"] = cfg.allow_tf32;
  bi["optimization_profiles"] = info.profiles.size();
  for (const auto& p : phases_) bi["phase_ms"][p.phase] = p.ms;
  info.build_info = bi.dump();
  auto bytes = plan::serialize(g, info);
  phase("serialize");
  return bytes;
}

Result<std::vector<uint8_t>> build_plan_from_file(const std::string& onnx_path, const BuilderConfig& cfg, Logger& logger) {
  Parser parser(logger);
  KILN_ASSIGN_OR_RETURN(auto net, parser.parse_from_file(onnx_path));
  return Builder(logger).build_serialized_network(*net, cfg);
}

}  // namespace kiln
