// The layout pass on the GPU (builder/layout.h, CUDA rules in cuda/lowering.cc): small
// FP16 networks built with NHWC regions must give what the same FP16 engine gives with
// every tensor NCHW (--no-nhwc), and what the CPU gives in FP32; the plan must hold the
// expected number of reformats, and every layout-aware kernel family must have run on
// NHWC operands (pointwise with broadcasting, pooling, Concat, Resize, Pad, Slice,
// BatchNormalization, global pooling, ConvTranspose, depthwise, odd channel counts).
#include <cmath>
#include <functional>
#include <random>

#include "builder/layout.h"
#include "gpu_test_util.h"

namespace kiln {
namespace {

using gputest::compare_tensors;
using gputest::f;
using gputest::i;
using gputest::ints;
using gputest::s;
using gputest::Attrs;

using gputest::Net;

struct Built {
  std::vector<HostTensor> outputs;
  int reformats = 0, nhwc_values = 0, host_nodes = 0;
};

Result<Built> run(std::unique_ptr<ir::Graph> graph, std::vector<HostTensor>& inputs, Backend backend,
                  Precision precision, bool nhwc) {
  BuilderConfig cfg;
  cfg.backend = backend;
  cfg.precision = precision;
  cfg.nhwc = nhwc;
  KILN_ASSIGN_OR_RETURN(gputest::EngineRun er, gputest::build_and_run(std::move(graph), inputs, cfg));
  Built b;
  b.outputs = std::move(er.outputs);
  const Engine* engine = er.engine.get();
  for (const auto& n : engine->graph().nodes()) {
    b.reformats += n->op_type == "Transpose" && n->name.rfind(builder::kReformatPrefix, 0) == 0;
    b.host_nodes += n->tactic == "host";
  }
  for (const auto& v : engine->graph().values()) b.nhwc_values += v->layout == builder::kLayoutNhwc;
  return b;
}

/// ||a - b|| / ||b||.
double rel_l2(const HostTensor& a, const HostTensor& b) {
  double num = 0, den = 0;
  for (int64_t k = 0; k < b.numel(); ++k) {
    const double d = a.get_f64(k) - b.get_f64(k);
    num += d * d;
    den += b.get_f64(k) * b.get_f64(k);
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

/// Builds `make` three ways (CPU FP32, GPU FP16 NCHW, GPU FP16 NHWC) on the same inputs
/// and compares; expects `reformats` reformat nodes in the NHWC plan.
void check_network(const std::function<void(Net&)>& make, int reformats) {
  KILN_REQUIRE_GPU();
  auto build = [&] {
    Net n;
    make(n);
    return std::move(n.g);
  };
  std::vector<HostTensor> inputs;
  {
    auto g = build();
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> u(-1, 1);
    for (const ir::Value* v : g->inputs) {
      HostTensor t(v->dtype, *v->shape.concrete());
      for (int64_t k = 0; k < t.numel(); ++k) t.set_f64(k, u(rng));
      inputs.push_back(std::move(t));
    }
  }
  auto cpu = run(build(), inputs, Backend::kCpu, Precision::kFp32, false);
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  auto nchw = run(build(), inputs, Backend::kCuda, Precision::kFp16, false);
  ASSERT_TRUE(nchw.is_ok()) << nchw.status().to_string();
  auto nhwc = run(build(), inputs, Backend::kCuda, Precision::kFp16, true);
  ASSERT_TRUE(nhwc.is_ok()) << nhwc.status().to_string();
  EXPECT_EQ(nchw->nhwc_values, 0);
  EXPECT_GT(nhwc->nhwc_values, 0) << "the layout pass made nothing NHWC";
  EXPECT_EQ(nhwc->reformats, reformats);
  EXPECT_EQ(nhwc->host_nodes, 0);
  ASSERT_EQ(cpu->outputs.size(), nhwc->outputs.size());
  for (size_t k = 0; k < cpu->outputs.size(); ++k) {
    EXPECT_LT(rel_l2(nhwc->outputs[k], cpu->outputs[k]), 1e-2) << "output " << k << " vs CPU FP32";
    // Same precision, other layout: only accumulation order differs.
    EXPECT_EQ(compare_tensors(nchw->outputs[k], nhwc->outputs[k], 2e-2, 2e-2), "")
        << "output " << k << ": NHWC vs NCHW engine";
  }
}

TEST(LayoutGpu, SqueezeExciteBlockNeedsNoReformat) {
  // MobileNetV3's block: conv → HardSwish → SE (GAP, 1x1 convs, HardSigmoid, broadcast
  // Mul) → residual Add; the graph-input and output casts write the other layout.
  check_network(
      [](Net& n) {
        ir::Value* x = n.input({2, 16, 20, 20});
        ir::Value* c = n.conv(x, 16, 24, 3);
        ir::Value* h = n.op("HardSwish", {c});
        ir::Value* gap = n.op("GlobalAveragePool", {h});
        ir::Value* s1 = n.op("Relu", {n.conv(gap, 24, 8, 1)});
        ir::Value* s2 = n.op("HardSigmoid", {n.conv(s1, 8, 24, 1)}, {{"alpha", f(1.0f / 6)}});
        ir::Value* m = n.op("Mul", {h, s2});
        ir::Value* bias = n.constant({1, 24, 1, 1});
        n.output(n.op("Add", {n.op("Add", {m, c}), bias}));
      },
      0);
}

TEST(LayoutGpu, PoolConcatResizePadSliceBatchNorm) {
  check_network(
      [](Net& n) {
        ir::Value* x = n.input({2, 8, 17, 19});
        ir::Value* c = n.conv(x, 8, 16, 3);
        ir::Value* p = n.op("MaxPool", {c}, {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}});
        ir::Value* a = n.conv(p, 16, 8, 1);
        ir::Value* b = n.conv(p, 16, 24, 3, {{"dilations", ints({2, 2})}, {"pads", ints({2, 2, 2, 2})}});
        ir::Value* cat = n.op("Concat", {a, b}, {{"axis", i(1)}});
        ir::Value* bn = n.op("BatchNormalization", {cat, n.constant({32}, 0.5, 1.5), n.constant({32}),
                                                    n.constant({32}), n.constant({32}, 0.5, 1.5)});
        ir::Value* up = n.op("Resize", {bn, nullptr, n.g->add_constant("scales", HostTensor::from_vector<float>(DataType::kF32, {4}, {1, 1, 2, 2}))},
                             {{"mode", s("linear")}});
        ir::Value* pad = n.op("Pad", {up, n.i64({0, 0, 1, 2, 0, 0, 1, 2})});
        ir::Value* sl = n.op("Slice", {pad, n.i64({1, 3}), n.i64({-1, -3}), n.i64({2, 3})});
        ir::Value* ap = n.op("AveragePool", {n.conv(sl, 32, 16, 3)}, {{"kernel_shape", ints({2, 2})}, {"strides", ints({2, 2})}});
        n.output(ap);
      },
      0);
}

TEST(LayoutGpu, SoftmaxAndReshapeReadRowMajor) {
  // Softmax over channels and a Reshape have no NHWC kernels: one reformat each; the
  // GlobalAveragePool → Flatten edge is a free relabel.
  check_network(
      [](Net& n) {
        ir::Value* x = n.input({2, 16, 9, 9});
        ir::Value* c = n.conv(x, 16, 32, 3);
        n.output(n.op("Softmax", {c}, {{"axis", i(1)}}));
        ir::Value* c2 = n.conv(c, 32, 16, 3);
        n.output(n.op("Reshape", {c2, n.i64({2, 16, 81})}));
        ir::Value* flat = n.op("Flatten", {n.op("GlobalAveragePool", {c2})});
        n.output(n.op("Gemm", {flat, n.constant({10, 16})}, {{"transB", i(1)}}));
      },
      2);
}

TEST(LayoutGpu, DepthwiseTransposedAndOddChannels) {
  check_network(
      [](Net& n) {
        ir::Value* x = n.input({1, 3, 15, 15});
        ir::Value* c = n.conv(x, 3, 5, 3);  // 3 and 5 channels: no tensor-core multiple
        ir::Value* dw = n.conv(n.conv(c, 5, 32, 1), 32, 32, 3, {}, 32);
        ir::Value* up = n.op("ConvTranspose", {dw, n.constant({32, 8, 2, 2}), n.constant({8})},
                             {{"strides", ints({2, 2})}});
        ir::Value* cat = n.op("Concat", {up, n.op("Sigmoid", {up})}, {{"axis", i(1)}});
        n.output(n.op("GlobalMaxPool", {cat}));
      },
      0);
}

}  // namespace
}  // namespace kiln
