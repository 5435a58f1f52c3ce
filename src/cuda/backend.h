// The CUDA backend as the builder and the runtime see it. This header has no CUDA
// includes; everything here exists only in builds with KILN_WITH_CUDA.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/plan.h"
#include "ir/graph.h"
#include "kiln/kiln.h"

namespace kiln::cuda {

/// Lowers an optimised graph for the GPU: checks that a GPU is present and shapes are
/// static, lowers precision (FP16/BF16), picks a kernel (tactic) per node — or the host
/// fallback, logged — and plans activation memory. Fills info's compute capability,
/// precision and arena sizes. Errors: NoGpu, DynamicShapeUnresolved, and kernel
/// creation errors (CudnnError...) naming the node.
Status lower_graph(ir::Graph& g, const BuilderConfig& cfg, plan::PlanInfo& info, Logger& logger);

/// Engine state shared by all contexts: weights on the device.
struct EngineState;
/// Per-context state: stream, handles, arena, kernels, CUDA graph.
struct ContextState;

/// Uploads a loaded CUDA plan's weights. Errors: NoGpu, GpuArchMismatch (naming both
/// compute capabilities), OutOfMemory.
Result<std::shared_ptr<EngineState>> load_engine(const plan::LoadedPlan& plan, Logger& logger);
/// Engine memory statistics.
Engine::MemoryStats memory_stats(const EngineState& e);
/// Creates a context: stream, cuDNN/cuBLASLt handles, arena, kernels.
Result<std::shared_ptr<ContextState>> create_context(std::shared_ptr<EngineState> e);

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
