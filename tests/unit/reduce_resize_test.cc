// Reductions, softmax, Resize, control flow and quantization (src/ops/reduce.cc, softmax.cc,
// resize.cc, control_flow.cc, quantize.cc): hand-computed cases for rules that are easy to
// get subtly wrong, run through the op table and the executor exactly as the CPU backend
// runs them.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "test_util.h"

namespace kiln {
namespace {

using namespace test;
// Resize-19 (the newest Resize) unless a case names another opset.
constexpr OpRunner run_op{19};

// ---- Resize ------------------------------------------------------------------------------

/// 2x2 image [[1,2],[3,4]]: every bilinear output is 1 + wx + 2*wy, with wx, wy the
/// clamped fractional source coordinates along each axis.
std::vector<float> bilinear_2x2(const std::vector<float>& w) {
  std::vector<float> out;
  for (float wy : w)
    for (float wx : w) out.push_back(1 + wx + 2 * wy);
  return out;
}

TEST(Resize, HalfPixelBilinearMatchesHandComputed) {
  HostTensor x = f32({1, 1, 2, 2}, {1, 2, 3, 4});
  HostTensor scales = f32({4}, {1, 1, 2, 2});
  auto r =
      run_op("Resize", {&x, nullptr, &scales}, {{"mode", ir::Attribute::from_string("linear")}});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->at(0).dims(), (std::vector<int64_t>{1, 1, 4, 4}));
  // Source x = (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to the edges.
  expect_near(values<float>(r->at(0)), bilinear_2x2({0, 0.25f, 0.75f, 1}));
}

TEST(Resize, AlignCornersBilinearUsesSizes) {
  HostTensor x = f32({1, 1, 2, 2}, {1, 2, 3, 4});
  HostTensor sizes = i64({4}, {1, 1, 3, 3});
  auto r =
      run_op("Resize", {&x, nullptr, nullptr, &sizes},
             {{"mode", ir::Attribute::from_string("linear")},
              {"coordinate_transformation_mode", ir::Attribute::from_string("align_corners")}});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  // Source x = o * (2 - 1) / (3 - 1): corners map exactly onto corners.
  expect_near(values<float>(r->at(0)), bilinear_2x2({0, 0.5f, 1}));
}

TEST(Resize, NearestRoundingModes) {
  HostTensor x = f32({1, 2}, {10, 20});
  HostTensor scales = f32({2}, {1, 4});
  // Asymmetric source x = o / 4 = 0, .25, .5, .75, 1, 1.25, 1.5, 1.75 (clamped to index 1).
  const std::map<std::string, std::vector<float>> want = {
      {"round_prefer_floor", {10, 10, 10, 20, 20, 20, 20, 20}},
      {"round_prefer_ceil", {10, 10, 20, 20, 20, 20, 20, 20}},
      {"floor", {10, 10, 10, 10, 20, 20, 20, 20}},
      {"ceil", {10, 20, 20, 20, 20, 20, 20, 20}}};
  for (const auto& [mode, expected] : want) {
    auto r = run_op("Resize", {&x, nullptr, &scales},
                    {{"mode", ir::Attribute::from_string("nearest")},
                     {"coordinate_transformation_mode", ir::Attribute::from_string("asymmetric")},
                     {"nearest_mode", ir::Attribute::from_string(mode)}});
    ASSERT_TRUE(r.is_ok()) << mode << ": " << r.status().to_string();
    EXPECT_EQ(values<float>(r->at(0)), expected) << mode;
  }
}

TEST(Resize, TfCropAndResizeExtrapolates) {
  HostTensor x = f32({1, 3}, {1, 2, 3});
  HostTensor roi = f32({4}, {0, -0.5f, 1, 1.5f});
  HostTensor sizes = i64({2}, {1, 5});
  auto r =
      run_op("Resize", {&x, &roi, nullptr, &sizes},
             {{"mode", ir::Attribute::from_string("linear")},
              {"coordinate_transformation_mode", ir::Attribute::from_string("tf_crop_and_resize")},
              {"extrapolation_value", ir::Attribute::from_float(-7)}});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  // Source x = -0.5*2 + o * 2 * 2 / 4 = -1, 0, 1, 2, 3: the ends fall outside [0, 2].
  expect_near(values<float>(r->at(0)), {-7, 1, 2, 3, -7});
}

TEST(Resize, RejectsUnknownModeAtImport) {
  HostTensor x = f32({1, 2}, {1, 2});
  HostTensor scales = f32({2}, {1, 2});
  auto r =
      run_op("Resize", {&x, nullptr, &scales}, {{"mode", ir::Attribute::from_string("lanczos")}});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kOnnxBadAttribute);
}

// ---- Reductions and softmax --------------------------------------------------------------

TEST(Reduce, EmptySetGivesIdentityElements) {
  HostTensor x(DataType::kF32, {2, 0, 3});
  HostTensor axes = i64({1}, {1});
  const float inf = std::numeric_limits<float>::infinity();
  const std::map<std::string, float> want = {
      {"ReduceSum", 0}, {"ReduceProd", 1},      {"ReduceMax", -inf},      {"ReduceMin", inf},
      {"ReduceL2", 0},  {"ReduceLogSum", -inf}, {"ReduceLogSumExp", -inf}};
  for (const auto& [op, v] : want) {
    auto r = run_op(op, {&x, &axes}, {{"keepdims", ir::Attribute::from_int(0)}}, 18);
    ASSERT_TRUE(r.is_ok()) << op << ": " << r.status().to_string();
    EXPECT_EQ(r->at(0).dims(), (std::vector<int64_t>{2, 3})) << op;
    for (float got : values<float>(r->at(0))) EXPECT_EQ(got, v) << op;
  }
}

TEST(Reduce, AxesInputEmptyWithNoopIsIdentity) {
  HostTensor x = f32({2, 2}, {1, -2, 3, 4});
  HostTensor axes = i64({0}, {});
  auto r =
      run_op("ReduceL1", {&x, &axes}, {{"noop_with_empty_axes", ir::Attribute::from_int(1)}}, 18);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(values<float>(r->at(0)), (std::vector<float>{1, -2, 3, 4}));
  auto all = run_op("ReduceL1", {&x, &axes}, {}, 18);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  EXPECT_EQ(values<float>(all->at(0)), (std::vector<float>{10}));
}

TEST(Reduce, RepeatedAxisIsAnError) {
  HostTensor x = f32({2, 2}, {1, 2, 3, 4});
  auto r = run_op("ReduceSum", {&x}, {{"axes", ir::Attribute::from_ints({1, -1})}}, 11);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kBadAxis);
}

TEST(ArgMax, SelectLastIndexBreaksTiesAtTheEnd) {
  HostTensor x = f32({2, 3}, {5, 1, 5, 2, 2, 0});
  auto first = run_op("ArgMax", {&x}, {{"axis", ir::Attribute::from_int(1)}}, 13);
  auto last = run_op(
      "ArgMin", {&x},
      {{"axis", ir::Attribute::from_int(1)}, {"select_last_index", ir::Attribute::from_int(1)}},
      13);
  ASSERT_TRUE(first.is_ok() && last.is_ok());
  EXPECT_EQ(values<int64_t>(first->at(0)), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(values<int64_t>(last->at(0)), (std::vector<int64_t>{1, 2}));
}

TEST(Softmax, StableOnLargeInputs) {
  HostTensor x = f32({2, 3}, {1000, 1001, 1002, -1e30f, 0, -1e30f});
  auto sm = run_op("Softmax", {&x}, {}, 13);
  auto lsm = run_op("LogSoftmax", {&x}, {}, 13);
  ASSERT_TRUE(sm.is_ok() && lsm.is_ok());
  // softmax([0,1,2]) = e^k / (1 + e + e^2).
  expect_near(values<float>(sm->at(0)), {0.09003057f, 0.24472847f, 0.66524096f, 0, 1, 0});
  const std::vector<float> l = values<float>(lsm->at(0));
  expect_near({l[0], l[1], l[2], l[4]}, {-2.40760596f, -1.40760596f, -0.40760596f, 0}, 1e-4f);
}

TEST(Softmax, Opset11CoercesToTwoDimensions) {
  // axis=1 on 1x2x2: one row of 4 values, normalised together.
  HostTensor x = f32({1, 2, 2}, {0, 0, 0, 0});
  auto r = run_op("Softmax", {&x}, {{"axis", ir::Attribute::from_int(1)}}, 11);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  expect_near(values<float>(r->at(0)), {0.25f, 0.25f, 0.25f, 0.25f});
  auto r13 = run_op("Softmax", {&x}, {{"axis", ir::Attribute::from_int(1)}}, 13);
  ASSERT_TRUE(r13.is_ok());
  expect_near(values<float>(r13->at(0)), {0.5f, 0.5f, 0.5f, 0.5f});
}

// ---- Control flow ------------------------------------------------------------------------

TEST(Loop, CarriedCounterAndScanOutput) {
  // body(iter, cond, c) = (cond, c + iter, c + iter): final c = 10 + 0+1+2+3+4.
  auto body = std::make_shared<ir::Graph>();
  ir::Value* iter = body->add_value("iter", DataType::kI64, Shape());
  ir::Value* cond = body->add_value("cond", DataType::kBool, Shape());
  ir::Value* c = body->add_value("c", DataType::kI64, Shape());
  body->inputs = {iter, cond, c};
  ir::Value* next = body->add_value("next");
  body->add_node("Add", "add", {c, iter}, {next}, "", 13);
  body->outputs = {cond, next, next};

  ir::Graph g;
  ir::Value* m = g.add_value("M", DataType::kI64, Shape());
  ir::Value* c0 = g.add_value("c0", DataType::kI64, Shape());
  g.inputs = {m, c0};
  ir::Value* go = g.add_constant("go", HostTensor::from_vector<uint8_t>(DataType::kBool, {}, {1}));
  ir::Value* final_c = g.add_value("final_c");
  ir::Value* trace = g.add_value("trace");
  ir::Node* loop = g.add_node("Loop", "loop", {m, go, c0}, {final_c, trace}, "", 13);
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kGraph;
  a.g = body;
  loop->attrs["body"] = a;
  g.outputs = {final_c, trace};
  ASSERT_TRUE(resolve_schemas(g).is_ok());
  Status st = infer_graph(g);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(final_c->dtype, DataType::kI64);
  EXPECT_EQ(trace->dtype, DataType::kI64);

  auto r = runtime::run_graph(g, {i64({}, {5}), i64({}, {10})});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(values<int64_t>(r->at(0)), (std::vector<int64_t>{20}));
  EXPECT_EQ(r->at(1).dims(), (std::vector<int64_t>{5}));
  EXPECT_EQ(values<int64_t>(r->at(1)), (std::vector<int64_t>{10, 11, 13, 16, 20}));

  auto zero = runtime::run_graph(g, {i64({}, {0}), i64({}, {10})});
  ASSERT_TRUE(zero.is_ok()) << zero.status().to_string();
  EXPECT_EQ(values<int64_t>(zero->at(0)), (std::vector<int64_t>{10}));
  EXPECT_EQ(zero->at(1).dims(), (std::vector<int64_t>{0}));
}

TEST(Loop, TripCountOnlyWithScanOutput) {
  // No cond input and no carried values: inputs (M, ""), body (iter, cond) → (cond, iter).
  auto body = std::make_shared<ir::Graph>();
  ir::Value* iter = body->add_value("iter", DataType::kI64, Shape());
  ir::Value* cond = body->add_value("cond", DataType::kBool, Shape());
  body->inputs = {iter, cond};
  body->outputs = {cond, iter};
  ir::Graph g;
  ir::Value* m = g.add_value("M", DataType::kI64, Shape());
  g.inputs = {m};
  ir::Value* trace = g.add_value("trace");
  ir::Node* loop = g.add_node("Loop", "loop", {m, nullptr}, {trace}, "", 16);
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kGraph;
  a.g = body;
  loop->attrs["body"] = a;
  g.outputs = {trace};
  Status st = resolve_schemas(g);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  ASSERT_TRUE(infer_graph(g).is_ok());
  auto r = runtime::run_graph(g, {i64({}, {3})});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(values<int64_t>(r->at(0)), (std::vector<int64_t>{0, 1, 2}));
}

// ---- Quantization ------------------------------------------------------------------------

TEST(QuantizeLinear, RoundsHalfToEvenAndSaturates) {
  HostTensor x = f32({6}, {0.5f, 1.5f, 2.5f, -0.5f, 300, -300});
  HostTensor scale = f32({}, {1});
  HostTensor zp = HostTensor::from_vector<int8_t>(DataType::kI8, {}, {0});
  auto r = run_op("QuantizeLinear", {&x, &scale, &zp}, {}, 13);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(values<int8_t>(r->at(0)), (std::vector<int8_t>{0, 2, 2, 0, 127, -128}));
}

TEST(DequantizeLinear, PerAxisScaleAndZeroPoint) {
  HostTensor x = HostTensor::from_vector<uint8_t>(DataType::kU8, {2, 2}, {10, 20, 10, 20});
  HostTensor scale = f32({2}, {0.5f, 2});
  HostTensor zp = HostTensor::from_vector<uint8_t>(DataType::kU8, {2}, {10, 0});
  auto r =
      run_op("DequantizeLinear", {&x, &scale, &zp}, {{"axis", ir::Attribute::from_int(0)}}, 13);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  expect_near(values<float>(r->at(0)), {0, 5, 20, 40});
}

}  // namespace
}  // namespace kiln
