#include "passes/pass_util.h"

#include <algorithm>

#include "ops/registry.h"

namespace kiln::passes {

void retype_node(ir::Node& n, const char* domain, const char* op_type, int version) {
  n.op_type = op_type;
  n.domain = domain;
  n.opset = version;
  n.schema = OpRegistry::instance().find(n.domain, n.op_type, n.opset);
}

bool name_is_pinned(const ir::Graph& g, const ir::Value* v) {
  if (g.is_output(v)) return true;
  for (const auto& n : g.nodes())
    for (const auto* imp : n->implicit_inputs)
      if (imp == v) return true;
  return false;
}

bool is_unused(const ir::Graph& g, const UseMap& uses, const ir::Value* v) {
  if (!v) return true;
  auto it = uses.find(v);
  return (it == uses.end() || it->second.empty()) && !g.is_output(v);
}

bool has_single_reader(const ir::Graph& g, const UseMap& uses, const ir::Value* v) {
  auto it = uses.find(v);
  // One use with index >= 0 is no implicit input, so only a graph output pins the name.
  return it != uses.end() && it->second.size() == 1 && it->second[0].index >= 0 &&
         !g.is_output(v);
}

bool bypass_node(ir::Graph& g, ir::Node* n, ir::Value* in, ir::Value* out) {
  if (!name_is_pinned(g, out)) {
    g.remove_node(n);
    g.replace_all_uses(out, in);
    return true;
  }
  // `out` must survive under its name, so it takes over `in`'s place instead. That needs a
  // producer in this graph and an `in` whose own name nobody outside depends on.
  ir::Node* p = in->producer;
  if (!p || in->is_constant() || name_is_pinned(g, in)) return false;
  int idx = in->producer_output;
  g.remove_node(n);
  g.replace_all_uses(in, out);
  p->outputs[idx] = out;
  out->producer = p;
  out->producer_output = idx;
  in->producer = nullptr;
  in->producer_output = -1;
  return true;
}

void absorb_consumer(ir::Graph& g, ir::Node* producer, int out_index, ir::Node* consumer,
                     ir::Value* result) {
  ir::Value* old = producer->outputs[out_index];
  g.remove_node(consumer);  // clears result->producer; re-set below
  producer->outputs[out_index] = result;
  result->producer = producer;
  result->producer_output = out_index;
  if (old) {
    old->producer = nullptr;
    old->producer_output = -1;
  }
}

std::vector<ir::Node*> node_snapshot(const ir::Graph& g) {
  std::vector<ir::Node*> nodes;
  nodes.reserve(g.nodes().size());
  for (const auto& n : g.nodes()) nodes.push_back(n.get());
  return nodes;
}

bool rewrite_each_node(ir::Graph& g, NodeRewrite rewrite) {
  UseMap uses = g.build_uses();
  bool any = false;
  for (ir::Node* n : node_snapshot(g)) any |= rewrite(g, uses, n);
  if (any) g.remove_unused_values();
  return any;
}

std::optional<ConvWeights> match_conv_with_constant_weights(ir::Node* n) {
  if (!n->domain.empty() || (n->op_type != "Conv" && n->op_type != "ConvTranspose"))
    return std::nullopt;
  ir::Value* w = n->input(1);
  ir::Value* b = n->input(2);
  if (!w || !w->is_constant() || (b && !b->is_constant())) return std::nullopt;
  if (n->outputs.size() != 1 || !n->outputs[0]) return std::nullopt;
  const HostTensor& wt = *w->constant;
  // fp8 weights are not legal ONNX Conv inputs and rounding folded values to 3 mantissa
  // bits would change results noticeably.
  if (wt.rank() < 3 || !dtype_is_float(wt.dtype()) || wt.dtype() == DataType::kF8E4M3)
    return std::nullopt;
  ConvWeights cw;
  cw.conv = n;
  cw.w = &wt;
  cw.b = b ? b->constant.get() : nullptr;
  int64_t group = n->attr_i("group", 1);
  if (group < 1) return std::nullopt;
  if (n->op_type == "Conv") {
    cw.out_channels = wt.dims()[0];
  } else {
    if (wt.dims()[0] % group != 0) return std::nullopt;
    cw.out_channels = wt.dims()[1] * group;
  }
  if (cw.out_channels <= 0) return std::nullopt;
  if (cw.b && (cw.b->numel() != cw.out_channels || cw.b->dtype() != wt.dtype()))
    return std::nullopt;
  return cw;
}

std::optional<ConvWeights> conv_feeding_only(const ir::Graph& g, const UseMap& uses,
                                             const ir::Value* x) {
  if (!x || !x->producer || !has_single_reader(g, uses, x)) return std::nullopt;
  return match_conv_with_constant_weights(x->producer);
}

int64_t weight_out_channel(const ConvWeights& cw, int64_t i) {
  const auto& d = cw.w->dims();
  int64_t per_row = cw.w->numel() / d[0];  // elements per slice along dim 0
  if (cw.conv->op_type == "Conv") return i / per_row;
  // ConvTranspose: [C, M/g, k...]; input channel c belongs to group c / (C/g), and the
  // output channel is group * (M/g) + j.
  int64_t c = i / per_row;
  int64_t inner = per_row / d[1];
  int64_t j = (i % per_row) / inner;
  int64_t group = cw.conv->attr_i("group", 1);
  return (c / (d[0] / group)) * d[1] + j;
}

namespace {
// "W" → "W_folded"; folding again gives "W_folded__1", not "W_folded_folded".
std::string folded_name(ir::Graph& g, std::string base) {
  const std::string suffix = "_folded";
  auto pos = base.rfind(suffix);
  if (pos != std::string::npos) base.resize(pos);
  return g.unique_name(base + suffix);
}
}  // namespace

void rewrite_conv_affine(ir::Graph& g, const ConvWeights& cw, const std::vector<double>& scale,
                         const std::vector<double>& shift) {
  ir::Node* conv = cw.conv;
  DataType dt = cw.w->dtype();
  if (!scale.empty()) {
    HostTensor w(dt, cw.w->dims());
    for (int64_t i = 0; i < w.numel(); ++i)
      w.set_f64(i, cw.w->get_f64(i) * scale[weight_out_channel(cw, i)]);
    conv->inputs[1] = g.add_constant(folded_name(g, conv->inputs[1]->name), std::move(w));
  }
  HostTensor b(dt, {cw.out_channels});
  for (int64_t c = 0; c < cw.out_channels; ++c) {
    double v = cw.b ? cw.b->get_f64(c) : 0.0;
    if (!scale.empty()) v *= scale[c];
    if (!shift.empty()) v += shift[c];
    b.set_f64(c, v);
  }
  std::string base = conv->input(2) ? conv->inputs[2]->name : conv->name + "_bias";
  if (conv->inputs.size() < 3) conv->inputs.resize(3, nullptr);
  conv->inputs[2] = g.add_constant(folded_name(g, base), std::move(b));
}

void fold_affine_consumer(ir::Graph& g, const ConvWeights& cw, ir::Node* consumer,
                          const std::vector<double>& scale, const std::vector<double>& shift) {
  rewrite_conv_affine(g, cw, scale, shift);
  absorb_consumer(g, cw.conv, 0, consumer, consumer->outputs[0]);
}

std::optional<std::vector<double>> per_channel_values(const HostTensor& t, size_t rank,
                                                      int64_t channels) {
  const auto& d = t.dims();
  if (d.size() > rank || rank < 2) return std::nullopt;
  // Right-align t's dims against the output's; only axis 1 may differ from 1.
  bool per_channel = false;
  for (size_t i = 0; i < d.size(); ++i) {
    size_t axis = rank - d.size() + i;
    if (d[i] == 1) continue;
    if (axis == 1 && d[i] == channels) {
      per_channel = true;
      continue;
    }
    return std::nullopt;
  }
  std::vector<double> v(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) v[c] = t.get_f64(per_channel ? c : 0);
  return v;
}

}  // namespace kiln::passes
