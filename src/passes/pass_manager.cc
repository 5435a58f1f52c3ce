#include <algorithm>

#include "ops/registry.h"
#include "passes/pass.h"

namespace kiln::passes {
namespace {
std::vector<PassEntry>& table() {
  static std::vector<PassEntry> t;
  return t;
}

Status apply_recursive(Pass& p, ir::Graph& g, bool& changed) {
  for (const auto& n : g.nodes())
    for (auto* sg : n->subgraphs()) KILN_RETURN_IF_ERROR(apply_recursive(p, *sg, changed));
  bool c = false;
  Status st = p.apply(g, c);
  if (!st.is_ok())
    return Status(ErrorCode::kPassFailed, std::string("pass '") + p.name() + "' failed: " + st.to_string(),
                  std::string("disable it with --disable-pass=") + p.name() + " and report the model");
  changed |= c;
  return Status::ok();
}
}  // namespace

PassRegistrar::PassRegistrar(int order, std::unique_ptr<Pass> (*make)()) { table().push_back({order, make}); }

std::vector<PassEntry> registered_passes() {
  auto t = table();
  std::stable_sort(t.begin(), t.end(), [](const PassEntry& a, const PassEntry& b) { return a.order < b.order; });
  return t;
}

Status run_passes(ir::Graph& g, const BuilderConfig& cfg, Logger& logger, int min_level) {
  std::vector<std::unique_ptr<Pass>> pipeline;
  for (const auto& e : registered_passes()) {
    auto p = e.make();
    if (p->level() > cfg.opt_level || p->level() < min_level || !p->enabled_for(cfg)) continue;
    if (std::find(cfg.disabled_passes.begin(), cfg.disabled_passes.end(), p->name()) != cfg.disabled_passes.end()) {
      logger.log(LogLevel::kInfo, std::string("pass ") + p->name() + " disabled");
      continue;
    }
    pipeline.push_back(std::move(p));
  }
  auto dump = [&](const char* name) {
    for (const auto& d : cfg.dump_after)
      if (d == name || d == "all") {
        logger.log(LogLevel::kInfo, std::string("graph after pass ") + name + ":\n" + ir::print_graph(g));
        return;
      }
  };
  // Iterate the whole pipeline until nothing changes (bounded: passes must converge).
  for (int round = 0; round < 8; ++round) {
    bool any = false;
    for (auto& p : pipeline) {
      bool changed = false;
      KILN_RETURN_IF_ERROR(apply_recursive(*p, g, changed));
      if (changed) {
        KILN_RETURN_IF_ERROR(infer_graph(g));
        Status v = ir::verify_graph(g);
        if (!v.is_ok()) return v.with_context(std::string("after pass '") + p->name() + "'");
        if (logger.enabled(LogLevel::kDebug))
          logger.log(LogLevel::kDebug, std::string("pass ") + p->name() + " changed the graph (" +
                                           std::to_string(g.nodes().size()) + " nodes)");
        dump(p->name());
      }
      any |= changed;
    }
    if (!any) break;
  }
  return Status::ok();
}

}  // namespace kiln::passes
