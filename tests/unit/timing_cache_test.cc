// Timing cache: layer signatures (what a tactic choice depends on) and the JSON file
// (round trip, another environment, damaged files).
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "builder/timing_cache.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::add_input;
using test::add_op;

/// A fresh path in the temp directory, removed by the destructor.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name)
      : path((std::filesystem::temp_directory_path() / name).string()) {
    std::filesystem::remove(path);
  }
  ~TempFile() { std::filesystem::remove(path); }
  void write(const std::string& text) const { std::ofstream(path) << text; }
};

/// conv(x [1,C,8,8], w [4,C,3,3]) with the given attributes.
std::unique_ptr<ir::Graph> conv_graph(int64_t channels, test::Attrs attrs) {
  auto g = std::make_unique<ir::Graph>();
  std::mt19937 rng(1);
  ir::Value* x = add_input(*g, "x", {1, channels, 8, 8});
  ir::Value* w = test::add_random_const(*g, "w", DataType::kF32, {4, channels, 3, 3}, rng);
  g->outputs.push_back(add_op(*g, "Conv", {x, w}, "y", std::move(attrs)));
  EXPECT_TRUE(test::prepare(*g).is_ok());
  return g;
}

const ir::Node& only_node(const ir::Graph& g) { return *g.nodes().front(); }

TEST(TimingCache, SignatureNamesWhatTheChoiceDependsOn) {
  auto a = conv_graph(3, {{"pads", ir::Attribute::from_ints({1, 1, 1, 1})}});
  const std::string sig = builder::layer_signature(only_node(*a), "tf32");
  EXPECT_NE(sig.find("Conv|ai.onnx|"), std::string::npos) << sig;
  EXPECT_NE(sig.find("pads=[1,1,1,1]"), std::string::npos) << sig;
  EXPECT_NE(sig.find("f32[1x3x8x8]"), std::string::npos) << sig;
  EXPECT_NE(sig.find("|tf32"), std::string::npos) << sig;
  // Weights are marked constant, but their values are not part of the key.
  EXPECT_NE(sig.find("f32[4x3x3x3]c"), std::string::npos) << sig;
  auto same = conv_graph(3, {{"pads", ir::Attribute::from_ints({1, 1, 1, 1})}});
  EXPECT_EQ(sig, builder::layer_signature(only_node(*same), "tf32"));
}

TEST(TimingCache, SignatureChangesWithShapesAttributesLayoutAndPolicy) {
  auto base = conv_graph(3, {});
  const std::string sig = builder::layer_signature(only_node(*base), "tf32");
  EXPECT_NE(sig, builder::layer_signature(only_node(*conv_graph(5, {})), "tf32"));
  EXPECT_NE(sig, builder::layer_signature(
                     only_node(*conv_graph(3, {{"strides", ir::Attribute::from_ints({2, 2})}})),
                     "tf32"));
  EXPECT_NE(sig, builder::layer_signature(only_node(*base), "no-tf32"));
  base->nodes().front()->inputs[0]->layout = 1;  // NHWC
  EXPECT_NE(sig, builder::layer_signature(only_node(*base), "tf32"));
}

TEST(TimingCache, SaveAndLoadRoundTrip) {
  TempFile f("kiln_timing_cache_roundtrip.json");
  Logger logger(LogLevel::kOff);
  builder::TimingCache c(R"({"gpu":"test","cudnn":1})");
  c.put("k1", {"cudnn_conv_nhwc_f16_eng4", "f1;e4;24:23", 0.125f, 9,
               tactic_source_bit(TacticSource::kCudnn)});
  c.put("k2", {"cublaslt:f16:algo21", "lt00ff", 0.5f, 3});
  ASSERT_TRUE(c.save(f.path).is_ok());
  auto back = builder::TimingCache::load(f.path, R"({"gpu":"test","cudnn":1})", logger);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->size(), 2u);
  const builder::TimingEntry* e = back->find("k1");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->tactic, "cudnn_conv_nhwc_f16_eng4");
  EXPECT_EQ(e->params, "f1;e4;24:23");
  EXPECT_FLOAT_EQ(e->ms, 0.125f);
  EXPECT_EQ(e->candidates, 9);
  EXPECT_EQ(e->source, tactic_source_bit(TacticSource::kCudnn));
  EXPECT_EQ(back->find("k2")->source, 0u);  // not given: unknown
  EXPECT_EQ(back->find("missing"), nullptr);
  EXPECT_EQ(back->hits(), 2u);
  EXPECT_EQ(back->misses(), 1u);
}

TEST(TacticSources, ParseNamesAndEdits) {
  const uint32_t kiln = tactic_source_bit(TacticSource::kKiln),
                 cudnn = tactic_source_bit(TacticSource::kCudnn),
                 cublaslt = tactic_source_bit(TacticSource::kCublasLt);
  auto parse = [](const char* t) { return parse_tactic_sources(t).value(); };
  EXPECT_EQ(parse("kiln,cudnn"), kiln | cudnn);
  EXPECT_EQ(parse("CUBLASLT"), cublaslt);
  EXPECT_EQ(parse("-cublaslt"), kiln | cudnn);
  EXPECT_EQ(parse("-cudnn,-cublaslt"), kiln);
  EXPECT_EQ(parse("+kiln,-cudnn"), kiln | cublaslt);
  for (const char* bad : {"", "kiln,", "cudnn,-kiln", "tensorrt", "-kiln,-cudnn,-cublaslt"}) {
    auto r = parse_tactic_sources(bad);
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_FALSE(r.status().hint().empty());
  }
  EXPECT_EQ(tactic_sources_to_string(kAllTacticSources), "kiln,cudnn,cublaslt");
  EXPECT_EQ(tactic_sources_to_string(cudnn | cublaslt), "cudnn,cublaslt");
  EXPECT_EQ(tactic_sources_to_string(0), "");
}

TEST(TimingCache, MissingFileIsAnEmptyCache) {
  TempFile f("kiln_timing_cache_missing.json");
  Logger logger(LogLevel::kOff);
  auto c = builder::TimingCache::load(f.path, "{}", logger);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->size(), 0u);
}

TEST(TimingCache, AnotherEnvironmentIsIgnored) {
  TempFile f("kiln_timing_cache_env.json");
  Logger logger(LogLevel::kOff);
  builder::TimingCache c(R"({"gpu":"A"})");
  c.put("k", {"t", "p", 1.0f, 1});
  ASSERT_TRUE(c.save(f.path).is_ok());
  auto other = builder::TimingCache::load(f.path, R"({"gpu":"B"})", logger);
  ASSERT_TRUE(other.is_ok());
  EXPECT_EQ(other->size(), 0u);
}

TEST(TimingCache, DamagedFilesAreRejectedWithAHint) {
  TempFile f("kiln_timing_cache_bad.json");
  Logger logger(LogLevel::kOff);
  for (const char* text :
       {"not json", R"({"format":"other"})",
        R"({"format":"kiln-timing-cache","version":99,"environment":{},"entries":{}})",
        R"({"format":"kiln-timing-cache","version":1,"environment":{},"entries":{"k":{}}})"}) {
    f.write(text);
    auto c = builder::TimingCache::load(f.path, "{}", logger);
    ASSERT_FALSE(c.is_ok()) << text;
    EXPECT_EQ(c.status().code(), ErrorCode::kTimingCacheInvalid) << text;
    EXPECT_NE(c.status().hint().find("delete the file"), std::string::npos);
  }
}

}  // namespace
}  // namespace kiln
