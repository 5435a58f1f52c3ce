// identity_elimination: each no-op pattern disappears, look-alikes that move data stay,
// graph-output names survive.
#include "test_util.h"

namespace kiln {
namespace {

using namespace test;
using ir::Attribute;

TEST(IdentityElimination, RemovesIdentityCastAndSameShapeReshapes) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {2, 3, 4});
  ir::Node* i1 = add_node(g, "Identity", {x}, {"i1"});
  ir::Node* r = add_node(g, "Relu", {i1->outputs[0]}, {"r"});
  ir::Node* c =
      add_node(g, "Cast", {r->outputs[0]}, {"c"}, {{"to", Attribute::from_int(1)}});  // FLOAT
  ir::Node* rs = add_node(g, "Reshape", {c->outputs[0], add_i64(g, "shape", {2, 3, -1})}, {"rs"});
  ir::Node* us = add_node(g, "Unsqueeze", {rs->outputs[0], add_i64(g, "axes", {0})}, {"us"});
  ir::Node* sq = add_node(g, "Squeeze", {us->outputs[0], add_i64(g, "axes0", {0})}, {"sq"});
  ir::Node* fl =
      add_node(g, "Flatten", {sq->outputs[0]}, {"fl"}, {{"axis", Attribute::from_int(1)}});
  ir::Node* y = add_node(g, "Neg", {fl->outputs[0]}, {"y"});
  g.outputs.push_back(y->outputs[0]);
  KILN_ASSERT_OK(prepare(g));

  run_pass_and_compare(g, "identity_elimination");
  // Unsqueeze/Squeeze change the shape individually and stay; Flatten to 2x12 changes it
  // too. Identity, Cast to f32 and Reshape to the same shape go.
  EXPECT_EQ(op_types(g),
            (std::vector<std::string>{"Relu", "Unsqueeze", "Squeeze", "Flatten", "Neg"}));
  EXPECT_EQ(g.nodes()[0]->inputs[0], x);
  EXPECT_EQ(g.nodes()[1]->inputs[0], g.nodes()[0]->outputs[0]);
}

TEST(IdentityElimination, KeepsCastsReshapesThatChangeSomething) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {2, 6});
  ir::Node* c = add_node(g, "Cast", {x}, {"c"}, {{"to", Attribute::from_int(11)}});  // DOUBLE
  ir::Node* rs = add_node(g, "Reshape", {c->outputs[0], add_i64(g, "shape", {3, 4})}, {"y"});
  g.outputs.push_back(rs->outputs[0]);
  KILN_ASSERT_OK(prepare(g));
  run_pass_and_compare(g, "identity_elimination");
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Cast", "Reshape"}));
}

TEST(IdentityElimination, GraphOutputKeepsItsName) {
  // r = Relu(x); y = Identity(r); y is the graph output: Relu must now write "y".
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {5});
  ir::Node* r = add_node(g, "Relu", {x}, {"r"});
  ir::Node* other = add_node(g, "Neg", {r->outputs[0]}, {"z"});
  ir::Node* id = add_node(g, "Identity", {r->outputs[0]}, {"y"});
  g.outputs = {id->outputs[0], other->outputs[0]};
  KILN_ASSERT_OK(prepare(g));
  run_pass_and_compare(g, "identity_elimination");
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Relu", "Neg"}));
  ASSERT_EQ(g.outputs.size(), 2u);
  EXPECT_EQ(g.outputs[0]->name, "y");
  EXPECT_EQ(g.outputs[0]->producer->op_type, "Relu");
  EXPECT_EQ(g.nodes()[1]->inputs[0]->name, "y");  // Neg follows the renamed value
  EXPECT_EQ(g.find_value("r"), nullptr);
}

TEST(IdentityElimination, KeepsIdentityWhenBothNamesArePinned) {
  // y = Identity(x) with x a graph input; and z = Identity(r) with r itself an output.
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {3});
  ir::Node* y = add_node(g, "Identity", {x}, {"y"});
  ir::Node* r = add_node(g, "Relu", {x}, {"r"});
  ir::Node* z = add_node(g, "Identity", {r->outputs[0]}, {"z"});
  g.outputs = {y->outputs[0], r->outputs[0], z->outputs[0]};
  KILN_ASSERT_OK(prepare(g));
  bool changed = false;
  KILN_ASSERT_OK(apply_once(g, "identity_elimination", changed));
  EXPECT_FALSE(changed);
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Identity", "Relu", "Identity"}));
}

TEST(IdentityElimination, DropoutOnlyWhenItsMaskIsUnread) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {4, 4});
  ir::Node* d1 = add_node(g, "Dropout", {x}, {"d1", "mask1"}, {}, 13);
  ir::Node* d2 = add_node(g, "Dropout", {d1->outputs[0]}, {"d2", "mask2"}, {}, 13);
  ir::Node* d3 = add_node(g, "Dropout", {d2->outputs[0]}, {"d3"},
                          {{"ratio", Attribute::from_float(0.5f)}}, 10);
  ir::Node* y = add_node(g, "Relu", {d3->outputs[0]}, {"y"});
  g.outputs = {y->outputs[0], d2->outputs[1]};
  KILN_ASSERT_OK(prepare(g));
  run_pass_and_compare(g, "identity_elimination");
  // d1 (mask unread) and d3 (no mask) go; d2's mask is a graph output, so d2 stays.
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Dropout", "Relu"}));
  EXPECT_EQ(g.nodes()[0]->inputs[0], x);
  EXPECT_EQ(g.nodes()[0]->outputs[1]->name, "mask2");
}

TEST(IdentityElimination, DropoutInTrainingModeStays) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {4});
  ir::Value* train =
      g.add_constant("train", HostTensor::from_vector<uint8_t>(DataType::kBool, {}, {1}));
  ir::Node* d = add_node(g, "Dropout", {x, nullptr, train}, {"y"}, {}, 13);
  g.outputs = {d->outputs[0]};
  KILN_ASSERT_OK(prepare(g));
  bool changed = false;
  KILN_ASSERT_OK(apply_once(g, "identity_elimination", changed));
  EXPECT_FALSE(changed);
}

TEST(IdentityElimination, TransposePadSliceThatMoveNothing) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {1, 3, 1, 5});
  // Identity perm; then a perm that only swaps size-1 axes (0 and 2): same data order.
  ir::Node* t1 =
      add_node(g, "Transpose", {x}, {"t1"}, {{"perm", Attribute::from_ints({0, 1, 2, 3})}});
  ir::Node* t2 = add_node(g, "Transpose", {t1->outputs[0]}, {"t2"},
                          {{"perm", Attribute::from_ints({2, 1, 0, 3})}});
  ir::Node* p =
      add_node(g, "Pad", {t2->outputs[0], add_i64(g, "pads", {0, 0, 0, 0, 0, 0, 0, 0})}, {"p"});
  ir::Node* s = add_node(g, "Slice",
                         {p->outputs[0], add_i64(g, "starts", {0}), add_i64(g, "ends", {1000}),
                          add_i64(g, "axes", {3}), add_i64(g, "steps", {1})},
                         {"s"});
  ir::Node* y = add_node(g, "Neg", {s->outputs[0]}, {"y"});
  g.outputs = {y->outputs[0]};
  KILN_ASSERT_OK(prepare(g));
  run_pass_and_compare(g, "identity_elimination");
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Neg"}));
  EXPECT_EQ(g.nodes()[0]->inputs[0], x);
}

TEST(IdentityElimination, KeepsTransposePadSliceThatMoveData) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {3, 3});
  // Same shape, but each of these changes the data: a real transpose, a shift by padding
  // one side and cropping the other, and a reversal.
  ir::Node* t = add_node(g, "Transpose", {x}, {"t"}, {{"perm", Attribute::from_ints({1, 0})}});
  ir::Node* p = add_node(g, "Pad", {t->outputs[0], add_i64(g, "pads", {1, 0, -1, 0})}, {"p"});
  ir::Node* s = add_node(g, "Slice",
                         {p->outputs[0], add_i64(g, "starts", {-1}), add_i64(g, "ends", {-1000}),
                          add_i64(g, "axes", {1}), add_i64(g, "steps", {-1})},
                         {"y"});
  g.outputs = {s->outputs[0]};
  KILN_ASSERT_OK(prepare(g));
  ASSERT_EQ(s->outputs[0]->shape.concrete(), (std::vector<int64_t>{3, 3}));
  run_pass_and_compare(g, "identity_elimination");
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Transpose", "Pad", "Slice"}));
}

TEST(IdentityElimination, SingleInputVariadics) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {2, 2});
  ir::Node* c = add_node(g, "Concat", {x}, {"c"}, {{"axis", Attribute::from_int(0)}});
  ir::Node* s = add_node(g, "Sum", {c->outputs[0]}, {"s"});
  ir::Node* m = add_node(g, "Max", {s->outputs[0]}, {"m"});
  ir::Node* two = add_node(g, "Max", {m->outputs[0], x}, {"y"});
  g.outputs = {two->outputs[0]};
  KILN_ASSERT_OK(prepare(g));
  run_pass_and_compare(g, "identity_elimination");
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Max"}));
  EXPECT_EQ(g.nodes()[0]->inputs.size(), 2u);
}

}  // namespace
}  // namespace kiln
