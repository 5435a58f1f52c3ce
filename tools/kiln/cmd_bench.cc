// `kiln bench model.kiln|model.onnx`: kiln's trtexec. Times inferences over N concurrent
// streams after a warm-up and reports throughput and latency percentiles: on the CUDA
// backend GPU compute time, end-to-end latency (H2D + compute + D2H), host enqueue time
// and the copies; on the CPU backend the wall time of execute().
#include <algorithm>
#include <cctype>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "bench.h"
#include "cli.h"
#include "run_inputs.h"
#include "runtime/engine_impl.h"

namespace kiln::cli {
namespace {

// Keys in the order written: the report reads top-down (engine, config, ..., times).
using json = nlohmann::ordered_json;
using bench::RunConfig;
using bench::RunResult;
using bench::Samples;
using bench::Stats;

/// Enqueue time above this fraction of GPU compute time means the host cannot keep the
/// GPU busy: the warning threshold.
constexpr double kEnqueueBoundRatio = 0.8;

struct BenchOptions {
  std::string model;
  std::vector<std::string> shapes;
  ProfileOptions opt_profile;  ///< --min-shapes, --opt-shapes, --max-shapes
  int opt_level = 2;
  BackendOptions backend;
  InputOptions in;
  uint64_t seed = 1;
  double warmup_ms = 200;
  double duration_s = 3;
  int64_t iterations = 0;
  int streams = 1;
  bool no_cuda_graph = false;
  std::string json_path;
  int verbose = 0;
  int profile = 0;  ///< > 0: per-layer profile averaged over this many extra inferences
};

/// An engine input as benchmarked: its data and where it came from.
struct BenchInput {
  bench::InputData data;
  std::string source;
};

/// The constant an integer input gets when its name says what it is (BERT-style models
/// reject random masks and segment ids), or -1 for random values.
int64_t constant_for_name(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n.find("mask") != std::string::npos) return 1;
  if (n.find("token_type") != std::string::npos || n.find("segment") != std::string::npos) return 0;
  return -1;
}

/// Seeded random data: floats uniform in [-1, 1]; integers uniform in [0, 100) and bools
/// random, unless the name asks for a constant (constant_for_name). `source` describes it.
HostTensor random_tensor(DataType dt, const std::vector<int64_t>& dims, const std::string& name,
                         std::mt19937_64& rng, uint64_t seed, std::string& source) {
  HostTensor t(dt, dims);
  const int64_t fixed = dtype_is_float(dt) ? -1 : constant_for_name(name);
  const std::string seeded = " (seed " + std::to_string(seed) + ")";
  if (fixed >= 0) {
    for (int64_t i = 0; i < t.numel(); ++i) t.set_i64(i, fixed);
    source = "all " + std::to_string(fixed) + " (from the name)";
  } else if (dtype_is_float(dt)) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (int64_t i = 0; i < t.numel(); ++i) t.set_f64(i, u(rng));
    source = "random uniform [-1, 1]" + seeded;
  } else if (dt == DataType::kBool) {
    std::bernoulli_distribution b(0.5);
    for (int64_t i = 0; i < t.numel(); ++i) t.set_i64(i, b(rng));
    source = "random bools" + seeded;
  } else {
    std::uniform_int_distribution<int64_t> u(0, 99);
    for (int64_t i = 0; i < t.numel(); ++i) t.set_i64(i, u(rng));
    source = "random integers [0, 100)" + seeded;
  }
  return t;
}

/// Every engine input, from the files given or generated. Random inputs need fixed dims:
/// the engine's, else the --shapes entry, else the opt dims of the plan's first
/// optimisation profile. Files must match the engine's dtype and fixed dims exactly (their
/// bytes are bound as they are); the profile's ranges are checked when they are bound.
Result<std::vector<BenchInput>> make_inputs(
    const Engine& engine, const BenchOptions& o,
    const std::map<std::string, std::vector<int64_t>>& shapes) {
  InputOptions in = o.in;
  in.allow_missing = true;
  KILN_ASSIGN_OR_RETURN(auto given, gather_inputs(engine, in));
  std::mt19937_64 rng(o.seed);
  std::vector<BenchInput> out;
  for (const std::string& name : engine.input_names()) {
    KILN_ASSIGN_OR_RETURN(TensorDesc d, engine.tensor_desc(name));
    auto it = given.find(name);
    if (it != given.end()) {
      const HostTensor& t = it->second.tensor;
      bool same = t.dtype() == d.dtype && t.dims().size() == d.dims.size();
      for (size_t i = 0; same && i < d.dims.size(); ++i)
        same = d.dims[i] < 0 || d.dims[i] == t.dims()[i];
      if (!same)
        return Status(ErrorCode::kInputShapeMismatch,
                      "input '" + name + "' expects " + dtype_name(d.dtype) + "[" +
                          dims_to_string(d.dims) + "], " + it->second.source + " holds " +
                          dtype_name(t.dtype()) + "[" + dims_to_string(t.dims()) + "]",
                      "give data of the engine's dtype and shape");
      out.push_back({{name, t}, it->second.source});
      continue;
    }
    std::vector<int64_t> dims = d.dims;
    std::string at;  // where dynamic dims came from, for the report
    if (std::any_of(dims.begin(), dims.end(), [](int64_t v) { return v < 0; })) {
      auto s = shapes.find(name);
      auto range = engine.profile_shape(name, 0);  // an error for a plan without profiles
      if (s != shapes.end()) {
        dims = s->second;
      } else if (range.is_ok()) {
        dims = range->opt;
        at = ", opt shape of profile 0";
      } else {
        return Status(
            ErrorCode::kDynamicShapeUnresolved,
            "input '" + name + "' has symbolic dims (" + dims_to_string(d.dims) +
                "): bench cannot make random data for it",
            "give --shapes " + name + ":DIMS, or the data with --input " + name + "=FILE.npy");
      }
    }
    std::string source;
    HostTensor t = random_tensor(d.dtype, dims, name, rng, o.seed, source);
    out.push_back({{name, std::move(t)}, source + at});
  }
  return out;
}

/// CPU runner: execute() on its own context, timed on the host.
class CpuRunner final : public bench::StreamRunner {
 public:
  Status init(Engine& engine, const std::vector<BenchInput>& inputs) {
    KILN_ASSIGN_OR_RETURN(ctx_, engine.create_execution_context_checked());
    for (const BenchInput& in : inputs) {
      const HostTensor& t = in.data.tensor;
      TensorView v{t.dtype(), t.dims(), const_cast<void*>(t.raw())};
      KILN_RETURN_IF_ERROR(ctx_->set_input(in.data.name, v));
    }
    return Status::ok();
  }
  Status step(bool record, Samples& out) override {
    const auto t0 = std::chrono::steady_clock::now();
    KILN_RETURN_IF_ERROR(ctx_->execute());
    if (record) out.latency.push_back(ms_since(t0));
    return Status::ok();
  }
  Status drain(Samples&) override { return Status::ok(); }

 private:
  std::unique_ptr<ExecutionContext> ctx_;
};

// ---- report ------------------------------------------------------------------------------

json stats_json(const std::vector<double>& ms) {
  if (ms.empty()) return nullptr;
  const Stats s = bench::summarize(ms);
  return {{"count", s.count}, {"min", s.min}, {"mean", s.mean}, {"median", s.median},
          {"p90", s.p90},     {"p95", s.p95}, {"p99", s.p99},   {"max", s.max}};
}

/// Everything the report needs, gathered once for the text and the JSON form.
struct Report {
  const BenchOptions* o = nullptr;
  const Engine* engine = nullptr;
  std::string how;  ///< "built" or "loaded"
  double load_ms = 0;
  double first_inference_ms = -1;  ///< CUDA: context creation + one inference, after the load
  double context_ms = -1;          ///< CUDA: of which the context's creation
  std::string device_name;
  std::vector<BenchInput>* inputs = nullptr;
  RunConfig run;
  RunResult result;
  int64_t batch = 1;
  std::vector<std::string> warnings;
  std::vector<LayerTime> profile;  ///< --profile: mean per-layer times

  bool cuda() const { return engine->backend() == Backend::kCuda; }
  const plan::PlanInfo& info() const { return engine->impl().plan.info; }
};

std::string engine_line(const Report& r) {
  std::string s = r.how + " " + r.o->model + " in " + format_num("%.2f", r.load_ms) +
                  " ms: backend " + backend_name(r.engine->backend());
  if (r.cuda()) {
    s += std::string(", ") + precision_name(r.info().precision);
    if (r.info().precision == Precision::kFp32) s += r.info().allow_tf32 ? " (tf32)" : " (no tf32)";
    s += ", device " + std::to_string(r.run.device);
    if (!r.device_name.empty()) s += " " + r.device_name;
    if (r.first_inference_ms >= 0)
      s += "\ncold start: load " + format_num("%.1f", r.load_ms) + " ms + context " +
           format_num("%.1f", r.context_ms) + " ms + first inference " +
           format_num("%.1f", r.first_inference_ms - r.context_ms) + " ms = " +
           format_num("%.1f", r.load_ms + r.first_inference_ms) + " ms";
  }
  return s;
}

void print_text(std::ostream& os, const Report& r) {
  os << engine_line(r) << "\n";
  for (const BenchInput& in : *r.inputs)
    os << "input  " << in.data.name << "  "
       << typed_shape(in.data.tensor.dtype(), in.data.tensor.shape()) << "  " << in.source << "\n";
  for (const std::string& name : r.engine->output_names()) {
    auto d = r.engine->tensor_desc(name);
    if (d.is_ok())
      os << "output " << name << "  " << dtype_name(d->dtype) << "[" << dims_to_string(d->dims)
         << "]\n";
  }
  if (r.cuda()) {
    const Engine::MemoryStats m = r.engine->memory_stats();
    const double saving =
        m.naive_bytes ? 100.0 * (1.0 - double(m.arena_bytes) / double(m.naive_bytes)) : 0.0;
    os << "memory: weights " << format_bytes(m.weight_bytes) << ", activation arena "
       << format_bytes(m.arena_bytes) << " per context (naive " << format_bytes(m.naive_bytes)
       << ", saving " << format_num("%.1f", saving) << "%), " << r.run.streams
       << (r.run.streams == 1 ? " context" : " contexts") << "\n";
  }
  os << "run: " << r.run.streams << (r.run.streams == 1 ? " stream" : " streams");
  if (r.cuda()) os << ", CUDA graphs " << (r.run.cuda_graph ? "on" : "off");
  os << ", warm-up " << format_num("%g", r.run.warmup_ms) << " ms, ";
  if (r.run.iterations > 0)
    os << r.run.iterations << " iterations per stream\n";
  else
    os << "duration " << format_num("%g", r.run.duration_s) << " s\n";

  const RunResult& res = r.result;
  const double qps = res.wall_s > 0 ? double(res.inferences) / res.wall_s : 0.0;
  os << "=== performance summary ===\n"
     << "throughput: " << format_num("%.2f", qps) << " qps, "
     << format_num("%.1f", qps * double(r.batch)) << " items/s (batch " << r.batch << "; "
     << res.inferences << " inferences in " << format_num("%.3f", res.wall_s) << " s)\n";
  struct Row {
    const char* label;
    const std::vector<double>* ms;
  };
  const Samples& s = res.samples;
  const Row rows[] = {{"GPU compute", &s.gpu_compute},
                      {r.cuda() ? "latency" : "latency (execute)", &s.latency},
                      {"enqueue", &s.enqueue},
                      {"H2D", &s.h2d},
                      {"D2H", &s.d2h}};
  char buf[200];
  std::snprintf(buf, sizeof buf, "%-20s%9s%9s%9s%9s%9s%9s%9s\n", "times (ms)", "min", "mean",
                "median", "p90", "p95", "p99", "max");
  os << buf;
  for (const Row& row : rows) {
    if (row.ms->empty()) continue;
    const Stats st = bench::summarize(*row.ms);
    std::snprintf(buf, sizeof buf, "  %-18s%9.4f%9.4f%9.4f%9.4f%9.4f%9.4f%9.4f\n", row.label,
                  st.min, st.mean, st.median, st.p90, st.p95, st.p99, st.max);
    os << buf;
  }
  if (r.cuda())
    os << "latency = H2D + GPU compute + D2H of one inference (CUDA events); enqueue = host "
          "time of one enqueue() call\n";
  for (const std::string& w : r.warnings) os << "WARNING: " << w << "\n";
}

json report_json(const Report& r) {
  json j;
  j["schema"] = "kiln-bench/1";
  j["kiln_version"] = version();
  j["model"] = r.o->model;
  j["engine"] = {{"source", r.how},
                 {"load_ms", r.load_ms},
                 {"first_inference_ms", r.first_inference_ms},
                 {"context_ms", r.context_ms},
                 {"backend", backend_name(r.engine->backend())},
                 {"precision", r.cuda() ? json(precision_name(r.info().precision)) : json()},
                 {"allow_tf32", r.cuda() ? json(r.info().allow_tf32) : json()},
                 {"device", r.cuda() ? json(r.run.device) : json()},
                 {"device_name", r.cuda() ? json(r.device_name) : json()},
                 {"compute_capability", r.cuda() ? json(r.info().compute_capability) : json()}};
  j["config"] = {{"streams", r.run.streams},
                 {"warmup_ms", r.run.warmup_ms},
                 {"duration_s", r.run.iterations > 0 ? json() : json(r.run.duration_s)},
                 {"iterations", r.run.iterations > 0 ? json(r.run.iterations) : json()},
                 {"cuda_graph", r.cuda() ? json(r.run.cuda_graph) : json()},
                 {"seed", r.o->seed},
                 {"batch", r.batch}};
  j["inputs"] = json::array();
  for (const BenchInput& in : *r.inputs)
    j["inputs"].push_back({{"name", in.data.name},
                           {"dtype", dtype_name(in.data.tensor.dtype())},
                           {"shape", in.data.tensor.dims()},
                           {"source", in.source}});
  j["outputs"] = json::array();
  for (const std::string& name : r.engine->output_names()) {
    auto d = r.engine->tensor_desc(name);
    if (d.is_ok())
      j["outputs"].push_back({{"name", name}, {"dtype", dtype_name(d->dtype)}, {"shape", d->dims}});
  }
  const RunResult& res = r.result;
  const double qps = res.wall_s > 0 ? double(res.inferences) / res.wall_s : 0.0;
  j["throughput"] = {{"qps", qps},
                     {"items_per_s", qps * double(r.batch)},
                     {"inferences", res.inferences},
                     {"wall_s", res.wall_s}};
  const Samples& s = res.samples;
  j["times_ms"] = {{"gpu_compute", stats_json(s.gpu_compute)},
                   {"latency", stats_json(s.latency)},
                   {"enqueue", stats_json(s.enqueue)},
                   {"h2d", stats_json(s.h2d)},
                   {"d2h", stats_json(s.d2h)}};
  if (r.cuda()) {
    const Engine::MemoryStats m = r.engine->memory_stats();
    j["memory"] = {
        {"weight_bytes", m.weight_bytes},
        {"arena_bytes", m.arena_bytes},
        {"naive_bytes", m.naive_bytes},
        {"saving_pct",
         m.naive_bytes ? 100.0 * (1.0 - double(m.arena_bytes) / double(m.naive_bytes)) : 0.0},
        {"contexts", r.run.streams}};
  } else {
    j["memory"] = nullptr;
  }
  j["warnings"] = r.warnings;
  if (!r.profile.empty()) {
    nlohmann::json layers = nlohmann::json::array();
    for (const LayerTime& t : r.profile)
      layers.push_back({{"name", t.name}, {"op", t.op}, {"tactic", t.tactic}, {"ms", t.ms}});
    j["profile"] = {{"runs", r.o->profile}, {"layers", layers}};
  }
  return j;
}

// ---- the command -------------------------------------------------------------------------

/// Mean per-layer times over `runs` profiled inferences on a fresh context (trtexec's
/// --dumpProfile with --separateProfileRun: the timed run above is not slowed by events),
/// after one unprofiled inference. `context_ms`, when given, gets the context's creation time.
Result<std::vector<LayerTime>> profile_layers(Engine& e, const std::vector<BenchInput>& inputs,
                                              int runs, double* context_ms = nullptr) {
  const auto t0 = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<ExecutionContext> ctx, e.create_execution_context_checked());
  if (context_ms) *context_ms = ms_since(t0);
  for (const BenchInput& in : inputs) {
    const HostTensor& t = in.data.tensor;
    KILN_RETURN_IF_ERROR(
        ctx->set_input(in.data.name, TensorView{t.dtype(), t.dims(), const_cast<void*>(t.raw())}));
  }
  ctx->set_profiling(runs > 0);
  KILN_RETURN_IF_ERROR(ctx->execute());  // warm-up: first-launch costs stay out
  std::vector<LayerTime> mean;
  for (int i = 0; i < runs; ++i) {
    KILN_RETURN_IF_ERROR(ctx->execute());
    const std::vector<LayerTime>& t = ctx->layer_times();
    if (mean.empty()) mean = t;
    else
      for (size_t k = 0; k < t.size() && k < mean.size(); ++k) mean[k].ms += t[k].ms;
  }
  for (LayerTime& t : mean) t.ms /= runs;
  return mean;  // runs = 0: empty, after one inference (the cold-start measurement)
}

int run_bench(const BenchOptions& o) {
  Logger logger(log_level_for(o.verbose));
  BuilderConfig cfg;
  cfg.opt_level = o.opt_level;
  auto shapes = parse_shapes(o.shapes);
  if (!shapes.is_ok()) return fail(shapes.status());
  // With a profile, --shapes is the shape to run at (inside the profile), not a build shape.
  const auto build_shapes = o.opt_profile.given() ? std::vector<std::string>{} : o.shapes;
  if (Status st = apply_shape_options(build_shapes, o.opt_profile, builds_from_onnx(o.model), cfg);
      !st.is_ok())
    return fail(st);

  Report r;
  r.o = &o;
  // The CUDA driver's one-time start-up (a process cost, not the plan's) stays out of the
  // load time; a failure here is reported by the load itself.
  if (cuda_device_count() > 0) (void)use_cuda_device(o.backend.device.value_or(0));
  const auto t0 = std::chrono::steady_clock::now();
  auto engine = load_engine(o.model, logger, cfg, o.backend, &r.how);
  if (!engine.is_ok()) return fail(engine.status());
  r.load_ms = ms_since(t0);
  Engine& e = **engine;
  r.engine = &e;
  r.run.streams = o.streams;
  r.run.warmup_ms = o.warmup_ms;
  r.run.duration_s = o.duration_s;
  r.run.iterations = o.iterations;
  r.run.cuda_graph = !o.no_cuda_graph;
  r.run.device = o.backend.device.value_or(0);
  if (r.cuda()) {
    // A loaded plan did not go through use_cuda_device unless --device was given.
    if (Status st = use_cuda_device(r.run.device); !st.is_ok()) return fail(st);
    r.device_name = cuda_device_description(r.run.device);
  }

  auto inputs = make_inputs(e, o, *shapes);
  if (!inputs.is_ok()) return fail(inputs.status());
  r.inputs = &*inputs;
  if (!inputs->empty()) {
    const auto& dims = inputs->front().data.tensor.dims();
    r.batch = dims.empty() ? 1 : std::max<int64_t>(dims[0], 1);
  }

  if (r.cuda()) {
    // Cold start as a server sees it: a context, its kernels, and one inference.
    const auto t1 = std::chrono::steady_clock::now();
    auto first = profile_layers(e, *inputs, 0, &r.context_ms);
    if (!first.is_ok()) return fail(first.status(), kExitRuntime);
    r.first_inference_ms = ms_since(t1);
  }

  std::vector<std::unique_ptr<bench::StreamRunner>> runners;
  if (r.cuda()) {
    std::vector<bench::InputData> data;
    for (const BenchInput& in : *inputs) data.push_back(in.data);
    auto made = bench::make_cuda_runners(e, data, r.run);
    if (!made.is_ok()) return fail(made.status(), kExitRuntime);
    runners = std::move(*made);
  } else {
    for (int i = 0; i < o.streams; ++i) {
      auto cpu = std::make_unique<CpuRunner>();
      if (Status st = cpu->init(e, *inputs); !st.is_ok()) return fail(st, kExitRuntime);
      runners.push_back(std::move(cpu));
    }
  }
  auto result = bench::run_streams(runners, r.run);
  if (!result.is_ok()) return fail(result.status(), kExitRuntime);
  r.result = std::move(*result);

  const Samples& s = r.result.samples;
  if (!s.enqueue.empty() && !s.gpu_compute.empty()) {
    const double enq = bench::summarize(s.enqueue).mean;
    const double gpu = bench::summarize(s.gpu_compute).mean;
    if (enq > kEnqueueBoundRatio * gpu)
      r.warnings.push_back("enqueue-bound: mean enqueue time " + format_num("%.4f", enq) +
                           " ms is " + format_num("%.0f", gpu > 0 ? 100.0 * enq / gpu : 100.0) +
                           "% of mean GPU compute time " + format_num("%.4f", gpu) +
                           " ms: use CUDA graphs / larger batches" +
                           (r.run.cuda_graph ? "" : " (CUDA graphs are off: --no-cuda-graph)"));
  }

  if (o.profile > 0) {
    auto prof = profile_layers(e, *inputs, o.profile);
    if (!prof.is_ok()) return fail(prof.status(), kExitRuntime);
    r.profile = std::move(*prof);
  }

  // With --json - the JSON owns stdout; the text report goes to stderr.
  const bool json_stdout = o.json_path == "-";
  print_text(json_stdout ? std::cerr : std::cout, r);
  if (!r.profile.empty()) {
    (json_stdout ? std::cerr : std::cout).flush();
    print_profile(r.profile, 15, json_stdout ? stderr : stdout);
  }
  if (!o.json_path.empty()) {
    const std::string text = report_json(r).dump(2) + "\n";
    if (json_stdout) {
      std::cout << text;
    } else {
      if (Status st = write_file(o.json_path, text.data(), text.size()); !st.is_ok())
        return fail(st);
      std::cout << "wrote " << o.json_path << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

Command add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand(
      "bench", "Measure throughput and latency of a plan (or an .onnx model, built in memory)");
  sub->add_option("model", o->model, "plan file (.kiln) or ONNX model (.onnx)")->required();
  sub->add_option("--shapes", o->shapes,
                  "concrete shapes for symbolic inputs (build, and random data): "
                  "NAME:1x3x224x224[,NAME2:...]; repeatable. With a dynamic plan, or with "
                  "--min/--max-shapes: the shape to run at, inside the profile (default: its opt)")
      ->allow_extra_args(false);
  add_profile_options(sub, o->opt_profile);
  sub->add_option("--opt-level", o->opt_level, "when building an .onnx: optimisation level 0-3")
      ->check(CLI::Range(0, 3))
      ->capture_default_str();
  add_backend_options(sub, o->backend);
  sub->add_option("--input", o->in.npy,
                  "data for an input from an .npy file: NAME=FILE.npy; repeatable (others are "
                  "random)")
      ->allow_extra_args(false);
  sub->add_option("--inputs", o->in.npz, "data for inputs from an .npz archive");
  sub->add_option("--seed", o->seed, "seed of the random inputs")->capture_default_str();
  sub->add_option("--warmup-ms", o->warmup_ms, "warm-up time before measuring, ms")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  auto* duration = sub->add_option("--duration-s", o->duration_s, "measure for this long, seconds")
                       ->check(CLI::PositiveNumber)
                       ->capture_default_str();
  sub->add_option("--iterations", o->iterations,
                  "measure this many inferences per stream instead of a duration")
      ->check(CLI::PositiveNumber)
      ->excludes(duration);
  sub->add_option("--streams", o->streams,
                  "concurrent streams, each with its own context and thread")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  sub->add_flag("--no-cuda-graph", o->no_cuda_graph,
                "CUDA: launch the kernels on every enqueue instead of replaying a CUDA graph");
  sub->add_option("--json", o->json_path,
                  "write every figure as JSON to FILE ('-': stdout, the text goes to stderr)");
  sub->add_option("--profile", o->profile,
                  "after the timed run, profile N more inferences per layer (GPU time per node, "
                  "no CUDA graph) and print the mean per op type and the slowest layers")
      ->check(CLI::PositiveNumber);
  sub->add_flag("-v,--verbose", o->verbose, "log more (-v info, -vv debug)");
  return {sub, [o] { return run_bench(*o); }};
}

}  // namespace kiln::cli
