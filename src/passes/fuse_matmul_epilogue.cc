// fuse_matmul_epilogue (level 2, CUDA backend only)
//
// Pattern: MatMul(A, B) with B a constant matrix (2-D weights), whose output is read only by
// an Add with a constant bias holding one value per output column ([N], [1, N], [1, 1, N],
// ...: all dims 1 but the last, rank not above the MatMul's), then optionally an activation
// on the Add's output: Relu, Gelu-20 (approximate "none" or "tanh"), or the erf GELU as
// exporters write it out, x·0.5·(1 + erf(x/√2)):
//   Div(x, √2) | Mul(x, 1/√2) → Erf → Add(·, 1) → then, in any of the three groupings,
//   Mul(x, ·) → Mul(·, 0.5)   or   Mul(·, 0.5) → Mul(x, ·)   or   Mul(Mul(x, 0.5), ·).
//
// Legality: FusedMatMul computes exactly activation(MatMul(A, B) + bias) (src/ops/
// fused_matmul.cc), the same function as the matched nodes. Every intermediate value is read
// only inside the pattern (one reader; x of the erf GELU by exactly its two pattern readers)
// and is no graph output or subgraph capture, so no one else sees it disappear. The final
// value keeps its name, so it may be a graph output. Constants of the erf GELU must equal
// √2, 1 and 0.5 to the precision of their dtype. Without a matching activation, MatMul +
// bias alone are fused and the Add's output may have any readers.
//
// Why CUDA only: the fused node is one cuBLASLt GEMM with a bias/activation epilogue there;
// the CPU backend gains nothing, and its plans must stay exactly as before.
//
// Rewrite: one FusedMatMul(A, B, bias[N]) {activation, approximate} (domain "kiln") named
// after the MatMul writes the final value; the matched nodes are removed.
#include <cmath>
#include <optional>
#include <unordered_set>

#include "ops/matmul.h"
#include "passes/pass.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

bool is_op(const ir::Node* n, const char* op) {
  return n && n->domain.empty() && n->op_type == op && n->outputs.size() == 1 && n->output(0);
}

bool is_gemm_float(DataType dt) {
  return dt == DataType::kF32 || dt == DataType::kF16 || dt == DataType::kBF16 ||
         dt == DataType::kF64;
}

/// The only node reading `v` (see has_single_reader), or null.
ir::Node* sole_reader(const ir::Graph& g, const UseMap& uses, const ir::Value* v) {
  return has_single_reader(g, uses, v) ? uses.at(v)[0].node : nullptr;
}

/// The operand of binary node `n` other than `x`; null when x is not one of its operands.
ir::Value* other_operand(const ir::Node* n, const ir::Value* x) {
  if (n->inputs.size() != 2) return nullptr;
  if (n->inputs[0] == x) return n->inputs[1];
  if (n->inputs[1] == x) return n->inputs[0];
  return nullptr;
}

/// True when `v` is a one-element constant equal to `want` to the precision of `dt`
/// (exporters store √2 and friends rounded to the model's float type).
bool is_scalar(const ir::Value* v, double want, DataType dt) {
  if (!v || !v->is_constant() || v->constant->numel() != 1 || v->constant->dtype() != dt)
    return false;
  const double tol = dt == DataType::kF16 ? 2e-3 : dt == DataType::kBF16 ? 1.6e-2 : 1e-6;
  return std::fabs(v->constant->get_f64(0) - want) <= tol * std::fabs(want);
}

/// The bias as a [n] tensor when constant `t` adds one value per column to a MatMul output
/// of rank `rank` without broadcasting it to a larger shape.
std::optional<HostTensor> column_bias(const HostTensor& t, size_t rank, int64_t n) {
  if (t.numel() != n || t.rank() > rank) return std::nullopt;
  if (t.rank() > 0 && t.dims().back() != n) return std::nullopt;
  return t.reshaped({n});
}

/// An activation found after the bias: its attributes, nodes and final value.
struct Activation {
  std::string name;  ///< "" (none), "Relu", "Gelu"
  std::string approximate = "none";
  std::vector<ir::Node*> nodes;
  ir::Value* result = nullptr;
};

/// The erf GELU subgraph applied to `x` (see the file comment), or nullopt.
std::optional<Activation> match_erf_gelu(const ir::Graph& g, const UseMap& uses, ir::Value* x,
                                         DataType dt) {
  auto it = uses.find(x);
  if (it == uses.end() || it->second.size() != 2 || g.is_output(x)) return std::nullopt;
  const auto& u = it->second;
  if (u[0].index < 0 || u[1].index < 0 || u[0].node == u[1].node) return std::nullopt;
  for (int i = 0; i < 2; ++i) {
    ir::Node* scale = u[i].node;  // x / √2
    ir::Node* other = u[1 - i].node;
    const bool scaled = (is_op(scale, "Div") && scale->inputs.size() == 2 &&
                         scale->inputs[0] == x && is_scalar(scale->inputs[1], M_SQRT2, dt)) ||
                        (is_op(scale, "Mul") && is_scalar(other_operand(scale, x), M_SQRT1_2, dt));
    if (!scaled) continue;
    ir::Node* erf = sole_reader(g, uses, scale->outputs[0]);
    if (!is_op(erf, "Erf")) continue;
    ir::Node* plus1 = sole_reader(g, uses, erf->outputs[0]);
    if (!is_op(plus1, "Add") || !is_scalar(other_operand(plus1, erf->outputs[0]), 1.0, dt))
      continue;
    ir::Value* one_plus = plus1->outputs[0];
    ir::Node* p = sole_reader(g, uses, one_plus);
    if (!is_op(p, "Mul")) continue;
    Activation act{"Gelu", "none", {scale, erf, plus1}, nullptr};
    if (p == other && other_operand(p, x) == one_plus) {  // (x · (1 + erf)) · 0.5
      ir::Node* q = sole_reader(g, uses, p->outputs[0]);
      if (!is_op(q, "Mul") || !is_scalar(other_operand(q, p->outputs[0]), 0.5, dt)) continue;
      act.nodes.insert(act.nodes.end(), {p, q});
      act.result = q->outputs[0];
    } else if (is_scalar(other_operand(p, one_plus), 0.5, dt)) {  // x · ((1 + erf) · 0.5)
      if (!is_op(other, "Mul") || other_operand(other, x) != p->outputs[0] ||
          !has_single_reader(g, uses, p->outputs[0]))
        continue;
      act.nodes.insert(act.nodes.end(), {p, other});
      act.result = other->outputs[0];
    } else {  // (x · 0.5) · (1 + erf)
      if (!is_op(other, "Mul") || !is_scalar(other_operand(other, x), 0.5, dt) ||
          sole_reader(g, uses, other->outputs[0]) != p ||
          other_operand(p, other->outputs[0]) != one_plus)
        continue;
      act.nodes.insert(act.nodes.end(), {other, p});
      act.result = p->outputs[0];
    }
    return act;
  }
  return std::nullopt;
}

/// The activation reading the biased value `x` (none when nothing matches).
Activation match_activation(const ir::Graph& g, const UseMap& uses, ir::Value* x, DataType dt) {
  if (ir::Node* r = sole_reader(g, uses, x)) {
    if (is_op(r, "Relu")) return {"Relu", "none", {r}, r->outputs[0]};
    const std::string approx = r->attr_s("approximate", "none");
    if (is_op(r, "Gelu") && (approx == "none" || approx == "tanh"))
      return {"Gelu", approx, {r}, r->outputs[0]};
  }
  if (auto gelu = match_erf_gelu(g, uses, x, dt)) return *gelu;
  return {"", "none", {}, x};
}

/// Fuses the pattern starting at MatMul `mm`; false when it does not match. Removes only
/// nodes of the pattern, which the caller then skips.
bool fuse_one(ir::Graph& g, const UseMap& uses, ir::Node* mm,
              std::unordered_set<const ir::Node*>& removed) {
  if (!is_op(mm, "MatMul") || mm->inputs.size() != 2) return false;
  ir::Value *a = mm->inputs[0], *b = mm->inputs[1], *y = mm->outputs[0];
  if (!a || !b || !b->is_constant() || b->constant->rank() != 2 || !y->shape.rank_known)
    return false;
  const DataType dt = b->constant->dtype();
  if (!is_gemm_float(dt) || a->dtype != dt) return false;
  ir::Node* add = sole_reader(g, uses, y);
  if (!is_op(add, "Add")) return false;
  ir::Value* k = other_operand(add, y);
  if (!k || k == y || !k->is_constant() || k->constant->dtype() != dt) return false;
  auto bias = column_bias(*k->constant, y->shape.rank(), b->constant->dims()[1]);
  if (!bias) return false;
  Activation act = match_activation(g, uses, add->outputs[0], dt);

  const std::string name = mm->name;
  ir::Value* bias_value = k->constant->rank() == 1
                              ? k
                              : g.add_constant(g.unique_name(k->name + "_row"), std::move(*bias));
  std::vector<ir::Node*> dead = {mm, add};
  dead.insert(dead.end(), act.nodes.begin(), act.nodes.end());
  for (ir::Node* n : dead) {
    removed.insert(n);
    g.remove_node(n);
  }
  ir::Node* f =
      g.add_node("FusedMatMul", name, {a, b, bias_value}, {act.result}, ops::kFusedMatMulDomain, 1);
  f->attrs["activation"] = ir::Attribute::from_string(act.name);
  if (act.name == "Gelu") f->attrs["approximate"] = ir::Attribute::from_string(act.approximate);
  retype_node(*f, ops::kFusedMatMulDomain, "FusedMatMul", 1);
  g.opset_imports.emplace(ops::kFusedMatMulDomain, 1);
  return true;
}

class FuseMatMulEpilogue : public Pass {
 public:
  const char* name() const override { return "fuse_matmul_epilogue"; }
  int level() const override { return 2; }
  bool enabled_for(const BuilderConfig& cfg) const override {
    return cfg.backend == Backend::kCuda;
  }

  Status apply(ir::Graph& g, bool& changed) override {
    // One use map for the sweep: a fusion only rewires values inside its own pattern, so
    // the reader counts other matches rely on stay true. Removed nodes are skipped.
    const UseMap uses = g.build_uses();
    std::unordered_set<const ir::Node*> removed;
    bool any = false;
    for (ir::Node* n : node_snapshot(g))
      if (!removed.count(n)) any |= fuse_one(g, uses, n, removed);
    if (!any) return Status::ok();
    g.remove_unused_values();
    KILN_RETURN_IF_ERROR(g.topo_sort());
    changed = true;
    return Status::ok();
  }
};

}  // namespace

KILN_REGISTER_PASS(FuseMatMulEpilogue, 600);

}  // namespace kiln::passes
