// Graph executor: runs an ir::Graph node by node through the op table's kernels, with
// shapes re-inferred from the actual inputs (so Shape-subgraphs and data-dependent shapes
// work). Tensors are freed after their last use. Used by the CPU backend, by constant
// folding (one node at a time) and for If/Loop/Scan bodies.
#pragma once

#include <functional>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::runtime {

/// Values computed so far in one graph invocation; `parent` resolves subgraph captures.
struct Env {
  const ir::Graph* graph = nullptr;
  const Env* parent = nullptr;
  std::unordered_map<const ir::Value*, HostTensor> tensors;
  /// Tensor of a value of this graph, or nullptr.
  const HostTensor* find(const ir::Value* v) const;
};

/// Called after each node of the top-level graph with its outputs and its wall time in
/// milliseconds (shape inference + kernel): profiling and layer-by-layer comparison tools.
using NodeObserver = std::function<void(const ir::Node& n, const std::vector<HostTensor>& outputs, double ms)>;

/// Runs `g` with `inputs` bound to g.inputs in order. `outer` supplies captures.
/// Errors: InputShapeMismatch (wrong dtype for an input), KernelFailed and any kernel
/// error, located at the failing node.
Result<std::vector<HostTensor>> run_graph(const ir::Graph& g, const std::vector<HostTensor>& inputs,
                                          const Env* outer = nullptr,
                                          const NodeObserver& observer = nullptr);

/// Runs one node on concrete inputs (nullptr = omitted optional input) and returns its
/// outputs. The node's schema must be resolved. `outer` supplies subgraph captures.
Result<std::vector<HostTensor>> run_node(const ir::Node& n, const std::vector<const HostTensor*>& inputs,
                                         const Env* outer = nullptr);

}  // namespace kiln::runtime
