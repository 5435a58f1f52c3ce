// Choosing how one node runs on the CUDA backend; shared by the builder (which records
// the choice as the node's tactic) and by execution contexts (which rebuild the kernels).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "builder/memory_plan.h"
#include "cuda/kernel.h"

namespace kiln::cuda {

/// Tactic names with a meaning to the runtime.
inline constexpr const char* kTacticHost = "host";  ///< CPU kernel with copies around it
inline constexpr const char* kTacticView = "view";  ///< output aliases input 0, no launch
/// Dynamic plans: shape arithmetic (Shape → Gather → Concat...) evaluated on the host when
/// the plan is specialised to input dims; never lowered, never launched.
inline constexpr const char* kTacticShape = "shape";

enum class NodeKind { kKernel, kView, kHost };

struct LoweredNode {
  NodeKind kind = NodeKind::kHost;
  const KernelEntry* entry = nullptr;
  std::unique_ptr<Kernel> kernel;  ///< kKernel, and kView entries that also write outputs
  Status why_host;                 ///< for kHost: why no GPU kernel took the node
};

/// Operands (dtype, static dims, layout, host data of constants) of values.
std::vector<Operand> operands_of(const std::vector<ir::Value*>& vs);

/// Lowers `n`: a view, a GPU kernel created for `res`, or the host fallback when no
/// kernel is registered or the factory says NoGpuKernel. `force_host` keeps a node the
/// plan put on the host there. Errors: any other factory error, located at the node.
Result<LoweredNode> lower_node(const ir::Node& n, const Resources& res, const Precision& p, bool force_host);

/// A dynamic plan's graph specialised to concrete input dims (builder::specialize) and
/// lowered: kernels created with the recorded tactics, activation memory planned.
struct LoweredGraph {
  std::unique_ptr<ir::Graph> graph;  ///< static; its values carry mem_offset
  std::vector<LoweredNode> nodes;    ///< one per node of `graph`, in order
  builder::MemoryPlan memory;
  /// Nodes whose recorded tactic does not run at these dims (TacticUnavailable): their
  /// kernel was chosen by the library's heuristics instead.
  int heuristic_fallbacks = 0;
};

/// Specialises `g` to `dims` (input name → dims) and lowers every node for `res`. With
/// `keep_artifacts` the stored compiled code is used (only valid at the dims it was built
/// for: the plan's first profile's opt dims); without, kernels are built from their
/// tactic parameters. Errors: those of builder::specialize, lower_node and plan_memory.
Result<LoweredGraph> lower_for_shapes(const ir::Graph& g, const std::map<std::string, std::vector<int64_t>>& dims,
                                      const Resources& res, const Precision& p, bool keep_artifacts);

/// The memory planner's rules for a lowered graph: views alias their input, elementwise
/// kernels may write in place (`is_view` says which nodes are views).
builder::MemoryPlanRules memory_rules(std::function<bool(const ir::Node&)> is_view);

/// Input index that output 0 may overwrite in place (elementwise op whose inputs all
/// have output 0's dims and dtype size), or -1.
int inplace_input(const ir::Node& n);

}  // namespace kiln::cuda
