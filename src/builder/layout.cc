#include "builder/layout.h"

#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "ops/registry.h"

namespace kiln::builder {
namespace {

/// A 4-D float tensor with static dims: the only tensors that may be NHWC.
bool is_candidate(const ir::Value* v) {
  return v && dtype_is_float(v->dtype) && v->shape.is_static() && v->shape.rank() == 4;
}

/// `t` ([N,C,H,W] row-major) with its bytes in N,H,W,C order; dims unchanged.
HostTensor to_nhwc(const HostTensor& t) {
  HostTensor out(t.dtype(), t.dims());
  const auto& d = t.dims();
  const int64_t N = d[0], C = d[1], HW = d[2] * d[3];
  const size_t es = dtype_size(t.dtype());
  const auto* src = static_cast<const unsigned char*>(t.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p)
        std::memcpy(dst + ((n * HW + p) * C + c) * es, src + ((n * C + c) * HW + p) * es, es);
  return out;
}

class LayoutPass {
 public:
  LayoutPass(ir::Graph& g, const LayoutRules& rules) : g_(g), rules_(rules) {}

  Result<LayoutStats> run() {
    for (const auto& n : g_.nodes()) choose_mode(*n);
    const auto uses = g_.build_uses();
    std::vector<ir::Value*> values;
    for (const auto& v : g_.values()) values.push_back(v.get());
    for (ir::Value* v : values) {
      if (!is_candidate(v)) continue;
      auto it = uses.find(v);
      static const std::vector<ir::Use> kNone;
      const std::vector<ir::Use>& u = it == uses.end() ? kNone : it->second;
      if (v->constant) convert_constant(v, u);
      else place(v, u);
    }
    KILN_RETURN_IF_ERROR(g_.topo_sort());
    KILN_RETURN_IF_ERROR(resolve_schemas(g_));
    return stats_;
  }

 private:
  uint8_t mode(const ir::Node* n) const { return nhwc_.count(n) ? kLayoutNhwc : kLayoutRowMajor; }

  /// Layouts a node's operands get in mode `m` (only 4-D float operands take it).
  static std::vector<uint8_t> layouts_in_mode(const std::vector<ir::Value*>& vs, uint8_t m) {
    std::vector<uint8_t> l(vs.size(), kLayoutRowMajor);
    for (size_t i = 0; i < vs.size(); ++i)
      if (is_candidate(vs[i])) l[i] = m;
    return l;
  }

  // Step 1: the node's mode; stores its candidate outputs in it.
  void choose_mode(ir::Node& n) {
    bool any = false;
    for (const auto* list : {&n.inputs, &n.outputs})
      for (const ir::Value* v : *list) any |= is_candidate(v);
    if (!any || !n.subgraphs().empty()) return;
    bool want = rules_.prefers_nhwc(n);
    if (!want) {
      // Bytes of 4-D activation inputs already in each layout; tensors whose layouts share
      // their bytes only break ties.
      int64_t bytes[2] = {0, 0};
      bool degenerate_nhwc = false;
      for (const ir::Value* v : n.inputs) {
        if (!is_candidate(v) || v->constant) continue;
        if (layouts_share_bytes(v)) degenerate_nhwc |= v->layout == kLayoutNhwc;
        else bytes[v->layout == kLayoutNhwc] += v->shape.numel();
      }
      want = bytes[1] > bytes[0] || (bytes[0] == 0 && bytes[1] == 0 && degenerate_nhwc);
    }
    if (want && rules_.accepts(n, layouts_in_mode(n.inputs, kLayoutNhwc), layouts_in_mode(n.outputs, kLayoutNhwc))) {
      nhwc_.insert(&n);
      ++stats_.nhwc_nodes;
      for (ir::Value* v : n.outputs)
        if (is_candidate(v)) v->layout = kLayoutNhwc;
    }
  }

  // Step 4: constants read by NHWC nodes are stored permuted (a copy when row-major
  // readers remain).
  void convert_constant(ir::Value* c, const std::vector<ir::Use>& uses) {
    std::vector<ir::Use> nhwc_uses;
    for (const ir::Use& u : uses)
      if (u.index >= 0 && mode(u.node) == kLayoutNhwc) nhwc_uses.push_back(u);
    if (nhwc_uses.empty()) return;
    HostTensor data = layouts_share_bytes(c) ? *c->constant : to_nhwc(*c->constant);
    ir::Value* target = c;
    if (nhwc_uses.size() != uses.size() || g_.is_output(c)) {
      target = g_.add_constant(g_.unique_name(c->name + "_nhwc"), std::move(data));
      for (const ir::Use& u : nhwc_uses) u.node->inputs[u.index] = target;
    } else {
      c->constant = std::make_shared<const HostTensor>(std::move(data));
    }
    target->layout = kLayoutNhwc;
    ++stats_.constants;
  }

  // Steps 2 and 3 for one activation: make every reader see the layout of its mode.
  void place(ir::Value* v, const std::vector<ir::Use>& uses) {
    // Readers per wanted layout; pinned readers (graph output, subgraphs) want row-major.
    std::map<uint8_t, std::vector<ir::Use>> want;
    bool pinned = g_.is_output(v);
    for (const ir::Use& u : uses) {
      if (u.index < 0) pinned = true;
      else want[mode(u.node)].push_back(u);
    }
    if (pinned) want[kLayoutRowMajor];
    // A producer writes the one layout every reader wants itself when its kernel can.
    if (want.size() == 1 && want.begin()->first != v->layout && absorb(v, want.begin()->first)) return;
    if (pinned && v->layout != kLayoutRowMajor) {
      // The producer keeps writing NHWC into a new tensor; v, under its name, becomes
      // the reformat's row-major output.
      ir::Value* stored = g_.add_value(g_.unique_name(v->name + "_nhwc"), v->dtype, v->shape);
      stored->layout = v->layout;
      ir::Node* p = v->producer;
      const int slot = v->producer_output;
      p->outputs[slot] = stored;
      stored->producer = p;
      stored->producer_output = slot;
      v->layout = kLayoutRowMajor;
      add_conversion(stored, v);
      for (const ir::Use& u : want[kLayoutNhwc]) u.node->inputs[u.index] = stored;
      return;
    }
    for (auto& [layout, readers] : want) {
      if (layout == v->layout || readers.empty()) continue;
      ir::Value* copy = g_.add_value(g_.unique_name(v->name + (layout == kLayoutNhwc ? "_nhwc" : "_nchw")),
                                     v->dtype, v->shape);
      copy->layout = layout;
      add_conversion(v, copy);
      for (const ir::Use& u : readers) u.node->inputs[u.index] = copy;
    }
  }

  /// Tries to have v's producer write `layout` (its other operands as they are).
  bool absorb(ir::Value* v, uint8_t layout) {
    ir::Node* p = v->producer;
    if (!p || rules_.prefers_nhwc(*p)) return false;  // convolutions keep their tuned layout
    std::vector<uint8_t> ins, outs;
    for (const ir::Value* x : p->inputs) ins.push_back(x ? x->layout : kLayoutRowMajor);
    for (const ir::Value* y : p->outputs) outs.push_back(y == v ? layout : (y ? y->layout : kLayoutRowMajor));
    if (!rules_.accepts(*p, ins, outs)) return false;
    v->layout = layout;
    ++stats_.absorbed;
    return true;
  }

  /// Node copying `from` into `to` (same dims, other layout).
  void add_conversion(ir::Value* from, ir::Value* to) {
    const int opset = g_.opset_imports.count("") ? g_.opset_imports.at("") : 17;
    if (layouts_share_bytes(from)) {
      g_.add_node("Identity", g_.unique_name(std::string(kRelabelPrefix) + "_" + from->name), {from}, {to}, "", opset);
      ++stats_.relabels;
      return;
    }
    ir::Node* t = g_.add_node("Transpose", g_.unique_name(std::string(kReformatPrefix) + "_" + from->name), {from},
                              {to}, "", opset);
    t->attrs["perm"] = ir::Attribute::from_ints({0, 1, 2, 3});
    ++stats_.reformats;
  }

  ir::Graph& g_;
  const LayoutRules& rules_;
  std::unordered_set<const ir::Node*> nhwc_;
  LayoutStats stats_;
};

}  // namespace

bool layouts_share_bytes(const ir::Value* v) {
  if (!v || !v->shape.is_static() || v->shape.rank() != 4) return false;
  const auto d = *v->shape.concrete();
  return d[1] == 1 || d[2] * d[3] == 1;
}

Result<LayoutStats> assign_layouts(ir::Graph& g, const LayoutRules& rules) { return LayoutPass(g, rules).run(); }

}  // namespace kiln::builder
