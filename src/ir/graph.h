// kiln's one IR: a Graph of Nodes connected by Values, from import to plan. Later stages
// only add annotations (dtype, shape, tactic). Node order is kept topological
// (Graph::topo_sort restores it after rewrites).
//
// Subgraphs (If/Loop/Scan bodies) are Graphs held in attributes. A subgraph that reads a
// tensor of an enclosing graph has a *capture*: a Value of its own with the same name,
// listed in Graph::captures; the node owning the subgraph lists the enclosing graph's value
// in Node::implicit_inputs, so liveness, ordering and dead-node elimination see the use.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/shape.h"
#include "core/tensor.h"
#include "kiln/status.h"
#include "kiln/types.h"

namespace kiln {
struct OpSchema;
}

namespace kiln::ir {

class Graph;
struct Node;

/// A tensor in the graph: produced by one node, or a graph input, initializer or capture.
struct Value {
  std::string name;
  DataType dtype = DataType::kUndefined;
  Shape shape = Shape::unknown_rank();
  Node* producer = nullptr;     ///< nullptr for graph inputs, initializers and captures
  int producer_output = -1;
  /// Constant data: initializers, folded constants. Shared so copies are cheap.
  std::shared_ptr<const HostTensor> constant;

  // Annotations of the CUDA backend's lowering (builder), stored in the plan.
  int64_t mem_offset = -1;  ///< byte offset in the activation arena; -1 = not in the arena
  uint8_t layout = 0;       ///< cuda::Layout: 0 row-major, 1 NHWC (logical dims stay NCHW)

  bool is_constant() const { return constant != nullptr; }
};

/// A node attribute (ONNX AttributeProto, minus sparse tensors and type protos).
struct Attribute {
  enum class Kind { kFloat, kInt, kString, kTensor, kGraph, kFloats, kInts, kStrings, kTensors, kGraphs };
  Kind kind = Kind::kInt;
  float f = 0;
  int64_t i = 0;
  std::string s;
  HostTensor t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<HostTensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;

  static Attribute from_int(int64_t v) { Attribute a; a.kind = Kind::kInt; a.i = v; return a; }
  static Attribute from_float(float v) { Attribute a; a.kind = Kind::kFloat; a.f = v; return a; }
  static Attribute from_string(std::string v) { Attribute a; a.kind = Kind::kString; a.s = std::move(v); return a; }
  static Attribute from_ints(std::vector<int64_t> v) { Attribute a; a.kind = Kind::kInts; a.ints = std::move(v); return a; }
  static Attribute from_floats(std::vector<float> v) { Attribute a; a.kind = Kind::kFloats; a.floats = std::move(v); return a; }
  static Attribute from_tensor(HostTensor v) { Attribute a; a.kind = Kind::kTensor; a.t = std::move(v); return a; }
};
const char* attribute_kind_name(Attribute::Kind k);

/// One operation. `inputs[i] == nullptr` marks an omitted optional input (ONNX name "");
/// likewise for outputs.
struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  ///< "" = ai.onnx
  int opset = 0;       ///< opset version of `domain` this node was imported at
  std::vector<Value*> inputs;
  std::vector<Value*> outputs;
  std::map<std::string, Attribute> attrs;
  std::vector<Value*> implicit_inputs;  ///< enclosing-graph values read by subgraphs
  const OpSchema* schema = nullptr;      ///< resolved op-table entry (set by resolve_schemas)

  // Annotations added by later stages.
  std::string tactic;         ///< chosen tactic name (builder)
  std::string tactic_params;  ///< CUDA: what rebuilds that tactic (Kernel::tactic_params)
  float tactic_ms = -1;       ///< CUDA: its time measured by the autotuner, ms (-1: not timed)
  uint32_t tactic_source = 0; ///< CUDA: its TacticSource bit (0: not timed / unknown)
  std::vector<uint8_t> tactic_artifact;  ///< CUDA: compiled code of that tactic (Kernel::artifact)

  Value* input(size_t i) const { return i < inputs.size() ? inputs[i] : nullptr; }
  Value* output(size_t i) const { return i < outputs.size() ? outputs[i] : nullptr; }
  bool has_input(size_t i) const { return input(i) != nullptr; }
  bool has_attr(const std::string& n) const { return attrs.count(n) != 0; }
  const Attribute* attr(const std::string& n) const {
    auto it = attrs.find(n);
    return it == attrs.end() ? nullptr : &it->second;
  }
  int64_t attr_i(const std::string& n, int64_t def) const;
  float attr_f(const std::string& n, float def) const;
  std::string attr_s(const std::string& n, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& n, std::vector<int64_t> def = {}) const;
  std::vector<float> attr_floats(const std::vector<float>& def, const std::string& n) const;
  std::vector<float> attr_floats(const std::string& n) const { return attr_floats({}, n); }
  /// Location for diagnostics.
  ErrorLocation loc(std::string detail = {}) const { return {name, op_type, opset, std::move(detail)}; }
  /// All subgraphs held in attributes.
  std::vector<Graph*> subgraphs() const;
};

/// Where a value is read: node and input index (-1 for an implicit input).
struct Use {
  Node* node;
  int index;
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  std::string name;
  std::vector<Value*> inputs;    ///< runtime inputs (not initializers)
  std::vector<Value*> outputs;
  std::vector<Value*> captures;  ///< values of the enclosing graph read here (subgraphs only)
  std::map<std::string, int> opset_imports;  ///< domain → version (top-level graph)

  /// Creates a value; name must be unique in this graph (use unique_name()).
  Value* add_value(const std::string& name, DataType dtype = DataType::kUndefined,
                   Shape shape = Shape::unknown_rank());
  /// Creates a constant value holding `t`.
  Value* add_constant(const std::string& name, HostTensor t);
  /// Appends a node; sets producer links of outputs. Call topo_sort() after inserting
  /// nodes whose inputs are produced later in the list.
  Node* add_node(const std::string& op_type, const std::string& name, std::vector<Value*> inputs,
                 std::vector<Value*> outputs, const std::string& domain = "", int opset = 0);
  /// Removes a node (its outputs become producer-less; remove them or rewire uses first).
  void remove_node(Node* n);
  /// Replaces every use of `from` (node inputs, implicit inputs, graph outputs) with `to`.
  void replace_all_uses(Value* from, Value* to);
  /// Drops values that nothing produces, reads or lists (keeps inputs/outputs/captures).
  void remove_unused_values();

  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }
  Value* find_value(const std::string& name) const;
  /// A name not used by any value in this graph, based on `base`.
  std::string unique_name(const std::string& base);
  /// Map value → uses (node inputs and implicit inputs); recompute after rewrites.
  std::unordered_map<const Value*, std::vector<Use>> build_uses() const;
  bool is_output(const Value* v) const;

  /// Sorts nodes topologically (stable: keeps existing order where legal). Fails with
  /// OnnxGraphCycle naming nodes on a cycle.
  Status topo_sort();

  /// Number of nodes including those in subgraphs.
  size_t total_node_count() const;

 private:
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Value>> values_;
  std::unordered_map<std::string, Value*> by_name_;
  uint64_t name_counter_ = 0;
};

/// A copy of `g` whose values and nodes are new objects in the same order (the i-th value
/// or node of the copy is the i-th of `g`), with every field and annotation copied.
/// Subgraphs (If/Loop/Scan bodies) are copied too, constant data is shared (immutable).
/// Used to specialise a dynamic plan to concrete input shapes without touching the plan.
std::unique_ptr<Graph> clone_graph(const Graph& g);

/// Text rendering of a graph (one line per node with shapes and dtypes); subgraphs
/// indented. The main debugging aid (`kiln build --dump-after=PASS`).
std::string print_graph(const Graph& g);

/// Structural checks: every input defined before use, producers consistent, names unique,
/// outputs defined. Returns VerifyFailed naming the first problem.
Status verify_graph(const Graph& g);

}  // namespace kiln::ir
