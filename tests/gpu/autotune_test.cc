// Tactic selection by timing (cuda/autotune.h) and the timing cache: every convolution
// and GEMM of an FP16 network gets a timed, replayable tactic; the engine built from the
// timed choices computes what the CPU computes; a second build with the same timing cache
// times nothing and picks the same tactics; a plan naming a tactic the libraries cannot
// rebuild fails with TacticUnavailable when a context is created, not with a wrong answer.
#include <cstring>
#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>

#include "engine/plan.h"
#include "gpu_test_util.h"
#include "runtime/engine_impl.h"

namespace kiln {
namespace {

using gputest::Attrs;
using gputest::compare_tensors;
using gputest::i;
using gputest::Net;

/// conv 3x3 + ReLU → conv 1x1 + residual → GlobalAveragePool → Flatten → Gemm: the
/// shapes of a ResNet block and its head, small.
std::unique_ptr<ir::Graph> block() {
  Net n;
  ir::Value* x = n.input({2, 16, 12, 12});
  ir::Value* a = n.op("Relu", {n.conv(x, 16, 32, 3)});
  ir::Value* b = n.op("Relu", {n.op("Add", {n.conv(a, 32, 16, 1), x})});
  ir::Value* p = n.op("Flatten", {n.op("GlobalAveragePool", {b})});
  n.output(n.op("Gemm", {p, n.constant({10, 16}), n.constant({10})}, Attrs{{"transB", i(1)}}));
  return std::move(n.g);
}

std::vector<HostTensor> block_inputs() {
  HostTensor x(DataType::kF32, {2, 16, 12, 12});
  for (int64_t k = 0; k < x.numel(); ++k) x.set_f64(k, std::sin(0.37 * static_cast<double>(k)));
  std::vector<HostTensor> v;
  v.push_back(std::move(x));
  return v;
}

struct Build {
  std::vector<uint8_t> plan;
  nlohmann::json info;
};

Result<Build> build(const BuilderConfig& cfg) {
  NetworkDefinition net(block());
  Logger logger(LogLevel::kError);
  Build b;
  KILN_ASSIGN_OR_RETURN(b.plan, Builder(logger).build_serialized_network(net, cfg));
  KILN_ASSIGN_OR_RETURN(plan::LoadedPlan lp, plan::deserialize(b.plan.data(), b.plan.size()));
  b.info = nlohmann::json::parse(lp.info.build_info);
  return b;
}

BuilderConfig fp16() {
  BuilderConfig cfg;
  cfg.backend = Backend::kCuda;
  cfg.precision = Precision::kFp16;
  return cfg;
}

bool tunable(const ir::Node& n) {
  return n.op_type == "Conv" || n.op_type == "FusedConv" || n.op_type == "Gemm" ||
         n.op_type == "MatMul" || n.op_type == "FusedMatMul";
}

TEST(AutotuneGpu, EveryConvAndGemmGetsATimedReplayableTactic) {
  KILN_REQUIRE_GPU();
  auto inputs = block_inputs();
  auto er = gputest::build_and_run(block(), inputs, fp16());
  ASSERT_TRUE(er.is_ok()) << er.status().to_string();
  int tuned = 0;
  for (const auto& n : er->engine->graph().nodes()) {
    if (!tunable(*n)) continue;
    ++tuned;
    EXPECT_FALSE(n->tactic_params.empty()) << n->name << " " << n->tactic;
    EXPECT_GT(n->tactic_ms, 0.0f) << n->name;
  }
  EXPECT_EQ(tuned, 3);  // two convolutions (fused with their epilogues) and the Gemm
  auto cpu_inputs = block_inputs();
  BuilderConfig cpu;
  auto ref = gputest::build_and_run(block(), cpu_inputs, cpu);
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  HostTensor got = er->outputs[0].cast(DataType::kF32);
  EXPECT_EQ(compare_tensors(ref->outputs[0], got, 2e-2, 2e-2), "");
}

TEST(AutotuneGpu, TimingCacheMakesTheRebuildTimeNothingAndChooseTheSame) {
  KILN_REQUIRE_GPU();
  const std::string path =
      (std::filesystem::temp_directory_path() / "kiln_autotune_test_cache.json").string();
  std::filesystem::remove(path);
  BuilderConfig cfg = fp16();
  cfg.timing_cache = path;
  cfg.library_tradeoff = -1;  // one tuning pass: the counts below are per layer
  auto first = build(cfg);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(first->info["autotune"]["layers_timed"], 3);
  EXPECT_EQ(first->info["autotune"]["layers_from_cache"], 0);
  ASSERT_TRUE(std::filesystem::exists(path));
  auto second = build(cfg);
  ASSERT_TRUE(second.is_ok()) << second.status().to_string();
  EXPECT_EQ(second->info["autotune"]["layers_timed"], 0);
  EXPECT_EQ(second->info["autotune"]["layers_from_cache"], 3);
  auto a = plan::deserialize(first->plan.data(), first->plan.size());
  auto b = plan::deserialize(second->plan.data(), second->plan.size());
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  ASSERT_EQ(a->graph->nodes().size(), b->graph->nodes().size());
  for (size_t k = 0; k < a->graph->nodes().size(); ++k) {
    EXPECT_EQ(a->graph->nodes()[k]->tactic, b->graph->nodes()[k]->tactic);
    EXPECT_EQ(a->graph->nodes()[k]->tactic_params, b->graph->nodes()[k]->tactic_params);
  }
  std::filesystem::remove(path);
}

/// The tactic sources of the plan's tunable layers.
std::set<uint32_t> layer_sources(const Build& b) {
  std::set<uint32_t> out;
  auto lp = plan::deserialize(b.plan.data(), b.plan.size());
  EXPECT_TRUE(lp.is_ok());
  if (!lp.is_ok()) return out;
  for (const auto& n : lp->graph->nodes())
    if (tunable(*n)) out.insert(n->tactic_source);
  return out;
}

TEST(AutotuneGpu, TacticSourcesLimitTheCandidates) {
  KILN_REQUIRE_GPU();
  const uint32_t kiln = tactic_source_bit(TacticSource::kKiln),
                 cudnn = tactic_source_bit(TacticSource::kCudnn),
                 cublaslt = tactic_source_bit(TacticSource::kCublasLt);
  for (uint32_t sources : {kiln | cudnn, cudnn | cublaslt}) {
    BuilderConfig cfg = fp16();
    cfg.tactic_sources = sources;
    auto b = build(cfg);
    ASSERT_TRUE(b.is_ok()) << b.status().to_string();
    EXPECT_EQ(b->info["autotune"]["tactic_sources"], tactic_sources_to_string(sources));
    for (uint32_t s : layer_sources(*b)) EXPECT_NE(s & sources, 0u) << tactic_sources_to_string(s);
  }
}

TEST(AutotuneGpu, LibraryTradeoffDropsALibraryWhoseLayersHaveOtherKernels) {
  KILN_REQUIRE_GPU();
  BuilderConfig cfg = fp16();
  cfg.library_tradeoff = 100.0;  // any slowdown is worth it
  auto b = build(cfg);
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  // The 1x1 convolution and the Gemm have kiln kernels: no cuBLASLt. The 3x3 convolution
  // has only cuDNN's: cuDNN stays.
  const std::set<uint32_t> used = layer_sources(*b);
  EXPECT_EQ(used.count(tactic_source_bit(TacticSource::kCublasLt)), 0u);
  EXPECT_EQ(used.count(tactic_source_bit(TacticSource::kCudnn)), 1u);
  EXPECT_EQ(b->info["autotune"]["sources_used"].get<std::string>().find("cublaslt"),
            std::string::npos);
  // The engine still computes what the CPU computes.
  auto inputs = block_inputs();
  auto er = gputest::build_and_run(block(), inputs, cfg);
  ASSERT_TRUE(er.is_ok()) << er.status().to_string();
  auto cpu_inputs = block_inputs();
  auto ref = gputest::build_and_run(block(), cpu_inputs, BuilderConfig{});
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  EXPECT_EQ(compare_tensors(ref->outputs[0], er->outputs[0].cast(DataType::kF32), 2e-2, 2e-2), "");
}

TEST(AutotuneGpu, LibraryChoiceIsReproducibleWithATimingCache) {
  KILN_REQUIRE_GPU();
  const std::string path =
      (std::filesystem::temp_directory_path() / "kiln_library_choice_cache.json").string();
  std::filesystem::remove(path);
  BuilderConfig cfg = fp16();
  cfg.timing_cache = path;
  cfg.library_tradeoff = 100.0;
  auto first = build(cfg);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  auto second = build(cfg);
  ASSERT_TRUE(second.is_ok()) << second.status().to_string();
  // Both tuning passes come from the cache: nothing is timed, the same choice is made.
  EXPECT_EQ(second->info["autotune"]["layers_timed"], 0);
  EXPECT_EQ(second->info["autotune"]["candidates_timed"], 0);
  EXPECT_EQ(first->info["autotune"]["sources_dropped"], second->info["autotune"]["sources_dropped"]);
  auto a = plan::deserialize(first->plan.data(), first->plan.size());
  auto b = plan::deserialize(second->plan.data(), second->plan.size());
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  for (size_t k = 0; k < a->graph->nodes().size(); ++k)
    EXPECT_EQ(a->graph->nodes()[k]->tactic_params, b->graph->nodes()[k]->tactic_params);
  std::filesystem::remove(path);
}

TEST(AutotuneGpu, ALibraryWithoutAlternativesIsKept) {
  KILN_REQUIRE_GPU();
  // A MatMul runs only on cuBLASLt: with any tradeoff, cuBLASLt stays and keeps its layers.
  Net n;
  ir::Value* x = n.input({4, 32});
  n.output(n.op("MatMul", {n.op("Relu", {x}), n.constant({32, 8})}));
  NetworkDefinition net(std::move(n.g));
  BuilderConfig cfg = fp16();
  cfg.library_tradeoff = 100.0;
  Logger logger(LogLevel::kError);
  auto bytes = Builder(logger).build_serialized_network(net, cfg);
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().to_string();
  auto lp = plan::deserialize(bytes->data(), bytes->size());
  ASSERT_TRUE(lp.is_ok());
  const auto info = nlohmann::json::parse(lp->info.build_info);
  EXPECT_EQ(info["autotune"]["sources_dropped"], "");
  EXPECT_NE(info["autotune"]["sources_used"].get<std::string>().find("cublaslt"),
            std::string::npos);
}

TEST(AutotuneGpu, WithoutAutotuneNothingIsTimed) {
  KILN_REQUIRE_GPU();
  BuilderConfig cfg = fp16();
  cfg.autotune = false;
  auto b = build(cfg);
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(b->info["autotune"]["layers_timed"], 0);
  auto lp = plan::deserialize(b->plan.data(), b->plan.size());
  ASSERT_TRUE(lp.is_ok());
  for (const auto& n : lp->graph->nodes()) EXPECT_LT(n->tactic_ms, 0.0f) << n->name;
}

TEST(AutotuneGpu, UnbuildableRecordedTacticIsTacticUnavailable) {
  KILN_REQUIRE_GPU();
  auto b = build(fp16());
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  for (const char* bad : {"f1;e99999;", "garbage"}) {
    auto lp = plan::deserialize(b->plan.data(), b->plan.size());
    ASSERT_TRUE(lp.is_ok());
    bool changed = false;
    for (const auto& n : lp->graph->nodes())
      if (n->op_type == "FusedConv" && !changed) {
        n->tactic_params = bad;
        changed = true;
      }
    ASSERT_TRUE(changed);
    std::vector<uint8_t> bytes = plan::serialize(*lp->graph, lp->info);
    Logger logger(LogLevel::kOff);
    auto engine = Runtime(logger).deserialize(bytes.data(), bytes.size());
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    auto ctx = (*engine)->create_execution_context_checked();
    ASSERT_FALSE(ctx.is_ok()) << bad;
    EXPECT_EQ(ctx.status().code(), ErrorCode::kTacticUnavailable) << ctx.status().to_string();
  }
}

/// Runs a plan (bytes) once on block_inputs() and returns output 0 as f32.
Result<HostTensor> run_plan(const std::vector<uint8_t>& bytes) {
  Logger logger(LogLevel::kOff);
  KILN_ASSIGN_OR_RETURN(auto engine, Runtime(logger).deserialize(bytes.data(), bytes.size()));
  KILN_ASSIGN_OR_RETURN(auto ctx, engine->create_execution_context_checked());
  auto in = block_inputs();
  KILN_RETURN_IF_ERROR(ctx->set_input(engine->input_names()[0], TensorView{in[0].dtype(), in[0].dims(), in[0].raw()}));
  KILN_RETURN_IF_ERROR(ctx->execute());
  KILN_ASSIGN_OR_RETURN(TensorView out, ctx->output(engine->output_names()[0]));
  HostTensor t(out.dtype, out.dims);
  std::memcpy(t.raw(), out.data, t.bytes());
  return t.cast(DataType::kF32);
}

// The plan carries each chosen cuDNN plan serialized (compiled kernel included); a context
// loads it instead of rebuilding, runs the very same engine configuration (bitwise the same
// output as a plan without the stored code), and falls back to rebuilding when the stored
// bytes are damaged.
TEST(AutotuneGpu, StoredCompiledCodeLoadsAndFallsBackWhenDamaged) {
  KILN_REQUIRE_GPU();
  auto b = build(fp16());
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  auto variant = [&](int how) {  // 0: as built, 1: stored code removed, 2: stored code damaged
    auto lp = plan::deserialize(b->plan.data(), b->plan.size());
    EXPECT_TRUE(lp.is_ok());
    for (const auto& n : lp->graph->nodes()) {
      if (n->tactic_artifact.empty()) continue;
      if (how == 1) n->tactic_artifact.clear();
      if (how == 2)
        for (size_t k = n->tactic_artifact.size() / 2; k < n->tactic_artifact.size(); ++k)
          n->tactic_artifact[k] ^= 0x5a;
    }
    return plan::serialize(*lp->graph, lp->info);
  };
  auto lp = plan::deserialize(b->plan.data(), b->plan.size());
  ASSERT_TRUE(lp.is_ok());
  int stored = 0;
  for (const auto& n : lp->graph->nodes()) stored += !n->tactic_artifact.empty();
  ASSERT_GT(stored, 0) << "no cuDNN plan of this build was serialized";
  auto as_built = run_plan(variant(0));
  auto rebuilt = run_plan(variant(1));
  auto damaged = run_plan(variant(2));
  ASSERT_TRUE(as_built.is_ok()) << as_built.status().to_string();
  ASSERT_TRUE(rebuilt.is_ok()) << rebuilt.status().to_string();
  ASSERT_TRUE(damaged.is_ok()) << damaged.status().to_string();
  EXPECT_EQ(compare_tensors(*rebuilt, *as_built, 0, 0), "");
  EXPECT_EQ(compare_tensors(*rebuilt, *damaged, 0, 0), "");
}

}  // namespace
}  // namespace kiln
