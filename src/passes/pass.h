// Graph passes. A pass is pattern + legality check + rewrite, in its own file under
// src/passes/, registered with KILN_REGISTER_PASS. The PassManager runs the passes whose
// level is <= the build's opt level, in registration `order`, to a fixed point, and
// recurses into subgraphs (If/Loop/Scan bodies).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/kiln.h"
#include "kiln/status.h"

namespace kiln::passes {

class Pass {
 public:
  virtual ~Pass() = default;
  /// Stable name used by --disable-pass and --dump-after.
  virtual const char* name() const = 0;
  /// 1 = cleanups and folding, 2 = fusions, 3 = aggressive.
  virtual int level() const = 0;
  /// Whether the pass applies to this build at all (e.g. a fusion only one backend has a
  /// kernel for); the manager skips it otherwise. Default: every build.
  virtual bool enabled_for(const BuilderConfig& cfg) const { return true; }
  /// Rewrites `g` (not its subgraphs: the manager recurses). Sets `changed` when it did
  /// anything. Must leave the graph valid (verify_graph) and topologically sorted.
  virtual Status apply(ir::Graph& g, bool& changed) = 0;
};

struct PassEntry {
  int order;  ///< position in the pipeline (lower runs first)
  std::unique_ptr<Pass> (*make)();
};

/// All registered passes, sorted by order.
std::vector<PassEntry> registered_passes();

struct PassRegistrar {
  PassRegistrar(int order, std::unique_ptr<Pass> (*make)());
};

/// Runs the pipeline: the passes of levels min_level..cfg.opt_level. Logs a graph dump
/// after passes named in cfg.dump_after.
Status run_passes(ir::Graph& g, const BuilderConfig& cfg, Logger& logger, int min_level = 0);

}  // namespace kiln::passes

/// Registers pass class `cls` at pipeline position `order`.
#define KILN_REGISTER_PASS(cls, order)                                              \
  static ::kiln::passes::PassRegistrar kiln_pass_registrar_##cls(                   \
      order, []() -> std::unique_ptr<::kiln::passes::Pass> { return std::make_unique<cls>(); })
