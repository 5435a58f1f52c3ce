// Runtime → Engine → ExecutionContext on the CPU backend (the graph executor over the op
// table's kernels).
#include <fstream>

#ifdef KILN_WITH_CUDA
#include "cuda/backend.h"
#endif
#include "ops/registry.h"
#include "runtime/engine_impl.h"
#include "runtime/executor.h"

namespace kiln {

std::string list_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + ("'" + n + "'");
  return "valid names are: " + s;
}

const ir::Value* Engine::Impl::find_input(const std::string& name) const {
  for (auto* v : plan.graph->inputs) if (v->name == name) return v;
  return nullptr;
}
const ir::Value* Engine::Impl::find_output(const std::string& name) const {
  for (auto* v : plan.graph->outputs) if (v->name == name) return v;
  return nullptr;
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;
const ir::Graph& Engine::graph() const { return *impl_->plan.graph; }
Backend Engine::backend() const { return impl_->plan.info.backend; }

std::vector<std::string> Engine::input_names() const {
  std::vector<std::string> n;
  for (auto* v : impl_->plan.graph->inputs) n.push_back(v->name);
  return n;
}
std::vector<std::string> Engine::output_names() const {
  std::vector<std::string> n;
  for (auto* v : impl_->plan.graph->outputs) n.push_back(v->name);
  return n;
}

Result<TensorDesc> Engine::tensor_desc(const std::string& name) const {
  const ir::Value* v = impl_->find_input(name);
  if (!v) v = impl_->find_output(name);
  if (!v) {
    auto all = input_names();
    for (auto& o : output_names()) all.push_back(o);
    return Status(ErrorCode::kNotFound, "engine has no input or output '" + name + "'", list_names(all));
  }
  TensorDesc d{v->name, v->dtype, {}};
  for (const auto& dim : v->shape.dims) d.dims.push_back(dim.is_known() ? dim.value : -1);
  return d;
}

std::unique_ptr<ExecutionContext> Engine::create_execution_context() {
  auto r = create_execution_context_checked();
  if (!r.is_ok()) {
    impl_->logger->log(LogLevel::kError, r.status().to_string());
    return nullptr;
  }
  return std::move(r.value());
}

Result<std::unique_ptr<ExecutionContext>> Engine::create_execution_context_checked() {
  auto impl = std::make_unique<ExecutionContext::Impl>();
  impl->engine = this;
#ifdef KILN_WITH_CUDA
  if (impl_->cuda) {
    KILN_ASSIGN_OR_RETURN(impl->cuda, cuda::create_context(impl_->cuda));
  }
#endif
  return std::make_unique<ExecutionContext>(std::move(impl));
}

Engine::MemoryStats Engine::memory_stats() const {
#ifdef KILN_WITH_CUDA
  if (impl_->cuda) return cuda::memory_stats(*impl_->cuda);
#endif
  return {};
}

namespace {

/// An engine over a loaded plan (CUDA: weights uploaded). Errors: PlanBackendMismatch, an
/// op this kiln cannot run, CUDA errors.
Result<std::unique_ptr<Engine>> make_engine(plan::LoadedPlan lp, Logger& logger) {
#ifndef KILN_WITH_CUDA
  if (lp.info.backend != Backend::kCpu)
    return Status(ErrorCode::kPlanBackendMismatch,
                  std::string("plan was built for backend '") + backend_name(lp.info.backend) +
                      "', this kiln was built without CUDA",
                  "rebuild the plan with --backend cpu, or use a kiln built with CUDA");
#endif
  KILN_RETURN_IF_ERROR(resolve_schemas(*lp.graph).with_context("plan references an op this kiln cannot run"));
  auto impl = std::make_unique<Engine::Impl>();
  impl->plan = std::move(lp);
  impl->logger = &logger;
#ifdef KILN_WITH_CUDA
  if (impl->plan.info.backend == Backend::kCuda) {
    KILN_ASSIGN_OR_RETURN(impl->cuda, cuda::load_engine(impl->plan, logger));
  }
#endif
  return std::make_unique<Engine>(std::move(impl));
}

}  // namespace

Result<std::unique_ptr<Engine>> Runtime::deserialize(const void* data, size_t size) {
  KILN_ASSIGN_OR_RETURN(plan::LoadedPlan lp, plan::deserialize(data, size));
  return make_engine(std::move(lp), logger_);
}

Result<std::unique_ptr<Engine>> Runtime::deserialize_file(const std::string& path) {
  auto lp = plan::deserialize_file(path);
  auto r = lp.is_ok() ? make_engine(std::move(*lp), logger_) : Result<std::unique_ptr<Engine>>(lp.status());
  if (!r.is_ok()) return r.status().with_context("'" + path + "'");
  return r;
}

ExecutionContext::ExecutionContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExecutionContext::~ExecutionContext() = default;

Status ExecutionContext::set_input(const std::string& name, const TensorView& t) {
  const auto& e = *impl_->engine;
  const ir::Value* v = e.impl().find_input(name);
  if (!v) return Status(ErrorCode::kNotFound, "engine has no input '" + name + "'", list_names(e.input_names()));
  if (t.dtype != v->dtype)
    return Status(ErrorCode::kInputShapeMismatch,
                  "input '" + name + "' expects dtype " + dtype_name(v->dtype) + ", got " + dtype_name(t.dtype),
                  "convert the data to the engine's input type");
  if (v->shape.rank_known) {
    bool bad = v->shape.rank() != t.dims.size();
    for (size_t i = 0; !bad && i < t.dims.size(); ++i)
      bad = v->shape.dims[i].is_known() && v->shape.dims[i].value != t.dims[i];
    if (bad)
      return Status(ErrorCode::kInputShapeMismatch,
                    "input '" + name + "' expects shape " + v->shape.to_string() + ", got " + dims_to_string(t.dims),
                    "build the plan for this shape (kiln build --shapes " + name + ":" + dims_to_string(t.dims) + ")");
  }
  for (auto d : t.dims)
    if (d < 0) return Status(ErrorCode::kInputShapeMismatch, "input '" + name + "' has a negative dimension", "");
  if (!t.data && t.numel() > 0) return Status(ErrorCode::kInvalidArgument, "input '" + name + "' has no data", "");
  impl_->inputs[name] = HostTensor::wrap(t.dtype, t.dims, t.data, nullptr);
  return Status::ok();
}

Status ExecutionContext::execute() {
  const auto& g = impl_->engine->graph();
  std::vector<HostTensor> inputs;
  std::string missing;
  for (auto* v : g.inputs) {
    auto it = impl_->inputs.find(v->name);
    if (it == impl_->inputs.end()) missing += (missing.empty() ? "'" : ", '") + v->name + "'";
    else inputs.push_back(it->second);
  }
  if (!missing.empty())
    return Status(ErrorCode::kMissingInput, "inputs " + missing + " were not set", "call set_input for every engine input");
#ifdef KILN_WITH_CUDA
  if (impl_->cuda) {
    cuda::set_profiling(*impl_->cuda, impl_->profiling);
    return cuda::execute_host(*impl_->cuda, impl_->inputs);
  }
#endif
  impl_->layer_times.clear();
  runtime::NodeObserver profiler;
  if (impl_->profiling)
    profiler = [this](const ir::Node& n, const std::vector<HostTensor>&, double ms) {
      impl_->layer_times.push_back({n.name, n.op_type, ms});
    };
  KILN_ASSIGN_OR_RETURN(impl_->outputs, runtime::run_graph(g, inputs, nullptr, profiler));
  return Status::ok();
}

void ExecutionContext::set_profiling(bool on) { impl_->profiling = on; }
const std::vector<LayerTime>& ExecutionContext::layer_times() const {
#ifdef KILN_WITH_CUDA
  if (impl_->cuda) return cuda::layer_times(*impl_->cuda);
#endif
  return impl_->layer_times;
}

namespace {
Status cpu_engine(const char* what) {
  return Status(ErrorCode::kInvalidArgument, std::string(what) + " needs an engine of the CUDA backend",
                "build the plan with --backend cuda; CPU engines use set_input / execute / output");
}
}  // namespace

Status ExecutionContext::set_tensor_address(const std::string& name, void* device_ptr) {
#ifdef KILN_WITH_CUDA
  if (impl_->cuda) return cuda::set_tensor_address(*impl_->cuda, name, device_ptr);
#endif
  return cpu_engine("set_tensor_address");
}

Status ExecutionContext::enqueue(void* stream) {
#ifdef KILN_WITH_CUDA
  if (impl_->cuda) {
    cuda::set_profiling(*impl_->cuda, impl_->profiling);
    return cuda::enqueue(*impl_->cuda, stream);
  }
#endif
  return cpu_engine("enqueue");
}

void ExecutionContext::set_cuda_graph(bool on) {
#ifdef KILN_WITH_CUDA
  if (impl_->cuda) cuda::set_cuda_graph(*impl_->cuda, on);
#endif
}

void* ExecutionContext::stream() const {
#ifdef KILN_WITH_CUDA
  if (impl_->cuda) return cuda::context_stream(*impl_->cuda);
#endif
  return nullptr;
}

Result<TensorView> ExecutionContext::output(const std::string& name) const {
#ifdef KILN_WITH_CUDA
  if (impl_->cuda) return cuda::host_output(*impl_->cuda, name);
#endif
  const auto& g = impl_->engine->graph();
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    if (g.outputs[i]->name != name) continue;
    if (i >= impl_->outputs.size())
      return Status(ErrorCode::kInvalidArgument, "output '" + name + "' is not available before execute()", "");
    const HostTensor& t = impl_->outputs[i];
    return TensorView{t.dtype(), t.dims(), const_cast<void*>(t.raw())};
  }
  return Status(ErrorCode::kNotFound, "engine has no output '" + name + "'", list_names(impl_->engine->output_names()));
}

}  // namespace kiln
