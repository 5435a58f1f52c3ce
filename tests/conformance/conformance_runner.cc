// ONNX backend conformance: runs the test cases of the installed onnx package (node,
// pytorch-converted, pytorch-operator, simple) through Builder → plan → Runtime on the CPU
// or (--backend cuda) the GPU, and compares with the reference outputs
// (np.testing.assert_allclose semantics, rtol 1e-3, atol 1e-5; integers and bools exact).
// GPU runs are FP32 with TF32 off.
//
// Cases run in forked children with a time limit per case, so a crashing or hanging kernel
// is reported as a failure of that case. A child runs cases one after another (CUDA and
// library start-up costs ~0.5 s, paid once per child) until one crashes, times out or
// hits a CUDA error (which may leave the context unusable); the next child goes on after
// it. Prints "N passed, N failed, N unsupported"; with --expected FILE, every case listed
// there must pass (a regression exits 1), or with --min-expected-fraction F at least that
// fraction of them.
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

kiln::Backend g_backend = kiln::Backend::kCpu;

CaseResult run_case(const fs::path& dir) {
  fs::path model = dir / "model.onnx";
  kiln::Logger logger(kiln::LogLevel::kError);
  kiln::BuilderConfig cfg;
  cfg.backend = g_backend;
  cfg.allow_tf32 = false;
  auto plan = kiln::build_plan_from_file(model.string(), cfg, logger);
  if (!plan.is_ok())
    return {kiln::is_unsupported_feature(plan.status().code()) ? Outcome::kUnsupported : Outcome::kFail, plan.status().to_string()};
  auto engine = kiln::Runtime(logger).deserialize(plan->data(), plan->size());
  if (!engine.is_ok()) return {Outcome::kFail, engine.status().to_string()};
  auto ctx_r = (*engine)->create_execution_context_checked();
  if (!ctx_r.is_ok()) return {Outcome::kFail, ctx_r.status().to_string()};
  auto ctx = std::move(ctx_r.value());
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

bool is_cuda_failure(const std::string& msg) {
  return msg.find("KLN-E6001") != std::string::npos || msg.find("KLN-E6002") != std::string::npos ||
         msg.find("KLN-E6003") != std::string::npos;
}

// Runs cases[first..] in a child process and appends their results; returns when the
// child has finished them all or died (its current case is then recorded as crashed or
// timed out). Records are: outcome byte, message, NUL.
void run_batch(const std::vector<fs::path>& cases, int timeout_s, std::vector<CaseResult>& results) {
  const size_t first = results.size();
  int fds[2];
  if (pipe(fds) != 0) {
    results.push_back({Outcome::kFail, "pipe failed"});
    return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    for (size_t i = first; i < cases.size(); ++i) {
      alarm(timeout_s);
      CaseResult r = run_case(cases[i]);
      alarm(0);
      std::string msg(1, static_cast<char>(r.outcome));
      std::string body = r.message.substr(0, 2000);
      for (char& ch : body) if (ch == '\0') ch = ' ';
      msg += body;
      msg.push_back('\0');
      (void)!write(fds[1], msg.data(), msg.size());
      if (r.outcome == Outcome::kFail && is_cuda_failure(r.message)) break;  // maybe a sticky error
    }
    _exit(0);
  }
  close(fds[1]);
  std::string buf;
  char tmp[4096];
  ssize_t n;
  while ((n = read(fds[0], tmp, sizeof tmp)) > 0) {
    buf.append(tmp, n);
    size_t z;
    while ((z = buf.find('\0')) != std::string::npos) {
      results.push_back({static_cast<Outcome>(buf[0]), buf.substr(1, z - 1)});
      buf.erase(0, z + 1);
    }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status) && results.size() < cases.size()) {
    // The case after the last reported one killed the child.
    results.push_back({Outcome::kFail, WTERMSIG(status) == SIGALRM ? "timed out"
                                                                   : "crashed with signal " + std::to_string(WTERMSIG(status))});
  }
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
  std::string backend = "cpu";
  double min_fraction = 1.0;
  app.add_option("--backend", backend, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--min-expected-fraction", min_fraction,
                 "fraction of the --expected cases that must pass (GPU bar: 0.95 of the CPU's list)");
  CLI11_PARSE(app, argc, argv);
  g_backend = backend == "cuda" ? kiln::Backend::kCuda : kiln::Backend::kCpu;

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
  std::vector<CaseResult> results;
  while (results.size() < cases.size()) {
    const size_t before = results.size();
    run_batch(cases, timeout_s, results);
    if (results.size() == before) results.push_back({Outcome::kFail, "child exited without a result"});
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const fs::path& c = cases[i];
    const CaseResult& r = results[i];
    std::string name = c.parent_path().filename().string() + "/" + c.filename().string();
    if (r.outcome == Outcome::kPass) { ++pass; passing.insert(name); }
    else if (r.outcome == Outcome::kFail) { ++fail; failures.push_back(name + ": " + r.message); }
    else ++unsup;
    if (verbose) std::printf("%s %s %s\n", r.outcome == Outcome::kPass ? "PASS" : r.outcome == Outcome::kFail ? "FAIL" : "UNSUPPORTED", name.c_str(), r.message.c_str());
  }

  if (!verbose)
    for (const auto& f : failures) std::printf("FAIL %s\n", f.c_str());
  int regressions = 0, n_expected = 0;
  if (!expected.empty()) {
    std::ifstream f(expected);
    std::string line;
    while (std::getline(f, line)) {
      if (line.empty() || line[0] == '#') continue;
      if (!std::regex_match(line.substr(line.find('/') + 1), re)) continue;
      ++n_expected;
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
  if (!expected.empty())
    std::printf("conformance: %d of %d expected cases pass (%.1f%%, bar %.1f%%)\n", n_expected - regressions, n_expected,
                n_expected ? 100.0 * (n_expected - regressions) / n_expected : 100.0, 100.0 * min_fraction);
  if (regressions) std::printf("conformance: %d regressions against %s\n", regressions, expected.c_str());
  return n_expected - regressions < min_fraction * n_expected - 1e-9 ? 1 : 0;
}
