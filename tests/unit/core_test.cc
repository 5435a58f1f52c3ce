// Core value types: narrow-float conversions, shapes, broadcasting, HostTensor casts.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/half.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace kiln {

TEST(Half, F16RoundTripAndRounding) {
  // Every f16 bit pattern except NaNs converts to f32 and back exactly.
  for (uint32_t b = 0; b < 0x10000; ++b) {
    uint16_t h = static_cast<uint16_t>(b);
    float f = f16_to_f32(h);
    if (std::isnan(f)) { EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f)))); continue; }
    EXPECT_EQ(f32_to_f16(f), h) << std::hex << b;
  }
  // Ties round to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // rounds to inf
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -26)), 0x0000);  // below half of it
}

TEST(Half, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bits_f32(0x3f808000u)), 0x3f80);  // tie → even
  EXPECT_EQ(f32_to_bf16(bits_f32(0x3f818000u)), 0x3f82);  // tie → even (up)
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(Half, F8E4M3MatchesSpec) {
  // Every finite e4m3fn value round-trips; max is 448; saturation clamps.
  for (uint32_t b = 0; b < 256; ++b) {
    float f = f8e4m3_to_f32(static_cast<uint8_t>(b));
    if (std::isnan(f)) continue;
    if (b == 0x80) { EXPECT_EQ(f32_to_f8e4m3(f), 0x80); continue; }  // -0
    EXPECT_EQ(f32_to_f8e4m3(f), b) << b;
  }
  EXPECT_EQ(f8e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(f32_to_f8e4m3(1000.0f), 0x7e);
  EXPECT_EQ(f32_to_f8e4m3(1000.0f, /*saturate=*/false), 0x7f);
  EXPECT_EQ(f32_to_f8e4m3(-1000.0f), 0xfe);
}

TEST(Shape, ParseAndPrint) {
  EXPECT_EQ(parse_dims("1x3x224x224"), (std::vector<int64_t>{1, 3, 224, 224}));
  EXPECT_EQ(parse_dims("2,5"), (std::vector<int64_t>{2, 5}));
  EXPECT_FALSE(parse_dims("1xx3").has_value());
  EXPECT_FALSE(parse_dims("1x-3").has_value());
  Shape s({Dim::sym("batch"), Dim(3), Dim::unknown()});
  EXPECT_EQ(s.to_string(), "batchx3x?");
  EXPECT_FALSE(s.is_static());
  EXPECT_EQ(Shape().to_string(), "scalar");
}

TEST(Shape, BroadcastKeepsSymbols) {
  Shape a({Dim::sym("batch"), Dim(1), Dim(4)});
  Shape b({Dim(3), Dim(1)});
  auto c = broadcast_shapes(a, b);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->to_string(), "batchx3x4");
  EXPECT_FALSE(broadcast_shapes(Shape::from({2, 3}), Shape::from({4, 3})).has_value());
  EXPECT_EQ(broadcast_dims({5, 1, 3}, {4, 1}), (std::vector<int64_t>{5, 4, 3}));
  EXPECT_EQ(normalize_axis(-1, 4), 3);
  EXPECT_FALSE(normalize_axis(4, 4).has_value());
}

TEST(HostTensor, CastFollowsOnnxSemantics) {
  auto t = HostTensor::from_vector<float>(DataType::kF32, {4}, {-1.7f, 2.5f, 300.0f, NAN});
  auto i = t.cast(DataType::kI32);
  EXPECT_EQ(i.to_i64_vector(), (std::vector<int64_t>{-1, 2, 300, 0}));  // truncation toward zero
  auto h = t.cast(DataType::kF16).cast(DataType::kF32).to_f32_vector();
  EXPECT_FLOAT_EQ(h[1], 2.5f);
  EXPECT_TRUE(std::isnan(h[3]));
  auto b = t.cast(DataType::kBool);
  EXPECT_EQ(b.to_i64_vector(), (std::vector<int64_t>{1, 1, 1, 1}));
  auto big = HostTensor::from_vector<int64_t>(DataType::kI64, {1}, {int64_t{1} << 40});
  EXPECT_EQ(big.cast(DataType::kF64).get_f64(0), std::ldexp(1.0, 40));
}

}  // namespace kiln
