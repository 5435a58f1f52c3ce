// The CUDA backend as the builder and the runtime see it. This header has no CUDA
// includes; everything here exists only in builds with KILN_WITH_CUDA.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/plan.h"
#include "ir/graph.h"
#include "kiln/kiln.h"

namespace kiln::cuda {

/// What lower_graph did, for the plan's build_info.
struct LowerStats {
  int gpu_kernels = 0, host_nodes = 0;
  int tuned = 0;       ///< layers timed now
  int from_cache = 0;  ///< layers whose tactic came from the timing cache
  uint32_t sources_used = 0;     ///< TacticSource bits of the chosen tactics
  uint32_t sources_dropped = 0;  ///< libraries dropped for start-up (library_tradeoff)
  int candidates = 0;  ///< tactic candidates timed
  int skipped = 0;     ///< candidates over the workspace limit or unable to run
};

/// Lowers an optimised graph for the GPU: checks that a GPU is present and shapes are
/// static, lowers precision (FP16/BF16), assigns layouts, times tactic candidates
/// (autotune.h, with cfg.timing_cache), picks a kernel per node — or the host fallback,
/// logged — and plans activation memory. Calls `phase` after each of its phases
/// ("precision", "layout", "autotune", "lower"). Fills info's compute capability,
/// precision and arena sizes. Errors: NoGpu, DynamicShapeUnresolved, TimingCacheInvalid,
/// IoError (writing the cache), and kernel creation errors (CudnnError...) naming the
/// node.
Status lower_graph(ir::Graph& g, const BuilderConfig& cfg, plan::PlanInfo& info, Logger& logger,
                   const std::function<void(const char*)>& phase, LowerStats& stats);

/// Engine state shared by all contexts: weights on the device.
struct EngineState;
/// Per-context state: stream, handles, arena, kernels, CUDA graph.
struct ContextState;

/// Starts, once per process, a thread that makes the first calls into the libraries named
/// by `sources` (TacticSource bits) on the current device: cuBLASLt's first call builds its kernel
/// tables (80-140 ms on an H200), cuDNN's first convolution loads its engine libraries
/// (56-140 ms). Runtime::deserialize_file starts it as soon as it has read a plan's graph
/// section, so that this overlaps reading, checking and uploading the weights; an
/// execution context that needs a library first simply finds it ready (or waits inside
/// it). Later calls do nothing; the thread is joined at process exit. The environment
/// variable KILN_LIBRARY_WARMUP=0 turns it off.
void warm_up_libraries(uint32_t sources);

/// Uploads a loaded CUDA plan's weights. Errors: NoGpu, GpuArchMismatch (naming both
/// compute capabilities), OutOfMemory.
Result<std::shared_ptr<EngineState>> load_engine(const plan::LoadedPlan& plan, Logger& logger);
/// Engine memory statistics.
Engine::MemoryStats memory_stats(const EngineState& e);
/// Creates a context: stream, cuDNN/cuBLASLt handles, arena, kernels. `input_dims` (the
/// dynamic inputs' dims, owned by the caller, outliving the context) is read when the
/// context specialises the plan after input_shapes_changed.
Result<std::shared_ptr<ContextState>> create_context(std::shared_ptr<EngineState> e,
                                                   const std::map<std::string, std::vector<int64_t>>& input_dims);

/// The input dims changed (set, or cleared by a profile switch; already checked against
/// the profile): the next enqueue or tensor_shape uses (or builds) their specialisation.
void input_shapes_changed(ContextState& c);
/// Dims of an input or output for the current input dims (specialises the plan to them
/// if that has not happened yet). Errors: those of specialisation.
Result<std::vector<int64_t>> tensor_shape(ContextState& c, const std::string& name);
Status set_tensor_address(ContextState& c, const std::string& name, void* ptr);
Status enqueue(ContextState& c, void* stream);
void set_cuda_graph(ContextState& c, bool on);
void* context_stream(const ContextState& c);
void set_profiling(ContextState& c, bool on);
const std::vector<LayerTime>& layer_times(const ContextState& c);
/// Synchronous host API: copies `inputs` (name → host view) to context-owned device
/// buffers, enqueues, copies outputs back and waits. Outputs stay valid until the next call.
Status execute_host(ContextState& c, const std::map<std::string, HostTensor>& inputs);
Result<TensorView> host_output(const ContextState& c, const std::string& name);

}  // namespace kiln::cuda
