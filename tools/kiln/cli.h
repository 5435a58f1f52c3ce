// Shared pieces of the `kiln` command-line tool: exit codes, error reporting, subcommand
// registration and small formatting helpers. Each subcommand lives in its own cmd_*.cc.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/shape.h"
#include "core/tensor.h"
#include "kiln/kiln.h"
#include "kiln/status.h"

namespace kiln::cli {

/// Process exit codes: one per error category, so scripts can tell a broken model from an
/// unsupported one or from a missing file. Documented in `kiln --help` and docs/cli.md.
enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,
  kExitUsage = 2,
  kExitIo = 3,
  kExitModel = 4,
  kExitUnsupported = 5,
  kExitPlan = 6,
  kExitRuntime = 7,
};

/// One row of the exit-code table (for the help footer, `kiln explain` and docs).
struct ExitCodeInfo {
  int code;
  const char* meaning;
};
const std::vector<ExitCodeInfo>& exit_code_table();
/// The help footer listing the exit codes.
std::string exit_codes_footer();

/// Category of an error code (error_codes.def): the exit code the CLI returns for it.
int exit_code_for(ErrorCode code);

/// Prints `st.to_string()` to stderr and returns its exit code, or `exit_code` when given
/// (e.g. kExitRuntime for any failure inside execute()).
int fail(const Status& st, int exit_code = -1);

/// A registered subcommand: its CLI11 app and the action to run when it was parsed.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_check_command(CLI::App& app);
Command add_build_command(CLI::App& app);
Command add_run_command(CLI::App& app);
Command add_inspect_command(CLI::App& app);
Command add_ops_command(CLI::App& app);
Command add_explain_command(CLI::App& app);
Command add_bench_command(CLI::App& app);

/// Backend and precision options of the commands that may build a plan from an .onnx
/// model (build, run, inspect, bench). Unset optionals mean "not given on the command line".
struct BackendOptions {
  std::optional<std::string> backend;  ///< "cpu" (default) or "cuda"
  bool fp16 = false;
  bool bf16 = false;
  bool no_tf32 = false;
  bool no_nhwc = false;
  std::optional<int> device;
  bool no_autotune = false;
  std::optional<std::string> timing_cache;
  std::optional<double> workspace_mib;
  std::optional<std::string> tactic_sources;
  std::optional<double> library_tradeoff_pct;
};
/// Adds --backend, --fp16, --bf16, --no-tf32, --no-nhwc, --device, --no-autotune,
/// --timing-cache, --workspace, --tactic-sources and --library-tradeoff to `sub`.
void add_backend_options(CLI::App* sub, BackendOptions& o);
/// True when load_engine builds `path` in memory (an .onnx file that is not a plan), i.e.
/// when build options apply. False for plans and for paths that cannot be opened.
bool builds_from_onnx(const std::string& path);
/// Checks the backend options and copies them into `cfg`. When `building` is false (the
/// model is a plan, whose backend and precision are fixed), --backend/--fp16/--bf16/
/// --no-tf32 are ignored with a note on stderr; --device still selects the GPU.
/// Errors: InvalidArgument (--fp16 with --bf16; a CUDA-only option without --backend
/// cuda), NoGpu (--backend cuda in a kiln built without CUDA).
Status apply_backend_options(const BackendOptions& o, bool building, BuilderConfig& cfg);
/// load_engine for the commands with backend options: checks them (apply_backend_options),
/// makes the GPU current when building for cuda or --device was given, then loads the plan
/// or builds the model with `cfg` plus the options.
Result<std::unique_ptr<Engine>> load_engine(const std::string& path, Logger& logger,
                                            BuilderConfig cfg, const BackendOptions& backend,
                                            std::string* what = nullptr);
/// The Status for "this kiln has no CUDA backend" (NoGpu, naming the rebuild option).
Status built_without_cuda();
/// Makes `device` the calling thread's current CUDA device (the runtime allocates and
/// launches on the current device). Errors: NoGpu (no GPU visible, or kiln built without
/// CUDA), InvalidArgument (ordinal out of range), CudaError.
Status use_cuda_device(int device);
/// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)", or "" when it cannot be queried.
std::string cuda_device_description(int device);

/// Logger level for a `-v` count: 0 warnings, 1 info, 2 debug, 3+ trace.
LogLevel log_level_for(int verbosity);

/// Parses --shapes values: "name:1x3x224x224[,name2:2x8]" (a dims list may also use ','
/// separators: "x:1,3,224,224"). A name may itself contain ':' (the last ':' splits).
/// Errors: InvalidArgument naming the bad entry (and `flag`, the option it came from).
Result<std::map<std::string, std::vector<int64_t>>> parse_shapes(
    const std::vector<std::string>& specs, const std::string& flag = "--shapes");

/// `--min-shapes`, `--opt-shapes`, `--max-shapes` as given (the commands that build from an
/// .onnx: build, run, bench, inspect). Together they give one optimisation profile.
struct ProfileOptions {
  std::vector<std::string> min, opt, max;
  bool given() const { return !min.empty() || !opt.empty() || !max.empty(); }
};
/// Adds --min-shapes, --opt-shapes and --max-shapes to `sub`.
void add_profile_options(CLI::App* sub, ProfileOptions& o);
/// The profile of `o` (each flag parsed with parse_shapes), nullopt when no flag was given.
/// --min-shapes and --max-shapes are required together and must name the same inputs;
/// --opt-shapes is optional and defaults to the max shapes (tune for the largest shape,
/// the one the memory is sized for); when given, it names the same inputs too. Ranks and
/// ranges are checked by the builder (ProfileInvalid). Errors: InvalidArgument.
Result<std::optional<OptimizationProfile>> parse_profile(const ProfileOptions& o);
/// The build shapes of a command: --shapes into cfg.input_shapes (a static plan), or the
/// profile of --min/--opt/--max-shapes into cfg.profiles (a dynamic plan). When the model
/// is a plan (`building` false) they do not apply: profile flags are ignored with a note on
/// stderr, as a plan keeps the profiles it was built with. Errors: InvalidArgument (bad
/// syntax, a profile flag missing, --shapes together with a profile).
Status apply_shape_options(const std::vector<std::string>& shapes, const ProfileOptions& profile,
                           bool building, BuilderConfig& cfg);

/// Loads an engine from a plan file, or, for a path ending in ".onnx" that is not a plan,
/// parses and builds it in memory with `cfg` (printing every parser diagnostic to stderr).
/// `what` receives "loaded" or "built" for messages.
Result<std::unique_ptr<Engine>> load_engine(const std::string& path, Logger& logger,
                                            const BuilderConfig& cfg, std::string* what = nullptr);

/// Reads a whole file. Errors: IoError.
Result<std::string> read_file(const std::string& path);
/// Writes a whole file through a temporary and a rename, so a failure never leaves a
/// half-written file under `path`. Errors: IoError.
Status write_file(const std::string& path, const void* data, size_t size);

/// Prints `text` to stdout, or writes it to `path` when one is given (write_file). Returns
/// the exit code.
int print_or_write(const std::string& text, const std::string& path);
/// Adds `-o,--output FILE` ("write to this file instead of stdout") for print_or_write.
void add_output_option(CLI::App* sub, std::string& path);

/// "12.3 KiB (12,595 bytes)"-style sizes: `format_bytes` gives the short form.
std::string format_bytes(uint64_t bytes);
/// "12,595"
std::string group_digits(uint64_t v);
/// "f32[1x3x224x224]"; "f32[?]" for unknown rank.
std::string typed_shape(DataType t, const Shape& s);
/// Replaces characters outside [A-Za-z0-9._-] with '_' ("" becomes "_").
std::string sanitize_file_name(const std::string& name);
/// One number through a printf format ("%.3f").
std::string format_num(const char* f, double v);
/// Milliseconds since `t0`.
double ms_since(std::chrono::steady_clock::time_point t0);
/// Prints a per-layer profile (`kiln run --profile`, `kiln bench --profile`): time per op
/// type with its share, then the `slowest` slowest layers with their tactics.
void print_profile(const std::vector<LayerTime>& times, size_t slowest, FILE* out = stdout);
/// Adds the exit-code footer to a subcommand's help.
void add_footer(CLI::App* sub);

}  // namespace kiln::cli
