// fuse_conv_activation (level 2, CUDA backend only)
//
// Pattern: an ONNX Conv (f32, f16 or bf16) followed by a chain of
//   [Add of a per-channel constant]  → bias (only when W and B are constants)
//   [Add of a tensor Z of exactly the Conv output's shape and dtype] → residual
//   [Relu | LeakyRelu | Clip with constant bounds | Sigmoid | HardSwish | Mul(x, Sigmoid(x))]
// in that order, each link optional but at least one present.
//
// Legality: each intermediate value has exactly one reader (Mul(x, Sigmoid(x)) reads x
// twice: x's readers must be exactly that Sigmoid and that Mul) and is not a graph output
// or a subgraph capture, so nothing else observes it. Z must be a graph input, a constant,
// or produced by a node before the Conv: the fused node takes the Conv's place in the node
// order, so the graph stays topologically sorted. All values keep the Conv's dtype and
// shape (per_channel_values refuses constants that would broadcast the output larger).
//
// Rewrite: the Conv becomes kiln.FusedConv (src/ops/fused_conv.h) with inputs X, W, B, Z,
// the Conv's attributes plus the activation, and writes the chain's last value, which keeps
// its name; the chain's nodes are removed. A chain of a bias Add alone leaves an ONNX Conv
// with the folded bias (fold_add_mul_into_conv's rewrite).
//
// Why CUDA only: cuDNN runs the epilogue inside the convolution's kernel (runtime fusion)
// or in one extra pass over the output, saving one read and write of the activation per
// fused op. The CPU backend would gain nothing and keeps plain ONNX ops, so CPU plans do
// not change with this pass.
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "ops/fused_conv.h"
#include "passes/pass.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ops::FusedActivation;
using ops::FusedEpilogue;

/// What a matched chain absorbs; the nodes are listed in chain order.
struct Chain {
  std::optional<ConvWeights> bias_conv;  ///< set when a bias Add is absorbed
  std::vector<double> bias;              ///< the bias Add's per-channel constant
  ir::Value* residual = nullptr;
  FusedEpilogue epilogue;
  std::vector<ir::Node*> nodes;  ///< absorbed nodes; the last one writes `result`
  ir::Value* result = nullptr;
};

bool is_onnx(const ir::Node* n, std::string_view op) {
  return n->domain.empty() && n->op_type == op;
}

bool same_static_shape(const ir::Value* a, const ir::Value* b) {
  auto da = a->shape.concrete(), db = b->shape.concrete();
  return da && db && *da == *db;
}

// The node reading `v` when it has exactly one reader and no pinned name; null otherwise.
// Nodes in `removed` (absorbed earlier in this sweep) are compared, never dereferenced.
ir::Node* single_reader(const ir::Graph& g, const UseMap& uses, const ir::Value* v,
                        const std::unordered_set<const ir::Node*>& removed) {
  if (!has_single_reader(g, uses, v)) return nullptr;
  ir::Node* r = uses.at(v)[0].node;
  return removed.count(r) ? nullptr : r;
}

// The other input of binary node `n` reading `v`, or null (v read twice, or not binary).
ir::Value* other_operand(const ir::Node* n, const ir::Value* v) {
  if (n->inputs.size() != 2 || n->outputs.size() != 1 || !n->outputs[0]) return nullptr;
  if (n->inputs[0] == v && n->inputs[1] != v) return n->inputs[1];
  if (n->inputs[1] == v && n->inputs[0] != v) return n->inputs[0];
  return nullptr;
}

// A scalar bound of Clip from its constant input i; nullopt when present but not constant.
std::optional<float> clip_bound(const ir::Node* n, size_t i, float absent) {
  const ir::Value* b = n->input(i);
  if (!b) return absent;
  if (!b->is_constant() || b->constant->numel() != 1) return std::nullopt;
  return static_cast<float>(b->constant->get_f64(0));
}

// Matches an activation node `n` reading `x` (x's readers are `readers`). On success sets
// the epilogue and appends the absorbed nodes; returns the activation's output.
ir::Value* match_activation(const ir::Graph& g, const UseMap& uses, ir::Value* x,
                            const std::unordered_set<const ir::Node*>& removed, Chain& c) {
  auto it = uses.find(x);
  if (it == uses.end() || name_is_pinned(g, x)) return nullptr;
  const std::vector<ir::Use>& readers = it->second;
  for (const ir::Use& u : readers)
    if (u.index < 0 || removed.count(u.node)) return nullptr;
  // x * Sigmoid(x): x has exactly the two readers Sigmoid and Mul.
  if (readers.size() == 2) {
    for (int s = 0; s < 2; ++s) {
      ir::Node* sig = readers[s].node;
      ir::Node* mul = readers[1 - s].node;
      if (!is_onnx(sig, "Sigmoid") || !is_onnx(mul, "Mul") || sig->outputs.size() != 1) continue;
      ir::Value* sx = sig->outputs[0];
      if (!sx || other_operand(mul, x) != sx || single_reader(g, uses, sx, removed) != mul)
        continue;
      c.epilogue.act = FusedActivation::kSiLU;
      c.nodes.push_back(sig);
      c.nodes.push_back(mul);
      return mul->outputs[0];
    }
    return nullptr;
  }
  if (readers.size() != 1) return nullptr;
  ir::Node* n = readers[0].node;
  if (!n->domain.empty() || n->outputs.size() != 1 || !n->outputs[0] || n->inputs.empty() ||
      n->inputs[0] != x)
    return nullptr;
  FusedEpilogue e;
  if (n->op_type == "Relu" && n->inputs.size() == 1) {
    e.act = FusedActivation::kRelu;
  } else if (n->op_type == "LeakyRelu" && n->inputs.size() == 1) {
    e.act = FusedActivation::kLeakyRelu;
    e.p0 = n->attr_f("alpha", 0.01f);
  } else if (n->op_type == "Sigmoid" && n->inputs.size() == 1) {
    e.act = FusedActivation::kSigmoid;
  } else if (n->op_type == "HardSwish" && n->inputs.size() == 1) {
    e.act = FusedActivation::kHardSwish;
  } else if (n->op_type == "Clip") {
    constexpr float kInf = std::numeric_limits<float>::infinity();
    e.act = FusedActivation::kClip;
    if (n->opset < 11) {
      e.p0 = n->attr_f("min", -kInf);
      e.p1 = n->attr_f("max", kInf);
    } else {
      auto lo = clip_bound(n, 1, -kInf), hi = clip_bound(n, 2, kInf);
      if (!lo || !hi) return nullptr;
      e.p0 = *lo;
      e.p1 = *hi;
    }
  } else {
    return nullptr;
  }
  c.epilogue = e;
  c.nodes.push_back(n);
  return n->outputs[0];
}

// Matches the chain after Conv `conv`; nullopt when nothing fuses.
std::optional<Chain> match_chain(const ir::Graph& g, const UseMap& uses, ir::Node* conv,
                                 const std::unordered_map<const ir::Node*, size_t>& position,
                                 const std::unordered_set<const ir::Node*>& removed) {
  Chain c;
  ir::Value* cur = conv->outputs[0];
  const DataType dt = cur->dtype;
  const size_t rank = cur->shape.rank_known ? cur->shape.rank() : 0;
  auto keeps_type = [&](const ir::Node* n) {
    const ir::Value* out = n->outputs[0];
    return out->dtype == dt && same_static_shape(out, cur);
  };
  // Bias: Add(conv, per-channel constant), folded into a constant B.
  if (ir::Node* n = single_reader(g, uses, cur, removed); n && is_onnx(n, "Add")) {
    ir::Value* k = other_operand(n, cur);
    auto cw = match_conv_with_constant_weights(conv);
    if (k && k->is_constant() && k->dtype == dt && cw && keeps_type(n)) {
      if (auto kv = per_channel_values(*k->constant, rank, cw->out_channels)) {
        c.bias_conv = cw;
        c.bias = *kv;
        c.nodes.push_back(n);
        cur = n->outputs[0];
      }
    }
  }
  // Residual: Add(cur, Z) with Z of cur's exact shape, available before the Conv.
  if (ir::Node* n = single_reader(g, uses, cur, removed); n && is_onnx(n, "Add")) {
    ir::Value* z = other_operand(n, cur);
    bool earlier = z && (!z->producer || (position.count(z->producer) &&
                                          position.at(z->producer) < position.at(conv)));
    if (earlier && z->dtype == dt && same_static_shape(z, cur) && keeps_type(n)) {
      c.residual = z;
      c.nodes.push_back(n);
      cur = n->outputs[0];
    }
  }
  if (ir::Value* out = match_activation(g, uses, cur, removed, c)) {
    if (out->dtype != dt || !same_static_shape(out, cur)) return std::nullopt;
    cur = out;
  }
  if (c.nodes.empty()) return std::nullopt;
  c.result = cur;
  return c;
}

bool is_fusable_conv(const ir::Node* n) {
  if (!is_onnx(n, "Conv") || n->outputs.size() != 1 || !n->outputs[0] || n->inputs.size() < 2)
    return false;
  const DataType dt = n->outputs[0]->dtype;
  return dt == DataType::kF32 || dt == DataType::kF16 || dt == DataType::kBF16;
}

// Turns `conv` into the fused node writing c.result and removes the chain's nodes.
void rewrite(ir::Graph& g, ir::Node* conv, const Chain& c,
             std::unordered_set<const ir::Node*>& removed) {
  if (c.bias_conv) rewrite_conv_affine(g, *c.bias_conv, {}, c.bias);
  ir::Value* old = conv->outputs[0];
  for (ir::Node* n : c.nodes) {
    removed.insert(n);
    g.remove_node(n);
  }
  conv->outputs[0] = c.result;
  c.result->producer = conv;
  c.result->producer_output = 0;
  old->producer = nullptr;
  old->producer_output = -1;
  if (!c.residual && c.epilogue.act == FusedActivation::kNone) return;  // bias only: a Conv
  retype_node(*conv, ops::kFusedConvDomain, ops::kFusedConvOp, ops::kFusedConvVersion);
  conv->inputs.resize(4, nullptr);
  conv->inputs[3] = c.residual;
  while (!conv->inputs.empty() && !conv->inputs.back()) conv->inputs.pop_back();
  ops::write_fused_epilogue(*conv, c.epilogue);
}

class FuseConvActivation : public Pass {
 public:
  const char* name() const override { return "fuse_conv_activation"; }
  int level() const override { return 2; }
  bool enabled_for(const BuilderConfig& cfg) const override {
    return cfg.backend == Backend::kCuda;
  }

  Status apply(ir::Graph& g, bool& changed) override {
    const UseMap uses = g.build_uses();
    const std::vector<ir::Node*> nodes = node_snapshot(g);
    std::unordered_map<const ir::Node*, size_t> position;
    for (size_t i = 0; i < nodes.size(); ++i) position[nodes[i]] = i;
    std::unordered_set<const ir::Node*> removed;
    bool any = false;
    for (ir::Node* n : nodes) {
      if (removed.count(n) || !is_fusable_conv(n)) continue;
      auto chain = match_chain(g, uses, n, position, removed);
      if (!chain) continue;
      rewrite(g, n, *chain, removed);
      any = true;
    }
    if (any) g.remove_unused_values();
    changed |= any;
    return Status::ok();
  }
};

}  // namespace

KILN_REGISTER_PASS(FuseConvActivation, 700);

}  // namespace kiln::passes
