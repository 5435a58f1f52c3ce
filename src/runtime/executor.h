// Graph executor: runs an ir::Graph node by node through the op table's kernels, with
// shapes re-inferred from the actual inputs (so Shape-subgraphs and data-dependent shapes
// work). Tensors are freed after their last use. Used by the CPU backend, by constant
// folding (one node at a time) and for If/Loop/Scan bodies.
#pragma once

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

/// Called after each node with its outputs (layer-by-layer debugging / comparison tools).
using NodeObserver = void (*)(void* user, const ir::Node& n, const std::vector<HostTensor>& outputs);

/// Runs `g` with `inputs` bound to g.inputs in order. `outer` supplies captures.
/// Errors: InputShapeMismatch (wrong dtype for an input), KernelFailed and any kernel
/// error, located at the failing node.
Result<std::vector<HostTensor>> run_graph(const ir::Graph& g, const std::vector<HostTensor>& inputs,
                                          const Env* outer = nullptr, NodeObserver observer = nullptr,
                                          void* observer_user = nullptr);

/// Runs one node on concrete inputs (nullptr = omitted optional input) and returns its
/// outputs. The node's schema must be resolved. `outer` supplies subgraph captures.
Result<std::vector<HostTensor>> run_node(const ir::Node& n, const std::vector<const HostTensor*>& inputs,
                                         const Env* outer = nullptr);

}  // namespace kiln::runtime
