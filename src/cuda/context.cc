// Runtime side of the CUDA backend: engine weights on the device, and execution contexts
// (stream + library handles, activation arena at the plan's offsets, one kernel object
// per node, CUDA-graph capture of enqueue after the first run, host fallback nodes).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <unordered_map>

#include "cuda/backend.h"
#include "cuda/cuda_check.h"
#include "cuda/handles.h"
#include "cuda/lower_node.h"
#include "runtime/engine_impl.h"
#include "runtime/executor.h"

namespace kiln::cuda {

struct EngineState {
  const plan::LoadedPlan* plan = nullptr;  // owned by Engine::Impl, which outlives contexts
  Logger* logger = nullptr;                // the runtime's, which outlives its engines
  int device = 0;
  void* weights = nullptr;                 // device copy of the plan bytes (weights in place)
  std::unordered_map<const ir::Value*, int> index;
  std::vector<const ir::Value*> values;
  ~EngineState() {
    if (weights) cudaFree(weights);
  }
  const ir::Graph& graph() const { return *plan->graph; }
};

namespace {

struct Step {
  const ir::Node* node = nullptr;
  NodeKind kind = NodeKind::kHost;
  std::unique_ptr<Kernel> kernel;
  std::vector<int> in, out;  // value indices, -1 = omitted
  bool copy_out = false;     // a view whose output is a graph output: copied, not aliased
};

struct DeviceMem {
  void* p = nullptr;
  ~DeviceMem() {
    if (p) cudaFree(p);
  }
};

}  // namespace

struct ContextState {
  std::shared_ptr<EngineState> engine;
  Handles h;
  DeviceMem arena, workspace;
  uint64_t arena_bytes = 0;
  std::vector<void*> ptr;  // device address per value index
  std::vector<Step> steps;
  std::vector<int> io_values;                 // graph inputs then outputs
  std::unordered_map<std::string, int> io_index;
  std::vector<void*> bound;                   // per io_values entry
  bool use_graph = true, has_host = false, profiling = false, poison = false;
  cudaGraphExec_t graph_exec = nullptr;
  std::vector<void*> captured_bound;          // addresses baked into graph_exec
  cudaStream_t captured_stream = nullptr;
  int runs = 0;
  std::vector<LayerTime> times;
  std::vector<cudaEvent_t> events;
  // Synchronous host API.
  std::vector<DeviceMem> owned_io;
  std::vector<HostTensor> host_out;
  std::vector<const void*> in_scratch;
  std::vector<void*> out_scratch;

  ~ContextState() {
    if (graph_exec) cudaGraphExecDestroy(graph_exec);
    for (auto e : events) cudaEventDestroy(e);
  }
  const ir::Value* value(int i) const { return engine->values[i]; }
};

namespace {

uint64_t value_bytes(const ir::Value* v) {
  return static_cast<uint64_t>(std::max<int64_t>(v->shape.numel(), 0)) * dtype_size(v->dtype);
}

Status run_host_step(ContextState& c, const Step& s, cudaStream_t stream) {
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<HostTensor> staged(s.in.size());
  std::vector<const HostTensor*> in(s.in.size(), nullptr);
  for (size_t k = 0; k < s.in.size(); ++k) {
    if (s.in[k] < 0) continue;
    const ir::Value* v = c.value(s.in[k]);
    if (v->constant) {
      in[k] = v->constant.get();
      continue;
    }
    staged[k] = HostTensor(v->dtype, *v->shape.concrete());
    if (staged[k].bytes())
      KILN_CUDA_CHECK(cudaMemcpy(staged[k].raw(), c.ptr[s.in[k]], staged[k].bytes(), cudaMemcpyDeviceToHost));
    in[k] = &staged[k];
  }
  runtime::Env env;
  env.graph = &c.engine->graph();
  KILN_ASSIGN_OR_RETURN(auto outs, runtime::run_node(*s.node, in, &env));
  for (size_t k = 0; k < s.out.size() && k < outs.size(); ++k) {
    if (s.out[k] < 0) continue;
    const ir::Value* v = c.value(s.out[k]);
    if (outs[k].bytes() != value_bytes(v) || outs[k].dtype() != v->dtype)
      return Status(ErrorCode::kKernelFailed,
                    "host kernel produced " + dims_to_string(outs[k].dims()) + " " + dtype_name(outs[k].dtype()) +
                        " for '" + v->name + "', the plan expects " + v->shape.to_string() + " " + dtype_name(v->dtype),
                    "data-dependent output shapes are not supported on the CUDA backend", s.node->loc());
    if (outs[k].bytes())
      KILN_CUDA_CHECK(cudaMemcpy(c.ptr[s.out[k]], outs[k].raw(), outs[k].bytes(), cudaMemcpyHostToDevice));
  }
  return Status::ok();
}

Status run_steps(ContextState& c, cudaStream_t stream) {
  const ir::Graph& g = c.engine->graph();
  if (c.poison) {  // tests: every element of every output must be written
    if (c.arena_bytes) KILN_CUDA_CHECK(cudaMemsetAsync(c.arena.p, 0xFF, c.arena_bytes, stream));
    for (auto* v : g.outputs)
      if (value_bytes(v)) KILN_CUDA_CHECK(cudaMemsetAsync(c.ptr[c.engine->index.at(v)], 0xFF, value_bytes(v), stream));
  }
  // Constant graph outputs (an engine input that is also an output shares its buffer).
  for (auto* v : g.outputs) {
    if (!v->constant || !value_bytes(v)) continue;
    const auto off = static_cast<const uint8_t*>(v->constant->raw()) -
                     static_cast<const uint8_t*>(c.engine->plan->storage.get());
    KILN_CUDA_CHECK(cudaMemcpyAsync(c.ptr[c.engine->index.at(v)], static_cast<const uint8_t*>(c.engine->weights) + off,
                                    value_bytes(v), cudaMemcpyDeviceToDevice, stream));
  }
  for (size_t si = 0; si < c.steps.size(); ++si) {
    Step& s = c.steps[si];
    if (c.profiling) KILN_CUDA_CHECK(cudaEventRecord(c.events[2 * si], stream));
    if (s.kind == NodeKind::kView) {
      const int in0 = s.in[0], out0 = s.out[0];
      if (s.copy_out) {
        if (value_bytes(c.value(out0)))
          KILN_CUDA_CHECK(cudaMemcpyAsync(c.ptr[out0], c.ptr[in0], value_bytes(c.value(out0)), cudaMemcpyDeviceToDevice,
                                          stream));
      } else {
        c.ptr[out0] = c.ptr[in0];
      }
    }
    if (s.kernel) {
      c.in_scratch.assign(s.in.size(), nullptr);
      c.out_scratch.assign(s.out.size(), nullptr);
      for (size_t k = 0; k < s.in.size(); ++k)
        if (s.in[k] >= 0) c.in_scratch[k] = c.ptr[s.in[k]];
      for (size_t k = 0; k < s.out.size(); ++k)
        if (s.out[k] >= 0 && !(k == 0 && s.kind == NodeKind::kView)) c.out_scratch[k] = c.ptr[s.out[k]];
      LaunchArgs a{c.in_scratch.data(), c.out_scratch.data(), c.workspace.p, stream, c.h.res()};
      Status st = s.kernel->enqueue(a);
      if (!st.is_ok()) return st.at(s.node->loc());
    } else if (s.kind == NodeKind::kHost) {
      Status st = run_host_step(c, s, stream);
      if (!st.is_ok()) return st.at(s.node->loc());
    }
    if (c.profiling) KILN_CUDA_CHECK(cudaEventRecord(c.events[2 * si + 1], stream));
  }
  return Status::ok();
}

}  // namespace

Result<std::shared_ptr<EngineState>> load_engine(const plan::LoadedPlan& plan, Logger& logger) {
  const int device = 0;
  KILN_ASSIGN_OR_RETURN(int cc, compute_capability(device));
  if (cc != plan.info.compute_capability)
    return Status(ErrorCode::kGpuArchMismatch,
                  "plan was built for compute capability " + std::to_string(plan.info.compute_capability / 10) + "." +
                      std::to_string(plan.info.compute_capability % 10) + ", this GPU is " + std::to_string(cc / 10) +
                      "." + std::to_string(cc % 10),
                  "rebuild the plan on this GPU (kiln build --backend cuda)");
  auto e = std::make_shared<EngineState>();
  e->plan = &plan;
  e->logger = &logger;
  e->device = device;
  KILN_CUDA_CHECK(cudaSetDevice(device));
  KILN_CUDA_CHECK(cudaMalloc(&e->weights, std::max<uint64_t>(plan.info.file_bytes, 256)));
  KILN_CUDA_CHECK(cudaMemcpy(e->weights, plan.storage.get(), plan.info.file_bytes, cudaMemcpyHostToDevice));
  for (const auto& v : plan.graph->values()) {
    e->index[v.get()] = static_cast<int>(e->values.size());
    e->values.push_back(v.get());
  }
  return e;
}

Engine::MemoryStats memory_stats(const EngineState& e) {
  return {e.plan->info.arena_bytes, e.plan->info.naive_bytes, e.plan->info.weights_bytes};
}

Result<std::shared_ptr<ContextState>> create_context(std::shared_ptr<EngineState> e) {
  auto c = std::make_shared<ContextState>();
  c->engine = e;
  KILN_RETURN_IF_ERROR(c->h.init(e->device));
  const auto& info = e->plan->info;
  const ir::Graph& g = e->graph();
  c->arena_bytes = info.arena_bytes;
  if (c->arena_bytes) KILN_CUDA_CHECK(cudaMalloc(&c->arena.p, c->arena_bytes));
  const char* poison = std::getenv("KILN_CUDA_POISON");
  c->poison = poison && poison[0] == '1';

  c->ptr.assign(e->values.size(), nullptr);
  const auto* host_base = static_cast<const uint8_t*>(e->plan->storage.get());
  for (size_t i = 0; i < e->values.size(); ++i) {
    const ir::Value* v = e->values[i];
    if (v->constant) {
      const auto* hp = static_cast<const uint8_t*>(v->constant->raw());
      const bool inside = hp >= host_base && hp < host_base + info.file_bytes;
      c->ptr[i] = static_cast<uint8_t*>(e->weights) + (inside ? hp - host_base : 0);
    } else if (v->mem_offset >= 0) {
      c->ptr[i] = static_cast<uint8_t*>(c->arena.p) + v->mem_offset;
    }
  }
  for (auto* v : g.inputs) {
    c->io_index[v->name] = static_cast<int>(c->io_values.size());
    c->io_values.push_back(e->index.at(v));
  }
  for (auto* v : g.outputs) {
    if (c->io_index.count(v->name)) continue;
    c->io_index[v->name] = static_cast<int>(c->io_values.size());
    c->io_values.push_back(e->index.at(v));
  }
  c->bound.assign(c->io_values.size(), nullptr);

  Precision p;
  p.allow_tf32 = info.allow_tf32;
  size_t ws = 0;
  // Kernel creation dominates a context's start-up (cuDNN plans): timed per node for -vv.
  using Clock = std::chrono::steady_clock;
  const auto t_start = Clock::now();
  size_t from_artifact = 0;
  std::vector<std::pair<double, const ir::Node*>> slowest;
  for (const auto& n : g.nodes()) {
    const auto t0 = Clock::now();
    KILN_ASSIGN_OR_RETURN(LoweredNode ln, lower_node(*n, c->h.res(), p, n->tactic == kTacticHost));
    slowest.emplace_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count(), n.get());
    if (!n->tactic_artifact.empty()) ++from_artifact;
    Step s;
    s.node = n.get();
    s.kind = ln.kind;
    s.kernel = std::move(ln.kernel);
    for (auto* v : n->inputs) s.in.push_back(v ? e->index.at(v) : -1);
    for (auto* v : n->outputs) s.out.push_back(v ? e->index.at(v) : -1);
    if (s.kind == NodeKind::kView) s.copy_out = g.is_output(n->outputs[0]);
    if (s.kind == NodeKind::kHost) c->has_host = true;
    if (s.kernel) ws = std::max(ws, s.kernel->workspace_bytes());
    c->steps.push_back(std::move(s));
  }
  if (ws) KILN_CUDA_CHECK(cudaMalloc(&c->workspace.p, ws));
  if (e->logger && e->logger->enabled(LogLevel::kDebug)) {
    const size_t top = std::min<size_t>(slowest.size(), 5);
    std::partial_sort(slowest.begin(), slowest.begin() + static_cast<std::ptrdiff_t>(top), slowest.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string msg = "execution context: " + std::to_string(c->steps.size()) + " nodes lowered in " +
                      std::to_string(std::chrono::duration<double, std::milli>(Clock::now() - t_start).count()) +
                      " ms (" + std::to_string(from_artifact) + " with stored compiled code); slowest:";
    for (size_t i = 0; i < top; ++i)
      msg += " '" + slowest[i].second->name + "' (" + slowest[i].second->tactic + ") " +
             std::to_string(slowest[i].first) + " ms;";
    e->logger->log(LogLevel::kDebug, msg);
  }
  return c;
}

Status set_tensor_address(ContextState& c, const std::string& name, void* ptr) {
  auto it = c.io_index.find(name);
  if (it == c.io_index.end()) {
    std::vector<std::string> names;
    for (const auto& [n, i] : c.io_index) names.push_back(n);
    return Status(ErrorCode::kNotFound, "engine has no input or output '" + name + "'", list_names(names));
  }
  if (!ptr && value_bytes(c.value(c.io_values[it->second])))
    return Status(ErrorCode::kInvalidArgument, "null address for '" + name + "'", "pass device memory of the tensor's size");
  c.bound[it->second] = ptr;
  return Status::ok();
}

void set_cuda_graph(ContextState& c, bool on) { c.use_graph = on; }
void* context_stream(const ContextState& c) { return c.h.res().stream; }
void set_profiling(ContextState& c, bool on) { c.profiling = on; }
const std::vector<LayerTime>& layer_times(const ContextState& c) { return c.times; }

Status enqueue(ContextState& c, void* stream_arg) {
  cudaStream_t stream = stream_arg ? static_cast<cudaStream_t>(stream_arg) : c.h.res().stream;
  std::string missing;
  for (size_t k = 0; k < c.io_values.size(); ++k) {
    const ir::Value* v = c.value(c.io_values[k]);
    if (!c.bound[k] && value_bytes(v)) missing += (missing.empty() ? "'" : ", '") + v->name + "'";
    c.ptr[c.io_values[k]] = c.bound[k];
  }
  if (!missing.empty())
    return Status(ErrorCode::kMissingInput, "no device address set for " + missing,
                  "call set_tensor_address for every engine input and output before enqueue");
  KILN_CUDNN_CHECK(cudnnSetStream(c.h.res().cudnn, stream));
  const bool graphable = c.use_graph && !c.has_host && !c.profiling;
  if (c.profiling && c.events.size() != 2 * c.steps.size()) {
    for (size_t i = c.events.size(); i < 2 * c.steps.size(); ++i) {
      cudaEvent_t ev;
      KILN_CUDA_CHECK(cudaEventCreate(&ev));
      c.events.push_back(ev);
    }
  }
  Status st;
  if (graphable && c.runs > 0) {
    if (!c.graph_exec || c.captured_bound != c.bound) {
      if (c.graph_exec) {
        cudaGraphExecDestroy(c.graph_exec);
        c.graph_exec = nullptr;
      }
      KILN_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
      st = run_steps(c, stream);
      cudaGraph_t graph = nullptr;
      cudaError_t end = cudaStreamEndCapture(stream, &graph);
      if (!st.is_ok()) {
        if (graph) cudaGraphDestroy(graph);
        return st;
      }
      KILN_CUDA_CHECK(end);
      cudaError_t inst = cudaGraphInstantiate(&c.graph_exec, graph, 0);
      cudaGraphDestroy(graph);
      KILN_CUDA_CHECK(inst);
      c.captured_bound = c.bound;
    }
    KILN_CUDA_CHECK(cudaGraphLaunch(c.graph_exec, stream));
  } else {
    st = run_steps(c, stream);
    if (!st.is_ok()) return st;
  }
  ++c.runs;
  if (c.profiling) {
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
    c.times.clear();
    for (size_t si = 0; si < c.steps.size(); ++si) {
      float ms = 0;
      KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, c.events[2 * si], c.events[2 * si + 1]));
      c.times.push_back({c.steps[si].node->name, c.steps[si].node->op_type, ms, c.steps[si].node->tactic});
    }
  }
  return Status::ok();
}

Status execute_host(ContextState& c, const std::map<std::string, HostTensor>& inputs) {
  const ir::Graph& g = c.engine->graph();
  cudaStream_t stream = c.h.res().stream;
  if (c.owned_io.empty()) {
    c.owned_io.resize(c.io_values.size());
    for (size_t k = 0; k < c.io_values.size(); ++k)
      KILN_CUDA_CHECK(cudaMalloc(&c.owned_io[k].p, std::max<uint64_t>(value_bytes(c.value(c.io_values[k])), 1)));
  }
  for (size_t k = 0; k < c.io_values.size(); ++k) c.bound[k] = c.owned_io[k].p;
  for (auto* v : g.inputs) {
    const auto& t = inputs.at(v->name);
    if (t.bytes())
      KILN_CUDA_CHECK(cudaMemcpyAsync(c.owned_io[c.io_index.at(v->name)].p, t.raw(), t.bytes(), cudaMemcpyHostToDevice,
                                      stream));
  }
  KILN_RETURN_IF_ERROR(enqueue(c, stream));
  c.host_out.clear();
  for (auto* v : g.outputs) {
    HostTensor t(v->dtype, *v->shape.concrete());
    if (t.bytes())
      KILN_CUDA_CHECK(cudaMemcpyAsync(t.raw(), c.owned_io[c.io_index.at(v->name)].p, t.bytes(), cudaMemcpyDeviceToHost,
                                      stream));
    c.host_out.push_back(std::move(t));
  }
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  return Status::ok();
}

Result<TensorView> host_output(const ContextState& c, const std::string& name) {
  const ir::Graph& g = c.engine->graph();
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    if (g.outputs[i]->name != name) continue;
    if (i >= c.host_out.size())
      return Status(ErrorCode::kInvalidArgument, "output '" + name + "' is not available before execute()", "");
    const HostTensor& t = c.host_out[i];
    return TensorView{t.dtype(), t.dims(), const_cast<void*>(t.raw())};
  }
  std::vector<std::string> names;
  for (auto* v : g.outputs) names.push_back(v->name);
  return Status(ErrorCode::kNotFound, "engine has no output '" + name + "'", list_names(names));
}

}  // namespace kiln::cuda
