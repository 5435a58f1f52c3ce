// THE op table: one OpSchema per ONNX operator, the single source of truth for the
// importer's dispatch, shape/type inference, constant folding (runs the CPU kernel), the
// CPU backend, the support matrix (`kiln ops`) and the conformance expectations.
//
// An op family lives in one file src/ops/<family>.cc and registers its entries with
//   KILN_REGISTER_OPS(family) {
//     reg.add({.op_type = "Conv", .min_opset = 1, .min_inputs = 2, .max_inputs = 3,
//              .infer = infer_conv, .cpu = conv_cpu, .summary = "..."});
//   }
// (designated initializers, in OpSchema's member order; unnamed fields keep their defaults)
// Nothing else needs editing: CMake globs src/ops/*.cc and links them as an OBJECT
// library, so the static registrars are always kept.
//
// Shape inference is written once and serves two purposes: at build time it sees
// partially known (symbolic) shapes and only those input values that are constant; at run
// time the executor calls it with every input concrete, then allocates outputs from the
// inferred shapes before calling the CPU kernel. So the kernel never recomputes shapes.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln {

/// Inputs to shape/type inference of one node.
class InferContext {
 public:
  InferContext(const ir::Node& node, std::vector<DataType> in_types, std::vector<Shape> in_shapes,
               std::vector<const HostTensor*> in_values)
      : node_(node), in_types_(std::move(in_types)), in_shapes_(std::move(in_shapes)),
        in_values_(std::move(in_values)), out_types_(node.outputs.size(), DataType::kUndefined),
        out_shapes_(node.outputs.size(), Shape::unknown_rank()) {}

  const ir::Node& node() const { return node_; }
  int opset() const { return node_.opset; }
  size_t num_inputs() const { return in_types_.size(); }
  size_t num_outputs() const { return out_types_.size(); }
  /// False for omitted optional inputs (and indices past the end).
  bool has_input(size_t i) const { return i < in_types_.size() && in_types_[i] != DataType::kUndefined; }
  DataType input_type(size_t i) const { return i < in_types_.size() ? in_types_[i] : DataType::kUndefined; }
  const Shape& input_shape(size_t i) const;
  /// The input's data when known (constant at build time; always at run time), else null.
  const HostTensor* input_value(size_t i) const { return i < in_values_.size() ? in_values_[i] : nullptr; }
  bool has_output(size_t i) const { return i < node_.outputs.size() && node_.outputs[i] != nullptr; }

  void set_output(size_t i, DataType t, Shape s) {
    if (i >= out_types_.size()) return;
    out_types_[i] = t;
    out_shapes_[i] = std::move(s);
  }
  DataType output_type(size_t i) const { return out_types_[i]; }
  const Shape& output_shape(size_t i) const { return out_shapes_[i]; }

  /// Error helpers that fill in the node location.
  Status error(ErrorCode code, const std::string& msg, const std::string& hint = {}) const {
    return Status(code, msg, hint, node_.loc());
  }

 private:
  const ir::Node& node_;
  std::vector<DataType> in_types_;
  std::vector<Shape> in_shapes_;
  std::vector<const HostTensor*> in_values_;
  std::vector<DataType> out_types_;
  std::vector<Shape> out_shapes_;
};

/// Runs a subgraph (If/Loop/Scan bodies) on the CPU: binds `inputs` to the graph's inputs
/// in order (captures are bound by the executor from the enclosing scope) and returns the
/// graph's outputs.
using SubgraphRunner =
    std::function<Result<std::vector<HostTensor>>(const ir::Graph&, const std::vector<HostTensor>&)>;

/// Inputs and outputs of one CPU kernel invocation.
class KernelContext {
 public:
  KernelContext(const ir::Node& node, std::vector<const HostTensor*> inputs,
                std::vector<HostTensor>* outputs, const InferContext* inferred,
                SubgraphRunner run_subgraph)
      : node_(node), inputs_(std::move(inputs)), outputs_(outputs), inferred_(inferred),
        run_subgraph_(std::move(run_subgraph)) {}

  const ir::Node& node() const { return node_; }
  int opset() const { return node_.opset; }
  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_->size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  /// Input i (must exist; check has_input for optional ones).
  const HostTensor& input(size_t i) const { return *inputs_[i]; }
  bool has_output(size_t i) const { return i < node_.outputs.size() && node_.outputs[i] != nullptr; }
  /// Output i, allocated with the dtype and shape found by shape inference. Returns an
  /// undefined tensor when inference could not determine the shape: such kernels call
  /// allocate_output instead.
  HostTensor& output(size_t i);
  /// Output i's dims as found by the executor's shape inference on these inputs (for
  /// kernels that alias an input, e.g. Reshape). Errors: Internal when not concrete.
  Result<std::vector<int64_t>> inferred_dims(size_t i) const;
  /// (Re)allocates output i with explicit dtype and dims.
  HostTensor& allocate_output(size_t i, DataType dtype, std::vector<int64_t> dims);
  /// Sets output i to an existing tensor (e.g. a view of an input for Reshape/Identity).
  void set_output(size_t i, HostTensor t) { (*outputs_)[i] = std::move(t); }

  Result<std::vector<HostTensor>> run_subgraph(const ir::Graph& g, const std::vector<HostTensor>& in) const {
    return run_subgraph_(g, in);
  }
  Status error(ErrorCode code, const std::string& msg, const std::string& hint = {}) const {
    return Status(code, msg, hint, node_.loc());
  }

 private:
  const ir::Node& node_;
  std::vector<const HostTensor*> inputs_;
  std::vector<HostTensor>* outputs_;
  const InferContext* inferred_;
  SubgraphRunner run_subgraph_;
};

using InferFn = Status (*)(InferContext&);
using CpuKernelFn = Status (*)(KernelContext&);
/// Optional: "can this node run here, and if not why" (attribute values the kernel does
/// not implement...). Returns OnnxBadAttribute/OnnxUnsupportedOp with a hint.
using CheckFn = Status (*)(const ir::Node&);

/// One op-table entry. Its opset range is compared with the node's *effective* version:
/// the newest since-version of the op that is <= the model's opset (see
/// onnx_since_version), so an entry written for Add-14 serves models of opset 14 to 28.
struct OpSchema {
  std::string op_type;
  std::string domain;           ///< "" = ai.onnx
  int min_opset = 1;            ///< first op version this entry implements
  int max_opset = 23;           ///< last op version this entry implements
  int min_inputs = 0;
  int max_inputs = 0;           ///< -1 = variadic
  int min_outputs = 1;
  int max_outputs = 1;          ///< -1 = variadic
  InferFn infer = nullptr;
  CpuKernelFn cpu = nullptr;    ///< CPU reference kernel
  CheckFn check = nullptr;
  std::string summary;          ///< one line for `kiln ops`
  std::string family;           ///< file/family name, filled in by the registrar
  /// Deterministic ops can be constant-folded (false for RandomNormal etc.).
  bool foldable = true;
};

class OpRegistry {
 public:
  static OpRegistry& instance();
  /// Adds an entry. Duplicate (domain, op_type) with overlapping opset ranges is a bug and
  /// aborts at start-up (caught by every test).
  void add(OpSchema schema);
  /// Entry implementing `op_type` of `domain` at `opset`; nullptr when none.
  const OpSchema* find(const std::string& domain, const std::string& op_type, int opset) const;
  /// Any entry with that name (to tell "unsupported opset" from "unknown op").
  std::vector<const OpSchema*> find_all(const std::string& domain, const std::string& op_type) const;
  /// All entries, sorted by domain, op_type, min_opset.
  std::vector<const OpSchema*> all() const;

  struct Registrar {
    Registrar(const char* family, void (*fn)(OpRegistry&));
  };

 private:
  std::multimap<std::pair<std::string, std::string>, std::unique_ptr<OpSchema>> entries_;
  std::string current_family_;
};

/// The version of default-domain op `op_type` in effect at model opset `opset`: the
/// largest since-version <= opset from the ONNX operator history (generated from the
/// installed onnx package). Returns `opset` for ops unknown to that history.
int onnx_since_version(const std::string& op_type, int opset);
/// Newest default-domain opset the op history knows (e.g. 28).
int onnx_max_known_opset();

/// Resolves node->schema for every node (recursively into subgraphs). Unknown ops and
/// unsupported opsets are all reported: returns the first error and appends every
/// diagnostic to `diags` when given.
Status resolve_schemas(ir::Graph& g, std::vector<Status>* diags = nullptr);

/// Shape and type inference over a whole graph (recursively). Needs schemas resolved.
/// Values that are constants are passed to inference as known values. Errors name the node.
Status infer_graph(ir::Graph& g);

/// Runs a node's inference with given input types/shapes/values. Used by infer_graph and
/// by the executor (with concrete values).
Status run_infer(const ir::Node& n, InferContext& ctx);

}  // namespace kiln

#define KILN_REGISTER_OPS(family)                                                   \
  static void kiln_register_##family(::kiln::OpRegistry& reg);                      \
  static ::kiln::OpRegistry::Registrar kiln_registrar_##family(#family,             \
                                                               kiln_register_##family); \
  static void kiln_register_##family(::kiln::OpRegistry& reg)
