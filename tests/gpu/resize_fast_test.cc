// The 4-D Resize fast path (resize_hw_kernel in src/cuda/kernels/resize.cu: bilinear and
// nearest over H and W) against the CPU reference, run directly on the kernel with every
// combination of NCHW / NHWC input and output: integer and fractional scales (2, 8, 0.6,
// 37 -> 100 by sizes), every coordinate_transformation_mode it takes, every nearest_mode,
// exclude_outside, f32 / f16 / bf16 / f64 and integer nearest, vector widths from the row
// length, misaligned buffers; and the cases that stay on the general kernel.
#include <random>

#include "direct_kernel.h"
#include "gpu_test_util.h"

namespace kiln::gputest {
namespace {

using Dims = std::vector<int64_t>;
using Attrs = std::map<std::string, ir::Attribute>;
constexpr cuda::Layout kNchw = cuda::Layout::kRowMajor, kNhwc = cuda::Layout::kNhwc;

/// Input and output layouts of one run.
struct Layouts {
  cuda::Layout in, out;
  const char* name;  ///< as the tactic spells it
};
const Layouts kLayouts[] = {{kNchw, kNchw, "nchw"},
                            {kNhwc, kNhwc, "nhwc"},
                            {kNhwc, kNchw, "nhwc_to_nchw"},
                            {kNchw, kNhwc, "nchw_to_nhwc"}};

/// One resize: input dims and either scales or sizes for all four axes.
struct Shape4 {
  const char* label;
  Dims x;
  std::vector<float> scales;
  Dims sizes;
};

const std::vector<Shape4>& shapes() {
  static const std::vector<Shape4> t = {
      {"x2 odd", {2, 8, 9, 11}, {1, 1, 2, 2}, {}},
      {"x8 C=21 (DeepLabV3 head)", {1, 21, 8, 8}, {1, 1, 8, 8}, {}},
      {"37 -> 100 by sizes", {1, 3, 37, 37}, {}, {1, 3, 100, 100}},
      {"down 0.6 x 1.5, C=16", {2, 16, 10, 7}, {1, 1, 0.6f, 1.5f}, {}},
      {"33x65 -> 65x33, C=64", {1, 64, 33, 65}, {}, {1, 64, 65, 33}},
  };
  return t;
}

HostTensor random_input(DataType dt, const Dims& dims, uint64_t seed) {
  HostTensor t(dt, dims);
  std::mt19937_64 rng(seed);
  const bool real = dtype_is_float(dt);
  std::uniform_real_distribution<double> u(real ? -2 : 0, real ? 2 : 200);
  for (int64_t k = 0; k < t.numel(); ++k) {
    if (real) t.set_f64(k, u(rng));
    else t.set_i64(k, static_cast<int64_t>(u(rng)));
  }
  return t;
}

/// Resize-19 inputs X, roi (omitted), scales or sizes.
std::vector<DirectIn> resize_inputs(const HostTensor& x, cuda::Layout layout, const Shape4& s) {
  std::vector<DirectIn> ins = {{.value = x, .layout = layout}, {}};
  if (s.sizes.empty()) {
    ins.push_back({.value = HostTensor::from_vector<float>(kF32, {4}, s.scales), .constant = true});
  } else {
    ins.push_back({});
    ins.push_back({.value = i64s(s.sizes), .constant = true});
  }
  return ins;
}

/// The tactic the fast path reports: units of the dtype size (16 bytes for nearest over
/// NHWC channel runs of 16 bytes), the widest vector of up to 8 units and 16 bytes that
/// divides an output row (NCHW output: W units; NHWC output: W * C).
std::string fast_tactic(bool linear, DataType dt, const Layouts& l, int64_t c, int64_t out_w) {
  const size_t es = dtype_size(dt);
  const bool wide_units = !linear && l.in == kNhwc && l.out == kNhwc && (c * es) % 16 == 0;
  const size_t unit = wide_units ? 16 : es;
  const int64_t row = l.out == kNhwc ? out_w * (c * static_cast<int64_t>(es / unit)) : out_w;
  int v = 1;
  if (unit < 16)
    while (v < 8 && static_cast<size_t>(v) * 2 * unit <= 16 && row % (v * 2) == 0) v *= 2;
  return std::string(linear ? "kiln:resize_linear2d_" : "kiln:resize_nearest2d_") + l.name +
         "_v" + std::to_string(v) + (linear ? "" : "x" + std::to_string(unit * 8));
}

/// Runs the Resize on the kernel directly and compares with the CPU; `tactic` "" = any,
/// "fast" = the fast path's expected tactic, else that exact tactic.
void expect_resize(const Attrs& attrs, DataType dt, const Shape4& s, const Layouts& l,
                   uint64_t seed, std::string tactic = "fast", size_t misalign = 0,
                   int opset = 19) {
  SCOPED_TRACE(std::string(s.label) + " " + dtype_name(dt) + " " + l.name);
  const HostTensor x = random_input(dt, s.x, seed);
  const std::vector<DirectIn> ins = resize_inputs(x, l.in, s);
  auto ref = cpu_reference("Resize", opset, attrs, ins);
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  auto got = run_direct("Resize", opset, attrs, ins, dt, ref->dims(), l.out, misalign);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  const auto mode = attrs.find("mode");
  const bool linear = mode != attrs.end() && mode->second.s == "linear";
  if (tactic == "fast") tactic = fast_tactic(linear, dt, l, s.x[1], ref->dims()[3]);
  if (!tactic.empty()) EXPECT_EQ(got->tactic, tactic);
  auto [atol, rtol] = default_tolerance(dt);
  EXPECT_EQ(compare_tensors(*ref, got->y, atol, rtol), "") << "tactic " << got->tactic;
}

const char* const kCoordModes[] = {"half_pixel",         "half_pixel_symmetric",
                                   "pytorch_half_pixel", "align_corners",
                                   "asymmetric",         "tf_half_pixel_for_nn"};

TEST(ResizeFastGpu, Bilinear) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (const char* cm : kCoordModes)
    for (const Layouts& l : kLayouts)
      for (const Shape4& shape : shapes()) {
        SCOPED_TRACE(cm);
        const Attrs a = {{"mode", s("linear")}, {"coordinate_transformation_mode", s(cm)}};
        for (DataType dt : {kF32, kF16, kBF16}) expect_resize(a, dt, shape, l, seed++);
      }
  // f64 (two units per vector) and exclude_outside (renormalised edge weights).
  for (const Layouts& l : kLayouts) {
    expect_resize({{"mode", s("linear")}}, kF64, shapes()[0], l, seed++);
    for (const char* cm : {"half_pixel", "tf_half_pixel_for_nn"})
      expect_resize({{"mode", s("linear")},
                     {"exclude_outside", i(1)},
                     {"coordinate_transformation_mode", s(cm)}},
                    kF32, shapes()[3], l, seed++);
  }
}

TEST(ResizeFastGpu, Nearest) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 100;
  for (const char* nm : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"})
    for (const char* cm : kCoordModes)
      for (const Layouts& l : kLayouts) {
        SCOPED_TRACE(std::string(nm) + " " + cm);
        const Attrs a = {{"mode", s("nearest")},
                         {"nearest_mode", s(nm)},
                         {"coordinate_transformation_mode", s(cm)}};
        for (size_t k : {size_t{0}, size_t{2}, size_t{3}})
          expect_resize(a, kF32, shapes()[k], l, seed++);
      }
  // Other unit sizes: f16 with C = 8 / 16 / 64 (16-byte NHWC units), bytes, int64.
  for (const Layouts& l : kLayouts) {
    for (const Shape4& shape : shapes())
      for (DataType dt : {kF16, kU8, kI64})
        expect_resize({{"mode", s("nearest")}}, dt, shape, l, seed++);
    // exclude_outside zeroes taps mapped outside the input.
    expect_resize({{"mode", s("nearest")},
                   {"exclude_outside", i(1)},
                   {"nearest_mode", s("ceil")},
                   {"coordinate_transformation_mode", s("tf_half_pixel_for_nn")}},
                  kF32, {"exclude_outside", {1, 3, 4, 4}, {1, 1, 1.7f, 1.7f}, {}}, l, seed++);
  }
  // Resize-10 (asymmetric, legacy rounding).
  const Shape4 legacy = {"Resize-10", {1, 2, 3, 5}, {1, 1, 2, 0.6f}, {}};
  const HostTensor x = random_input(kF32, legacy.x, seed++);
  const std::vector<DirectIn> ins = {
      {.value = x, .layout = kNhwc},
      {.value = HostTensor::from_vector<float>(kF32, {4}, legacy.scales), .constant = true}};
  for (const char* mode : {"nearest", "linear"}) {
    const Attrs a = {{"mode", s(mode)}};
    auto ref = cpu_reference("Resize", 10, a, ins);
    ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
    auto got = run_direct("Resize", 10, a, ins, kF32, ref->dims(), kNchw);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    EXPECT_EQ(got->tactic.rfind(std::string("kiln:resize_") + mode + "2d_nhwc_to_nchw", 0), 0u)
        << got->tactic;
    EXPECT_EQ(compare_tensors(*ref, got->y, 1e-5, 1e-5), "") << mode;
  }
}

TEST(ResizeFastGpu, MisalignedBuffersTakeOneUnitPerThread) {
  KILN_REQUIRE_GPU();
  for (const Layouts& l : kLayouts)
    for (DataType dt : {kF32, kF16}) {
      expect_resize({{"mode", s("linear")}}, dt, shapes()[1], l, 7, "fast", dtype_size(dt));
      expect_resize({{"mode", s("nearest")}}, dt, shapes()[4], l, 8, "fast", dtype_size(dt));
    }
}

TEST(ResizeFastGpu, GeneralKernelCases) {
  KILN_REQUIRE_GPU();
  const Shape4& s2 = shapes()[0];
  for (const Layouts& l : {kLayouts[0], kLayouts[1]}) {
    expect_resize({{"mode", s("cubic")}}, kF32, s2, l, 11, "kiln:resize_cubic");
    expect_resize({{"mode", s("linear")}, {"antialias", i(1)}}, kF32,
                  {"antialias down", {1, 4, 16, 12}, {1, 1, 0.5f, 0.3f}, {}}, l, 12,
                  "kiln:resize_linear");
    // Resizing C as well.
    expect_resize({{"mode", s("linear")}}, kF32, {"C resized", {1, 4, 5, 6}, {1, 2, 2, 2}, {}}, l,
                  13, "kiln:resize_linear");
  }
  // tf_crop_and_resize (extrapolation) stays on the general kernel.
  const Attrs crop = {{"mode", s("linear")},
                      {"coordinate_transformation_mode", s("tf_crop_and_resize")},
                      {"extrapolation_value", f(-7.5f)}};
  const HostTensor x = random_input(kF32, {1, 2, 6, 7}, 15);
  const std::vector<DirectIn> ins = {
      {.value = x},
      {.value = HostTensor::from_vector<float>(kF32, {8}, {0, 0, -0.3f, 0.4f, 1, 1, 0.9f, 1.6f}),
       .constant = true},
      {},
      {.value = i64s({1, 2, 6, 5}), .constant = true}};
  auto ref = cpu_reference("Resize", 19, crop, ins);
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  auto got = run_direct("Resize", 19, crop, ins, kF32, ref->dims(), kNchw);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ(got->tactic, "kiln:resize_linear");
  EXPECT_EQ(compare_tensors(*ref, got->y, 1e-5, 1e-5), "");
}

}  // namespace
}  // namespace kiln::gputest
