// Static memory planning of a graph's activations (CUDA backend): one arena per execution
// context, each activation at a byte offset, buffers whose lifetimes do not overlap
// sharing memory.
//
// Algorithm: "greedy by size" with best-fit gaps (Pisarchyk & Lee, "Efficient Memory
// Management for Deep Neural Net Inference", 2020, section 4.3): buffers sorted by size,
// largest first; each goes into the smallest gap between already-placed buffers whose
// lifetimes overlap its own, or after them. View ops (Reshape, Squeeze...) alias their
// input; elementwise ops may write in place over an input that they read last.
#pragma once

#include <cstdint>
#include <functional>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::builder {

struct MemoryPlan {
  uint64_t arena_bytes = 0;  ///< size of the arena (aligned)
  uint64_t naive_bytes = 0;  ///< sum of the activation tensors' sizes, each on its own
  int buffers = 0;           ///< distinct buffers after aliasing and in-place reuse
};

/// Hooks telling the planner which nodes may share memory.
struct MemoryPlanRules {
  /// True when node output 0 is input 0's memory (a view).
  std::function<bool(const ir::Node&)> is_alias;
  /// Input index whose buffer output 0 may overwrite when this node is its last reader
  /// (elementwise ops with equal sizes), or -1.
  std::function<int(const ir::Node&)> inplace_input;
  size_t alignment = 256;
};

/// Assigns Value::mem_offset to every activation of `g` (top level) and returns the
/// arena size. Graph inputs, graph outputs and constants live outside the arena
/// (offset -1): inputs and outputs are the caller's buffers, constants the engine's. A
/// view of such a value is outside the arena too. Every value must have a static shape
/// and a dtype. Errors: DynamicShapeUnresolved naming the value.
Result<MemoryPlan> plan_memory(ir::Graph& g, const MemoryPlanRules& rules);

}  // namespace kiln::builder
