// MaxPool (with Indices), AveragePool and LpPool on the GPU (src/cuda/kernels/pool.cu)
// against the CPU reference: 1-D/2-D/3-D windows, explicit and asymmetric pads, every
// auto_pad mode, strides, dilations, ceil_mode, count_include_pad, storage_order, LpPool
// norms; f32, f16, bf16, f64 and MaxPool's integer types.
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

}  // namespace
}  // namespace kiln
