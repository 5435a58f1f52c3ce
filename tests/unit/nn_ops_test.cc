// Compute-heavy NN ops (src/ops/conv.cc, pool.cc, matmul.cc, einsum.cc, normalization.cc)
// against naive reference loops written independently here, on seeded random inputs with
// odd sizes, groups, dilations, asymmetric padding and broadcasting shapes the ONNX
// conformance data does not cover. Every op runs through the op table and run_node, as
// the CPU backend and constant folding run it.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cpu/gemm.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace test;
constexpr OpRunner run_op{kOpset};

ir::Attribute ints(std::vector<int64_t> v) { return ir::Attribute::from_ints(std::move(v)); }

/// Max |got - want| / (1 + |want|) over all elements; shapes must match.
double max_rel_error(const HostTensor& got, const std::vector<double>& want,
                     const std::vector<int64_t>& want_dims) {
  EXPECT_EQ(got.dims(), want_dims);
  if (got.dims() != want_dims) return 1e9;
  double e = 0;
  for (int64_t i = 0; i < got.numel(); ++i)
    e = std::max(e, std::fabs(got.get_f64(i) - want[i]) / (1.0 + std::fabs(want[i])));
  return e;
}

// ---- Conv -------------------------------------------------------------------------------

struct ConvCase {
  std::vector<int64_t> x_dims;  // [N, C, spatial...]
  int64_t m, group;
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads empty with auto_pad set
  std::string auto_pad;                                   // "" = explicit pads
  bool bias;
};

/// Direct convolution: every output element is a sum over its window, from the
/// definitions in the ONNX spec (no im2col). Returns output dims and values.
std::pair<std::vector<int64_t>, std::vector<double>> conv_reference(const ConvCase& c,
                                                                    const HostTensor& x,
                                                                    const HostTensor& w,
                                                                    const HostTensor* b) {
  const size_t r = c.kernel.size();
  std::vector<int64_t> out_dims{c.x_dims[0], c.m}, pad_begin(r);
  for (size_t d = 0; d < r; ++d) {
    const int64_t in = c.x_dims[2 + d], s = c.strides[d],
                  eff = (c.kernel[d] - 1) * c.dilations[d] + 1;
    int64_t out;
    if (c.auto_pad == "SAME_UPPER" || c.auto_pad == "SAME_LOWER") {
      out = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + eff - in);
      pad_begin[d] = c.auto_pad == "SAME_UPPER" ? total / 2 : (total + 1) / 2;
    } else if (c.auto_pad == "VALID") {
      out = (in - eff) / s + 1;
      pad_begin[d] = 0;
    } else {
      out = (in + c.pads[d] + c.pads[d + r] - eff) / s + 1;
      pad_begin[d] = c.pads[d];
    }
    out_dims.push_back(out);
  }
  int64_t total = 1;
  for (auto v : out_dims) total *= v;
  std::vector<double> y(total);
  const auto xs = strides_of(x.dims()), ws = strides_of(w.dims()), ys = strides_of(out_dims);
  const int64_t cg = c.x_dims[1] / c.group, mg = c.m / c.group;
  std::vector<int64_t> idx(out_dims.size());
  for (int64_t o = 0; o < total; ++o) {
    for (size_t d = 0; d < out_dims.size(); ++d) idx[d] = o / ys[d] % out_dims[d];
    const int64_t n = idx[0], m = idx[1], g = m / mg;
    double acc = b ? b->get_f64(m) : 0.0;
    int64_t ksize = 1;
    for (auto k : c.kernel) ksize *= k;
    for (int64_t ci = 0; ci < cg; ++ci)
      for (int64_t kk = 0; kk < ksize; ++kk) {
        int64_t rem = kk, xoff = n * xs[0] + (g * cg + ci) * xs[1], woff = m * ws[0] + ci * ws[1];
        bool inside = true;
        for (size_t d = r; d-- > 0;) {
          const int64_t k = rem % c.kernel[d];
          rem /= c.kernel[d];
          const int64_t pos = idx[2 + d] * c.strides[d] - pad_begin[d] + k * c.dilations[d];
          inside &= pos >= 0 && pos < c.x_dims[2 + d];
          xoff += pos * xs[2 + d];
          woff += k * ws[2 + d];
        }
        if (inside) acc += x.get_f64(xoff) * w.get_f64(woff);
      }
    y[o] = acc;
  }
  return {out_dims, y};
}

TEST(NnOps, ConvMatchesDirectConvolution) {
  std::mt19937 rng(1234);
  const std::vector<ConvCase> cases = {
      {{1, 3, 7}, 4, 1, {3}, {1}, {1}, {1, 1}, "", true},                     // 1-D
      {{2, 4, 9, 11}, 6, 2, {3, 2}, {2, 1}, {1, 2}, {1, 0, 2, 1}, "", true},  // groups, asym pads
      {{1, 5, 8, 7}, 5, 5, {3, 3}, {1, 2}, {2, 1}, {2, 1, 2, 0}, "", false},  // depthwise
      {{1, 3, 10, 9}, 9, 3, {3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}, "", true},  // depthwise x3
      // SAME_*: odd total padding in some dims, so the extra pad side matters.
      {{1, 3, 9, 10}, 2, 1, {4, 3}, {3, 2}, {1, 1}, {}, "SAME_UPPER", true},
      {{1, 2, 9, 10}, 3, 1, {4, 3}, {3, 2}, {2, 1}, {}, "SAME_LOWER", false},
      {{2, 3, 8, 9}, 4, 1, {3, 2}, {2, 2}, {1, 1}, {}, "VALID", true},
      // 3-D with groups
      {{1, 4, 5, 6, 7}, 4, 2, {2, 3, 2}, {1, 2, 1}, {2, 1, 1}, {1, 0, 1, 0, 1, 1}, "", true},
      {{3, 8, 5, 5}, 16, 1, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, "", true},  // pointwise
  };
  for (DataType dt : {DataType::kF32, DataType::kF64, DataType::kF16}) {
    for (size_t ci = 0; ci < cases.size(); ++ci) {
      const ConvCase& c = cases[ci];
      std::vector<int64_t> w_dims{c.m, c.x_dims[1] / c.group};
      w_dims.insert(w_dims.end(), c.kernel.begin(), c.kernel.end());
      HostTensor x = random_tensor(dt, c.x_dims, rng), w = random_tensor(dt, w_dims, rng);
      HostTensor b = random_tensor(dt, {c.m}, rng);
      Attrs attrs{{"group", ir::Attribute::from_int(c.group)},
                  {"strides", ints(c.strides)},
                  {"dilations", ints(c.dilations)}};
      if (c.auto_pad.empty())
        attrs["pads"] = ints(c.pads);
      else
        attrs["auto_pad"] = ir::Attribute::from_string(c.auto_pad);
      if (ci % 2) attrs["kernel_shape"] = ints(c.kernel);  // optional: inferred from W otherwise
      auto r = run_op("Conv", {&x, &w, c.bias ? &b : nullptr}, attrs);
      ASSERT_TRUE(r.is_ok()) << "case " << ci << ": " << r.status().to_string();
      auto [dims, want] = conv_reference(c, x, w, c.bias ? &b : nullptr);
      const double tol = dt == DataType::kF16 ? 5e-3 : dt == DataType::kF32 ? 1e-5 : 1e-12;
      EXPECT_LT(max_rel_error(r.value()[0], want, dims), tol)
          << "case " << ci << " " << dtype_name(dt);
    }
  }
}

TEST(NnOps, ConvInfersSymbolicBatch) {
  ir::Graph g;
  ir::Value* x =
      g.add_value("x", DataType::kF32, Shape({Dim::sym("batch"), Dim(3), Dim(32), Dim::sym("w")}));
  g.inputs.push_back(x);
  std::mt19937 rng(7);
  ir::Value* w = g.add_constant("w", random_tensor(DataType::kF32, {8, 3, 3, 3}, rng));
  ir::Value* y = g.add_value("y");
  ir::Node* n = g.add_node("Conv", "conv", {x, w}, {y}, "", 17);
  n->attrs["strides"] = ints({2, 2});
  n->attrs["pads"] = ints({1, 1, 1, 1});
  ASSERT_TRUE(resolve_schemas(g).is_ok());
  Status st = infer_graph(g);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  ASSERT_EQ(y->shape.rank(), 4u);
  EXPECT_EQ(y->shape.dims[0].symbol, "batch");
  EXPECT_EQ(y->shape.dims[1].value, 8);
  EXPECT_EQ(y->shape.dims[2].value, 16);
  EXPECT_FALSE(y->shape.dims[3].is_known());
}

TEST(NnOps, ConvRejectsChannelMismatch) {
  std::mt19937 rng(3);
  HostTensor x = random_tensor(DataType::kF32, {1, 4, 5, 5}, rng);
  HostTensor w = random_tensor(DataType::kF32, {6, 3, 3, 3}, rng);  // expects 3 * group channels
  auto r = run_op("Conv", {&x, &w});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kShapeMismatch);
}

// ---- ConvTranspose ----------------------------------------------------------------------

TEST(NnOps, ConvTransposeMatchesScatterReference) {
  std::mt19937 rng(99);
  struct Case {
    std::vector<int64_t> x_dims;
    int64_t m_per_group, group;
    std::vector<int64_t> kernel, strides, dilations, pads, output_padding;
  };
  const std::vector<Case> cases = {
      {{1, 2, 5}, 3, 1, {3}, {2}, {1}, {1, 0}, {1}},
      {{2, 4, 4, 5}, 2, 2, {3, 2}, {2, 3}, {1, 2}, {0, 1, 1, 0}, {1, 0}},
      {{1, 3, 3, 4, 2}, 2, 3, {2, 2, 3}, {1, 2, 2}, {2, 1, 1}, {0, 0, 1, 1, 0, 0}, {0, 1, 1}},
  };
  for (const Case& c : cases) {
    const size_t r = c.kernel.size();
    const int64_t cin = c.x_dims[1], m = c.m_per_group * c.group;
    std::vector<int64_t> w_dims{cin, c.m_per_group};
    w_dims.insert(w_dims.end(), c.kernel.begin(), c.kernel.end());
    HostTensor x = random_tensor(DataType::kF32, c.x_dims, rng),
               w = random_tensor(DataType::kF32, w_dims, rng);
    HostTensor b = random_tensor(DataType::kF32, {m}, rng);
    auto res = run_op("ConvTranspose", {&x, &w, &b},
                      {{"group", ir::Attribute::from_int(c.group)},
                       {"strides", ints(c.strides)},
                       {"dilations", ints(c.dilations)},
                       {"pads", ints(c.pads)},
                       {"output_padding", ints(c.output_padding)}});
    ASSERT_TRUE(res.is_ok()) << res.status().to_string();
    // Scatter every input element through the kernel into the unpadded output.
    std::vector<int64_t> out_dims{c.x_dims[0], m};
    for (size_t d = 0; d < r; ++d)
      out_dims.push_back(c.strides[d] * (c.x_dims[2 + d] - 1) + c.output_padding[d] +
                         (c.kernel[d] - 1) * c.dilations[d] + 1 - c.pads[d] - c.pads[d + r]);
    int64_t total = 1;
    for (auto v : out_dims) total *= v;
    std::vector<double> y(total);
    const auto ys = strides_of(out_dims), xs = strides_of(c.x_dims), ws = strides_of(w_dims);
    for (int64_t i = 0; i < total; ++i) y[i] = b.get_f64(i / ys[1] % m);
    int64_t ksize = 1;
    for (auto k : c.kernel) ksize *= k;
    for (int64_t xi = 0; xi < x.numel(); ++xi) {
      const int64_t n = xi / xs[0], ci = xi / xs[1] % cin, g = ci / (cin / c.group);
      for (int64_t mo = 0; mo < c.m_per_group; ++mo)
        for (int64_t kk = 0; kk < ksize; ++kk) {
          int64_t rem = kk, yoff = n * ys[0] + (g * c.m_per_group + mo) * ys[1],
                  woff = ci * ws[0] + mo * ws[1];
          bool inside = true;
          for (size_t d = r; d-- > 0;) {
            const int64_t k = rem % c.kernel[d];
            rem /= c.kernel[d];
            const int64_t pos =
                xi / xs[2 + d] % c.x_dims[2 + d] * c.strides[d] - c.pads[d] + k * c.dilations[d];
            inside &= pos >= 0 && pos < out_dims[2 + d];
            yoff += pos * ys[2 + d];
            woff += k * ws[2 + d];
          }
          if (inside) y[yoff] += x.get_f64(xi) * w.get_f64(woff);
        }
    }
    EXPECT_LT(max_rel_error(res.value()[0], y, out_dims), 1e-5);
  }
}

// ---- MatMul / Gemm ----------------------------------------------------------------------

TEST(NnOps, MatMulBroadcastsLikeNumpy) {
  std::mt19937 rng(5);
  struct Case {
    std::vector<int64_t> a, b, out;
  };
  const std::vector<Case> cases = {
      {{3, 4}, {4, 5}, {3, 5}},
      {{2, 3, 4}, {4, 5}, {2, 3, 5}},           // B shared across the batch
      {{4}, {2, 4, 5}, {2, 5}},                 // 1-D A: row vector, dim removed
      {{2, 3, 4}, {4}, {2, 3}},                 // 1-D B: column vector, dim removed
      {{7}, {7}, {}},                           // dot product
      {{2, 1, 3, 4}, {5, 4, 2}, {2, 5, 3, 2}},  // both batch dims broadcast
      {{1, 3, 4}, {6, 4, 5}, {6, 3, 5}},
      {{3, 0}, {0, 2}, {3, 2}},  // empty inner dimension: zeros
  };
  for (DataType dt : {DataType::kF32, DataType::kF64, DataType::kBF16, DataType::kI32}) {
    for (const Case& c : cases) {
      HostTensor a = random_tensor(dt, c.a, rng), b = random_tensor(dt, c.b, rng);
      if (dt == DataType::kI32) {
        for (int64_t i = 0; i < a.numel(); ++i) a.set_i64(i, i % 7 - 3);
        for (int64_t i = 0; i < b.numel(); ++i) b.set_i64(i, i % 5 - 2);
      }
      auto r = run_op("MatMul", {&a, &b});
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      // Reference: promote 1-D operands, broadcast batch dims by hand.
      std::vector<int64_t> ad = c.a, bd = c.b;
      if (ad.size() == 1) ad.insert(ad.begin(), 1);
      if (bd.size() == 1) bd.push_back(1);
      const int64_t m = ad[ad.size() - 2], k = ad.back(), n = bd.back();
      const size_t nb = std::max(ad.size(), bd.size()) - 2;
      std::vector<int64_t> batch_dims(nb, 1);
      auto padded = [&](const std::vector<int64_t>& d) {
        std::vector<int64_t> p(nb, 1);
        for (size_t i = 0; i + 2 < d.size(); ++i) p[nb - (d.size() - 2) + i] = d[i];
        return p;
      };
      const auto pa = padded(ad), pb = padded(bd);
      int64_t batches = 1;
      for (size_t i = 0; i < nb; ++i) batches *= batch_dims[i] = std::max(pa[i], pb[i]);
      std::vector<double> want;
      const auto bs = strides_of(batch_dims);
      for (int64_t bi = 0; bi < batches; ++bi) {
        int64_t ao = 0, bo = 0, as = 1, bs2 = 1;
        for (size_t d = nb; d-- > 0;) {
          const int64_t idx = bi / bs[d] % batch_dims[d];
          ao += (pa[d] == 1 ? 0 : idx) * as;
          bo += (pb[d] == 1 ? 0 : idx) * bs2;
          as *= pa[d];
          bs2 *= pb[d];
        }
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double acc = 0;
            for (int64_t p = 0; p < k; ++p)
              acc += a.get_f64(ao * m * k + i * k + p) * b.get_f64(bo * k * n + p * n + j);
            want.push_back(acc);
          }
      }
      const double tol = dt == DataType::kBF16 ? 1e-2 : 1e-5;
      EXPECT_LT(max_rel_error(r.value()[0], want, c.out), tol) << dtype_name(dt);
    }
  }
}

TEST(NnOps, MatMulRejectsInnerMismatch) {
  std::mt19937 rng(6);
  HostTensor a = random_tensor(DataType::kF32, {2, 3}, rng),
             b = random_tensor(DataType::kF32, {4, 2}, rng);
  auto r = run_op("MatMul", {&a, &b});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kShapeMismatch);
}

TEST(NnOps, GemmTransposesAlphaBetaAndBiasBroadcast) {
  std::mt19937 rng(11);
  const int64_t m = 5, k = 7, n = 3;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (const std::vector<int64_t>& c_dims :
           std::vector<std::vector<int64_t>>{{}, {n}, {1, n}, {m, 1}, {m, n}}) {
        HostTensor a = random_tensor(
            DataType::kF32, ta ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k}, rng);
        HostTensor b = random_tensor(
            DataType::kF32, tb ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n}, rng);
        HostTensor c = random_tensor(DataType::kF32, c_dims, rng);
        const float alpha = 0.75f, beta = -1.5f;
        auto r = run_op("Gemm", {&a, &b, &c},
                        {{"transA", ir::Attribute::from_int(ta)},
                         {"transB", ir::Attribute::from_int(tb)},
                         {"alpha", ir::Attribute::from_float(alpha)},
                         {"beta", ir::Attribute::from_float(beta)}});
        ASSERT_TRUE(r.is_ok()) << r.status().to_string();
        std::vector<double> want;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double acc = 0;
            for (int64_t p = 0; p < k; ++p)
              acc += a.get_f64(ta ? p * m + i : i * k + p) * b.get_f64(tb ? j * k + p : p * n + j);
            const int64_t ci = c.numel() == 1       ? 0
                               : c_dims.size() == 1 ? j
                               : c_dims[0] == 1     ? j
                               : c_dims[1] == 1     ? i
                                                    : i * n + j;
            want.push_back(alpha * acc + beta * c.get_f64(ci));
          }
        EXPECT_LT(max_rel_error(r.value()[0], want, {m, n}), 1e-5)
            << "transA=" << ta << " transB=" << tb;
      }
}

TEST(NnOps, MatMulIntegerPerRowAndColumnZeroPoints) {
  HostTensor a = HostTensor::from_vector<uint8_t>(DataType::kU8, {2, 3}, {10, 20, 30, 255, 0, 7});
  HostTensor b = HostTensor::from_vector<int8_t>(DataType::kI8, {3, 2}, {-128, 5, 127, -3, 0, 9});
  HostTensor azp = HostTensor::from_vector<uint8_t>(DataType::kU8, {2}, {10, 128});
  HostTensor bzp = HostTensor::from_vector<int8_t>(DataType::kI8, {2}, {-1, 2});
  auto r = run_op("MatMulInteger", {&a, &b, &azp, &bzp});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  std::vector<int32_t> want;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      int32_t acc = 0;
      for (int p = 0; p < 3; ++p)
        acc += (a.data<uint8_t>()[i * 3 + p] - azp.data<uint8_t>()[i]) *
               (b.data<int8_t>()[p * 2 + j] - bzp.data<int8_t>()[j]);
      want.push_back(acc);
    }
  const HostTensor& y = r.value()[0];
  ASSERT_EQ(y.dtype(), DataType::kI32);
  EXPECT_EQ(std::vector<int32_t>(y.data<int32_t>(), y.data<int32_t>() + 4), want);
}

// ---- Einsum -------------------------------------------------------------------------------

TEST(NnOps, EinsumGeneralEquations) {
  std::mt19937 rng(21);
  auto t = [&](std::vector<int64_t> d) { return random_tensor(DataType::kF64, std::move(d), rng); };
  {  // three operands, one label summed only on one side
    HostTensor a = t({2, 3}), b = t({3, 4, 5}), c = t({5, 2});
    auto r =
        run_op("Einsum", {&a, &b, &c}, {{"equation", ir::Attribute::from_string("ij,jkl,lm->km")}});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    std::vector<double> want(4 * 2, 0.0);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 4; ++k)
          for (int l = 0; l < 5; ++l)
            for (int m = 0; m < 2; ++m)
              want[k * 2 + m] +=
                  a.get_f64(i * 3 + j) * b.get_f64(j * 20 + k * 5 + l) * c.get_f64(l * 2 + m);
    EXPECT_LT(max_rel_error(r.value()[0], want, {4, 2}), 1e-12);
  }
  {  // trace, implicit output
    HostTensor a = t({4, 4});
    auto r = run_op("Einsum", {&a}, {{"equation", ir::Attribute::from_string("ii")}});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    double want = 0;
    for (int i = 0; i < 4; ++i) want += a.get_f64(i * 5);
    EXPECT_LT(max_rel_error(r.value()[0], {want}, {}), 1e-12);
  }
  {  // ellipsis with broadcasting batch dims, implicit output ordering ("...", then i, k)
    HostTensor a = t({2, 1, 3, 4}), b = t({5, 4, 3});
    auto r = run_op("Einsum", {&a, &b}, {{"equation", ir::Attribute::from_string("...ij,...jk")}});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    std::vector<double> want;
    for (int p = 0; p < 2; ++p)
      for (int q = 0; q < 5; ++q)
        for (int i = 0; i < 3; ++i)
          for (int k = 0; k < 3; ++k) {
            double acc = 0;
            for (int j = 0; j < 4; ++j)
              acc += a.get_f64(p * 12 + i * 4 + j) * b.get_f64(q * 12 + j * 3 + k);
            want.push_back(acc);
          }
    EXPECT_LT(max_rel_error(r.value()[0], want, {2, 5, 3, 3}), 1e-12);
  }
  {  // diagonal kept in the output, transposed
    HostTensor a = t({3, 2, 3});
    auto r = run_op("Einsum", {&a}, {{"equation", ir::Attribute::from_string("iji->ji")}});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    std::vector<double> want;
    for (int j = 0; j < 2; ++j)
      for (int i = 0; i < 3; ++i) want.push_back(a.get_f64(i * 6 + j * 3 + i));
    EXPECT_LT(max_rel_error(r.value()[0], want, {2, 3}), 1e-12);
  }
  HostTensor a = t({2, 3});
  auto bad = run_op("Einsum", {&a}, {{"equation", ir::Attribute::from_string("ij->k")}});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kOnnxBadAttribute);
}

// ---- Pooling / normalization ---------------------------------------------------------------

TEST(NnOps, MaxPoolIndicesColumnMajor) {
  // 1x1x3x4, 2x2 windows, stride 2: max positions known by construction.
  std::vector<float> v(12);
  for (int i = 0; i < 12; ++i) v[i] = static_cast<float>((i * 7) % 12);
  HostTensor x = HostTensor::from_vector<float>(DataType::kF32, {1, 1, 3, 4}, v);
  for (int64_t order : {0, 1}) {
    auto r = run_op("MaxPool", {&x},
                    {{"kernel_shape", ints({2, 2})},
                     {"strides", ints({2, 2})},
                     {"storage_order", ir::Attribute::from_int(order)}},
                    12, 2);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    const HostTensor& y = r.value()[0];
    const HostTensor& idx = r.value()[1];
    ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 1, 1, 2}));
    for (int ow = 0; ow < 2; ++ow) {
      int best = -1;
      for (int h = 0; h < 2; ++h)
        for (int w = 2 * ow; w < 2 * ow + 2; ++w)
          if (best < 0 || v[h * 4 + w] > v[best]) best = h * 4 + w;
      EXPECT_EQ(y.data<float>()[ow], v[best]);
      const int64_t want = order ? (best / 4) + (best % 4) * 3 : best;
      EXPECT_EQ(idx.data<int64_t>()[ow], want) << "storage_order " << order;
    }
  }
}

TEST(NnOps, BatchNormTrainingModeIsRejectedAtImport) {
  ir::Graph g;
  std::vector<ir::Value*> ins;
  for (int i = 0; i < 5; ++i) {
    ins.push_back(
        g.add_value("in" + std::to_string(i), DataType::kF32, Shape::from({i ? 3 : 2, 3})));
    g.inputs.push_back(ins.back());
  }
  ir::Node* n = g.add_node("BatchNormalization", "bn", ins, {g.add_value("y")}, "", 15);
  n->attrs["training_mode"] = ir::Attribute::from_int(1);
  Status st = resolve_schemas(g);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), ErrorCode::kOnnxUnsupportedAttribute);
  EXPECT_FALSE(st.hint().empty());
}

TEST(NnOps, GroupNormScaleIsPerGroupAtOpset18AndPerChannelAt21) {
  std::mt19937 rng(8);
  HostTensor x = random_tensor(DataType::kF32, {2, 4, 3}, rng);
  HostTensor s2 = HostTensor::from_vector<float>(DataType::kF32, {2}, {2.f, -1.f});
  HostTensor b2 = HostTensor::from_vector<float>(DataType::kF32, {2}, {0.5f, 0.f});
  HostTensor s4 = HostTensor::from_vector<float>(DataType::kF32, {4}, {2.f, 2.f, -1.f, -1.f});
  HostTensor b4 = HostTensor::from_vector<float>(DataType::kF32, {4}, {0.5f, 0.5f, 0.f, 0.f});
  Attrs attrs{{"num_groups", ir::Attribute::from_int(2)}};
  auto r18 = run_op("GroupNormalization", {&x, &s2, &b2}, attrs, 18);
  auto r21 = run_op("GroupNormalization", {&x, &s4, &b4}, attrs, 21);
  ASSERT_TRUE(r18.is_ok()) << r18.status().to_string();
  ASSERT_TRUE(r21.is_ok()) << r21.status().to_string();
  std::vector<double> want(x.numel());
  for (int n = 0; n < 2; ++n)
    for (int g = 0; g < 2; ++g) {
      double mean = 0, var = 0;
      for (int i = 0; i < 6; ++i) mean += x.get_f64(n * 12 + g * 6 + i) / 6;
      for (int i = 0; i < 6; ++i) var += std::pow(x.get_f64(n * 12 + g * 6 + i) - mean, 2) / 6;
      for (int i = 0; i < 6; ++i)
        want[n * 12 + g * 6 + i] =
            (x.get_f64(n * 12 + g * 6 + i) - mean) / std::sqrt(var + 1e-5) * s2.get_f64(g) +
            b2.get_f64(g);
    }
  EXPECT_LT(max_rel_error(r18.value()[0], want, x.dims()), 1e-5);
  EXPECT_LT(max_rel_error(r21.value()[0], want, x.dims()), 1e-5);
  auto wrong = run_op("GroupNormalization", {&x, &s4, &b4}, attrs, 18);
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_EQ(wrong.status().code(), ErrorCode::kShapeMismatch);
}

TEST(NnOps, Im2colCol2imAreAdjoint) {
  // <im2col(x), c> == <x, col2im(c)> for any x, c: the property ConvTranspose relies on.
  std::mt19937 rng(17);
  std::uniform_real_distribution<double> d(-1, 1);
  cpu::ConvGeometry g{{5, 6}, {3, 3}, {3, 2}, {2, 2}, {1, 2}, {1, 2}};
  const int64_t ch = 2, rows = ch * g.kernel_size(), cols = g.column_size();
  std::vector<double> x(ch * g.image_size()), c(rows * cols), xc(rows * cols), cx(x.size(), 0.0);
  for (auto& v : x) v = d(rng);
  for (auto& v : c) v = d(rng);
  cpu::im2col(x.data(), ch, g, xc.data());
  cpu::col2im(c.data(), ch, g, cx.data());
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < c.size(); ++i) lhs += xc[i] * c[i];
  for (size_t i = 0; i < x.size(); ++i) rhs += x[i] * cx[i];
  EXPECT_NEAR(lhs, rhs, 1e-12);
}

}  // namespace
}  // namespace kiln
