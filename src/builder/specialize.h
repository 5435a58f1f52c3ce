// Specialising a dynamic graph to concrete input dims: what the CUDA backend does once
// per input shape (at build time for the profile's min/opt/max, at run time for each new
// shape an execution context sees), and what output shapes are computed from.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::builder {

/// A static copy of `g` (ir::clone_graph) for the input dims `dims` (input name → dims;
/// inputs not listed keep their shape and must be static):
///  1. the inputs get their dims, and shapes are inferred through the whole graph;
///  2. with `fold_shapes`, what the input dims determine is folded on the host: Shape and
///     Size, the shape arithmetic after them (Gather, Concat, Cast...), ConstantOfShape,
///     Range... (constant folding of nodes whose outputs are row-major; the result of a
///     node writing a channels-last tensor would need a relayout), so none of it runs on
///     the GPU per inference.
/// Every non-constant value of the result has a static shape. Errors: InputShapeMismatch
/// (an input not in the graph, a wrong rank, or a fixed dim changed), shape-inference
/// errors located at the node where the dims do not fit, DynamicShapeUnresolved naming
/// the first value whose shape still depends on tensor data (NonZero, Unique...).
Result<std::unique_ptr<ir::Graph>> specialize(const ir::Graph& g,
                                              const std::map<std::string, std::vector<int64_t>>& dims,
                                              bool fold_shapes);

/// The symbolic shapes of a dynamic graph's values, kept while the graph is rewritten at
/// concrete dims (keyed by value, checked by name: rewrites remove and add values).
using SymbolicShapes = std::unordered_map<const ir::Value*, std::pair<std::string, Shape>>;

/// Gives g's inputs `dims` and infers concrete shapes everywhere, in place, so that
/// rewrites whose legality or choices read shapes (fusions, precision, channel padding,
/// layouts) see the opt dims of a dynamic plan; nothing is folded. Returns what
/// restore_symbolic needs. Errors: shape inference errors at these dims.
Result<SymbolicShapes> set_shapes_in_place(ir::Graph& g, const std::map<std::string, std::vector<int64_t>>& dims);

/// Undoes set_shapes_in_place after the rewrites: the values that were there get their
/// symbolic shapes back, those the rewrites added are inferred from them.
Status restore_symbolic(ir::Graph& g, const SymbolicShapes& saved);

/// Dims of the graph inputs in order, flattened with each input's rank first: the key of
/// a specialisation. Inputs missing from `dims` contribute their static dims.
std::vector<int64_t> shape_signature(const ir::Graph& g, const std::map<std::string, std::vector<int64_t>>& dims);

}  // namespace kiln::builder
