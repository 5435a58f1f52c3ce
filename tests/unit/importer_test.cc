// ONNX importer diagnostics: every malformed-model class gets its own error code, all
// problems of a model are reported in one pass, and nothing crashes.
#include <gtest/gtest.h>

#include <random>

#include "onnx.pb.h"
#include "onnx/importer.h"

namespace kiln {
namespace {

using onnx_import::import_bytes;

onnx::ModelProto base_model(int ir = 8, int opset = 17) {
  onnx::ModelProto m;
  m.set_ir_version(ir);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("g");
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(4);
  return m;
}

onnx::NodeProto* add_node(onnx::ModelProto& m, const std::string& op, std::vector<std::string> ins,
                          std::vector<std::string> outs) {
  auto* n = m.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(op + "_" + outs[0]);
  for (auto& i : ins) n->add_input(i);
  for (auto& o : outs) n->add_output(o);
  return n;
}

void add_output(onnx::ModelProto& m, const std::string& name) {
  auto* o = m.mutable_graph()->add_output();
  o->set_name(name);
  o->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
}

Status import(const onnx::ModelProto& m, std::vector<Status>* diags = nullptr) {
  std::string bytes = m.SerializeAsString();
  return import_bytes(bytes.data(), bytes.size(), "", diags).status();
}

}  // namespace

TEST(Importer, ValidModel) {
  auto m = base_model();
  add_node(m, "Add", {"x", "x"}, {"y"});
  add_output(m, "y");
  EXPECT_TRUE(import(m).is_ok()) << import(m).to_string();
}

TEST(Importer, TruncatedAndRandomBytes) {
  auto m = base_model();
  auto* w = m.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(4);
  w->set_raw_data(std::string(16, '\x3f'));
  add_node(m, "Add", {"x", "w"}, {"y"});
  add_output(m, "y");
  std::string bytes = m.SerializeAsString();
  // Every prefix imports or fails cleanly (a cut on a field boundary can be a valid, smaller
  // model); none may crash. A cut inside the weights, the usual truncated download, fails.
  for (size_t keep = 1; keep < bytes.size(); ++keep) (void)import_bytes(bytes.data(), keep, "", nullptr);
  size_t in_weights = bytes.find(std::string(16, '\x3f')) + 8;
  auto st = import_bytes(bytes.data(), in_weights, "", nullptr).status();
  EXPECT_EQ(st.code(), ErrorCode::kOnnxMalformed) << st.to_string();
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::string junk(64 + trial * 13, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    auto r = import_bytes(junk.data(), junk.size(), "", nullptr);
    EXPECT_FALSE(r.is_ok());
  }
  EXPECT_EQ(import_bytes("\xff\xff\xff", 3, "", nullptr).status().code(), ErrorCode::kOnnxMalformed);
}

TEST(Importer, WrongIrVersion) {
  auto m = base_model(/*ir=*/99);
  add_output(m, "x");
  EXPECT_EQ(import(m).code(), ErrorCode::kOnnxIrVersion);
}

TEST(Importer, UnsupportedOpset) {
  auto m = base_model(8, /*opset=*/999);
  add_output(m, "x");
  EXPECT_EQ(import(m).code(), ErrorCode::kOnnxOpsetUnsupported);
}

TEST(Importer, MissingInitializerIsADanglingInput) {
  auto m = base_model();
  add_node(m, "Add", {"x", "weights_that_were_dropped"}, {"y"});
  add_output(m, "y");
  Status st = import(m);
  EXPECT_EQ(st.code(), ErrorCode::kOnnxUndefinedInput);
  EXPECT_NE(st.to_string().find("weights_that_were_dropped"), std::string::npos);
  EXPECT_EQ(st.location().op, "Add");
}

TEST(Importer, Cycle) {
  auto m = base_model();
  add_node(m, "Add", {"x", "b"}, {"a"});
  add_node(m, "Add", {"a", "x"}, {"b"});
  add_output(m, "b");
  std::vector<Status> diags;
  Status st = import(m, &diags);
  bool has_cycle = false;
  for (auto& d : diags) has_cycle |= d.code() == ErrorCode::kOnnxGraphCycle || d.code() == ErrorCode::kOnnxUndefinedInput;
  EXPECT_FALSE(st.is_ok());
  EXPECT_TRUE(has_cycle);
}

TEST(Importer, DuplicateDefinition) {
  auto m = base_model();
  add_node(m, "Add", {"x", "x"}, {"y"});
  add_node(m, "Sub", {"x", "x"}, {"y"});
  add_output(m, "y");
  EXPECT_EQ(import(m).code(), ErrorCode::kOnnxDuplicateName);
}

TEST(Importer, ReportsEveryProblemInOnePass) {
  auto m = base_model();
  add_node(m, "FancyOpA", {"x"}, {"a"});
  add_node(m, "Add", {"a", "missing"}, {"b"});
  add_node(m, "FancyOpB", {"b"}, {"c"});
  auto* n = add_node(m, "Add", {"c", "c"}, {"d"});
  n->set_domain("com.vendor");
  add_output(m, "d");
  std::vector<Status> diags;
  EXPECT_FALSE(import(m, &diags).is_ok());
  int unsupported = 0, dangling = 0, domain = 0;
  for (auto& d : diags) {
    unsupported += d.code() == ErrorCode::kOnnxUnsupportedOp;
    dangling += d.code() == ErrorCode::kOnnxUndefinedInput;
    domain += d.code() == ErrorCode::kOnnxOpsetUnsupported;
  }
  EXPECT_GE(unsupported, 2);
  EXPECT_EQ(dangling, 1);
  EXPECT_GE(domain, 1);
}

TEST(Importer, InitializerSizeMismatch) {
  auto m = base_model();
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(4);
  t->add_float_data(1.0f);  // 1 value for 4 elements
  add_node(m, "Add", {"x", "w"}, {"y"});
  add_output(m, "y");
  EXPECT_EQ(import(m).code(), ErrorCode::kOnnxBadTensor);
}

TEST(Importer, ExternalDataMissing) {
  auto m = base_model();
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(4);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = t->add_external_data();
  kv->set_key("location");
  kv->set_value("weights.bin");
  add_node(m, "Add", {"x", "w"}, {"y"});
  add_output(m, "y");
  EXPECT_EQ(import(m).code(), ErrorCode::kOnnxExternalData);
}

TEST(Importer, StringInputIsUnsupportedType) {
  auto m = base_model();
  auto* in = m.mutable_graph()->add_input();
  in->set_name("s");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::STRING);
  add_output(m, "x");
  EXPECT_EQ(import(m).code(), ErrorCode::kOnnxUnsupportedType);
}

}  // namespace kiln
