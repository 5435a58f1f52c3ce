// kiln: the command-line tool (kiln's trtexec). Subcommands live in cmd_*.cc; this file
// wires them into one CLI11 app and turns every failure into an exit code (cli.h).
#include <iostream>
#include <new>

#include "cli.h"
#include "engine/plan.h"

int main(int argc, char** argv) {
  using namespace kiln::cli;
#ifdef KILN_WITH_CUDA
  const char* backends = "cpu, cuda";
#else
  const char* backends = "cpu";
#endif
  CLI::App app{"kiln: compile ONNX models into plans and run them on the CPU or CUDA backend",
               "kiln"};
  app.set_version_flag("--version", std::string("kiln ") + kiln::version() + " (plan format " +
                                        std::to_string(kiln::plan::kFormatVersion) +
                                        ", backends: " + backends + ")");
  app.footer(exit_codes_footer());
  app.require_subcommand(1);
  std::vector<Command> commands = {add_check_command(app), add_build_command(app),
                                   add_run_command(app),   add_inspect_command(app),
                                   add_bench_command(app), add_ops_command(app),
                                   add_explain_command(app)};
  for (auto& c : commands) add_footer(c.app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and --version exit 0 through the same path; real parse errors are usage errors.
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  try {
    for (auto& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const std::bad_alloc&) {
    return fail(kiln::Status(kiln::ErrorCode::kOutOfMemory, "out of memory", "use smaller inputs"));
  } catch (const std::exception& e) {
    return fail(kiln::Status(kiln::ErrorCode::kInternal,
                             std::string("unexpected exception: ") + e.what(),
                             "please report the command line and the model"));
  }
  return kExitUsage;
}
