// GPU kernels of the data-movement, indexing and resize ops against the CPU reference
// (src/cuda/views.cc, kernels/data_movement.cu, gather_scatter.cu, resize.cu). Every case
// runs for a float, a half and an integer dtype unless its attribute space is the point;
// sizes straddle the 32x32 transpose tiles and the 16-byte vector units.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gpu_test_util.h"

namespace kiln::gputest {
namespace {

/// The dtype sweep of pure data movement: 4-, 2- and 1/8-byte elements.
const std::vector<DataType> kMoveTypes = {kF32, kF16, kI32};

using Dims = std::vector<int64_t>;

In data(DataType t, Dims d) { return In{t, std::move(d)}; }
In const_i64(std::vector<int64_t> v) {
  return In{kI64, {static_cast<int64_t>(v.size())}, true, i64s(v)};
}
/// Runtime (non-constant) int tensor with values in [lo, hi].
In runtime_ints(DataType t, Dims d, int64_t lo, int64_t hi) {
  return In{t, std::move(d), false, {}, static_cast<double>(lo), static_cast<double>(hi)};
}
In const_f32(std::vector<float> v) {
  return In{kF32,
            {static_cast<int64_t>(v.size())},
            true,
            HostTensor::from_vector<float>(kF32, {static_cast<int64_t>(v.size())}, v)};
}
/// A rank-0 constant of dtype t holding v.
In const_scalar(DataType t, double v, bool constant = true) {
  HostTensor h(t, {});
  h.set_f64(0, v);
  return In{t, {}, constant, h};
}
/// Size of (possibly negative) axis `a` of dims `d`.
int64_t axis_dim(const Dims& d, int64_t a) {
  return d[a < 0 ? a + static_cast<int64_t>(d.size()) : a];
}
std::string dims_label(const Dims& d) {
  std::string s;
  for (int64_t x : d) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

// ---- views and Dropout ----------------------------------------------------------------

TEST(DataMovementGpu, Views) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes) {
    expect_matches_cpu(
        {.op = "Reshape", .opset = 14, .inputs = {data(t, {2, 3, 4}), const_i64({4, -1})}});
    expect_matches_cpu(
        {.op = "Flatten", .attrs = {{"axis", i(2)}}, .inputs = {data(t, {2, 3, 4, 5})}});
    expect_matches_cpu(
        {.op = "Squeeze", .opset = 13, .inputs = {data(t, {2, 1, 5, 1}), const_i64({1, -1})}});
    expect_matches_cpu({.op = "Squeeze",
                        .opset = 11,
                        .attrs = {{"axes", ints({0})}},
                        .inputs = {data(t, {1, 7})}});
    expect_matches_cpu(
        {.op = "Unsqueeze", .opset = 13, .inputs = {data(t, {3, 5}), const_i64({0, -1})}});
    expect_matches_cpu({.op = "Identity", .inputs = {data(t, {33})}});
  }
}

TEST(DataMovementGpu, DropoutInference) {
  KILN_REQUIRE_GPU();
  for (DataType t : {kF32, kF16, kBF16}) {
    // Opset 13: bool mask of all true; training_mode given as a constant false.
    expect_matches_cpu(
        {.op = "Dropout",
         .opset = 13,
         .inputs = {data(t, {3, 1001}), const_scalar(kF32, 0.3), const_scalar(kBool, 0)},
         .outputs = 2,
         .label = "opset13 mask"});
    expect_matches_cpu({.op = "Dropout", .opset = 13, .inputs = {data(t, {17})}});
    // Opset 7: the mask has the data's type (ones).
    expect_matches_cpu({.op = "Dropout",
                        .opset = 7,
                        .inputs = {data(t, {5, 7})},
                        .outputs = 2,
                        .label = "opset7 mask"});
  }
}

// ---- Transpose --------------------------------------------------------------------------

TEST(DataMovementGpu, Transpose) {
  KILN_REQUIRE_GPU();
  struct T {
    Dims dims;
    std::vector<int64_t> perm;  ///< empty = default (reverse)
  };
  const std::vector<T> cases = {
      // 2-D tile boundaries of the 32x32 tiled kernel.
      {{31, 33}, {}},
      {{32, 32}, {}},
      {{33, 31}, {}},
      {{63, 64}, {1, 0}},
      {{64, 65}, {1, 0}},
      {{65, 63}, {1, 0}},
      {{1, 1000}, {1, 0}},
      {{7, 1}, {}},
      // NCHW <-> NHWC, as the layout pass inserts them.
      {{2, 3, 17, 19}, {0, 2, 3, 1}},
      {{2, 64, 33, 31}, {0, 2, 3, 1}},
      {{2, 33, 31, 64}, {0, 3, 1, 2}},
      {{1, 32, 7, 7}, {0, 2, 3, 1}},
      {{3, 5, 16, 16}, {0, 3, 1, 2}},
      // Innermost axis kept (strided / vector copy), general permutations, 5-D, rank 1.
      {{4, 6, 8}, {1, 0, 2}},
      {{2, 3, 4, 5, 6}, {4, 2, 0, 3, 1}},
      {{3, 100, 70}, {0, 2, 1}},
      {{5, 4, 3}, {2, 0, 1}},
      {{6, 5, 4}, {1, -1, 0}},
      {{7}, {0}},
      {{2, 1, 3}, {1, 2, 0}},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    const T& c = cases[k];
    // 1- and 8-byte elements through the tiled kernel too (cases 3-5 and 9-10).
    std::vector<DataType> types = kMoveTypes;
    if ((k >= 3 && k <= 5) || k == 9 || k == 10) types.insert(types.end(), {kU8, kI64});
    for (DataType t : types) {
      OpCase oc{.op = "Transpose", .inputs = {data(t, c.dims)}, .label = dims_label(c.dims)};
      if (!c.perm.empty()) oc.attrs["perm"] = ints(c.perm);
      expect_matches_cpu(oc);
    }
  }
}

// ---- Slice ------------------------------------------------------------------------------

TEST(DataMovementGpu, Slice) {
  KILN_REQUIRE_GPU();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  struct S {
    Dims dims;
    std::vector<int64_t> starts, ends, axes, steps;  ///< axes/steps empty = omitted
  };
  const std::vector<S> cases = {
      {{5, 7, 9}, {1, 2}, {4, 6}, {0, 2}, {}},
      {{5, 7, 9}, {-1}, {-kMax}, {1}, {-1}},  // reverse an axis
      {{5, 7, 9}, {8, 6}, {0, 1}, {2, 1}, {-3, -2}},
      {{4, 64}, {8}, {40}, {1}, {}},   // aligned inner run: 16-byte units
      {{4, 64}, {3}, {35}, {-1}, {}},  // unaligned inner run
      {{6, 33, 10}, {0, 1}, {kMax, kMax}, {0, 1}, {2, 3}},
      {{3, 4}, {10}, {20}, {0}, {}},  // clamped: empty result
      {{1000003}, {5}, {999990}, {}, {7}},
      {{2, 3, 4, 5}, {1, 0, -1}, {2, -1, 0}, {-1, 1, 2}, {1, 1, -2}},
  };
  for (const S& c : cases)
    for (DataType t : kMoveTypes) {
      OpCase oc{.op = "Slice",
                .opset = 13,
                .inputs = {data(t, c.dims), const_i64(c.starts), const_i64(c.ends)},
                .label = dims_label(c.dims)};
      if (!c.axes.empty()) oc.inputs.push_back(const_i64(c.axes));
      if (!c.steps.empty()) {
        if (c.axes.empty()) oc.inputs.push_back(In{});
        oc.inputs.push_back(const_i64(c.steps));
      }
      expect_matches_cpu(oc);
    }
  // Opset 9: attributes.
  expect_matches_cpu(
      {.op = "Slice",
       .opset = 9,
       .attrs = {{"starts", ints({1, -3})}, {"ends", ints({3, 100})}, {"axes", ints({0, 2})}},
       .inputs = {data(kF32, {4, 3, 5})}});
}

// ---- Concat / Split ---------------------------------------------------------------------

TEST(DataMovementGpu, Concat) {
  KILN_REQUIRE_GPU();
  struct C {
    std::vector<Dims> parts;
    int64_t axis;
  };
  std::vector<C> cases = {
      {{{2, 3, 4}, {2, 5, 4}}, 1},   {{{2, 3, 4}, {2, 3, 1}, {2, 3, 7}}, -1},
      {{{3, 8}, {1, 8}, {5, 8}}, 0}, {{{2, 0, 4}, {2, 3, 4}}, 1},
      {{{4, 16, 9}, {4, 16, 9}}, 1}, {{{1, 7}}, 0},
  };
  // More parts than one launch takes (32), with odd widths.
  C many{{}, 1};
  for (int k = 0; k < 40; ++k) many.parts.push_back({3, 1 + k % 5, 2});
  cases.push_back(many);
  for (const C& c : cases)
    for (DataType t : kMoveTypes) {
      OpCase oc{.op = "Concat",
                .attrs = {{"axis", i(c.axis)}},
                .label = std::to_string(c.parts.size()) + " parts"};
      for (const Dims& d : c.parts) oc.inputs.push_back(data(t, d));
      expect_matches_cpu(oc);
    }
}

TEST(DataMovementGpu, Split) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes) {
    expect_matches_cpu({.op = "Split",
                        .opset = 13,
                        .attrs = {{"axis", i(1)}},
                        .inputs = {data(t, {2, 10, 3}), const_i64({3, 0, 7})},
                        .outputs = 3});
    expect_matches_cpu({.op = "Split",
                        .opset = 18,
                        .attrs = {{"axis", i(-1)}, {"num_outputs", i(3)}},
                        .inputs = {data(t, {4, 11})},
                        .outputs = 3,
                        .label = "uneven"});
    expect_matches_cpu({.op = "Split",
                        .opset = 11,
                        .attrs = {{"split", ints({1, 4})}},
                        .inputs = {data(t, {5, 8})},
                        .outputs = 2});
    expect_matches_cpu({.op = "Split", .opset = 13, .inputs = {data(t, {6, 64})}, .outputs = 2});
    OpCase many{.op = "Split",
                .opset = 13,
                .attrs = {{"axis", i(1)}},
                .inputs = {data(t, {3, 35})},
                .outputs = 35,
                .label = "35 outputs"};
    expect_matches_cpu(many);
  }
}

// ---- Tile / Expand ----------------------------------------------------------------------

TEST(DataMovementGpu, TileExpand) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes) {
    expect_matches_cpu({.op = "Tile", .inputs = {data(t, {2, 3}), const_i64({2, 3})}});
    expect_matches_cpu({.op = "Tile", .inputs = {data(t, {1, 5, 1}), const_i64({3, 1, 4})}});
    expect_matches_cpu({.op = "Tile", .inputs = {data(t, {4, 33}), const_i64({1, 2})}});
    expect_matches_cpu({.op = "Tile", .inputs = {data(t, {3}), const_i64({0})}, .label = "empty"});
    expect_matches_cpu({.op = "Expand", .inputs = {data(t, {3, 1}), const_i64({2, 3, 4})}});
    expect_matches_cpu({.op = "Expand", .inputs = {data(t, {1}), const_i64({7})}});
    expect_matches_cpu({.op = "Expand", .inputs = {data(t, {4, 1, 64}), const_i64({4, 5, 64})}});
    expect_matches_cpu({.op = "Expand", .inputs = {data(t, {40, 1}), const_i64({40, 40})}});
    expect_matches_cpu(
        {.op = "Expand", .inputs = {data(t, {2, 3}), const_i64({1, 1})}, .label = "no-op"});
  }
}

// ---- DepthToSpace / SpaceToDepth --------------------------------------------------------

TEST(DataMovementGpu, DepthSpace) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes)
    for (const char* mode : {"DCR", "CRD"}) {
      expect_matches_cpu({.op = "DepthToSpace",
                          .attrs = {{"blocksize", i(2)}, {"mode", s(mode)}},
                          .inputs = {data(t, {1, 8, 3, 5})},
                          .label = mode});
      expect_matches_cpu({.op = "DepthToSpace",
                          .attrs = {{"blocksize", i(3)}, {"mode", s(mode)}},
                          .inputs = {data(t, {2, 18, 4, 3})},
                          .label = mode});
      expect_matches_cpu({.op = "SpaceToDepth",
                          .attrs = {{"blocksize", i(2)}, {"mode", s(mode)}},
                          .inputs = {data(t, {1, 3, 6, 4})},
                          .label = mode});
      expect_matches_cpu({.op = "SpaceToDepth",
                          .attrs = {{"blocksize", i(4)}, {"mode", s(mode)}},
                          .inputs = {data(t, {2, 32, 64, 64})},
                          .label = mode});
    }
}

// ---- Pad --------------------------------------------------------------------------------

TEST(DataMovementGpu, Pad) {
  KILN_REQUIRE_GPU();
  struct P {
    Dims dims;
    std::vector<int64_t> pads;
    std::vector<int64_t> axes;  ///< opset 18 axes input; empty = all
  };
  const std::vector<P> cases = {
      {{3, 5, 7}, {0, 1, 2, 0, 3, 1}, {}},
      {{2, 3, 33}, {1, 0, 0, 0, 2, 5}, {}},
      {{2, 3, 4, 4}, {0, 0, 8, 9, 0, 0, 7, 6}, {}},  // pads longer than the axis: periodic
      {{4, 6, 8}, {0, -1, 2, 0, -2, 1}, {}},         // negative pads crop
      {{2, 3, 64}, {1, 2}, {0}},                     // unpadded rows: 16-byte units
      {{2, 5, 7}, {1, 2, 3, 4}, {-1, 1}},
      {{1000}, {3, 4}, {}},
      // Padded short innermost rows (constant mode: one 4/8/16-byte store per row).
      {{4, 6, 3}, {0, -1, 0, 0, -2, 1}, {}},           // crop outer axes, rows of 4
      {{2, 5, 7, 3}, {0, 0, 0, 0, 0, 0, 0, 1}, {}},    // NHWC channels 3 → 4, every type
      {{4, 3}, {1, 1, 0, 0}, {}},                      // outer pad and lead pad in the row
  };
  for (size_t k = 0; k < cases.size(); ++k)
    for (const char* mode : {"constant", "reflect", "edge", "wrap"})
      for (DataType t : k % 2 == 0 ? kMoveTypes : std::vector<DataType>{kF32}) {
        const P& c = cases[k];
        OpCase oc{.op = "Pad",
                  .opset = 19,
                  .attrs = {{"mode", s(mode)}},
                  .inputs = {data(t, c.dims), const_i64(c.pads), const_scalar(t, 1.5)},
                  .label = std::string(mode) + " " + dims_label(c.dims)};
        if (!c.axes.empty()) oc.inputs.push_back(const_i64(c.axes));
        expect_matches_cpu(oc);
      }
  for (DataType t : kMoveTypes) {
    // constant_value as a runtime input, and omitted (zero).
    expect_matches_cpu(
        {.op = "Pad",
         .opset = 13,
         .inputs = {data(t, {3, 4}), const_i64({1, 2, 3, 4}), const_scalar(t, -3, false)}});
    expect_matches_cpu(
        {.op = "Pad", .opset = 13, .inputs = {data(t, {3, 4}), const_i64({1, 0, 0, 2})}});
    // Opset 2: attributes.
    expect_matches_cpu(
        {.op = "Pad",
         .opset = 2,
         .attrs = {{"pads", ints({0, 2, 1, 1})}, {"value", f(2.5f)}, {"mode", s("constant")}},
         .inputs = {data(t, {3, 4})}});
  }
}

// ---- ReverseSequence / Trilu ------------------------------------------------------------

TEST(DataMovementGpu, ReverseSequence) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes) {
    expect_matches_cpu({.op = "ReverseSequence",
                        .attrs = {{"time_axis", i(0)}, {"batch_axis", i(1)}},
                        .inputs = {data(t, {5, 4, 3}), runtime_ints(kI64, {4}, 0, 5)}});
    expect_matches_cpu({.op = "ReverseSequence",
                        .attrs = {{"time_axis", i(1)}, {"batch_axis", i(0)}},
                        .inputs = {data(t, {3, 6, 8, 2}), runtime_ints(kI64, {3}, 0, 6)}});
    expect_matches_cpu(
        {.op = "ReverseSequence", .inputs = {data(t, {7, 2}), runtime_ints(kI64, {2}, 1, 7)}});
  }
}

TEST(DataMovementGpu, Trilu) {
  KILN_REQUIRE_GPU();
  for (DataType t : {kF32, kF16, kI64})
    for (int64_t upper : {0, 1})
      for (int64_t k : {-40, -2, 0, 3}) {
        const std::string label = (upper ? "upper k=" : "lower k=") + std::to_string(k);
        expect_matches_cpu({.op = "Trilu",
                            .opset = 14,
                            .attrs = {{"upper", i(upper)}},
                            .inputs = {data(t, {2, 5, 7}), const_scalar(kI64, k)},
                            .label = label});
        expect_matches_cpu({.op = "Trilu",
                            .opset = 14,
                            .attrs = {{"upper", i(upper)}},
                            .inputs = {data(t, {33, 31}), const_scalar(kI64, k, false)},
                            .label = label});
      }
  expect_matches_cpu({.op = "Trilu", .opset = 14, .inputs = {data(kF32, {4, 4})}, .label = "no k"});
  expect_matches_cpu(
      {.op = "Trilu", .opset = 14, .inputs = {data(kBool, {3, 9, 6}), const_scalar(kI64, 40)}});
}

// ---- Gather family ----------------------------------------------------------------------

TEST(DataMovementGpu, Gather) {
  KILN_REQUIRE_GPU();
  struct G {
    Dims data, idx;
    int64_t axis;
  };
  const std::vector<G> cases = {
      {{5, 6, 7}, {4}, 0},     {{5, 6, 7}, {2, 3}, 1},   {{5, 6, 7}, {}, -1},
      {{5, 6, 7}, {9}, 2},     {{1000, 64}, {3, 17}, 0}, {{7}, {5}, 0},
      {{3, 4, 16}, {2, 2}, 1},
  };
  for (const G& c : cases)
    for (DataType t : kMoveTypes)
      for (DataType it : {kI64, kI32}) {
        const int64_t dim = axis_dim(c.data, c.axis);
        expect_matches_cpu({.op = "Gather",
                            .opset = 13,
                            .attrs = {{"axis", i(c.axis)}},
                            .inputs = {data(t, c.data), runtime_ints(it, c.idx, -dim, dim - 1)},
                            .label = dims_label(c.data) + " axis " + std::to_string(c.axis)});
      }
  // Constant indices (weights-like).
  expect_matches_cpu({.op = "Gather", .inputs = {data(kF32, {10, 3}), const_i64({9, -1, 0, 4})}});
}

TEST(DataMovementGpu, GatherElements) {
  KILN_REQUIRE_GPU();
  struct G {
    Dims data, idx;
    int64_t axis;
  };
  const std::vector<G> cases = {
      {{4, 5}, {3, 5}, 0},
      {{4, 5}, {4, 2}, 1},
      {{3, 4, 5}, {3, 2, 5}, -2},
      {{2, 3, 40}, {2, 3, 33}, 2},
  };
  for (const G& c : cases)
    for (DataType t : kMoveTypes)
      for (DataType it : {kI64, kI32}) {
        const int64_t dim = axis_dim(c.data, c.axis);
        expect_matches_cpu({.op = "GatherElements",
                            .attrs = {{"axis", i(c.axis)}},
                            .inputs = {data(t, c.data), runtime_ints(it, c.idx, -dim, dim - 1)},
                            .label = dims_label(c.data)});
      }
}

TEST(DataMovementGpu, GatherND) {
  KILN_REQUIRE_GPU();
  struct G {
    Dims data, idx;
    int64_t batch_dims;
  };
  const std::vector<G> cases = {
      {{2, 3, 4}, {2, 2}, 0}, {{2, 3, 4}, {5, 1}, 0},          {{2, 3, 4}, {2, 3}, 0},
      {{2, 3, 4}, {2, 1}, 1}, {{2, 3, 4, 8}, {2, 3, 2, 1}, 2}, {{4, 5, 16}, {3, 2, 1}, 0},
  };
  for (const G& c : cases)
    for (DataType t : kMoveTypes) {
      // Index values valid for every indexed axis: [-min dim, min dim - 1].
      int64_t lim = 1 << 30;
      for (int64_t j = 0; j < c.idx.back(); ++j) lim = std::min(lim, c.data[c.batch_dims + j]);
      expect_matches_cpu({.op = "GatherND",
                          .opset = 13,
                          .attrs = {{"batch_dims", i(c.batch_dims)}},
                          .inputs = {data(t, c.data), runtime_ints(kI64, c.idx, -lim, lim - 1)},
                          .label = dims_label(c.data) + " idx " + dims_label(c.idx)});
    }
}

// ---- Scatter family ---------------------------------------------------------------------

TEST(DataMovementGpu, ScatterElements) {
  KILN_REQUIRE_GPU();
  struct S {
    Dims data, idx;
    int64_t axis;
  };
  const std::vector<S> cases = {
      {{6, 5}, {4, 5}, 0}, {{3, 8}, {3, 6}, 1}, {{2, 5, 7}, {2, 3, 7}, -2}};
  for (const S& c : cases)
    for (const char* red : {"none", "add", "mul", "max", "min"})
      for (DataType t : {kF32, kF16, kI32, kI8}) {
        if (t == kI8 && c.axis != 0) continue;  // 1-byte atomics: one shape is enough
        const int64_t dim = axis_dim(c.data, c.axis);
        // Duplicate indices are likely: reduction none must keep the last update (CPU order).
        expect_matches_cpu(
            {.op = "ScatterElements",
             .opset = 18,
             .attrs = {{"axis", i(c.axis)}, {"reduction", s(red)}},
             .inputs = {data(t, c.data), runtime_ints(kI64, c.idx, -dim, dim - 1), data(t, c.idx)},
             .label = std::string(red) + " " + dims_label(c.data)},
            Check{.atol = t == kF16 ? 1e-2 : -1});
      }
  expect_matches_cpu(
      {.op = "Scatter",
       .opset = 9,
       .attrs = {{"axis", i(1)}},
       .inputs = {data(kF32, {3, 5}), runtime_ints(kI32, {3, 2}, -5, 4), data(kF32, {3, 2})}});
  expect_matches_cpu(
      {.op = "ScatterElements",
       .opset = 11,
       .inputs = {data(kBool, {9}), runtime_ints(kI32, {4}, 0, 8), data(kBool, {4})}});
}

TEST(DataMovementGpu, ScatterND) {
  KILN_REQUIRE_GPU();
  struct S {
    Dims data, idx, upd;
  };
  const std::vector<S> cases = {
      {{4, 5, 6}, {3, 1}, {3, 5, 6}},
      {{4, 5, 6}, {2, 2}, {2, 6}},
      {{4, 5, 6}, {7, 3}, {7}},
      {{8, 16}, {2, 3, 1}, {2, 3, 16}},
  };
  for (size_t k = 0; k < cases.size(); ++k)
    for (const char* red : {"none", "add", "mul", "max", "min"})
      for (DataType t :
           k < 2 ? std::vector<DataType>{kF32, kF16, kI64} : std::vector<DataType>{kF32}) {
        const S& c = cases[k];
        int64_t lim = 1 << 30;
        for (int64_t j = 0; j < c.idx.back(); ++j) lim = std::min(lim, c.data[j]);
        expect_matches_cpu(
            {.op = "ScatterND",
             .opset = 18,
             .attrs = {{"reduction", s(red)}},
             .inputs = {data(t, c.data), runtime_ints(kI64, c.idx, -lim, lim - 1), data(t, c.upd)},
             .label = std::string(red) + " " + dims_label(c.data) + " idx " + dims_label(c.idx)},
            Check{.atol = t == kF16 ? 1e-2 : -1});
      }
}

// ---- OneHot -----------------------------------------------------------------------------

TEST(DataMovementGpu, OneHot) {
  KILN_REQUIRE_GPU();
  for (int64_t axis : {-1, 0, 1})
    for (DataType it : {kI64, kI32, kF32}) {
      // Indices beyond [-depth, depth-1] give an all-off row.
      In idx{it, {3, 4}, false, {}, -8, 7};
      HostTensor vals = HostTensor::from_vector<float>(kF32, {2}, {-1.5f, 4.0f});
      expect_matches_cpu({.op = "OneHot",
                          .opset = 11,
                          .attrs = {{"axis", i(axis)}},
                          .inputs = {idx, const_scalar(kI64, 6), In{kF32, {2}, true, vals}},
                          .label = "axis " + std::to_string(axis)});
      HostTensor ivals = HostTensor::from_vector<int32_t>(kI32, {2}, {0, 7});
      expect_matches_cpu({.op = "OneHot",
                          .opset = 11,
                          .attrs = {{"axis", i(axis)}},
                          .inputs = {idx, const_scalar(kF32, 6), In{kI32, {2}, false, ivals}}});
    }
}

// ---- Resize / Upsample ------------------------------------------------------------------

/// A Resize-19 case: scales (or sizes when `sizes` is set) over all axes unless `axes`.
OpCase resize_case(DataType t, const Dims& dims, std::map<std::string, ir::Attribute> attrs,
                   std::vector<float> scales, std::vector<int64_t> sizes = {},
                   std::vector<float> roi = {}, int opset = 19) {
  OpCase c{.op = "Resize", .opset = opset, .attrs = std::move(attrs), .label = dims_label(dims)};
  for (const auto& [k, a] : c.attrs)
    if (a.kind == ir::Attribute::Kind::kString) c.label += " " + k + "=" + a.s;
  c.inputs.push_back(data(t, dims));
  c.inputs.push_back(roi.empty() ? In{} : const_f32(roi));
  if (sizes.empty()) {
    c.inputs.push_back(const_f32(scales));
  } else {
    c.inputs.push_back(In{});
    c.inputs.push_back(const_i64(sizes));
  }
  return c;
}

const std::vector<const char*> kCoordModes = {"half_pixel",         "half_pixel_symmetric",
                                              "pytorch_half_pixel", "align_corners",
                                              "asymmetric",         "tf_half_pixel_for_nn"};

TEST(DataMovementGpu, ResizeNearest) {
  KILN_REQUIRE_GPU();
  for (const char* nm : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"})
    for (const char* cm : kCoordModes)
      for (DataType t :
           std::string(nm) == "round_prefer_floor" ? kMoveTypes : std::vector<DataType>{kF32}) {
        const std::map<std::string, ir::Attribute> a = {{"mode", s("nearest")},
                                                        {"nearest_mode", s(nm)},
                                                        {"coordinate_transformation_mode", s(cm)}};
        expect_matches_cpu(resize_case(t, {1, 2, 4, 5}, a, {1, 1, 2.5f, 0.6f}));
        expect_matches_cpu(resize_case(t, {2, 3, 7, 3}, a, {}, {2, 3, 4, 8}));
      }
  // Upsampling by 2 on 64 channels (the segmentation-head pattern), and 3-D.
  for (DataType t : kMoveTypes) {
    expect_matches_cpu(resize_case(t, {1, 64, 9, 11}, {{"mode", s("nearest")}}, {1, 1, 2, 2}));
    expect_matches_cpu(
        resize_case(t, {1, 2, 3, 4, 5}, {{"mode", s("nearest")}}, {1, 1, 2, 0.5f, 1.5f}));
  }
  // exclude_outside zeroes taps outside the input (tf_half_pixel_for_nn maps past the end).
  expect_matches_cpu(resize_case(kF32, {1, 1, 4, 4},
                                 {{"mode", s("nearest")},
                                  {"exclude_outside", i(1)},
                                  {"nearest_mode", s("ceil")},
                                  {"coordinate_transformation_mode", s("tf_half_pixel_for_nn")}},
                                 {1, 1, 1.7f, 1.7f}));
}

TEST(DataMovementGpu, ResizeLinearCubic) {
  KILN_REQUIRE_GPU();
  for (const char* mode : {"linear", "cubic"})
    for (const char* cm : kCoordModes)
      for (DataType t : std::string(cm) == "half_pixel" || std::string(cm) == "align_corners"
                            ? std::vector<DataType>{kF32, kF16, kBF16}
                            : std::vector<DataType>{kF32}) {
        std::map<std::string, ir::Attribute> a = {{"mode", s(mode)},
                                                  {"coordinate_transformation_mode", s(cm)}};
        expect_matches_cpu(resize_case(t, {1, 2, 5, 6}, a, {1, 1, 1.6f, 0.7f}));
        expect_matches_cpu(resize_case(t, {2, 3, 4, 4}, a, {1, 1, 2, 2}));
        expect_matches_cpu(resize_case(t, {1, 1, 7, 5}, a, {}, {1, 1, 3, 9}));
        a["exclude_outside"] = i(1);
        a["cubic_coeff_a"] = f(-0.5f);
        expect_matches_cpu(resize_case(t, {1, 2, 5, 6}, a, {1, 1, 1.6f, 0.7f}));
      }
  // Trilinear / tricubic, a resized batch axis, 1-D, f64.
  for (const char* mode : {"linear", "cubic"}) {
    expect_matches_cpu(
        resize_case(kF32, {1, 2, 3, 4, 5}, {{"mode", s(mode)}}, {1, 1, 2, 1.5f, 0.5f}));
    expect_matches_cpu(resize_case(kF32, {3, 4, 5}, {{"mode", s(mode)}}, {2, 1, 0.8f}));
    expect_matches_cpu(resize_case(kF64, {9}, {{"mode", s(mode)}}, {2.3f}));
  }
  // Integers round half to even and saturate; summation order may differ by one ulp of
  // a double before rounding, hence atol 1.
  for (DataType t : {kU8, kI32})
    for (const char* mode : {"linear", "cubic"})
      expect_matches_cpu(resize_case(t, {1, 3, 6, 5}, {{"mode", s(mode)}}, {1, 1, 1.5f, 2}),
                         Check{.atol = 1});
}

TEST(DataMovementGpu, ResizeAntialiasAspectAxes) {
  KILN_REQUIRE_GPU();
  for (const char* mode : {"linear", "cubic"})
    for (DataType t : {kF32, kF16}) {
      // Antialias widens the filter when downsampling (and is plain interpolation up).
      expect_matches_cpu(resize_case(t, {1, 2, 16, 12}, {{"mode", s(mode)}, {"antialias", i(1)}},
                                     {1, 1, 0.5f, 0.3f}));
      expect_matches_cpu(resize_case(t, {1, 2, 5, 4}, {{"mode", s(mode)}, {"antialias", i(1)}},
                                     {1, 1, 1.5f, 0.75f}));
      expect_matches_cpu(resize_case(
          t, {1, 1, 9, 9}, {{"mode", s(mode)}, {"antialias", i(1)}, {"exclude_outside", i(1)}},
          {1, 1, 0.4f, 0.6f}));
    }
  for (const char* policy : {"stretch", "not_larger", "not_smaller"})
    for (const char* mode : {"nearest", "linear"}) {
      OpCase c = resize_case(
          kF32, {1, 3, 10, 6},
          {{"mode", s(mode)}, {"keep_aspect_ratio_policy", s(policy)}, {"axes", ints({2, 3})}}, {},
          {7, 9});
      expect_matches_cpu(c);
      expect_matches_cpu(resize_case(kF16, {2, 8, 6, 3},
                                     {{"mode", s(mode)}, {"axes", ints({-2, 1})}}, {1.5f, 0.5f}));
    }
}

TEST(DataMovementGpu, ResizeTfCropAndResize) {
  KILN_REQUIRE_GPU();
  for (const char* mode : {"nearest", "linear", "cubic"})
    for (DataType t : {kF32, kF16}) {
      const std::map<std::string, ir::Attribute> a = {
          {"mode", s(mode)},
          {"coordinate_transformation_mode", s("tf_crop_and_resize")},
          {"extrapolation_value", f(-7.5f)}};
      // roi inside the image, then partly outside (extrapolated).
      expect_matches_cpu(
          resize_case(t, {1, 1, 6, 7}, a, {}, {1, 1, 5, 4}, {0, 0, 0.2f, 0.1f, 1, 1, 0.8f, 0.9f}));
      expect_matches_cpu(
          resize_case(t, {1, 2, 6, 7}, a, {}, {1, 2, 6, 5}, {0, 0, -0.3f, 0.4f, 1, 1, 0.9f, 1.6f}));
      expect_matches_cpu(resize_case(t, {2, 1, 5, 5}, a, {1, 1, 1.4f, 0.8f}, {},
                                     {0, 0, 0.1f, -0.2f, 1, 1, 1.2f, 0.7f}));
    }
}

TEST(DataMovementGpu, ResizeOldOpsets) {
  KILN_REQUIRE_GPU();
  for (const char* mode : {"nearest", "linear"})
    for (DataType t : {kF32, kF16, kI32}) {
      // Resize-10 / Upsample-9: scales input, asymmetric, legacy nearest rounding.
      expect_matches_cpu({.op = "Resize",
                          .opset = 10,
                          .attrs = {{"mode", s(mode)}},
                          .inputs = {data(t, {1, 2, 3, 5}), const_f32({1, 1, 2, 0.6f})}},
                         Check{.atol = t == kI32 ? 1.0 : -1.0});
      expect_matches_cpu({.op = "Upsample",
                          .opset = 9,
                          .attrs = {{"mode", s(mode)}},
                          .inputs = {data(t, {1, 2, 3, 5}), const_f32({1, 1, 2, 3})}},
                         Check{.atol = t == kI32 ? 1.0 : -1.0});
      expect_matches_cpu(
          {.op = "Upsample",
           .opset = 7,
           .attrs = {{"mode", s(mode)}, {"scales", ir::Attribute::from_floats({1, 1, 2.5f, 2})}},
           .inputs = {data(t, {1, 2, 3, 5})}},
          Check{.atol = t == kI32 ? 1.0 : -1.0});
    }
  // An empty output launches nothing.
  expect_matches_cpu(resize_case(kF32, {1, 1, 4, 4}, {{"mode", s("linear")}}, {}, {1, 1, 0, 3}));
  // Resize-11/13 with sizes and an ignored roi.
  expect_matches_cpu(
      resize_case(kF32, {1, 3, 4, 4}, {{"mode", s("linear")}}, {}, {1, 3, 8, 6}, {}, 13));
  expect_matches_cpu(
      resize_case(kF32, {1, 3, 4, 4}, {{"mode", s("cubic")}}, {1, 1, 2, 2}, {}, {}, 11));
}

}  // namespace
}  // namespace kiln::gputest
