// Plan file v1: serialisation of a lowered ir::Graph with its weights (schema/plan.fbs).
// Layout: 32-byte preamble (magic "KILNPLAN", format version, flatbuffer size, XXH3-64
// checksum of the rest), the FlatBuffers Plan, then a weight section whose tensors are
// 256-byte aligned relative to the file start, so a loaded plan's weights are used in
// place (no copy) and the file could be mmapped.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/kiln.h"
#include "kiln/status.h"

namespace kiln::plan {

// 2: CUDA plans (arena offsets, layouts, precision).
constexpr uint32_t kFormatVersion = 2;
constexpr size_t kPreambleBytes = 32;
constexpr size_t kWeightAlign = 256;
constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'P', 'L', 'A', 'N'};

/// What a plan says about itself.
struct PlanInfo {
  uint32_t format_version = 0;
  std::string kiln_version;
  Backend backend = Backend::kCpu;
  int compute_capability = 0;
  std::string build_info;  ///< JSON
  uint64_t weights_bytes = 0;
  uint64_t file_bytes = 0;
  uint64_t weights_offset = 0;  ///< start of the weight section in the file (loaded plans)
  uint64_t arena_bytes = 0;     ///< CUDA: activation arena of one context
  uint64_t naive_bytes = 0;     ///< CUDA: sum of activation tensor sizes
  Precision precision = Precision::kFp32;
  bool allow_tf32 = true;
  /// Dynamic plans: the optimisation profiles (empty for a static plan).
  std::vector<OptimizationProfile> profiles;
};

/// Serialises `g` (weights = all constant values, also inside subgraphs and attribute
/// tensors). `build_info` is stored verbatim (JSON).
std::vector<uint8_t> serialize(const ir::Graph& g, const PlanInfo& info);

/// A loaded plan: the graph (constants point into `storage`) and its info.
struct LoadedPlan {
  std::shared_ptr<void> storage;  ///< the plan bytes, 256-byte aligned
  std::unique_ptr<ir::Graph> graph;
  PlanInfo info;
};

/// Verifies and loads plan bytes (copied into aligned storage).
/// Errors: PlanBadMagic, PlanVersion (newer format), PlanCorrupt (truncated, checksum,
/// FlatBuffers verification, bad references).
Result<LoadedPlan> deserialize(const void* data, size_t size);

/// deserialize() of a plan file, read in one piece straight into the aligned storage.
/// Errors: IoError (cannot open or read), and those of deserialize().
Result<LoadedPlan> deserialize_file(const std::string& path);

/// What a plan file's graph section says about it, read without its weights (the first
/// bytes of the file) and without the checksum: for work that can start while the rest
/// loads. nullopt when the file cannot be read or is not a valid plan of this format
/// (deserialize_file then reports why).
struct PlanPeek {
  Backend backend = Backend::kCpu;
  uint32_t tactic_sources = 0;  ///< TacticSource bits of the nodes' kernels
};
std::optional<PlanPeek> peek_file(const std::string& path);

}  // namespace kiln::plan
