// Runtime side of the CUDA backend: engine weights on the device, and execution contexts
// (stream + library handles, activation arena at the plan's offsets, one kernel object
// per node, CUDA-graph capture of enqueue after the first run, host fallback nodes).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <map>
#include <unordered_map>

#include "builder/profiles.h"
#include "builder/specialize.h"
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
  bool dynamic = false;                    // the plan has optimisation profiles
  /// Dynamic plans: the input dims the stored compiled code was built for (the first
  /// profile's opt dims, as a shape signature); elsewhere kernels are built from tactics.
  std::vector<int64_t> artifact_signature;
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
  DeviceMem() = default;
  DeviceMem(DeviceMem&& o) noexcept : p(o.p) { o.p = nullptr; }
  DeviceMem& operator=(DeviceMem&&) = delete;
  ~DeviceMem() { reset(); }
  void reset() {
    if (p) cudaFree(p);
    p = nullptr;
  }
};

/// The engine's graph at one set of input dims: its kernels, the address of every value
/// and the CUDA graph captured from it. A static plan has one (over the plan's own graph);
/// a dynamic one has one per input shape a context has run, built on first use.
struct Spec {
  std::unique_ptr<ir::Graph> owned;  // dynamic plans: the specialised copy
  const ir::Graph* g = nullptr;
  std::vector<const ir::Value*> values;
  std::unordered_map<const ir::Value*, int> index;
  std::vector<Step> steps;
  std::vector<int> io_values;  // graph inputs then outputs, in ContextState::io order
  std::vector<void*> ptr;      // device address per value index (I/O: the bound buffers)
  std::vector<void*> base_ptr; // the same before I/O binding (constants: their device copy)
  uint64_t arena_bytes = 0;
  size_t workspace_bytes = 0;
  bool has_host = false;
  DeviceMem folded;            // constants made by the specialisation (not in the plan's weights)
  cudaGraphExec_t graph_exec = nullptr;
  std::vector<void*> captured_bound;  // addresses baked into graph_exec
  int runs = 0;
  ~Spec() { drop_graph(); }
  void drop_graph() {
    if (graph_exec) cudaGraphExecDestroy(graph_exec);
    graph_exec = nullptr;
  }
  const ir::Value* value(int i) const { return values[i]; }
};

}  // namespace

struct ContextState {
  std::shared_ptr<EngineState> engine;
  Handles h;
  Precision precision;
  DeviceMem arena, workspace;
  uint64_t arena_cap = 0;
  size_t workspace_cap = 0;
  std::vector<std::string> io_names;                // graph inputs then outputs
  std::unordered_map<std::string, int> io_index;
  std::vector<void*> bound;                         // per io entry
  /// The dynamic inputs' dims: the runtime's ExecutionContext::Impl::shapes, which owns
  /// this state and outlives it.
  const std::map<std::string, std::vector<int64_t>>* input_dims = nullptr;
  std::map<std::vector<int64_t>, std::unique_ptr<Spec>> specs;
  Spec* cur = nullptr;  // the spec of *input_dims; null after a shape change
  bool use_graph = true, profiling = false, poison = false;
  std::vector<LayerTime> times;
  std::vector<cudaEvent_t> events;
  // Synchronous host API.
  std::vector<DeviceMem> owned_io;
  std::vector<size_t> owned_io_bytes;
  std::vector<HostTensor> host_out;
  std::vector<const void*> in_scratch;
  std::vector<void*> out_scratch;

  ~ContextState() {
    specs.clear();  // graph execs before the memory they reference
    for (auto e : events) cudaEventDestroy(e);
  }
};

namespace {

uint64_t value_bytes(const ir::Value* v) {
  return static_cast<uint64_t>(std::max<int64_t>(v->shape.numel(), 0)) * dtype_size(v->dtype);
}

Status run_host_step(const Spec& sp, const Step& s, cudaStream_t stream) {
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<HostTensor> staged(s.in.size());
  std::vector<const HostTensor*> in(s.in.size(), nullptr);
  for (size_t k = 0; k < s.in.size(); ++k) {
    if (s.in[k] < 0) continue;
    const ir::Value* v = sp.value(s.in[k]);
    if (v->constant) {
      in[k] = v->constant.get();
      continue;
    }
    staged[k] = HostTensor(v->dtype, *v->shape.concrete());
    if (staged[k].bytes())
      KILN_CUDA_CHECK(cudaMemcpy(staged[k].raw(), sp.ptr[s.in[k]], staged[k].bytes(), cudaMemcpyDeviceToHost));
    in[k] = &staged[k];
  }
  runtime::Env env;
  env.graph = sp.g;
  KILN_ASSIGN_OR_RETURN(auto outs, runtime::run_node(*s.node, in, &env));
  for (size_t k = 0; k < s.out.size() && k < outs.size(); ++k) {
    if (s.out[k] < 0) continue;
    const ir::Value* v = sp.value(s.out[k]);
    if (outs[k].bytes() != value_bytes(v) || outs[k].dtype() != v->dtype)
      return Status(ErrorCode::kKernelFailed,
                    "host kernel produced " + dims_to_string(outs[k].dims()) + " " + dtype_name(outs[k].dtype()) +
                        " for '" + v->name + "', the plan expects " + v->shape.to_string() + " " + dtype_name(v->dtype),
                    "data-dependent output shapes are not supported on the CUDA backend", s.node->loc());
    if (outs[k].bytes())
      KILN_CUDA_CHECK(cudaMemcpy(sp.ptr[s.out[k]], outs[k].raw(), outs[k].bytes(), cudaMemcpyHostToDevice));
  }
  return Status::ok();
}

Status run_steps(ContextState& c, Spec& sp, cudaStream_t stream) {
  const ir::Graph& g = *sp.g;
  if (c.poison) {  // tests: every element of every output must be written
    if (sp.arena_bytes) KILN_CUDA_CHECK(cudaMemsetAsync(c.arena.p, 0xFF, sp.arena_bytes, stream));
    for (auto* v : g.outputs)
      if (value_bytes(v)) KILN_CUDA_CHECK(cudaMemsetAsync(sp.ptr[sp.index.at(v)], 0xFF, value_bytes(v), stream));
  }
  // Constant graph outputs (an engine input that is also an output shares its buffer).
  for (auto* v : g.outputs) {
    if (!v->constant || !value_bytes(v)) continue;
    const int i = sp.index.at(v);
    KILN_CUDA_CHECK(cudaMemcpyAsync(sp.ptr[i], sp.base_ptr[i], value_bytes(v), cudaMemcpyDeviceToDevice, stream));
  }
  for (size_t si = 0; si < sp.steps.size(); ++si) {
    Step& s = sp.steps[si];
    if (c.profiling) KILN_CUDA_CHECK(cudaEventRecord(c.events[2 * si], stream));
    if (s.kind == NodeKind::kView) {
      const int in0 = s.in[0], out0 = s.out[0];
      if (s.copy_out) {
        if (value_bytes(sp.value(out0)))
          KILN_CUDA_CHECK(cudaMemcpyAsync(sp.ptr[out0], sp.ptr[in0], value_bytes(sp.value(out0)),
                                          cudaMemcpyDeviceToDevice, stream));
      } else {
        sp.ptr[out0] = sp.ptr[in0];
      }
    }
    if (s.kernel) {
      c.in_scratch.assign(s.in.size(), nullptr);
      c.out_scratch.assign(s.out.size(), nullptr);
      for (size_t k = 0; k < s.in.size(); ++k)
        if (s.in[k] >= 0) c.in_scratch[k] = sp.ptr[s.in[k]];
      for (size_t k = 0; k < s.out.size(); ++k)
        if (s.out[k] >= 0 && !(k == 0 && s.kind == NodeKind::kView)) c.out_scratch[k] = sp.ptr[s.out[k]];
      LaunchArgs a{c.in_scratch.data(), c.out_scratch.data(), c.workspace.p, stream, c.h.res()};
      Status st = s.kernel->enqueue(a);
      if (!st.is_ok()) return st.at(s.node->loc());
    } else if (s.kind == NodeKind::kHost) {
      Status st = run_host_step(sp, s, stream);
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
  e->dynamic = !plan.info.profiles.empty();
  if (e->dynamic)
    e->artifact_signature = builder::shape_signature(
        *plan.graph, builder::profile_dims(plan.info.profiles[0], builder::ProfilePoint::kOpt));
  KILN_CUDA_CHECK(cudaSetDevice(device));
  KILN_CUDA_CHECK(cudaMalloc(&e->weights, std::max<uint64_t>(plan.info.file_bytes, 256)));
  KILN_CUDA_CHECK(cudaMemcpy(e->weights, plan.storage.get(), plan.info.file_bytes, cudaMemcpyHostToDevice));
  return e;
}

Engine::MemoryStats memory_stats(const EngineState& e) {
  return {e.plan->info.arena_bytes, e.plan->info.naive_bytes, e.plan->info.weights_bytes};
}

namespace {

/// Points the spec's activations into the context's arena (after it was (re)allocated).
void bind_arena(const ContextState& c, Spec& sp) {
  for (size_t i = 0; i < sp.values.size(); ++i) {
    const ir::Value* v = sp.values[i];
    if (!v->constant && v->mem_offset >= 0) sp.base_ptr[i] = static_cast<uint8_t*>(c.arena.p) + v->mem_offset;
  }
  sp.ptr = sp.base_ptr;
  sp.drop_graph();
}

/// Grows the arena and workspace to what `sp` needs; a growth moves every spec's
/// activations, so their CUDA graphs are dropped (recaptured on their next run).
Status fit_memory(ContextState& c, Spec& sp) {
  const bool grow_arena = sp.arena_bytes > c.arena_cap, grow_ws = sp.workspace_bytes > c.workspace_cap;
  if (grow_arena || grow_ws) KILN_CUDA_CHECK(cudaStreamSynchronize(c.h.res().stream));
  if (grow_ws) {
    c.workspace.reset();
    KILN_CUDA_CHECK(cudaMalloc(&c.workspace.p, sp.workspace_bytes));
    c.workspace_cap = sp.workspace_bytes;
    for (auto& [sig, other] : c.specs) other->drop_graph();
  }
  if (grow_arena) {
    c.arena.reset();
    KILN_CUDA_CHECK(cudaMalloc(&c.arena.p, sp.arena_bytes));
    c.arena_cap = sp.arena_bytes;
    for (auto& [sig, other] : c.specs) bind_arena(c, *other);
  }
  bind_arena(c, sp);
  return Status::ok();
}

/// Builds a spec over graph `g` (static: every value has a shape) from its lowered nodes.
Result<std::unique_ptr<Spec>> make_spec(ContextState& c, const ir::Graph& g, std::vector<LoweredNode> lowered,
                                        uint64_t arena_bytes) {
  const EngineState& e = *c.engine;
  auto sp = std::make_unique<Spec>();
  sp->g = &g;
  for (const auto& v : g.values()) {
    sp->index[v.get()] = static_cast<int>(sp->values.size());
    sp->values.push_back(v.get());
  }
  sp->arena_bytes = arena_bytes;
  sp->base_ptr.assign(sp->values.size(), nullptr);
  // Constants: in the plan's weights (uploaded with the engine), or made by the
  // specialisation (small: shape arithmetic results) and uploaded here.
  const auto* host_base = static_cast<const uint8_t*>(e.plan->storage.get());
  std::vector<std::pair<int, uint64_t>> folded;
  uint64_t folded_bytes = 0;
  for (size_t i = 0; i < sp->values.size(); ++i) {
    const ir::Value* v = sp->values[i];
    if (!v->constant) continue;
    const auto* hp = static_cast<const uint8_t*>(v->constant->raw());
    if (hp >= host_base && hp < host_base + e.plan->info.file_bytes) {
      sp->base_ptr[i] = static_cast<uint8_t*>(e.weights) + (hp - host_base);
    } else if (v->constant->bytes()) {
      folded.emplace_back(static_cast<int>(i), folded_bytes);
      folded_bytes += (v->constant->bytes() + 255) / 256 * 256;
    }
  }
  if (folded_bytes) {
    KILN_CUDA_CHECK(cudaMalloc(&sp->folded.p, folded_bytes));
    for (const auto& [i, off] : folded) {
      sp->base_ptr[i] = static_cast<uint8_t*>(sp->folded.p) + off;
      KILN_CUDA_CHECK(cudaMemcpy(sp->base_ptr[i], sp->values[i]->constant->raw(), sp->values[i]->constant->bytes(),
                                 cudaMemcpyHostToDevice));
    }
  }
  for (auto* v : g.inputs) sp->io_values.push_back(sp->index.at(v));
  for (auto* v : g.outputs)
    if (std::find(g.inputs.begin(), g.inputs.end(), v) == g.inputs.end()) sp->io_values.push_back(sp->index.at(v));
  size_t k = 0;
  for (const auto& n : g.nodes()) {
    LoweredNode& ln = lowered[k++];
    Step s;
    s.node = n.get();
    s.kind = ln.kind;
    s.kernel = std::move(ln.kernel);
    for (auto* v : n->inputs) s.in.push_back(v ? sp->index.at(v) : -1);
    for (auto* v : n->outputs) s.out.push_back(v ? sp->index.at(v) : -1);
    if (s.kind == NodeKind::kView) s.copy_out = g.is_output(n->outputs[0]);
    if (s.kind == NodeKind::kHost) sp->has_host = true;
    if (s.kernel) sp->workspace_bytes = std::max(sp->workspace_bytes, s.kernel->workspace_bytes());
    sp->steps.push_back(std::move(s));
  }
  KILN_RETURN_IF_ERROR(fit_memory(c, *sp));
  return sp;
}

/// The spec of the context's current input dims, built on first use.
Result<Spec*> current_spec(ContextState& c) {
  if (c.cur) return c.cur;
  const EngineState& e = *c.engine;
  const ir::Graph& g = e.graph();
  const auto& dims = *c.input_dims;
  for (const auto* v : g.inputs)
    if (!v->shape.is_static() && !dims.count(v->name))
      return Status(ErrorCode::kDynamicShapeUnresolved,
                    "dynamic input '" + v->name + "' " + v->shape.to_string() + " has no shape set",
                    "call set_input_shape (or set_input) for every dynamic input before enqueue");
  std::vector<int64_t> sig = builder::shape_signature(g, dims);
  auto it = c.specs.find(sig);
  if (it == c.specs.end()) {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    KILN_ASSIGN_OR_RETURN(LoweredGraph lg,
                          lower_for_shapes(g, dims, c.h.res(), c.precision, sig == e.artifact_signature));
    const ir::Graph& sg = *lg.graph;
    KILN_ASSIGN_OR_RETURN(auto sp, make_spec(c, sg, std::move(lg.nodes), lg.memory.arena_bytes));
    sp->owned = std::move(lg.graph);
    if (e.logger && e.logger->enabled(LogLevel::kDebug)) {
      std::string given;
      for (const auto& [name, d] : dims) given += (given.empty() ? "" : ", ") + name + ":" + dims_to_string(d);
      e.logger->log(LogLevel::kDebug,
                    "execution context: specialised to " + given + " in " +
                        std::to_string(std::chrono::duration<double, std::milli>(Clock::now() - t0).count()) +
                        " ms (" + std::to_string(sp->steps.size()) + " nodes, arena " +
                        std::to_string(sp->arena_bytes) + " bytes, " + std::to_string(lg.heuristic_fallbacks) +
                        " tactics re-chosen)");
    }
    it = c.specs.emplace(std::move(sig), std::move(sp)).first;
  }
  c.cur = it->second.get();
  return c.cur;
}

}  // namespace

Result<std::shared_ptr<ContextState>> create_context(std::shared_ptr<EngineState> e,
                                                   const std::map<std::string, std::vector<int64_t>>& input_dims) {
  // Kernel creation dominates a context's start-up (library first use, cuDNN plans): the
  // handles and each node are timed for -vv.
  using Clock = std::chrono::steady_clock;
  const auto t_handles = Clock::now();
  auto c = std::make_shared<ContextState>();
  c->engine = e;
  c->input_dims = &input_dims;
  KILN_RETURN_IF_ERROR(c->h.init(e->device));
  const double handles_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_handles).count();
  const auto& info = e->plan->info;
  const ir::Graph& g = e->graph();
  const char* poison = std::getenv("KILN_CUDA_POISON");
  c->poison = poison && poison[0] == '1';
  c->precision.allow_tf32 = info.allow_tf32;
  for (auto* v : g.inputs) {
    c->io_index[v->name] = static_cast<int>(c->io_names.size());
    c->io_names.push_back(v->name);
  }
  for (auto* v : g.outputs) {
    if (c->io_index.count(v->name)) continue;
    c->io_index[v->name] = static_cast<int>(c->io_names.size());
    c->io_names.push_back(v->name);
  }
  c->bound.assign(c->io_names.size(), nullptr);
  // The arena for the largest shape up front (a dynamic plan's max over its profiles), so
  // that switching shapes never reallocates it.
  if (info.arena_bytes) {
    KILN_CUDA_CHECK(cudaMalloc(&c->arena.p, info.arena_bytes));
    c->arena_cap = info.arena_bytes;
  }
  if (e->dynamic) return c;  // specs are built per input shape (current_spec)

  const auto t_start = Clock::now();
  size_t from_artifact = 0;
  std::vector<std::pair<double, const ir::Node*>> slowest;
  std::vector<LoweredNode> lowered;
  for (const auto& n : g.nodes()) {
    const auto t0 = Clock::now();
    KILN_ASSIGN_OR_RETURN(LoweredNode ln, lower_node(*n, c->h.res(), c->precision, n->tactic == kTacticHost));
    slowest.emplace_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count(), n.get());
    if (!n->tactic_artifact.empty()) ++from_artifact;
    lowered.push_back(std::move(ln));
  }
  KILN_ASSIGN_OR_RETURN(auto sp, make_spec(*c, g, std::move(lowered), info.arena_bytes));
  if (e->logger && e->logger->enabled(LogLevel::kDebug)) {
    const size_t top = std::min<size_t>(slowest.size(), 5);
    std::partial_sort(slowest.begin(), slowest.begin() + static_cast<std::ptrdiff_t>(top), slowest.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string msg = "execution context: stream and library handles in " + std::to_string(handles_ms) +
                      " ms; " + std::to_string(sp->steps.size()) + " nodes lowered in " +
                      std::to_string(std::chrono::duration<double, std::milli>(Clock::now() - t_start).count()) +
                      " ms (" + std::to_string(from_artifact) + " with stored compiled code); slowest:";
    for (size_t i = 0; i < top; ++i)
      msg += " '" + slowest[i].second->name + "' (" + slowest[i].second->tactic + ") " +
             std::to_string(slowest[i].first) + " ms;";
    e->logger->log(LogLevel::kDebug, msg);
  }
  c->cur = sp.get();
  c->specs.emplace(builder::shape_signature(g, *c->input_dims), std::move(sp));
  return c;
}

void input_shapes_changed(ContextState& c) { c.cur = nullptr; }

Result<std::vector<int64_t>> tensor_shape(ContextState& c, const std::string& name) {
  KILN_ASSIGN_OR_RETURN(Spec * sp, current_spec(c));
  const ir::Value* v = sp->g->find_value(name);
  if (!v || !v->shape.is_static())
    return Status(ErrorCode::kNotFound, "engine has no input or output '" + name + "'", list_names(c.io_names));
  return *v->shape.concrete();
}

Status set_tensor_address(ContextState& c, const std::string& name, void* ptr) {
  auto it = c.io_index.find(name);
  if (it == c.io_index.end())
    return Status(ErrorCode::kNotFound, "engine has no input or output '" + name + "'", list_names(c.io_names));
  c.bound[it->second] = ptr;  // null is fine for an empty tensor; enqueue checks the others
  return Status::ok();
}

void set_cuda_graph(ContextState& c, bool on) { c.use_graph = on; }
void* context_stream(const ContextState& c) { return c.h.res().stream; }
void set_profiling(ContextState& c, bool on) { c.profiling = on; }
const std::vector<LayerTime>& layer_times(const ContextState& c) { return c.times; }

Status enqueue(ContextState& c, void* stream_arg) {
  cudaStream_t stream = stream_arg ? static_cast<cudaStream_t>(stream_arg) : c.h.res().stream;
  KILN_ASSIGN_OR_RETURN(Spec * spp, current_spec(c));
  Spec& sp = *spp;
  std::string missing;
  for (size_t k = 0; k < sp.io_values.size(); ++k) {
    const ir::Value* v = sp.value(sp.io_values[k]);
    if (!c.bound[k] && value_bytes(v)) missing += (missing.empty() ? "'" : ", '") + v->name + "'";
    sp.ptr[sp.io_values[k]] = c.bound[k];
  }
  if (!missing.empty())
    return Status(ErrorCode::kMissingInput, "no device address set for " + missing,
                  "call set_tensor_address for every engine input and output before enqueue");
  KILN_CUDNN_CHECK(cudnnSetStream(c.h.res().cudnn, stream));
  const bool graphable = c.use_graph && !sp.has_host && !c.profiling;
  if (c.profiling && c.events.size() < 2 * sp.steps.size()) {
    for (size_t i = c.events.size(); i < 2 * sp.steps.size(); ++i) {
      cudaEvent_t ev;
      KILN_CUDA_CHECK(cudaEventCreate(&ev));
      c.events.push_back(ev);
    }
  }
  Status st;
  if (graphable && sp.runs > 0) {
    if (!sp.graph_exec || sp.captured_bound != c.bound) {
      sp.drop_graph();
      KILN_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
      st = run_steps(c, sp, stream);
      cudaGraph_t graph = nullptr;
      cudaError_t end = cudaStreamEndCapture(stream, &graph);
      if (!st.is_ok()) {
        if (graph) cudaGraphDestroy(graph);
        return st;
      }
      KILN_CUDA_CHECK(end);
      cudaError_t inst = cudaGraphInstantiate(&sp.graph_exec, graph, 0);
      cudaGraphDestroy(graph);
      KILN_CUDA_CHECK(inst);
      sp.captured_bound = c.bound;
    }
    KILN_CUDA_CHECK(cudaGraphLaunch(sp.graph_exec, stream));
  } else {
    st = run_steps(c, sp, stream);
    if (!st.is_ok()) return st;
  }
  ++sp.runs;
  if (c.profiling) {
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
    c.times.clear();
    for (size_t si = 0; si < sp.steps.size(); ++si) {
      float ms = 0;
      KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, c.events[2 * si], c.events[2 * si + 1]));
      c.times.push_back({sp.steps[si].node->name, sp.steps[si].node->op_type, ms, sp.steps[si].node->tactic});
    }
  }
  return Status::ok();
}

Status execute_host(ContextState& c, const std::map<std::string, HostTensor>& inputs) {
  cudaStream_t stream = c.h.res().stream;
  KILN_ASSIGN_OR_RETURN(Spec * sp, current_spec(c));
  const ir::Graph& g = *sp->g;
  // Context-owned I/O buffers, grown to this shape's sizes.
  c.owned_io.resize(c.io_names.size());
  c.owned_io_bytes.resize(c.io_names.size(), 0);
  for (size_t k = 0; k < sp->io_values.size(); ++k) {
    const size_t need = std::max<uint64_t>(value_bytes(sp->value(sp->io_values[k])), 1);
    if (need > c.owned_io_bytes[k]) {
      KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
      c.owned_io[k].reset();
      KILN_CUDA_CHECK(cudaMalloc(&c.owned_io[k].p, need));
      c.owned_io_bytes[k] = need;
    }
    c.bound[k] = c.owned_io[k].p;
  }
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
