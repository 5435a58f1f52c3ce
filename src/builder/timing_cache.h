// The timing cache (TensorRT's ITimingCache): the tactic the autotuner chose for each
// distinct layer, keyed by what the choice depends on, so that a rebuild picks the same
// tactics without timing them again (reproducible builds, seconds instead of a minute),
// and identical layers of one model are timed once.
//
// File format (JSON, `kiln build --timing-cache FILE` reads and writes it):
//   {"format": "kiln-timing-cache", "version": 1,
//    "environment": {"gpu": ..., "compute_capability": 90, "cudnn": 91900, ...},
//    "entries": {"<layer signature>": {"tactic": ..., "params": ..., "ms": ..., ...}}}
// Timings hold for one GPU model and one set of library versions: a file written for
// another environment is ignored (with a warning) and replaced on save.
#pragma once

#include <map>
#include <string>

#include "ir/graph.h"
#include "kiln/kiln.h"
#include "kiln/status.h"

namespace kiln::builder {

/// The autotuner's choice for one layer signature.
struct TimingEntry {
  std::string tactic;  ///< tactic name (Kernel::tactic)
  std::string params;  ///< what rebuilds it (Kernel::tactic_params)
  float ms = -1;       ///< its measured time per launch, milliseconds
  int candidates = 0;  ///< how many candidates were timed
  uint32_t source = 0; ///< its TacticSource bit (0: unknown, an older cache file)
};

/// What a layer's tactic choice depends on, as a readable key: op type, domain and opset,
/// every attribute, and dtype, dims and layout of every input and output (whether an
/// input is a constant, not its values), plus `extra` (e.g. the precision policy).
/// Example: "Conv|ai.onnx|11|dilations=[1,1];group=1;...|in:f16[1x64x56x56]@1,...".
std::string layer_signature(const ir::Node& n, const std::string& extra = {});

class TimingCache {
 public:
  /// An empty cache for `environment`: a JSON object naming the GPU and library versions
  /// (two caches agree when these are equal).
  explicit TimingCache(std::string environment = "{}");

  /// Reads `path` into a cache for `environment`. A missing file gives an empty cache; a
  /// file from another environment is ignored with a warning on `logger` (also empty).
  /// Errors: TimingCacheInvalid (not JSON, not a kiln timing cache, wrong version).
  static Result<TimingCache> load(const std::string& path, const std::string& environment,
                                  Logger& logger);
  /// Writes the cache as JSON (entries sorted by key, so files diff well). Errors:
  /// IoError.
  Status save(const std::string& path) const;

  /// The entry for `key`, or null. Counts a hit or a miss.
  const TimingEntry* find(const std::string& key);
  void put(const std::string& key, TimingEntry e) { entries_[key] = std::move(e); }
  void erase(const std::string& key) { entries_.erase(key); }

  size_t size() const { return entries_.size(); }
  size_t hits() const { return hits_; }
  size_t misses() const { return misses_; }

 private:
  std::string environment_;
  std::map<std::string, TimingEntry> entries_;
  size_t hits_ = 0, misses_ = 0;
};

}  // namespace kiln::builder
