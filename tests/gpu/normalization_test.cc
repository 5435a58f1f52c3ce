// Softmax / LogSoftmax / Hardmax (src/cuda/kernels/softmax.cu) and the normalization ops
// (src/cuda/kernels/normalization.cu: LayerNormalization, InstanceNormalization,
// GroupNormalization, BatchNormalization, LRN, LpNormalization,
// MeanVarianceNormalization) on the GPU against the CPU reference: row lengths around the
// warp kernels' limits and the block kernels beyond, aligned and unaligned rows (vector /
// scalar paths), axes that are not the last, opset differences, f32 / f16 (+ bf16, f64),
// and the BERT shapes (LayerNorm [4,128,768] f16, attention softmax [2,12,128,128] f16).
#include <random>

#include "gpu_test_util.h"

namespace kiln {
namespace {

using namespace gputest;
using Dims = std::vector<int64_t>;
using Attrs = std::map<std::string, ir::Attribute>;


/// Normalised lengths at warp / register-cache / vector boundaries.
const int64_t kLengths[] = {1, 7, 127, 128, 129, 768, 1000, 1024, 1025, 4097};

std::string dims_label(const Dims& d) {
  std::string s = "[";
  for (size_t k = 0; k < d.size(); ++k) s += (k ? "," : "") + std::to_string(d[k]);
  return s + "]";
}

// ---- Softmax family -------------------------------------------------------------------------

struct SoftmaxCase {
  Dims dims;
  int opset;
  int64_t axis;
};

std::vector<SoftmaxCase> softmax_cases() {
  std::vector<SoftmaxCase> v;
  for (int64_t n : kLengths) {
    v.push_back({{3, n}, 13, -1});    // inner 1: warp kernel up to 1024, block kernel beyond
    v.push_back({{2, n, 5}, 13, 1});  // inner > 1
  }
  v.push_back({{5, 96}, 13, 1});          // f16 rows of 96: 3 elements per lane, scalar
  v.push_back({{2, 3, 4, 5}, 11, 1});     // coerced to [2, 60]
  v.push_back({{2, 3, 4, 5}, 11, -2});    // coerced to [6, 20]
  v.push_back({{2, 3, 4, 5}, 11, 0});     // one row of everything
  v.push_back({{4, 3, 700}, 12, 1});      // coerced rows of 2100: block kernel
  v.push_back({{3, 4, 5}, 13, 0});        // first axis, inner 20
  v.push_back({{7}, 13, 0});
  return v;
}

TEST(CudaSoftmax, AllOpsAllShapes) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"Softmax", "LogSoftmax", "Hardmax"})
    for (const SoftmaxCase& c : softmax_cases())
      for (DataType dt : {kF32, kF16})
        expect_matches_cpu({.op = op, .opset = c.opset, .attrs = {{"axis", i(c.axis)}},
                            .inputs = {In{.dtype = dt, .dims = c.dims, .lo = -4, .hi = 4}},
                            .label = dims_label(c.dims) + " opset " + std::to_string(c.opset) +
                                     " " + dtype_name(dt)});
}

TEST(CudaSoftmax, OtherTypesAndLargeValues) {
  KILN_REQUIRE_GPU();
  const auto cases = softmax_cases();
  for (const char* op : {"Softmax", "LogSoftmax", "Hardmax"}) {
    for (size_t k = 0; k < cases.size(); k += 3)
      for (DataType dt : {kBF16, kF64})
        expect_matches_cpu({.op = op, .opset = cases[k].opset,
                            .attrs = {{"axis", i(cases[k].axis)}},
                            .inputs = {In{.dtype = dt, .dims = cases[k].dims}},
                            .label = dims_label(cases[k].dims) + " " + dtype_name(dt)});
    // Max subtraction: exp(x) alone would overflow.
    for (const Dims& d : {Dims{4, 128}, Dims{2, 3000}, Dims{2, 40, 3}})
      expect_matches_cpu({.op = op, .opset = 13, .attrs = {{"axis", i(1)}},
                          .inputs = {In{.dtype = kF32, .dims = d, .lo = 1000, .hi = 1010}},
                          .label = "large " + dims_label(d)});
  }
  // Hardmax picks the first of tied maxima.
  for (const Dims& d : {Dims{5, 33}, Dims{2, 2000}, Dims{3, 9, 4}}) {
    HostTensor t(kF32, d);
    std::mt19937_64 rng(3);
    for (int64_t k = 0; k < t.numel(); ++k) t.set_f64(k, static_cast<double>(rng() % 3));
    expect_matches_cpu({.op = "Hardmax", .opset = 13, .attrs = {{"axis", i(1)}},
                        .inputs = {In{.dtype = kF32, .dims = d, .value = t}},
                        .label = "ties " + dims_label(d)});
  }
}

TEST(CudaSoftmax, BertAttention) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"Softmax", "LogSoftmax"})
    expect_matches_cpu({.op = op, .opset = 13, .attrs = {{"axis", i(-1)}},
                        .inputs = {In{.dtype = kF16, .dims = {2, 12, 128, 128}, .lo = -8,
                                      .hi = 8}},
                        .label = "BERT [2,12,128,128]"});
}

// ---- LayerNormalization ---------------------------------------------------------------------

struct LayerNormCase {
  std::string label;
  Dims x;
  int64_t axis;
  Dims scale;       ///< Scale and B dims
  bool bias = true;
  int outputs = 1;  ///< 3: Mean and InvStdDev too
};

std::vector<LayerNormCase> layer_norm_cases() {
  std::vector<LayerNormCase> v;
  for (int64_t n : kLengths) v.push_back({"cols " + std::to_string(n), {3, n}, -1, {n}});
  v.push_back({"BERT", {4, 128, 768}, -1, {768}});
  v.push_back({"axis 1 of 4-D", {2, 3, 4, 5}, 1, {3, 4, 5}});
  v.push_back({"axis -2, scale [5] broadcast", {2, 3, 4, 5}, -2, {5}});
  v.push_back({"scale [1, 4, 5]", {2, 3, 4, 5}, 2, {1, 4, 5}});
  v.push_back({"no bias", {6, 100}, -1, {100}, false});
  v.push_back({"with Mean/InvStdDev", {5, 768}, -1, {768}, true, 3});
  v.push_back({"with Mean/InvStdDev, long rows", {3, 2, 1500}, 1, {2, 1500}, true, 3});
  v.push_back({"axis 0", {4, 33}, 0, {4, 33}, true, 3});
  v.push_back({"rows of 96 (unaligned f16)", {7, 96}, -1, {96}});
  return v;
}

OpCase layer_norm_case(const LayerNormCase& c, DataType dt) {
  OpCase oc{.op = "LayerNormalization", .opset = 17,
            .attrs = {{"axis", i(c.axis)}, {"epsilon", f(1e-5f)}},
            .inputs = {In{.dtype = dt, .dims = c.x, .lo = -3, .hi = 5},
                       In{.dtype = dt, .dims = c.scale, .constant = true}},
            .outputs = c.outputs, .label = c.label + " " + dtype_name(dt)};
  if (c.bias) oc.inputs.push_back(In{.dtype = dt, .dims = c.scale, .constant = true});
  return oc;
}

TEST(CudaNormalization, LayerNorm) {
  KILN_REQUIRE_GPU();
  for (const LayerNormCase& c : layer_norm_cases())
    for (DataType dt : {kF32, kF16}) expect_matches_cpu(layer_norm_case(c, dt));
  for (const LayerNormCase& c : layer_norm_cases())
    for (DataType dt : {kBF16, kF64})
      if (c.x.size() == 2 && c.x[1] == 1000) expect_matches_cpu(layer_norm_case(c, dt));
  // Runtime (non-constant) Scale and B, and a bfloat16 stash type for the statistics.
  OpCase rt = layer_norm_case({"runtime params", {8, 256}, -1, {256}, true, 3}, kF16);
  rt.inputs[1].constant = rt.inputs[2].constant = false;
  expect_matches_cpu(rt);
  OpCase bf = layer_norm_case({"stash bf16", {8, 256}, -1, {256}, true, 3}, kF32);
  bf.attrs["stash_type"] = i(16);
  expect_matches_cpu(bf);
  // Large epsilon is visible in the output.
  OpCase eps = layer_norm_case({"epsilon 0.5", {4, 50}, -1, {50}}, kF32);
  eps.attrs["epsilon"] = f(0.5f);
  expect_matches_cpu(eps);
}

// ---- Instance / Group normalization ----------------------------------------------------------

TEST(CudaNormalization, InstanceNorm) {
  KILN_REQUIRE_GPU();
  for (const Dims& d : {Dims{2, 3, 5, 7}, Dims{1, 64, 28, 28}, Dims{2, 4, 33}, Dims{1, 2, 64, 64},
                        Dims{3, 5, 1}, Dims{2, 3, 2, 3, 4}, Dims{1, 8, 32, 32}})
    for (DataType dt : {kF32, kF16})
      expect_matches_cpu({.op = "InstanceNormalization", .opset = 6,
                          .attrs = {{"epsilon", f(1e-4f)}},
                          .inputs = {In{.dtype = dt, .dims = d},
                                     In{.dtype = dt, .dims = {d[1]}, .constant = true},
                                     In{.dtype = dt, .dims = {d[1]}, .constant = true}},
                          .label = dims_label(d) + " " + dtype_name(dt)});
}

TEST(CudaNormalization, GroupNorm) {
  KILN_REQUIRE_GPU();
  struct G {
    Dims x;
    int64_t groups;
  };
  const std::vector<G> cases = {{{2, 6, 4, 4}, 3},   {{1, 32, 16, 16}, 8}, {{2, 8, 33, 35}, 2},
                                {{3, 4, 7}, 4},      {{2, 6, 5, 5}, 1},    {{1, 64, 8, 8}, 32}};
  for (int opset : {18, 21})
    for (const G& g : cases)
      for (DataType dt : {kF32, kF16}) {
        const int64_t per = opset >= 21 ? g.x[1] : g.groups;
        expect_matches_cpu({.op = "GroupNormalization", .opset = opset,
                            .attrs = {{"num_groups", i(g.groups)}, {"epsilon", f(1e-5f)}},
                            .inputs = {In{.dtype = dt, .dims = g.x},
                                       In{.dtype = dt, .dims = {per}, .constant = true},
                                       In{.dtype = dt, .dims = {per}, .constant = true}},
                            .label = dims_label(g.x) + " groups " + std::to_string(g.groups) +
                                     " opset " + std::to_string(opset) + " " + dtype_name(dt)});
      }
}

// ---- BatchNormalization, LRN ----------------------------------------------------------------

TEST(CudaNormalization, BatchNorm) {
  KILN_REQUIRE_GPU();
  for (const Dims& d : {Dims{2, 3, 5, 7}, Dims{1, 64, 28, 28}, Dims{4, 10}, Dims{2, 5, 3, 3, 3}})
    for (DataType dt : {kF32, kF16, kBF16})
      for (DataType pt : {dt, kF32}) {
        const Dims c{d[1]};
        expect_matches_cpu({.op = "BatchNormalization", .opset = 15,
                            .attrs = {{"epsilon", f(1e-3f)}},
                            .inputs = {In{.dtype = dt, .dims = d},
                                       In{.dtype = pt, .dims = c, .constant = true},
                                       In{.dtype = pt, .dims = c, .constant = true},
                                       In{.dtype = pt, .dims = c, .constant = true},
                                       In{.dtype = pt, .dims = c, .constant = true, .lo = 0.1,
                                          .hi = 2}},
                            .label = dims_label(d) + " " + dtype_name(dt) + " params " +
                                     dtype_name(pt)});
      }
  // Runtime statistics (not constants).
  expect_matches_cpu({.op = "BatchNormalization", .opset = 9,
                      .inputs = {In{.dtype = kF32, .dims = {2, 4, 6}},
                                 In{.dtype = kF32, .dims = {4}}, In{.dtype = kF32, .dims = {4}},
                                 In{.dtype = kF32, .dims = {4}},
                                 In{.dtype = kF32, .dims = {4}, .lo = 0.5, .hi = 1}},
                      .label = "runtime params"});
}

TEST(CudaNormalization, Lrn) {
  KILN_REQUIRE_GPU();
  for (const Dims& d : {Dims{2, 8, 5, 5}, Dims{1, 3, 7}, Dims{1, 96, 13, 13}})
    for (int64_t size : {1, 3, 5, 4})
      for (DataType dt : {kF32, kF16})
        expect_matches_cpu({.op = "LRN", .opset = 13,
                            .attrs = {{"size", i(size)}, {"alpha", f(2e-3f)}, {"beta", f(0.6f)},
                                      {"bias", f(1.5f)}},
                            .inputs = {In{.dtype = dt, .dims = d}},
                            .label = dims_label(d) + " size " + std::to_string(size) + " " +
                                     dtype_name(dt)});
}

// ---- LpNormalization, MeanVarianceNormalization -------------------------------------------------

TEST(CudaNormalization, LpNorm) {
  KILN_REQUIRE_GPU();
  struct L {
    Dims x;
    int64_t axis;
  };
  const std::vector<L> cases = {{{3, 129}, -1}, {{2, 7, 5}, 1}, {{4, 6}, 0}, {{2, 3, 4, 5}, 2},
                                {{1, 5000}, 1}};
  for (const L& c : cases)
    for (int64_t p : {1, 2})
      for (DataType dt : {kF32, kF16})
        expect_matches_cpu({.op = "LpNormalization", .opset = 1,
                            .attrs = {{"axis", i(c.axis)}, {"p", i(p)}},
                            .inputs = {In{.dtype = dt, .dims = c.x}},
                            .label = dims_label(c.x) + " p " + std::to_string(p) + " " +
                                     dtype_name(dt)});
}

TEST(CudaNormalization, MeanVarianceNorm) {
  KILN_REQUIRE_GPU();
  struct M {
    Dims x;
    std::vector<int64_t> axes;  ///< empty: the default [0, 2, 3]
  };
  const std::vector<M> cases = {{{2, 3, 5, 7}, {}},      {{2, 3, 5, 7}, {2, 3}},
                                {{2, 3, 5, 7}, {1}},     {{4, 6, 5}, {0, -1}},
                                {{3, 1000}, {1}},        {{1, 4, 40, 40}, {}}};
  for (const M& c : cases)
    for (DataType dt : {kF32, kF16}) {
      OpCase oc{.op = "MeanVarianceNormalization", .opset = 13,
                .inputs = {In{.dtype = dt, .dims = c.x, .lo = -1, .hi = 3}},
                .label = dims_label(c.x) + " " + dtype_name(dt)};
      if (!c.axes.empty()) oc.attrs["axes"] = ints(c.axes);
      expect_matches_cpu(oc);
    }
}

}  // namespace
}  // namespace kiln
