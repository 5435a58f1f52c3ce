// Plan file v1: round trip (graph, attributes, subgraphs, weights alignment) and rejection
// of corrupt, truncated, foreign and newer-format files.
#include <gtest/gtest.h>

#include <xxhash.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "engine/plan.h"

namespace kiln {
namespace {

std::unique_ptr<ir::Graph> sample_graph() {
  auto g = std::make_unique<ir::Graph>();
  g->name = "sample";
  g->opset_imports[""] = 17;
  ir::Value* x = g->add_value("x", DataType::kF32, Shape({Dim::sym("batch"), Dim(3)}));
  g->inputs.push_back(x);
  ir::Value* w = g->add_constant("w", HostTensor::from_vector<float>(DataType::kF32, {3}, {1.f, 2.f, 3.f}));
  ir::Value* b = g->add_constant("b", HostTensor::from_vector<int64_t>(DataType::kI64, {2}, {7, 8}));
  ir::Value* y = g->add_value("y", DataType::kF32, Shape({Dim::sym("batch"), Dim(3)}));
  ir::Node* n = g->add_node("Mul", "mul0", {x, w}, {y}, "", 17);
  n->attrs["alpha"] = ir::Attribute::from_float(0.5f);
  n->attrs["perm"] = ir::Attribute::from_ints({0, 2, 1});
  n->attrs["mode"] = ir::Attribute::from_string("linear");
  n->attrs["t"] = ir::Attribute::from_tensor(HostTensor::from_vector<float>(DataType::kF32, {2}, {4.f, 5.f}));
  n->tactic = "cpu_ref";
  // A subgraph capturing `b` from the outer graph.
  auto sg = std::make_shared<ir::Graph>();
  sg->name = "body";
  ir::Value* cap = sg->add_value("b", DataType::kI64, Shape::from({2}));
  sg->captures.push_back(cap);
  ir::Value* z = sg->add_value("z", DataType::kI64, Shape::from({2}));
  sg->add_node("Identity", "id", {cap}, {z}, "", 17);
  sg->outputs.push_back(z);
  ir::Value* y2 = g->add_value("y2", DataType::kI64, Shape::from({2}));
  ir::Node* iff = g->add_node("If", "if0", {b}, {y2}, "", 17);
  iff->attrs["then_branch"].kind = ir::Attribute::Kind::kGraph;
  iff->attrs["then_branch"].g = sg;
  iff->implicit_inputs.push_back(b);
  g->outputs = {y, y2};
  return g;
}

}  // namespace

TEST(Plan, RoundTrip) {
  auto g = sample_graph();
  ASSERT_TRUE(ir::verify_graph(*g).is_ok());
  plan::PlanInfo info;
  info.build_info = R"({"opt_level":2})";
  auto bytes = plan::serialize(*g, info);
  auto lp = plan::deserialize(bytes.data(), bytes.size());
  ASSERT_TRUE(lp.is_ok()) << lp.status().to_string();
  EXPECT_EQ(ir::print_graph(*lp->graph), ir::print_graph(*g));
  EXPECT_TRUE(ir::verify_graph(*lp->graph).is_ok());
  EXPECT_EQ(lp->info.build_info, info.build_info);
  EXPECT_EQ(lp->graph->opset_imports.at(""), 17);
  // Weights are used in place and 256-byte aligned.
  const ir::Value* w = lp->graph->find_value("w");
  ASSERT_TRUE(w && w->constant);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w->constant->raw()) % plan::kWeightAlign, 0u);
  EXPECT_EQ(w->constant->to_f32_vector(), (std::vector<float>{1.f, 2.f, 3.f}));
  const ir::Node* mul = lp->graph->nodes()[0].get();
  EXPECT_EQ(mul->attr_ints("perm"), (std::vector<int64_t>{0, 2, 1}));
  EXPECT_EQ(mul->attr_s("mode", ""), "linear");
  EXPECT_EQ(mul->tactic, "cpu_ref");
  EXPECT_EQ(lp->graph->inputs[0]->shape.to_string(), "batchx3");
}

TEST(Plan, RejectsBadFiles) {
  auto g = sample_graph();
  auto bytes = plan::serialize(*g, {});
  auto code = [](const std::vector<uint8_t>& b) { return plan::deserialize(b.data(), b.size()).status().code(); };

  auto flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x40;
  EXPECT_EQ(code(flipped), ErrorCode::kPlanCorrupt);

  for (size_t keep : {size_t{4}, size_t{20}, bytes.size() / 2, bytes.size() - 1}) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + keep);
    ErrorCode c = code(cut);
    EXPECT_TRUE(c == ErrorCode::kPlanCorrupt || c == ErrorCode::kPlanBadMagic) << keep;
  }

  auto newer = bytes;
  uint32_t v = plan::kFormatVersion + 1;
  std::memcpy(newer.data() + 8, &v, 4);
  auto st = plan::deserialize(newer.data(), newer.size()).status();
  EXPECT_EQ(st.code(), ErrorCode::kPlanVersion);
  EXPECT_NE(st.to_string().find("newer kiln"), std::string::npos) << st.to_string();

  std::vector<uint8_t> onnxish = {0x08, 0x07, 0x12, 0x04, 'k', 'i', 'l', 'n'};
  EXPECT_EQ(code(onnxish), ErrorCode::kPlanBadMagic);

  // Random bytes after a valid preamble with a consistent checksum are caught by the
  // FlatBuffers verifier, not by luck.
  std::vector<uint8_t> rnd(4096);
  uint32_t s = 12345;
  for (auto& b : rnd) { s = s * 1664525u + 1013904223u; b = static_cast<uint8_t>(s >> 24); }
  std::memcpy(rnd.data(), plan::kMagic, 8);
  std::memcpy(rnd.data() + 8, &plan::kFormatVersion, 4);
  uint64_t fb = 1000;
  std::memcpy(rnd.data() + 16, &fb, 8);
  uint64_t sum = XXH3_64bits(rnd.data() + plan::kPreambleBytes, rnd.size() - plan::kPreambleBytes);
  std::memcpy(rnd.data() + 24, &sum, 8);
  EXPECT_EQ(code(rnd), ErrorCode::kPlanCorrupt);
}

// A plan file comes back byte for byte, its weights in place; a truncated file is an error,
// not a partial plan, and a missing file or a directory an I/O error.
TEST(Plan, FileRoundTrip) {
  auto g = sample_graph();
  std::vector<float> big(1u << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 9973);
  g->add_constant("big", HostTensor::from_vector<float>(DataType::kF32, {static_cast<int64_t>(big.size())}, big));
  const auto bytes = plan::serialize(*g, {});
  const std::string path = ::testing::TempDir() + "/kiln_plan_file_test.kiln";
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  auto lp = plan::deserialize_file(path);
  ASSERT_TRUE(lp.is_ok()) << lp.status().to_string();
  const ir::Value* v = lp->graph->find_value("big");
  ASSERT_TRUE(v && v->constant);
  EXPECT_EQ(std::memcmp(v->constant->raw(), big.data(), big.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(lp->storage.get(), bytes.data(), bytes.size()), 0);

  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size() - 4096));
  }
  EXPECT_EQ(plan::deserialize_file(path).status().code(), ErrorCode::kPlanCorrupt);
  std::remove(path.c_str());
  EXPECT_EQ(plan::deserialize_file(path).status().code(), ErrorCode::kIoError);
  const Status dir = plan::deserialize_file(::testing::TempDir()).status();
  EXPECT_EQ(dir.code(), ErrorCode::kIoError);
  EXPECT_NE(dir.message().find("is a directory"), std::string::npos) << dir.to_string();
}

}  // namespace kiln
