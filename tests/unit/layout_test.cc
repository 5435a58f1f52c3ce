// Layout assignment (builder/layout.h) with a table of layout-aware ops standing in for
// the CUDA kernel factories: regions, reformats, relabels, absorption, permuted weights.
#include "builder/layout.h"

#include <set>

#include "test_util.h"

namespace kiln {
namespace {

using builder::kLayoutNhwc;
using builder::kLayoutRowMajor;
using test::add_input;
using test::add_op;

/// Rules like the CUDA backend's: 16-bit convolutions prefer NHWC; listed ops take any
/// layouts, except that ops in `same_layout_only` refuse inputs and outputs that differ.
struct FakeRules {
  std::set<std::string> aware = {"Conv", "Relu", "MaxPool", "GlobalAveragePool", "Add", "Mul", "Cast", "Sigmoid"};
  std::set<std::string> same_layout_only;
  builder::LayoutRules rules() const {
    builder::LayoutRules r;
    r.prefers_nhwc = [](const ir::Node& n) {
      return n.op_type == "Conv" && n.inputs[0]->dtype == DataType::kF16;
    };
    r.accepts = [this](const ir::Node& n, const std::vector<uint8_t>& ins, const std::vector<uint8_t>& outs) {
      if (!aware.count(n.op_type)) return false;
      if (same_layout_only.count(n.op_type))
        for (uint8_t l : ins)
          if (l != outs[0]) return false;
      return true;
    };
    return r;
  }
};

int count_prefix(const ir::Graph& g, const std::string& prefix) {
  int c = 0;
  for (const auto& n : g.nodes()) c += n->name.rfind(prefix, 0) == 0;
  return c;
}

ir::Value* conv(ir::Graph& g, ir::Value* x, int64_t cin, int64_t cout, int64_t k, const std::string& name,
                std::mt19937& rng) {
  ir::Value* w = test::add_random_const(g, name + "_w", DataType::kF16, {cout, cin, k, k}, rng);
  return add_op(g, "Conv", {x, w}, name, {{"pads", ir::Attribute::from_ints({k / 2, k / 2, k / 2, k / 2})}});
}

TEST(Layout, ConvRegionWithOneReformatAndARelabel) {
  // x → Conv → Relu → MaxPool → Conv → GlobalAveragePool → Flatten → y, with a global
  // pool that cannot write the other layout itself.
  std::mt19937 rng(1);
  ir::Graph g;
  g.opset_imports[""] = 17;
  ir::Value* x = add_input(g, "x", {2, 3, 8, 8}, DataType::kF16);
  ir::Value* c1 = conv(g, x, 3, 16, 3, "c1", rng);
  ir::Value* r = add_op(g, "Relu", {c1}, "r");
  ir::Value* p = add_op(g, "MaxPool", {r}, "p", {{"kernel_shape", ir::Attribute::from_ints({2, 2})},
                                                  {"strides", ir::Attribute::from_ints({2, 2})}});
  ir::Value* c2 = conv(g, p, 16, 32, 1, "c2", rng);
  ir::Value* gap = add_op(g, "GlobalAveragePool", {c2}, "gap");
  ir::Value* y = add_op(g, "Flatten", {gap}, "y");
  g.outputs.push_back(y);
  KILN_ASSERT_OK(test::prepare(g));
  const HostTensor w1 = *g.find_value("c1_w")->constant;
  FakeRules fr;
  fr.same_layout_only = {"GlobalAveragePool"};
  auto st = builder::assign_layouts(g, fr.rules());
  KILN_ASSERT_OK(st.status());
  EXPECT_EQ(st->nhwc_nodes, 5);
  EXPECT_EQ(st->reformats, 1);  // the graph input x
  EXPECT_EQ(st->relabels, 1);   // [2,32,1,1] before Flatten: same bytes in both layouts
  EXPECT_EQ(st->constants, 2);
  for (const char* v : {"c1", "r", "p", "c2", "gap"}) EXPECT_EQ(g.find_value(v)->layout, kLayoutNhwc) << v;
  EXPECT_EQ(x->layout, kLayoutRowMajor);
  EXPECT_EQ(y->layout, kLayoutRowMajor);
  EXPECT_EQ(count_prefix(g, builder::kReformatPrefix), 1);
  EXPECT_EQ(count_prefix(g, builder::kRelabelPrefix), 1);
  // The first conv reads x through the reformat.
  const ir::Node* c1n = g.find_value("c1")->producer;
  EXPECT_EQ(c1n->inputs[0]->layout, kLayoutNhwc);
  EXPECT_EQ(c1n->inputs[0]->producer->op_type, "Transpose");
  EXPECT_EQ(c1n->inputs[0]->producer->inputs[0], x);
  // Weights are KRSC: element (k, c, r, s) at ((k*R + r)*S + s)*C + c.
  const ir::Value* w = c1n->inputs[1];
  EXPECT_EQ(w->layout, kLayoutNhwc);
  EXPECT_EQ(*w->shape.concrete(), (std::vector<int64_t>{16, 3, 3, 3}));
  for (int64_t k : {0, 7, 15})
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t rs = 0; rs < 9; ++rs)
        ASSERT_EQ(w->constant->get_f64((k * 9 + rs) * 3 + c), w1.get_f64((k * 3 + c) * 9 + rs));
  // The Flatten reads a row-major relabel of gap.
  const ir::Node* flat = y->producer;
  EXPECT_EQ(flat->inputs[0]->layout, kLayoutRowMajor);
  EXPECT_EQ(flat->inputs[0]->producer->op_type, "Identity");
  EXPECT_TRUE(ir::verify_graph(g).is_ok());
}

TEST(Layout, CastsAtTheBordersWriteTheOtherLayoutThemselves) {
  // x(f32) → Cast(f16) → Conv → Relu → Cast(f32) → y: no reformat at all.
  std::mt19937 rng(2);
  ir::Graph g;
  g.opset_imports[""] = 17;
  ir::Value* x = add_input(g, "x", {1, 4, 6, 6});
  ir::Value* h = add_op(g, "Cast", {x}, "h", {{"to", ir::Attribute::from_int(10)}});
  ir::Value* c = conv(g, h, 4, 8, 3, "c", rng);
  ir::Value* r = add_op(g, "Relu", {c}, "r");
  ir::Value* y = add_op(g, "Cast", {r}, "y", {{"to", ir::Attribute::from_int(1)}});
  g.outputs.push_back(y);
  KILN_ASSERT_OK(test::prepare(g));
  FakeRules fr;
  auto st = builder::assign_layouts(g, fr.rules());
  KILN_ASSERT_OK(st.status());
  EXPECT_EQ(st->reformats, 0);
  EXPECT_EQ(st->relabels, 0);
  EXPECT_EQ(st->absorbed, 2);
  EXPECT_EQ(h->layout, kLayoutNhwc);       // the input Cast writes NHWC
  EXPECT_EQ(y->layout, kLayoutRowMajor);   // the output Cast writes NCHW
  EXPECT_EQ(r->layout, kLayoutNhwc);
  EXPECT_EQ(test::op_types(g), (std::vector<std::string>{"Cast", "Conv", "Relu", "Cast"}));
}

TEST(Layout, GraphOutputKeepsItsNameBehindAReformat) {
  // Relu refuses mixed layouts: y = Relu(Conv(x)) is written NHWC and reformatted into y.
  std::mt19937 rng(3);
  ir::Graph g;
  g.opset_imports[""] = 17;
  ir::Value* x = add_input(g, "x", {1, 8, 5, 5}, DataType::kF16);
  ir::Value* c = conv(g, x, 8, 8, 1, "c", rng);
  ir::Value* y = add_op(g, "Relu", {c}, "y");
  ir::Value* z = add_op(g, "Sigmoid", {y}, "z");
  g.outputs.push_back(y);
  g.outputs.push_back(z);
  KILN_ASSERT_OK(test::prepare(g));
  FakeRules fr;
  fr.same_layout_only = {"Relu", "Sigmoid"};
  auto st = builder::assign_layouts(g, fr.rules());
  KILN_ASSERT_OK(st.status());
  ASSERT_EQ(g.outputs[0], y);
  EXPECT_EQ(y->name, "y");
  EXPECT_EQ(y->layout, kLayoutRowMajor);
  ASSERT_NE(y->producer, nullptr);
  EXPECT_EQ(y->producer->op_type, "Transpose");
  const ir::Value* stored = y->producer->inputs[0];
  EXPECT_EQ(stored->layout, kLayoutNhwc);
  EXPECT_EQ(stored->producer->op_type, "Relu");
  // Sigmoid stays NHWC on the stored tensor; its own output z is a graph output too.
  EXPECT_EQ(z->layout, kLayoutRowMajor);
  EXPECT_EQ(z->producer->op_type, "Transpose");
  EXPECT_EQ(z->producer->inputs[0]->producer->inputs[0], stored);
  EXPECT_EQ(st->reformats, 3);  // x, y, z
  EXPECT_TRUE(ir::verify_graph(g).is_ok());
}

TEST(Layout, OpsWithoutNhwcKernelsGetRowMajorInputs) {
  // Conv → Softmax (no NHWC kernel) → y: one reformat back, Softmax stays row-major.
  std::mt19937 rng(4);
  ir::Graph g;
  g.opset_imports[""] = 17;
  ir::Value* x = add_input(g, "x", {1, 8, 4, 4}, DataType::kF16);
  ir::Value* c = conv(g, x, 8, 8, 3, "c", rng);
  ir::Value* s = add_op(g, "Softmax", {c}, "s", {{"axis", ir::Attribute::from_int(1)}});
  g.outputs.push_back(s);
  KILN_ASSERT_OK(test::prepare(g));
  FakeRules fr;
  auto st = builder::assign_layouts(g, fr.rules());
  KILN_ASSERT_OK(st.status());
  EXPECT_EQ(st->nhwc_nodes, 1);
  EXPECT_EQ(st->reformats, 2);  // x in, c out
  EXPECT_EQ(c->layout, kLayoutNhwc);
  const ir::Node* sm = s->producer;
  EXPECT_EQ(sm->inputs[0]->layout, kLayoutRowMajor);
  EXPECT_EQ(sm->inputs[0]->producer->op_type, "Transpose");
  EXPECT_EQ(s->layout, kLayoutRowMajor);
}

TEST(Layout, SharedConstantIsCopiedForRowMajorReaders) {
  // One 4-D constant read by an NHWC conv and by a row-major Softmax branch.
  std::mt19937 rng(5);
  ir::Graph g;
  g.opset_imports[""] = 17;
  ir::Value* x = add_input(g, "x", {4, 4, 3, 3}, DataType::kF16);
  ir::Value* w = test::add_random_const(g, "w", DataType::kF16, {4, 4, 3, 3}, rng);
  ir::Value* c = add_op(g, "Conv", {x, w}, "c");
  ir::Value* s = add_op(g, "Softmax", {w}, "s", {{"axis", ir::Attribute::from_int(1)}});
  g.outputs.push_back(c);
  g.outputs.push_back(s);
  KILN_ASSERT_OK(test::prepare(g));
  const HostTensor before = *w->constant;
  FakeRules fr;
  auto st = builder::assign_layouts(g, fr.rules());
  KILN_ASSERT_OK(st.status());
  EXPECT_EQ(st->constants, 1);
  EXPECT_EQ(w->layout, kLayoutRowMajor);  // Softmax still reads the original
  EXPECT_EQ(s->producer->inputs[0], w);
  for (int64_t i = 0; i < before.numel(); ++i) ASSERT_EQ(w->constant->get_f64(i), before.get_f64(i));
  const ir::Node* cn = c->producer->inputs[0]->producer;  // c is a graph output: reformat ← conv
  ASSERT_EQ(cn->op_type, "Conv");
  const ir::Value* wc = cn->inputs[1];
  EXPECT_NE(wc, w);
  EXPECT_EQ(wc->layout, kLayoutNhwc);
}

TEST(Layout, Fp32ConvolutionsStayRowMajor) {
  std::mt19937 rng(6);
  ir::Graph g;
  g.opset_imports[""] = 17;
  ir::Value* x = add_input(g, "x", {1, 4, 6, 6});
  ir::Value* w = test::add_random_const(g, "w", DataType::kF32, {4, 4, 3, 3}, rng);
  ir::Value* c = add_op(g, "Conv", {x, w}, "c");
  ir::Value* y = add_op(g, "Relu", {c}, "y");
  g.outputs.push_back(y);
  KILN_ASSERT_OK(test::prepare(g));
  FakeRules fr;
  auto st = builder::assign_layouts(g, fr.rules());
  KILN_ASSERT_OK(st.status());
  EXPECT_EQ(st->nhwc_nodes, 0);
  EXPECT_EQ(st->reformats + st->relabels + st->constants, 0);
  for (const auto& v : g.values()) EXPECT_EQ(v->layout, kLayoutRowMajor) << v->name;
}

}  // namespace
}  // namespace kiln
