// dead_node_elimination (level 1)
//
// Pattern: nodes none of whose outputs reach a graph output, directly or through other
// nodes, subgraph captures (implicit inputs of If/Loop/Scan owners) included; values and
// initializers nothing reads any more; subgraph captures their body no longer reads.
//
// Legality: ONNX operators have no side effects visible outside their outputs, so a node
// whose outputs nobody reads cannot change what the graph returns. Nondeterministic ops
// (RandomNormal...) only lose draws nobody looks at. Graph inputs are never removed: they
// are the engine's interface, used or not.
//
// Rewrite: mark live backwards from graph outputs over inputs and implicit inputs; drop
// the rest. Subgraphs are processed before their owner (the manager recurses first), so
// when an owner is visited its bodies are already pruned and captures they stopped
// reading can be dropped together with the owner's matching implicit inputs, which may
// free further outer nodes.
#include <algorithm>
#include <set>
#include <string>
#include <unordered_set>

#include "passes/pass.h"

namespace kiln::passes {
namespace {

// Drops captures of `owner`'s subgraphs that no body reads, and the owner's implicit inputs
// that no remaining capture names. Returns true when something was dropped.
bool prune_captures(ir::Node& owner) {
  bool changed = false;
  std::set<std::string> still_read;
  for (ir::Graph* sg : owner.subgraphs()) {
    auto uses = sg->build_uses();
    std::vector<ir::Value*> kept;
    for (ir::Value* c : sg->captures) {
      auto it = uses.find(c);
      bool read = (it != uses.end() && !it->second.empty()) || sg->is_output(c);
      if (read) {
        kept.push_back(c);
        still_read.insert(c->name);
      }
    }
    if (kept.size() != sg->captures.size()) {
      sg->captures = std::move(kept);
      sg->remove_unused_values();
      changed = true;
    }
  }
  auto& imp = owner.implicit_inputs;
  size_t before = imp.size();
  imp.erase(std::remove_if(imp.begin(), imp.end(),
                           [&](const ir::Value* v) { return !still_read.count(v->name); }),
            imp.end());
  return changed || imp.size() != before;
}

class DeadNodeElimination : public Pass {
 public:
  const char* name() const override { return "dead_node_elimination"; }
  int level() const override { return 1; }

  Status apply(ir::Graph& g, bool& changed) override {
    for (const auto& n : g.nodes())
      if (!n->subgraphs().empty()) changed |= prune_captures(*n);

    std::unordered_set<const ir::Node*> live;
    std::vector<const ir::Value*> work(g.outputs.begin(), g.outputs.end());
    while (!work.empty()) {
      const ir::Value* v = work.back();
      work.pop_back();
      const ir::Node* p = v ? v->producer : nullptr;
      if (!p || !live.insert(p).second) continue;
      for (const auto* in : p->inputs) work.push_back(in);
      for (const auto* in : p->implicit_inputs) work.push_back(in);
    }
    std::vector<ir::Node*> dead;
    for (const auto& n : g.nodes())
      if (!live.count(n.get())) dead.push_back(n.get());
    for (ir::Node* n : dead) g.remove_node(n);

    size_t values_before = g.values().size();
    g.remove_unused_values();
    changed |= !dead.empty() || g.values().size() != values_before;
    return Status::ok();
  }
};

}  // namespace

KILN_REGISTER_PASS(DeadNodeElimination, 100);

}  // namespace kiln::passes
