// Choosing how one node runs on the CUDA backend; shared by the builder (which records
// the choice as the node's tactic) and by execution contexts (which rebuild the kernels).
#pragma once

#include <memory>
#include <vector>

#include "cuda/kernel.h"

namespace kiln::cuda {

/// Tactic names with a meaning to the runtime.
inline constexpr const char* kTacticHost = "host";  ///< CPU kernel with copies around it
inline constexpr const char* kTacticView = "view";  ///< output aliases input 0, no launch

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

/// Input index that output 0 may overwrite in place (elementwise op whose inputs all
/// have output 0's dims and dtype size), or -1.
int inplace_input(const ir::Node& n);

}  // namespace kiln::cuda
