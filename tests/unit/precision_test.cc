// Reduced-precision lowering: which tensors become 16-bit, where casts go, constants.
#include "builder/precision.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::add_input;
using test::add_op;

int count_op(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node->op_type == op;
  return n;
}

TEST(Precision, Fp16RegionWithCastsAtTheBoundary) {
  // x → MatMul(W) → Add(b) → Relu → Exp → y: MatMul/Add/Relu in f16, Exp stays f32.
  std::mt19937 rng(3);
  ir::Graph g;
  g.opset_imports[""] = 17;
  ir::Value* x = add_input(g, "x", {4, 8});
  ir::Value* w = test::add_random_const(g, "w", DataType::kF32, {8, 16}, rng);
  ir::Value* b = test::add_random_const(g, "b", DataType::kF32, {16}, rng);
  ir::Value* m = add_op(g, "MatMul", {x, w}, "m");
  ir::Value* a = add_op(g, "Add", {m, b}, "a");
  ir::Value* r = add_op(g, "Relu", {a}, "r");
  ir::Value* y = add_op(g, "Exp", {r}, "y");
  g.outputs.push_back(y);
  KILN_ASSERT_OK(test::prepare(g));
  std::vector<HostTensor> ref;
  {
    HostTensor xin = test::random_tensor(DataType::kF32, {4, 8}, rng);
    auto out = runtime::run_graph(g, {xin});
    ASSERT_TRUE(out.is_ok());
    ref = out.value();
    KILN_ASSERT_OK(builder::lower_precision(g, DataType::kF16));
    EXPECT_EQ(m->dtype, DataType::kF16);
    EXPECT_EQ(a->dtype, DataType::kF16);
    EXPECT_EQ(r->dtype, DataType::kF16);
    EXPECT_EQ(y->dtype, DataType::kF32);
    EXPECT_EQ(x->dtype, DataType::kF32);  // engine inputs keep their type
    EXPECT_EQ(count_op(g, "Cast"), 2);     // x → f16, r → f32 for Exp
    // Weights were converted at build time, not cast at run time.
    for (const auto& n : g.nodes())
      if (n->op_type == "MatMul") {
        ASSERT_TRUE(n->inputs[1]->constant);
        EXPECT_EQ(n->inputs[1]->dtype, DataType::kF16);
      }
    auto low = runtime::run_graph(g, {xin});
    ASSERT_TRUE(low.is_ok()) << low.status().to_string();
    test::expect_close(low.value()[0], ref[0], 1e-2, 1e-2, "fp16 vs fp32");
  }
}

TEST(Precision, GraphOutputKeepsItsNameAndType) {
  ir::Graph g;
  g.opset_imports[""] = 17;
  ir::Value* x = add_input(g, "x", {3});
  ir::Value* y = add_op(g, "Relu", {x}, "y");
  g.outputs.push_back(y);
  KILN_ASSERT_OK(test::prepare(g));
  KILN_ASSERT_OK(builder::lower_precision(g, DataType::kBF16));
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.outputs[0]->name, "y");
  EXPECT_EQ(g.outputs[0]->dtype, DataType::kF32);
  EXPECT_EQ(g.outputs[0]->producer->op_type, "Cast");
  EXPECT_EQ(test::op_types(g), (std::vector<std::string>{"Cast", "Relu", "Cast"}));
}

TEST(Precision, IntegerAndShapeInputsAreUntouched) {
  ir::Graph g;
  g.opset_imports[""] = 17;
  ir::Value* x = add_input(g, "x", {2, 6});
  ir::Value* r = add_op(g, "Reshape", {x, test::add_i64(g, "shape", {3, 4})}, "r");
  g.outputs.push_back(r);
  KILN_ASSERT_OK(test::prepare(g));
  KILN_ASSERT_OK(builder::lower_precision(g, DataType::kF16));
  for (const auto& n : g.nodes())
    if (n->op_type == "Reshape") EXPECT_EQ(n->inputs[1]->dtype, DataType::kI64);
}

/// x [1, 2, 4, 4] → Relu → Resize(linear, scales) → y (graph output).
ir::Value* relu_resize(ir::Graph& g, std::vector<float> scales) {
  g.opset_imports[""] = 17;
  ir::Value* x = add_input(g, "x", {1, 2, 4, 4});
  ir::Value* r = add_op(g, "Relu", {x}, "r");
  ir::Value* sc = g.add_constant("scales", HostTensor::from_vector<float>(DataType::kF32, {4}, scales));
  ir::Value* y = add_op(g, "Resize", {r, nullptr, sc}, "y", {{"mode", ir::Attribute::from_string("linear")}});
  g.outputs.push_back(y);
  return y;
}

TEST(Precision, UpsamplingIntoAGraphOutputRunsInF32AfterTheCast) {
  std::mt19937 rng(5);
  ir::Graph g;
  ir::Value* y = relu_resize(g, {1, 1, 4, 4});
  KILN_ASSERT_OK(test::prepare(g));
  HostTensor xin = test::random_tensor(DataType::kF32, {1, 2, 4, 4}, rng);
  auto ref = runtime::run_graph(g, {xin});
  ASSERT_TRUE(ref.is_ok());
  KILN_ASSERT_OK(builder::lower_precision(g, DataType::kF16));
  // x → f16 → Relu → f32 (the small tensor) → Resize in f32 → y: no Cast of the output.
  EXPECT_EQ(test::op_types(g), (std::vector<std::string>{"Cast", "Relu", "Cast", "Resize"}));
  EXPECT_EQ(y->producer->op_type, "Resize");
  EXPECT_EQ(y->producer->inputs[0]->dtype, DataType::kF32);
  auto low = runtime::run_graph(g, {xin});
  ASSERT_TRUE(low.is_ok()) << low.status().to_string();
  test::expect_close(low.value()[0], ref.value()[0], 1e-2, 1e-2, "fp16 vs fp32");
}

TEST(Precision, DownsamplingIntoAGraphOutputStays16Bit) {
  ir::Graph g;
  ir::Value* y = relu_resize(g, {1, 1, 0.5f, 0.5f});
  KILN_ASSERT_OK(test::prepare(g));
  KILN_ASSERT_OK(builder::lower_precision(g, DataType::kF16));
  EXPECT_EQ(test::op_types(g), (std::vector<std::string>{"Cast", "Relu", "Resize", "Cast"}));
  EXPECT_EQ(y->producer->op_type, "Cast");
}

}  // namespace
}  // namespace kiln
