// `kiln run model.kiln --input x=x.npy`: one inference on the plan's backend (CPU or CUDA,
// through the synchronous host API); prints every output's shape, dtype and a short
// summary, and optionally writes the outputs as .npy / .npz files.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <algorithm>
#include <set>

#include "cli.h"
#include "io/npy.h"
#include "run_inputs.h"

namespace kiln::cli {
namespace {

struct RunOptions {
  std::string model;
  InputOptions in;
  std::string output_dir;
  std::string output_npz;
  int show = 8;
  int verbose = 0;
  bool profile = false;
  std::vector<std::string> shapes;
  ProfileOptions opt_profile;  ///< --min-shapes, --opt-shapes, --max-shapes
  BackendOptions backend;
  bool no_cuda_graph = false;
};

std::string format_value(const HostTensor& t, int64_t i) {
  char buf[48];
  if (t.dtype() == DataType::kBool) return t.get_i64(i) ? "true" : "false";
  if (dtype_is_int(t.dtype())) {
    if (t.dtype() == DataType::kU64)
      std::snprintf(buf, sizeof buf, "%llu",
                    static_cast<unsigned long long>(t.data<uint64_t>()[i]));
    else
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(t.get_i64(i)));
  } else {
    std::snprintf(buf, sizeof buf, "%.6g", t.get_f64(i));
  }
  return buf;
}

// "min -1.5  max 3  mean 0.25  (2 nan)" and the first `show` values.
std::string summarize(const HostTensor& t, int show) {
  const int64_t n = t.numel();
  if (n == 0) return "  (empty)\n";
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  int64_t nan = 0, inf = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = t.get_f64(i);
    if (std::isnan(v)) {
      ++nan;
      continue;
    }
    if (std::isinf(v)) ++inf;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  }
  char buf[160];
  std::string s;
  if (nan == n) {
    s = "  all " + std::to_string(n) + " values are nan\n";
  } else {
    std::snprintf(buf, sizeof buf, "  min %.6g  max %.6g  mean %.6g", lo, hi,
                  sum / static_cast<double>(n - nan));
    s = buf;
    if (nan) s += "  (" + std::to_string(nan) + " nan)";
    if (inf) s += "  (" + std::to_string(inf) + " inf)";
    s += "\n";
  }
  s += "  values:";
  const int64_t k = std::min<int64_t>(n, std::max(show, 0));
  for (int64_t i = 0; i < k; ++i) s += " " + format_value(t, i);
  if (k < n) s += " ... (" + group_digits(static_cast<uint64_t>(n)) + " values)";
  return s + "\n";
}

// NumPy has no bf16 / f8e4m3: such outputs are written as f32 (exact widening).
HostTensor for_numpy(const HostTensor& t, const std::string& name) {
  if (t.dtype() != DataType::kBF16 && t.dtype() != DataType::kF8E4M3) return t;
  std::cerr << "note: output '" << name << "' is " << dtype_name(t.dtype()) << "; written as f32\n";
  return t.cast(DataType::kF32);
}

Status write_outputs(const RunOptions& o,
                     const std::vector<std::pair<std::string, HostTensor>>& outputs) {
  if (!o.output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.output_dir, ec);
    if (ec)
      return Status(ErrorCode::kIoError,
                    "cannot create output directory '" + o.output_dir + "': " + ec.message(),
                    "check the path and permissions");
    std::set<std::string> used;
    for (const auto& [name, t] : outputs) {
      // Two names may sanitise alike ("a/b", "a:b"): number the later ones.
      const std::string base = sanitize_file_name(name);
      std::string file = base + ".npy";
      for (int k = 2; used.count(file); ++k) file = base + "_" + std::to_string(k) + ".npy";
      used.insert(file);
      const std::string path = (std::filesystem::path(o.output_dir) / file).string();
      KILN_RETURN_IF_ERROR(io::write_npy(path, for_numpy(t, name)));
      std::cout << "wrote " << path << "\n";
    }
  }
  if (!o.output_npz.empty()) {
    std::vector<io::NamedTensor> members;
    for (const auto& [name, t] : outputs) members.push_back({name, for_numpy(t, name)});
    KILN_RETURN_IF_ERROR(io::write_npz(o.output_npz, members));
    std::cout << "wrote " << o.output_npz << "\n";
  }
  return Status::ok();
}

int run_run(const RunOptions& o) {
  Logger logger(log_level_for(o.verbose));
  BuilderConfig cfg;
  if (Status st = apply_shape_options(o.shapes, o.opt_profile, builds_from_onnx(o.model), cfg);
      !st.is_ok())
    return fail(st);
  auto t0 = std::chrono::steady_clock::now();
  std::string how;
  auto engine = load_engine(o.model, logger, cfg, o.backend, &how);
  if (!engine.is_ok()) return fail(engine.status());
  const bool cuda = (*engine)->backend() == Backend::kCuda;
  std::printf("%s %s in %.2f ms%s\n", how.c_str(), o.model.c_str(), ms_since(t0),
              cuda ? " (backend cuda)" : "");

  auto inputs = gather_inputs(**engine, o.in);
  if (!inputs.is_ok()) return fail(inputs.status());
  auto made = (*engine)->create_execution_context_checked();
  if (!made.is_ok()) return fail(made.status(), kExitRuntime);
  std::unique_ptr<ExecutionContext> ctx = std::move(*made);
  if (cuda) ctx->set_cuda_graph(!o.no_cuda_graph);
  for (const auto& [name, in] : *inputs) {
    std::cout << "input " << name << ": " << typed_shape(in.tensor.dtype(), in.tensor.shape())
              << " from " << in.source << "\n";
    TensorView view{in.tensor.dtype(), in.tensor.dims(), const_cast<void*>(in.tensor.raw())};
    if (Status st = ctx->set_input(name, view); !st.is_ok()) return fail(st);
  }

  ctx->set_profiling(o.profile);
  t0 = std::chrono::steady_clock::now();
  Status st = ctx->execute();
  const double ms = ms_since(t0);
  if (!st.is_ok()) return fail(st, kExitRuntime);
  std::printf("inference: %.3f ms\n", ms);
  if (o.profile) print_profile(ctx->layer_times(), 10);

  std::vector<std::pair<std::string, HostTensor>> outputs;
  for (const auto& name : (*engine)->output_names()) {
    auto view = ctx->output(name);
    if (!view.is_ok()) return fail(view.status(), kExitRuntime);
    HostTensor t = HostTensor::wrap(view->dtype, view->dims, view->data, nullptr);
    std::cout << "output " << name << ": " << typed_shape(t.dtype(), t.shape()) << "\n"
              << summarize(t, o.show);
    outputs.emplace_back(name, std::move(t));
  }
  if (Status w = write_outputs(o, outputs); !w.is_ok()) return fail(w);
  return kExitOk;
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "Run a plan (or an .onnx model, built in memory) once");
  sub->add_option("model", o->model, "plan file (.kiln) or ONNX model (.onnx)")->required();
  sub->add_option("--input", o->in.npy, "input from an .npy file: NAME=FILE.npy; repeatable")
      ->allow_extra_args(false);
  sub->add_option("--inputs", o->in.npz,
                  "inputs from an .npz archive, members named after the inputs");
  sub->add_option("--image", o->in.images,
                  "input from an image, preprocessed to NCHW f32: NAME=FILE.png; repeatable")
      ->allow_extra_args(false);
  sub->add_option("--image-size", o->in.image_size,
                  "resize images to HxW (default: the input's H and W)");
  sub->add_option("--mean", o->in.mean,
                  "per-channel mean subtracted after scaling: r,g,b (default 0)");
  sub->add_option("--std", o->in.std,
                  "per-channel divisor applied after the mean: r,g,b (default 1)");
  sub->add_option("--scale", o->in.scale,
                  "pixel scale applied first, e.g. 1/255 (the default) or 1");
  sub->add_flag("--bgr", o->in.bgr,
                "feed channels in B,G,R order (mean/std are in that order too)");
  sub->add_option("--output-dir", o->output_dir,
                  "write each output to DIR/<name>.npy (name sanitised)");
  sub->add_option("--output-npz", o->output_npz, "write all outputs to one .npz archive");
  sub->add_option("--show", o->show, "how many leading values of each output to print")
      ->capture_default_str();
  sub->add_flag("-v,--verbose", o->verbose, "log more (-v info, -vv debug)");
  sub->add_flag("--profile", o->profile, "print per-layer and per-op-type times of the inference");
  sub->add_option("--shapes", o->shapes,
                  "when building an .onnx: concrete shapes for symbolic inputs, NAME:1x3x224x224")
      ->allow_extra_args(false);
  add_profile_options(sub, o->opt_profile);
  add_backend_options(sub, o->backend);
  sub->add_flag("--no-cuda-graph", o->no_cuda_graph,
                "CUDA: launch the kernels directly instead of replaying a CUDA graph");
  return {sub, [o] { return run_run(*o); }};
}

}  // namespace kiln::cli
