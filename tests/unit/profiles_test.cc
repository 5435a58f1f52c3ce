// Optimisation profiles from build to run: builder::apply_profiles (checks and what it does
// to the graph), the plan round trip, Engine::profile_shape, the ExecutionContext shape API
// (set_input_shape / tensor_shape / set_optimization_profile) on the CPU backend, and the
// two helpers a dynamic plan is specialised with: ir::clone_graph and builder::specialize.
#include "builder/profiles.h"

#include <gtest/gtest.h>

#include "builder/specialize.h"
#include "engine/plan.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::add_i64;
using test::add_op;

OptimizationProfile profile(const std::string& input, std::vector<int64_t> min,
                            std::vector<int64_t> opt, std::vector<int64_t> max) {
  OptimizationProfile p;
  p.inputs[input] = {std::move(min), std::move(opt), std::move(max)};
  return p;
}

/// x: f32[N, ?, 4] (N symbolic, dim 1 without a name), y = Reshape(x + b, [N, -1]) with the
/// target shape computed from the tensor: Concat(Gather(Shape(x + b), [0]), [-1]). So
/// y's dims follow from x's only through the shape arithmetic.
std::unique_ptr<ir::Graph> reshape_graph() {
  auto g = std::make_unique<ir::Graph>();
  g->name = "reshape";
  g->opset_imports[""] = test::kOpset;
  ir::Value* x = g->add_value("x", DataType::kF32, Shape({Dim::sym("N"), Dim::unknown(), Dim(4)}));
  g->inputs.push_back(x);
  ir::Value* b = g->add_constant("b", test::f32({4}, {1.f, 2.f, 3.f, 4.f}));
  ir::Value* t = add_op(*g, "Add", {x, b}, "t");
  ir::Value* s = add_op(*g, "Shape", {t}, "s");
  ir::Value* n = add_op(*g, "Gather", {s, add_i64(*g, "i0", {0})}, "n",
                        {{"axis", ir::Attribute::from_int(0)}});
  ir::Value* shape = add_op(*g, "Concat", {n, add_i64(*g, "minus1", {-1})}, "target",
                            {{"axis", ir::Attribute::from_int(0)}});
  g->outputs.push_back(add_op(*g, "Reshape", {t, shape}, "y"));
  return g;
}

/// Two dynamic inputs: x: f32[N, 3], z: f32[M]; y = Relu(x), w = Relu(z).
std::unique_ptr<ir::Graph> two_input_graph() {
  auto g = std::make_unique<ir::Graph>();
  g->opset_imports[""] = test::kOpset;
  ir::Value* x = g->add_value("x", DataType::kF32, Shape({Dim::sym("N"), Dim(3)}));
  ir::Value* z = g->add_value("z", DataType::kF32, Shape({Dim::sym("M")}));
  g->inputs = {x, z};
  g->outputs = {add_op(*g, "Relu", {x}, "y"), add_op(*g, "Relu", {z}, "w")};
  return g;
}

Result<std::unique_ptr<Engine>> build_engine(std::unique_ptr<ir::Graph> g,
                                             const BuilderConfig& cfg) {
  Logger log(LogLevel::kError);
  NetworkDefinition net(std::move(g));
  KILN_ASSIGN_OR_RETURN(auto plan, Builder(log).build_serialized_network(net, cfg));
  return Runtime(log).deserialize(plan.data(), plan.size());
}

std::unique_ptr<Engine> reshape_engine(std::vector<OptimizationProfile> profiles) {
  BuilderConfig cfg;
  cfg.profiles = std::move(profiles);
  auto e = build_engine(reshape_graph(), cfg);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(e).value() : nullptr;
}

/// apply_profiles on reshape_graph with `p` (one profile); returns the status.
Status apply(const OptimizationProfile& p) {
  auto g = reshape_graph();
  BuilderConfig cfg;
  cfg.profiles = {p};
  return builder::apply_profiles(*g, cfg).status();
}

void expect_error(const Status& st, ErrorCode code, const std::vector<std::string>& mentions) {
  EXPECT_EQ(st.code(), code) << st.to_string();
  for (const auto& m : mentions)
    EXPECT_NE(st.message().find(m), std::string::npos) << "no '" << m << "' in: " << st.to_string();
  EXPECT_FALSE(st.hint().empty()) << st.to_string();
}

}  // namespace

// ---- build time ----------------------------------------------------------------------------

TEST(Profiles, ApplyRejectsProfilesThatDoNotFit) {
  KILN_ASSERT_OK(apply(profile("x", {1, 1, 4}, {2, 3, 4}, {8, 3, 4})));
  expect_error(apply(profile("nosuch", {1}, {1}, {1})), ErrorCode::kProfileInvalid, {"'nosuch'"});
  expect_error(apply(profile("x", {1, 4}, {2, 4}, {8, 4})), ErrorCode::kProfileInvalid,
               {"'x'", "rank 3"});
  expect_error(apply(profile("x", {-1, 1, 4}, {2, 3, 4}, {8, 3, 4})), ErrorCode::kProfileInvalid,
               {"'x'", "dimension 0", "-1"});
  expect_error(apply(profile("x", {3, 1, 4}, {2, 3, 4}, {8, 3, 4})), ErrorCode::kProfileInvalid,
               {"'x'", "dimension 0", "min 3, opt 2"});
  expect_error(apply(profile("x", {1, 1, 4}, {2, 5, 4}, {8, 3, 4})), ErrorCode::kProfileInvalid,
               {"'x'", "dimension 1", "opt 5, max 3"});
  expect_error(apply(profile("x", {1, 1, 4}, {2, 3, 5}, {8, 3, 5})), ErrorCode::kProfileInvalid,
               {"'x'", "dimension 2", "fixed to 4"});
  // A second dynamic input that the profile leaves out.
  auto g = two_input_graph();
  BuilderConfig cfg;
  cfg.profiles = {profile("x", {1, 3}, {2, 3}, {4, 3})};
  expect_error(builder::apply_profiles(*g, cfg).status(), ErrorCode::kProfileInvalid,
               {"'z'", "does not cover"});
  // Concrete shapes and profiles exclude each other.
  cfg.input_shapes["z"] = {5};
  EXPECT_EQ(builder::apply_profiles(*g, cfg).status().code(), ErrorCode::kInvalidArgument);
}

TEST(Profiles, DimsEveryProfileFixesBecomeStatic) {
  // Dim 1 is 3 in both profiles: concrete. Dim 0 varies: it keeps its name "N".
  auto g = reshape_graph();
  BuilderConfig cfg;
  cfg.profiles = {profile("x", {1, 3, 4}, {2, 3, 4}, {4, 3, 4}),
                  profile("x", {5, 3, 4}, {8, 3, 4}, {16, 3, 4})};
  auto kept = builder::apply_profiles(*g, cfg);
  KILN_ASSERT_OK(kept.status());
  EXPECT_EQ(kept->size(), 2u);
  EXPECT_EQ(g->inputs[0]->shape.to_string(), "Nx3x4");
  // An unnamed dynamic dim gets a name, so that inference can relate the dims it derives.
  g = reshape_graph();
  cfg.profiles = {profile("x", {1, 1, 4}, {2, 2, 4}, {4, 3, 4})};
  KILN_ASSERT_OK(builder::apply_profiles(*g, cfg).status());
  EXPECT_EQ(g->inputs[0]->shape.to_string(), "Nxx_d1x4");
  // Everything fixed: a static plan, no profiles stored.
  g = reshape_graph();
  cfg.profiles = {profile("x", {2, 3, 4}, {2, 3, 4}, {2, 3, 4})};
  kept = builder::apply_profiles(*g, cfg);
  KILN_ASSERT_OK(kept.status());
  EXPECT_TRUE(kept->empty());
  EXPECT_TRUE(g->inputs[0]->shape.is_static());
  auto e = build_engine(reshape_graph(), cfg);
  KILN_ASSERT_OK(e.status());
  EXPECT_EQ((*e)->num_optimization_profiles(), 0);
  EXPECT_EQ((*e)->tensor_desc("y")->dims, (std::vector<int64_t>{2, 12}));
}

TEST(Profiles, PlanRoundTripKeepsProfiles) {
  auto g = reshape_graph();
  KILN_ASSERT_OK(test::prepare(*g));
  plan::PlanInfo info;
  info.profiles = {profile("x", {1, 1, 4}, {2, 3, 4}, {8, 3, 4}),
                   profile("x", {9, 1, 4}, {12, 2, 4}, {16, 3, 4})};
  auto bytes = plan::serialize(*g, info);
  auto lp = plan::deserialize(bytes.data(), bytes.size());
  KILN_ASSERT_OK(lp.status());
  ASSERT_EQ(lp->info.profiles.size(), 2u);
  for (size_t p = 0; p < 2; ++p) {
    ASSERT_EQ(lp->info.profiles[p].inputs.size(), 1u);
    const auto& got = lp->info.profiles[p].inputs.at("x");
    const auto& want = info.profiles[p].inputs.at("x");
    EXPECT_EQ(got.min, want.min);
    EXPECT_EQ(got.opt, want.opt);
    EXPECT_EQ(got.max, want.max);
  }
  // A static plan stores none.
  auto bytes0 = plan::serialize(*g, plan::PlanInfo{});
  auto lp0 = plan::deserialize(bytes0.data(), bytes0.size());
  KILN_ASSERT_OK(lp0.status());
  EXPECT_TRUE(lp0->info.profiles.empty());
}

// ---- run time ------------------------------------------------------------------------------

TEST(Profiles, EngineProfileShape) {
  auto e = reshape_engine({profile("x", {1, 1, 4}, {2, 3, 4}, {8, 3, 4})});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->num_optimization_profiles(), 1);
  auto r = e->profile_shape("x", 0);
  KILN_ASSERT_OK(r.status());
  EXPECT_EQ(r->min, (std::vector<int64_t>{1, 1, 4}));
  EXPECT_EQ(r->opt, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(r->max, (std::vector<int64_t>{8, 3, 4}));
  EXPECT_EQ(e->profile_shape("x", 1).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(e->profile_shape("x", -1).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(e->profile_shape("nosuch", 0).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(e->tensor_desc("x")->dims, (std::vector<int64_t>{-1, -1, 4}));
}

TEST(Profiles, SetInputShapeChecksTheProfile) {
  auto e = reshape_engine({profile("x", {1, 1, 4}, {2, 3, 4}, {8, 3, 4})});
  ASSERT_TRUE(e);
  auto ctx = e->create_execution_context();
  KILN_ASSERT_OK(ctx->set_input_shape("x", {1, 1, 4}));
  KILN_ASSERT_OK(ctx->set_input_shape("x", {8, 3, 4}));
  Status big = ctx->set_input_shape("x", {9, 3, 4});
  expect_error(big, ErrorCode::kInputOutsideProfile,
               {"'x'", "dimension 0", "is 9", "[1, 8]", "profile 0"});
  EXPECT_NE(big.hint().find("--max-shapes"), std::string::npos) << big.to_string();
  Status small = ctx->set_input_shape("x", {2, 0, 4});
  expect_error(small, ErrorCode::kInputOutsideProfile, {"'x'", "dimension 1", "is 0", "[1, 3]"});
  EXPECT_NE(small.hint().find("--min-shapes"), std::string::npos) << small.to_string();
  expect_error(ctx->set_input_shape("x", {2, 3}), ErrorCode::kInputShapeMismatch, {"'x'"});
  expect_error(ctx->set_input_shape("x", {2, 3, 5}), ErrorCode::kInputShapeMismatch, {"'x'"});
  EXPECT_EQ(ctx->set_input_shape("nosuch", {1}).code(), ErrorCode::kNotFound);
  // set_input checks the same way, before binding anything.
  std::vector<float> data(9 * 3 * 4);
  EXPECT_EQ(ctx->set_input("x", {DataType::kF32, {9, 3, 4}, data.data()}).code(),
            ErrorCode::kInputOutsideProfile);
}

TEST(Profiles, OutputShapesFollowTheInputShapes) {
  auto e = reshape_engine({profile("x", {1, 1, 4}, {2, 3, 4}, {8, 3, 4})});
  ASSERT_TRUE(e);
  auto ctx = e->create_execution_context();
  EXPECT_EQ(ctx->tensor_shape("y").status().code(), ErrorCode::kDynamicShapeUnresolved);
  EXPECT_EQ(ctx->tensor_shape("nosuch").status().code(), ErrorCode::kNotFound);
  struct Case {
    std::vector<int64_t> in, out;
  };
  for (const Case& c :
       {Case{{2, 3, 4}, {2, 12}}, Case{{5, 1, 4}, {5, 4}}, Case{{2, 3, 4}, {2, 12}}}) {
    SCOPED_TRACE(dims_to_string(c.in));
    KILN_ASSERT_OK(ctx->set_input_shape("x", c.in));
    auto in = ctx->tensor_shape("x");
    KILN_ASSERT_OK(in.status());
    EXPECT_EQ(*in, c.in);
    auto out = ctx->tensor_shape("y");
    KILN_ASSERT_OK(out.status());
    EXPECT_EQ(*out, c.out);
    // What execute() produces agrees, and the numbers are x + b.
    HostTensor x = test::iota_f32(c.in);
    KILN_ASSERT_OK(ctx->set_input("x", {DataType::kF32, c.in, x.raw()}));
    KILN_ASSERT_OK(ctx->execute());
    auto y = ctx->output("y");
    KILN_ASSERT_OK(y.status());
    EXPECT_EQ(y->dims, c.out);
    const float* p = static_cast<const float*>(y->data);
    for (int64_t i = 0; i < x.numel(); ++i)
      ASSERT_FLOAT_EQ(p[i], static_cast<float>(i + 1 + i % 4)) << i;
  }
}

TEST(Profiles, SelectingAProfileSelectsItsRanges) {
  auto e = reshape_engine({profile("x", {1, 1, 4}, {2, 3, 4}, {4, 3, 4}),
                           profile("x", {5, 1, 4}, {8, 3, 4}, {16, 3, 4})});
  ASSERT_TRUE(e);
  ASSERT_EQ(e->num_optimization_profiles(), 2);
  EXPECT_EQ(e->profile_shape("x", 1)->max, (std::vector<int64_t>{16, 3, 4}));
  auto ctx = e->create_execution_context();
  EXPECT_EQ(ctx->optimization_profile(), 0);
  KILN_ASSERT_OK(ctx->set_input_shape("x", {3, 2, 4}));
  Status st = ctx->set_input_shape("x", {8, 2, 4});
  expect_error(st, ErrorCode::kInputOutsideProfile, {"[1, 4]", "profile 0"});
  KILN_ASSERT_OK(ctx->set_optimization_profile(1));
  EXPECT_EQ(ctx->optimization_profile(), 1);
  // The shapes set under profile 0 are forgotten (they may lie outside profile 1).
  EXPECT_EQ(ctx->tensor_shape("y").status().code(), ErrorCode::kDynamicShapeUnresolved);
  KILN_ASSERT_OK(ctx->set_input_shape("x", {8, 2, 4}));
  EXPECT_EQ(ctx->tensor_shape("y").value(), (std::vector<int64_t>{8, 8}));
  expect_error(ctx->set_input_shape("x", {3, 2, 4}), ErrorCode::kInputOutsideProfile,
               {"[5, 16]", "profile 1"});
  EXPECT_EQ(ctx->set_optimization_profile(2).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ctx->set_optimization_profile(-1).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ctx->optimization_profile(), 1);
  // Each context has its own selection.
  auto other = e->create_execution_context();
  EXPECT_EQ(other->optimization_profile(), 0);
  KILN_ASSERT_OK(other->set_input_shape("x", {3, 2, 4}));
}

// ---- specialisation ------------------------------------------------------------------------

TEST(Profiles, CloneGraphKeepsOrderAndSharesConstants) {
  auto g = reshape_graph();
  KILN_ASSERT_OK(test::prepare(*g));
  g->nodes()[0]->tactic = "some_tactic";
  auto c = ir::clone_graph(*g);
  EXPECT_EQ(ir::print_graph(*c), ir::print_graph(*g));
  ASSERT_EQ(c->values().size(), g->values().size());
  for (size_t i = 0; i < g->values().size(); ++i) {
    const ir::Value* a = g->values()[i].get();
    const ir::Value* b = c->values()[i].get();
    EXPECT_NE(a, b);
    EXPECT_EQ(a->name, b->name);
    EXPECT_EQ(a->shape.to_string(), b->shape.to_string());
    EXPECT_EQ(a->constant.get(), b->constant.get()) << a->name << ": constant data is shared";
  }
  ASSERT_EQ(c->nodes().size(), g->nodes().size());
  auto index_of = [](const ir::Graph& gr, const ir::Value* v) {
    for (size_t i = 0; i < gr.values().size(); ++i)
      if (gr.values()[i].get() == v) return static_cast<int>(i);
    return -1;
  };
  for (size_t i = 0; i < g->nodes().size(); ++i) {
    const ir::Node& a = *g->nodes()[i];
    const ir::Node& b = *c->nodes()[i];
    EXPECT_EQ(a.op_type, b.op_type);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.schema, b.schema);
    EXPECT_EQ(a.tactic, b.tactic);
    ASSERT_EQ(a.inputs.size(), b.inputs.size());
    for (size_t k = 0; k < a.inputs.size(); ++k)
      EXPECT_EQ(index_of(*g, a.inputs[k]), index_of(*c, b.inputs[k]));
    for (size_t k = 0; k < a.outputs.size(); ++k)
      EXPECT_EQ(index_of(*g, a.outputs[k]), index_of(*c, b.outputs[k]));
  }
  EXPECT_EQ(index_of(*c, c->inputs[0]), index_of(*g, g->inputs[0]));
  EXPECT_EQ(index_of(*c, c->outputs[0]), index_of(*g, g->outputs[0]));
  // The copy is independent: changing it leaves the original alone.
  c->inputs[0]->shape = Shape::from({2, 3, 4});
  EXPECT_EQ(g->inputs[0]->shape.to_string(), "Nx?x4");
  KILN_ASSERT_OK(ir::verify_graph(*c));
}

TEST(Profiles, SpecializeMakesAStaticGraph) {
  auto g = reshape_graph();
  KILN_ASSERT_OK(test::prepare(*g));
  const std::string before = ir::print_graph(*g);
  for (bool fold : {true, false}) {
    SCOPED_TRACE(fold ? "fold_shapes" : "no folding");
    auto s = builder::specialize(*g, {{"x", {2, 3, 4}}}, fold);
    KILN_ASSERT_OK(s.status());
    for (const auto& v : (*s)->values())
      EXPECT_TRUE(v->shape.is_static()) << v->name << " " << v->shape.to_string();
    EXPECT_EQ(*(*s)->outputs[0]->shape.concrete(), (std::vector<int64_t>{2, 12}));
    if (fold)
      EXPECT_EQ(test::op_types(**s), (std::vector<std::string>{"Add", "Reshape"}));
    else
      EXPECT_EQ(test::op_types(**s),
                (std::vector<std::string>{"Add", "Shape", "Gather", "Concat", "Reshape"}));
    KILN_ASSERT_OK(ir::verify_graph(**s));
    // And it runs: the Reshape reads the folded constant.
    auto out = test::run(**s, {test::iota_f32({2, 3, 4})});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].dims(), (std::vector<int64_t>{2, 12}));
  }
  EXPECT_EQ(ir::print_graph(*g), before) << "specialize changed the graph it copies";
  EXPECT_EQ(builder::specialize(*g, {{"x", {2, 3}}}, true).status().code(),
            ErrorCode::kInputShapeMismatch);
  Status fixed = builder::specialize(*g, {{"x", {2, 3, 5}}}, true).status();
  expect_error(fixed, ErrorCode::kInputShapeMismatch, {"'x'", "dimension 2"});
  EXPECT_EQ(builder::specialize(*g, {{"nosuch", {1}}}, true).status().code(),
            ErrorCode::kInputShapeMismatch);
  // The key of a specialisation: rank, then dims, per input.
  EXPECT_EQ(builder::shape_signature(*g, {{"x", {2, 3, 4}}}), (std::vector<int64_t>{3, 2, 3, 4}));
}

}  // namespace kiln
