// fold_batchnorm_into_conv: Conv/ConvTranspose + inference BatchNormalization become one
// Conv with the same results (f32, f64, f16; groups; no bias), and every illegal variant
// is left alone.
#include "test_util.h"

namespace kiln {
namespace {

using namespace test;
using ir::Attribute;

struct ConvBn {
  ir::Node* conv;
  ir::Node* bn;
};

// x[1, cin, 7, 6] → Conv(W, [b], group) → BatchNormalization(random stats) → "y".
ConvBn build_conv_bn(ir::Graph& g, DataType dt, int64_t cin, int64_t cout, int64_t group, bool bias,
                     std::mt19937& rng, const std::string& conv_op = "Conv") {
  ir::Value* x = add_input(g, "x", {1, cin, 7, 6}, dt);
  std::vector<int64_t> wdims = conv_op == "Conv" ? std::vector<int64_t>{cout, cin / group, 3, 2}
                                                 : std::vector<int64_t>{cin, cout / group, 3, 2};
  std::vector<ir::Value*> ins = {x, add_random_const(g, "W", dt, wdims, rng)};
  if (bias) ins.push_back(add_random_const(g, "B", dt, {cout}, rng));
  ir::Node* conv = add_node(g, conv_op, ins, {"c"},
                            {{"group", Attribute::from_int(group)},
                             {"pads", Attribute::from_ints({1, 0, 1, 1})},
                             {"strides", Attribute::from_ints({1, 2})}});
  ir::Node* bn = add_node(
      g, "BatchNormalization",
      {conv->outputs[0], add_random_const(g, "gamma", dt, {cout}, rng, 0.5, 2.0),
       add_random_const(g, "beta", dt, {cout}, rng), add_random_const(g, "mean", dt, {cout}, rng),
       add_random_const(g, "var", dt, {cout}, rng, 0.1, 3.0)},
      {"y"}, {{"epsilon", Attribute::from_float(1e-3f)}}, 15);
  g.outputs = {bn->outputs[0]};
  return {conv, bn};
}

void expect_folded(const ir::Graph& g, const std::string& conv_op) {
  ASSERT_EQ(op_types(g), (std::vector<std::string>{conv_op}));
  const ir::Node& conv = *g.nodes()[0];
  ASSERT_EQ(conv.inputs.size(), 3u);
  EXPECT_TRUE(conv.inputs[1]->is_constant());
  ASSERT_TRUE(conv.inputs[2] && conv.inputs[2]->is_constant());
  EXPECT_EQ(conv.inputs[2]->dtype, conv.inputs[1]->dtype);
  EXPECT_EQ(conv.outputs[0]->name, "y");  // the graph output keeps its name
  EXPECT_EQ(g.find_value("gamma"), nullptr);
  EXPECT_EQ(g.find_value("W"), nullptr);  // the unscaled weight is no longer stored
}

// Builds conv_op + BatchNormalization, folds it with the pass alone and checks the outputs
// (within `tol`, relative and absolute) and the folded graph.
void fold_and_check(DataType dt, int64_t cin, int64_t cout, int64_t group, bool bias,
                    uint32_t seed, double tol, const std::string& conv_op = "Conv") {
  ir::Graph g;
  std::mt19937 rng(seed);
  build_conv_bn(g, dt, cin, cout, group, bias, rng, conv_op);
  KILN_ASSERT_OK(prepare(g));
  run_pass_and_compare(g, "fold_batchnorm_into_conv", tol, tol);
  expect_folded(g, conv_op);
}

TEST(FoldBatchNormIntoConv, Float32WithBias) {
  fold_and_check(DataType::kF32, 3, 4, 1, true, 11, 1e-5);
}

TEST(FoldBatchNormIntoConv, GroupedFloat64WithoutBias) {
  fold_and_check(DataType::kF64, 4, 6, 2, false, 12, 1e-12);
}

TEST(FoldBatchNormIntoConv, DepthwiseFloat16) {
  // f16 rounds the unfused intermediate and the folded weights differently.
  fold_and_check(DataType::kF16, 4, 4, 4, true, 13, 1e-2);
}

TEST(FoldBatchNormIntoConv, GroupedConvTranspose) {
  // Output channels of ConvTranspose live in W's second axis, per group.
  fold_and_check(DataType::kF32, 4, 6, 2, true, 14, 1e-5, "ConvTranspose");
}

TEST(FoldBatchNormIntoConv, ChainedBatchNormsFoldBoth) {
  ir::Graph g;
  std::mt19937 rng(15);
  ConvBn cb = build_conv_bn(g, DataType::kF32, 2, 3, 1, true, rng);
  ir::Node* bn2 =
      add_node(g, "BatchNormalization",
               {cb.bn->outputs[0], add_random_const(g, "g2", DataType::kF32, {3}, rng, 0.5, 2.0),
                add_random_const(g, "b2", DataType::kF32, {3}, rng),
                add_random_const(g, "m2", DataType::kF32, {3}, rng),
                add_random_const(g, "v2", DataType::kF32, {3}, rng, 0.1, 3.0)},
               {"z"}, {}, 9);
  g.outputs = {bn2->outputs[0]};
  KILN_ASSERT_OK(prepare(g));
  run_pass_and_compare(g, "fold_batchnorm_into_conv", 1e-5, 1e-5);
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Conv"}));
  EXPECT_EQ(g.nodes()[0]->outputs[0]->name, "z");
}

TEST(FoldBatchNormIntoConv, LeavesIllegalPatterns) {
  std::mt19937 rng(16);
  // Structure only: the pass needs no inferred shapes, and some variants (training mode)
  // are rejected by the op table itself.
  auto unchanged = [](ir::Graph& g) {
    KILN_ASSERT_OK(ir::verify_graph(g));
    size_t before = g.nodes().size();
    bool changed = false;
    KILN_ASSERT_OK(apply_once(g, "fold_batchnorm_into_conv", changed));
    EXPECT_FALSE(changed);
    EXPECT_EQ(g.nodes().size(), before);
  };
  {  // the Conv output is also a graph output
    ir::Graph g;
    ConvBn cb = build_conv_bn(g, DataType::kF32, 2, 3, 1, true, rng);
    g.outputs.push_back(cb.conv->outputs[0]);
    unchanged(g);
  }
  {  // the Conv output has a second reader
    ir::Graph g;
    ConvBn cb = build_conv_bn(g, DataType::kF32, 2, 3, 1, true, rng);
    ir::Node* r = add_node(g, "Relu", {cb.conv->outputs[0]}, {"r"});
    g.outputs.push_back(r->outputs[0]);
    unchanged(g);
  }
  {  // the weight is computed at run time
    ir::Graph g;
    ConvBn cb = build_conv_bn(g, DataType::kF32, 2, 3, 1, true, rng);
    ir::Value* w = add_input(g, "w_in", {3, 2, 3, 2});
    cb.conv->inputs[1] = w;
    unchanged(g);
  }
  {  // the variance is not a constant
    ir::Graph g;
    ConvBn cb = build_conv_bn(g, DataType::kF32, 2, 3, 1, true, rng);
    cb.bn->inputs[4] = add_input(g, "var_in", {3});
    g.remove_unused_values();
    unchanged(g);
  }
  {  // training-mode BatchNormalization (opset 15 attribute)
    ir::Graph g;
    ConvBn cb = build_conv_bn(g, DataType::kF32, 2, 3, 1, true, rng);
    cb.bn->attrs["training_mode"] = Attribute::from_int(1);
    unchanged(g);
  }
}

}  // namespace
}  // namespace kiln
