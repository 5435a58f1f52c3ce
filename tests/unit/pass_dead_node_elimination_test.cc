// dead_node_elimination: unreachable nodes, their values and unused initializers go;
// everything reaching an output (also through subgraph captures) stays.
#include "test_util.h"

namespace kiln {
namespace {

using namespace test;

TEST(DeadNodeElimination, RemovesNodesThatReachNoOutput) {
  ir::Graph g;
  std::mt19937 rng(1);
  ir::Value* x = add_input(g, "x", {2, 3});
  ir::Value* c1 = add_random_const(g, "c1", DataType::kF32, {2, 3}, rng);
  ir::Value* c2 = add_random_const(g, "c2", DataType::kF32, {3}, rng);
  add_random_const(g, "unused_weight", DataType::kF32, {8}, rng);
  ir::Node* live = add_node(g, "Add", {x, c1}, {"y"});
  ir::Node* d1 = add_node(g, "Mul", {x, c2}, {"d1"});
  add_node(g, "Sub", {d1->outputs[0], live->outputs[0]}, {"d2"});
  g.outputs.push_back(live->outputs[0]);
  KILN_ASSERT_OK(prepare(g));

  run_pass_and_compare(g, "dead_node_elimination");
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Add"}));
  for (const char* gone : {"d1", "d2", "c2", "unused_weight"})
    EXPECT_EQ(g.find_value(gone), nullptr) << gone;
  EXPECT_NE(g.find_value("c1"), nullptr);
  EXPECT_EQ(g.outputs[0]->name, "y");
}

TEST(DeadNodeElimination, KeepsUnusedGraphInputsAndReportsNoChangeWhenClean) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {4});
  add_input(g, "unused_input", {4});
  ir::Node* n = add_node(g, "Relu", {x}, {"y"});
  g.outputs.push_back(n->outputs[0]);
  KILN_ASSERT_OK(prepare(g));
  bool changed = false;
  KILN_ASSERT_OK(apply_once(g, "dead_node_elimination", changed));
  EXPECT_FALSE(changed);
  EXPECT_EQ(g.inputs.size(), 2u);
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Relu"}));
}

TEST(DeadNodeElimination, KeepsAllOutputsOfAPartlyLiveNode) {
  // Dropout's mask is unread but its data output is live: the node stays, whole.
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {2, 5});
  ir::Node* d = add_node(g, "Dropout", {x}, {"y", "mask"}, {}, 13);
  g.outputs.push_back(d->outputs[0]);
  KILN_ASSERT_OK(prepare(g));
  run_pass_and_compare(g, "dead_node_elimination");
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Dropout"}));
  EXPECT_NE(g.find_value("mask"), nullptr);
}

// An If whose then-branch captures outer values a and b, but only reads b through a node
// whose result nobody uses. After the body is cleaned, the capture of b, the owner's
// implicit input b and the outer node producing b all become dead. a stays. The manager
// visits bodies before their owner; apply_once mirrors that order here.
TEST(DeadNodeElimination, PrunesCapturesABodyNoLongerReads) {
  ir::Graph g;
  ir::Value* x = add_input(g, "x", {3});
  ir::Value* cond = add_input(g, "cond", {}, DataType::kBool);
  ir::Node* na = add_node(g, "Neg", {x}, {"a"});
  ir::Node* nb = add_node(g, "Abs", {x}, {"b"});

  auto make_branch = [&](bool reads_b) {
    auto body = std::make_shared<ir::Graph>();
    body->name = reads_b ? "then" : "else";
    ir::Value* ca = body->add_value("a", DataType::kF32, Shape::from({3}));
    body->captures.push_back(ca);
    ir::Node* r = add_node(*body, "Relu", {ca}, {"r"});
    body->outputs.push_back(r->outputs[0]);
    if (reads_b) {
      ir::Value* cb = body->add_value("b", DataType::kF32, Shape::from({3}));
      body->captures.push_back(cb);
      add_node(*body, "Sigmoid", {cb}, {"unused_in_body"});
    }
    return body;
  };
  ir::Node* iff = add_node(g, "If", {cond}, {"y"});
  ir::Attribute then_b, else_b;
  then_b.kind = else_b.kind = ir::Attribute::Kind::kGraph;
  then_b.g = make_branch(true);
  else_b.g = make_branch(false);
  iff->attrs["then_branch"] = then_b;
  iff->attrs["else_branch"] = else_b;
  iff->implicit_inputs = {na->outputs[0], nb->outputs[0]};
  g.outputs.push_back(iff->outputs[0]);
  KILN_ASSERT_OK(ir::verify_graph(g));

  bool changed = false;
  for (ir::Graph* body : iff->subgraphs())
    KILN_ASSERT_OK(apply_once(*body, "dead_node_elimination", changed));
  KILN_ASSERT_OK(apply_once(g, "dead_node_elimination", changed));
  EXPECT_TRUE(changed);
  KILN_ASSERT_OK(ir::verify_graph(g));

  EXPECT_EQ(op_types(g), (std::vector<std::string>{"Neg", "If"}));
  ASSERT_EQ(iff->implicit_inputs.size(), 1u);
  EXPECT_EQ(iff->implicit_inputs[0]->name, "a");
  ir::Graph& then_body = *iff->attrs["then_branch"].g;
  EXPECT_EQ(op_types(then_body), (std::vector<std::string>{"Relu"}));
  ASSERT_EQ(then_body.captures.size(), 1u);
  EXPECT_EQ(then_body.captures[0]->name, "a");
  EXPECT_EQ(then_body.find_value("b"), nullptr);
  EXPECT_EQ(g.find_value("b"), nullptr);

  // A second sweep finds nothing more to do (the pipeline's fixed point terminates).
  changed = false;
  KILN_ASSERT_OK(apply_once(g, "dead_node_elimination", changed));
  EXPECT_FALSE(changed);
}

}  // namespace
}  // namespace kiln
