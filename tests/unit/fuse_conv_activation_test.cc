// fuse_conv_activation: Conv + [bias Add] + [residual Add] + [activation] becomes one
// kiln.FusedConv for the CUDA backend, computing the same values as the unfused graph on
// the CPU reference; chains whose intermediates are observed elsewhere stay unfused, and
// CPU builds never see the pass.
#include "ops/fused_conv.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace test;
using ir::Attribute;

constexpr const char* kPass = "fuse_conv_activation";

// The pipeline as a CUDA build runs it, with every other pass disabled.
Status run_fusion(ir::Graph& g, Backend backend = Backend::kCuda) { return test::run_only(g, kPass, backend); }

// Runs the fusion and checks that the outputs on seeded random inputs do not change.
void fuse_and_compare(ir::Graph& g, double tol = 1e-5) {
  auto inputs = random_inputs(g, 99);
  auto before = run(g, inputs);
  ASSERT_FALSE(before.empty());
  KILN_ASSERT_OK(run_fusion(g));
  KILN_ASSERT_OK(ir::verify_graph(g));
  auto after = run(g, inputs);
  expect_close(after, before, tol, tol);
}

// x [2,4,7,7] → Conv(W [6,4,3,3], [B], pads 1) → "c"; returns c.
ir::Value* add_conv(ir::Graph& g, std::mt19937& rng, bool bias, DataType dt = DataType::kF32) {
  ir::Value* x = add_input(g, "x", {2, 4, 7, 7}, dt);
  std::vector<ir::Value*> ins = {x, add_random_const(g, "W", dt, {6, 4, 3, 3}, rng)};
  if (bias) ins.push_back(add_random_const(g, "B", dt, {6}, rng));
  return add_op(g, "Conv", ins, "c", {{"pads", Attribute::from_ints({1, 1, 1, 1})}});
}

// Appends activation `act` reading `v`, writing "y"; returns y.
ir::Value* add_activation(ir::Graph& g, const std::string& act, ir::Value* v, DataType dt) {
  auto scalar = [&](const char* name, float f) {
    HostTensor t(dt, {});
    t.set_f64(0, f);
    return g.add_constant(name, t);
  };
  if (act == "Relu" || act == "Sigmoid") return add_op(g, act, {v}, "y");
  if (act == "HardSwish") return add_op(g, act, {v}, "y", {}, 14);
  if (act == "LeakyRelu") return add_op(g, act, {v}, "y", {{"alpha", Attribute::from_float(0.2f)}});
  if (act == "Clip") return add_op(g, act, {v, scalar("lo", -0.5f), scalar("hi", 0.75f)}, "y");
  if (act == "Clip-6")
    return add_op(g, "Clip", {v}, "y",
                  {{"min", Attribute::from_float(-0.25f)}, {"max", Attribute::from_float(1.f)}},
                  6);
  if (act == "SiLU") {
    ir::Value* s = add_op(g, "Sigmoid", {v}, "s");
    return add_op(g, "Mul", {s, v}, "y");
  }
  ADD_FAILURE() << "unknown activation " << act;
  return v;
}

struct Act {
  const char* graph_op;  ///< what add_activation builds
  const char* fused;     ///< FusedConv's activation attribute
};
const Act kActs[] = {{"Relu", "Relu"},       {"LeakyRelu", "LeakyRelu"}, {"Clip", "Clip"},
                     {"Clip-6", "Clip"},     {"Sigmoid", "Sigmoid"},     {"HardSwish", "HardSwish"},
                     {"SiLU", "SiLU"}};

TEST(FuseConvActivation, FusesEachActivationWithAndWithoutResidual) {
  for (const Act& a : kActs) {
    for (bool residual : {false, true}) {
      SCOPED_TRACE(std::string(a.graph_op) + (residual ? " + residual" : ""));
      ir::Graph g;
      std::mt19937 rng(31);
      ir::Value* z = residual ? add_input(g, "z", {2, 6, 7, 7}) : nullptr;
      ir::Value* v = add_conv(g, rng, true);
      if (residual) v = add_op(g, "Add", {z, v}, "sum");
      g.outputs = {add_activation(g, a.graph_op, v, DataType::kF32)};
      KILN_ASSERT_OK(prepare(g));
      fuse_and_compare(g);
      ASSERT_EQ(op_types(g), (std::vector<std::string>{"FusedConv"}));
      const ir::Node& n = *g.nodes()[0];
      EXPECT_EQ(n.domain, ops::kFusedConvDomain);
      EXPECT_EQ(n.attr_s("activation", "?"), a.fused);
      EXPECT_EQ(n.attr_ints("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
      ASSERT_EQ(n.inputs.size(), residual ? 4u : 3u);
      if (residual) EXPECT_EQ(n.inputs[3]->name, "z");
      EXPECT_EQ(n.outputs[0]->name, "y");
    }
  }
}

TEST(FuseConvActivation, ClipBoundsAndLeakyAlphaAreKept) {
  ir::Graph g;
  std::mt19937 rng(32);
  g.outputs = {add_activation(g, "Clip", add_conv(g, rng, true), DataType::kF32)};
  KILN_ASSERT_OK(prepare(g));
  KILN_ASSERT_OK(run_fusion(g));
  auto e = ops::read_fused_epilogue(*g.nodes()[0]);
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->act, ops::FusedActivation::kClip);
  EXPECT_FLOAT_EQ(e->p0, -0.5f);
  EXPECT_FLOAT_EQ(e->p1, 0.75f);
}

TEST(FuseConvActivation, BiasAddResidualAndActivationTogether) {
  ir::Graph g;
  std::mt19937 rng(33);
  ir::Value* z = add_input(g, "z", {2, 6, 7, 7});
  ir::Value* c = add_conv(g, rng, false);
  ir::Value* k = add_random_const(g, "k", DataType::kF32, {1, 6, 1, 1}, rng);
  ir::Value* b = add_op(g, "Add", {k, c}, "b");
  ir::Value* r = add_op(g, "Add", {b, z}, "r");
  g.outputs = {add_op(g, "Relu", {r}, "y")};
  KILN_ASSERT_OK(prepare(g));
  fuse_and_compare(g);
  ASSERT_EQ(op_types(g), (std::vector<std::string>{"FusedConv"}));
  const ir::Node& n = *g.nodes()[0];
  ASSERT_EQ(n.inputs.size(), 4u);
  ASSERT_TRUE(n.inputs[2]->is_constant());
  EXPECT_EQ(n.inputs[2]->constant->dims(), (std::vector<int64_t>{6}));
}

TEST(FuseConvActivation, ResidualOnlyAndBiasOnly) {
  {  // Conv + Add(residual) without activation: FusedConv with activation "".
    ir::Graph g;
    std::mt19937 rng(34);
    ir::Value* z = add_input(g, "z", {2, 6, 7, 7});
    g.outputs = {add_op(g, "Add", {add_conv(g, rng, true), z}, "y")};
    KILN_ASSERT_OK(prepare(g));
    fuse_and_compare(g);
    ASSERT_EQ(op_types(g), (std::vector<std::string>{"FusedConv"}));
    EXPECT_EQ(g.nodes()[0]->attr_s("activation", "?"), "");
  }
  {  // Conv + Add(per-channel constant) alone: the bias folds, the Conv stays a Conv.
    ir::Graph g;
    std::mt19937 rng(35);
    ir::Value* c = add_conv(g, rng, true);
    ir::Value* k = add_random_const(g, "k", DataType::kF32, {6, 1, 1}, rng);
    g.outputs = {add_op(g, "Add", {c, k}, "y")};
    KILN_ASSERT_OK(prepare(g));
    fuse_and_compare(g);
    EXPECT_EQ(op_types(g), (std::vector<std::string>{"Conv"}));
    EXPECT_EQ(g.nodes()[0]->outputs[0]->name, "y");
  }
}

TEST(FuseConvActivation, HalfPrecision) {
  for (DataType dt : {DataType::kF16, DataType::kBF16}) {
    ir::Graph g;
    std::mt19937 rng(36);
    ir::Value* z = add_input(g, "z", {2, 6, 7, 7}, dt);
    ir::Value* v = add_op(g, "Add", {add_conv(g, rng, true, dt), z}, "sum");
    g.outputs = {add_activation(g, "HardSwish", v, dt)};
    KILN_ASSERT_OK(prepare(g));
    // The fused CPU kernel rounds once where the unfused graph rounds after each op.
    fuse_and_compare(g, dt == DataType::kF16 ? 1e-2 : 5e-2);
    EXPECT_EQ(op_types(g), (std::vector<std::string>{"FusedConv"})) << dtype_name(dt);
  }
}

TEST(FuseConvActivation, LeavesObservedIntermediates) {
  {  // The conv output is also a graph output.
    ir::Graph g;
    std::mt19937 rng(37);
    ir::Value* c = add_conv(g, rng, true);
    g.outputs = {add_op(g, "Relu", {c}, "y"), c};
    KILN_ASSERT_OK(prepare(g));
    KILN_ASSERT_OK(run_fusion(g));
    EXPECT_EQ(op_types(g), (std::vector<std::string>{"Conv", "Relu"}));
  }
  {  // The residual sum has a second reader.
    ir::Graph g;
    std::mt19937 rng(38);
    ir::Value* z = add_input(g, "z", {2, 6, 7, 7});
    ir::Value* s = add_op(g, "Add", {add_conv(g, rng, true), z}, "sum");
    g.outputs = {add_op(g, "Relu", {s}, "y"), add_op(g, "Neg", {s}, "n")};
    KILN_ASSERT_OK(prepare(g));
    fuse_and_compare(g);
    // The residual still fuses (its output "sum" keeps both readers); the Relu cannot.
    EXPECT_EQ(op_types(g), (std::vector<std::string>{"FusedConv", "Relu", "Neg"}));
    EXPECT_EQ(g.nodes()[0]->outputs[0]->name, "sum");
    EXPECT_EQ(g.nodes()[0]->attr_s("activation", "?"), "");
  }
  {  // x read by Sigmoid and by a Mul with something else: not SiLU.
    ir::Graph g;
    std::mt19937 rng(39);
    ir::Value* c = add_conv(g, rng, true);
    ir::Value* s = add_op(g, "Sigmoid", {c}, "s");
    g.outputs = {add_op(g, "Mul", {s, s}, "y"), add_op(g, "Relu", {c}, "r")};
    KILN_ASSERT_OK(prepare(g));
    KILN_ASSERT_OK(run_fusion(g));
    EXPECT_EQ(op_types(g), (std::vector<std::string>{"Conv", "Sigmoid", "Mul", "Relu"}));
  }
}

TEST(FuseConvActivation, LeavesResidualComputedAfterTheConv) {
  ir::Graph g;
  std::mt19937 rng(40);
  ir::Value* x2 = add_input(g, "x2", {2, 6, 7, 7});
  ir::Value* c = add_conv(g, rng, true);
  ir::Value* z = add_op(g, "Neg", {x2}, "z");  // after the Conv in node order
  g.outputs = {add_op(g, "Add", {c, z}, "y")};
  KILN_ASSERT_OK(prepare(g));
  KILN_ASSERT_OK(run_fusion(g));
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Conv", "Neg", "Add"}));
}

TEST(FuseConvActivation, LeavesBroadcastingAddsAndOtherOps) {
  {  // Add of a [7] row: broadcasts along W, neither bias nor residual.
    ir::Graph g;
    std::mt19937 rng(41);
    ir::Value* c = add_conv(g, rng, true);
    g.outputs = {add_op(g, "Add", {c, add_random_const(g, "k", DataType::kF32, {7}, rng)}, "y")};
    KILN_ASSERT_OK(prepare(g));
    KILN_ASSERT_OK(run_fusion(g));
    EXPECT_EQ(op_types(g), (std::vector<std::string>{"Conv", "Add"}));
  }
  {  // Tanh is not an epilogue activation.
    ir::Graph g;
    std::mt19937 rng(42);
    g.outputs = {add_op(g, "Tanh", {add_conv(g, rng, true)}, "y")};
    KILN_ASSERT_OK(prepare(g));
    KILN_ASSERT_OK(run_fusion(g));
    EXPECT_EQ(op_types(g), (std::vector<std::string>{"Conv", "Tanh"}));
  }
}

TEST(FuseConvActivation, ChainsOfBlocksFuseEachConv) {
  // Two residual blocks: y1 = Relu(Conv1(x) + x'), y2 = Relu(Conv2(y1) + y1).
  ir::Graph g;
  std::mt19937 rng(43);
  ir::Value* x = add_input(g, "x", {1, 6, 8, 8});
  auto conv = [&](ir::Value* in, const std::string& name) {
    ir::Value* w = add_random_const(g, name + "_W", DataType::kF32, {6, 6, 3, 3}, rng);
    return add_op(g, "Conv", {in, w}, name, {{"pads", Attribute::from_ints({1, 1, 1, 1})}});
  };
  ir::Value* y1 = add_op(g, "Relu", {add_op(g, "Add", {conv(x, "c1"), x}, "s1")}, "y1");
  ir::Value* y2 = add_op(g, "Relu", {add_op(g, "Add", {conv(y1, "c2"), y1}, "s2")}, "y2");
  g.outputs = {y2};
  KILN_ASSERT_OK(prepare(g));
  fuse_and_compare(g);
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"FusedConv", "FusedConv"}));
}

TEST(FuseConvActivation, CpuBuildsKeepOnnxOps) {
  ir::Graph g;
  std::mt19937 rng(44);
  g.outputs = {add_op(g, "Relu", {add_conv(g, rng, true)}, "y")};
  KILN_ASSERT_OK(prepare(g));
  KILN_ASSERT_OK(run_fusion(g, Backend::kCpu));
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Conv", "Relu"}));
}

}  // namespace
}  // namespace kiln
