// Harness for GPU kernel tests: one-node models run through the CPU reference backend and
// the CUDA backend on the same seeded random inputs, CUDA outputs poisoned before the
// run (so every element must be written), compared with a per-dtype tolerance.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "kiln/kiln.h"

namespace kiln::gputest {

/// One input of the node. dtype kUndefined = omitted optional input.
struct In {
  DataType dtype = DataType::kUndefined;
  std::vector<int64_t> dims;
  /// Make it an initializer (weights, shape/axes inputs): factories see its host value.
  bool constant = false;
  /// Explicit data (e.g. indices, axes); when undefined, seeded random in [lo, hi]
  /// (integers: uniform integers in [lo, hi]; bool: random).
  HostTensor value;
  double lo = -2.0, hi = 2.0;
};

/// A one-node model.
struct OpCase {
  std::string op;
  int opset = 17;
  std::string domain;  ///< "" = ai.onnx, "kiln" for kiln's fused ops
  std::map<std::string, ir::Attribute> attrs;
  std::vector<In> inputs;
  int outputs = 1;
  std::string label;  ///< shown on failure
};

/// Options of a comparison.
struct Check {
  /// Node may run on the host fallback (otherwise the test fails when it does).
  bool allow_host = false;
  /// Override the per-dtype tolerance (|gpu - cpu| <= atol + rtol * |cpu|); < 0 = default:
  /// f32 1e-5/1e-5 (TF32 off), f64 1e-12, f16 2e-3/1e-2, bf16 1e-2/2e-2, ints and bool exact.
  double atol = -1, rtol = -1;
  uint64_t seed = 1234;
};

/// An engine and the outputs of one run of it.
struct EngineRun {
  std::unique_ptr<Engine> engine;
  std::vector<HostTensor> outputs;
};

/// Builds `graph` with `cfg` (Builder → plan → Runtime), runs it once through an
/// execution context on `inputs` (one per graph input, in order; host memory) and returns
/// the engine (for its lowered graph) and the outputs. Errors: any build or run error.
Result<EngineRun> build_and_run(std::unique_ptr<ir::Graph> graph, std::vector<HostTensor>& inputs,
                                const BuilderConfig& cfg);

/// Runs `c` on the CPU and on the GPU (FP32 build, TF32 off) and EXPECTs equal outputs.
void expect_matches_cpu(const OpCase& c, const Check& check = {});

/// Compares two outputs element by element: "" when equal within tolerance, else the
/// first differing element. NaN matches NaN.
std::string compare_tensors(const HostTensor& expected, const HostTensor& got, double atol, double rtol);

/// Default tolerance of a dtype: {atol, rtol}.
std::pair<double, double> default_tolerance(DataType dt);

/// Skips the test when no GPU is present (CI): use first in every GPU test.
#define KILN_REQUIRE_GPU()                                              \
  do {                                                                  \
    if (::kiln::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA GPU"; \
  } while (0)

inline ir::Attribute ints(std::vector<int64_t> v) { return ir::Attribute::from_ints(std::move(v)); }
inline ir::Attribute i(int64_t v) { return ir::Attribute::from_int(v); }
inline ir::Attribute f(float v) { return ir::Attribute::from_float(v); }
inline ir::Attribute s(std::string v) { return ir::Attribute::from_string(std::move(v)); }
/// An int64 tensor value for In::value (axes, shapes, indices).
inline HostTensor i64s(std::vector<int64_t> v) {
  return HostTensor::from_vector<int64_t>(DataType::kI64, {static_cast<int64_t>(v.size())}, v);
}

}  // namespace kiln::gputest
