#include "ir/graph.h"

#include <algorithm>
#include <deque>
#include <unordered_set>

namespace kiln::ir {

const char* attribute_kind_name(Attribute::Kind k) {
  switch (k) {
    case Attribute::Kind::kFloat: return "float";
    case Attribute::Kind::kInt: return "int";
    case Attribute::Kind::kString: return "string";
    case Attribute::Kind::kTensor: return "tensor";
    case Attribute::Kind::kGraph: return "graph";
    case Attribute::Kind::kFloats: return "floats";
    case Attribute::Kind::kInts: return "ints";
    case Attribute::Kind::kStrings: return "strings";
    case Attribute::Kind::kTensors: return "tensors";
    case Attribute::Kind::kGraphs: return "graphs";
  }
  return "?";
}

int64_t Node::attr_i(const std::string& n, int64_t def) const {
  const Attribute* a = attr(n);
  if (!a) return def;
  if (a->kind == Attribute::Kind::kFloat) return static_cast<int64_t>(a->f);
  return a->i;
}
float Node::attr_f(const std::string& n, float def) const {
  const Attribute* a = attr(n);
  if (!a) return def;
  if (a->kind == Attribute::Kind::kInt) return static_cast<float>(a->i);
  return a->f;
}
std::string Node::attr_s(const std::string& n, const std::string& def) const {
  const Attribute* a = attr(n);
  return a ? a->s : def;
}
std::vector<int64_t> Node::attr_ints(const std::string& n, std::vector<int64_t> def) const {
  const Attribute* a = attr(n);
  if (!a) return def;
  if (a->kind == Attribute::Kind::kInt) return {a->i};
  return a->ints;
}
std::vector<float> Node::attr_floats(const std::vector<float>& def, const std::string& n) const {
  const Attribute* a = attr(n);
  if (!a) return def;
  if (a->kind == Attribute::Kind::kFloat) return {a->f};
  return a->floats;
}
std::vector<Graph*> Node::subgraphs() const {
  std::vector<Graph*> out;
  for (const auto& [k, a] : attrs) {
    if (a.kind == Attribute::Kind::kGraph && a.g) out.push_back(a.g.get());
    for (const auto& g : a.graphs) out.push_back(g.get());
  }
  return out;
}

Value* Graph::add_value(const std::string& name, DataType dtype, Shape shape) {
  auto v = std::make_unique<Value>();
  v->name = name;
  v->dtype = dtype;
  v->shape = std::move(shape);
  Value* p = v.get();
  values_.push_back(std::move(v));
  by_name_[name] = p;
  return p;
}

Value* Graph::add_constant(const std::string& name, HostTensor t) {
  Value* v = add_value(name, t.dtype(), t.shape());
  v->constant = std::make_shared<const HostTensor>(std::move(t));
  return v;
}

Node* Graph::add_node(const std::string& op_type, const std::string& name,
                      std::vector<Value*> inputs, std::vector<Value*> outputs,
                      const std::string& domain, int opset) {
  auto n = std::make_unique<Node>();
  n->op_type = op_type;
  n->name = name;
  n->domain = domain;
  n->opset = opset;
  n->inputs = std::move(inputs);
  n->outputs = std::move(outputs);
  for (size_t i = 0; i < n->outputs.size(); ++i) {
    if (!n->outputs[i]) continue;
    n->outputs[i]->producer = n.get();
    n->outputs[i]->producer_output = static_cast<int>(i);
  }
  nodes_.push_back(std::move(n));
  return nodes_.back().get();
}

void Graph::remove_node(Node* n) {
  for (auto* o : n->outputs)
    if (o && o->producer == n) { o->producer = nullptr; o->producer_output = -1; }
  nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(),
                              [n](const std::unique_ptr<Node>& p) { return p.get() == n; }),
               nodes_.end());
}

void Graph::replace_all_uses(Value* from, Value* to) {
  for (auto& n : nodes_) {
    for (auto& in : n->inputs) if (in == from) in = to;
    for (auto& in : n->implicit_inputs) if (in == from) in = to;
  }
  for (auto& o : outputs) if (o == from) o = to;
}

void Graph::remove_unused_values() {
  std::unordered_set<const Value*> used;
  for (auto* v : inputs) used.insert(v);
  for (auto* v : outputs) used.insert(v);
  for (auto* v : captures) used.insert(v);
  for (auto& n : nodes_) {
    for (auto* v : n->inputs) used.insert(v);
    for (auto* v : n->outputs) used.insert(v);
    for (auto* v : n->implicit_inputs) used.insert(v);
  }
  std::vector<std::unique_ptr<Value>> kept;
  for (auto& v : values_) {
    if (used.count(v.get())) kept.push_back(std::move(v));
    else by_name_.erase(v->name);
  }
  values_ = std::move(kept);
}

Value* Graph::find_value(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::string Graph::unique_name(const std::string& base) {
  if (!by_name_.count(base)) return base;
  for (;;) {
    std::string n = base + "__" + std::to_string(++name_counter_);
    if (!by_name_.count(n)) return n;
  }
}

std::unordered_map<const Value*, std::vector<Use>> Graph::build_uses() const {
  std::unordered_map<const Value*, std::vector<Use>> uses;
  for (auto& n : nodes_) {
    for (size_t i = 0; i < n->inputs.size(); ++i)
      if (n->inputs[i]) uses[n->inputs[i]].push_back({n.get(), static_cast<int>(i)});
    for (auto* v : n->implicit_inputs) uses[v].push_back({n.get(), -1});
  }
  return uses;
}

bool Graph::is_output(const Value* v) const {
  return std::find(outputs.begin(), outputs.end(), v) != outputs.end();
}

Status Graph::topo_sort() {
  std::unordered_map<const Node*, size_t> index;
  for (size_t i = 0; i < nodes_.size(); ++i) index[nodes_[i].get()] = i;
  std::vector<int> pending(nodes_.size(), 0);
  std::vector<std::vector<size_t>> succ(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    auto add_dep = [&](const Value* v) {
      if (!v || !v->producer) return;
      auto it = index.find(v->producer);
      if (it == index.end()) return;
      succ[it->second].push_back(i);
      ++pending[i];
    };
    for (auto* v : nodes_[i]->inputs) add_dep(v);
    for (auto* v : nodes_[i]->implicit_inputs) add_dep(v);
  }
  // Kahn's algorithm with a min-heap on the original index: stable order.
  std::vector<size_t> heap;
  auto cmp = [](size_t a, size_t b) { return a > b; };
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (pending[i] == 0) heap.push_back(i);
  std::make_heap(heap.begin(), heap.end(), cmp);
  std::vector<size_t> order;
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), cmp);
    size_t i = heap.back();
    heap.pop_back();
    order.push_back(i);
    for (size_t s : succ[i])
      if (--pending[s] == 0) { heap.push_back(s); std::push_heap(heap.begin(), heap.end(), cmp); }
  }
  if (order.size() != nodes_.size()) {
    std::string names;
    int shown = 0;
    for (size_t i = 0; i < nodes_.size() && shown < 8; ++i)
      if (pending[i] > 0) { names += (shown++ ? ", '" : "'") + nodes_[i]->name + "'"; }
    return Status(ErrorCode::kOnnxGraphCycle,
                  "graph '" + name + "' contains a cycle through nodes " + names,
                  "ONNX graphs must be acyclic; re-export the model");
  }
  std::vector<std::unique_ptr<Node>> sorted;
  sorted.reserve(nodes_.size());
  for (size_t i : order) sorted.push_back(std::move(nodes_[i]));
  nodes_ = std::move(sorted);
  return Status::ok();
}

size_t Graph::total_node_count() const {
  size_t n = nodes_.size();
  for (auto& node : nodes_)
    for (auto* g : node->subgraphs()) n += g->total_node_count();
  return n;
}

std::unique_ptr<Graph> clone_graph(const Graph& g) {
  auto out = std::make_unique<Graph>();
  out->name = g.name;
  out->opset_imports = g.opset_imports;
  std::unordered_map<const Value*, Value*> map;
  for (const auto& v : g.values()) {
    Value* c = out->add_value(v->name, v->dtype, v->shape);
    c->constant = v->constant;
    c->mem_offset = v->mem_offset;
    c->layout = v->layout;
    map[v.get()] = c;
  }
  auto remap = [&](const std::vector<Value*>& vs) {
    std::vector<Value*> r;
    r.reserve(vs.size());
    for (const Value* v : vs) r.push_back(v ? map.at(v) : nullptr);
    return r;
  };
  for (const auto& n : g.nodes()) {
    Node* c = out->add_node(n->op_type, n->name, remap(n->inputs), remap(n->outputs), n->domain, n->opset);
    c->attrs = n->attrs;
    for (auto& [name, a] : c->attrs) {  // bodies are re-inferred per specialisation: copy them
      if (a.g) a.g = clone_graph(*a.g);
      for (auto& sg : a.graphs) sg = clone_graph(*sg);
    }
    c->implicit_inputs = remap(n->implicit_inputs);
    c->schema = n->schema;
    c->tactic = n->tactic;
    c->tactic_params = n->tactic_params;
    c->tactic_ms = n->tactic_ms;
    c->tactic_source = n->tactic_source;
    c->tactic_artifact = n->tactic_artifact;
  }
  out->inputs = remap(g.inputs);
  out->outputs = remap(g.outputs);
  out->captures = remap(g.captures);
  return out;
}

}  // namespace kiln::ir
