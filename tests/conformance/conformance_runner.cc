// ONNX backend conformance: runs the test cases of the installed onnx package (node,
// pytorch-converted, pytorch-operator, simple) through Builder → plan → Runtime on the CPU
// and compares with the reference outputs (np.testing.assert_allclose semantics,
// rtol 1e-3, atol 1e-5; integers and bools exact).
//
// Each case runs in a forked child with a time limit, so a crashing or hanging kernel is
// reported as a failure of that case. Prints "N passed, N failed, N unsupported"; with
// --expected FILE, every case listed there must pass (a regression exits 1).
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "onnx/importer.h"

namespace fs = std::filesystem;
using kiln::HostTensor;

namespace {

enum class Outcome : char { kPass = 'P', kFail = 'F', kUnsupported = 'U' };

struct CaseResult {
  Outcome outcome;
  std::string message;
};

std::string compare(const HostTensor& ref, const HostTensor& out, double rtol, double atol) {
  if (ref.dtype() != out.dtype())
    return std::string("dtype ") + kiln::dtype_name(out.dtype()) + " != expected " + kiln::dtype_name(ref.dtype());
  if (ref.dims() != out.dims())
    return "shape " + kiln::dims_to_string(out.dims()) + " != expected " + kiln::dims_to_string(ref.dims());
  bool fp = kiln::dtype_is_float(ref.dtype());
  for (int64_t i = 0; i < ref.numel(); ++i) {
    if (fp) {
      double a = out.get_f64(i), b = ref.get_f64(i);
      if (std::isnan(a) || std::isnan(b)) {
        if (std::isnan(a) != std::isnan(b)) return "NaN mismatch at " + std::to_string(i);
        continue;
      }
      if (std::isinf(a) || std::isinf(b)) {
        if (a != b) return "inf mismatch at " + std::to_string(i);
        continue;
      }
      if (std::fabs(a - b) > atol + rtol * std::fabs(b)) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "element %lld: got %.7g, expected %.7g", static_cast<long long>(i), a, b);
        return buf;
      }
    } else if (out.get_i64(i) != ref.get_i64(i)) {
      return "element " + std::to_string(i) + ": got " + std::to_string(out.get_i64(i)) + ", expected " +
             std::to_string(ref.get_i64(i));
    }
  }
  return {};
}

CaseResult run_case(const fs::path& dir) {
  fs::path model = dir / "model.onnx";
  kiln::Logger logger(kiln::LogLevel::kError);
  kiln::BuilderConfig cfg;
  auto plan = kiln::build_plan_from_file(model.string(), cfg, logger);
  if (!plan.is_ok())
    return {kiln::is_unsupported_feature(plan.status().code()) ? Outcome::kUnsupported : Outcome::kFail, plan.status().to_string()};
  auto engine = kiln::Runtime(logger).deserialize(plan->data(), plan->size());
  if (!engine.is_ok()) return {Outcome::kFail, engine.status().to_string()};
  auto ctx = (*engine)->create_execution_context();
  std::vector<fs::path> sets;
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) return {Outcome::kFail, "no test data sets"};
  auto names_in = (*engine)->input_names();
  auto names_out = (*engine)->output_names();
  for (const auto& ds : sets) {
    std::vector<HostTensor> inputs;
    for (size_t i = 0;; ++i) {
      fs::path p = ds / ("input_" + std::to_string(i) + ".pb");
      if (!fs::exists(p)) break;
      auto t = kiln::onnx_import::read_tensor_pb(p.string());
      if (!t.is_ok()) return {Outcome::kUnsupported, "input: " + t.status().to_string()};
      inputs.push_back(std::move(t).value());
    }
    if (inputs.size() != names_in.size())
      return {Outcome::kFail, "model has " + std::to_string(names_in.size()) + " inputs, data set has " +
                                  std::to_string(inputs.size())};
    for (size_t i = 0; i < inputs.size(); ++i) {
      kiln::TensorView v{inputs[i].dtype(), inputs[i].dims(), inputs[i].raw()};
      kiln::Status st = ctx->set_input(names_in[i], v);
      if (!st.is_ok()) return {Outcome::kFail, st.to_string()};
    }
    kiln::Status st = ctx->execute();
    if (!st.is_ok()) return {kiln::is_unsupported_feature(st.code()) ? Outcome::kUnsupported : Outcome::kFail, st.to_string()};
    for (size_t i = 0; i < names_out.size(); ++i) {
      fs::path p = ds / ("output_" + std::to_string(i) + ".pb");
      auto ref = kiln::onnx_import::read_tensor_pb(p.string());
      if (!ref.is_ok()) return {Outcome::kUnsupported, "reference output: " + ref.status().to_string()};
      auto out = ctx->output(names_out[i]);
      if (!out.is_ok()) return {Outcome::kFail, out.status().to_string()};
      HostTensor got = HostTensor::wrap(out->dtype, out->dims, out->data, nullptr);
      std::string diff = compare(*ref, got, 1e-3, 1e-5);
      if (!diff.empty()) return {Outcome::kFail, ds.filename().string() + " output '" + names_out[i] + "': " + diff};
    }
  }
  return {Outcome::kPass, {}};
}

// Runs run_case in a child process so crashes and hangs are contained.
CaseResult run_isolated(const fs::path& dir, int timeout_s) {
  int fds[2];
  if (pipe(fds) != 0) return {Outcome::kFail, "pipe failed"};
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    alarm(timeout_s);
    CaseResult r = run_case(dir);
    std::string msg(1, static_cast<char>(r.outcome));
    msg += r.message.substr(0, 2000);
    (void)!write(fds[1], msg.data(), msg.size());
    _exit(0);
  }
  close(fds[1]);
  std::string buf;
  char tmp[4096];
  ssize_t n;
  while ((n = read(fds[0], tmp, sizeof tmp)) > 0) buf.append(tmp, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (buf.empty()) {
    if (WIFSIGNALED(status))
      return {Outcome::kFail, WTERMSIG(status) == SIGALRM ? "timed out" : "crashed with signal " + std::to_string(WTERMSIG(status))};
    return {Outcome::kFail, "child exited without a result"};
  }
  return {static_cast<Outcome>(buf[0]), buf.substr(1)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln ONNX backend conformance runner"};
  std::string data, expected, write_expected, filter = ".*";
  bool verbose = false;
  int timeout_s = 60;
  app.add_option("--data", data, "directory with node/, pytorch-converted/, ... (tests/conformance/generate_data.py)")->required();
  app.add_option("--expected", expected, "file listing cases that must pass");
  app.add_option("--write-expected", write_expected, "write the passing cases to this file");
  app.add_option("--filter", filter, "regex on case names (e.g. 'test_conv.*')");
  app.add_option("--timeout", timeout_s, "seconds per case");
  app.add_flag("-v,--verbose", verbose, "print every case");
  CLI11_PARSE(app, argc, argv);

  std::regex re(filter);
  std::vector<fs::path> cases;
  for (const char* kind : {"node", "pytorch-converted", "pytorch-operator", "simple"}) {
    fs::path d = fs::path(data) / kind;
    if (!fs::exists(d)) continue;
    for (auto& e : fs::directory_iterator(d))
      if (fs::exists(e.path() / "model.onnx") && std::regex_match(e.path().filename().string(), re))
        cases.push_back(e.path());
  }
  std::sort(cases.begin(), cases.end());
  std::set<std::string> passing;
  int pass = 0, fail = 0, unsup = 0;
  std::vector<std::string> failures;
  for (const auto& c : cases) {
    CaseResult r = run_isolated(c, timeout_s);
    std::string name = c.parent_path().filename().string() + "/" + c.filename().string();
    if (r.outcome == Outcome::kPass) { ++pass; passing.insert(name); }
    else if (r.outcome == Outcome::kFail) { ++fail; failures.push_back(name + ": " + r.message); }
    else ++unsup;
    if (verbose) std::printf("%s %s %s\n", r.outcome == Outcome::kPass ? "PASS" : r.outcome == Outcome::kFail ? "FAIL" : "UNSUPPORTED", name.c_str(), r.message.c_str());
  }
  if (!verbose)
    for (const auto& f : failures) std::printf("FAIL %s\n", f.c_str());
  int regressions = 0;
  if (!expected.empty()) {
    std::ifstream f(expected);
    std::string line;
    while (std::getline(f, line)) {
      if (line.empty() || line[0] == '#') continue;
      if (!std::regex_match(line.substr(line.find('/') + 1), re)) continue;
      if (!passing.count(line)) { std::printf("REGRESSION %s\n", line.c_str()); ++regressions; }
    }
  }
  if (!write_expected.empty()) {
    std::ofstream f(write_expected);
    f << "# ONNX backend cases that pass on the CPU backend (tests/conformance). Regenerate with\n"
         "# kiln_conformance --data DIR --write-expected tests/conformance/expected_pass.txt\n";
    for (const auto& p : passing) f << p << "\n";
  }
  std::printf("conformance: %d passed, %d failed, %d unsupported (%zu cases)\n", pass, fail, unsup, cases.size());
  if (regressions) std::printf("conformance: %d regressions against %s\n", regressions, expected.c_str());
  return regressions ? 1 : 0;
}
