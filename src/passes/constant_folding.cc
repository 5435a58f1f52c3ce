// constant_folding (level 1)
//
// Pattern: (a) a node whose inputs are all constants, whose op-table entry is foldable
// (deterministic) and has a CPU kernel, and which owns no subgraph; (b) Shape or Size of
// a tensor whose shape (or the requested slice of it, Shape-15 start/end) is static at
// build time, whatever its data. (b) is what removes the Shape→Gather→Concat→Reshape
// chains of exported models once input shapes are fixed: Shape becomes a constant, (a)
// then folds the chain, and Reshape's target becomes constant.
//
// Legality: (a) runs the very kernel the runtime would run, on the very same inputs, so
// the result is identical. (b) reads only dims that shape inference derived from the
// engine's fixed input dims (set_input rejects inputs whose fixed dims differ). Not folded:
// DequantizeLinear, whose int8 weight input the quantization stage needs to keep int8 kernels;
// outputs larger than kMaxGrowthBytes that are also larger than the inputs
// (ConstantOfShape/Expand/Tile results would bloat the plan: the runtime materialises them more
// cheaply); nodes whose kernel fails (left for the runtime to report with full context).
//
// Rewrite: the node's output values become constants in place and the node is removed.
// Values keep their names and identity, so graph outputs and subgraph captures (bound by
// name) are unaffected.
#include <algorithm>
#include <string_view>

#include "ops/helpers.h"
#include "ops/registry.h"
#include "passes/pass.h"
#include "passes/pass_util.h"
#include "runtime/executor.h"

namespace kiln::passes {
namespace {

constexpr size_t kMaxGrowthBytes = size_t{16} << 20;

using Folded = std::vector<HostTensor>;

// Shape of a statically shaped input (Shape-15 start/end via ops::shape_range).
std::optional<Folded> fold_shape(const ir::Node& n) {
  const Shape& s = n.inputs[0]->shape;
  if (!s.rank_known) return std::nullopt;
  auto [start, end] = ops::shape_range(n, static_cast<int64_t>(s.rank()));
  std::vector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) {
    if (!s.dims[i].is_known()) return std::nullopt;
    dims.push_back(s.dims[i].value);
  }
  int64_t len = static_cast<int64_t>(dims.size());
  return Folded{HostTensor::from_vector<int64_t>(DataType::kI64, {len}, dims)};
}

std::optional<Folded> fold_size(const ir::Node& n) {
  const Shape& s = n.inputs[0]->shape;
  if (!s.is_static()) return std::nullopt;
  return Folded{HostTensor::from_vector<int64_t>(DataType::kI64, {}, {s.numel()})};
}

struct ShapeQuery {
  std::string_view op_type;
  std::optional<Folded> (*fold)(const ir::Node&);
};
constexpr ShapeQuery kShapeQueries[] = {{"Shape", fold_shape}, {"Size", fold_size}};

// Ops never folded even with constant inputs (see the header comment for why).
constexpr std::string_view kKeep[] = {"DequantizeLinear"};

bool foldable(const ir::Node& n) {
  if (!n.schema || !n.schema->cpu || !n.schema->foldable) return false;
  if (!n.subgraphs().empty() || !n.implicit_inputs.empty()) return false;
  if (n.domain.empty())
    for (auto k : kKeep)
      if (k == n.op_type) return false;
  return true;
}

std::optional<Folded> fold_shape_query(const ir::Node& n) {
  if (!n.domain.empty() || !n.input(0)) return std::nullopt;
  for (const auto& q : kShapeQueries)
    if (q.op_type == n.op_type) return q.fold(n);
  return std::nullopt;
}

bool too_big(size_t out_bytes, size_t in_bytes) {
  return out_bytes > kMaxGrowthBytes && out_bytes > in_bytes;
}

std::optional<Folded> fold_by_kernel(const ir::Node& n) {
  std::vector<const HostTensor*> in;
  size_t in_bytes = 0;
  for (const ir::Value* v : n.inputs) {
    if (v && !v->is_constant()) return std::nullopt;
    in.push_back(v ? v->constant.get() : nullptr);
    if (v) in_bytes += v->constant->bytes();
  }
  // Predict the output size from inference, so huge outputs are never even computed.
  size_t predicted = 0;
  for (const ir::Value* o : n.outputs) {
    if (!o) continue;
    int64_t numel = o->shape.numel();
    if (numel >= 0) predicted += static_cast<size_t>(numel) * dtype_size(o->dtype);
  }
  if (too_big(predicted, in_bytes)) return std::nullopt;
  auto r = runtime::run_node(n, in);
  if (!r.is_ok()) return std::nullopt;
  Folded out = std::move(r).value();
  size_t actual = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!n.output(i)) continue;
    if (!out[i].defined()) return std::nullopt;
    actual += out[i].bytes();
  }
  if (too_big(actual, in_bytes)) return std::nullopt;
  return out;
}

class ConstantFolding : public Pass {
 public:
  const char* name() const override { return "constant_folding"; }
  int level() const override { return 1; }

  Status apply(ir::Graph& g, bool& changed) override {
    bool any = false;
    // Topological order: a node folded here makes its readers' inputs constant, so whole
    // constant chains fold in one sweep.
    for (ir::Node* n : node_snapshot(g)) any |= fold_node(g, n);
    if (any) g.remove_unused_values();
    changed |= any;
    return Status::ok();
  }
};

}  // namespace

bool fold_node(ir::Graph& g, ir::Node* n) {
  if (!foldable(*n)) return false;
  std::optional<Folded> folded = fold_shape_query(*n);
  if (!folded) folded = fold_by_kernel(*n);
  if (!folded) return false;
  std::vector<ir::Value*> outs = n->outputs;
  g.remove_node(n);
  for (size_t i = 0; i < outs.size() && i < folded->size(); ++i) {
    if (!outs[i]) continue;
    HostTensor& t = (*folded)[i];
    outs[i]->dtype = t.dtype();
    outs[i]->shape = t.shape();
    outs[i]->constant = std::make_shared<const HostTensor>(std::move(t));
  }
  return true;
}

KILN_REGISTER_PASS(ConstantFolding, 300);

}  // namespace kiln::passes
