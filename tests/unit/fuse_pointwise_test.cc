// fuse_pointwise: chains of ONNX pointwise ops become one kiln.FusedPointwise for the CUDA
// backend. Structure (what fuses, what must not) and numbers: the fused graph on the CPU
// reference equals the unfused one (the program's formulas are the ONNX ops' own, so f32
// results agree to the last bit, NaN included), for every entry of the op table. Also the
// op's program validation and the FP16 precision pass's treatment of fused nodes.
#include <cmath>
#include <limits>
#include <set>

#include "builder/precision.h"
#include "onnx/importer.h"
#include "ops/fused_pointwise.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace test;
using ir::Attribute;
using ops::PwOp;

constexpr const char* kPass = "fuse_pointwise";
constexpr DataType kF32 = DataType::kF32;

// The pipeline as a CUDA build runs it, with every other pass disabled.
Status run_fusion(ir::Graph& g, Backend backend = Backend::kCuda) { return test::run_only(g, kPass, backend); }

// Seeded uniform values in [lo, hi) for every graph input, per input name where given.
using Ranges = std::map<std::string, std::pair<double, double>>;
std::vector<HostTensor> inputs_for(const ir::Graph& g, double lo, double hi,
                                   const Ranges& by_name = {}, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::vector<HostTensor> in;
  for (const ir::Value* v : g.inputs) {
    auto it = by_name.find(v->name);
    const auto [a, b] = it == by_name.end() ? std::pair{lo, hi} : it->second;
    in.push_back(random_tensor(v->dtype, *v->shape.concrete(), rng, a, b));
  }
  return in;
}

// Equal within `tol` (absolute and relative), NaN equal to NaN, same dtypes and dims.
void expect_same(const std::vector<HostTensor>& got, const std::vector<HostTensor>& want,
                 double tol = 1e-6) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    ASSERT_EQ(got[k].dtype(), want[k].dtype()) << "output " << k;
    ASSERT_EQ(got[k].dims(), want[k].dims()) << "output " << k;
    int bad = 0;
    for (int64_t i = 0; i < got[k].numel() && bad < 5; ++i) {
      const double a = got[k].get_f64(i), b = want[k].get_f64(i);
      if (std::isnan(a) && std::isnan(b)) continue;
      if (a == b || std::fabs(a - b) <= tol * (1 + std::fabs(b))) continue;
      ADD_FAILURE() << "output " << k << " element " << i << ": " << a << " vs " << b;
      ++bad;
    }
  }
}

// Fuses g and checks that its outputs on `inputs` do not change.
void fuse_and_compare(ir::Graph& g, const std::vector<HostTensor>& inputs, double tol = 1e-6) {
  auto before = run(g, inputs);
  ASSERT_FALSE(before.empty());
  KILN_ASSERT_OK(run_fusion(g));
  KILN_ASSERT_OK(ir::verify_graph(g));
  auto after = run(g, inputs);
  expect_same(after, before, tol);
}

// The graph's FusedPointwise nodes.
std::vector<const ir::Node*> fused_nodes(const ir::Graph& g) {
  std::vector<const ir::Node*> r;
  for (const auto& n : g.nodes())
    if (n->op_type == ops::kFusedPointwiseOp) r.push_back(n.get());
  return r;
}

// Instruction names of a fused node's program.
std::vector<std::string> program_ops(const ir::Node& n) {
  auto p = ops::read_pw_program(n, n.inputs.size());
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  std::vector<std::string> names;
  if (p.is_ok())
    for (const auto& ins : p->code) names.push_back(ops::pw_op_info(ins.op).name);
  return names;
}

ir::Value* scalar(ir::Graph& g, const std::string& name, double v, DataType dt = kF32,
                  std::vector<int64_t> dims = {}) {
  HostTensor t(dt, std::move(dims));
  t.set_f64(0, v);
  return g.add_constant(name, t);
}

std::vector<std::string> input_names(const ir::Node& n) {
  std::vector<std::string> names;
  for (const ir::Value* v : n.inputs) names.push_back(v->name);
  return names;
}

// ---- structure ----------------------------------------------------------------------------------

TEST(FusePointwise, GeluErfChainBecomesOneNodeWithScalarConstantsInTheProgram) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {2, 3, 5});
  ir::Value* d = add_op(g, "Div", {x, scalar(g, "sqrt2", std::sqrt(2.0))}, "d");
  ir::Value* e = add_op(g, "Erf", {d}, "e");
  ir::Value* a = add_op(g, "Add", {e, scalar(g, "one", 1.0)}, "a");
  ir::Value* m = add_op(g, "Mul", {x, a}, "m");
  g.outputs = {add_op(g, "Mul", {m, scalar(g, "half", 0.5)}, "y")};
  KILN_ASSERT_OK(prepare(g));
  fuse_and_compare(g, inputs_for(g, -3, 3));
  ASSERT_EQ(op_types(g), (std::vector<std::string>{ops::kFusedPointwiseOp}));
  const ir::Node& n = *g.nodes()[0];
  EXPECT_EQ(n.domain, ops::kFusedPointwiseDomain);
  EXPECT_EQ(n.name, "Div_d..Mul_y");
  EXPECT_EQ(input_names(n), (std::vector<std::string>{"x"}));
  EXPECT_EQ(n.outputs[0]->name, "y");
  EXPECT_EQ(program_ops(n), (std::vector<std::string>{"Input", "Const", "Const", "Const", "Div",
                                                      "Erf", "Add", "Mul", "Mul"}));
  EXPECT_EQ(n.attr_i("to", 0), onnx_import::to_onnx_dtype(kF32));
}

TEST(FusePointwise, PerChannelBroadcastInputsStayInputs) {
  // x [2,4,3,3] * scale [4,1,1] (constant) + bias [1,4,1,1] (graph input) → Relu.
  ir::Graph g;
  std::mt19937 rng(5);
  ir::Value* x = add_input(g, "x", {2, 4, 3, 3});
  ir::Value* bias = add_input(g, "bias", {1, 4, 1, 1});
  ir::Value* m = add_op(g, "Mul", {x, add_random_const(g, "scale", kF32, {4, 1, 1}, rng)}, "m");
  ir::Value* a = add_op(g, "Add", {m, bias}, "a");
  g.outputs = {add_op(g, "Relu", {a}, "y")};
  KILN_ASSERT_OK(prepare(g));
  fuse_and_compare(g, inputs_for(g, -1, 1));
  ASSERT_EQ(fused_nodes(g).size(), 1u);
  const ir::Node& n = *fused_nodes(g)[0];
  EXPECT_EQ(input_names(n), (std::vector<std::string>{"x", "scale", "bias"}));
  EXPECT_EQ(program_ops(n),
            (std::vector<std::string>{"Input", "Input", "Input", "Mul", "Add", "Relu"}));
  EXPECT_EQ(*n.outputs[0]->shape.concrete(), (std::vector<int64_t>{2, 4, 3, 3}));
}

TEST(FusePointwise, BroadcastGrowsTheOutputAcrossTheChain) {
  // [3,1] + [1,4] → [3,4], then * [2,1,4]: every input broadcasts to the exit's [2,3,4].
  ir::Graph g;
  ir::Value* a = add_input(g, "a", {3, 1});
  ir::Value* b = add_input(g, "b", {1, 4});
  ir::Value* c = add_input(g, "c", {2, 1, 4});
  ir::Value* s = add_op(g, "Add", {a, b}, "s");
  g.outputs = {add_op(g, "Mul", {add_op(g, "Tanh", {s}, "t"), c}, "y")};
  KILN_ASSERT_OK(prepare(g));
  fuse_and_compare(g, inputs_for(g, -2, 2));
  ASSERT_EQ(op_types(g), (std::vector<std::string>{ops::kFusedPointwiseOp}));
  EXPECT_EQ(*g.outputs[0]->shape.concrete(), (std::vector<int64_t>{2, 3, 4}));
}

TEST(FusePointwise, RankRaisingScalarConstantStaysAnInput) {
  // x [3] + c [1,1] is [1,3]: without c as an input the node's output would be [3].
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {3});
  ir::Value* a = add_op(g, "Add", {x, scalar(g, "c", 0.25, kF32, {1, 1})}, "a");
  g.outputs = {add_op(g, "Relu", {a}, "y")};
  KILN_ASSERT_OK(prepare(g));
  fuse_and_compare(g, inputs_for(g, -1, 1));
  ASSERT_EQ(fused_nodes(g).size(), 1u);
  EXPECT_EQ(input_names(*fused_nodes(g)[0]), (std::vector<std::string>{"x", "c"}));
  EXPECT_EQ(*g.outputs[0]->shape.concrete(), (std::vector<int64_t>{1, 3}));
}

TEST(FusePointwise, IntermediateThatIsAGraphOutputSurvives) {
  // a = Relu(x) is a graph output: the group is Sigmoid + Mul reading a, Relu stays.
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {4, 6});
  ir::Value* a = add_op(g, "Relu", {x}, "a");
  ir::Value* s = add_op(g, "Sigmoid", {a}, "s");
  g.outputs = {a, add_op(g, "Mul", {a, s}, "y")};
  KILN_ASSERT_OK(prepare(g));
  fuse_and_compare(g, inputs_for(g, -2, 2));
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Relu", ops::kFusedPointwiseOp}));
  ASSERT_EQ(fused_nodes(g).size(), 1u);
  EXPECT_EQ(input_names(*fused_nodes(g)[0]), (std::vector<std::string>{"a"}));
  EXPECT_EQ(g.outputs[0]->name, "a");
  EXPECT_EQ(g.outputs[1]->name, "y");
}

TEST(FusePointwise, ValueReadTwiceInsideTheGroupIsAbsorbed) {
  // SiLU of a sum: p + q → x, x * Sigmoid(x): x's two readers are both in the group.
  ir::Graph g;
  ir::Value* p = add_input(g, "p", {5, 7});
  ir::Value* q = add_input(g, "q", {7});
  ir::Value* x = add_op(g, "Add", {p, q}, "x");
  g.outputs = {add_op(g, "Mul", {x, add_op(g, "Sigmoid", {x}, "s")}, "y")};
  KILN_ASSERT_OK(prepare(g));
  fuse_and_compare(g, inputs_for(g, -3, 3));
  ASSERT_EQ(op_types(g), (std::vector<std::string>{ops::kFusedPointwiseOp}));
  EXPECT_EQ(input_names(*g.nodes()[0]), (std::vector<std::string>{"p", "q"}));
}

TEST(FusePointwise, ValueWithAReaderOutsideStaysAGroupInput) {
  // a = Relu(x) is read by a MatMul too: the group {Sigmoid, Add} takes a and the MatMul's
  // result as inputs; Relu and MatMul stay.
  ir::Graph g;
  std::mt19937 rng(9);
  ir::Value* x = add_input(g, "x", {3, 4});
  ir::Value* a = add_op(g, "Relu", {x}, "a");
  ir::Value* m = add_op(g, "MatMul", {a, add_random_const(g, "w", kF32, {4, 4}, rng)}, "m");
  ir::Value* s = add_op(g, "Sigmoid", {a}, "s");
  g.outputs = {add_op(g, "Add", {s, m}, "y")};
  KILN_ASSERT_OK(prepare(g));
  fuse_and_compare(g, inputs_for(g, -1, 1));
  EXPECT_EQ(op_types(g),
            (std::vector<std::string>{"Relu", "MatMul", ops::kFusedPointwiseOp}));
  EXPECT_EQ(input_names(*fused_nodes(g)[0]), (std::vector<std::string>{"a", "m"}));
}

TEST(FusePointwise, ProducerSharedByTwoGroupsFusesIntoNeither) {
  // a = Abs(x) feeds two chains that are graph outputs: each chain fuses, Abs stays.
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {8});
  ir::Value* a = add_op(g, "Abs", {x}, "a");
  ir::Value* y1 = add_op(g, "Neg", {add_op(g, "Exp", {a}, "e")}, "y1");
  ir::Value* p = add_op(g, "Add", {a, scalar(g, "one", 1)}, "p");
  ir::Value* y2 = add_op(g, "Sqrt", {add_op(g, "Log", {p}, "l")}, "y2");
  g.outputs = {y1, y2};
  KILN_ASSERT_OK(prepare(g));
  fuse_and_compare(g, inputs_for(g, -2, 2));
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Abs", ops::kFusedPointwiseOp,
                                                   ops::kFusedPointwiseOp}));
  for (const ir::Node* n : fused_nodes(g))
    EXPECT_EQ(input_names(*n), (std::vector<std::string>{"a"}));
}

TEST(FusePointwise, IntegerChainIsNotFused) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {6}, DataType::kI32);
  ir::Value* a = add_op(g, "Add", {x, scalar(g, "c", 3, DataType::kI32)}, "a");
  ir::Value* m = add_op(g, "Mul", {a, x}, "m");
  g.outputs = {add_op(g, "Relu", {m}, "y", {}, 14)};
  KILN_ASSERT_OK(prepare(g));
  KILN_ASSERT_OK(run_fusion(g));
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Add", "Mul", "Relu"}));
}

TEST(FusePointwise, SingleNodesAndOtherOpsAreLeftAlone) {
  // Relu → Softmax → Relu: no two pointwise nodes are adjacent.
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {2, 5});
  ir::Value* r = add_op(g, "Relu", {x}, "r");
  ir::Value* s = add_op(g, "Softmax", {r}, "s");
  g.outputs = {add_op(g, "Relu", {s}, "y")};
  KILN_ASSERT_OK(prepare(g));
  KILN_ASSERT_OK(run_fusion(g));
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Relu", "Softmax", "Relu"}));
}

TEST(FusePointwise, LegacyBroadcastAndNonConstantClipBoundsAreNotFused) {
  ir::Graph g;
  g.opset_imports[""] = 6;
  ir::Value* x = add_input(g, "x", {2, 3});
  ir::Value* b = add_input(g, "b", {3});
  ir::Value* hi = add_input(g, "hi", {});
  // Add-6 with broadcast=1: legacy axis broadcasting.
  ir::Value* a = add_op(g, "Add", {x, b}, "a", {{"broadcast", Attribute::from_int(1)}}, 6);
  ir::Value* r = add_op(g, "Relu", {a}, "r", {}, 6);
  // Clip-13 whose max is a runtime input.
  g.outputs = {add_op(g, "Clip", {r, scalar(g, "lo", 0), hi}, "y", {}, 13)};
  KILN_ASSERT_OK(prepare(g));
  KILN_ASSERT_OK(run_fusion(g));
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Add", "Relu", "Clip"}));
}

TEST(FusePointwise, CpuBuildsNeverRunThePass) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {4});
  g.outputs = {add_op(g, "Relu", {add_op(g, "Neg", {x}, "n")}, "y")};
  KILN_ASSERT_OK(prepare(g));
  KILN_ASSERT_OK(run_fusion(g, Backend::kCpu));
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Neg", "Relu"}));
}

TEST(FusePointwise, CastBetweenFloatTypesKeepsItsRounding) {
  // f32 x * 3 → Cast f16 → Relu (f16) → Cast bf16 → Cast f32: the output is f32, the f16
  // and bf16 roundings stay in the program; the f16 run of the unfused graph rounds the
  // same values at the same places, so results are identical.
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {64});
  ir::Value* m = add_op(g, "Mul", {x, scalar(g, "k", 3.0)}, "m");
  ir::Value* h = add_op(g, "Cast", {m}, "h", {{"to", Attribute::from_int(10)}});
  ir::Value* r = add_op(g, "Relu", {h}, "r");
  ir::Value* b = add_op(g, "Cast", {r}, "b", {{"to", Attribute::from_int(16)}});
  g.outputs = {add_op(g, "Cast", {b}, "y", {{"to", Attribute::from_int(1)}})};
  KILN_ASSERT_OK(prepare(g));
  fuse_and_compare(g, inputs_for(g, -4, 4), 0.0);
  ASSERT_EQ(op_types(g), (std::vector<std::string>{ops::kFusedPointwiseOp}));
  EXPECT_EQ(program_ops(*g.nodes()[0]),
            (std::vector<std::string>{"Input", "Const", "Mul", "RoundF16", "Relu", "RoundBF16",
                                      "RoundF32"}));
}

TEST(FusePointwise, F16ChainComputesInFloatAndRoundsOnce) {
  // The unfused f16 graph rounds after every op; the fused one only at the end: close to
  // the f32 result, within f16 precision of the unfused one.
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {3, 40}, DataType::kF16);
  ir::Value* m = add_op(g, "Mul", {x, scalar(g, "k", 1.7, DataType::kF16)}, "m");
  ir::Value* t = add_op(g, "Tanh", {m}, "t");
  g.outputs = {add_op(g, "Add", {t, x}, "y")};
  KILN_ASSERT_OK(prepare(g));
  fuse_and_compare(g, inputs_for(g, -2, 2), 2e-3);
  ASSERT_EQ(op_types(g), (std::vector<std::string>{ops::kFusedPointwiseOp}));
  EXPECT_EQ(g.outputs[0]->dtype, DataType::kF16);
}

// ---- every op of the table against its ONNX op --------------------------------------------------

/// One ONNX node fused after a Mul(x, 1) (so that two nodes make a group). Binary and
/// variadic ops read extra inputs z [3,4] and w [4], broadcast against x [2,3,4].
struct OpCase {
  const char* op;
  int opset = 17;
  int inputs = 1;  ///< operands: 1 (x), 2 (x, z) or 3 (x, z, w)
  Attrs attrs = {};
  double lo = -3, hi = 3;    ///< range of x
  double zlo = -2, zhi = 2;  ///< range of z and w
  std::vector<double> clip;  ///< Clip-11+: constant bounds (lo, hi)
  std::string label = "";
};

std::vector<OpCase> op_cases() {
  auto f = [](float v) { return Attribute::from_float(v); };
  auto s = [](const char* v) { return Attribute::from_string(v); };
  std::vector<OpCase> c = {
      {"Add", 17, 2}, {"Sub", 17, 2}, {"Mul", 17, 2},
      {.op = "Div", .inputs = 2, .zlo = 0.5, .zhi = 2},
      {.op = "Pow", .inputs = 2, .lo = 0.1, .hi = 2},
      {"PRelu", 17, 2},
      {"Max", 17, 3}, {"Min", 17, 3}, {"Sum", 17, 3}, {"Mean", 17, 3},
      {"Neg"}, {"Abs"}, {"Sign"}, {.op = "Reciprocal", .lo = 0.2, .hi = 2},
      {.op = "Sqrt", .lo = 0.1, .hi = 3}, {"Exp"}, {.op = "Log", .lo = 0.1, .hi = 3}, {"Erf"},
      {"Floor"}, {"Ceil"}, {"Round"}, {"Sin"}, {"Cos"}, {.op = "Tan", .lo = -1.2, .hi = 1.2},
      {.op = "Asin", .lo = -0.9, .hi = 0.9}, {.op = "Acos", .lo = -0.9, .hi = 0.9}, {"Atan"},
      {"Sinh"}, {"Cosh"}, {"Asinh"}, {.op = "Acosh", .lo = 1.1, .hi = 4},
      {.op = "Atanh", .lo = -0.9, .hi = 0.9}, {"Tanh"},
      {"Relu"},
      {.op = "LeakyRelu", .attrs = {{"alpha", f(0.2f)}}},
      {.op = "LeakyRelu", .label = "default alpha"},
      {.op = "Elu", .attrs = {{"alpha", f(0.7f)}}},
      {"Selu"},
      {.op = "Celu", .attrs = {{"alpha", f(1.5f)}}},
      {.op = "ThresholdedRelu", .attrs = {{"alpha", f(0.3f)}}},
      {"Sigmoid"},
      {.op = "HardSigmoid", .attrs = {{"alpha", f(0.3f)}, {"beta", f(0.4f)}}},
      {.op = "HardSwish", .opset = 14}, {"Softplus"}, {"Softsign"}, {.op = "Mish", .opset = 18},
      {.op = "Swish", .opset = 24, .attrs = {{"alpha", f(1.3f)}}},
      {.op = "Gelu", .opset = 20},
      {.op = "Gelu", .opset = 20, .attrs = {{"approximate", s("tanh")}}, .label = "tanh"},
      {.op = "Shrink", .attrs = {{"lambd", f(0.3f)}, {"bias", f(0.1f)}}},
      {.op = "Clip", .opset = 13, .clip = {-0.5, 0.75}},
      {.op = "Clip", .opset = 6, .attrs = {{"min", f(-0.25f)}, {"max", f(1.0f)}},
       .label = "attributes"},
      {.op = "Cast", .attrs = {{"to", Attribute::from_int(10)}}, .label = "f16"},
      {.op = "Cast", .attrs = {{"to", Attribute::from_int(16)}}, .label = "bf16"},
      {.op = "Cast", .attrs = {{"to", Attribute::from_int(1)}}, .label = "f32"},
  };
  return c;
}

TEST(FusePointwise, EveryTableOpMatchesItsOnnxOp) {
  std::set<std::string> covered;
  for (const OpCase& c : op_cases()) {
    SCOPED_TRACE(std::string(c.op) + (c.label.empty() ? "" : " (" + c.label + ")"));
    ir::Graph g;
    g.opset_imports[""] = c.opset;
    ir::Value* x = add_input(g, "x", {2, 3, 4});
    ir::Value* pre = add_op(g, "Mul", {x, scalar(g, "one", 1.0)}, "pre", {}, std::max(c.opset, 7));
    std::vector<ir::Value*> ins = {pre};
    if (c.inputs >= 2) ins.push_back(add_input(g, "z", {3, 4}));
    if (c.inputs >= 3) ins.push_back(add_input(g, "w", {4}));
    if (!c.clip.empty()) {
      ins.push_back(scalar(g, "lo", c.clip[0]));
      ins.push_back(scalar(g, "hi", c.clip[1]));
    }
    g.outputs = {add_op(g, c.op, ins, "y", c.attrs, c.opset)};
    KILN_ASSERT_OK(prepare(g));
    fuse_and_compare(g, inputs_for(g, c.lo, c.hi, {{"z", {c.zlo, c.zhi}}, {"w", {c.zlo, c.zhi}}}),
                     0.0);
    ASSERT_EQ(op_types(g), (std::vector<std::string>{ops::kFusedPointwiseOp}));
    for (const std::string& name : program_ops(*g.nodes()[0])) covered.insert(name);
  }
  for (const ops::PwOpInfo& e : ops::pw_ops())
    EXPECT_TRUE(covered.count(e.name)) << "no case fuses table op " << e.name;
}

TEST(FusePointwise, SpecialValuesPropagateAsInTheOnnxOps) {
  // NaN, ±inf, ±0 through the ops whose NaN handling is a matter of operand order.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> xs = {nan, inf, -inf, 0.0, -0.0, 1.5, -1.5, nan, 2.0};
  const std::vector<double> zs = {1.0, nan, 0.5, nan, -0.0, inf, nan, nan, -inf};
  for (const std::string op : {"Max", "Min", "Relu", "Sign", "Clip", "HardSigmoid", "LeakyRelu",
                               "HardSwish", "Sigmoid", "Softplus", "PRelu"}) {
    SCOPED_TRACE(op);
    ir::Graph g;
    const bool binary = op == "Max" || op == "Min" || op == "PRelu";
    ir::Value* x = add_input(g, "x", {9});
    ir::Value* z = binary ? add_input(g, "z", {9}) : nullptr;
    ir::Value* pre = add_op(g, "Mul", {x, scalar(g, "one", 1.0)}, "pre");
    std::vector<ir::Value*> ins = {pre};
    if (z) ins.push_back(z);
    if (op == "Clip") ins = {pre, scalar(g, "lo", -1.0), scalar(g, "hi", 1.0)};
    g.outputs = {add_op(g, op, ins, "y", {}, op == "HardSwish" ? 14 : 17)};
    KILN_ASSERT_OK(prepare(g));
    std::vector<HostTensor> in = {HostTensor(kF32, {9})};
    for (size_t i = 0; i < xs.size(); ++i) in[0].set_f64(static_cast<int64_t>(i), xs[i]);
    if (z) {
      in.emplace_back(kF32, std::vector<int64_t>{9});
      for (size_t i = 0; i < zs.size(); ++i) in[1].set_f64(static_cast<int64_t>(i), zs[i]);
    }
    fuse_and_compare(g, in, 0.0);
    EXPECT_EQ(op_types(g), (std::vector<std::string>{ops::kFusedPointwiseOp}));
  }
}

// ---- the op itself ------------------------------------------------------------------------------

// A FusedPointwise node over graph inputs `ins` with the given program.
ir::Node* add_fused(ir::Graph& g, std::vector<ir::Value*> ins, const ops::PwProgram& p) {
  ir::Node* n = g.add_node(ops::kFusedPointwiseOp, "fused", std::move(ins), {g.add_value("y")},
                           ops::kFusedPointwiseDomain, ops::kFusedPointwiseVersion);
  ops::write_pw_program(*n, p);
  g.outputs = {n->outputs[0]};
  return n;
}

TEST(FusedPointwiseOp, MixedDtypesComputeInDoubleWithF64) {
  // y (f64) = Relu(a (f16) * b (f64)) + 0.1: f64 in play, so the program runs in double.
  ir::Graph g;
  ir::Value* a = add_input(g, "a", {2, 3}, DataType::kF16);
  ir::Value* b = add_input(g, "b", {3}, DataType::kF64);
  ops::PwProgram p;
  p.out_dtype = DataType::kF64;
  p.code = {{PwOp::kInput, 0}, {PwOp::kInput, 1}, {PwOp::kMul, 0, 1},
            {PwOp::kRelu, 2},  {PwOp::kConst, -1, -1, 0.1f}, {PwOp::kAdd, 3, 4}};
  add_fused(g, {a, b}, p);
  KILN_ASSERT_OK(prepare(g));
  EXPECT_EQ(g.outputs[0]->dtype, DataType::kF64);
  auto in = inputs_for(g, -2, 2);
  auto out = run(g, in);
  ASSERT_EQ(out.size(), 1u);
  for (int64_t i = 0; i < 6; ++i) {
    const double v = in[0].get_f64(i) * in[1].get_f64(i % 3);
    EXPECT_EQ(out[0].get_f64(i), (v < 0 ? 0.0 : v) + static_cast<double>(0.1f)) << i;
  }
}

TEST(FusedPointwiseOp, MalformedProgramsAreRejectedWithTheirReason) {
  struct Bad {
    ops::PwProgram p;
    const char* why;
  };
  const std::vector<Bad> cases = {
      {{{{PwOp::kInput, 1}}, kF32}, "reads input 1"},
      {{{{PwOp::kInput, 0}, {PwOp::kAdd, 0, 1}}, kF32}, "earlier registers"},
      {{{{PwOp::kInput, 0}, {PwOp::kRelu, 0, 0}}, kF32}, "earlier registers"},
      {{{{PwOp::kInput, 0}}, DataType::kI32}, "'to'"},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.why);
    ir::Graph g;
    add_fused(g, {add_input(g, "x", {4})}, c.p);
    Status st = prepare(g);
    ASSERT_FALSE(st.is_ok());
    EXPECT_EQ(st.code(), ErrorCode::kOnnxBadAttribute);
    EXPECT_NE(st.to_string().find(c.why), std::string::npos) << st.to_string();
  }
  ir::Graph g;
  ir::Node* n = add_fused(g, {add_input(g, "x", {4})}, {{{PwOp::kInput, 0}}, kF32});
  n->attrs["ops"].strings[0] = "Frobnicate";
  Status st = prepare(g);
  EXPECT_NE(st.to_string().find("unknown instruction"), std::string::npos) << st.to_string();
}

// ---- the precision pass -------------------------------------------------------------------------

TEST(FusePointwise, PrecisionLowersFusedNodesOfSixteenBitOpsOnly) {
  // y1 = Relu(x + b) fuses ops that all run in 16 bits: f16 I/O. y2 = Exp(x) * 2 fuses Exp,
  // which stays f32: so does the fused node.
  ir::Graph g;
  g.opset_imports[""] = 17;
  std::mt19937 rng(4);
  ir::Value* x = add_input(g, "x", {2, 8});
  ir::Value* a = add_op(g, "Add", {x, add_random_const(g, "b", kF32, {8}, rng)}, "a");
  ir::Value* y1 = add_op(g, "Relu", {a}, "y1");
  ir::Value* y2 = add_op(g, "Mul", {add_op(g, "Exp", {x}, "e"), scalar(g, "two", 2)}, "y2");
  g.outputs = {y1, y2};
  KILN_ASSERT_OK(prepare(g));
  auto in = inputs_for(g, -1, 1);
  auto ref = run(g, in);
  KILN_ASSERT_OK(run_fusion(g));
  ASSERT_EQ(fused_nodes(g).size(), 2u);
  KILN_ASSERT_OK(builder::lower_precision(g, DataType::kF16));
  for (const ir::Node* n : fused_nodes(g)) {
    const std::vector<std::string> names = program_ops(*n);
    const bool has_exp = std::find(names.begin(), names.end(), "Exp") != names.end();
    const DataType want = has_exp ? kF32 : DataType::kF16;
    SCOPED_TRACE(n->name);
    EXPECT_EQ(n->outputs[0]->dtype, want);
    EXPECT_EQ(n->attr_i("to", 0), onnx_import::to_onnx_dtype(want));
    for (const ir::Value* v : n->inputs) EXPECT_EQ(v->dtype, want) << v->name;
  }
  auto low = run(g, in);
  ASSERT_EQ(low.size(), 2u);
  EXPECT_EQ(low[0].dtype(), kF32);  // engine outputs keep their type
  expect_close(low, ref, 1e-2, 1e-2);
}

}  // namespace
}  // namespace kiln
