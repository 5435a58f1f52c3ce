// Shared pieces of the `kiln` command-line tool: exit codes, error reporting, subcommand
// registration and small formatting helpers. Each subcommand lives in its own cmd_*.cc.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
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

/// Logger level for a `-v` count: 0 warnings, 1 info, 2 debug, 3+ trace.
LogLevel log_level_for(int verbosity);

/// Parses --shapes values: "name:1x3x224x224[,name2:2x8]" (a dims list may also use ','
/// separators: "x:1,3,224,224"). A name may itself contain ':' (the last ':' splits).
/// Errors: InvalidArgument naming the bad entry.
Result<std::map<std::string, std::vector<int64_t>>> parse_shapes(
    const std::vector<std::string>& specs);

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
/// Milliseconds since `t0`.
double ms_since(std::chrono::steady_clock::time_point t0);
/// Adds the exit-code footer to a subcommand's help.
void add_footer(CLI::App* sub);

}  // namespace kiln::cli
