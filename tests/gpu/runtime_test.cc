// CUDA runtime: enqueue on device buffers, CUDA-graph replay, several contexts on one
// engine, plan checks, memory statistics.
#include <cstring>
#include <thread>

#include "engine/plan.h"
#include "gpu_test_util.h"

namespace kiln {
namespace {

// y = Relu(x + 1) * 2 over [n] f32, as a plan for the CUDA backend.
std::vector<uint8_t> small_plan(int64_t n, Backend backend = Backend::kCuda) {
  auto g = std::make_unique<ir::Graph>();
  g->opset_imports[""] = 17;
  ir::Value* x = g->add_value("x", DataType::kF32, Shape::from({n}));
  g->inputs.push_back(x);
  auto scalar = [&](const char* name, float v) {
    return g->add_constant(name, HostTensor::from_vector<float>(DataType::kF32, {1}, {v}));
  };
  ir::Value* a = g->add_value("a");
  ir::Value* r = g->add_value("r");
  ir::Value* y = g->add_value("y");
  g->add_node("Add", "add", {x, scalar("one", 1.f)}, {a}, "", 17);
  g->add_node("Relu", "relu", {a}, {r}, "", 17);
  g->add_node("Mul", "mul", {r, scalar("two", 2.f)}, {y}, "", 17);
  g->outputs.push_back(y);
  NetworkDefinition net(std::move(g));
  BuilderConfig cfg;
  cfg.backend = backend;
  // Three layers with intermediate tensors (memory stats, per-layer times), not one fused.
  cfg.disabled_passes = {"fuse_pointwise"};
  Logger log(LogLevel::kError);
  auto plan = Builder(log).build_serialized_network(net, cfg);
  EXPECT_TRUE(plan.is_ok()) << plan.status().to_string();
  return plan.is_ok() ? plan.value() : std::vector<uint8_t>{};
}

float expected(float x) { return std::max(x + 1.f, 0.f) * 2.f; }

struct Io {
  CudaBuffer x, y, hx, hy;
};

Io make_io(int64_t n) {
  Io io;
  io.x = std::move(CudaBuffer::allocate(CudaBuffer::Kind::kDevice, n * 4).value());
  io.y = std::move(CudaBuffer::allocate(CudaBuffer::Kind::kDevice, n * 4).value());
  io.hx = std::move(CudaBuffer::allocate(CudaBuffer::Kind::kPinnedHost, n * 4).value());
  io.hy = std::move(CudaBuffer::allocate(CudaBuffer::Kind::kPinnedHost, n * 4).value());
  return io;
}

// Fills x with base + i, runs one inference on ctx's stream and checks y.
void run_and_check(ExecutionContext& ctx, Io& io, int64_t n, float base) {
  auto* hx = static_cast<float*>(io.hx.data());
  for (int64_t i = 0; i < n; ++i) hx[i] = base + static_cast<float>(i % 97) - 48.f;
  void* s = ctx.stream();
  ASSERT_TRUE(cuda_copy_async(io.x.data(), io.hx.data(), n * 4, s).is_ok());
  Status st = ctx.enqueue(s);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  ASSERT_TRUE(cuda_copy_async(io.hy.data(), io.y.data(), n * 4, s).is_ok());
  ASSERT_TRUE(cuda_stream_synchronize(s).is_ok());
  const auto* hy = static_cast<const float*>(io.hy.data());
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hy[i], expected(hx[i])) << "element " << i << " base " << base;
}

TEST(CudaRuntime, EnqueueAndGraphReplaySeeNewInputs) {
  KILN_REQUIRE_GPU();
  const int64_t n = 100003;
  auto plan = small_plan(n);
  Logger log(LogLevel::kError);
  auto engine = Runtime(log).deserialize(plan.data(), plan.size());
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  auto ctx = (*engine)->create_execution_context_checked();
  ASSERT_TRUE(ctx.is_ok()) << ctx.status().to_string();
  Io io = make_io(n);
  ASSERT_TRUE((*ctx)->set_tensor_address("x", io.x.data()).is_ok());
  ASSERT_TRUE((*ctx)->set_tensor_address("y", io.y.data()).is_ok());
  // Run 1 launches kernels directly; runs 2+ replay the captured graph with new data.
  for (float base : {0.f, 10.f, -20.f, 5.f}) run_and_check(**ctx, io, n, base);
  // New addresses force a new capture.
  Io io2 = make_io(n);
  ASSERT_TRUE((*ctx)->set_tensor_address("x", io2.x.data()).is_ok());
  ASSERT_TRUE((*ctx)->set_tensor_address("y", io2.y.data()).is_ok());
  run_and_check(**ctx, io2, n, 3.f);
}

TEST(CudaRuntime, ContextsShareAnEngineConcurrently) {
  KILN_REQUIRE_GPU();
  const int64_t n = 1 << 20;
  auto plan = small_plan(n);
  Logger log(LogLevel::kError);
  auto engine = Runtime(log).deserialize(plan.data(), plan.size());
  ASSERT_TRUE(engine.is_ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      auto ctx = (*engine)->create_execution_context_checked();
      ASSERT_TRUE(ctx.is_ok());
      Io io = make_io(n);
      ASSERT_TRUE((*ctx)->set_tensor_address("x", io.x.data()).is_ok());
      ASSERT_TRUE((*ctx)->set_tensor_address("y", io.y.data()).is_ok());
      for (int i = 0; i < 10; ++i) run_and_check(**ctx, io, n, static_cast<float>(t * 100 + i));
    });
  for (auto& th : threads) th.join();
}

TEST(CudaRuntime, MissingAddressIsReported) {
  KILN_REQUIRE_GPU();
  auto plan = small_plan(16);
  Logger log(LogLevel::kError);
  auto engine = Runtime(log).deserialize(plan.data(), plan.size());
  ASSERT_TRUE(engine.is_ok());
  auto ctx = (*engine)->create_execution_context_checked();
  ASSERT_TRUE(ctx.is_ok());
  Status st = (*ctx)->enqueue();
  EXPECT_EQ(st.code(), ErrorCode::kMissingInput);
  EXPECT_NE(st.message().find("'x'"), std::string::npos) << st.to_string();
  EXPECT_EQ((*ctx)->set_tensor_address("nope", nullptr).code(), ErrorCode::kNotFound);
}

TEST(CudaRuntime, PlanForAnotherArchitectureIsRejected) {
  KILN_REQUIRE_GPU();
  auto bytes = small_plan(16);
  Logger log(LogLevel::kError);
  auto lp = plan::deserialize(bytes.data(), bytes.size());
  ASSERT_TRUE(lp.is_ok());
  plan::PlanInfo info = lp->info;
  info.compute_capability = 75;  // a Turing plan
  auto other = plan::serialize(*lp->graph, info);
  auto engine = Runtime(log).deserialize(other.data(), other.size());
  ASSERT_FALSE(engine.is_ok());
  EXPECT_EQ(engine.status().code(), ErrorCode::kGpuArchMismatch);
  EXPECT_NE(engine.status().message().find("7.5"), std::string::npos) << engine.status().to_string();
}

TEST(CudaRuntime, HostApiAndMemoryStats) {
  KILN_REQUIRE_GPU();
  const int64_t n = 4096;
  auto plan = small_plan(n);
  Logger log(LogLevel::kError);
  auto engine = Runtime(log).deserialize(plan.data(), plan.size());
  ASSERT_TRUE(engine.is_ok());
  auto stats = (*engine)->memory_stats();
  EXPECT_GT(stats.naive_bytes, 0u);
  EXPECT_LE(stats.arena_bytes, stats.naive_bytes);
  auto ctx = (*engine)->create_execution_context_checked();
  ASSERT_TRUE(ctx.is_ok());
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 13) - 6.f;
  ASSERT_TRUE((*ctx)->set_input("x", TensorView{DataType::kF32, {n}, x.data()}).is_ok());
  for (int rep = 0; rep < 3; ++rep) {
    Status st = (*ctx)->execute();
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    auto y = (*ctx)->output("y");
    ASSERT_TRUE(y.is_ok());
    const auto* py = static_cast<const float*>(y->data);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(py[i], expected(x[i]));
  }
  (*ctx)->set_profiling(true);
  ASSERT_TRUE((*ctx)->execute().is_ok());
  EXPECT_EQ((*ctx)->layer_times().size(), 3u);
}

}  // namespace
}  // namespace kiln
