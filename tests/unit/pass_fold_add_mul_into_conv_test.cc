// fold_add_mul_into_conv: per-channel Add/Sub/Mul/Div constants after a Conv move into its
// weight and bias with the same results; non-per-channel constants and wrong operand
// orders stay.
#include "test_util.h"

namespace kiln {
namespace {

using namespace test;
using ir::Attribute;

// x[2, 3, 5, 5] → Conv(W[4,3,3,3], [b]) → "c".
ir::Node* add_conv(ir::Graph& g, DataType dt, bool bias, std::mt19937& rng,
                   const std::string& op = "Conv") {
  ir::Value* x = add_input(g, "x", {2, 3, 5, 5}, dt);
  std::vector<int64_t> wdims =
      op == "Conv" ? std::vector<int64_t>{4, 3, 3, 3} : std::vector<int64_t>{3, 4, 3, 3};
  std::vector<ir::Value*> ins = {x, add_random_const(g, "W", dt, wdims, rng)};
  if (bias) ins.push_back(add_random_const(g, "B", dt, {4}, rng));
  return add_node(g, op, ins, {"c"}, {{"pads", Attribute::from_ints({1, 1, 1, 1})}});
}

TEST(FoldAddMulIntoConv, FoldsAChainOfAllFourOps) {
  ir::Graph g;
  std::mt19937 rng(21);
  ir::Node* conv = add_conv(g, DataType::kF32, true, rng);
  ir::Node* a = add_node(
      g, "Add", {conv->outputs[0], add_random_const(g, "k1", DataType::kF32, {1, 4, 1, 1}, rng)},
      {"a"});
  ir::Node* m = add_node(
      g, "Mul", {add_random_const(g, "k2", DataType::kF32, {4, 1, 1}, rng, 0.5, 2), a->outputs[0]},
      {"m"});
  ir::Node* s = add_node(
      g, "Sub", {m->outputs[0], add_random_const(g, "k3", DataType::kF32, {}, rng)}, {"s"});
  ir::Node* d = add_node(
      g, "Div", {s->outputs[0], add_random_const(g, "k4", DataType::kF32, {4, 1, 1}, rng, 0.5, 2)},
      {"y"});
  ir::Node* r = add_node(g, "Relu", {d->outputs[0]}, {"r"});
  g.outputs = {r->outputs[0]};
  KILN_ASSERT_OK(prepare(g));
  run_pass_and_compare(g, "fold_add_mul_into_conv", 1e-5, 1e-5);
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Conv", "Relu"}));
  EXPECT_EQ(g.nodes()[0]->outputs[0]->name, "y");
  EXPECT_TRUE(g.nodes()[0]->inputs[2]->is_constant());
}

TEST(FoldAddMulIntoConv, AddsABiasToABiaslessConvAndFoldsIntoConvTranspose) {
  for (const char* op : {"Conv", "ConvTranspose"}) {
    ir::Graph g;
    std::mt19937 rng(22);
    ir::Node* conv = add_conv(g, DataType::kF32, false, rng, op);
    ir::Node* m = add_node(
        g, "Mul", {conv->outputs[0], add_random_const(g, "k", DataType::kF32, {1, 4, 1, 1}, rng)},
        {"m"});
    ir::Node* a =
        add_node(g, "Add",
                 {add_random_const(g, "k2", DataType::kF32, {4, 1, 1}, rng), m->outputs[0]}, {"y"});
    g.outputs = {a->outputs[0]};
    KILN_ASSERT_OK(prepare(g));
    run_pass_and_compare(g, "fold_add_mul_into_conv", 1e-5, 1e-5);
    EXPECT_EQ(op_types(g), (std::vector<std::string>{op})) << op;
    ASSERT_EQ(g.nodes()[0]->inputs.size(), 3u) << op;
    EXPECT_EQ(g.nodes()[0]->inputs[2]->constant->dims(), (std::vector<int64_t>{4})) << op;
  }
}

TEST(FoldAddMulIntoConv, HalfAndDoubleWeights) {
  for (DataType dt : {DataType::kF16, DataType::kF64}) {
    ir::Graph g;
    std::mt19937 rng(23);
    ir::Node* conv = add_conv(g, dt, true, rng);
    ir::Node* a =
        add_node(g, "Add", {conv->outputs[0], add_random_const(g, "k", dt, {4, 1, 1}, rng)}, {"a"});
    ir::Node* m =
        add_node(g, "Mul", {a->outputs[0], add_random_const(g, "k2", dt, {1}, rng)}, {"y"});
    g.outputs = {m->outputs[0]};
    KILN_ASSERT_OK(prepare(g));
    double tol = dt == DataType::kF16 ? 1e-2 : 1e-12;
    run_pass_and_compare(g, "fold_add_mul_into_conv", tol, tol);
    EXPECT_EQ(op_types(g), (std::vector<std::string>{"Conv"})) << dtype_name(dt);
    EXPECT_EQ(g.nodes()[0]->inputs[1]->dtype, dt);
    EXPECT_EQ(g.nodes()[0]->inputs[2]->dtype, dt);
  }
}

TEST(FoldAddMulIntoConv, LeavesNonChannelConstantsAndReversedOperands) {
  struct Case {
    const char* what;
    const char* op;
    std::vector<int64_t> kdims;
    bool const_first;
  };
  const Case cases[] = {
      {"full-shape constant", "Add", {1, 4, 5, 5}, false},
      {"per-column constant", "Add", {5}, false},
      {"per-row constant", "Mul", {4, 5, 1}, false},
      {"rank-raising constant", "Add", {1, 1, 1, 1, 1}, false},
      {"constant minus conv", "Sub", {4, 1, 1}, true},
      {"constant over conv", "Div", {4, 1, 1}, true},
  };
  for (const Case& c : cases) {
    ir::Graph g;
    std::mt19937 rng(24);
    ir::Node* conv = add_conv(g, DataType::kF32, true, rng);
    ir::Value* k = add_random_const(g, "k", DataType::kF32, c.kdims, rng, 0.5, 2);
    std::vector<ir::Value*> ins = {conv->outputs[0], k};
    if (c.const_first) std::swap(ins[0], ins[1]);
    ir::Node* n = add_node(g, c.op, ins, {"y"});
    g.outputs = {n->outputs[0]};
    KILN_ASSERT_OK(prepare(g));
    bool changed = false;
    KILN_ASSERT_OK(apply_once(g, "fold_add_mul_into_conv", changed));
    EXPECT_FALSE(changed) << c.what;
    EXPECT_EQ(op_types(g), (std::vector<std::string>{"Conv", c.op})) << c.what;
  }
}

TEST(FoldAddMulIntoConv, LeavesDivisionByZeroAndSharedConvOutputs) {
  {
    ir::Graph g;
    std::mt19937 rng(25);
    ir::Node* conv = add_conv(g, DataType::kF32, true, rng);
    ir::Value* k = g.add_constant(
        "k", HostTensor::from_vector<float>(DataType::kF32, {4, 1, 1}, {1.f, 0.f, 2.f, 3.f}));
    ir::Node* d = add_node(g, "Div", {conv->outputs[0], k}, {"y"});
    g.outputs = {d->outputs[0]};
    KILN_ASSERT_OK(prepare(g));
    bool changed = false;
    KILN_ASSERT_OK(apply_once(g, "fold_add_mul_into_conv", changed));
    EXPECT_FALSE(changed);
  }
  {
    ir::Graph g;
    std::mt19937 rng(26);
    ir::Node* conv = add_conv(g, DataType::kF32, true, rng);
    ir::Node* a = add_node(
        g, "Add", {conv->outputs[0], add_random_const(g, "k", DataType::kF32, {4, 1, 1}, rng)},
        {"y"});
    g.outputs = {a->outputs[0], conv->outputs[0]};
    KILN_ASSERT_OK(prepare(g));
    bool changed = false;
    KILN_ASSERT_OK(apply_once(g, "fold_add_mul_into_conv", changed));
    EXPECT_FALSE(changed);
  }
}

}  // namespace
}  // namespace kiln
