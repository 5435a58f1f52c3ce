#include <unordered_set>

#include "ir/graph.h"

namespace kiln::ir {
namespace {

Status fail(const std::string& what, const Node* n = nullptr) {
  return Status(ErrorCode::kVerifyFailed, what, "this is a kiln bug: rerun with --disable-pass",
                n ? n->loc() : ErrorLocation{});
}

Status verify(const Graph& g, const std::unordered_set<const Value*>& outer) {
  std::unordered_set<const Value*> defined(outer.begin(), outer.end());
  std::unordered_set<std::string> names;
  for (auto* v : g.inputs) defined.insert(v);
  for (auto* v : g.captures) defined.insert(v);
  for (auto& v : g.values())
    if (v->is_constant()) defined.insert(v.get());
  for (auto& v : g.values())
    if (!names.insert(v->name).second) return fail("value name '" + v->name + "' is defined twice in graph '" + g.name + "'");
  for (const auto& n : g.nodes()) {
    for (auto* v : n->inputs)
      if (v && !defined.count(v))
        return fail("input '" + v->name + "' is used before it is defined", n.get());
    for (auto* v : n->implicit_inputs)
      if (!defined.count(v))
        return fail("implicit input '" + v->name + "' is used before it is defined", n.get());
    for (auto* sg : n->subgraphs()) {
      // Captures of a subgraph refer to this graph's values by name.
      for (auto* c : sg->captures) {
        bool found = false;
        for (auto* v : n->implicit_inputs) found |= v->name == c->name;
        if (!found) return fail("subgraph capture '" + c->name + "' is not an implicit input", n.get());
      }
      KILN_RETURN_IF_ERROR(verify(*sg, {}));
    }
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      Value* v = n->outputs[i];
      if (!v) continue;
      if (v->producer != n.get() || v->producer_output != static_cast<int>(i))
        return fail("output '" + v->name + "' has an inconsistent producer link", n.get());
      if (!defined.insert(v).second) return fail("value '" + v->name + "' is produced twice", n.get());
    }
  }
  for (auto* v : g.outputs)
    if (!defined.count(v)) return fail("graph output '" + v->name + "' is never produced");
  return Status::ok();
}

}  // namespace

Status verify_graph(const Graph& g) { return verify(g, {}); }

}  // namespace kiln::ir
