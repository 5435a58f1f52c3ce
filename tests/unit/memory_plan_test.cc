// Memory planner: lifetimes, best-fit reuse, views, in-place, external tensors.
#include "builder/memory_plan.h"
#include "test_util.h"

// EXPECT (not ASSERT) so it works in helpers returning values.
#define KILN_CHECK_OK_FOR_TEST(expr)                        \
  do {                                                      \
    ::kiln::Status kiln_st_ = (expr);                       \
    EXPECT_TRUE(kiln_st_.is_ok()) << kiln_st_.to_string(); \
  } while (0)

namespace kiln {
namespace {

using test::add_input;
using test::add_op;

builder::MemoryPlanRules rules(bool inplace) {
  builder::MemoryPlanRules r;
  r.is_alias = [](const ir::Node& n) { return n.op_type == "Reshape"; };
  r.inplace_input = [inplace](const ir::Node& n) { return inplace && n.op_type == "Relu" ? 0 : -1; };
  return r;
}

// in → Relu → a → Relu → b → Relu → c → Relu → out, all [1024] f32 (4 KiB each).
std::unique_ptr<ir::Graph> relu_chain() {
  auto g = std::make_unique<ir::Graph>();
  ir::Value* v = add_input(*g, "in", {1024});
  for (const char* name : {"a", "b", "c", "out"}) v = add_op(*g, "Relu", {v}, name);
  g->outputs.push_back(v);
  KILN_CHECK_OK_FOR_TEST(test::prepare(*g));
  return g;
}

TEST(MemoryPlan, LifetimesShareMemory) {
  auto g = relu_chain();
  auto mp = builder::plan_memory(*g, rules(false));
  ASSERT_TRUE(mp.is_ok()) << mp.status().to_string();
  // a and c never live together: two 4 KiB buffers, not three.
  EXPECT_EQ(mp->naive_bytes, 3u * 4096);
  EXPECT_EQ(mp->arena_bytes, 2u * 4096);
  EXPECT_EQ(mp->buffers, 3);
  const auto off = [&](const char* n) { return g->find_value(n)->mem_offset; };
  EXPECT_NE(off("a"), off("b"));
  EXPECT_NE(off("b"), off("c"));
  EXPECT_EQ(off("a"), off("c"));
  EXPECT_EQ(off("in"), -1);
  EXPECT_EQ(off("out"), -1);
}

TEST(MemoryPlan, InPlaceReusesTheLastReadInput) {
  auto g = relu_chain();
  auto mp = builder::plan_memory(*g, rules(true));
  ASSERT_TRUE(mp.is_ok());
  EXPECT_EQ(mp->arena_bytes, 4096u);
  EXPECT_EQ(mp->buffers, 1);
  EXPECT_EQ(g->find_value("a")->mem_offset, g->find_value("c")->mem_offset);
}

TEST(MemoryPlan, NoInPlaceWhenTheInputIsReadLater) {
  // a is read by Relu (b) and later by Add: b must not overwrite a.
  auto g = std::make_unique<ir::Graph>();
  ir::Value* in = add_input(*g, "in", {256});
  ir::Value* a = add_op(*g, "Relu", {in}, "a");
  ir::Value* b = add_op(*g, "Relu", {a}, "b");
  ir::Value* s = add_op(*g, "Add", {a, b}, "out");
  g->outputs.push_back(s);
  KILN_CHECK_OK_FOR_TEST(test::prepare(*g));
  auto mp = builder::plan_memory(*g, rules(true));
  ASSERT_TRUE(mp.is_ok());
  EXPECT_NE(a->mem_offset, b->mem_offset);
}

TEST(MemoryPlan, ViewsAliasTheirInput) {
  auto g = std::make_unique<ir::Graph>();
  ir::Value* in = add_input(*g, "in", {4, 64});
  ir::Value* a = add_op(*g, "Relu", {in}, "a");
  ir::Value* r = add_op(*g, "Reshape", {a, test::add_i64(*g, "shape", {256})}, "r");
  ir::Value* out = add_op(*g, "Relu", {r}, "out");
  g->outputs.push_back(out);
  KILN_CHECK_OK_FOR_TEST(test::prepare(*g));
  auto mp = builder::plan_memory(*g, rules(false));
  ASSERT_TRUE(mp.is_ok());
  EXPECT_EQ(a->mem_offset, r->mem_offset);
  EXPECT_EQ(mp->buffers, 1);
  EXPECT_EQ(mp->naive_bytes, 1024u);
}

TEST(MemoryPlan, BestFitPicksTheSmallestGap) {
  // big0 (8 KiB) and big1 (8 KiB) live together early; after big0 dies a 1 KiB tensor
  // fits into its hole, so the arena stays at 16 KiB (not 17).
  auto g = std::make_unique<ir::Graph>();
  ir::Value* in = add_input(*g, "in", {2048});
  ir::Value* big0 = add_op(*g, "Relu", {in}, "big0");
  ir::Value* big1 = add_op(*g, "Relu", {big0}, "big1");
  ir::Value* small = add_op(*g, "ReduceSum", {big1, test::add_i64(*g, "ax", {0})}, "small", {{"keepdims", ir::Attribute::from_int(1)}});
  ir::Value* out = add_op(*g, "Add", {big1, small}, "out");
  g->outputs.push_back(out);
  KILN_CHECK_OK_FOR_TEST(test::prepare(*g));
  auto mp = builder::plan_memory(*g, rules(false));
  ASSERT_TRUE(mp.is_ok());
  EXPECT_EQ(mp->arena_bytes, 2u * 8192);
}

TEST(MemoryPlan, DynamicShapeIsAnError) {
  auto g = std::make_unique<ir::Graph>();
  ir::Value* in = g->add_value("in", DataType::kF32, Shape({Dim::sym("n")}));
  g->inputs.push_back(in);
  ir::Value* a = add_op(*g, "Relu", {in}, "a");
  g->outputs.push_back(add_op(*g, "Relu", {a}, "out"));
  KILN_CHECK_OK_FOR_TEST(test::prepare(*g));
  auto mp = builder::plan_memory(*g, rules(false));
  ASSERT_FALSE(mp.is_ok());
  EXPECT_EQ(mp.status().code(), ErrorCode::kDynamicShapeUnresolved);
  EXPECT_NE(mp.status().message().find("'a'"), std::string::npos);
}

}  // namespace
}  // namespace kiln
