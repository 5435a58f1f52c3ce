// Tensor-manipulation op families (src/ops/shape_ops.cc, layout_ops.cc, pad.cc,
// indexing.cc, scatter.cc, generators.cc, sort_scan.cc): build-time shape inference with
// symbolic dims through infer_graph on hand-built graphs, and kernel edge cases the ONNX
// conformance data does not pin down, run through the op table and the executor's run_node
// exactly as constant folding and the CPU backend run them.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

namespace kiln {
namespace {

using namespace test;
// Opset 18 (Pad with an axes input) unless a case names another opset.
constexpr OpRunner run_op{18};
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

ir::Value* sym_input(ir::Graph& g, const std::string& name, std::vector<Dim> dims) {
  ir::Value* v = g.add_value(name, DataType::kF32, Shape(std::move(dims)));
  g.inputs.push_back(v);
  return v;
}

// ---- build-time shape inference -------------------------------------------------------

// The BERT/ResNet export pattern x.view(x.size(0), -1): Shape → Gather → Unsqueeze →
// Concat → Reshape must resolve to [batch, 12] before any folding, since the batch is
// symbolic and Shape cannot be folded.
TEST(TensorOpsInfer, ShapeGatherConcatReshapeKeepsSymbolicBatch) {
  ir::Graph g;
  ir::Value* x = sym_input(g, "x", {Dim::sym("batch"), Dim(3), Dim(4)});
  ir::Value* shape = add_op(g, "Shape", {x}, "shape");
  ir::Value* b = add_op(g, "Gather", {shape, g.add_constant("zero", i64({}, {0}))}, "b");
  ir::Value* b1 = add_op(g, "Unsqueeze", {b, g.add_constant("axes", i64({0}))}, "b1");
  ir::Value* target = add_op(g, "Concat", {b1, g.add_constant("minus1", i64({-1}))}, "target",
                             {{"axis", ir::Attribute::from_int(0)}});
  ir::Value* y = add_op(g, "Reshape", {x, target}, "y");
  g.outputs.push_back(y);
  KILN_ASSERT_OK(resolve_schemas(g));
  KILN_ASSERT_OK(infer_graph(g));
  EXPECT_EQ(shape->shape.to_string(), "3");
  EXPECT_EQ(b->shape.to_string(), "scalar");
  EXPECT_EQ(b1->shape.to_string(), "1");
  EXPECT_EQ(target->shape.to_string(), "2");
  EXPECT_EQ(y->dtype, DataType::kF32);
  EXPECT_EQ(y->shape.to_string(), "batchx12");
}

// Shape arithmetic on a static part (Mul of two gathered dims) and a symbolic part: the
// target [batch, seq, 2*3] gives [batch, seq, 6]; then Flatten keeps batch at axis 1.
TEST(TensorOpsInfer, ShapeArithmeticAndFlatten) {
  ir::Graph g;
  ir::Value* x = sym_input(g, "x", {Dim::sym("batch"), Dim::sym("seq"), Dim(2), Dim(3)});
  ir::Value* shape = add_op(g, "Shape", {x}, "shape");
  ir::Value* head = add_op(
      g, "Slice", {shape, g.add_constant("s0", i64({0})), g.add_constant("e2", i64({2}))}, "head");
  ir::Value* h2 = add_op(g, "Gather", {shape, g.add_constant("two", i64({1}, {2}))}, "h2");
  ir::Value* h3 = add_op(g, "Gather", {shape, g.add_constant("three", i64({1}, {3}))}, "h3");
  ir::Value* prod = add_op(g, "Mul", {h2, h3}, "prod");
  ir::Value* target =
      add_op(g, "Concat", {head, prod}, "target", {{"axis", ir::Attribute::from_int(0)}});
  ir::Value* y = add_op(g, "Reshape", {x, target}, "y");
  ir::Value* flat = add_op(g, "Flatten", {y}, "flat", {{"axis", ir::Attribute::from_int(1)}});
  KILN_ASSERT_OK(resolve_schemas(g));
  KILN_ASSERT_OK(infer_graph(g));
  EXPECT_EQ(y->shape.to_string(), "batchxseqx6");
  // seq*6 has no name: unknown, but the rank and batch survive.
  EXPECT_EQ(flat->shape.to_string(), "batchx?");
}

TEST(TensorOpsInfer, SymbolicDimsThroughLayoutOps) {
  ir::Graph g;
  ir::Value* a = sym_input(g, "a", {Dim::sym("n"), Dim(3), Dim::sym("w")});
  ir::Value* c = sym_input(g, "c", {Dim::sym("n"), Dim(5), Dim::unknown()});
  ir::Value* t = add_op(g, "Transpose", {a}, "t", {{"perm", ir::Attribute::from_ints({2, 0, 1})}});
  ir::Value* cat = add_op(g, "Concat", {a, c}, "cat", {{"axis", ir::Attribute::from_int(1)}});
  ir::Value* unsq = add_op(g, "Unsqueeze", {a, g.add_constant("ax", i64({0, -1}))}, "unsq");
  ir::Value* sq = add_op(g, "Squeeze", {unsq, g.add_constant("ax2", i64({0}))}, "sq");
  // Slicing [0, INT64_MAX) keeps a symbolic dim; Shape of it is 1-D of known length.
  ir::Value* sl = add_op(g, "Slice",
                         {a, g.add_constant("st", i64({0})), g.add_constant("en", i64({kMax})),
                          g.add_constant("axs", i64({2}))},
                         "sl");
  ir::Value* shp = add_op(g, "Shape", {sl}, "shp");
  KILN_ASSERT_OK(resolve_schemas(g));
  KILN_ASSERT_OK(infer_graph(g));
  EXPECT_EQ(t->shape.to_string(), "wxnx3");
  EXPECT_EQ(cat->shape.to_string(), "nx8xw");
  EXPECT_EQ(unsq->shape.to_string(), "1xnx3xwx1");
  EXPECT_EQ(sq->shape.to_string(), "nx3xwx1");
  EXPECT_EQ(sl->shape.to_string(), "nx3xw");
  EXPECT_EQ(shp->shape.to_string(), "3");
}

// ConstantOfShape / Expand fed by a Shape keep the symbols of the source tensor.
TEST(TensorOpsInfer, ExpandAndConstantOfShapeFromShape) {
  ir::Graph g;
  ir::Value* x = sym_input(g, "x", {Dim::sym("batch"), Dim(1), Dim(4)});
  ir::Value* small = sym_input(g, "s", {Dim(1), Dim(4)});
  ir::Value* shape = add_op(g, "Shape", {x}, "shape");
  ir::Value* zeros = add_op(g, "ConstantOfShape", {shape}, "zeros");
  ir::Value* ex = add_op(g, "Expand", {small, shape}, "ex");
  KILN_ASSERT_OK(resolve_schemas(g));
  KILN_ASSERT_OK(infer_graph(g));
  EXPECT_EQ(zeros->shape.to_string(), "batchx1x4");
  EXPECT_EQ(zeros->dtype, DataType::kF32);
  EXPECT_EQ(ex->shape.to_string(), "batchx1x4");
}

TEST(TensorOpsInfer, KnownBadShapesFailAtBuildTimeWithLocation) {
  ir::Graph g;
  ir::Value* a = sym_input(g, "a", {Dim::sym("n"), Dim(3)});
  ir::Value* b = sym_input(g, "b", {Dim::sym("n"), Dim(4), Dim(1)});
  ir::Value* out = g.add_value("out");
  g.add_node("Concat", "bad_concat", {a, b}, {out}, "", 17)->attrs["axis"] =
      ir::Attribute::from_int(0);
  KILN_ASSERT_OK(resolve_schemas(g));
  Status st = infer_graph(g);
  EXPECT_EQ(st.code(), ErrorCode::kShapeMismatch);
  EXPECT_NE(st.to_string().find("bad_concat"), std::string::npos) << st.to_string();
}

// ---- kernels --------------------------------------------------------------------------

TEST(TensorOpsKernels, ReshapeAliasesInputAndResolvesZeroAndMinusOne) {
  HostTensor x = iota_f32({2, 3, 4});
  HostTensor shape = i64({0, -1});
  auto r = run_op("Reshape", {&x, &shape});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r.value()[0].dims(), (std::vector<int64_t>{2, 12}));
  EXPECT_EQ(r.value()[0].raw(), x.raw());  // a view, no copy
  HostTensor bad = i64({5, -1});
  auto e = run_op("Reshape", {&x, &bad});
  EXPECT_EQ(e.status().code(), ErrorCode::kShapeMismatch);
  // allowzero=1: 0 is a real zero-sized dim.
  HostTensor empty(DataType::kF32, {0, 3});
  HostTensor z = i64({3, 0});
  auto az = run_op("Reshape", {&empty, &z}, {{"allowzero", ir::Attribute::from_int(1)}});
  ASSERT_TRUE(az.is_ok()) << az.status().to_string();
  EXPECT_EQ(az.value()[0].dims(), (std::vector<int64_t>{3, 0}));
}

TEST(TensorOpsKernels, SliceClampsNegativeAndOverRangeBounds) {
  HostTensor x = iota_f32({10});
  struct Case {
    int64_t start, end, step;
    std::vector<float> want;
  };
  const std::vector<Case> cases = {
      {-3, kMax, 1, {7, 8, 9}},        // negative start, INT64_MAX end
      {20, 30, 1, {}},                 // start past the end → empty
      {-100, 2, 1, {0, 1}},            // start before the beginning clamps to 0
      {kMax, kMin, -3, {9, 6, 3, 0}},  // reverse from the end with a stride
      {8, -100, -1, {8, 7, 6, 5, 4, 3, 2, 1, 0}},
      {1, 9, kMax, {1}},  // huge step: one element
      {5, 2, kMin, {5}},  // most negative step
      {3, 3, 1, {}},
  };
  for (const auto& c : cases) {
    HostTensor s = i64({c.start}), e = i64({c.end}), ax = i64({0}), st = i64({c.step});
    auto r = run_op("Slice", {&x, &s, &e, &ax, &st});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(values<float>(r.value()[0]), c.want) << c.start << ":" << c.end << ":" << c.step;
  }
  HostTensor s = i64({0}), e = i64({1}), ax = i64({0}), zero = i64({0});
  EXPECT_EQ(run_op("Slice", {&x, &s, &e, &ax, &zero}).status().code(), ErrorCode::kInvalidArgument);
  HostTensor ax5 = i64({5});
  EXPECT_EQ(run_op("Slice", {&x, &s, &e, &ax5}).status().code(), ErrorCode::kBadAxis);
}

TEST(TensorOpsKernels, SliceOfMatrixMatchesNumpy) {
  // x[1:-1, ::-2] of a 4x5 iota (numpy: [[9, 7, 5], [14, 12, 10]]), axes given negative.
  HostTensor x = iota_f32({4, 5});
  HostTensor s = i64({1, -1}), e = i64({-1, kMin}), ax = i64({-2, -1}), st = i64({1, -2});
  auto r = run_op("Slice", {&x, &s, &e, &ax, &st});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r.value()[0].dims(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(values<float>(r.value()[0]), (std::vector<float>{9, 7, 5, 14, 12, 10}));
}

TEST(TensorOpsKernels, OutOfRangeIndicesAreErrorsNotCrashes) {
  HostTensor data = iota_f32({5, 3});
  HostTensor neg = i64({2}, {-1, -5});
  auto ok = run_op("Gather", {&data, &neg});
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(values<float>(ok.value()[0]), (std::vector<float>{12, 13, 14, 0, 1, 2}));

  for (int64_t bad : std::vector<int64_t>{5, -6, kMax, kMin}) {
    HostTensor idx = i64({2}, {0, bad});
    auto r = run_op("Gather", {&data, &idx});
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.status().to_string().find("node_Gather"), std::string::npos)
        << r.status().to_string();
  }
  HostTensor ge_idx = i64({1, 3}, {0, 7, 1});
  EXPECT_EQ(run_op("GatherElements", {&data, &ge_idx}).status().code(),
            ErrorCode::kInvalidArgument);
  HostTensor nd_idx = i64({1, 2}, {4, 3});
  EXPECT_EQ(run_op("GatherND", {&data, &nd_idx}).status().code(), ErrorCode::kInvalidArgument);
  HostTensor upd = f32({1, 3}, {1, 2, 3});
  HostTensor sc_idx = i64({1, 3}, {0, 1, -6});
  EXPECT_EQ(run_op("ScatterElements", {&data, &sc_idx, &upd}).status().code(),
            ErrorCode::kInvalidArgument);
  HostTensor snd_idx = i64({1, 1}, {9});
  EXPECT_EQ(run_op("ScatterND", {&data, &snd_idx, &upd}).status().code(),
            ErrorCode::kInvalidArgument);
  HostTensor lens = i64({3}, {1, 6, 2});
  EXPECT_EQ(run_op("ReverseSequence", {&data, &lens},
                   {{"batch_axis", ir::Attribute::from_int(1)},
                    {"time_axis", ir::Attribute::from_int(0)}})
                .status()
                .code(),
            ErrorCode::kInvalidArgument);
}

// Seeded random slices of a 3-D iota against the spec's wording, enumerated index by index:
// negative starts/ends count from the end, then clamp to [0, d] (forward) or start to
// [0, d-1] and end to [-1, d-1] (backward).
TEST(TensorOpsKernels, RandomSlicesMatchSpecEnumeration) {
  std::mt19937 rng(7);
  const std::vector<int64_t> picks = {-9, -4, -3, -1, 0, 1, 2, 3, 5, 9, kMax, kMin};
  for (int iter = 0; iter < 300; ++iter) {
    auto pick = [&](uint32_t n) { return static_cast<int64_t>(rng() % n); };
    std::vector<int64_t> dims = {pick(4), pick(5) + 1, pick(4) + 1};
    HostTensor x = iota_f32(dims);
    std::vector<int64_t> starts, ends, axes, steps;
    std::vector<std::vector<int64_t>> keep(3);
    for (int64_t a = 0; a < 3; ++a) {
      for (int64_t i = 0; i < dims[a]; ++i) keep[a].push_back(i);
      if (rng() % 2) continue;
      int64_t b = picks[rng() % picks.size()], e = picks[rng() % picks.size()];
      int64_t st = static_cast<int64_t>(rng() % 7) - 3;
      if (st == 0) st = rng() % 2 ? kMax : kMin;
      starts.push_back(b), ends.push_back(e), axes.push_back(a - 3), steps.push_back(st);
      const int64_t d = dims[a];
      int64_t s0 = b < 0 ? b + d : b, e0 = e < 0 ? e + d : e;
      keep[a].clear();
      if (st > 0) {
        s0 = std::clamp<int64_t>(s0, 0, d), e0 = std::clamp<int64_t>(e0, 0, d);
        for (int64_t i = s0; i<e0; i = i> kMax - st ? kMax : i + st) keep[a].push_back(i);
      } else if (d > 0) {
        s0 = std::clamp<int64_t>(s0, 0, d - 1), e0 = std::clamp<int64_t>(e0, -1, d - 1);
        for (int64_t i = s0; i > e0; i = i < kMin - st ? kMin : i + st) keep[a].push_back(i);
      }
    }
    HostTensor hs = i64(starts), he = i64(ends), ha = i64(axes), hst = i64(steps);
    auto r = run_op("Slice", {&x, &hs, &he, &ha, &hst});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    std::vector<float> want;
    for (int64_t i : keep[0])
      for (int64_t j : keep[1])
        for (int64_t k : keep[2])
          want.push_back(static_cast<float>((i * dims[1] + j) * dims[2] + k));
    EXPECT_EQ(values<float>(r.value()[0]), want) << "iteration " << iter;
  }
}

// Random indices, in and out of range: every run either matches a direct computation or
// fails with kInvalidArgument.
TEST(TensorOpsKernels, RandomIndicesEitherMatchOrFailCleanly) {
  std::mt19937 rng(11);
  HostTensor data = iota_f32({4, 3});
  for (int iter = 0; iter < 200; ++iter) {
    const int64_t axis = rng() % 2, dim = data.dims()[axis];
    std::vector<int64_t> idx(4);
    bool in_range = true;
    for (auto& v : idx) {
      v = static_cast<int64_t>(rng() % (4 * dim + 1)) - 2 * dim;
      in_range &= v >= -dim && v < dim;
    }
    HostTensor hi = i64({2, 2}, idx);
    auto g = run_op("GatherElements", {&data, &hi}, {{"axis", ir::Attribute::from_int(axis)}});
    if (!in_range) {
      EXPECT_EQ(g.status().code(), ErrorCode::kInvalidArgument);
      continue;
    }
    ASSERT_TRUE(g.is_ok()) << g.status().to_string();
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        int64_t v = idx[i * 2 + j] < 0 ? idx[i * 2 + j] + dim : idx[i * 2 + j];
        int64_t row = axis == 0 ? v : i, col = axis == 0 ? j : v;
        EXPECT_EQ(g.value()[0].data<float>()[i * 2 + j], static_cast<float>(row * 3 + col));
      }
  }
}

TEST(TensorOpsKernels, ScatterNDReductionsApplyInIndexOrder) {
  HostTensor data = f32({4}, {1, 2, 3, 4});
  HostTensor idx = i64({3, 1}, {1, 1, -1});
  HostTensor upd = f32({3}, {10, 5, 7});
  auto add =
      run_op("ScatterND", {&data, &idx, &upd}, {{"reduction", ir::Attribute::from_string("add")}});
  ASSERT_TRUE(add.is_ok()) << add.status().to_string();
  EXPECT_EQ(values<float>(add.value()[0]), (std::vector<float>{1, 17, 3, 11}));
  auto mx =
      run_op("ScatterND", {&data, &idx, &upd}, {{"reduction", ir::Attribute::from_string("max")}});
  ASSERT_TRUE(mx.is_ok());
  EXPECT_EQ(values<float>(mx.value()[0]), (std::vector<float>{1, 10, 3, 7}));
  EXPECT_EQ(values<float>(data), (std::vector<float>{1, 2, 3, 4}));  // input untouched
}

TEST(TensorOpsKernels, SplitUnevenAndOmittedOutputs) {
  HostTensor x = iota_f32({7});
  auto r = run_op("Split", {&x}, {{"num_outputs", ir::Attribute::from_int(3)}}, 18, 3);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(values<float>(r.value()[0]), (std::vector<float>{0, 1, 2}));
  EXPECT_EQ(values<float>(r.value()[1]), (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(values<float>(r.value()[2]), (std::vector<float>{6}));
  HostTensor parts = i64({2, 5});
  EXPECT_EQ(run_op("Split", {&x, &parts}, {}, 13, 2).value()[1].numel(), 5);
  HostTensor wrong = i64({2, 4});
  EXPECT_EQ(run_op("Split", {&x, &wrong}, {}, 13, 2).status().code(), ErrorCode::kShapeMismatch);
}

TEST(TensorOpsKernels, PadModesMatchNumpy) {
  HostTensor x = f32({3}, {1, 2, 3});
  HostTensor pads = i64({7, 6});
  // numpy.pad([1,2,3], (7,6), mode) — pads wider than the data repeat periodically.
  const std::map<std::string, std::vector<float>> want = {
      {"reflect", {2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2, 1}},
      {"wrap", {3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3}},
      {"edge", {1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 3, 3, 3, 3, 3, 3}},
  };
  for (const auto& [mode, v] : want) {
    auto r = run_op("Pad", {&x, &pads}, {{"mode", ir::Attribute::from_string(mode)}});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(values<float>(r.value()[0]), v) << mode;
  }
  // Negative pads crop, then constant padding applies; axes (opset 18) selects axes.
  HostTensor m = iota_f32({2, 4});
  HostTensor crop = i64({-1, 2});
  HostTensor axes = i64({1});
  HostTensor value = f32({}, {9});
  auto r = run_op("Pad", {&m, &crop, &value, &axes});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r.value()[0].dims(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(values<float>(r.value()[0]), (std::vector<float>{1, 2, 3, 9, 9, 5, 6, 7, 9, 9}));
}

TEST(TensorOpsKernels, TopKTiesGoToLowerIndex) {
  HostTensor x = f32({2, 4}, {1, 3, 3, 2, 5, 5, 5, 5});
  HostTensor k = i64({3});
  auto r = run_op("TopK", {&x, &k}, {}, 18, 2);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(values<float>(r.value()[0]), (std::vector<float>{3, 3, 2, 5, 5, 5}));
  EXPECT_EQ(values<int64_t>(r.value()[1]), (std::vector<int64_t>{1, 2, 3, 0, 1, 2}));
  auto s = run_op("TopK", {&x, &k}, {{"largest", ir::Attribute::from_int(0)}}, 18, 2);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(values<int64_t>(s.value()[1]), (std::vector<int64_t>{0, 3, 1, 0, 1, 2}));
  HostTensor big = i64({5});
  EXPECT_EQ(run_op("TopK", {&x, &big}, {}, 18, 2).status().code(), ErrorCode::kInvalidArgument);
}

TEST(TensorOpsKernels, UniqueUnsortedKeepsFirstOccurrenceOrder) {
  HostTensor x = f32({6}, {2, 1, 2, 3, 1, 2});
  auto r = run_op("Unique", {&x}, {{"sorted", ir::Attribute::from_int(0)}}, 18, 4);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(values<float>(r.value()[0]), (std::vector<float>{2, 1, 3}));
  EXPECT_EQ(values<int64_t>(r.value()[1]), (std::vector<int64_t>{0, 1, 3}));
  EXPECT_EQ(values<int64_t>(r.value()[2]), (std::vector<int64_t>{0, 1, 0, 2, 1, 0}));
  EXPECT_EQ(values<int64_t>(r.value()[3]), (std::vector<int64_t>{3, 2, 1}));
}

TEST(TensorOpsKernels, DataMovementWorksForEveryElementSize) {
  // Transpose is dtype-agnostic: check 1-, 2-, 4- and 8-byte elements against the same
  // permutation of an iota.
  for (DataType dt :
       {DataType::kU8, DataType::kF16, DataType::kI32, DataType::kF64, DataType::kBool}) {
    HostTensor x(dt, {2, 3, 2});
    for (int64_t i = 0; i < x.numel(); ++i) x.set_f64(i, dt == DataType::kBool ? i % 2 : i);
    auto r = run_op("Transpose", {&x}, {{"perm", ir::Attribute::from_ints({1, 2, 0})}});
    ASSERT_TRUE(r.is_ok()) << dtype_name(dt) << ": " << r.status().to_string();
    const HostTensor& y = r.value()[0];
    ASSERT_EQ(y.dims(), (std::vector<int64_t>{3, 2, 2}));
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 2; ++k)
        for (int64_t i = 0; i < 2; ++i)
          EXPECT_EQ(y.get_f64((j * 2 + k) * 2 + i), x.get_f64((i * 3 + j) * 2 + k))
              << dtype_name(dt);
  }
}

}  // namespace
}  // namespace kiln
