// Tactic selection by timing on the GPU (TensorRT's builder "timing" phase).
//
// For every node whose registry entry enumerates candidates (KernelEntry::candidates:
// cuDNN engine configurations, cuBLASLt algorithms, kiln's own kernels), the autotuner
// builds each candidate, runs it on device buffers filled with seeded random values (not
// zeros) and keeps the fastest. Launches are timed inside a CUDA graph, as an execution
// context runs them: the host's cost per enqueue (a cuBLASLt call costs more host time
// than a small layer's GPU time) would otherwise decide between small kernels. Small layers rotate through several copies of their
// operands, at least twice the L2 cache in all, so that no launch finds its data in L2 left
// by the previous one (a real network's other layers evict it). Candidates whose
// workspace exceeds the limit are skipped. The choice (tactic name, replay params, time)
// is written into the node and into the timing cache, keyed by the layer's signature, so
// identical layers are timed once and a rebuild with the same cache times nothing.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <set>

#include "builder/timing_cache.h"
#include "cuda/kernel.h"
#include "ir/graph.h"

namespace kiln::cuda {

struct AutotuneOptions {
  /// false: no timing; each node keeps its factory's heuristic choice.
  bool enabled = true;
  /// Largest workspace a candidate may use, bytes.
  size_t workspace_limit = size_t{1} << 30;
  /// Optional: every candidate's time (or why it was skipped) at LogLevel::kDebug (-vv).
  Logger* logger = nullptr;
  /// Tactic sources whose candidates are timed (TacticSource bits); part of the timing
  /// cache key when not all.
  uint32_t sources = kAllTacticSources;
  /// Optional: tune only these nodes.
  const std::set<const ir::Node*>* only = nullptr;
};

struct AutotuneStats {
  int tuned = 0;       ///< nodes whose candidates were timed now
  int from_cache = 0;  ///< nodes whose choice came from the timing cache
  int candidates = 0;  ///< candidates timed in all
  int skipped = 0;     ///< candidates skipped (workspace over the limit, failed to run)
};

/// Called after each tunable node: (nodes done, nodes in all, the node, its entry, whether
/// it came from the cache) — the build's progress bar and `--verbose` lines.
using AutotuneProgress = std::function<void(size_t done, size_t total, const ir::Node& n,
                                            const builder::TimingEntry& e, bool cached)>;

/// Chooses a tactic for every tunable node of `g` (see the file comment): sets
/// n.tactic, n.tactic_params and n.tactic_ms, and adds new choices to `cache`. Returns the
/// nodes whose tactic was chosen by timing now (their lowering need not rebuild them).
/// Errors: CudaError, OutOfMemory for the timing buffers; NoGpuKernel never (such nodes
/// are left to the lowering's host fallback).
Result<std::set<const ir::Node*>> autotune_graph(ir::Graph& g, const Resources& res,
                                                 const Precision& p, builder::TimingCache& cache,
                                                 const AutotuneOptions& o,
                                                 const AutotuneProgress& progress,
                                                 AutotuneStats& stats);

/// The environment timings hold for (timing cache header): GPU name, compute capability,
/// SM count, driver, cuDNN and cuBLASLt versions, as a JSON object.
std::string timing_environment(int device);

/// The signature's extra part (builder::layer_signature) for the precision policy (TF32
/// changes the candidates) and the tactic sources (when not all).
std::string tuning_signature(const Precision& p, uint32_t sources = kAllTacticSources);

/// Start-up-aware library choice (BuilderConfig::library_tradeoff), after autotune_graph
/// chose with every source: for cuBLASLt, then cuDNN, times the layers that chose it
/// again without it (timing cache first, keyed by the reduced source set); when every such
/// layer has another kernel and their summed time grows by at most `tradeoff` times the
/// engine's summed layer time, keeps the new choices (adding their nodes to `tuned`),
/// else restores the old. Returns the libraries dropped (TacticSource bits). Errors: as
/// autotune_graph.
Result<uint32_t> drop_costly_libraries(ir::Graph& g, const Resources& res, const Precision& p,
                                       builder::TimingCache& cache, const AutotuneOptions& o,
                                       double tradeoff, std::set<const ir::Node*>& tuned,
                                       AutotuneStats& stats);

/// Fills `n` elements of dtype `dt` at device address `p` with seeded uniform values in
/// [-1, 1) (float types) or zeros (integers, bool), on `stream` (src/cuda/kernels/fill.cu).
/// Errors: CudaError.
Status fill_uniform(DataType dt, void* p, int64_t n, uint64_t seed, cudaStream_t stream);

}  // namespace kiln::cuda
