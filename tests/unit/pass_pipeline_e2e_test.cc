// The level-1 passes end to end: ONNX bytes → Parser → Builder (pass pipeline) → plan →
// Runtime. Checks the plan's node list with all passes, with none (opt level 0) and with
// one disabled by name, and that every variant computes the same outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "ir/graph.h"
#include "kiln/kiln.h"
#include "onnx.pb.h"
#include "onnx/importer.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::expect_close;

std::vector<std::string> plan_ops(const Engine& e) { return test::op_types(e.graph()); }

Result<std::unique_ptr<Engine>> build(NetworkDefinition& net, const BuilderConfig& cfg) {
  Logger log(LogLevel::kOff);
  KILN_ASSIGN_OR_RETURN(auto plan, Builder(log).build_serialized_network(net, cfg));
  return Runtime(log).deserialize(plan.data(), plan.size());
}

Result<HostTensor> run_engine(Engine& e, const std::string& in_name, const HostTensor& in,
                              const std::string& out_name) {
  auto ctx = e.create_execution_context();
  HostTensor copy = in.clone();
  KILN_RETURN_IF_ERROR(ctx->set_input(in_name, TensorView{copy.dtype(), copy.dims(), copy.raw()}));
  KILN_RETURN_IF_ERROR(ctx->execute());
  KILN_ASSIGN_OR_RETURN(TensorView out, ctx->output(out_name));
  return HostTensor::wrap(out.dtype, out.dims, out.data, nullptr).clone();
}

// ---- a Conv/BN/Identity/Dropout/Add/Relu/view model built as ONNX -----------------------

void add_f32_init(onnx::GraphProto* g, const std::string& name, std::vector<int64_t> dims,
                  std::mt19937& rng, float lo, float hi) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  int64_t n = 1;
  for (auto d : dims) {
    t->add_dims(d);
    n *= d;
  }
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < n; ++i) t->add_float_data(dist(rng));
}

void add_i64_init(onnx::GraphProto* g, const std::string& name, std::vector<int64_t> v,
                  bool scalar) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  if (!scalar) t->add_dims(static_cast<int64_t>(v.size()));
  for (auto x : v) t->add_int64_data(x);
}

onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, std::vector<std::string> ins,
                          const std::string& out) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(op + "_" + out);
  for (auto& i : ins) n->add_input(i);
  n->add_output(out);
  return n;
}

void set_ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}

void set_int(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

std::string conv_bn_model() {
  std::mt19937 rng(99);
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("conv_bn");
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = in->mutable_type()->mutable_tensor_type()->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (int64_t d : {3, 8, 8}) shape->add_dim()->set_dim_value(d);
  add_f32_init(g, "W", {4, 3, 3, 3}, rng, -1, 1);
  add_f32_init(g, "B", {4}, rng, -1, 1);
  add_f32_init(g, "gamma", {4}, rng, 0.5f, 2);
  add_f32_init(g, "beta", {4}, rng, -1, 1);
  add_f32_init(g, "mean", {4}, rng, -1, 1);
  add_f32_init(g, "var", {4}, rng, 0.1f, 3);
  add_f32_init(g, "k", {1, 4, 1, 1}, rng, -1, 1);
  add_i64_init(g, "zero", {0}, true);
  add_i64_init(g, "axes", {0}, false);
  add_i64_init(g, "minus1", {-1}, false);
  set_ints(add_node(g, "Conv", {"x", "W", "B"}, "c"), "pads", {1, 1, 1, 1});
  add_node(g, "BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, "bn");
  add_node(g, "Identity", {"bn"}, "id");
  add_node(g, "Dropout", {"id"}, "dr");
  add_node(g, "Add", {"dr", "k"}, "a");
  add_node(g, "Relu", {"a"}, "r");
  add_node(g, "Sigmoid", {"x"}, "unused");
  add_node(g, "Shape", {"r"}, "s");
  set_int(add_node(g, "Gather", {"s", "zero"}, "n0"), "axis", 0);
  add_node(g, "Unsqueeze", {"n0", "axes"}, "n1");
  set_int(add_node(g, "Concat", {"n1", "minus1"}, "target"), "axis", 0);
  add_node(g, "Reshape", {"r", "target"}, "y");
  auto* out = g->add_output();
  out->set_name("y");
  out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  return m.SerializeAsString();
}

TEST(PassPipelineE2E, ConvBatchNormModelShrinksAndComputesTheSame) {
  std::string bytes = conv_bn_model();
  Logger log(LogLevel::kOff);
  auto build_with = [&](BuilderConfig cfg) -> Result<std::unique_ptr<Engine>> {
    Parser parser(log);
    KILN_ASSIGN_OR_RETURN(auto net, parser.parse(bytes.data(), bytes.size()));
    cfg.input_shapes["x"] = {2, 3, 8, 8};
    return build(*net, cfg);
  };
  BuilderConfig none;
  none.opt_level = 0;
  BuilderConfig all;  // default opt level runs every level-1 pass
  BuilderConfig no_bn = all;
  no_bn.disabled_passes = {"fold_batchnorm_into_conv"};

  auto e0 = build_with(none);
  ASSERT_TRUE(e0.is_ok()) << e0.status().to_string();
  auto e2 = build_with(all);
  ASSERT_TRUE(e2.is_ok()) << e2.status().to_string();
  auto e_nobn = build_with(no_bn);
  ASSERT_TRUE(e_nobn.is_ok()) << e_nobn.status().to_string();

  EXPECT_EQ(plan_ops(**e0).size(), 12u);
  EXPECT_EQ(plan_ops(**e2), (std::vector<std::string>{"Conv", "Relu", "Reshape"}));
  // Without the BN fold the Conv output feeds BatchNormalization, so the Add cannot move
  // into the Conv either; the other cleanups still apply.
  EXPECT_EQ(plan_ops(**e_nobn),
            (std::vector<std::string>{"Conv", "BatchNormalization", "Add", "Relu", "Reshape"}));

  std::mt19937 rng(5);
  HostTensor x(DataType::kF32, {2, 3, 8, 8});
  std::uniform_real_distribution<float> dist(-1, 1);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
  auto y0 = run_engine(**e0, "x", x, "y");
  ASSERT_TRUE(y0.is_ok()) << y0.status().to_string();
  EXPECT_EQ(y0.value().dims(), (std::vector<int64_t>{2, 256}));
  for (auto* e : {&e2, &e_nobn}) {
    auto y = run_engine(***e, "x", x, "y");
    ASSERT_TRUE(y.is_ok()) << y.status().to_string();
    expect_close(y.value(), y0.value(), 1e-5, 1e-5);
  }
}

// The ONNX suite's function expansion of LayerNormalization, as exporters emit it: the
// Shape/Size/Slice/ConstantOfShape/Concat shape arithmetic, the same-dtype Casts, the
// no-op Flatten and the Reshapes back to the input shape all go; graph outputs keep their
// names and the reference outputs are still met. (The pytorch-converted models that have
// more than one node are opset 6, below what kiln imports.)
TEST(PassPipelineE2E, ExpandedLayerNormalizationLosesItsShapeArithmetic) {
  const std::string dir = "/work/onnx-testdata/node/test_layer_normalization_2d_axis1_expanded";
  if (!std::filesystem::exists(dir + "/model.onnx")) GTEST_SKIP() << "no ONNX test data at " << dir;
  Logger log(LogLevel::kOff);
  auto build_file = [&](int opt) -> Result<std::unique_ptr<Engine>> {
    Parser parser(log);
    KILN_ASSIGN_OR_RETURN(auto net, parser.parse_from_file(dir + "/model.onnx"));
    BuilderConfig cfg;
    cfg.opt_level = opt;
    return build(*net, cfg);
  };
  auto e0 = build_file(0);
  ASSERT_TRUE(e0.is_ok()) << e0.status().to_string();
  auto e = build_file(1);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ(plan_ops(**e0).size(), 27u);
  std::vector<std::string> ops = plan_ops(**e);
  EXPECT_EQ(ops.size(), 14u);
  for (const char* gone :
       {"Shape", "Size", "Slice", "ConstantOfShape", "Concat", "Cast", "Reshape"})
    EXPECT_EQ(std::count(ops.begin(), ops.end(), gone), 0) << gone;
  EXPECT_EQ((*e)->output_names(), (std::vector<std::string>{"Y", "Mean", "InvStdDev"}));

  auto ctx = (*e)->create_execution_context();
  std::vector<HostTensor> inputs;
  auto in_names = (*e)->input_names();
  for (size_t i = 0; i < in_names.size(); ++i) {
    auto t =
        onnx_import::read_tensor_pb(dir + "/test_data_set_0/input_" + std::to_string(i) + ".pb");
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    inputs.push_back(std::move(t).value());
    KILN_ASSERT_OK(ctx->set_input(
        in_names[i], TensorView{inputs[i].dtype(), inputs[i].dims(), inputs[i].raw()}));
  }
  KILN_ASSERT_OK(ctx->execute());
  auto out_names = (*e)->output_names();
  for (size_t i = 0; i < out_names.size(); ++i) {
    auto ref =
        onnx_import::read_tensor_pb(dir + "/test_data_set_0/output_" + std::to_string(i) + ".pb");
    ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
    auto out = ctx->output(out_names[i]);
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
    expect_close(HostTensor::wrap(out->dtype, out->dims, out->data, nullptr), ref.value(), 1e-3,
                 1e-5);
  }
}

}  // namespace
}  // namespace kiln
