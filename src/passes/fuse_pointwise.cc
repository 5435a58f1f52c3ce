// fuse_pointwise (level 2, CUDA backend only)
//
// Pattern: a connected group of two or more ONNX pointwise nodes, each one of
//   the ops of the FusedPointwise table (src/ops/fused_pointwise.h, KILN_PW_OPS: Add, Sub,
//   Mul, Div, Pow, PRelu, the unary math ops, the activations, Gelu-20, Clip with constant
//   bounds, Cast between f32/f16/bf16) and the variadic Max, Min, Sum, Mean of >= 2 inputs,
// whose operands and result are f32, f16 or bf16. Groups are grown backwards from an exit
// node (nodes visited in reverse topological order): a producer joins the group when every
// reader of its output is a node input of a group member. Producers that cannot join
// (several readers outside, a graph output) start groups of their own later.
//
// Legality, and why each rule makes the rewrite exact:
//  - Every intermediate value is read only by group members (no graph output, no subgraph
//    capture, no reader outside): nothing else observes a value the fused node no longer
//    writes. Exactly one value leaves the group: the exit's output, which keeps its name (it
//    may be a graph output). So no path leaves the group and re-enters it: the fused node,
//    put in the exit's place, keeps the graph acyclic and topologically sorted.
//  - Every input of the group provably broadcasts to the exit's shape (known ranks; each dim
//    1 or the same as the exit's). Pointwise ops commute with broadcasting, so evaluating
//    every member at each output element's broadcast position computes exactly the
//    broadcast of each intermediate value.
//  - Binary ops from before opset 7 (legacy broadcast/axis attributes) and integer, bool
//    and f64 tensors are left alone: the program computes in f32 with numpy broadcasting.
//  - One-element constants become program constants (Const) when the other inputs still
//    give the exit's shape; other constants stay inputs (the GPU gets them once, as weights).
//  - At most kMaxPwInputs inputs: a producer that would exceed it is not absorbed.
// The fused node rounds only once, at the end, where the unfused graph rounds f16/bf16
// intermediates to their dtype: FP16/BF16 results can only get closer to the f32 result
// (Cast nodes inside the group keep their rounding: RoundF16/RoundBF16 instructions).
//
// Rewrite: the exit node becomes kiln.FusedPointwise named "<first>..<exit>" (the group's
// first and last node names), with the group's inputs and the program; the other members
// are removed.
//
// Why CUDA only: on the GPU each pointwise node is a kernel launch that reads and writes
// its tensors; the fused node is one generated kernel (src/cuda/fused_pointwise.cc) that
// keeps intermediates in registers. The CPU backend keeps the plain ONNX ops, so CPU plans
// do not change with this pass. It runs after fuse_matmul_epilogue and
// fuse_conv_activation, so their epilogues take the activations first.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ops/fused_pointwise.h"
#include "passes/pass.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ops::PwInstr;
using ops::PwOp;
using ops::PwProgram;

/// How one ONNX node becomes instructions.
struct NodeSpec {
  PwOp op = PwOp::kConst;  ///< binary ops fold left over the operands
  float p0 = 0.0f, p1 = 0.0f;
  size_t operands = 0;  ///< leading node inputs read as operands (Clip: 1; bounds are params)
  bool mean = false;    ///< Mean: divide the folded sum by the operand count
};

bool is_fused_dtype(DataType dt) {
  return dt == DataType::kF32 || dt == DataType::kF16 || dt == DataType::kBF16;
}

/// A scalar bound of Clip-11+ from constant input i; nullopt when present but not constant.
std::optional<float> clip_bound(const ir::Node& n, size_t i, float absent) {
  const ir::Value* b = n.input(i);
  if (!b) return absent;
  if (!b->is_constant() || b->constant->numel() != 1) return std::nullopt;
  return static_cast<float>(b->constant->get_f64(0));
}

/// The instruction kind an ONNX op maps to when the table holds exactly one entry for it.
std::optional<PwOp> unique_table_op(const std::string& op_type) {
  std::optional<PwOp> found;
  for (const ops::PwOpInfo& e : ops::pw_ops()) {
    if (op_type != e.onnx) continue;
    if (found) return std::nullopt;
    found = e.op;
  }
  return found;
}

/// How node `n` becomes instructions, or nullopt when it is not fusible.
std::optional<NodeSpec> node_spec(const ir::Node& n) {
  if (!n.domain.empty() || n.outputs.size() != 1 || !n.outputs[0] || !n.subgraphs().empty())
    return std::nullopt;
  if (!is_fused_dtype(n.outputs[0]->dtype)) return std::nullopt;
  const std::string& op = n.op_type;
  NodeSpec s;
  if (op == "Clip") {
    constexpr float kInf = std::numeric_limits<float>::infinity();
    s.op = PwOp::kClip;
    s.operands = 1;
    if (n.opset < 11) {
      s.p0 = n.attr_f("min", -kInf);
      s.p1 = n.attr_f("max", kInf);
    } else {
      auto lo = clip_bound(n, 1, -kInf), hi = clip_bound(n, 2, kInf);
      if (!lo || !hi) return std::nullopt;
      s.p0 = *lo;
      s.p1 = *hi;
    }
  } else if (op == "Gelu") {
    const std::string a = n.attr_s("approximate", "none");
    if (a != "none" && a != "tanh") return std::nullopt;
    s.op = a == "tanh" ? PwOp::kGeluTanh : PwOp::kGelu;
    s.operands = 1;
  } else if (op == "Cast") {
    const DataType to = n.outputs[0]->dtype;
    s.op = to == DataType::kF16    ? PwOp::kRoundF16
           : to == DataType::kBF16 ? PwOp::kRoundBF16
                                   : PwOp::kRoundF32;
    s.operands = 1;
  } else if (op == "Max" || op == "Min" || op == "Sum" || op == "Mean") {
    // One input would be an identity that emits no instruction: identity_elimination's job.
    if (n.inputs.size() < 2) return std::nullopt;
    s.op = op == "Max" ? PwOp::kMax : op == "Min" ? PwOp::kMin : PwOp::kAdd;
    s.mean = op == "Mean";
    s.operands = n.inputs.size();
  } else {
    std::optional<PwOp> t = unique_table_op(op);
    if (!t) return std::nullopt;
    const ops::PwOpInfo& info = ops::pw_op_info(*t);
    if (n.inputs.size() != static_cast<size_t>(info.arity)) return std::nullopt;
    // Before opset 7 binary ops broadcast only with broadcast=1 and an axis (and PRelu's
    // slope was per channel): not numpy semantics.
    if (info.arity == 2 && n.opset < 7) return std::nullopt;
    s.op = *t;
    s.operands = n.inputs.size();
    if (*info.param0) s.p0 = n.attr_f(info.param0, info.default0);
    if (*info.param1) s.p1 = n.attr_f(info.param1, info.default1);
  }
  for (size_t k = 0; k < s.operands; ++k) {
    const ir::Value* v = n.input(k);
    if (!v || !is_fused_dtype(v->dtype)) return std::nullopt;
  }
  return s;
}

/// True when `in` provably broadcasts to `out` without enlarging it (numpy rules).
bool broadcasts_to(const Shape& in, const Shape& out) {
  if (!in.rank_known || !out.rank_known || in.rank() > out.rank()) return false;
  const size_t lead = out.rank() - in.rank();
  for (size_t d = 0; d < in.rank(); ++d) {
    const Dim& a = in.dims[d];
    if (!(a.is_known() && a.value == 1) && !a.same_as(out.dims[lead + d])) return false;
  }
  return true;
}

bool same_shape(const Shape& a, const Shape& b) {
  if (!a.rank_known || !b.rank_known || a.rank() != b.rank()) return false;
  for (size_t d = 0; d < a.rank(); ++d)
    if (!a.dims[d].same_as(b.dims[d])) return false;
  return true;
}

bool is_scalar_constant(const ir::Value* v) {
  return v->is_constant() && v->constant->numel() == 1;
}

using Specs = std::unordered_map<const ir::Node*, NodeSpec>;

/// A group being grown: its members in graph order (the exit last).
struct Group {
  std::vector<ir::Node*> nodes;
  std::unordered_set<const ir::Node*> members;
};

/// The group's input values in the order members first read them.
std::vector<ir::Value*> group_inputs(const std::vector<ir::Node*>& nodes,
                                     const std::unordered_set<const ir::Node*>& members,
                                     const Specs& specs) {
  std::vector<ir::Value*> ins;
  for (const ir::Node* n : nodes) {
    const NodeSpec& s = specs.at(n);
    for (size_t k = 0; k < s.operands; ++k) {
      ir::Value* v = n->inputs[k];
      if (v->producer && members.count(v->producer)) continue;
      if (std::find(ins.begin(), ins.end(), v) == ins.end()) ins.push_back(v);
    }
  }
  return ins;
}

class Grower {
 public:
  Grower(const ir::Graph& g, const UseMap& uses, const Specs& specs,
         const std::unordered_map<const ir::Node*, size_t>& position,
         const std::unordered_set<const ir::Node*>& taken)
      : g_(g), uses_(uses), specs_(specs), position_(position), taken_(taken) {}

  /// The largest group with exit `exit` that the absorption rule (file comment) allows.
  Group grow(ir::Node* exit) const {
    Group grp;
    grp.nodes = {exit};
    grp.members = {exit};
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < grp.nodes.size(); ++i) {
        const ir::Node* m = grp.nodes[i];
        for (size_t k = 0; k < specs_.at(m).operands; ++k) {
          ir::Node* p = m->inputs[k]->producer;
          if (!absorbable(p, grp)) continue;
          std::vector<ir::Node*> nodes = grp.nodes;
          nodes.push_back(p);
          std::unordered_set<const ir::Node*> members = grp.members;
          members.insert(p);
          if (group_inputs(nodes, members, specs_).size() > ops::kMaxPwInputs) continue;
          grp.nodes = std::move(nodes);
          grp.members = std::move(members);
          changed = true;
        }
      }
    }
    std::sort(grp.nodes.begin(), grp.nodes.end(), [&](const ir::Node* a, const ir::Node* b) {
      return position_.at(a) < position_.at(b);
    });
    return grp;
  }

 private:
  // Producer p may join: fusible, free, and every reader of its output is a member's input.
  bool absorbable(ir::Node* p, const Group& grp) const {
    if (!p || grp.members.count(p) || taken_.count(p) || !specs_.count(p)) return false;
    const ir::Value* v = p->outputs[0];
    if (g_.is_output(v)) return false;
    auto it = uses_.find(v);
    if (it == uses_.end()) return false;
    for (const ir::Use& u : it->second)  // implicit inputs (index -1) pin the value
      if (u.index < 0 || !grp.members.count(u.node)) return false;
    return true;
  }

  const ir::Graph& g_;
  const UseMap& uses_;
  const Specs& specs_;
  const std::unordered_map<const ir::Node*, size_t>& position_;
  const std::unordered_set<const ir::Node*>& taken_;
};

/// The program of a legal group and the fused node's inputs; nullopt when the group
/// breaks a legality rule (file comment).
struct Fused {
  PwProgram program;
  std::vector<ir::Value*> inputs;
};

std::optional<Fused> build_program(const Group& grp, const Specs& specs) {
  const ir::Node* exit = grp.nodes.back();
  const ir::Value* out = exit->outputs[0];
  const std::vector<ir::Value*> ext = group_inputs(grp.nodes, grp.members, specs);
  for (const ir::Value* v : ext)
    if (!broadcasts_to(v->shape, out->shape)) return std::nullopt;
  // Scalar constants become Const instructions when the remaining inputs alone still
  // broadcast to the exit's shape (a [1,1,1] constant may be what raises the rank).
  std::optional<Shape> rest;
  for (const ir::Value* v : ext) {
    if (is_scalar_constant(v)) continue;
    rest = rest ? broadcast_shapes(*rest, v->shape) : std::optional<Shape>(v->shape);
    if (!rest) return std::nullopt;
  }
  const bool fold_scalars = rest && same_shape(*rest, out->shape);

  Fused f;
  PwProgram& p = f.program;
  p.out_dtype = out->dtype;
  std::unordered_map<const ir::Value*, int32_t> reg;
  auto emit = [&](PwInstr ins) {
    p.code.push_back(ins);
    return static_cast<int32_t>(p.code.size() - 1);
  };
  for (ir::Value* v : ext) {
    if (fold_scalars && is_scalar_constant(v)) {
      reg[v] = emit({PwOp::kConst, -1, -1, static_cast<float>(v->constant->get_f64(0)), 0.0f});
    } else {
      reg[v] = emit({PwOp::kInput, static_cast<int32_t>(f.inputs.size()), -1, 0.0f, 0.0f});
      f.inputs.push_back(v);
    }
  }
  for (const ir::Node* n : grp.nodes) {
    const NodeSpec& s = specs.at(n);
    int32_t acc = reg.at(n->inputs[0]);
    if (ops::pw_op_info(s.op).arity == 1) {
      acc = emit({s.op, acc, -1, s.p0, s.p1});
    } else {
      for (size_t k = 1; k < s.operands; ++k) acc = emit({s.op, acc, reg.at(n->inputs[k]), 0, 0});
    }
    if (s.mean) {
      const int32_t count = emit({PwOp::kConst, -1, -1, static_cast<float>(s.operands), 0.0f});
      acc = emit({PwOp::kDiv, acc, count, 0.0f, 0.0f});
    }
    reg[n->outputs[0]] = acc;
  }
  if (p.code.size() > ops::kMaxPwInstructions) return std::nullopt;
  return f;
}

/// Turns the exit into the fused node and removes the other members.
void rewrite(ir::Graph& g, const Group& grp, Fused f) {
  ir::Node* exit = grp.nodes.back();
  const std::string name = grp.nodes.front()->name + ".." + exit->name;
  for (ir::Node* n : grp.nodes)
    if (n != exit) g.remove_node(n);
  exit->name = name;
  retype_node(*exit, ops::kFusedPointwiseDomain, ops::kFusedPointwiseOp, ops::kFusedPointwiseVersion);
  exit->inputs = std::move(f.inputs);
  exit->attrs.clear();
  ops::write_pw_program(*exit, f.program);
}

class FusePointwise : public Pass {
 public:
  const char* name() const override { return "fuse_pointwise"; }
  int level() const override { return 2; }
  bool enabled_for(const BuilderConfig& cfg) const override {
    return cfg.backend == Backend::kCuda;
  }

  Status apply(ir::Graph& g, bool& changed) override {
    const UseMap uses = g.build_uses();
    const std::vector<ir::Node*> nodes = node_snapshot(g);
    std::unordered_map<const ir::Node*, size_t> position;
    Specs specs;
    for (size_t i = 0; i < nodes.size(); ++i) {
      position[nodes[i]] = i;
      if (auto s = node_spec(*nodes[i])) specs.emplace(nodes[i], *s);
    }
    std::unordered_set<const ir::Node*> taken;
    const Grower grower(g, uses, specs, position, taken);
    std::vector<std::pair<Group, Fused>> fusions;
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
      ir::Node* n = *it;
      if (taken.count(n) || !specs.count(n)) continue;
      Group grp = grower.grow(n);
      if (grp.nodes.size() < 2) continue;
      std::optional<Fused> f = build_program(grp, specs);
      if (!f) continue;
      taken.insert(grp.members.begin(), grp.members.end());
      fusions.emplace_back(std::move(grp), std::move(*f));
    }
    // Rewrites wait until every group is chosen: specs and uses point into the nodes.
    for (auto& [grp, f] : fusions) rewrite(g, grp, std::move(f));
    if (!fusions.empty()) g.remove_unused_values();
    changed |= !fusions.empty();
    return Status::ok();
  }
};

}  // namespace

// After fuse_matmul_epilogue (600) and fuse_conv_activation (700).
KILN_REGISTER_PASS(FusePointwise, 800);

}  // namespace kiln::passes
