// Channel padding of thin 16-bit convolution inputs (builder/channel_padding.h): structure
// of the rewrite and unchanged numbers on the CPU reference.
#include "builder/channel_padding.h"

#include <memory>
#include <tuple>

#include "test_util.h"

namespace kiln {
namespace {

using test::add_input;
using test::add_op;

/// x [n, C, 9, 9] f16 → Conv 3x3 stride 2 (C → k) → Relu → y; conv weights random f16.
/// The default batch makes the input just big enough to be padded (kMinPaddedPixels); the
/// default K = 6 has no stem-kernel variant.
std::unique_ptr<ir::Graph> stem(int64_t c, int64_t group = 1,
                                int64_t n = (builder::kMinPaddedPixels + 80) / 81, int64_t k = 6) {
  std::mt19937 rng(3);
  auto gp = std::make_unique<ir::Graph>();
  ir::Graph& g = *gp;
  g.opset_imports[""] = 17;
  ir::Value* x = add_input(g, "x", {n, c, 9, 9}, DataType::kF16);
  ir::Value* w = test::add_random_const(g, "w", DataType::kF16, {k, c / group, 3, 3}, rng);
  ir::Value* y = add_op(g, "Conv", {x, w}, "conv",
                        {{"pads", ir::Attribute::from_ints({1, 1, 1, 1})},
                         {"strides", ir::Attribute::from_ints({2, 2})},
                         {"group", ir::Attribute::from_int(group)}});
  g.outputs.push_back(add_op(g, "Relu", {y}, "y"));
  return gp;
}

TEST(ChannelPadding, ThreeChannelStemGetsAPadAndZeroWeightsAndTheSameOutput) {
  for (int64_t c : {1, 2, 3}) {
    auto gp = stem(c);
    ir::Graph& g = *gp;
    KILN_ASSERT_OK(test::prepare(g));
    auto inputs = test::random_inputs(g, 7);
    auto before = test::run(g, inputs);
    auto padded = builder::pad_conv_input_channels(g);
    KILN_ASSERT_OK(padded.status());
    EXPECT_EQ(*padded, 1);
    KILN_ASSERT_OK(test::prepare(g));
    EXPECT_EQ(test::op_types(g), (std::vector<std::string>{"Pad", "Conv", "Relu"}));
    const ir::Node& conv = *g.nodes()[1];
    EXPECT_EQ(*conv.inputs[0]->shape.concrete(), (std::vector<int64_t>{gp->inputs[0]->shape.dims[0].value, 4, 9, 9}));
    const HostTensor& w = *conv.inputs[1]->constant;
    ASSERT_EQ(w.dims(), (std::vector<int64_t>{6, 4, 3, 3}));
    for (int64_t k = 0; k < 6; ++k)
      for (int64_t ci = c; ci < 4; ++ci)
        for (int64_t s = 0; s < 9; ++s) EXPECT_EQ(w.get_f64((k * 4 + ci) * 9 + s), 0.0);
    // The extra products are exactly 0; only the GEMM's summation blocking may differ.
    test::expect_close(test::run(g, inputs), before, 1e-3, 1e-3);
  }
}

TEST(ChannelPadding, SmallInputsArePaddedWhereTheStemKernelHasAVariant) {
  // 3x3 stride 2 with K = 16 is a stem-kernel variant (cuda/stem_conv_variants.h): padded
  // at batch 2; K = 6 is not: left alone.
  for (auto [k, expect] : {std::pair<int64_t, int>{16, 1}, {6, 0}}) {
    auto gp = stem(3, 1, 2, k);
    ir::Graph& g = *gp;
    KILN_ASSERT_OK(test::prepare(g));
    auto padded = builder::pad_conv_input_channels(g);
    KILN_ASSERT_OK(padded.status());
    EXPECT_EQ(*padded, expect) << "K=" << k;
  }
}

TEST(ChannelPadding, LeavesOtherConvolutionsAlone) {
  for (auto [c, group, n] : {std::tuple<int64_t, int64_t, int64_t>{4, 1, 20000}, {8, 1, 20000}, {3, 3, 20000},
                             {3, 1, 2}}) {  // the last: too small to pay for the Pad
    auto gp = stem(c, group, n);
    ir::Graph& g = *gp;
    KILN_ASSERT_OK(test::prepare(g));
    auto padded = builder::pad_conv_input_channels(g);
    KILN_ASSERT_OK(padded.status());
    EXPECT_EQ(*padded, 0) << "C=" << c << " group=" << group << " N=" << n;
  }
  // f32 convolutions keep their layout and engines: no padding either.
  std::mt19937 rng(1);
  ir::Graph g;
  g.opset_imports[""] = 17;
  ir::Value* x = add_input(g, "x", {1, 3, 8, 8}, DataType::kF32);
  ir::Value* w = test::add_random_const(g, "w", DataType::kF32, {4, 3, 3, 3}, rng);
  g.outputs.push_back(add_op(g, "Conv", {x, w}, "conv"));
  KILN_ASSERT_OK(test::prepare(g));
  auto none = builder::pad_conv_input_channels(g);
  KILN_ASSERT_OK(none.status());
  EXPECT_EQ(*none, 0);
}

}  // namespace
}  // namespace kiln
