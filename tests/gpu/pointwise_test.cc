// Pointwise ops on the GPU (src/cuda/kernels/unary.cu, binary.cu) against the CPU reference:
// every unary math op and activation (each attribute mode) in f32/f16/bf16/f64 and the
// integer types they take, special values (NaN, ±inf, halves for Round), Clip in each bound
// form, Cast/CastLike across all dtype pairs (incl. NaN/inf/out-of-range to integers),
// binary ops over numpy broadcast patterns (flat vector path, scalar operand, odd sizes,
// strided ranks 2..6, empty), comparisons/logic/bitwise, Where, PRelu, the variadic ops
// (incl. more inputs than one launch takes), legacy opset-6 broadcasting, and channels-last
// operands / rank limits on the kernels directly.
#include <cuda_runtime.h>

#include <cmath>
#include <limits>
#include <random>

#include "cuda/kernel.h"
#include "direct_kernel.h"
#include "gpu_test_util.h"

namespace kiln {
namespace {

using namespace gputest;
using Dims = std::vector<int64_t>;
using Attrs = std::map<std::string, ir::Attribute>;

const DataType kAllTypes[] = {kF32, kF16, kBF16, kF64, kI8,  kU8,  kI16,
                              kU16, kI32, kU32,  kI64, kU64, kBool};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

std::string dims_label(const Dims& d) {
  std::string s = "[";
  for (size_t k = 0; k < d.size(); ++k) s += (k ? "," : "") + std::to_string(d[k]);
  return s + "]";
}

/// A 1-D tensor of `v` converted to dt.
HostTensor values(DataType dt, const std::vector<double>& v) {
  HostTensor t(dt, {static_cast<int64_t>(v.size())});
  for (size_t k = 0; k < v.size(); ++k) t.set_f64(static_cast<int64_t>(k), v[k]);
  return t;
}

bool is_unsigned(DataType dt) { return dt == kU8 || dt == kU16 || dt == kU32 || dt == kU64; }

/// Seeded values from {-2, ..., 2} ({0, ..., 4} unsigned; exact in every dtype): many equal
/// pairs for comparisons.
HostTensor tied(DataType dt, const Dims& dims, uint64_t seed) {
  HostTensor t(dt, dims);
  std::mt19937_64 rng(seed);
  for (int64_t k = 0; k < t.numel(); ++k) {
    const double v = static_cast<double>(rng() % 5) - (is_unsigned(dt) ? 0.0 : 2.0);
    t.set_f64(k, dt == kBool ? std::fabs(v) > 1 : v);
  }
  return t;
}

In rand_in(DataType dt, Dims dims, double lo = -2, double hi = 2) {
  return In{.dtype = dt, .dims = std::move(dims), .lo = lo, .hi = hi};
}
In value_in(HostTensor v, bool constant = false) {
  return In{.dtype = v.dtype(), .dims = v.dims(), .constant = constant, .value = std::move(v)};
}

/// Cast's `to` code (onnx.TensorProto.DataType) of a kiln dtype.
int onnx_code(DataType dt) {
  switch (dt) {
    case DataType::kF32: return 1;
    case DataType::kU8: return 2;
    case DataType::kI8: return 3;
    case DataType::kU16: return 4;
    case DataType::kI16: return 5;
    case DataType::kI32: return 6;
    case DataType::kI64: return 7;
    case DataType::kBool: return 9;
    case DataType::kF16: return 10;
    case DataType::kF64: return 11;
    case DataType::kU32: return 12;
    case DataType::kU64: return 13;
    case DataType::kBF16: return 16;
    default: return 0;
  }
}

// ---- unary float ops and activations --------------------------------------------------------

struct UnaryCase {
  std::string op;
  int opset;
  Attrs attrs;
  double lo = -2, hi = 2;  ///< input range inside the op's domain
};

const std::vector<UnaryCase>& unary_float_cases() {
  static const std::vector<UnaryCase> t = {
      {"Abs", 13, {}},
      {"Neg", 13, {}},
      {"Sign", 13, {}},
      {"Exp", 13, {}},
      {"Log", 13, {}, 0.05, 4},
      {"Sqrt", 13, {}, 0, 4},
      {"Reciprocal", 13, {}, 0.25, 3},
      {"Floor", 13, {}, -5, 5},
      {"Ceil", 13, {}, -5, 5},
      {"Round", 11, {}, -5, 5},
      {"Sin", 7, {}, -6, 6},
      {"Cos", 7, {}, -6, 6},
      {"Tan", 7, {}, -1.2, 1.2},
      {"Asin", 7, {}, -0.95, 0.95},
      {"Acos", 7, {}, -0.95, 0.95},
      {"Atan", 7, {}, -5, 5},
      {"Sinh", 9, {}},
      {"Cosh", 9, {}},
      {"Asinh", 9, {}, -5, 5},
      {"Acosh", 9, {}, 1.05, 5},
      {"Atanh", 9, {}, -0.9, 0.9},
      {"Erf", 13, {}},
      {"Relu", 14, {}},
      {"LeakyRelu", 16, {}},
      {"LeakyRelu", 16, {{"alpha", f(0.3f)}}},
      {"ThresholdedRelu", 10, {}},
      {"ThresholdedRelu", 10, {{"alpha", f(-0.5f)}}},
      {"Elu", 6, {}},
      {"Elu", 6, {{"alpha", f(0.4f)}}},
      {"Selu", 6, {}},
      {"Selu", 6, {{"alpha", f(2.0f)}, {"gamma", f(0.5f)}}},
      {"Celu", 12, {}},
      {"Celu", 12, {{"alpha", f(2.5f)}}},
      {"Sigmoid", 13, {}, -20, 20},
      {"HardSigmoid", 6, {}, -4, 4},
      {"HardSigmoid", 6, {{"alpha", f(0.5f)}, {"beta", f(0.1f)}}, -4, 4},
      {"HardSwish", 14, {}, -5, 5},
      {"Softplus", 1, {}, -20, 20},
      {"Softsign", 1, {}},
      {"Tanh", 13, {}, -5, 5},
      {"Mish", 18, {}, -5, 5},
      {"Gelu", 20, {}, -4, 4},
      {"Gelu", 20, {{"approximate", s("tanh")}}, -4, 4},
      {"Swish", 24, {}, -6, 6},
      {"Swish", 24, {{"alpha", f(0.7f)}}, -6, 6},
      {"Shrink", 9, {}},
      {"Shrink", 9, {{"lambd", f(0.7f)}, {"bias", f(0.2f)}}},
  };
  return t;
}

TEST(CudaPointwise, UnaryFloat) {
  KILN_REQUIRE_GPU();
  const std::vector<std::pair<DataType, Dims>> shapes = {
      {kF32, {1}}, {kF32, {7}}, {kF32, {1000003}}, {kF16, {7}},
      {kF16, {3, 1365}}, {kBF16, {129}}, {kF64, {2, 33}}};
  for (const UnaryCase& u : unary_float_cases())
    for (const auto& [dt, dims] : shapes)
      expect_matches_cpu({.op = u.op, .opset = u.opset, .attrs = u.attrs,
                          .inputs = {rand_in(dt, dims, u.lo, u.hi)},
                          .label = std::string(dtype_name(dt)) + " " + dims_label(dims)});
}

TEST(CudaPointwise, UnaryInteger) {
  KILN_REQUIRE_GPU();
  struct IntCase {
    std::string op;
    int opset;
    Attrs attrs;
    std::vector<DataType> types;
    double lo, hi;
  };
  const std::vector<IntCase> cases = {
      {"Abs", 13, {}, {kI8, kU8, kI16, kI32, kU32, kI64, kU64}, -128, 127},
      {"Neg", 13, {}, {kI8, kI16, kI32, kI64}, -128, 127},
      {"Sign", 13, {}, {kI8, kU8, kI32, kI64, kU64}, -3, 3},
      {"Relu", 14, {}, {kI8, kI32, kI64}, -100, 100},
      {"Erf", 13, {}, {kI32, kI64}, -3, 3},
      {"Shrink", 9, {{"lambd", f(1.5f)}, {"bias", f(0.5f)}}, {kI8, kU8, kI32}, -6, 6},
      {"BitwiseNot", 18, {}, {kI8, kU8, kI16, kU16, kI32, kU32, kI64, kU64}, -1000, 1000},
  };
  for (const IntCase& c : cases)
    for (DataType dt : c.types)
      for (const Dims& dims : {Dims{1}, Dims{33}, Dims{5, 4097}})
        expect_matches_cpu({.op = c.op, .opset = c.opset, .attrs = c.attrs,
                            .inputs = {rand_in(dt, dims, c.lo, c.hi)},
                            .label = std::string(dtype_name(dt)) + " " + dims_label(dims)});
  for (const Dims& dims : {Dims{1}, Dims{17}, Dims{100003}})
    expect_matches_cpu({.op = "Not", .opset = 1, .inputs = {rand_in(kBool, dims)},
                        .label = dims_label(dims)});
}

TEST(CudaPointwise, SpecialValues) {
  KILN_REQUIRE_GPU();
  const std::vector<double> specials = {kNaN, kInf, -kInf, 0.0, -0.0, 0.5, 1.5, 2.5, -0.5,
                                        -1.5, -2.5, 3.49, -3.51, 1e4, -1e4, 65504, 1e-3};
  for (DataType dt : {kF32, kF16, kBF16, kF64}) {
    const std::string label = dtype_name(dt);
    for (const char* op : {"IsNaN", "Round", "Sign", "Abs", "Relu", "Floor", "Ceil", "Sigmoid",
                           "Softplus", "Tanh", "Erf", "Exp"})
      expect_matches_cpu(
          {.op = op, .opset = 13, .inputs = {value_in(values(dt, specials))}, .label = label});
    for (auto [neg, pos] : {std::pair{1, 1}, {1, 0}, {0, 1}, {0, 0}})
      expect_matches_cpu({.op = "IsInf", .opset = 10,
                          .attrs = {{"detect_negative", i(neg)}, {"detect_positive", i(pos)}},
                          .inputs = {value_in(values(dt, specials))},
                          .label = label + " neg=" + std::to_string(neg) +
                                   " pos=" + std::to_string(pos)});
  }
}

// ---- Clip -----------------------------------------------------------------------------------

TEST(CudaPointwise, Clip) {
  KILN_REQUIRE_GPU();
  const In none{};
  for (DataType dt : {kF32, kF16, kBF16, kF64}) {
    const std::string t = dtype_name(dt);
    const Dims d{3, 1001};
    // Clip-6: bounds are attributes (both, one, none).
    expect_matches_cpu({.op = "Clip", .opset = 6, .attrs = {{"min", f(-0.5f)}, {"max", f(0.75f)}},
                        .inputs = {rand_in(dt, d)}, .label = t + " attrs"});
    expect_matches_cpu({.op = "Clip", .opset = 6, .attrs = {{"max", f(0.25f)}},
                        .inputs = {rand_in(dt, d)}, .label = t + " max attr"});
    expect_matches_cpu({.op = "Clip", .opset = 6, .inputs = {rand_in(dt, d)},
                        .label = t + " no attrs"});
    // Clip-13: constant scalar inputs, omitted min, min > max (gives max).
    expect_matches_cpu({.op = "Clip", .opset = 13,
                        .inputs = {rand_in(dt, d), value_in(values(dt, {-0.5}).reshaped({}), true),
                                   value_in(values(dt, {1.25}).reshaped({}), true)},
                        .label = t + " const bounds"});
    expect_matches_cpu({.op = "Clip", .opset = 13,
                        .inputs = {rand_in(dt, d), none,
                                   value_in(values(dt, {0.5}).reshaped({}), true)},
                        .label = t + " max only"});
    expect_matches_cpu({.op = "Clip", .opset = 13,
                        .inputs = {rand_in(dt, d), value_in(values(dt, {1.0}).reshaped({}), true),
                                   value_in(values(dt, {-1.0}).reshaped({}), true)},
                        .label = t + " min > max"});
    // Bounds computed at run time: read on the device.
    expect_matches_cpu({.op = "Clip", .opset = 13,
                        .inputs = {rand_in(dt, d), rand_in(dt, {}, -1, 0), rand_in(dt, {}, 0, 1)},
                        .label = t + " runtime bounds"});
    expect_matches_cpu({.op = "Clip", .opset = 13,
                        .inputs = {value_in(values(dt, {kNaN, kInf, -kInf, 0, 3, -3}))},
                        .label = t + " specials, no bounds"});
  }
  for (DataType dt : {kI8, kU8, kI32, kI64, kU64})
    expect_matches_cpu({.op = "Clip", .opset = 13,
                        .inputs = {rand_in(dt, {4097}, 0, 100),
                                   value_in(values(dt, {20}).reshaped({}), true),
                                   rand_in(dt, {}, 50, 70)},
                        .label = std::string(dtype_name(dt))});
}

// ---- Cast / CastLike ------------------------------------------------------------------------

TEST(CudaPointwise, CastAllPairs) {
  KILN_REQUIRE_GPU();
  for (DataType from : kAllTypes)
    for (DataType to : kAllTypes) {
      // Unsigned sources get non-negative values so conversions exercise the value range;
      // negative floats to unsigned targets wrap the same way on both backends.
      expect_matches_cpu({.op = "Cast", .opset = 19, .attrs = {{"to", i(onnx_code(to))}},
                          .inputs = {rand_in(from, {2, 1001}, is_unsigned(from) ? 0 : -200, 200)},
                          .label = std::string(dtype_name(from)) + "->" + dtype_name(to)});
    }
}

// A Cast whose input and output layouts differ (the graph-input and -output casts of an
// NHWC region): the tiled transpose kernel, at tile boundaries (C and HW not multiples of
// 32, one channel, one pixel) and for each float type pair it serves.
TEST(CudaPointwise, CastWithLayoutChangeIsATiledTranspose) {
  KILN_REQUIRE_GPU();
  const Dims shapes[] = {{2, 21, 33, 17}, {1, 3, 64, 64}, {3, 64, 7, 7}, {2, 1, 5, 5}, {1, 40, 1, 1}};
  const std::pair<DataType, DataType> pairs[] = {{kF16, kF32}, {kF32, kF16}, {kBF16, kF32}, {kF32, kF32}};
  for (const Dims& d : shapes)
    for (auto [from, to] : pairs)
      for (cuda::Layout in_layout : {cuda::Layout::kNhwc, cuda::Layout::kRowMajor}) {
        HostTensor x(from, d);
        for (int64_t k = 0; k < x.numel(); ++k) x.set_f64(k, std::sin(0.731 * static_cast<double>(k)) * 3);
        const std::map<std::string, ir::Attribute> attrs = {{"to", i(onnx_code(to))}};
        const std::vector<DirectIn> ins = {{.value = x, .layout = in_layout}};
        const cuda::Layout out_layout =
            in_layout == cuda::Layout::kNhwc ? cuda::Layout::kRowMajor : cuda::Layout::kNhwc;
        auto ref = cpu_reference("Cast", 19, attrs, ins);
        ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
        auto got = run_direct("Cast", 19, attrs, ins, to, d, out_layout);
        ASSERT_TRUE(got.is_ok()) << got.status().to_string();
        EXPECT_EQ(got->tactic, "kiln:cast_transpose_tiled");
        EXPECT_EQ(compare_tensors(*ref, got->y, 0, 0), "")
            << dims_to_string(d) << " " << dtype_name(from) << "->" << dtype_name(to);
      }
}

TEST(CudaPointwise, CastSpecialValues) {
  KILN_REQUIRE_GPU();
  // NaN → 0, ±inf and out-of-range wrap through int64 (u64 saturates), → bool is x != 0.
  const std::vector<double> specials = {kNaN, kInf, -kInf, 1e10, -1e10, 3e19, 70000.7,
                                        -70000.7, 300.9, -300.9, 3.7, -3.7, 0.5, -0.0, 0};
  for (DataType from : {kF32, kF64, kF16, kBF16})
    for (DataType to : kAllTypes)
      expect_matches_cpu({.op = "Cast", .opset = 13, .attrs = {{"to", i(onnx_code(to))}},
                          .inputs = {value_in(values(from, specials))},
                          .label = std::string(dtype_name(from)) + "->" + dtype_name(to)});
  // Large integers to narrow floats (rounding) and across integer widths (wrapping).
  const std::vector<double> big = {16777217, -16777219, 2147483647, -2147483648.0, 65535,
                                   4294967295.0, 1e15 + 1, 255, 128, -129};
  for (DataType to : {kF32, kF16, kBF16, kF64, kI8, kU8, kI16, kU32, kBool})
    expect_matches_cpu({.op = "Cast", .opset = 13, .attrs = {{"to", i(onnx_code(to))}},
                        .inputs = {value_in(values(kI64, big))},
                        .label = std::string("i64->") + dtype_name(to)});
  // Cast-1 names the target type with a string.
  expect_matches_cpu({.op = "Cast", .opset = 1, .attrs = {{"to", s("FLOAT16")}},
                      .inputs = {rand_in(kF32, {77})}, .label = "Cast-1 string to"});
}

TEST(CudaPointwise, CastLike) {
  KILN_REQUIRE_GPU();
  for (auto [from, to] : {std::pair{kF32, kF16}, {kF16, kF32}, {kF32, kI32}, {kI64, kBF16},
                          {kBool, kF64}, {kF32, kF32}})
    expect_matches_cpu({.op = "CastLike", .opset = 15,
                        .inputs = {rand_in(from, {3, 333}, -50, 50), rand_in(to, {1})},
                        .label = std::string(dtype_name(from)) + "->" + dtype_name(to)});
}

// ---- broadcasting binary ops ----------------------------------------------------------------

/// (A, B) dims: same shape (flat vector path, odd sizes), scalar operands, per-channel,
/// trailing row, bidirectional, strided ranks 2..6, and empty.
const std::vector<std::pair<Dims, Dims>>& broadcast_pairs() {
  static const std::vector<std::pair<Dims, Dims>> t = {
      {{1}, {1}},
      {{7}, {7}},
      {{1000003}, {1000003}},
      {{2, 3, 4, 5}, {2, 3, 4, 5}},
      {{2, 3, 4, 5}, {1}},
      {{}, {3, 4}},
      {{2, 3, 4, 5}, {3, 1, 1}},
      {{2, 3, 4, 5}, {5}},
      {{2, 3, 4, 5}, {2, 1, 4, 1}},
      {{2, 1, 4, 1}, {3, 1, 5}},
      {{129, 257}, {257}},
      {{33, 1000}, {33, 1}},
      {{3, 1}, {1, 5}},
      {{2, 1, 3, 1, 4, 2}, {1, 5, 1, 2, 1, 2}},
      {{0, 3}, {3}},
  };
  return t;
}

std::string pair_label(DataType dt, const Dims& a, const Dims& b) {
  return std::string(dtype_name(dt)) + " " + dims_label(a) + " op " + dims_label(b);
}

TEST(CudaPointwise, ArithmeticFloat) {
  KILN_REQUIRE_GPU();
  const std::vector<std::pair<std::string, Attrs>> ops = {
      {"Add", {}}, {"Sub", {}}, {"Mul", {}}, {"Div", {}}, {"Mod", {{"fmod", i(1)}}},
      {"Mod", {{"fmod", i(0)}}}};
  for (const auto& [op, attrs] : ops)
    for (DataType dt : {kF32, kF16, kBF16, kF64})
      for (const auto& [a, b] : broadcast_pairs()) {
        if (dt != kF32 && dt != kF16 && a.size() < 2) continue;  // odd sizes: f32/f16 only
        // Mod keeps the divisor away from 0 (huge quotients make fmod ill-conditioned).
        const double lo = op == "Mod" ? 0.5 : -2;
        expect_matches_cpu({.op = op, .opset = 13, .attrs = attrs,
                            .inputs = {rand_in(dt, a, -5, 5), rand_in(dt, b, lo, 3)},
                            .label = pair_label(dt, a, b)});
      }
}

TEST(CudaPointwise, ArithmeticInteger) {
  KILN_REQUIRE_GPU();
  const std::vector<std::pair<std::string, Attrs>> ops = {
      {"Add", {}}, {"Sub", {}}, {"Mul", {}}, {"Div", {}}, {"Mod", {{"fmod", i(0)}}},
      {"Mod", {{"fmod", i(1)}}}};
  const std::vector<std::pair<Dims, Dims>> shapes = {
      {{7}, {7}}, {{100003}, {100003}}, {{2, 3, 4, 5}, {1}}, {{2, 3, 4, 5}, {3, 1, 1}},
      {{2, 1, 4, 1}, {3, 1, 5}}};
  for (const auto& [op, attrs] : ops)
    for (DataType dt : {kI8, kU8, kI16, kU16, kI32, kU32, kI64, kU64})
      for (const auto& [a, b] : shapes) {
        const bool sgn = dt == kI8 || dt == kI16 || dt == kI32 || dt == kI64;
        // Divisors include 0 and -1 (defined as 0 and wrapping negation); products wrap.
        expect_matches_cpu({.op = op, .opset = 13, .attrs = attrs,
                            .inputs = {rand_in(dt, a, sgn ? -120 : 0, 120),
                                       rand_in(dt, b, sgn ? -3 : 0, 9)},
                            .label = pair_label(dt, a, b)});
      }
}

TEST(CudaPointwise, Pow) {
  KILN_REQUIRE_GPU();
  for (DataType dt : {kF32, kF16, kBF16, kF64})
    for (const auto& [a, b] : broadcast_pairs())
      if (a.size() >= 1 && a.size() <= 4)
        expect_matches_cpu({.op = "Pow", .opset = 15,
                            .inputs = {rand_in(dt, a, 0.1, 3), rand_in(dt, b, -2, 3)},
                            .label = pair_label(dt, a, b)});
  // Mixed base/exponent types (Pow-12+), integer powers (wrapping, negative exponents).
  struct Mixed {
    DataType base, exp;
    double base_lo, base_hi, exp_lo, exp_hi;
  };
  const Mixed mixed[] = {{kF32, kI32, -3, 3, -3, 4},  {kF32, kI64, -3, 3, -3, 4},
                         {kF32, kU32, 0.5, 2, 0, 6},  {kF32, kU64, 0.5, 2, 0, 6},
                         {kF16, kF32, 0.1, 3, -2, 2}, {kF32, kF16, 0.1, 3, -2, 2},
                         {kF64, kF32, 0.1, 3, -2, 2}, {kBF16, kI64, -2, 2, 0, 3},
                         {kI32, kI32, -4, 4, -2, 7},  {kI64, kI64, -5, 5, 0, 30},
                         {kU8, kU8, 0, 5, 0, 9},      {kI32, kF32, 0, 9, 0.5, 2.5},
                         {kI64, kF64, 0, 9, 0.5, 2.5}, {kI8, kI32, -3, 3, -1, 8}};
  for (const Mixed& m : mixed)
    for (const auto& [a, b] : {std::pair{Dims{1001}, Dims{1001}}, {Dims{4, 250}, Dims{250}}})
      expect_matches_cpu({.op = "Pow", .opset = 15,
                          .inputs = {rand_in(m.base, a, m.base_lo, m.base_hi),
                                     rand_in(m.exp, b, m.exp_lo, m.exp_hi)},
                          .label = std::string(dtype_name(m.base)) + "^" + dtype_name(m.exp) +
                                   " " + dims_label(b)});
}

TEST(CudaPointwise, LegacyBroadcast) {
  KILN_REQUIRE_GPU();
  // Opset < 7: broadcast=1 aligns B with A at `axis` (default: trailing).
  const Attrs axis1{{"broadcast", i(1)}, {"axis", i(1)}};
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    expect_matches_cpu({.op = op, .opset = 6, .attrs = axis1,
                        .inputs = {rand_in(kF32, {2, 3, 4, 5}), rand_in(kF32, {3, 4}, 0.5, 2)},
                        .label = "axis 1"});
    expect_matches_cpu({.op = op, .opset = 6, .attrs = {{"broadcast", i(1)}},
                        .inputs = {rand_in(kF32, {2, 3, 4, 5}), rand_in(kF32, {5}, 0.5, 2)},
                        .label = "trailing"});
  }
  expect_matches_cpu({.op = "Pow", .opset = 1, .attrs = {{"broadcast", i(1)}, {"axis", i(0)}},
                      .inputs = {rand_in(kF32, {3, 7}, 0.5, 2), rand_in(kF32, {3}, -1, 2)},
                      .label = "axis 0"});
  expect_matches_cpu({.op = "Less", .opset = 6, .attrs = axis1,
                      .inputs = {rand_in(kF32, {2, 3, 4}), rand_in(kF32, {3})}, .label = "axis 1"});
}

// ---- comparisons, logic, bitwise ------------------------------------------------------------

TEST(CudaPointwise, Compare) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (const char* op : {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"})
    for (DataType dt : {kF32, kF16, kBF16, kF64, kI8, kU8, kI32, kU32, kI64, kU64, kBool}) {
      if (dt == kBool && std::string(op) != "Equal") continue;
      for (const auto& [a, b] : broadcast_pairs()) {
        if (dt != kF32 && a.size() < 2) continue;
        expect_matches_cpu({.op = op, .opset = 16,
                            .inputs = {value_in(tied(dt, a, seed)),
                                       value_in(tied(dt, b, seed + 1))},
                            .label = pair_label(dt, a, b)});
        seed += 2;
      }
    }
  // NaN compares unequal / unordered.
  const HostTensor x = values(kF32, {kNaN, 1, kNaN, -kInf, kInf});
  const HostTensor y = values(kF32, {kNaN, kNaN, 1, -kInf, 0});
  for (const char* op : {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"})
    expect_matches_cpu({.op = op, .opset = 16, .inputs = {value_in(x), value_in(y)},
                        .label = "NaN"});
}

TEST(CudaPointwise, Logic) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"And", "Or", "Xor"})
    for (const auto& [a, b] : broadcast_pairs())
      expect_matches_cpu({.op = op, .opset = 7, .inputs = {rand_in(kBool, a), rand_in(kBool, b)},
                          .label = pair_label(kBool, a, b)});
}

TEST(CudaPointwise, Bitwise) {
  KILN_REQUIRE_GPU();
  const std::vector<std::pair<Dims, Dims>> shapes = {
      {{7}, {7}}, {{100003}, {100003}}, {{2, 3, 4, 5}, {1}}, {{2, 1, 4, 1}, {3, 1, 5}}};
  for (const char* op : {"BitwiseAnd", "BitwiseOr", "BitwiseXor"})
    for (DataType dt : {kI8, kU8, kI16, kU16, kI32, kU32, kI64, kU64})
      for (const auto& [a, b] : shapes)
        expect_matches_cpu({.op = op, .opset = 18,
                            .inputs = {rand_in(dt, a, 0, 100000), rand_in(dt, b, 0, 100000)},
                            .label = pair_label(dt, a, b)});
  // Shift amounts past the bit width (and negative ones for signed types) are defined as
  // BitShift-28 does; unsigned types are BitShift-11's.
  for (const char* dir : {"LEFT", "RIGHT"})
    for (DataType dt : {kU8, kU16, kU32, kU64, kI8, kI32, kI64})
      for (const auto& [a, b] : shapes) {
        const bool sgn = dt == kI8 || dt == kI32 || dt == kI64;
        expect_matches_cpu({.op = "BitShift", .opset = 11, .attrs = {{"direction", s(dir)}},
                            .inputs = {rand_in(dt, a, sgn ? -100000 : 0, 100000),
                                       rand_in(dt, b, sgn ? -3 : 0, 70)},
                            .label = std::string(dir) + " " + pair_label(dt, a, b)});
      }
}

// ---- Where, PRelu ---------------------------------------------------------------------------

TEST(CudaPointwise, Where) {
  KILN_REQUIRE_GPU();
  const std::vector<std::array<Dims, 3>> shapes = {
      {Dims{1}, Dims{1}, Dims{1}},
      {Dims{7}, Dims{7}, Dims{7}},
      {Dims{100003}, Dims{100003}, Dims{100003}},
      {Dims{100003}, Dims{100003}, Dims{}},
      {Dims{}, Dims{33, 7}, Dims{7}},
      {Dims{4, 1, 6}, Dims{5, 6}, Dims{4, 5, 1}},
      {Dims{2, 3, 4, 5}, Dims{3, 1, 1}, Dims{1}},
      {Dims{1, 1, 3, 1}, Dims{2, 1, 1, 4}, Dims{2, 5, 1, 1}},
  };
  for (DataType dt : kAllTypes)
    for (const auto& sh : shapes) {
      if (dt != kF32 && dt != kF16 && sh[0].size() < 2 && sh[0] != Dims{100003}) continue;
      expect_matches_cpu({.op = "Where", .opset = 16,
                          .inputs = {rand_in(kBool, sh[0]), rand_in(dt, sh[1], -50, 50),
                                     rand_in(dt, sh[2], -50, 50)},
                          .label = std::string(dtype_name(dt)) + " " + dims_label(sh[0]) +
                                   dims_label(sh[1]) + dims_label(sh[2])});
    }
}

TEST(CudaPointwise, PRelu) {
  KILN_REQUIRE_GPU();
  const std::vector<std::pair<Dims, Dims>> shapes = {
      {{2, 3, 4, 5}, {3, 1, 1}}, {{2, 3, 4, 5}, {5}},   {{2, 3, 4, 5}, {1}},
      {{1000003}, {1000003}},    {{8, 33}, {8, 1}},     {{3}, {3}}};
  for (DataType dt : {kF32, kF16, kBF16, kF64, kI8, kI32, kI64, kU8})
    for (const auto& [x, slope] : shapes)
      expect_matches_cpu({.op = "PRelu", .opset = 16,
                          .inputs = {rand_in(dt, x, -100, 100), rand_in(dt, slope, -3, 3)},
                          .label = pair_label(dt, x, slope)});
  // PRelu-6: a 1-D slope of C values is per channel.
  for (DataType dt : {kF32, kF16})
    expect_matches_cpu({.op = "PRelu", .opset = 6,
                        .inputs = {rand_in(dt, {2, 3, 4, 5}), rand_in(dt, {3})},
                        .label = std::string(dtype_name(dt)) + " legacy per-channel slope"});
}

// ---- variadic -------------------------------------------------------------------------------

TEST(CudaPointwise, Variadic) {
  KILN_REQUIRE_GPU();
  // Input dims per case; 17 and 20 inputs exceed one launch (16).
  std::vector<std::vector<Dims>> cases = {
      {{1000003}},
      {{7}, {7}},
      {{100003}, {100003}, {100003}},
      {{2, 3, 4, 5}, {3, 1, 1}, {1}},
      {{2, 1, 4, 1}, {3, 1, 5}, {5}, {2, 3, 1, 1}},
  };
  std::vector<Dims> many;
  for (int k = 0; k < 20; ++k) many.push_back(k % 3 ? Dims{6, 9} : k % 2 ? Dims{9} : Dims{6, 1});
  cases.push_back(many);
  cases.push_back(std::vector<Dims>(17, Dims{1001}));
  for (const std::string op : {"Max", "Min", "Sum", "Mean"}) {
    std::vector<DataType> types = {kF32, kF16, kBF16, kF64};
    if (op == "Max" || op == "Min") types.insert(types.end(), {kI8, kU8, kI32, kU64});
    for (DataType dt : types)
      for (const std::vector<Dims>& dims : cases) {
        OpCase c{.op = op, .opset = 13};
        for (const Dims& d : dims) c.inputs.push_back(rand_in(dt, d, 0, 100));
        c.label = std::string(dtype_name(dt)) + " " + std::to_string(dims.size()) + " inputs " +
                  dims_label(dims.front());
        expect_matches_cpu(c);
      }
  }
  // NaN in any position propagates through Max/Min.
  for (const char* op : {"Max", "Min"})
    for (DataType dt : {kF32, kF16})
      expect_matches_cpu({.op = op, .opset = 13,
                          .inputs = {value_in(values(dt, {kNaN, 1, 2, 3})),
                                     value_in(values(dt, {0, kNaN, 5, -1})),
                                     value_in(values(dt, {1, 1, kNaN, 0}))},
                          .label = std::string(dtype_name(dt)) + " NaN"});
}

// ---- kernels directly: layouts and rank limits ----------------------------------------------

/// Creates op's CUDA kernel for the operands (no launch).
Result<std::unique_ptr<cuda::Kernel>> create(const std::string& op, int opset,
                                             const std::vector<cuda::Operand>& ins,
                                             const cuda::Operand& out) {
  ir::Graph g;  // the node only needs to outlive create()
  std::vector<ir::Value*> vin;
  for (size_t k = 0; k < ins.size(); ++k)
    vin.push_back(g.add_value("in" + std::to_string(k), ins[k].dtype, Shape::from(ins[k].dims)));
  ir::Value* vout = g.add_value("out", out.dtype, Shape::from(out.dims));
  ir::Node* node = g.add_node(op, "node", vin, {vout}, "", opset);
  static const cuda::Resources res;
  const cuda::KernelConfig cfg{*node, ins, {out}, res, {}};
  const cuda::KernelEntry* entry = cuda::KernelRegistry::instance().find("", op);
  if (!entry) return Status(ErrorCode::kInternal, "no CUDA kernel registered for " + op);
  return entry->create(cfg);
}

/// Runs a created kernel on flat host data; returns output 0's bytes as a tensor.
HostTensor launch(cuda::Kernel& k, const std::vector<HostTensor>& data, const cuda::Operand& out) {
  std::vector<void*> dev_in(data.size()), dev_out(1);
  for (size_t j = 0; j < data.size(); ++j) {
    EXPECT_EQ(cudaMalloc(&dev_in[j], std::max<size_t>(data[j].bytes(), 1)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(dev_in[j], data[j].raw(), data[j].bytes(), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  HostTensor y(out.dtype, out.dims);
  EXPECT_EQ(cudaMalloc(&dev_out[0], std::max<size_t>(y.bytes(), 1)), cudaSuccess);
  cuda::Resources res;
  const cuda::LaunchArgs args{dev_in.data(), dev_out.data(), nullptr, nullptr, res};
  const Status st = k.enqueue(args);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(y.raw(), dev_out[0], y.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  for (void* p : dev_in) cudaFree(p);
  cudaFree(dev_out[0]);
  return y;
}

TEST(CudaPointwise, ChannelsLastOperands) {
  KILN_REQUIRE_GPU();
  const Dims d{2, 3, 5, 7};
  const cuda::Layout nhwc = cuda::Layout::kNhwc;
  // Same dims and layout everywhere (+ a scalar): memory order does not matter, so the
  // result on the same bytes equals the row-major kernel's.
  const HostTensor a = tied(kF32, d, 1), b = tied(kF32, d, 2), c = tied(kF32, {1}, 3);
  const cuda::Operand rm{.dtype = kF32, .dims = d}, cl{.dtype = kF32, .dims = d, .layout = nhwc};
  const cuda::Operand scalar{.dtype = kF32, .dims = {1}};
  auto k_rm = create("Sum", 13, {rm, rm, scalar}, rm);
  auto k_cl = create("Sum", 13, {cl, cl, scalar}, cl);
  ASSERT_TRUE(k_rm.is_ok()) << k_rm.status().to_string();
  ASSERT_TRUE(k_cl.is_ok()) << k_cl.status().to_string();
  EXPECT_EQ(compare_tensors(launch(**k_rm, {a, b, c}, rm), launch(**k_cl, {a, b, c}, cl), 0, 0),
            "");
  auto r_cl = create("Relu", 14, {cl}, cl);
  ASSERT_TRUE(r_cl.is_ok()) << r_cl.status().to_string();
  auto c_cl = create("Cast", 13, {cl}, {.dtype = kF16, .dims = d, .layout = nhwc});
  ASSERT_TRUE(c_cl.is_ok()) << c_cl.status().to_string();
  // Memory offsets of logical element (n, c, h, w) in either layout.
  auto at_rm = [&](int64_t n, int64_t ch, int64_t h, int64_t w) { return ((n * 3 + ch) * 5 + h) * 7 + w; };
  auto at_cl = [&](int64_t n, int64_t ch, int64_t h, int64_t w) { return ((n * 5 + h) * 7 + w) * 3 + ch; };
  auto for_each = [&](auto&& fn) {
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t ch = 0; ch < 3; ++ch)
        for (int64_t h = 0; h < 5; ++h)
          for (int64_t w = 0; w < 7; ++w) fn(n, ch, h, w);
  };
  // A per-channel operand broadcast over an NHWC tensor (squeeze-excite, bias).
  const cuda::Operand per_channel{.dtype = kF32, .dims = {3, 1, 1}};
  const HostTensor pc = tied(kF32, {3, 1, 1}, 4);
  auto k_pc = create("Add", 14, {cl, per_channel}, cl);
  ASSERT_TRUE(k_pc.is_ok()) << k_pc.status().to_string();
  const HostTensor y_pc = launch(**k_pc, {a, pc}, cl);
  for_each([&](int64_t n, int64_t ch, int64_t h, int64_t w) {
    const int64_t i = at_cl(n, ch, h, w);
    ASSERT_EQ(y_pc.get_f64(i), static_cast<float>(a.get_f64(i) + pc.get_f64(ch))) << i;
  });
  // Mixed layouts: NHWC + NCHW → NHWC, and a Cast that also reformats NHWC → NCHW.
  auto k_mix = create("Add", 14, {cl, rm}, cl);
  ASSERT_TRUE(k_mix.is_ok()) << k_mix.status().to_string();
  const HostTensor y_mix = launch(**k_mix, {a, b}, cl);
  for_each([&](int64_t n, int64_t ch, int64_t h, int64_t w) {
    const int64_t i = at_cl(n, ch, h, w);
    ASSERT_EQ(y_mix.get_f64(i), static_cast<float>(a.get_f64(i) + b.get_f64(at_rm(n, ch, h, w)))) << i;
  });
  const cuda::Operand rm16{.dtype = kF16, .dims = d};
  auto k_cast = create("Cast", 13, {cl}, rm16);
  ASSERT_TRUE(k_cast.is_ok()) << k_cast.status().to_string();
  const HostTensor y_cast = launch(**k_cast, {a}, rm16);
  for_each([&](int64_t n, int64_t ch, int64_t h, int64_t w) {
    ASSERT_EQ(y_cast.get_f64(at_rm(n, ch, h, w)), HostTensor::from_vector<float>(kF32, {1}, {static_cast<float>(
                                                      a.get_f64(at_cl(n, ch, h, w)))}).cast(kF16).get_f64(0));
  });
  // Unary ops keep their input's layout (only Cast reformats).
  auto k_relu = create("Relu", 14, {cl}, rm);
  ASSERT_FALSE(k_relu.is_ok());
  EXPECT_EQ(k_relu.status().code(), ErrorCode::kNoGpuKernel) << k_relu.status().to_string();
}

TEST(CudaPointwise, RankLimits) {
  KILN_REQUIRE_GPU();
  // Rank 10 whose broadcast pattern merges into 2 dims: fine.
  const cuda::Operand a{.dtype = kF32, .dims = {2, 3, 1, 1, 1, 1, 1, 1, 4, 5}};
  const cuda::Operand b{.dtype = kF32, .dims = {4, 5}};
  auto ok = create("Mul", 14, {a, b}, a);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  const HostTensor x = tied(kF32, a.dims, 4), y = tied(kF32, b.dims, 5);
  const HostTensor got = launch(**ok, {x, y}, a);
  for (int64_t k = 0; k < x.numel(); ++k)
    ASSERT_EQ(got.get_f64(k), x.get_f64(k) * y.get_f64(k % 20)) << k;
  // Nine alternating broadcast dims cannot merge: more than kMaxRank strided dims.
  const cuda::Operand p{.dtype = kF32, .dims = {2, 1, 2, 1, 2, 1, 2, 1, 2}};
  const cuda::Operand q{.dtype = kF32, .dims = {1, 2, 1, 2, 1, 2, 1, 2, 1}};
  const cuda::Operand o{.dtype = kF32, .dims = Dims(9, 2)};
  auto bad = create("Add", 14, {p, q}, o);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kNoGpuKernel) << bad.status().to_string();
}

}  // namespace
}  // namespace kiln
