// constant_folding: all-constant nodes and Shape/Size of static shapes become constants
// (values checked), names survive, huge results are not materialised.
#include "test_util.h"

namespace kiln {
namespace {

using namespace test;
using ir::Attribute;

TEST(ConstantFolding, FoldsAllConstantChains) {
  ir::Graph g;
  std::mt19937 rng(7);
  ir::Value* x = add_input(g, "x", {2, 3});
  ir::Value* a = add_random_const(g, "a", DataType::kF32, {2, 3}, rng);
  ir::Value* b = add_random_const(g, "b", DataType::kF32, {3}, rng);
  ir::Node* s = add_node(g, "Add", {a, b}, {"s"});
  ir::Node* e = add_node(g, "Exp", {s->outputs[0]}, {"e"});
  ir::Node* y = add_node(g, "Mul", {x, e->outputs[0]}, {"y"});
  g.outputs = {y->outputs[0]};
  KILN_ASSERT_OK(prepare(g));
  HostTensor av = *a->constant, bv = *b->constant;

  run_pass_and_compare(g, "constant_folding");
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Mul"}));
  ir::Value* folded = g.nodes()[0]->inputs[1];
  ASSERT_TRUE(folded->is_constant());
  EXPECT_EQ(folded->name, "e");
  EXPECT_EQ(folded->constant->dims(), (std::vector<int64_t>{2, 3}));
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_NEAR(folded->constant->get_f64(i), std::exp(av.get_f64(i) + bv.get_f64(i % 3)), 1e-5);
  // Inputs no longer read are dropped with their nodes.
  EXPECT_EQ(g.find_value("a"), nullptr);
  EXPECT_EQ(g.find_value("s"), nullptr);
}

TEST(ConstantFolding, ShapeGatherConcatReshapeDisappearsWithStaticShapes) {
  // The exporter pattern for x.view(x.size(0), -1).
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {2, 3, 4});
  ir::Node* sh = add_node(g, "Shape", {x}, {"shape"});
  ir::Node* ga =
      add_node(g, "Gather", {sh->outputs[0], add_i64(g, "zero", {0}, std::vector<int64_t>{})},
               {"batch"}, {{"axis", Attribute::from_int(0)}});
  ir::Node* un = add_node(g, "Unsqueeze", {ga->outputs[0], add_i64(g, "axes", {0})}, {"batch1"});
  ir::Node* cat = add_node(g, "Concat", {un->outputs[0], add_i64(g, "minus1", {-1})}, {"target"},
                           {{"axis", Attribute::from_int(0)}});
  ir::Node* rs = add_node(g, "Reshape", {x, cat->outputs[0]}, {"y"});
  g.outputs = {rs->outputs[0]};
  KILN_ASSERT_OK(prepare(g));

  run_pass_and_compare(g, "constant_folding");
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Reshape"}));
  ir::Value* target = g.nodes()[0]->inputs[1];
  ASSERT_TRUE(target->is_constant());
  EXPECT_EQ(target->constant->to_i64_vector(), (std::vector<int64_t>{2, -1}));
  EXPECT_EQ(g.outputs[0]->shape.concrete(), (std::vector<int64_t>{2, 12}));
}

TEST(ConstantFolding, ShapeSliceOfPartlySymbolicShape) {
  ir::Graph g;
  ir::Value* x = g.add_value("x", DataType::kF32, Shape({Dim::sym("batch"), Dim(3), Dim(4)}));
  g.inputs.push_back(x);
  ir::Node* full = add_node(g, "Shape", {x}, {"full"}, {}, 15);
  ir::Node* tail = add_node(g, "Shape", {x}, {"tail"}, {{"start", Attribute::from_int(-2)}}, 15);
  ir::Node* size = add_node(g, "Size", {x}, {"size"});
  g.outputs = {full->outputs[0], tail->outputs[0], size->outputs[0]};
  KILN_ASSERT_OK(prepare(g));
  KILN_ASSERT_OK(run_only(g, "constant_folding"));
  // Only the static slice [3, 4] is known; the full shape and the size depend on batch.
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Shape", "Size"}));
  ir::Value* t = g.find_value("tail");
  ASSERT_TRUE(t && t->is_constant());
  EXPECT_EQ(t->constant->to_i64_vector(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(g.outputs[1], t);

  // With the batch fixed, everything folds; graph outputs become constants under their names.
  x->shape = Shape::from({5, 3, 4});
  KILN_ASSERT_OK(infer_graph(g));
  KILN_ASSERT_OK(run_only(g, "constant_folding"));
  EXPECT_TRUE(g.nodes().empty());
  EXPECT_EQ(g.outputs[0]->name, "full");
  EXPECT_EQ(g.outputs[0]->constant->to_i64_vector(), (std::vector<int64_t>{5, 3, 4}));
  EXPECT_EQ(g.outputs[2]->name, "size");
  EXPECT_EQ(g.outputs[2]->constant->dims(), std::vector<int64_t>{});
  EXPECT_EQ(g.outputs[2]->constant->get_i64(0), 60);
  // The graph still runs and returns the folded values.
  std::mt19937 rng(1);
  auto out = run(g, {random_tensor(DataType::kF32, {5, 3, 4}, rng)});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].to_i64_vector(), (std::vector<int64_t>{3, 4}));
}

TEST(ConstantFolding, LeavesHugeResultsButFoldsSmallOnes) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {4096, 4096});
  HostTensor one = HostTensor::from_vector<float>(DataType::kF32, {1}, {1.0f});
  ir::Node* big = add_node(g, "ConstantOfShape", {add_i64(g, "big_shape", {4096, 4096})}, {"big"},
                           {{"value", Attribute::from_tensor(one)}});
  ir::Node* small = add_node(g, "ConstantOfShape", {add_i64(g, "small_shape", {2, 3})}, {"small"},
                             {{"value", Attribute::from_tensor(one)}});
  ir::Node* y = add_node(g, "Add", {x, big->outputs[0]}, {"y"});
  g.outputs = {y->outputs[0], small->outputs[0]};
  KILN_ASSERT_OK(prepare(g));
  KILN_ASSERT_OK(run_only(g, "constant_folding"));
  // 64 MiB of ones from 16 bytes of shape: left for the runtime.
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"ConstantOfShape", "Add"}));
  ir::Value* s = g.find_value("small");
  ASSERT_TRUE(s && s->is_constant());
  EXPECT_EQ(s->constant->dims(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(s->constant->get_f64(5), 1.0);
}

TEST(ConstantFolding, FoldsHalfPrecisionAndIntegerConstants) {
  ir::Graph g;
  std::mt19937 rng(3);
  ir::Value* x = add_input(g, "x", {4}, DataType::kF16);
  ir::Value* a = add_random_const(g, "a", DataType::kF16, {4}, rng);
  ir::Node* neg = add_node(g, "Neg", {a}, {"na"});
  ir::Node* y = add_node(g, "Add", {x, neg->outputs[0]}, {"y"});
  ir::Node* ci = add_node(g, "Cast", {add_i64(g, "ints", {7, -2})}, {"as_i32"},
                          {{"to", Attribute::from_int(6)}});
  g.outputs = {y->outputs[0], ci->outputs[0]};
  KILN_ASSERT_OK(prepare(g));
  run_pass_and_compare(g, "constant_folding", 1e-3, 1e-3);
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Add"}));
  ir::Value* na = g.find_value("na");
  ASSERT_TRUE(na && na->is_constant());
  EXPECT_EQ(na->dtype, DataType::kF16);
  ir::Value* c = g.find_value("as_i32");
  ASSERT_TRUE(c && c->is_constant());
  EXPECT_EQ(c->constant->dtype(), DataType::kI32);
  EXPECT_EQ(c->constant->to_i64_vector(), (std::vector<int64_t>{7, -2}));
}

}  // namespace
}  // namespace kiln
