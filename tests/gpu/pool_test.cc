// MaxPool (with Indices), AveragePool and LpPool on the GPU (src/cuda/kernels/pool.cu)
// against the CPU reference: 1-D/2-D/3-D windows, explicit and asymmetric pads, every
// auto_pad mode, strides, dilations, ceil_mode, count_include_pad, storage_order, LpPool
// norms; f32, f16, bf16, f64 and MaxPool's integer types. The 2-D fast path
// (pool2d_kernel: NCHW, and NHWC with 16-byte channel vectors or scalars) and its
// fallbacks run directly on the kernels with chosen layouts (direct_kernel.h).
#include <cmath>
#include <limits>
#include <random>

#include "direct_kernel.h"
#include "gpu_test_util.h"

namespace kiln {
namespace {

using namespace gputest;
using Attrs = std::map<std::string, ir::Attribute>;

struct PoolShape {
  const char* label;
  std::vector<int64_t> x;
  Attrs attrs;
};

OpCase make_case(const std::string& op, int opset, DataType dt, const PoolShape& p,
                 int outputs = 1) {
  OpCase c;
  c.op = op;
  c.opset = opset;
  c.label = std::string(p.label) + " " + dtype_name(dt);
  c.attrs = p.attrs;
  c.outputs = outputs;
  In x{.dtype = dt, .dims = p.x};
  if (!dtype_is_float(dt)) {
    x.lo = dt == DataType::kU8 ? 0 : -100;
    x.hi = 100;
  }
  c.inputs.push_back(x);
  return c;
}

// Windows shared by all three ops (kernel_shape decides the spatial rank).
const std::vector<PoolShape>& windows() {
  static const std::vector<PoolShape> t = {
      {"2x2 s2", {2, 3, 8, 8}, {{"kernel_shape", ints({2, 2})}, {"strides", ints({2, 2})}}},
      {"3x3 s2 p1 (ResNet)", {1, 16, 17, 17},
       {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}}},
      {"3x3 s1 asymmetric pads", {1, 4, 9, 10},
       {{"kernel_shape", ints({3, 3})}, {"pads", ints({0, 1, 2, 1})}}},
      {"ceil_mode", {1, 3, 10, 11},
       {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"ceil_mode", i(1)}}},
      {"ceil_mode with pads", {1, 2, 7, 7},
       {{"kernel_shape", ints({3, 2})}, {"strides", ints({2, 3})}, {"pads", ints({1, 0, 1, 1})},
        {"ceil_mode", i(1)}}},
      {"SAME_UPPER", {1, 3, 9, 8},
       {{"kernel_shape", ints({3, 4})}, {"strides", ints({2, 2})}, {"auto_pad", s("SAME_UPPER")}}},
      {"SAME_LOWER", {1, 3, 9, 8},
       {{"kernel_shape", ints({2, 4})}, {"strides", ints({2, 3})}, {"auto_pad", s("SAME_LOWER")}}},
      {"VALID", {1, 3, 9, 8},
       {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"auto_pad", s("VALID")}}},
      {"1-D", {2, 5, 33},
       {{"kernel_shape", ints({4})}, {"strides", ints({3})}, {"pads", ints({1, 2})}}},
      {"3-D", {1, 2, 6, 7, 8},
       {{"kernel_shape", ints({2, 3, 3})}, {"strides", ints({2, 2, 2})},
        {"pads", ints({0, 1, 1, 1, 1, 0})}}},
      {"global-sized window", {2, 7, 7, 7}, {{"kernel_shape", ints({7, 7})}}},
      {"many channels", {2, 257, 5, 5},
       {{"kernel_shape", ints({3, 3})}, {"pads", ints({1, 1, 1, 1})}}},
  };
  return t;
}

// Attribute sets layered over a window.
PoolShape with(PoolShape p, const char* label, Attrs extra) {
  p.label = label;
  for (auto& [k, v] : extra) p.attrs[k] = v;
  return p;
}

TEST(CudaPool, MaxPool) {
  KILN_REQUIRE_GPU();
  for (DataType dt : {DataType::kF32, DataType::kF16, DataType::kBF16, DataType::kF64})
    for (const PoolShape& p : windows()) expect_matches_cpu(make_case("MaxPool", 12, dt, p));
}

TEST(CudaPool, MaxPoolDilationsAndIntegers) {
  KILN_REQUIRE_GPU();
  const PoolShape dilated = {"dilated", {1, 4, 15, 14},
                             {{"kernel_shape", ints({3, 3})}, {"dilations", ints({2, 3})},
                              {"pads", ints({1, 1, 1, 1})}}};
  const PoolShape dilated_ceil = with(dilated, "dilated ceil_mode s2",
                                      {{"strides", ints({2, 2})}, {"ceil_mode", i(1)}});
  for (DataType dt : {DataType::kF32, DataType::kF16})
    for (const PoolShape& p : {dilated, dilated_ceil})
      expect_matches_cpu(make_case("MaxPool", 12, dt, p));
  for (DataType dt : {DataType::kI8, DataType::kU8})
    for (const PoolShape& p : {windows()[1], windows()[3], dilated})
      expect_matches_cpu(make_case("MaxPool", 12, dt, p));
}

TEST(CudaPool, MaxPoolIndices) {
  KILN_REQUIRE_GPU();
  for (int64_t order : {0, 1}) {
    for (DataType dt : {DataType::kF32, DataType::kF16, DataType::kI8}) {
      for (const PoolShape& w : {windows()[1], windows()[4], windows()[8], windows()[9]}) {
        PoolShape p = with(w, order ? "column-major indices" : "row-major indices",
                           {{"storage_order", i(order)}});
        OpCase c = make_case("MaxPool", 12, dt, p, 2);
        c.label += std::string(" / ") + w.label;
        expect_matches_cpu(c);
      }
    }
  }
}

TEST(CudaPool, AveragePool) {
  KILN_REQUIRE_GPU();
  for (int64_t include_pad : {0, 1}) {
    for (DataType dt : {DataType::kF32, DataType::kF16, DataType::kBF16, DataType::kF64}) {
      for (const PoolShape& w : windows()) {
        PoolShape p = with(w, w.label, {{"count_include_pad", i(include_pad)}});
        OpCase c = make_case("AveragePool", 19, dt, p);
        c.label += include_pad ? " count_include_pad" : "";
        expect_matches_cpu(c);
      }
    }
  }
}

TEST(CudaPool, AveragePoolDilations) {
  KILN_REQUIRE_GPU();
  const PoolShape p = {"dilated ceil_mode", {1, 3, 16, 15},
                       {{"kernel_shape", ints({3, 2})}, {"dilations", ints({2, 2})},
                        {"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})},
                        {"ceil_mode", i(1)}}};
  for (int64_t include_pad : {0, 1})
    for (DataType dt : {DataType::kF32, DataType::kF16})
      expect_matches_cpu(make_case("AveragePool", 19, dt,
                                   with(p, p.label, {{"count_include_pad", i(include_pad)}})));
}

TEST(CudaPool, LpPool) {
  KILN_REQUIRE_GPU();
  for (int64_t norm : {1, 2, 3}) {
    for (DataType dt : {DataType::kF32, DataType::kF16, DataType::kF64}) {
      for (size_t w : {size_t{0}, size_t{1}, size_t{3}, size_t{8}, size_t{9}}) {
        const PoolShape& win = windows()[w];
        OpCase c = make_case("LpPool", 18, dt, with(win, win.label, {{"p", i(norm)}}));
        c.label += " p=" + std::to_string(norm);
        expect_matches_cpu(c);
      }
    }
  }
}

// ---- 2-D fast path (pool2d_kernel) and its fallbacks --------------------------------------

using Dims = std::vector<int64_t>;
constexpr cuda::Layout kNchw = cuda::Layout::kRowMajor, kNhwc = cuda::Layout::kNhwc;

/// Seeded data in [-2, 2]; every `nan_every`-th element NaN when > 0.
HostTensor pool_data(DataType dt, const Dims& dims, uint64_t seed, int nan_every = 0) {
  HostTensor t(dt, dims);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-2, 2);
  for (int64_t k = 0; k < t.numel(); ++k)
    t.set_f64(k, nan_every > 0 && k % nan_every == 3 ? std::numeric_limits<double>::quiet_NaN()
                                                     : u(rng));
  return t;
}

/// Runs `op` with x in `x_layout` and y in `y_layout` on the kernel directly, compares with
/// the CPU reference and expects the kernel's tactic to be `tactic` (empty: not checked).
void expect_pool_layouts(const std::string& op, int opset, const Attrs& attrs, const HostTensor& x,
                         cuda::Layout x_layout, cuda::Layout y_layout, const std::string& tactic,
                         size_t misalign = 0) {
  const std::vector<DirectIn> ins = {{.value = x, .layout = x_layout}};
  auto ref = cpu_reference(op, opset, attrs, ins);
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  auto got = run_direct(op, opset, attrs, ins, x.dtype(), ref->dims(), y_layout, misalign);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  if (!tactic.empty()) EXPECT_EQ(got->tactic, tactic);
  auto [atol, rtol] = default_tolerance(x.dtype());
  EXPECT_EQ(compare_tensors(*ref, got->y, atol, rtol), "") << "tactic " << got->tactic;
}

/// Windows of the fast-path tests (2-D only).
const std::vector<PoolShape>& fast_windows() {
  static const std::vector<PoolShape> t = {
      {"3x3 s2 p1 (ResNet)", {},
       {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}}},
      {"2x2 s2", {}, {{"kernel_shape", ints({2, 2})}, {"strides", ints({2, 2})}}},
      {"3x3 s1 p1", {}, {{"kernel_shape", ints({3, 3})}, {"pads", ints({1, 1, 1, 1})}}},
      {"3x3 s2 ceil_mode", {},
       {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"ceil_mode", i(1)}}},
      {"2x3 s(1,2) asymmetric pads dilations ceil_mode", {},
       {{"kernel_shape", ints({2, 3})}, {"strides", ints({1, 2})}, {"dilations", ints({2, 1})},
        {"pads", ints({0, 1, 2, 1})}, {"ceil_mode", i(1)}}},
      // Border windows entirely in the padding: max gives the lowest value (-inf in f16).
      {"2x2 p2 (empty windows)", {},
       {{"kernel_shape", ints({2, 2})}, {"pads", ints({2, 2, 2, 2})}}},
  };
  return t;
}

/// [N, C, H, W] inputs: vector-friendly channel counts (8, 16, 64), odd ones (3, 21: the
/// scalar NHWC path) and odd spatial sizes.
const std::vector<Dims>& fast_inputs() {
  static const std::vector<Dims> t = {
      {2, 8, 7, 7}, {1, 16, 33, 33}, {2, 64, 65, 33}, {2, 3, 33, 65}, {1, 21, 7, 33}};
  return t;
}

/// Vector width the NHWC fast path picks for C channels of dt.
int nhwc_vec(DataType dt, int64_t c) {
  const int64_t v = 16 / static_cast<int64_t>(dtype_size(dt));
  return c % v == 0 ? static_cast<int>(v) : 1;
}

TEST(CudaPool, FastPath2d) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 40;
  for (DataType dt : {DataType::kF32, DataType::kF16, DataType::kBF16})
    for (const Dims& d : fast_inputs())
      for (const PoolShape& w : fast_windows())
        for (int variant = 0; variant < 3; ++variant) {  // max, avg, avg + count_include_pad
          const std::string op = variant == 0 ? "MaxPool" : "AveragePool";
          Attrs a = w.attrs;
          if (variant == 2) a["count_include_pad"] = i(1);
          const HostTensor x = pool_data(dt, d, seed++);
          const std::string kind = variant == 0 ? "kiln:max_pool2d" : "kiln:avg_pool2d";
          SCOPED_TRACE(op + " " + w.label + (variant == 2 ? " count_include_pad " : " ") +
                       dtype_name(dt) + " C=" + std::to_string(d[1]) + " " +
                       std::to_string(d[2]) + "x" + std::to_string(d[3]));
          const int opset = variant == 0 ? 12 : 19;
          expect_pool_layouts(op, opset, a, x, kNchw, kNchw, kind + "_nchw");
          expect_pool_layouts(op, opset, a, x, kNhwc, kNhwc,
                              kind + "_nhwc_v" + std::to_string(nhwc_vec(dt, d[1])));
        }
}

TEST(CudaPool, FastPath2dF64NanAndMisaligned) {
  KILN_REQUIRE_GPU();
  const PoolShape& resnet = fast_windows()[0];
  // f64: two lanes per 16 bytes.
  for (const char* op : {"MaxPool", "AveragePool"}) {
    const HostTensor x = pool_data(DataType::kF64, {2, 6, 9, 11}, 7);
    expect_pool_layouts(op, 12, resnet.attrs, x, kNhwc, kNhwc, "");
    expect_pool_layouts(op, 12, resnet.attrs, x, kNchw, kNchw, "");
  }
  // NaN inputs: a NaN first tap stays, later NaNs never win (as the CPU reference).
  for (DataType dt : {DataType::kF32, DataType::kF16})
    for (cuda::Layout l : {kNchw, kNhwc}) {
      const HostTensor x = pool_data(dt, {1, 16, 13, 13}, 8, 5);
      expect_pool_layouts("MaxPool", 12, resnet.attrs, x, l, l, "");
      expect_pool_layouts("AveragePool", 19, resnet.attrs, x, l, l, "");
    }
  // Buffers not aligned to 16 bytes take the one-lane kernel (the tactic names the vector
  // width chosen at create time).
  for (DataType dt : {DataType::kF32, DataType::kF16}) {
    const HostTensor x = pool_data(dt, {2, 64, 17, 17}, 9);
    for (const char* op : {"MaxPool", "AveragePool"})
      expect_pool_layouts(op, 12, resnet.attrs, x, kNhwc, kNhwc,
                          std::string(op == std::string("MaxPool") ? "kiln:max_pool2d"
                                                                   : "kiln:avg_pool2d") +
                              "_nhwc_v" + std::to_string(nhwc_vec(dt, 64)),
                          dtype_size(dt));
  }
}

TEST(CudaPool, FastPath2dFallbacks) {
  KILN_REQUIRE_GPU();
  const PoolShape& resnet = fast_windows()[0];
  // Mixed layouts take the general kernel (its tactic names the output's layout).
  for (DataType dt : {DataType::kF32, DataType::kF16}) {
    const HostTensor x = pool_data(dt, {2, 16, 15, 15}, 10);
    expect_pool_layouts("MaxPool", 12, resnet.attrs, x, kNhwc, kNchw, "kiln:max_pool");
    expect_pool_layouts("AveragePool", 19, resnet.attrs, x, kNchw, kNhwc, "kiln:avg_pool_nhwc");
  }
  // Integers, LpPool and 3-D pooling stay on the general kernel.
  HostTensor xi(DataType::kI8, {1, 8, 9, 9});
  for (int64_t k = 0; k < xi.numel(); ++k) xi.set_i64(k, (k * 37) % 101 - 50);
  expect_pool_layouts("MaxPool", 12, resnet.attrs, xi, kNhwc, kNhwc, "kiln:max_pool_nhwc");
  expect_pool_layouts("LpPool", 18, resnet.attrs, pool_data(DataType::kF16, {1, 8, 9, 9}, 11),
                      kNhwc, kNhwc, "kiln:lp_pool_nhwc");
  expect_pool_layouts("MaxPool", 12,
                      {{"kernel_shape", ints({2, 2, 2})}, {"strides", ints({2, 2, 2})}},
                      pool_data(DataType::kF32, {1, 4, 6, 6, 6}, 12), kNchw, kNchw,
                      "kiln:max_pool");
}

}  // namespace
}  // namespace kiln
