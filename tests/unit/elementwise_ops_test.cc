// Elementwise op families (src/ops/unary_math.cc, activations.cc, compare_logic.cc,
// variadic.cc, cast.cc, bitwise.cc, binary_arith.cc): rules the ONNX conformance data does
// not pin down or that are easy to get subtly wrong, each run through the op table and the
// executor's run_node exactly as constant folding and the CPU backend run them.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "ops/elementwise.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace test;
constexpr OpRunner run_op{kOpset};

TEST(ElementwiseOps, RoundIsHalfToEven) {
  HostTensor x =
      make<float>(DataType::kF32, {8}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4f, -2.6f});
  auto r = run_op("Round", {&x});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  std::vector<float> want = {0.f, 2.f, 2.f, -0.f, -2.f, -2.f, 2.f, -3.f};
  EXPECT_EQ(values<float>(r.value()[0]), want);
  EXPECT_TRUE(std::signbit(r.value()[0].data<float>()[3]));  // -0.5 rounds to -0
}

TEST(ElementwiseOps, ModSignRules) {
  HostTensor a =
      make<int32_t>(DataType::kI32, {7}, {-4, 7, 5, 4, -7, 8, std::numeric_limits<int32_t>::min()});
  HostTensor b = make<int32_t>(DataType::kI32, {7}, {3, -3, 8, -2, 3, 0, -1});
  auto py = run_op("Mod", {&a, &b});
  ASSERT_TRUE(py.is_ok()) << py.status().to_string();
  // fmod=0: sign of the divisor (Python %); division by zero and INT_MIN % -1 give 0.
  EXPECT_EQ(values<int32_t>(py.value()[0]), (std::vector<int32_t>{2, -2, 5, 0, 2, 0, 0}));
  auto c = run_op("Mod", {&a, &b}, {{"fmod", ir::Attribute::from_int(1)}});
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(values<int32_t>(c.value()[0]), (std::vector<int32_t>{-1, 1, 5, 0, -1, 0, 0}));

  HostTensor fa = make<float>(DataType::kF32, {4}, {-4.5f, 4.5f, 3.0f, -0.0f});
  HostTensor fb = make<float>(DataType::kF32, {4}, {2.0f, -2.0f, -1.5f, 2.0f});
  auto f1 = run_op("Mod", {&fa, &fb}, {{"fmod", ir::Attribute::from_int(1)}});
  ASSERT_TRUE(f1.is_ok());
  EXPECT_EQ(values<float>(f1.value()[0]), (std::vector<float>{-0.5f, 0.5f, 0.0f, 0.0f}));
  auto f0 = run_op("Mod", {&fa, &fb});
  ASSERT_TRUE(f0.is_ok());
  std::vector<float> got = values<float>(f0.value()[0]);
  EXPECT_EQ(got, (std::vector<float>{1.5f, -1.5f, 0.0f, 0.0f}));
  EXPECT_TRUE(std::signbit(got[2]));   // zero takes the divisor's sign
  EXPECT_FALSE(std::signbit(got[3]));

  HostTensor bad = make<int64_t>(DataType::kI64, {1}, {1});
  auto st = run_op("Mod", {&a, &bad}, {{"fmod", ir::Attribute::from_int(2)}});
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.status().code(), ErrorCode::kOnnxBadAttribute);
}

TEST(ElementwiseOps, CastRoundsNarrowFloatsToNearestEven) {
  const float h = std::ldexp(1.0f, -11), b = std::ldexp(1.0f, -8);
  HostTensor x =
      make<float>(DataType::kF32, {6}, {1 + h, 1 + 3 * h, 65519.0f, 65520.0f, 1 + b, 1 + 3 * b});
  auto to_f16 = run_op("Cast", {&x}, {{"to", ir::Attribute::from_int(10)}});  // FLOAT16
  ASSERT_TRUE(to_f16.is_ok()) << to_f16.status().to_string();
  ASSERT_EQ(to_f16.value()[0].dtype(), DataType::kF16);
  std::vector<uint16_t> f16 = values<uint16_t>(to_f16.value()[0]);
  EXPECT_EQ(f16[0], 0x3c00);  // tie → even mantissa (1.0)
  EXPECT_EQ(f16[1], 0x3c02);  // tie → even mantissa (1 + 2^-9)
  EXPECT_EQ(f16[2], 0x7bff);  // 65504, the largest f16
  EXPECT_EQ(f16[3], 0x7c00);  // rounds past the largest f16 → inf
  auto to_bf16 = run_op("Cast", {&x}, {{"to", ir::Attribute::from_int(16)}});  // BFLOAT16
  ASSERT_TRUE(to_bf16.is_ok());
  std::vector<uint16_t> bf = values<uint16_t>(to_bf16.value()[0]);
  EXPECT_EQ(bf[4], 0x3f80);
  EXPECT_EQ(bf[5], 0x3f82);
}

TEST(ElementwiseOps, CastToFloat8SaturatesUnlessDisabled) {
  const float inf = std::numeric_limits<float>::infinity();
  HostTensor x = make<float>(DataType::kF32, {5}, {1000.0f, -1000.0f, inf, 0.3f, 448.0f});
  auto sat = run_op("Cast", {&x}, {{"to", ir::Attribute::from_int(17)}}, 19);  // FLOAT8E4M3FN
  ASSERT_TRUE(sat.is_ok()) << sat.status().to_string();
  std::vector<uint8_t> s = values<uint8_t>(sat.value()[0]);
  EXPECT_EQ(s[0], 0x7e);  // +448
  EXPECT_EQ(s[1], 0xfe);  // -448
  EXPECT_EQ(s[2], 0x7e);
  EXPECT_FLOAT_EQ(f8e4m3_to_f32(s[3]), 0.3125f);  // nearest e4m3 value to 0.3
  EXPECT_EQ(s[4], 0x7e);
  auto nosat =
      run_op("Cast", {&x},
             {{"to", ir::Attribute::from_int(17)}, {"saturate", ir::Attribute::from_int(0)}}, 19);
  ASSERT_TRUE(nosat.is_ok());
  std::vector<uint8_t> n = values<uint8_t>(nosat.value()[0]);
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(n[0])));
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(n[2])));
  EXPECT_EQ(n[4], 0x7e);
}

TEST(ElementwiseOps, CastRejectsTypesKilnLacks) {
  HostTensor x = make<float>(DataType::kF32, {1}, {1.0f});
  for (int64_t to : {8 /*STRING*/, 19 /*FLOAT8E5M2*/, 22 /*INT4*/}) {
    auto r = run_op("Cast", {&x}, {{"to", ir::Attribute::from_int(to)}}, 21);
    ASSERT_FALSE(r.is_ok()) << to;
    EXPECT_EQ(r.status().code(), ErrorCode::kOnnxUnsupportedType) << r.status().to_string();
  }
}

TEST(ElementwiseOps, CastFloatToIntTruncatesAndToBoolTestsNonZero) {
  HostTensor x = make<float>(DataType::kF32, {5}, {2.9f, -2.9f, 0.0f, -0.0f, std::nanf("")});
  auto i = run_op("Cast", {&x}, {{"to", ir::Attribute::from_int(6)}});  // INT32
  ASSERT_TRUE(i.is_ok());
  EXPECT_EQ(values<int32_t>(i.value()[0]), (std::vector<int32_t>{2, -2, 0, 0, 0}));
  auto b = run_op("Cast", {&x}, {{"to", ir::Attribute::from_int(9)}});  // BOOL
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(values<bool>(b.value()[0]), (std::vector<bool>{true, true, false, false, true}));
  HostTensor w = make<int32_t>(DataType::kI32, {2}, {200, -129});
  auto n = run_op("Cast", {&w}, {{"to", ir::Attribute::from_int(3)}});  // INT8 wraps
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(values<int8_t>(n.value()[0]), (std::vector<int8_t>{-56, 127}));
}

TEST(ElementwiseOps, WhereBroadcastsAllThreeInputs) {
  HostTensor c = make<uint8_t>(DataType::kBool, {2, 1}, {true, false});
  HostTensor x = make<int64_t>(DataType::kI64, {1, 3}, {1, 2, 3});
  HostTensor y = make<int64_t>(DataType::kI64, {}, {-7});
  auto r = run_op("Where", {&c, &x, &y});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r.value()[0].dims(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(values<int64_t>(r.value()[0]), (std::vector<int64_t>{1, 2, 3, -7, -7, -7}));

  HostTensor bad = make<int64_t>(DataType::kI64, {4}, {0, 0, 0, 0});
  auto e = run_op("Where", {&c, &x, &bad});
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), ErrorCode::kShapeMismatch);
}

// The row-wise broadcast loop must agree with the straightforward per-element index map for
// every pattern of broadcast dims, including merged runs and size-1 outputs.
TEST(ElementwiseOps, BroadcastRowsMatchNaiveIndexing) {
  std::mt19937 rng(1234);
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> cases = {
      {{2, 1, 3, 1}, {4, 1, 5}}, {{3, 4, 5}, {5}}, {{3, 4, 5}, {3, 1, 1}}, {{1}, {2, 3}},
      {{2, 3, 4, 5}, {2, 1, 4, 1}}, {{1, 1}, {1}}, {{6, 1}, {1, 7}}, {{}, {3, 2}}};
  for (const auto& [da, db] : cases) {
    HostTensor a = random_tensor(DataType::kF32, da, rng);
    HostTensor b = random_tensor(DataType::kF32, db, rng);
    auto r = run_op("Sub", {&a, &b});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    const HostTensor& out = r.value()[0];
    ops::BroadcastIndexer ia(da, out.dims()), ib(db, out.dims());
    for (int64_t i = 0; i < out.numel(); ++i)
      ASSERT_EQ(out.data<float>()[i], a.data<float>()[ia.index(i)] - b.data<float>()[ib.index(i)])
          << dims_to_string(da) << " - " << dims_to_string(db) << " at " << i;
  }
}

TEST(ElementwiseOps, PowMixedTypesAndIntegerExponents) {
  HostTensor base = make<int64_t>(DataType::kI64, {4}, {2, -3, 2, -1});
  HostTensor e = make<int64_t>(DataType::kI64, {4}, {10, 3, -1, -3});
  auto r = run_op("Pow", {&base, &e});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(values<int64_t>(r.value()[0]), (std::vector<int64_t>{1024, -27, 0, -1}));
  HostTensor fe = make<float>(DataType::kF32, {4}, {0.5f, 2.0f, 1.0f, 2.0f});
  auto m = run_op("Pow", {&base, &fe});  // int base, float exponent → int result (truncated)
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m.value()[0].dtype(), DataType::kI64);
  EXPECT_EQ(values<int64_t>(m.value()[0]), (std::vector<int64_t>{1, 9, 2, 1}));
}

TEST(ElementwiseOps, BitShiftOutOfRangeAmounts) {
  HostTensor x = make<uint8_t>(DataType::kU8, {4}, {1, 255, 16, 3});
  HostTensor s = make<uint8_t>(DataType::kU8, {4}, {7, 1, 8, 200});
  auto l = run_op("BitShift", {&x, &s}, {{"direction", ir::Attribute::from_string("LEFT")}});
  ASSERT_TRUE(l.is_ok()) << l.status().to_string();
  EXPECT_EQ(values<uint8_t>(l.value()[0]), (std::vector<uint8_t>{128, 254, 0, 0}));
  auto rr = run_op("BitShift", {&x, &s}, {{"direction", ir::Attribute::from_string("RIGHT")}});
  ASSERT_TRUE(rr.is_ok());
  EXPECT_EQ(values<uint8_t>(rr.value()[0]), (std::vector<uint8_t>{0, 127, 0, 0}));
  auto bad = run_op("BitShift", {&x, &s}, {{"direction", ir::Attribute::from_string("UP")}});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kOnnxBadAttribute);
}

TEST(ElementwiseOps, ClipBoundsByOpset) {
  HostTensor x = make<float>(DataType::kF32, {4}, {-5.0f, 0.5f, 5.0f, std::nanf("")});
  auto old =
      run_op("Clip", {&x},
             {{"min", ir::Attribute::from_float(-1)}, {"max", ir::Attribute::from_float(1)}}, 10);
  ASSERT_TRUE(old.is_ok()) << old.status().to_string();
  std::vector<float> o = values<float>(old.value()[0]);
  EXPECT_EQ(o[0], -1.0f);
  EXPECT_EQ(o[1], 0.5f);
  EXPECT_EQ(o[2], 1.0f);
  EXPECT_TRUE(std::isnan(o[3]));
  HostTensor lo = make<float>(DataType::kF32, {}, {2.0f}),
             hi = make<float>(DataType::kF32, {}, {1.0f});
  auto inv = run_op("Clip", {&x, &lo, &hi}, {}, 13);  // min > max: everything becomes max
  ASSERT_TRUE(inv.is_ok());
  EXPECT_EQ(values<float>(inv.value()[0])[0], 1.0f);
  EXPECT_EQ(values<float>(inv.value()[0])[1], 1.0f);
  auto only_max = run_op("Clip", {&x, nullptr, &hi}, {}, 13);
  ASSERT_TRUE(only_max.is_ok());
  EXPECT_EQ(values<float>(only_max.value()[0])[0], -5.0f);
}

TEST(ElementwiseOps, DropoutIsIdentityWithAllTrueMask) {
  HostTensor x = make<float>(DataType::kF32, {3}, {1.0f, -2.0f, 3.0f});
  HostTensor ratio = make<float>(DataType::kF32, {}, {0.7f});
  HostTensor off = make<uint8_t>(DataType::kBool, {}, {false}),
             on = make<uint8_t>(DataType::kBool, {}, {true});
  auto r = run_op("Dropout", {&x, &ratio, &off}, {}, 13, 2);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(values<float>(r.value()[0]), values<float>(x));
  EXPECT_EQ(r.value()[1].dtype(), DataType::kBool);
  EXPECT_EQ(values<bool>(r.value()[1]), (std::vector<bool>{true, true, true}));
  auto train = run_op("Dropout", {&x, &ratio, &on}, {}, 13, 2);
  ASSERT_FALSE(train.is_ok());
  EXPECT_EQ(train.status().code(), ErrorCode::kOnnxUnsupportedOp);
  auto old = run_op("Dropout", {&x}, {}, 7, 2);  // Dropout-7: mask typed like the data
  ASSERT_TRUE(old.is_ok());
  EXPECT_EQ(old.value()[1].dtype(), DataType::kF32);
  EXPECT_EQ(values<float>(old.value()[1]), (std::vector<float>{1.0f, 1.0f, 1.0f}));
}

TEST(ElementwiseOps, VariadicMeanOfF16RoundsOnce) {
  // 2049 is not representable in f16: a running f16 sum would round 1024 + 1025 to 2048 and
  // give 682.5 and 684 instead.
  HostTensor a = make<uint16_t>(DataType::kF16, {1}, {f32_to_f16(1024.0f)});
  HostTensor b = make<uint16_t>(DataType::kF16, {1}, {f32_to_f16(1025.0f)});
  HostTensor c = make<uint16_t>(DataType::kF16, {2}, {f32_to_f16(1.0f), f32_to_f16(4.0f)});
  auto r = run_op("Mean", {&a, &b, &c});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r.value()[0].dims(), (std::vector<int64_t>{2}));
  EXPECT_EQ(f16_to_f32(r.value()[0].data<uint16_t>()[0]), 683.5f);  // 2050 / 3 = 683.33 → 683.5
  EXPECT_EQ(f16_to_f32(r.value()[0].data<uint16_t>()[1]), 684.5f);  // 2053 / 3 = 684.33 → 684.5
  HostTensor n1 = make<float>(DataType::kF32, {2}, {1.0f, std::nanf("")});
  HostTensor n2 = make<float>(DataType::kF32, {2}, {std::nanf(""), 1.0f});
  auto mx = run_op("Max", {&n1, &n2});
  ASSERT_TRUE(mx.is_ok());
  EXPECT_TRUE(std::isnan(mx.value()[0].data<float>()[0]));
  EXPECT_TRUE(std::isnan(mx.value()[0].data<float>()[1]));
}

TEST(ElementwiseOps, MismatchedOperandTypesAreRejected) {
  HostTensor a = make<float>(DataType::kF32, {2}, {1.0f, 2.0f});
  HostTensor b = make<int64_t>(DataType::kI64, {2}, {1, 2});
  for (const char* op : {"Add", "Equal", "Max", "BitwiseAnd", "And"}) {
    auto r = run_op(op, {&a, &b}, {}, 18);
    ASSERT_FALSE(r.is_ok()) << op;
    EXPECT_EQ(r.status().code(), ErrorCode::kTypeMismatch) << op << ": " << r.status().to_string();
  }
}

// Before opset 7, binary ops broadcast B into A from attribute `axis`, PRelu's 1-D slope is
// per channel, Cast names its target as a string and Dropout's is_test=0 means training.
TEST(ElementwiseOps, LegacyOpsetForms) {
  HostTensor a(DataType::kF32, {2, 3, 2});
  HostTensor b = make<float>(DataType::kF32, {3}, {10.0f, 20.0f, 30.0f});
  Attrs bcast = {{"broadcast", ir::Attribute::from_int(1)}, {"axis", ir::Attribute::from_int(1)}};
  auto r = run_op("Add", {&a, &b}, bcast, 6);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(values<float>(r.value()[0]),
            (std::vector<float>{10, 10, 20, 20, 30, 30, 10, 10, 20, 20, 30, 30}));
  HostTensor b2(DataType::kF32, {2, 3});
  auto misfit = run_op("Add", {&a, &b2}, {{"broadcast", ir::Attribute::from_int(1)},
                                          {"axis", ir::Attribute::from_int(2)}}, 6);
  ASSERT_FALSE(misfit.is_ok());
  EXPECT_EQ(misfit.status().code(), ErrorCode::kShapeMismatch);

  HostTensor x = make<float>(DataType::kF32, {1, 2, 2}, {-1.0f, -1.0f, -1.0f, 2.0f});
  HostTensor slope = make<float>(DataType::kF32, {2}, {0.5f, 0.25f});
  auto p6 = run_op("PRelu", {&x, &slope}, {}, 6);
  ASSERT_TRUE(p6.is_ok()) << p6.status().to_string();
  EXPECT_EQ(values<float>(p6.value()[0]), (std::vector<float>{-0.5f, -0.5f, -0.25f, 2.0f}));
  auto p9 = run_op("PRelu", {&x, &slope}, {}, 9);  // numpy alignment: slope along the last dim
  ASSERT_TRUE(p9.is_ok());
  EXPECT_EQ(values<float>(p9.value()[0]), (std::vector<float>{-0.5f, -0.25f, -0.5f, 2.0f}));

  auto c1 = run_op("Cast", {&b}, {{"to", ir::Attribute::from_string("INT32")}}, 1);
  ASSERT_TRUE(c1.is_ok()) << c1.status().to_string();
  EXPECT_EQ(values<int32_t>(c1.value()[0]), (std::vector<int32_t>{10, 20, 30}));

  auto d6 = run_op("Dropout", {&b}, {}, 6);
  ASSERT_FALSE(d6.is_ok());
  EXPECT_EQ(d6.status().code(), ErrorCode::kOnnxUnsupportedOp);
  auto d6_test = run_op("Dropout", {&b}, {{"is_test", ir::Attribute::from_int(1)}}, 6);
  ASSERT_TRUE(d6_test.is_ok()) << d6_test.status().to_string();
  EXPECT_EQ(values<float>(d6_test.value()[0]), values<float>(b));
}

}  // namespace
}  // namespace kiln
