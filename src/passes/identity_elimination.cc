// identity_elimination (level 1)
//
// Pattern: a node of the default domain whose output 0 is, element for element, its
// input 0 (same dtype, same shape, same data), per the table below: Identity; Dropout in
// inference; Cast/CastLike to the input's own dtype; shape-only ops (Reshape, Flatten,
// Squeeze, Unsqueeze, Expand, Tile) whose static output shape equals the input's;
// Transpose that moves no data; Pad with all-zero pads; Slice with unit steps whose
// static output shape equals the input's; single-input Concat/Sum/Mean/Max/Min.
//
// Legality: each table entry states why its output equals its input. Every other output
// of the node (Dropout's mask) must be unused. Names that the outside world sees (graph
// outputs, subgraph captures) are preserved: bypass_node lets the input's producer write
// the pinned value instead, and keeps the node when that is impossible (the graph output
// is a graph input or a constant, e.g. `y = Identity(x)`).
//
// Rewrite: readers of the output read the input (or the producer writes the output), the
// node is removed.
#include <algorithm>
#include <numeric>
#include <string_view>

#include "passes/pass.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

// Reshape/Flatten/Squeeze/Unsqueeze never move data (row-major reinterpretation), and an
// Expand or Tile whose output has the input's shape broadcasts/repeats nothing.
bool same_static_shape(const ir::Node& n) {
  const Shape& a = n.inputs[0]->shape;
  const Shape& b = n.outputs[0]->shape;
  return a.is_static() && b.is_static() && a.concrete() == b.concrete();
}

// The ints of constant input i (nullopt when absent or not constant).
std::optional<std::vector<int64_t>> const_ints(const ir::Node& n, size_t i) {
  const ir::Value* v = n.input(i);
  if (!v || !v->is_constant()) return std::nullopt;
  return v->constant->to_i64_vector();
}

bool all_equal(const std::vector<int64_t>& v, int64_t x) {
  return std::all_of(v.begin(), v.end(), [x](int64_t e) { return e == x; });
}

// Dropout is the identity at inference: opset < 7 only with is_test=1; opsets 7-11 are
// inference-only; from 12 unless input 2 (training_mode) may be true.
bool dropout_is_inference(const ir::Node& n) {
  if (n.opset < 7) return n.attr_i("is_test", 0) != 0;
  if (!n.has_input(2)) return true;
  auto t = const_ints(n, 2);
  return t && all_equal(*t, 0);
}

// Identity, and Cast/CastLike whose target dtype is the input's own (ONNX: casting to the
// same type is the identity; `saturate` only affects narrowing to fp8): eliminate_one
// already requires equal input and output dtypes, so nothing more to check.
bool always(const ir::Node&) { return true; }

// A Transpose moves no data when its perm is the identity, or when the shapes are static
// and equal and the axes longer than 1 keep their relative order (size-1 axes can be
// permuted freely without changing the row-major element order).
bool transpose_moves_nothing(const ir::Node& n) {
  const Shape& s = n.inputs[0]->shape;
  if (!n.has_attr("perm")) return s.rank_known && s.rank() <= 1;
  std::vector<int64_t> perm = n.attr_ints("perm");
  std::vector<int64_t> iota(perm.size());
  std::iota(iota.begin(), iota.end(), 0);
  if (perm == iota) return true;
  if (!same_static_shape(n) || perm.size() != s.rank()) return false;
  int64_t last = -1;
  for (int64_t axis : perm) {
    if (axis < 0 || axis >= static_cast<int64_t>(s.rank())) return false;
    if (s.dims[axis].value == 1) continue;
    if (axis < last) return false;
    last = axis;
  }
  return true;
}

// Pad with zero padding on every side adds and removes nothing, whatever the mode.
bool pads_all_zero(const ir::Node& n) {
  if (n.opset < 11) return n.has_attr("pads") && all_equal(n.attr_ints("pads"), 0);
  auto pads = const_ints(n, 1);
  return pads && all_equal(*pads, 0);
}

// With unit steps, an output as long as the input on every axis can only start at 0:
// the Slice copies everything in order. (A step of -1 would reverse with the same shape.)
bool slice_takes_everything(const ir::Node& n) {
  if (!same_static_shape(n)) return false;
  if (n.opset < 10 || !n.has_input(4)) return true;
  auto steps = const_ints(n, 4);
  return steps && all_equal(*steps, 1);
}

// Concat, Sum, Mean, Max and Min of a single tensor return it unchanged.
bool single_input(const ir::Node& n) {
  return n.inputs.size() == 1;
}

struct Rule {
  std::string_view op_type;
  bool (*legal)(const ir::Node&);
};

constexpr Rule kRules[] = {
    {"Identity", always},
    {"Dropout", dropout_is_inference},
    {"Cast", always},
    {"CastLike", always},
    {"Reshape", same_static_shape},
    {"Flatten", same_static_shape},
    {"Squeeze", same_static_shape},
    {"Unsqueeze", same_static_shape},
    {"Expand", same_static_shape},
    {"Tile", same_static_shape},
    {"Transpose", transpose_moves_nothing},
    {"Pad", pads_all_zero},
    {"Slice", slice_takes_everything},
    {"Concat", single_input},
    {"Sum", single_input},
    {"Mean", single_input},
    {"Max", single_input},
    {"Min", single_input},
};

const Rule* find_rule(const ir::Node& n) {
  if (!n.domain.empty()) return nullptr;
  for (const Rule& r : kRules)
    if (r.op_type == n.op_type) return &r;
  return nullptr;
}

// Bypasses `n` when a rule proves its output 0 equals its input 0.
bool eliminate_one(ir::Graph& g, const UseMap& uses, ir::Node* n) {
  const Rule* rule = find_rule(*n);
  if (!rule || !n->input(0) || !n->output(0) || !n->subgraphs().empty()) return false;
  ir::Value* in = n->inputs[0];
  ir::Value* out = n->outputs[0];
  if (in->dtype == DataType::kUndefined || in->dtype != out->dtype) return false;
  if (in->shape.is_static() && out->shape.is_static() &&
      in->shape.concrete() != out->shape.concrete())
    return false;
  for (size_t i = 1; i < n->outputs.size(); ++i)
    if (!is_unused(g, uses, n->outputs[i])) return false;
  return rule->legal(*n) && bypass_node(g, n, in, out);
}

class IdentityElimination : public Pass {
 public:
  const char* name() const override { return "identity_elimination"; }
  int level() const override { return 1; }

  Status apply(ir::Graph& g, bool& changed) override {
    // Uses only decide whether extra outputs (Dropout's mask) are read; bypassing other
    // nodes never makes such an unread output read, so one snapshot suffices.
    if (!rewrite_each_node(g, eliminate_one)) return Status::ok();
    KILN_RETURN_IF_ERROR(g.topo_sort());
    changed = true;
    return Status::ok();
  }
};

}  // namespace

KILN_REGISTER_PASS(IdentityElimination, 200);

}  // namespace kiln::passes
