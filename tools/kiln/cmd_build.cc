// `kiln build model.onnx -o model.kiln [--backend cuda --fp16]`: parse, optimise and
// serialise a plan for the CPU or the CUDA backend; prints the time of each phase and the
// plan size.
#include <algorithm>
#include <iostream>

#include "cli.h"
#include "ir/graph.h"
#include "passes/pass.h"

namespace kiln::cli {
namespace {

struct BuildOptions {
  std::string model;
  std::string output;
  std::vector<std::string> shapes;
  ProfileOptions opt_profile;  ///< --min-shapes, --opt-shapes, --max-shapes
  int opt_level = 2;
  std::vector<std::string> disabled_passes;
  std::vector<std::string> dump_after;
  BackendOptions backend;
  int verbose = 0;
};

std::vector<std::string> pass_names() {
  std::vector<std::string> names;
  for (const auto& e : passes::registered_passes()) names.push_back(e.make()->name());
  return names;
}

// Unknown pass names would otherwise be ignored silently by the pass manager.
Status check_pass_names(const std::vector<std::string>& given, const char* flag, bool allow_all) {
  const auto known = pass_names();
  for (const auto& n : given) {
    if (allow_all && n == "all") continue;
    if (std::find(known.begin(), known.end(), n) != known.end()) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    return Status(ErrorCode::kInvalidArgument,
                  std::string(flag) + " names pass '" + n + "', which does not exist",
                  known.empty() ? "this kiln has no registered passes"
                                : "passes are: " + list + (allow_all ? " (or 'all')" : ""));
  }
  return Status::ok();
}

std::string default_output(const std::string& model) {
  const size_t slash = model.find_last_of('/');
  const size_t dot = model.find_last_of('.');
  std::string stem = (dot != std::string::npos && (slash == std::string::npos || dot > slash))
                         ? model.substr(0, dot)
                         : model;
  return stem + ".kiln";
}

int run_build(const BuildOptions& o) {
  BuilderConfig cfg;
  cfg.opt_level = o.opt_level;
  cfg.disabled_passes = o.disabled_passes;
  cfg.dump_after = o.dump_after;
  if (Status st = apply_shape_options(o.shapes, o.opt_profile, /*building=*/true, cfg);
      !st.is_ok())
    return fail(st);
  if (Status st = apply_backend_options(o.backend, /*building=*/true, cfg); !st.is_ok())
    return fail(st);
  // Fail before a long parse when the GPU is missing; the builder times kernels on it.
  if (cfg.backend == Backend::kCuda)
    if (Status st = use_cuda_device(cfg.device); !st.is_ok()) return fail(st);
  if (Status st = check_pass_names(o.disabled_passes, "--disable-pass", false); !st.is_ok())
    return fail(st);
  if (Status st = check_pass_names(o.dump_after, "--dump-after", true); !st.is_ok())
    return fail(st);

  // Graph dumps are logged at info level, so asking for one raises the level.
  Logger logger(log_level_for(std::max(o.verbose, o.dump_after.empty() ? 0 : 1)));
  const std::string output = o.output.empty() ? default_output(o.model) : o.output;

  auto t0 = std::chrono::steady_clock::now();
  Parser parser(logger);
  auto net = parser.parse_from_file(o.model);
  if (!net.is_ok()) {
    for (const auto& d : parser.diagnostics())
      if (d.to_string() != net.status().to_string()) std::cerr << d.to_string() << "\n";
    return fail(net.status());
  }
  const double parse_ms = ms_since(t0);
  Builder builder(logger);
  auto plan = builder.build_serialized_network(**net, cfg);
  if (!plan.is_ok()) return fail(plan.status());
  t0 = std::chrono::steady_clock::now();
  if (Status st = write_file(output, plan->data(), plan->size()); !st.is_ok()) return fail(st);
  const double write_ms = ms_since(t0);

  std::printf("phase %-10s %9.2f ms\n", "parse", parse_ms);
  double total = parse_ms + write_ms;
  for (const auto& p : builder.phase_times()) {
    std::printf("phase %-10s %9.2f ms\n", p.phase.c_str(), p.ms);
    total += p.ms;
  }
  std::printf("phase %-10s %9.2f ms\n", "write", write_ms);
  std::printf("total            %9.2f ms\n", total);
  const ir::Graph& g = (*net)->graph();
  auto count = [](size_t n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
  };
  std::cout << "plan: " << output << ", " << format_bytes(plan->size()) << " ("
            << group_digits(plan->size()) << " bytes), " << count(g.nodes().size(), "layer") << ", "
            << count(g.inputs.size(), "input") << ", " << count(g.outputs.size(), "output")
            << ", opt level " << o.opt_level << ", backend " << backend_name(cfg.backend);
  if (cfg.backend == Backend::kCuda) {
    std::cout << " (" << precision_name(cfg.precision);
    if (cfg.precision == Precision::kFp32) std::cout << (cfg.allow_tf32 ? ", tf32" : ", no tf32");
    std::cout << ", device " << cfg.device << ")";
  }
  std::cout << "\n";
  return kExitOk;
}

}  // namespace

Command add_build_command(CLI::App& app) {
  auto o = std::make_shared<BuildOptions>();
  CLI::App* sub =
      app.add_subcommand("build", "Build a plan file from an ONNX model (CPU or CUDA backend)");
  sub->add_option("model", o->model, "ONNX model file")->required();
  sub->add_option("-o,--output", o->output,
                  "plan file to write (default: the model path with .kiln)");
  sub->add_option(
         "--shapes", o->shapes,
         "concrete shapes for inputs with symbolic dims: NAME:1x3x224x224[,NAME2:...]; repeatable")
      ->allow_extra_args(false);
  add_profile_options(sub, o->opt_profile);
  sub->add_option("--opt-level", o->opt_level,
                  "0 none, 1 cleanups and folding, 2 fusions, 3 aggressive")
      ->check(CLI::Range(0, 3))
      ->capture_default_str();
  sub->add_option("--disable-pass", o->disabled_passes, "skip the pass NAME; repeatable")
      ->allow_extra_args(false);
  sub->add_option("--dump-after", o->dump_after,
                  "print the graph after pass NAME ('all': every pass); repeatable")
      ->allow_extra_args(false);
  add_backend_options(sub, o->backend);
  sub->add_flag("-v,--verbose", o->verbose, "log more (-v info, -vv debug)");
  return {sub, [o] { return run_build(*o); }};
}

}  // namespace kiln::cli
