// Harness for GPU kernel tests: one-node models run through the CPU reference backend and
// the CUDA backend on the same seeded random inputs, CUDA outputs poisoned before the
// run (so every element must be written), compared with a per-dtype tolerance.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <random>
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

using Attrs = std::map<std::string, ir::Attribute>;

/// Dtype shorthands for test tables.
inline constexpr DataType kF32 = DataType::kF32, kF16 = DataType::kF16, kBF16 = DataType::kBF16,
                          kF64 = DataType::kF64, kI8 = DataType::kI8, kU8 = DataType::kU8,
                          kI16 = DataType::kI16, kU16 = DataType::kU16, kI32 = DataType::kI32,
                          kU32 = DataType::kU32, kI64 = DataType::kI64, kU64 = DataType::kU64,
                          kBool = DataType::kBool;

/// An activation of kiln.FusedConv and its attributes.
struct Activation {
  const char* name;  ///< "" = none
  Attrs attrs;
};

/// Every FusedConv epilogue activation (ops/fused_conv.h), Clip twice (any bounds, Relu6).
inline std::vector<Activation> fused_conv_activations() {
  return {
      {"", {}},
      {"Relu", {}},
      {"LeakyRelu", {{"alpha", f(0.2f)}}},
      {"Clip", {{"clip_min", f(-0.5f)}, {"clip_max", f(0.75f)}}},
      {"Clip", {{"clip_min", f(0.0f)}, {"clip_max", f(6.0f)}}},  // Relu6
      {"Sigmoid", {}},
      {"HardSwish", {}},
      {"SiLU", {}},
  };
}

/// Builds a graph node by node, with seeded random f32 constants.
struct Net {
  std::unique_ptr<ir::Graph> g = std::make_unique<ir::Graph>();
  std::mt19937_64 rng{7};
  int counter = 0;

  Net() {
    g->name = "gpu_test";
    g->opset_imports[""] = 17;
  }
  ir::Value* input(std::vector<int64_t> dims) {
    ir::Value* v = g->add_value("x" + std::to_string(g->inputs.size()), DataType::kF32, Shape::from(dims));
    g->inputs.push_back(v);
    return v;
  }
  ir::Value* constant(std::vector<int64_t> dims, double lo = -0.5, double hi = 0.5) {
    HostTensor t(DataType::kF32, dims);
    std::uniform_real_distribution<double> u(lo, hi);
    for (int64_t k = 0; k < t.numel(); ++k) t.set_f64(k, u(rng));
    return g->add_constant("c" + std::to_string(counter++), std::move(t));
  }
  ir::Value* i64(std::vector<int64_t> v) {
    return g->add_constant("c" + std::to_string(counter++), i64s(std::move(v)));
  }
  ir::Value* op(const std::string& type, std::vector<ir::Value*> ins, Attrs attrs = {}) {
    ir::Value* out = g->add_value("v" + std::to_string(counter++));
    ir::Node* n = g->add_node(type, "n" + std::to_string(counter++), std::move(ins), {out}, "", 17);
    n->attrs = std::move(attrs);
    return out;
  }
  /// Conv (+ bias) with "same" padding for odd kernels.
  ir::Value* conv(ir::Value* x, int64_t cin, int64_t cout, int64_t k, Attrs extra = {}, int64_t group = 1) {
    Attrs a = std::move(extra);
    if (!a.count("pads")) a["pads"] = ints({k / 2, k / 2, k / 2, k / 2});
    a["group"] = i(group);
    return op("Conv", {x, constant({cout, cin / group, k, k}), constant({cout})}, a);
  }
  void output(ir::Value* v) { g->outputs.push_back(v); }
};

}  // namespace kiln::gputest
