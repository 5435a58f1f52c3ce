// Building blocks shared by the graph passes: use queries that respect names the outside
// world can see (graph outputs, subgraph captures), the two rewiring moves every
// elimination/fusion needs, and per-output-channel arithmetic on Conv/ConvTranspose
// weights (computed in double, stored in the weights' dtype).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

namespace kiln::passes {

using UseMap = std::unordered_map<const ir::Value*, std::vector<ir::Use>>;

/// True when `v`'s name is observable outside `g`'s node list: a graph output (the user and
/// enclosing If/Loop read it by position and name) or an implicit input of a node of `g`
/// (a subgraph capture binds it by name). Such a value must keep its identity.
bool name_is_pinned(const ir::Graph& g, const ir::Value* v);

/// True when nothing reads `v`: no node input, no implicit input, not a graph output.
/// A nullptr (omitted output) is unused.
bool is_unused(const ir::Graph& g, const UseMap& uses, const ir::Value* v);

/// True when `v` is read by exactly one node input and its name is not pinned: the one
/// reader may then absorb `v`'s producer.
bool has_single_reader(const ir::Graph& g, const UseMap& uses, const ir::Value* v);

/// Removes node `n` whose output `out` holds exactly the data, dtype and shape of `in`
/// (the caller proved it), so readers of `out` read `in` instead. When `out`'s name is
/// pinned, `in`'s producer is made to write `out` directly (readers of `in` follow); when
/// that is impossible too (`in` is a graph input, constant, capture or pinned), nothing
/// changes and false is returned. Other outputs of `n` must be unused.
bool bypass_node(ir::Graph& g, ir::Node* n, ir::Value* in, ir::Value* out);

/// Makes `producer` write `result` (the output of `consumer`, which was the only reader of
/// `producer`'s output `out_index`) and removes `consumer`. `result` keeps its name, so
/// this is legal even when it is a graph output. The old intermediate value becomes
/// unused; call Graph::remove_unused_values afterwards.
void absorb_consumer(ir::Graph& g, ir::Node* producer, int out_index, ir::Node* consumer,
                     ir::Value* result);

/// Makes `n` a node of op `op_type` in `domain` at `version` (a fusion's kiln-domain op,
/// e.g. kiln.FusedConv), with that op's schema; name, inputs, outputs and attributes stay
/// for the caller to set.
void retype_node(ir::Node& n, const char* domain, const char* op_type, int version);

/// Constant folding of one node (passes/constant_folding.cc: the pattern and legality are
/// described there): when `n` folds, its outputs become constants in place, `n` is removed
/// and true is returned. Unused values are left for Graph::remove_unused_values.
bool fold_node(ir::Graph& g, ir::Node* n);

/// g's nodes in their current (topological) order: a sweep walks this snapshot so that it
/// may remove nodes as it goes.
std::vector<ir::Node*> node_snapshot(const ir::Graph& g);

/// A local rewrite of one node: true when it changed the graph.
using NodeRewrite = bool (*)(ir::Graph& g, const UseMap& uses, ir::Node* n);

/// One sweep of `rewrite` over a node snapshot, with one use map built up front (the
/// rewrite must not rely on reader counts that its own earlier rewrites change), then
/// Graph::remove_unused_values when anything changed. Returns whether anything changed.
bool rewrite_each_node(ir::Graph& g, NodeRewrite rewrite);

/// A Conv or ConvTranspose of the default domain whose weight is a constant with a known
/// output-channel count, and whose bias is omitted or constant.
struct ConvWeights {
  ir::Node* conv = nullptr;
  const HostTensor* w = nullptr;
  const HostTensor* b = nullptr;  ///< nullptr when the Conv has no bias
  int64_t out_channels = 0;
};
/// Matches `n` as above; nullopt when it is not such a node.
std::optional<ConvWeights> match_conv_with_constant_weights(ir::Node* n);

/// The Conv producing `x`, matched as above, when `x` is read by one node input only and
/// its name is not pinned, so that this reader may absorb the Conv; nullopt otherwise.
std::optional<ConvWeights> conv_feeding_only(const ir::Graph& g, const UseMap& uses,
                                             const ir::Value* x);

/// Output channel of flat element `i` of the weight: [M, C/g, k...] for Conv,
/// [C, M/g, k...] for ConvTranspose (ONNX Operators.md, Conv / ConvTranspose).
int64_t weight_out_channel(const ConvWeights& cw, int64_t i);

/// Per-output-channel affine update of the convolution: W'[oc] = W[oc] * scale[oc],
/// b'[oc] = b[oc] * scale[oc] + shift[oc] (b = 0 when absent). Empty `scale` means 1.
/// Adds the new weight and bias as constants (dtype of the weight) and points the node at
/// them; the old constants stay for other readers (remove_unused_values drops them).
void rewrite_conv_affine(ir::Graph& g, const ConvWeights& cw, const std::vector<double>& scale,
                         const std::vector<double>& shift);

/// Moves the per-output-channel affine map (scale, shift) of `consumer`, the only reader of
/// cw.conv's output, into the convolution (rewrite_conv_affine) and lets the convolution
/// write consumer's output 0 instead (absorb_consumer).
void fold_affine_consumer(ir::Graph& g, const ConvWeights& cw, ir::Node* consumer,
                          const std::vector<double>& scale, const std::vector<double>& shift);

/// The values of constant `t` as one double per channel when `t` broadcasts against an
/// output of rank `rank` as a per-channel tensor of axis 1 ([C,1,1], [1,C,1,1], [1], a
/// scalar, ...); nullopt otherwise (including when it would enlarge the output's rank).
std::optional<std::vector<double>> per_channel_values(const HostTensor& t, size_t rank,
                                                      int64_t channels);

}  // namespace kiln::passes
