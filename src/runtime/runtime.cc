// Runtime → Engine → ExecutionContext on the CPU backend (the graph executor over the op
// table's kernels).
#include <algorithm>
#include <fstream>

#ifdef KILN_WITH_CUDA
#include "cuda/backend.h"
#endif
#include "builder/specialize.h"
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

int Engine::num_optimization_profiles() const { return static_cast<int>(impl_->plan.info.profiles.size()); }

Result<OptimizationProfile::Range> Engine::profile_shape(const std::string& input, int profile) const {
  const auto& profiles = impl_->plan.info.profiles;
  if (profile < 0 || profile >= static_cast<int>(profiles.size()))
    return Status(ErrorCode::kInvalidArgument,
                  "optimisation profile " + std::to_string(profile) + " does not exist; the plan has " +
                      std::to_string(profiles.size()),
                  profiles.empty() ? "the plan is static, or was built without --min-shapes/--max-shapes"
                                   : "valid indices are 0.." + std::to_string(profiles.size() - 1));
  auto it = profiles[profile].inputs.find(input);
  if (it == profiles[profile].inputs.end())
    return Status(ErrorCode::kNotFound, "optimisation profile " + std::to_string(profile) + " has no input '" + input + "'",
                  impl_->find_input(input) ? "the input is static" : list_names(input_names()));
  return it->second;
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
    KILN_ASSIGN_OR_RETURN(impl->cuda, cuda::create_context(impl_->cuda, impl->shapes));
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
#ifdef KILN_WITH_CUDA
  // The libraries' one-time start-up runs while the weights are read (cuda/backend.h).
  if (std::optional<plan::PlanPeek> peek = plan::peek_file(path); peek && peek->backend == Backend::kCuda)
    cuda::warm_up_libraries(peek->tactic_sources);
#endif
  auto lp = plan::deserialize_file(path);
  auto r = lp.is_ok() ? make_engine(std::move(*lp), logger_) : Result<std::unique_ptr<Engine>>(lp.status());
  if (!r.is_ok()) return r.status().with_context("'" + path + "'");
  return r;
}

ExecutionContext::ExecutionContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExecutionContext::~ExecutionContext() = default;

namespace {

/// `bound` widened element-wise to include `dims` (max when `up`, else min).
std::vector<int64_t> widened(std::vector<int64_t> bound, const std::vector<int64_t>& dims, bool up) {
  for (size_t i = 0; i < bound.size() && i < dims.size(); ++i)
    bound[i] = up ? std::max(bound[i], dims[i]) : std::min(bound[i], dims[i]);
  return bound;
}

/// Checks `dims` for engine input `v`: rank and the plan's fixed dims (InputShapeMismatch),
/// then the selected profile's ranges (InputOutsideProfile).
Status check_input_dims(const Engine::Impl& e, const ir::Value& v, const std::vector<int64_t>& dims, int profile) {
  const std::string& name = v.name;
  if (v.shape.rank_known) {
    bool bad = v.shape.rank() != dims.size();
    for (size_t i = 0; !bad && i < dims.size(); ++i) bad = v.shape.dims[i].is_known() && v.shape.dims[i].value != dims[i];
    if (bad)
      return Status(ErrorCode::kInputShapeMismatch,
                    "input '" + name + "' expects shape " + v.shape.to_string() + ", got " + dims_to_string(dims),
                    e.plan.info.profiles.empty()
                        ? "build the plan for this shape (kiln build --shapes " + name + ":" + dims_to_string(dims) + ")"
                        : "only the dynamic dims can vary; `kiln inspect` shows the plan's optimisation profiles");
  }
  for (auto d : dims)
    if (d < 0) return Status(ErrorCode::kInputShapeMismatch, "input '" + name + "' has a negative dimension", "");
  const auto& profiles = e.plan.info.profiles;
  if (profiles.empty()) return Status::ok();
  auto it = profiles[profile].inputs.find(name);
  if (it == profiles[profile].inputs.end()) return Status::ok();
  const auto& r = it->second;
  for (size_t d = 0; d < dims.size() && d < r.min.size(); ++d)
    if (dims[d] < r.min[d] || dims[d] > r.max[d])
      return Status(ErrorCode::kInputOutsideProfile,
                    "input '" + name + "' dimension " + std::to_string(d) + " is " + std::to_string(dims[d]) +
                        ", outside the range [" + std::to_string(r.min[d]) + ", " + std::to_string(r.max[d]) +
                        "] of optimisation profile " + std::to_string(profile) + " (min " + dims_to_string(r.min) +
                        ", max " + dims_to_string(r.max) + "; got " + dims_to_string(dims) + ")",
                    std::string(dims[d] > r.max[d] ? "split, crop or downscale the input"
                                                   : "pad or upscale the input") +
                        " into the range, select another profile (set_optimization_profile), or rebuild with a wider "
                        "profile: kiln build --" + (dims[d] > r.max[d] ? "max" : "min") + "-shapes " + name + ":" +
                        dims_to_string(widened(dims[d] > r.max[d] ? r.max : r.min, dims, dims[d] > r.max[d])) + " ...");
  return Status::ok();
}

}  // namespace

Status ExecutionContext::set_input(const std::string& name, const TensorView& t) {
  const auto& e = *impl_->engine;
  const ir::Value* v = e.impl().find_input(name);
  if (!v) return Status(ErrorCode::kNotFound, "engine has no input '" + name + "'", list_names(e.input_names()));
  if (t.dtype != v->dtype)
    return Status(ErrorCode::kInputShapeMismatch,
                  "input '" + name + "' expects dtype " + dtype_name(v->dtype) + ", got " + dtype_name(t.dtype),
                  "convert the data to the engine's input type");
  if (!t.data && t.numel() > 0) return Status(ErrorCode::kInvalidArgument, "input '" + name + "' has no data", "");
  KILN_RETURN_IF_ERROR(set_input_shape(name, t.dims));
  impl_->inputs[name] = HostTensor::wrap(t.dtype, t.dims, t.data, nullptr);
  return Status::ok();
}

Status ExecutionContext::set_optimization_profile(int index) {
  const int n = impl_->engine->num_optimization_profiles();
  if (index < 0 || index >= std::max(n, 1))
    return Status(ErrorCode::kInvalidArgument,
                  "optimisation profile " + std::to_string(index) + " does not exist; the plan has " + std::to_string(n),
                  n ? "valid indices are 0.." + std::to_string(n - 1) : "a plan without profiles has only index 0");
  if (index != impl_->profile) {
    // The shapes and data bound so far may lie outside the new ranges: set them again.
    impl_->shapes.clear();
    impl_->inputs.clear();
#ifdef KILN_WITH_CUDA
    if (impl_->cuda) cuda::input_shapes_changed(*impl_->cuda);
#endif
  }
  impl_->profile = index;
  return Status::ok();
}

int ExecutionContext::optimization_profile() const { return impl_->profile; }

Status ExecutionContext::set_input_shape(const std::string& name, const std::vector<int64_t>& dims) {
  const auto& e = *impl_->engine;
  const ir::Value* v = e.impl().find_input(name);
  if (!v) return Status(ErrorCode::kNotFound, "engine has no input '" + name + "'", list_names(e.input_names()));
  KILN_RETURN_IF_ERROR(check_input_dims(e.impl(), *v, dims, impl_->profile));
  if (v->shape.is_static()) return Status::ok();
  auto& cur = impl_->shapes[name];
  if (cur == dims) return Status::ok();
  cur = dims;
#ifdef KILN_WITH_CUDA
  if (impl_->cuda) cuda::input_shapes_changed(*impl_->cuda);
#endif
  return Status::ok();
}

Result<std::vector<int64_t>> ExecutionContext::tensor_shape(const std::string& name) const {
  const auto& e = *impl_->engine;
  const ir::Value* v = e.impl().find_input(name);
  if (!v) v = e.impl().find_output(name);
  if (!v) {
    auto all = e.input_names();
    for (auto& o : e.output_names()) all.push_back(o);
    return Status(ErrorCode::kNotFound, "engine has no input or output '" + name + "'", list_names(all));
  }
  if (v->shape.is_static()) return *v->shape.concrete();
  if (auto it = impl_->shapes.find(name); it != impl_->shapes.end()) return it->second;
  const ir::Graph& g = e.graph();
  for (const auto* in : g.inputs)
    if (!in->shape.is_static() && !impl_->shapes.count(in->name))
      return Status(ErrorCode::kDynamicShapeUnresolved,
                    in->name == name ? "the shape of dynamic input '" + name + "' " + in->shape.to_string() + " is not set"
                                     : "the shape of '" + name + "' depends on dynamic input '" + in->name + "' " +
                                           in->shape.to_string() + ", whose shape is not set",
                    "call set_input_shape (or set_input) for every dynamic input first");
#ifdef KILN_WITH_CUDA
  if (impl_->cuda) return cuda::tensor_shape(*impl_->cuda, name);
#endif
  const std::vector<int64_t> sig = builder::shape_signature(g, impl_->shapes);
  if (sig != impl_->out_dims_signature) {
    KILN_ASSIGN_OR_RETURN(auto s, builder::specialize(g, impl_->shapes, false));
    impl_->out_dims.clear();
    for (const auto* o : s->outputs) impl_->out_dims[o->name] = *o->shape.concrete();
    impl_->out_dims_signature = sig;
  }
  return impl_->out_dims.at(name);
}

Status ExecutionContext::execute() {
  const auto& g = impl_->engine->graph();
  std::vector<HostTensor> inputs;
  std::string missing;
  for (auto* v : g.inputs) {
    auto it = impl_->inputs.find(v->name);
    if (it == impl_->inputs.end()) {
      missing += (missing.empty() ? "'" : ", '") + v->name + "'";
      continue;
    }
    auto shape = impl_->shapes.find(v->name);
    if (shape != impl_->shapes.end() && shape->second != it->second.dims())
      return Status(ErrorCode::kInputShapeMismatch,
                    "input '" + v->name + "' was bound with dims " + dims_to_string(it->second.dims()) +
                        ", but its shape was then set to " + dims_to_string(shape->second),
                    "bind data of the new shape with set_input");
    inputs.push_back(it->second);
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
