// Dynamic shapes on the CUDA backend: one plan with an optimisation profile, run at many
// input shapes (min, opt, max, in between, and back), every output compared with the CPU
// reference engine; the enqueue path with set_input_shape/tensor_shape; errors.
#include <cstring>

#include "gpu_test_util.h"

namespace kiln {
namespace {

using gputest::Net;

// x [N, 8, H, W] → Conv 3x3 (16) + Relu → Reshape to [N, -1] through the shape arithmetic
// of exported models (Shape → Gather → Unsqueeze → Concat); and a pointwise chain on the
// convolution output (a generated kernel).
std::unique_ptr<ir::Graph> dynamic_net() {
  Net net;
  ir::Value* x = net.input({1, 8, 1, 1});
  x->shape = Shape({Dim::sym("N"), Dim(8), Dim::sym("H"), Dim::sym("W")});
  ir::Value* c = net.op("Relu", {net.conv(x, 8, 16, 3)});
  ir::Value* shape = net.op("Shape", {x});
  ir::Value* zero = net.g->add_constant("zero", HostTensor::from_vector<int64_t>(DataType::kI64, {}, {0}));
  ir::Value* n = net.op("Gather", {shape, zero}, {{"axis", gputest::i(0)}});
  ir::Value* n1 = net.op("Unsqueeze", {n, net.i64({0})});
  ir::Value* target = net.op("Concat", {n1, net.i64({-1})}, {{"axis", gputest::i(0)}});
  net.output(net.op("Reshape", {c, target}));
  ir::Value* s = net.op("Sigmoid", {c});
  net.output(net.op("Add", {net.op("Mul", {s, net.constant({1}, 2, 2)}), net.constant({1}, 1, 1)}));
  return std::move(net.g);
}

OptimizationProfile profile() {
  OptimizationProfile p;
  p.inputs["x0"] = {{1, 8, 4, 4}, {2, 8, 8, 8}, {4, 8, 16, 12}};
  return p;
}

HostTensor random_input(const std::vector<int64_t>& dims, uint64_t seed) {
  HostTensor t(DataType::kF32, dims);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  for (int64_t k = 0; k < t.numel(); ++k) t.set_f64(k, u(rng));
  return t;
}

std::unique_ptr<Engine> build(Logger& log, const BuilderConfig& cfg) {
  NetworkDefinition net(dynamic_net());
  auto plan = Builder(log).build_serialized_network(net, cfg);
  EXPECT_TRUE(plan.is_ok()) << plan.status().to_string();
  if (!plan.is_ok()) return nullptr;
  auto e = Runtime(log).deserialize(plan->data(), plan->size());
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(e.value()) : nullptr;
}

/// The same model with the same profile as a CPU engine (the reference) and a CUDA one.
struct Engines {
  std::unique_ptr<Engine> cpu, gpu;
};
Engines build_both(Logger& log, kiln::Precision precision, bool autotune) {
  BuilderConfig cfg;
  cfg.profiles = {profile()};
  Engines e;
  e.cpu = build(log, cfg);
  cfg.backend = Backend::kCuda;
  cfg.precision = precision;
  cfg.allow_tf32 = false;
  cfg.autotune = autotune;
  e.gpu = build(log, cfg);
  return e;
}

const std::vector<std::vector<int64_t>> kShapes = {
    {2, 8, 8, 8}, {1, 8, 4, 4}, {4, 8, 16, 12}, {3, 8, 5, 7}, {1, 8, 16, 4}, {2, 8, 8, 8}, {3, 8, 5, 7}};

void expect_dynamic_matches_cpu(kiln::Precision precision, double atol, double rtol) {
  Logger log(LogLevel::kError);
  auto [cpu, gpu] = build_both(log, precision, false);
  ASSERT_TRUE(cpu && gpu);
  auto cctx = cpu->create_execution_context();
  auto gctx = gpu->create_execution_context();
  uint64_t seed = 1;
  for (const auto& dims : kShapes) {
    SCOPED_TRACE("x0 " + dims_to_string(dims));
    HostTensor x = random_input(dims, seed++);
    TensorView v{DataType::kF32, dims, x.raw()};
    ASSERT_TRUE(cctx->set_input("x0", v).is_ok());
    ASSERT_TRUE(cctx->execute().is_ok());
    Status st = gctx->set_input("x0", v);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    st = gctx->execute();
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    for (const auto& name : gpu->output_names()) {
      auto want = cctx->output(name);
      auto got = gctx->output(name);
      ASSERT_TRUE(want.is_ok() && got.is_ok());
      ASSERT_EQ(got->dims, want->dims) << name;
      auto shape = gctx->tensor_shape(name);
      ASSERT_TRUE(shape.is_ok()) << shape.status().to_string();
      EXPECT_EQ(*shape, want->dims);
      HostTensor w = HostTensor::wrap(want->dtype, want->dims, want->data, nullptr);
      HostTensor gt = HostTensor::wrap(got->dtype, got->dims, got->data, nullptr);
      EXPECT_EQ(gputest::compare_tensors(w, gt, atol, rtol), "") << name;
    }
  }
  EXPECT_EQ(gpu->num_optimization_profiles(), 1);
}

TEST(CudaDynamicShapes, OnePlanRunsEveryShapeOfItsProfileFp32) {
  KILN_REQUIRE_GPU();
  expect_dynamic_matches_cpu(kiln::Precision::kFp32, 1e-4, 1e-4);
}

TEST(CudaDynamicShapes, OnePlanRunsEveryShapeOfItsProfileFp16Nhwc) {
  KILN_REQUIRE_GPU();
  expect_dynamic_matches_cpu(kiln::Precision::kFp16, 2e-2, 2e-2);
}

TEST(CudaDynamicShapes, EnqueueWithSetInputShapeAndCudaGraphs) {
  KILN_REQUIRE_GPU();
  Logger log(LogLevel::kError);
  auto [cpu, gpu] = build_both(log, kiln::Precision::kFp32, true);
  ASSERT_TRUE(cpu && gpu);
  auto cctx = cpu->create_execution_context();
  auto gctx = gpu->create_execution_context();
  auto max_x = CudaBuffer::allocate(CudaBuffer::Kind::kDevice, 4 * 8 * 16 * 12 * 4);
  auto max_y = CudaBuffer::allocate(CudaBuffer::Kind::kDevice, 4 * 16 * 16 * 12 * 4);
  auto max_y2 = CudaBuffer::allocate(CudaBuffer::Kind::kDevice, 4 * 16 * 16 * 12 * 4);
  ASSERT_TRUE(max_x.is_ok() && max_y.is_ok() && max_y2.is_ok());
  const auto outs = gpu->output_names();
  ASSERT_EQ(outs.size(), 2u);
  // Twice over the shapes: the second round replays each shape's CUDA graph.
  for (int round = 0; round < 2; ++round)
    for (size_t k = 0; k < kShapes.size(); ++k) {
      const auto& dims = kShapes[k];
      SCOPED_TRACE("round " + std::to_string(round) + " x0 " + dims_to_string(dims));
      HostTensor x = random_input(dims, 100 + k + 10 * round);
      ASSERT_TRUE(gctx->set_input_shape("x0", dims).is_ok());
      ASSERT_TRUE(gctx->set_tensor_address("x0", max_x->data()).is_ok());
      ASSERT_TRUE(gctx->set_tensor_address(outs[0], max_y->data()).is_ok());
      ASSERT_TRUE(gctx->set_tensor_address(outs[1], max_y2->data()).is_ok());
      ASSERT_TRUE(cuda_copy_async(max_x->data(), x.raw(), x.bytes(), gctx->stream()).is_ok());
      Status st = gctx->enqueue();
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      ASSERT_TRUE(cctx->set_input("x0", {DataType::kF32, dims, x.raw()}).is_ok());
      ASSERT_TRUE(cctx->execute().is_ok());
      std::vector<void*> dev = {max_y->data(), max_y2->data()};
      for (size_t o = 0; o < outs.size(); ++o) {
        auto want = cctx->output(outs[o]);
        auto shape = gctx->tensor_shape(outs[o]);
        ASSERT_TRUE(want.is_ok() && shape.is_ok());
        ASSERT_EQ(*shape, want->dims);
        HostTensor got(DataType::kF32, *shape);
        ASSERT_TRUE(cuda_copy_async(got.raw(), dev[o], got.bytes(), gctx->stream()).is_ok());
        ASSERT_TRUE(cuda_stream_synchronize(gctx->stream()).is_ok());
        HostTensor w = HostTensor::wrap(want->dtype, want->dims, want->data, nullptr);
        EXPECT_EQ(gputest::compare_tensors(w, got, 1e-4, 1e-4), "") << outs[o];
      }
    }
}

TEST(CudaDynamicShapes, ShapesOutsideTheProfileAndMissingProfilesAreErrors) {
  KILN_REQUIRE_GPU();
  Logger log(LogLevel::kError);
  BuilderConfig cfg;
  cfg.backend = Backend::kCuda;
  cfg.autotune = false;
  cfg.profiles = {profile()};
  auto gpu = build(log, cfg);
  ASSERT_TRUE(gpu);
  auto ctx = gpu->create_execution_context();
  Status st = ctx->set_input_shape("x0", {5, 8, 8, 8});
  EXPECT_EQ(st.code(), ErrorCode::kInputOutsideProfile);
  EXPECT_NE(st.message().find("dimension 0 is 5"), std::string::npos) << st.to_string();
  EXPECT_NE(st.message().find("[1, 4]"), std::string::npos) << st.to_string();
  EXPECT_EQ(ctx->set_input_shape("x0", {2, 9, 8, 8}).code(), ErrorCode::kInputShapeMismatch);
  // enqueue before any shape is set: which input is missing.
  st = ctx->enqueue();
  EXPECT_EQ(st.code(), ErrorCode::kDynamicShapeUnresolved) << st.to_string();
  // A dynamic model built for the GPU without a profile.
  cfg.profiles.clear();
  NetworkDefinition net(dynamic_net());
  auto plan = Builder(log).build_serialized_network(net, cfg);
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.status().code(), ErrorCode::kDynamicShapeUnresolved);
  EXPECT_NE(plan.status().hint().find("--min-shapes"), std::string::npos) << plan.status().to_string();
}

}  // namespace
}  // namespace kiln
