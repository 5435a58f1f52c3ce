// Public API end to end: Parser → Builder → plan bytes → Runtime → Engine → several
// ExecutionContexts, with the errors a user meets first (missing input, wrong shape or
// dtype, unknown names) and per-layer profiling.
#include <gtest/gtest.h>

#include "kiln/kiln.h"
#include "ir/graph.h"
#include "onnx.pb.h"

namespace kiln {
namespace {

// y = Relu(x + b), b = [1, -2, 3] broadcast over a batch of rows of 3.
std::string add_relu_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("add_relu");
  auto* in = g->add_input();
  in->set_name("x");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("batch");
  tt->mutable_shape()->add_dim()->set_dim_value(3);
  auto* b = g->add_initializer();
  b->set_name("b");
  b->set_data_type(onnx::TensorProto::FLOAT);
  b->add_dims(3);
  for (float v : {1.f, -2.f, 3.f}) b->add_float_data(v);
  auto* add = g->add_node();
  add->set_op_type("Add");
  add->set_name("add");
  add->add_input("x");
  add->add_input("b");
  add->add_output("s");
  auto* relu = g->add_node();
  relu->set_op_type("Relu");
  relu->set_name("relu");
  relu->add_input("s");
  relu->add_output("y");
  auto* out = g->add_output();
  out->set_name("y");
  out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  return m.SerializeAsString();
}

std::unique_ptr<Engine> build_engine(Logger& log) {
  std::string bytes = add_relu_model();
  auto net = Parser(log).parse(bytes.data(), bytes.size());
  EXPECT_TRUE(net.is_ok()) << net.status().to_string();
  auto plan = Builder(log).build_serialized_network(**net, BuilderConfig{});
  EXPECT_TRUE(plan.is_ok()) << plan.status().to_string();
  auto engine = Runtime(log).deserialize(plan->data(), plan->size());
  EXPECT_TRUE(engine.is_ok()) << engine.status().to_string();
  return std::move(engine).value();
}

}  // namespace

TEST(Api, ContextsShareOneEngine) {
  Logger log(LogLevel::kError);
  auto engine = build_engine(log);
  EXPECT_EQ(engine->input_names(), std::vector<std::string>{"x"});
  EXPECT_EQ(engine->output_names(), std::vector<std::string>{"y"});
  auto desc = engine->tensor_desc("x");
  ASSERT_TRUE(desc.is_ok());
  EXPECT_EQ(desc->dims, (std::vector<int64_t>{-1, 3}));  // symbolic batch stays dynamic

  auto c1 = engine->create_execution_context();
  auto c2 = engine->create_execution_context();
  std::vector<float> a = {-5.f, 0.f, 1.f, 2.f, 3.f, -4.f};  // batch 2
  std::vector<float> b = {0.5f, 2.5f, -3.5f};               // batch 1
  ASSERT_TRUE(c1->set_input("x", {DataType::kF32, {2, 3}, a.data()}).is_ok());
  ASSERT_TRUE(c2->set_input("x", {DataType::kF32, {1, 3}, b.data()}).is_ok());
  ASSERT_TRUE(c1->execute().is_ok());
  ASSERT_TRUE(c2->execute().is_ok());
  auto y1 = c1->output("y");
  auto y2 = c2->output("y");
  ASSERT_TRUE(y1.is_ok() && y2.is_ok());
  EXPECT_EQ(y1->dims, (std::vector<int64_t>{2, 3}));
  const float* p1 = static_cast<const float*>(y1->data);
  std::vector<float> want1 = {0.f, 0.f, 4.f, 3.f, 1.f, 0.f};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(p1[i], want1[i]) << i;
  const float* p2 = static_cast<const float*>(y2->data);
  std::vector<float> want2 = {1.5f, 0.5f, 0.f};
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(p2[i], want2[i]) << i;
}

TEST(Api, InputErrorsNameTheProblem) {
  Logger log(LogLevel::kError);
  auto engine = build_engine(log);
  auto ctx = engine->create_execution_context();
  Status missing = ctx->execute();
  EXPECT_EQ(missing.code(), ErrorCode::kMissingInput);
  EXPECT_NE(missing.message().find("'x'"), std::string::npos);

  std::vector<float> data(8);
  Status shape = ctx->set_input("x", {DataType::kF32, {2, 4}, data.data()});
  EXPECT_EQ(shape.code(), ErrorCode::kInputShapeMismatch);
  EXPECT_NE(shape.to_string().find("batchx3"), std::string::npos) << shape.to_string();

  std::vector<int64_t> ints(3);
  EXPECT_EQ(ctx->set_input("x", {DataType::kI64, {1, 3}, ints.data()}).code(), ErrorCode::kInputShapeMismatch);
  Status name = ctx->set_input("z", {DataType::kF32, {1, 3}, data.data()});
  EXPECT_EQ(name.code(), ErrorCode::kNotFound);
  EXPECT_NE(name.hint().find("'x'"), std::string::npos);
  EXPECT_EQ(ctx->output("nope").status().code(), ErrorCode::kNotFound);
}

TEST(Api, ProfilingRecordsEveryLayer) {
  Logger log(LogLevel::kError);
  auto engine = build_engine(log);
  auto ctx = engine->create_execution_context();
  std::vector<float> a(3, 1.f);
  ASSERT_TRUE(ctx->set_input("x", {DataType::kF32, {1, 3}, a.data()}).is_ok());
  ASSERT_TRUE(ctx->execute().is_ok());
  EXPECT_TRUE(ctx->layer_times().empty());
  ctx->set_profiling(true);
  ASSERT_TRUE(ctx->execute().is_ok());
  ASSERT_EQ(ctx->layer_times().size(), engine->graph().nodes().size());
  EXPECT_EQ(ctx->layer_times()[0].op, "Add");
  EXPECT_EQ(ctx->layer_times()[1].name, "relu");
  for (const auto& t : ctx->layer_times()) EXPECT_GE(t.ms, 0.0);
}

}  // namespace kiln
