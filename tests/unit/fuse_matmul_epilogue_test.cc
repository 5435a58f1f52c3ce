// fuse_matmul_epilogue: MatMul + bias Add (+ Relu / Gelu / the exported erf GELU) becomes one
// FusedMatMul on CUDA builds with the same results on the CPU reference; CPU builds and
// patterns whose intermediates escape stay unchanged.
#include <functional>

#include "test_util.h"

namespace kiln {
namespace {

using namespace test;
using ir::Attribute;

constexpr const char* kPass = "fuse_matmul_epilogue";

/// Runs the pipeline with every pass but fuse_matmul_epilogue disabled, for `backend`.
Status run_fusion(ir::Graph& g, Backend backend) { return run_only(g, kPass, backend); }

/// Fuses for CUDA and checks outputs on seeded inputs are unchanged (CPU kernels).
void fuse_and_compare(ir::Graph& g, double tol = 1e-5) {
  auto inputs = random_inputs(g, 4321);
  auto before = run(g, inputs);
  ASSERT_FALSE(before.empty());
  KILN_ASSERT_OK(run_fusion(g, Backend::kCuda));
  KILN_ASSERT_OK(ir::verify_graph(g));
  auto after = run(g, inputs);
  expect_close(after, before, tol, tol);
}

/// x[2, 5, 8] · W[8, 6] + bias → "h"; returns h.
ir::Value* add_linear(ir::Graph& g, std::mt19937& rng, DataType dt = DataType::kF32,
                      std::vector<int64_t> bias_dims = {6}) {
  ir::Value* x = add_input(g, "x", {2, 5, 8}, dt);
  ir::Value* mm = add_op(g, "MatMul", {x, add_random_const(g, "W", dt, {8, 6}, rng)}, "mm");
  return add_op(g, "Add", {mm, add_random_const(g, "bias", dt, bias_dims, rng)}, "h");
}

ir::Value* scalar(ir::Graph& g, const std::string& name, float v, DataType dt = DataType::kF32) {
  return g.add_constant(name, HostTensor::from_vector<float>(DataType::kF32, {}, {v}).cast(dt));
}

const ir::Node& only_node(const ir::Graph& g) {
  EXPECT_EQ(op_types(g), std::vector<std::string>{"FusedMatMul"});
  return *g.nodes().front();
}

TEST(FuseMatMulEpilogue, BiasAloneAndBiasWithRelu) {
  for (bool relu : {false, true}) {
    ir::Graph g;
    std::mt19937 rng(31);
    ir::Value* h = add_linear(g, rng);
    g.outputs = {relu ? add_op(g, "Relu", {h}, "y") : h};
    KILN_ASSERT_OK(prepare(g));
    fuse_and_compare(g);
    const ir::Node& f = only_node(g);
    EXPECT_EQ(f.domain, "kiln");
    EXPECT_EQ(f.name, "MatMul_mm");
    EXPECT_EQ(f.attr_s("activation", "?"), relu ? "Relu" : "");
    EXPECT_EQ(f.outputs[0]->name, relu ? "y" : "h");
    EXPECT_TRUE(f.inputs[2]->is_constant());
  }
}

TEST(FuseMatMulEpilogue, GeluOpBothApproximations) {
  for (const char* approx : {"none", "tanh"}) {
    ir::Graph g;
    std::mt19937 rng(32);
    ir::Value* h = add_linear(g, rng);
    g.outputs = {
        add_op(g, "Gelu", {h}, "y", {{"approximate", Attribute::from_string(approx)}}, 20)};
    KILN_ASSERT_OK(prepare(g));
    fuse_and_compare(g);
    const ir::Node& f = only_node(g);
    EXPECT_EQ(f.attr_s("activation", ""), "Gelu");
    EXPECT_EQ(f.attr_s("approximate", ""), approx);
  }
}

// The erf GELU as exporters write it, in its three groupings and with Div or Mul scaling.
TEST(FuseMatMulEpilogue, ExportedErfGeluPatterns) {
  enum class Grouping { kXTimesSumThenHalf, kSumTimesHalfThenX, kHalfXTimesSum };
  for (Grouping grouping :
       {Grouping::kXTimesSumThenHalf, Grouping::kSumTimesHalfThenX, Grouping::kHalfXTimesSum}) {
    for (bool div : {true, false}) {
      ir::Graph g;
      std::mt19937 rng(33);
      ir::Value* h = add_linear(g, rng);
      ir::Value* s = div ? add_op(g, "Div", {h, scalar(g, "sqrt2", 1.4142135f)}, "s")
                         : add_op(g, "Mul", {scalar(g, "rsqrt2", 0.70710677f), h}, "s");
      ir::Value* e = add_op(g, "Erf", {s}, "e");
      ir::Value* a = add_op(g, "Add", {scalar(g, "one", 1.0f), e}, "a");
      ir::Value* y = nullptr;
      switch (grouping) {
        case Grouping::kXTimesSumThenHalf:
          y = add_op(g, "Mul", {add_op(g, "Mul", {h, a}, "m"), scalar(g, "half", 0.5f)}, "y");
          break;
        case Grouping::kSumTimesHalfThenX:
          y = add_op(g, "Mul", {h, add_op(g, "Mul", {a, scalar(g, "half", 0.5f)}, "m")}, "y");
          break;
        case Grouping::kHalfXTimesSum:
          y = add_op(g, "Mul", {add_op(g, "Mul", {scalar(g, "half", 0.5f), h}, "m"), a}, "y");
          break;
      }
      g.outputs = {y};
      KILN_ASSERT_OK(prepare(g));
      fuse_and_compare(g);
      const ir::Node& f = only_node(g);
      EXPECT_EQ(f.attr_s("activation", ""), "Gelu");
      EXPECT_EQ(f.attr_s("approximate", ""), "none");
      EXPECT_EQ(f.outputs[0]->name, "y");
    }
  }
}

TEST(FuseMatMulEpilogue, RowBiasIsReshapedAndHalfPrecisionFuses) {
  for (DataType dt : {DataType::kF16, DataType::kF64}) {
    ir::Graph g;
    std::mt19937 rng(34);
    ir::Value* h = add_linear(g, rng, dt, {1, 1, 6});
    g.outputs = {add_op(g, "Relu", {h}, "y")};
    KILN_ASSERT_OK(prepare(g));
    fuse_and_compare(g, dt == DataType::kF16 ? 2e-3 : 1e-12);
    const ir::Node& f = only_node(g);
    EXPECT_EQ(f.inputs[2]->constant->dims(), (std::vector<int64_t>{6})) << dtype_name(dt);
    EXPECT_EQ(f.inputs[2]->dtype, dt);
  }
}

TEST(FuseMatMulEpilogue, CpuBuildsAreUnchanged) {
  ir::Graph g;
  std::mt19937 rng(35);
  g.outputs = {add_op(g, "Relu", {add_linear(g, rng)}, "y")};
  KILN_ASSERT_OK(prepare(g));
  KILN_ASSERT_OK(run_fusion(g, Backend::kCpu));
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"MatMul", "Add", "Relu"}));
}

// What must stay: non-constant or batched weights, biases that are not per column, and
// intermediates someone else reads. An activation whose input escapes leaves MatMul + bias
// fused and the activation alone.
TEST(FuseMatMulEpilogue, LeavesWhatItMustNotFuse) {
  struct Case {
    const char* what;
    std::function<void(ir::Graph&, std::mt19937&)> build;
    std::vector<std::string> ops_after;
  };
  auto linear = [](ir::Graph& g, std::mt19937& rng, std::vector<int64_t> w_dims,
                   std::vector<int64_t> bias_dims, bool w_const = true) {
    ir::Value* x = add_input(g, "x", {2, 5, 8});
    ir::Value* w =
        w_const ? add_random_const(g, "W", DataType::kF32, w_dims, rng) : add_input(g, "W", w_dims);
    ir::Value* mm = add_op(g, "MatMul", {x, w}, "mm");
    return add_op(g, "Add", {mm, add_random_const(g, "b", DataType::kF32, bias_dims, rng)}, "h");
  };
  const std::vector<std::string> unfused = {"MatMul", "Add", "Relu"};
  const Case cases[] = {
      {"weights are an input",
       [&](ir::Graph& g, std::mt19937& rng) {
         g.outputs = {add_op(g, "Relu", {linear(g, rng, {8, 6}, {6}, false)}, "y")};
       },
       unfused},
      {"batched weights",
       [&](ir::Graph& g, std::mt19937& rng) {
         g.outputs = {add_op(g, "Relu", {linear(g, rng, {2, 8, 6}, {6})}, "y")};
       },
       unfused},
      {"per-row bias",
       [&](ir::Graph& g, std::mt19937& rng) {
         g.outputs = {add_op(g, "Relu", {linear(g, rng, {8, 6}, {5, 1})}, "y")};
       },
       unfused},
      {"rank-raising bias",
       [&](ir::Graph& g, std::mt19937& rng) {
         g.outputs = {add_op(g, "Relu", {linear(g, rng, {8, 6}, {1, 1, 1, 6})}, "y")};
       },
       unfused},
      {"MatMul output is a graph output",
       [&](ir::Graph& g, std::mt19937& rng) {
         ir::Value* h = linear(g, rng, {8, 6}, {6});
         g.outputs = {add_op(g, "Relu", {h}, "y"), h->producer->inputs[0]};
       },
       unfused},
      {"biased value also read elsewhere",
       [&](ir::Graph& g, std::mt19937& rng) {
         ir::Value* h = linear(g, rng, {8, 6}, {6});
         g.outputs = {add_op(g, "Relu", {h}, "y"), add_op(g, "Neg", {h}, "z")};
       },
       {"FusedMatMul", "Relu", "Neg"}},
      {"erf GELU with a wrong constant",
       [&](ir::Graph& g, std::mt19937& rng) {
         ir::Value* h = linear(g, rng, {8, 6}, {6});
         ir::Value* e = add_op(g, "Erf", {add_op(g, "Div", {h, scalar(g, "c", 1.5f)}, "s")}, "e");
         ir::Value* a = add_op(g, "Add", {e, scalar(g, "one", 1.0f)}, "a");
         ir::Value* m = add_op(g, "Mul", {h, a}, "m");
         g.outputs = {add_op(g, "Mul", {m, scalar(g, "half", 0.5f)}, "y")};
       },
       {"FusedMatMul", "Div", "Erf", "Add", "Mul", "Mul"}},
      {"erf GELU intermediate is a graph output",
       [&](ir::Graph& g, std::mt19937& rng) {
         ir::Value* h = linear(g, rng, {8, 6}, {6});
         ir::Value* e =
             add_op(g, "Erf", {add_op(g, "Div", {h, scalar(g, "c", 1.41421356f)}, "s")}, "e");
         ir::Value* a = add_op(g, "Add", {e, scalar(g, "one", 1.0f)}, "a");
         ir::Value* m = add_op(g, "Mul", {h, a}, "m");
         g.outputs = {add_op(g, "Mul", {m, scalar(g, "half", 0.5f)}, "y"), e};
       },
       {"FusedMatMul", "Div", "Erf", "Add", "Mul", "Mul"}},
  };
  for (const Case& c : cases) {
    ir::Graph g;
    std::mt19937 rng(36);
    c.build(g, rng);
    KILN_ASSERT_OK(prepare(g));
    fuse_and_compare(g);
    EXPECT_EQ(op_types(g), c.ops_after) << c.what;
  }
}

TEST(FuseMatMulEpilogue, FusedMatMulChecksItsAttributesAndBias) {
  struct Case {
    const char* activation;
    const char* approximate;
    std::vector<int64_t> bias_dims;
    ErrorCode want;
  };
  const Case cases[] = {
      {"Gelu", "tanh", {6}, ErrorCode::kOk},
      {"Tanh", "none", {6}, ErrorCode::kOnnxBadAttribute},
      {"Gelu", "fast", {6}, ErrorCode::kOnnxBadAttribute},
      {"Relu", "none", {1, 6}, ErrorCode::kShapeMismatch},
      {"", "none", {5}, ErrorCode::kShapeMismatch},
  };
  for (const Case& c : cases) {
    ir::Graph g;
    std::mt19937 rng(37);
    ir::Value* x = add_input(g, "x", {2, 5, 8});
    ir::Value* w = add_random_const(g, "W", DataType::kF32, {8, 6}, rng);
    ir::Value* b = add_random_const(g, "b", DataType::kF32, c.bias_dims, rng);
    ir::Value* y = g.add_value("y");
    ir::Node* n = g.add_node("FusedMatMul", "f", {x, w, b}, {y}, "kiln", 1);
    n->attrs = {{"activation", Attribute::from_string(c.activation)},
                {"approximate", Attribute::from_string(c.approximate)}};
    g.outputs = {y};
    EXPECT_EQ(prepare(g).code(), c.want) << c.activation << " " << c.approximate;
  }
}

}  // namespace
}  // namespace kiln
