// Layout assignment of a CUDA build: which 4-D activations are stored channels-last (NHWC).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::builder {

/// Values of ir::Value::layout (the numbering of cuda::Layout).
inline constexpr uint8_t kLayoutRowMajor = 0;
inline constexpr uint8_t kLayoutNhwc = 1;

/// Prefix of the reformat nodes the pass inserts (Transpose with the identity perm whose
/// input and output differ in layout); `kiln inspect` lists them under this name.
inline constexpr const char* kReformatPrefix = "kiln_reformat";
/// Prefix of the relabel nodes (Identity views) between layouts that share their bytes:
/// tensors with one channel or one spatial position ([N,C,1,1] after a global pool).
inline constexpr const char* kRelabelPrefix = "kiln_relabel";

/// True when v's NCHW and NHWC layouts are the same bytes: a static 4-D tensor with one
/// channel or one spatial position ([N, C, 1, 1] after a global pool).
bool layouts_share_bytes(const ir::Value* v);

/// What the backend knows about layouts (the CUDA backend's rules: cuda/lowering.cc).
struct LayoutRules {
  /// Nodes that run faster on NHWC activations (FP16/BF16 tensor-core convolutions).
  std::function<bool(const ir::Node&)> prefers_nhwc;
  /// Whether the node's kernel takes these layouts, one per input and per output
  /// (kLayoutRowMajor / kLayoutNhwc; row-major for every operand that is not a 4-D float
  /// tensor). False for ops whose kernels ignore layouts.
  std::function<bool(const ir::Node&, const std::vector<uint8_t>& inputs, const std::vector<uint8_t>& outputs)>
      accepts;
};

/// What the pass did (`kiln build -v`, tests).
struct LayoutStats {
  int nhwc_nodes = 0;  ///< nodes running on NHWC operands
  int reformats = 0;   ///< Transpose reformats inserted (real data movement)
  int relabels = 0;    ///< Identity relabels inserted (free views)
  int absorbed = 0;    ///< reformats avoided by a producer writing the other layout itself
  int constants = 0;   ///< constants stored permuted (KRSC convolution weights...)
};

/// Assigns ir::Value::layout to every 4-D float tensor of `g` so that tensor-core
/// convolutions and the layout-agnostic ops around them run channels-last, with as few
/// reformats as a greedy pass finds (TensorRT calls this format selection; the regions
/// are those of PyTorch's channels_last propagation).
///
/// 1. Every node with a 4-D float operand gets a mode, in topological order: NHWC for
///    nodes that prefer it, else NHWC when most bytes of its 4-D activation inputs are
///    already NHWC; and only when rules.accepts() takes all its 4-D operands as NHWC.
///    Outputs are stored in their producer's mode.
/// 2. Graph inputs, graph outputs and tensors read by subgraphs stay row-major (users
///    and host code see them).
/// 3. A tensor read in another layout than it is stored: its producer writes that layout
///    itself when every reader wants it and rules.accepts() allows it (a Cast in front of
///    the first convolution); otherwise a reformat node (Transpose, identity perm) or, for
///    tensors whose two layouts share bytes, a relabel (Identity view) is inserted.
/// 4. Constant 4-D inputs of NHWC nodes (convolution weights) are permuted at build time
///    (KRSC), copied when row-major readers remain.
/// Logical dims never change. Needs static shapes. Errors: from topo_sort.
Result<LayoutStats> assign_layouts(ir::Graph& g, const LayoutRules& rules);

}  // namespace kiln::builder
