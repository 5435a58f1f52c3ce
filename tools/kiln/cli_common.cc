// Helpers shared by the kiln subcommands (see cli.h).
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <algorithm>

#include "cli.h"
#include "engine/plan.h"

namespace kiln::cli {

const std::vector<ExitCodeInfo>& exit_code_table() {
  static const std::vector<ExitCodeInfo> t = {
      {kExitOk, "success"},
      {kExitInternal, "internal error (a kiln bug: please report it)"},
      {kExitUsage,
       "usage error: bad command line, unknown input/output/pass name, missing inputs or "
       "--shapes, an optimisation profile that does not fit the model"},
      {kExitIo, "a file cannot be read or written (also missing external-data files)"},
      {kExitModel,
       "invalid model: malformed ONNX, dangling input, cycle, duplicate name, bad tensor or "
       "attribute, shape error"},
      {kExitUnsupported, "unsupported: operator, opset, IR version, attribute value or data type"},
      {kExitPlan,
       "build or plan error: pass failure, not a plan, corrupt/truncated plan, other format "
       "version or backend"},
      {kExitRuntime,
       "runtime error: input of the wrong shape or type or outside the optimisation profile, "
       "kernel failure, out of memory, no usable GPU, CUDA/cuDNN/cuBLAS failure"},
  };
  return t;
}

std::string exit_codes_footer() {
  std::string s = "Exit codes:\n";
  for (const auto& e : exit_code_table())
    s += "  " + std::to_string(e.code) + "  " + e.meaning + "\n";
  s += "Errors print as error[KLN-Ennnn]: ...; `kiln explain KLN-Ennnn` explains one.";
  return s;
}

void add_footer(CLI::App* sub) { sub->footer(exit_codes_footer()); }

int exit_code_for(ErrorCode code) {
  if (is_unsupported_feature(code)) return kExitUnsupported;
  switch (code) {
    case ErrorCode::kOk:
      return kExitOk;
    case ErrorCode::kInternal:
      return kExitInternal;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kNotFound:
    case ErrorCode::kDynamicShapeUnresolved:
    case ErrorCode::kMissingInput:
    case ErrorCode::kProfileInvalid:  // --min/--opt/--max-shapes that do not fit the model
      return kExitUsage;
    case ErrorCode::kIoError:
    case ErrorCode::kOnnxExternalData:
      return kExitIo;
    case ErrorCode::kInputShapeMismatch:
    case ErrorCode::kInputOutsideProfile:
    case ErrorCode::kOutOfMemory:
      return kExitRuntime;
    // A plan for another GPU is a plan problem like one for another backend; a node
    // without a GPU kernel is a feature kiln lacks.
    case ErrorCode::kGpuArchMismatch:
      return kExitPlan;
    case ErrorCode::kNoGpuKernel:
      return kExitUnsupported;
    default:
      break;
  }
  // Everything else by catalogue section (error_codes.def): 1xxx/2xxx model problems,
  // 3xxx build, 4xxx plan files, 5xxx runtime, 6xxx GPU (no GPU, CUDA library failures).
  const int n = static_cast<int>(code);
  if (n >= 1000 && n < 3000) return kExitModel;
  if (n >= 3000 && n < 5000) return kExitPlan;
  if (n >= 5000 && n < 7000) return kExitRuntime;
  return kExitInternal;
}

int fail(const Status& st, int exit_code) {
  std::cerr << st.to_string() << "\n";
  return exit_code >= 0 ? exit_code : exit_code_for(st.code());
}

LogLevel log_level_for(int verbosity) {
  switch (verbosity) {
    case 0:
      return LogLevel::kWarning;
    case 1:
      return LogLevel::kInfo;
    case 2:
      return LogLevel::kDebug;
    default:
      return LogLevel::kTrace;
  }
}

Result<std::map<std::string, std::vector<int64_t>>> parse_shapes(
    const std::vector<std::string>& specs, const std::string& flag) {
  std::map<std::string, std::vector<int64_t>> out;
  auto bad = [&flag](const std::string& entry, const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, flag + " entry '" + entry + "' " + why,
                  "write " + flag +
                      " NAME:1x3x224x224, several separated by ',' (NAME:DIMS,NAME2:DIMS)");
  };
  for (const auto& spec : specs) {
    // Split on ','; a piece without ':' continues the previous entry's dims ("x:1,3,224").
    std::vector<std::string> entries;
    size_t start = 0;
    while (start <= spec.size()) {
      size_t comma = spec.find(',', start);
      std::string piece =
          spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (piece.find(':') == std::string::npos && !entries.empty())
        entries.back() += "," + piece;
      else
        entries.push_back(piece);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    for (const auto& e : entries) {
      size_t colon = e.rfind(':');
      if (colon == std::string::npos || colon == 0) return bad(e, "has no 'NAME:' prefix");
      std::string name = e.substr(0, colon);
      auto dims = parse_dims(e.substr(colon + 1));
      if (!dims) return bad(e, "has malformed dimensions (expected e.g. 1x3x224x224)");
      if (out.count(name)) return bad(e, "sets input '" + name + "' a second time");
      out[name] = *dims;
    }
  }
  return out;
}

void add_profile_options(CLI::App* sub, ProfileOptions& o) {
  sub->add_option("--min-shapes", o.min,
                  "when building an .onnx: a dynamic plan's smallest input shapes, "
                  "NAME:1x3x224x224[,NAME2:...]; with --max-shapes (and --opt-shapes) it gives "
                  "one optimisation profile")
      ->allow_extra_args(false);
  sub->add_option("--opt-shapes", o.opt,
                  "the profile's most frequent shapes, tuned for (default: the max shapes)")
      ->allow_extra_args(false);
  sub->add_option("--max-shapes", o.max, "the profile's largest input shapes")
      ->allow_extra_args(false);
}

Result<std::optional<OptimizationProfile>> parse_profile(const ProfileOptions& o) {
  if (!o.given()) return std::optional<OptimizationProfile>{};
  const char* example =
      "a profile needs --min-shapes and --max-shapes (--opt-shapes defaults to the max), e.g. "
      "--min-shapes x:1x3x224x224 --opt-shapes x:4x3x224x224 --max-shapes x:8x3x224x224";
  if (o.min.empty() || o.max.empty())
    return Status(ErrorCode::kInvalidArgument,
                  std::string(o.min.empty() ? "--min-shapes" : "--max-shapes") +
                      " is missing: the optimisation profile has no " +
                      (o.min.empty() ? "smallest" : "largest") + " shapes",
                  example);
  KILN_ASSIGN_OR_RETURN(auto min, parse_shapes(o.min, "--min-shapes"));
  KILN_ASSIGN_OR_RETURN(auto max, parse_shapes(o.max, "--max-shapes"));
  auto opt = max;
  if (!o.opt.empty()) {
    KILN_ASSIGN_OR_RETURN(opt, parse_shapes(o.opt, "--opt-shapes"));
  }
  // Every input in one flag must be in the others given: a range needs both ends.
  std::vector<std::pair<const char*, const std::map<std::string, std::vector<int64_t>>*>> flags =
      {{"--min-shapes", &min}, {"--max-shapes", &max}};
  if (!o.opt.empty()) flags.emplace_back("--opt-shapes", &opt);
  for (const auto& [flag, dims] : flags)
    for (const auto& [other_flag, other] : flags)
      for (const auto& entry : *dims)
        if (!other->count(entry.first))
          return Status(ErrorCode::kInvalidArgument,
                        std::string(flag) + " gives input '" + entry.first + "', " + other_flag +
                            " does not",
                        std::string("give every dynamic input in each of --min-shapes, ") +
                            (o.opt.empty() ? "" : "--opt-shapes, ") + "--max-shapes");
  OptimizationProfile p;
  for (const auto& [name, lo] : min) p.inputs[name] = {lo, opt.at(name), max.at(name)};
  return std::optional<OptimizationProfile>(std::move(p));
}

Status apply_shape_options(const std::vector<std::string>& shapes, const ProfileOptions& profile,
                           bool building, BuilderConfig& cfg) {
  if (!shapes.empty() && profile.given())
    return Status(ErrorCode::kInvalidArgument,
                  "--shapes and --min-shapes/--opt-shapes/--max-shapes exclude each other",
                  "--shapes builds a static plan for one shape; --min-shapes/--opt-shapes/"
                  "--max-shapes build a dynamic plan for a range of shapes: give one of them");
  KILN_ASSIGN_OR_RETURN(auto fixed, parse_shapes(shapes));
  KILN_ASSIGN_OR_RETURN(auto p, parse_profile(profile));
  if (!building) {
    if (p)
      std::cerr << "note: --min-shapes/--opt-shapes/--max-shapes are ignored: a plan keeps the "
                   "optimisation profiles it was built with (`kiln inspect` lists them)\n";
    return Status::ok();
  }
  cfg.input_shapes = std::move(fixed);
  if (p) cfg.profiles = {std::move(*p)};
  return Status::ok();
}

Result<std::string> read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return Status(ErrorCode::kIoError, "'" + path + "' is a directory, not a file",
                  "check the path");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f)
    return Status(ErrorCode::kIoError, "cannot open '" + path + "'",
                  "check the path and permissions");
  const std::streamoff size = f.tellg();
  std::string bytes(size > 0 ? static_cast<size_t>(size) : 0, '\0');
  f.seekg(0);
  if (size < 0 || (size > 0 && !f.read(bytes.data(), size)))
    return Status(ErrorCode::kIoError, "cannot read '" + path + "'", "check the file");
  return bytes;
}

int print_or_write(const std::string& text, const std::string& path) {
  if (path.empty()) {
    std::cout << text;
    return kExitOk;
  }
  Status st = write_file(path, text.data(), text.size());
  return st.is_ok() ? kExitOk : fail(st);
}

void add_output_option(CLI::App* sub, std::string& path) {
  sub->add_option("-o,--output", path, "write to this file instead of stdout");
}

Status write_file(const std::string& path, const void* data, size_t size) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (f) f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    f.close();
    if (!f) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return Status(ErrorCode::kIoError, "cannot write '" + path + "'",
                    "check the directory, permissions and free space");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return Status(ErrorCode::kIoError, "cannot write '" + path + "': " + ec.message(),
                  "check the path");
  }
  return Status::ok();
}

bool builds_from_onnx(const std::string& path) {
  // Only the magic decides; the parser or the runtime reads the file itself.
  char magic[sizeof plan::kMagic] = {};
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  f.read(magic, sizeof magic);
  const bool is_plan = f.gcount() == static_cast<std::streamsize>(sizeof magic) &&
                       std::memcmp(magic, plan::kMagic, sizeof magic) == 0;
  const bool is_onnx = path.size() >= 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
  return !is_plan && is_onnx;
}

Result<std::unique_ptr<Engine>> load_engine(const std::string& path, Logger& logger,
                                            const BuilderConfig& cfg, std::string* what) {
  if (!std::ifstream(path, std::ios::binary))
    return Status(ErrorCode::kIoError, "cannot open '" + path + "'", "check the path");
  if (builds_from_onnx(path)) {
    if (what) *what = "built";
    Parser parser(logger);
    auto net = parser.parse_from_file(path);
    if (!net.is_ok()) {
      // The other problems here; the caller prints the first (the exit code's source) last.
      for (const auto& d : parser.diagnostics())
        if (d.to_string() != net.status().to_string()) std::cerr << d.to_string() << "\n";
      return net.status();
    }
    Builder builder(logger);
    KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> plan_bytes,
                          builder.build_serialized_network(**net, cfg));
    return Runtime(logger).deserialize(plan_bytes.data(), plan_bytes.size());
  }
  if (what) *what = "loaded";
  return Runtime(logger).deserialize_file(path);
}

void add_backend_options(CLI::App* sub, BackendOptions& o) {
  sub->add_option("--backend", o.backend, "backend to build for: cpu (default) or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_flag("--fp16", o.fp16, "CUDA: store and compute float tensors in FP16");
  sub->add_flag("--bf16", o.bf16, "CUDA: store and compute float tensors in BF16");
  sub->add_flag("--no-tf32", o.no_tf32,
                "CUDA, FP32: no TF32 tensor cores in convolutions and GEMMs");
  sub->add_flag("--no-nhwc", o.no_nhwc,
                "CUDA: keep every tensor NCHW (no channels-last convolution regions)");
  sub->add_option("--device", o.device, "CUDA device ordinal (default 0)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--no-autotune", o.no_autotune,
                "CUDA: keep the libraries' heuristic kernel choices instead of timing every "
                "candidate on the GPU (faster build, slower engine)");
  sub->add_option("--timing-cache", o.timing_cache,
                  "CUDA: timing cache file: read before autotuning, rewritten after it, so a "
                  "rebuild picks the same tactics without timing them");
  sub->add_option("--workspace", o.workspace_mib,
                  "CUDA: the largest scratch memory one kernel may use, MiB (default 1024)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--tactic-sources", o.tactic_sources,
                  "CUDA: kernel sources the autotuner may choose from: names (kiln,cudnn,cublaslt) "
                  "or edits of the default set (-cublaslt, +kiln,-cudnn)");
  sub->add_option("--library-tradeoff", o.library_tradeoff_pct,
                  "CUDA: drop cuBLASLt or cuDNN from the engine (faster start-up) when running "
                  "their layers on other kernels costs at most this % of the layers' time "
                  "(default 2; negative: never)");
}

namespace {

/// A one-line progress bar on stderr for the autotuning phase (terminals only: logs and
/// pipes get the summary alone).
void draw_progress(const BuildProgress& p) {
  constexpr int kWidth = 30;
  const int filled = p.total ? static_cast<int>(kWidth * p.done / p.total) : kWidth;
  std::string layer = p.layer.size() > 40 ? "..." + p.layer.substr(p.layer.size() - 37) : p.layer;
  std::fprintf(stderr, "\r%s [%s%s] %zu/%zu %-40s", p.phase.c_str(), std::string(filled, '#').c_str(),
               std::string(kWidth - filled, '.').c_str(), p.done, p.total, layer.c_str());
  if (p.done == p.total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace

Status built_without_cuda() {
  return Status(ErrorCode::kNoGpu, "kiln was built without CUDA: the cuda backend is not available",
                "rebuild kiln with -DKILN_CUDA=ON (needs the CUDA toolkit), or use --backend cpu");
}

Status apply_backend_options(const BackendOptions& o, bool building, BuilderConfig& cfg) {
  if (o.fp16 && o.bf16)
    return Status(ErrorCode::kInvalidArgument, "--fp16 and --bf16 exclude each other",
                  "give one of them: --fp16 for FP16, --bf16 for BF16 (wider range)");
  // The CUDA-only options that were given, for messages.
  std::vector<std::string> cuda_only;
  if (o.fp16) cuda_only.push_back("--fp16");
  if (o.bf16) cuda_only.push_back("--bf16");
  if (o.no_tf32) cuda_only.push_back("--no-tf32");
  if (o.no_nhwc) cuda_only.push_back("--no-nhwc");
  if (o.device) cuda_only.push_back("--device");
  if (o.no_autotune) cuda_only.push_back("--no-autotune");
  if (o.timing_cache) cuda_only.push_back("--timing-cache");
  if (o.workspace_mib) cuda_only.push_back("--workspace");
  if (o.tactic_sources) cuda_only.push_back("--tactic-sources");
  if (o.library_tradeoff_pct) cuda_only.push_back("--library-tradeoff");
  if (o.device) cfg.device = *o.device;
  if (!building) {
    // A plan's backend and precision were fixed when it was built.
    std::vector<std::string> ignored;
    if (o.backend) ignored.push_back("--backend");
    for (const auto& f : cuda_only)
      if (f != "--device") ignored.push_back(f);
    for (const auto& f : ignored)
      std::cerr << "note: " << f
                << " is ignored: a plan keeps the backend and precision it was built with\n";
    return Status::ok();
  }
  const bool cuda = o.backend.value_or("cpu") == "cuda";
  if (!cuda && !cuda_only.empty()) {
    std::string flags;
    for (const auto& f : cuda_only) flags += (flags.empty() ? "" : ", ") + f;
    return Status(ErrorCode::kInvalidArgument,
                  flags + (cuda_only.size() == 1 ? " applies" : " apply") +
                      " to the cuda backend only, and the backend is cpu",
                  "add --backend cuda, or drop " + flags);
  }
#ifndef KILN_WITH_CUDA
  if (cuda) return built_without_cuda();
#endif
  cfg.backend = cuda ? Backend::kCuda : Backend::kCpu;
  cfg.precision = o.fp16 ? Precision::kFp16 : o.bf16 ? Precision::kBf16 : Precision::kFp32;
  cfg.allow_tf32 = !o.no_tf32;
  cfg.nhwc = !o.no_nhwc;
  cfg.autotune = !o.no_autotune;
  if (o.timing_cache) cfg.timing_cache = *o.timing_cache;
  if (o.workspace_mib) cfg.workspace_limit = static_cast<size_t>(*o.workspace_mib * 1024 * 1024);
  if (o.tactic_sources) {
    KILN_ASSIGN_OR_RETURN(cfg.tactic_sources, parse_tactic_sources(*o.tactic_sources));
  }
  if (o.library_tradeoff_pct) cfg.library_tradeoff = *o.library_tradeoff_pct / 100.0;
  if (isatty(fileno(stderr))) cfg.progress = draw_progress;
  return Status::ok();
}

Result<std::unique_ptr<Engine>> load_engine(const std::string& path, Logger& logger,
                                            BuilderConfig cfg, const BackendOptions& backend,
                                            std::string* what) {
  const bool building = builds_from_onnx(path);
  KILN_RETURN_IF_ERROR(apply_backend_options(backend, building, cfg));
  if (backend.device || (building && cfg.backend == Backend::kCuda)) {
    KILN_RETURN_IF_ERROR(use_cuda_device(cfg.device));
  }
  return load_engine(path, logger, cfg, what);
}

std::string group_digits(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string format_bytes(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string typed_shape(DataType t, const Shape& s) {
  return std::string(dtype_name(t)) + "[" + (s.rank_known && s.rank() == 0 ? "" : s.to_string()) +
         "]";
}

std::string sanitize_file_name(const std::string& name) {
  std::string s = name;
  for (char& c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return s.empty() ? "_" : s;
}

void print_profile(const std::vector<LayerTime>& times, size_t slowest, FILE* out) {
  std::map<std::string, std::pair<double, int>> by_op;
  double total = 0;
  for (const auto& t : times) {
    by_op[t.op].first += t.ms;
    ++by_op[t.op].second;
    total += t.ms;
  }
  std::vector<std::pair<std::string, std::pair<double, int>>> ops(by_op.begin(), by_op.end());
  std::sort(ops.begin(), ops.end(),
            [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::fprintf(out, "profile: %zu layers, %.3f ms\n  %-24s %8s %10s %7s\n", times.size(), total, "op",
              "layers", "ms", "%");
  for (const auto& [op, v] : ops)
    std::fprintf(out, "  %-24s %8d %10.3f %6.1f%%\n", op.c_str(), v.second, v.first,
                total > 0 ? 100 * v.first / total : 0.0);
  std::vector<LayerTime> slow = times;
  std::sort(slow.begin(), slow.end(),
            [](const LayerTime& a, const LayerTime& b) { return a.ms > b.ms; });
  slow.resize(std::min(slow.size(), slowest));
  std::fprintf(out, "  slowest layers:\n");
  for (const auto& t : slow)
    std::fprintf(out, "    %10.3f ms  %-16s %-32s %s\n", t.ms, t.op.c_str(), t.name.c_str(),
                t.tactic.c_str());
}

std::string format_num(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace kiln::cli
