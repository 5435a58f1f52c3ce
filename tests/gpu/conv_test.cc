// Conv, ConvTranspose and kiln.FusedConv on the GPU (cuDNN, src/cuda/cudnn_conv.cc) against
// the CPU reference: kernel sizes 1/3/7, strides, grouped and depthwise, dilations,
// asymmetric pads, every auto_pad mode, 1-D and 3-D, ConvTranspose with output_padding /
// output_shape, FusedConv with each activation with and without a residual; f32 (the
// harness builds with TF32 off, so strict-FP32 engines are used), f16 and bf16.
#include <algorithm>
#include <cmath>

#include "gpu_test_util.h"

namespace kiln {
namespace {

using namespace gputest;
using Attrs = std::map<std::string, ir::Attribute>;

/// One convolution: input and weight dims, attributes, bias or not.
struct ConvShape {
  const char* label;
  std::vector<int64_t> x, w;
  Attrs attrs;
  bool bias = true;
};

// Bias length: Conv W is [M, C/g, k...], ConvTranspose W is [C, M/g, k...].
int64_t out_channels(const std::string& op, const ConvShape& s) {
  if (op == "ConvTranspose") {
    auto it = s.attrs.find("group");
    return s.w[1] * (it == s.attrs.end() ? 1 : it->second.i);
  }
  return s.w[0];
}

// Small value ranges keep f32 accumulation-order differences well inside 1e-5.
OpCase make_case(const std::string& op, DataType dt, const ConvShape& s) {
  OpCase c;
  c.op = op;
  c.label = std::string(s.label) + " " + dtype_name(dt);
  c.attrs = s.attrs;
  c.inputs.push_back({.dtype = dt, .dims = s.x, .lo = -1, .hi = 1});
  c.inputs.push_back({.dtype = dt, .dims = s.w, .constant = true, .lo = -0.5, .hi = 0.5});
  if (s.bias)
    c.inputs.push_back({.dtype = dt, .dims = {out_channels(op, s)}, .constant = true});
  return c;
}

// f32 sums of `terms` products differ between cuDNN and the CPU's OpenBLAS GEMM by summation
// order alone: about sqrt(terms) roundings of the partial sums (TF32 would be ~1e-3). The
// default 1e-5 absolute tolerance covers up to ~25 terms.
Check accumulation_check(DataType dt, int64_t terms) {
  Check c;
  if (dt == DataType::kF32) c.atol = std::max(1e-5, 2e-6 * std::sqrt(static_cast<double>(terms)));
  return c;
}

// Products summed per output element: (input channels per group) x kernel volume.
int64_t reduction_terms(const std::string& op, const ConvShape& s) {
  int64_t terms = op == "ConvTranspose" ? s.w[0] : s.w[1];
  for (size_t d = 2; d < s.w.size(); ++d) terms *= s.w[d];
  return terms;
}

void run_table(const std::string& op, const std::vector<ConvShape>& table,
               std::initializer_list<DataType> dtypes = {DataType::kF32, DataType::kF16}) {
  for (DataType dt : dtypes)
    for (const ConvShape& s : table)
      expect_matches_cpu(make_case(op, dt, s), accumulation_check(dt, reduction_terms(op, s)));
}

TEST(CudaConv, Conv2d) {
  KILN_REQUIRE_GPU();
  run_table("Conv", {
      {"1x1", {2, 16, 9, 9}, {8, 16, 1, 1}, {}},
      {"1x1 no bias stride 2", {1, 32, 8, 7}, {24, 32, 1, 1}, {{"strides", ints({2, 2})}}, false},
      {"3x3 s1 p1", {2, 8, 13, 13}, {16, 8, 3, 3}, {{"pads", ints({1, 1, 1, 1})}}},
      {"3x3 s2 p1", {1, 8, 14, 15}, {12, 8, 3, 3},
       {{"pads", ints({1, 1, 1, 1})}, {"strides", ints({2, 2})}}},
      {"7x7 s2 p3 (stem)", {1, 3, 33, 33}, {16, 3, 7, 7},
       {{"pads", ints({3, 3, 3, 3})}, {"strides", ints({2, 2})}}},
      {"kernel_shape attribute", {1, 4, 6, 6}, {4, 4, 2, 2}, {{"kernel_shape", ints({2, 2})}}},
      {"grouped", {2, 12, 10, 10}, {18, 4, 3, 3}, {{"group", i(3)}}},
      {"depthwise", {1, 16, 11, 11}, {16, 1, 3, 3},
       {{"group", i(16)}, {"pads", ints({1, 1, 1, 1})}}},
      {"depthwise multiplier 2", {1, 8, 9, 9}, {16, 1, 3, 3},
       {{"group", i(8)}, {"strides", ints({2, 2})}}, false},
      {"dilated", {1, 4, 17, 17}, {6, 4, 3, 3}, {{"dilations", ints({2, 3})}}},
      {"asymmetric pads", {1, 5, 10, 9}, {7, 5, 3, 2}, {{"pads", ints({0, 1, 2, 0})}}},
      {"wide channels", {2, 64, 14, 14}, {64, 64, 3, 3}, {{"pads", ints({1, 1, 1, 1})}}},
  });
}

TEST(CudaConv, AutoPad) {
  KILN_REQUIRE_GPU();
  run_table("Conv", {
      {"SAME_UPPER s2", {1, 4, 11, 10}, {5, 4, 3, 3},
       {{"auto_pad", s("SAME_UPPER")}, {"strides", ints({2, 2})}}},
      {"SAME_UPPER even kernel", {1, 4, 9, 9}, {5, 4, 4, 4}, {{"auto_pad", s("SAME_UPPER")}}},
      {"SAME_LOWER even kernel", {1, 4, 10, 11}, {5, 4, 4, 2}, {{"auto_pad", s("SAME_LOWER")}}},
      {"SAME_LOWER s3 dilated", {1, 3, 13, 13}, {4, 3, 3, 3},
       {{"auto_pad", s("SAME_LOWER")}, {"strides", ints({3, 3})}, {"dilations", ints({2, 2})}}},
      {"VALID s2", {1, 3, 9, 9}, {4, 3, 3, 3},
       {{"auto_pad", s("VALID")}, {"strides", ints({2, 2})}}},
  });
}

TEST(CudaConv, Conv1dAnd3d) {
  KILN_REQUIRE_GPU();
  run_table("Conv", {
      {"1-D s2 p2", {2, 6, 31}, {8, 6, 5}, {{"pads", ints({2, 2})}, {"strides", ints({2})}}},
      {"1-D dilated depthwise", {1, 8, 40}, {8, 1, 3},
       {{"group", i(8)}, {"dilations", ints({4})}, {"pads", ints({4, 4})}}},
      {"3-D p1", {1, 3, 7, 8, 9}, {4, 3, 3, 3, 3}, {{"pads", ints({1, 1, 1, 1, 1, 1})}}},
      {"3-D s2 asymmetric", {2, 4, 6, 7, 8}, {6, 4, 2, 3, 3},
       {{"strides", ints({2, 2, 2})}, {"pads", ints({0, 1, 1, 1, 0, 1})}}, false},
  });
}

TEST(CudaConv, Bf16) {
  KILN_REQUIRE_GPU();
  run_table("Conv", {
      {"3x3 s1 p1", {2, 8, 13, 13}, {16, 8, 3, 3}, {{"pads", ints({1, 1, 1, 1})}}},
      {"depthwise", {1, 16, 11, 11}, {16, 1, 3, 3}, {{"group", i(16)}}},
  }, {DataType::kBF16});
}

TEST(CudaConvTranspose, Shapes) {
  KILN_REQUIRE_GPU();
  run_table("ConvTranspose", {
      {"3x3", {1, 4, 5, 5}, {4, 6, 3, 3}, {}},
      {"s2 p1 output_padding 1", {1, 8, 7, 7}, {8, 4, 3, 3},
       {{"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})},
        {"output_padding", ints({1, 1})}}},
      {"s2 k2 (upsample)", {2, 16, 6, 5}, {16, 8, 2, 2}, {{"strides", ints({2, 2})}}, false},
      {"grouped s2", {1, 6, 5, 5}, {6, 2, 3, 3}, {{"group", i(3)}, {"strides", ints({2, 2})}}},
      {"dilated", {1, 2, 6, 6}, {2, 3, 3, 3}, {{"dilations", ints({2, 2})}}},
      {"asymmetric pads", {1, 3, 6, 7}, {3, 5, 3, 3},
       {{"strides", ints({2, 1})}, {"pads", ints({0, 1, 2, 0})}}},
      {"output_shape", {1, 3, 4, 4}, {3, 2, 3, 3},
       {{"strides", ints({3, 3})}, {"output_shape", ints({10, 10})}}},
      {"SAME_UPPER s2", {1, 3, 5, 5}, {3, 2, 3, 3},
       {{"strides", ints({2, 2})}, {"auto_pad", s("SAME_UPPER")}}},
      {"SAME_LOWER s2", {1, 3, 5, 6}, {3, 2, 4, 4},
       {{"strides", ints({2, 2})}, {"auto_pad", s("SAME_LOWER")}}},
      {"1-D s2 p1", {1, 4, 9}, {4, 3, 4}, {{"strides", ints({2})}, {"pads", ints({1, 1})}}},
      {"3-D s2", {1, 2, 3, 4, 4}, {2, 3, 3, 3, 3}, {{"strides", ints({2, 2, 2})}}},
  });
}

TEST(CudaFusedConv, EachActivationWithAndWithoutResidual) {
  KILN_REQUIRE_GPU();
  const std::vector<Activation> acts = fused_conv_activations();
  for (DataType dt : {DataType::kF32, DataType::kF16}) {
    for (const Activation& a : acts) {
      for (bool residual : {false, true}) {
        OpCase c;
        c.op = "FusedConv";
        c.domain = "kiln";
        c.label = std::string(a.name) + (residual ? " + residual " : " ") + dtype_name(dt);
        c.attrs = a.attrs;
        c.attrs["activation"] = s(a.name);
        c.attrs["pads"] = ints({1, 1, 1, 1});
        c.inputs.push_back({.dtype = dt, .dims = {2, 16, 10, 10}, .lo = -1, .hi = 1});
        c.inputs.push_back(
            {.dtype = dt, .dims = {32, 16, 3, 3}, .constant = true, .lo = -0.5, .hi = 0.5});
        c.inputs.push_back({.dtype = dt, .dims = {32}, .constant = true});
        if (residual) c.inputs.push_back({.dtype = dt, .dims = {2, 32, 10, 10}});
        expect_matches_cpu(c, accumulation_check(dt, 16 * 9));
      }
    }
  }
}

TEST(CudaFusedConv, ResidualWithoutBiasAndStrided) {
  KILN_REQUIRE_GPU();
  for (DataType dt : {DataType::kF32, DataType::kF16, DataType::kBF16}) {
    OpCase c;
    c.op = "FusedConv";
    c.domain = "kiln";
    c.label = dtype_name(dt);
    c.attrs = {{"activation", s("Relu")}, {"strides", ints({2, 2})}, {"group", i(2)}};
    c.inputs.push_back({.dtype = dt, .dims = {1, 8, 9, 9}, .lo = -1, .hi = 1});
    c.inputs.push_back(
        {.dtype = dt, .dims = {8, 4, 3, 3}, .constant = true, .lo = -0.5, .hi = 0.5});
    c.inputs.push_back({});  // no bias
    c.inputs.push_back({.dtype = dt, .dims = {1, 8, 4, 4}});
    expect_matches_cpu(c);
  }
}

}  // namespace
}  // namespace kiln
