// GPU matrix products against the CPU reference (src/cuda/cublaslt_gemm.cc, gemm_problem.cc,
// kernels/gemm_util.cu): MatMul's numpy broadcasting (folded, strided-batch, stride-0 and
// multi-launch batch plans, 1-D operands, empty dims), Gemm's transposes and every C mode,
// FusedMatMul's epilogues, Einsums that are one GEMM, and the integer kernel (MatMul, Gemm,
// Einsum, MatMulInteger). Sizes straddle tile edges (127/128/129) and odd leading dims.
#include <cstdint>
#include <string>
#include <vector>

#include "gpu_test_util.h"

namespace kiln::gputest {
namespace {

const std::vector<DataType> kFloatTypes = {kF32, kF16, kBF16, kF64};
const std::vector<DataType> kIntTypes = {kI32, kI64, kU32, kU64};

using Dims = std::vector<int64_t>;

/// A float operand in [-1, 1] (sums of products then stay near sqrt(K)).
In mat(DataType t, Dims d, bool constant = false) {
  return In{t, std::move(d), constant, {}, -1.0, 1.0};
}
/// An integer operand with small values (signed types also negative).
In ints_of(DataType t, Dims d, bool constant = false) {
  const bool is_unsigned = t == kU8 || t == kU32 || t == kU64;
  return In{t, std::move(d), constant, {}, is_unsigned ? 0.0 : -40.0, 40.0};
}
std::string label(const Dims& a, const Dims& b, DataType t) {
  auto s = [](const Dims& d) {
    std::string r = "[";
    for (size_t i = 0; i < d.size(); ++i) r += (i ? "," : "") + std::to_string(d[i]);
    return r + "]";
  };
  return s(a) + "x" + s(b) + " " + dtype_name(t);
}
/// FP32 (TF32 off) differs from OpenBLAS only in summation order: allow for it over K.
Check tolerance(DataType t, int64_t k) {
  Check c;
  if (t == kF32) c.atol = std::max(1e-5, 1e-6 * static_cast<double>(k));
  return c;
}
int64_t inner_dim(const Dims& a) { return a.empty() ? 1 : a.back(); }

// ---- MatMul ---------------------------------------------------------------------------------

struct MatMulCase {
  Dims a, b;
  bool b_const = false;  ///< weights as initializers (the BERT case)
};

const MatMulCase kMatMulCases[] = {
    // 2-D, odd sizes and tile edges.
    {{1, 1}, {1, 1}},
    {{7, 13}, {13, 5}, true},
    {{127, 129}, {129, 65}},
    {{128, 256}, {256, 257}, true},
    {{768, 768}, {768, 64}, true},
    // Batch folded into M: [B, S, K] x [K, N], also with one row per batch.
    {{3, 17, 33}, {33, 19}, true},
    {{4, 128, 64}, {64, 129}, true},
    {{5, 1, 9}, {9, 7}},
    // Equal batch dims: one strided batch.
    {{2, 3, 17, 9}, {2, 3, 9, 33}},
    {{6, 65, 64}, {6, 64, 65}},
    // Broadcast batch: stride-0 operands and separate launches.
    {{7, 9}, {4, 9, 5}},
    {{2, 1, 7, 9}, {1, 3, 9, 5}},
    {{2, 1, 7, 9}, {3, 9, 5}},
    {{3, 1, 7, 9}, {3, 4, 9, 5}},
    {{4, 7, 1}, {4, 1, 5}},
    // 1-D operands.
    {{9}, {9, 5}},
    {{7, 9}, {9}, true},
    {{9}, {9}},
    {{2, 3, 7, 9}, {9}},
    {{9}, {2, 9, 5}},
    // Empty dims: no rows, and K = 0 (zeros).
    {{0, 9}, {9, 5}},
    {{7, 0}, {0, 5}},
    {{2, 0, 4}, {4, 3}, true},
};

TEST(GemmGpu, MatMulFloat) {
  KILN_REQUIRE_GPU();
  for (DataType t : kFloatTypes)
    for (const MatMulCase& c : kMatMulCases)
      expect_matches_cpu({.op = "MatMul",
                          .inputs = {mat(t, c.a), mat(t, c.b, c.b_const)},
                          .label = label(c.a, c.b, t)},
                         tolerance(t, inner_dim(c.a)));
}

TEST(GemmGpu, MatMulInteger) {
  KILN_REQUIRE_GPU();
  const MatMulCase cases[] = {
      {{7, 13}, {13, 5}}, {{2, 3, 17, 9}, {3, 9, 33}, true}, {{9}, {9, 5}}, {{4, 7, 0}, {0, 5}}};
  for (DataType t : kIntTypes)
    for (const MatMulCase& c : cases)
      expect_matches_cpu({.op = "MatMul",
                          .inputs = {ints_of(t, c.a), ints_of(t, c.b, c.b_const)},
                          .label = label(c.a, c.b, t)});
  // Products that overflow int32 wrap like two's complement, as on the CPU.
  In big{kI32, {5, 33}, false, {}, -100000.0, 100000.0};
  In big_b{kI32, {33, 6}, false, {}, -100000.0, 100000.0};
  expect_matches_cpu({.op = "MatMul", .inputs = {big, big_b}, .label = "int32 wrap"});
}

// ---- Gemm -----------------------------------------------------------------------------------

struct GemmCase {
  int64_t m, k, n;
  bool trans_a, trans_b;
  float alpha, beta;
  Dims c;  ///< C's dims; {-1} = no C
  const char* what;
};

const GemmCase kGemmCases[] = {
    {33, 17, 65, false, false, 1.f, 1.f, {-1}, "no C"},
    {33, 17, 65, true, false, 1.f, 1.f, {65}, "transA, bias epilogue"},
    {33, 17, 65, false, true, 1.f, 1.f, {1, 65}, "transB, [1,N] bias epilogue"},
    {33, 17, 65, true, true, 0.5f, 1.f, {65}, "both transposed, alpha with bias"},
    {33, 17, 65, false, true, 1.f, 2.f, {65}, "beta != 1: [N] broadcast"},
    {33, 17, 65, false, false, 1.5f, 0.5f, {}, "scalar C"},
    {33, 17, 65, false, false, 1.f, 1.f, {1}, "[1] C"},
    {33, 17, 65, false, false, 1.f, -1.f, {33, 1}, "[M,1] C"},
    {33, 17, 65, true, false, 2.f, 0.25f, {33, 65}, "[M,N] C as cuBLASLt's C"},
    {33, 17, 65, false, false, 1.f, 0.f, {33, 65}, "beta = 0 ignores C"},
    {1, 1, 1, false, false, 1.f, 1.f, {1}, "1x1x1"},
    {127, 129, 1, false, true, 1.f, 1.f, {1}, "N = 1"},
    {256, 768, 768, false, true, 1.f, 1.f, {768}, "BERT-sized linear"},
    {7, 0, 5, false, false, 1.f, 1.f, {5}, "K = 0: C only"},
};

In gemm_operand(DataType t, int64_t rows, int64_t cols, bool trans, bool constant) {
  return t == kI32 || t == kI64 || t == kU32 || t == kU64
             ? ints_of(t, trans ? Dims{cols, rows} : Dims{rows, cols}, constant)
             : mat(t, trans ? Dims{cols, rows} : Dims{rows, cols}, constant);
}

void run_gemm_cases(const std::vector<DataType>& types) {
  for (DataType t : types) {
    for (const GemmCase& c : kGemmCases) {
      OpCase op{.op = "Gemm",
                .opset = 13,
                .attrs = {{"transA", i(c.trans_a)},
                          {"transB", i(c.trans_b)},
                          {"alpha", f(c.alpha)},
                          {"beta", f(c.beta)}},
                .inputs = {gemm_operand(t, c.m, c.k, c.trans_a, false),
                           gemm_operand(t, c.k, c.n, c.trans_b, true)},
                .label = std::string(c.what) + " " + dtype_name(t)};
      if (c.c != Dims{-1})
        op.inputs.push_back(dtype_is_float(t) ? mat(t, c.c, true) : ints_of(t, c.c, true));
      expect_matches_cpu(op, tolerance(t, c.k));
    }
  }
}

TEST(GemmGpu, GemmFloat) {
  KILN_REQUIRE_GPU();
  run_gemm_cases(kFloatTypes);
}

TEST(GemmGpu, GemmInteger) {
  KILN_REQUIRE_GPU();
  run_gemm_cases({kI32, kI64});
}

TEST(GemmGpu, GemmCNotConstant) {
  KILN_REQUIRE_GPU();
  for (Dims c : {Dims{65}, Dims{33, 65}, Dims{33, 1}})
    expect_matches_cpu({.op = "Gemm",
                        .opset = 13,
                        .inputs = {mat(kF32, {33, 17}), mat(kF32, {17, 65}), mat(kF32, c)},
                        .label = "runtime C"},
                       tolerance(kF32, 17));
}

// ---- FusedMatMul ----------------------------------------------------------------------------

TEST(GemmGpu, FusedMatMulEpilogues) {
  KILN_REQUIRE_GPU();
  struct Act {
    const char* activation;
    const char* approximate;
  };
  const Act acts[] = {{"", "none"}, {"Relu", "none"}, {"Gelu", "none"}, {"Gelu", "tanh"}};
  const MatMulCase shapes[] = {{{4, 33, 64}, {64, 129}, true},
                               {{7, 13}, {13, 5}, true},
                               {{9}, {9, 6}, true},
                               {{2, 3, 5, 8}, {8, 16}, true},
                               {{3, 5, 8}, {3, 8, 16}}};
  for (DataType t : kFloatTypes) {
    for (const Act& act : acts) {
      for (const MatMulCase& s : shapes) {
        for (bool bias : {true, false}) {
          OpCase op{.op = "FusedMatMul",
                    .domain = "kiln",
                    .attrs = {{"activation", gputest::s(act.activation)},
                              {"approximate", gputest::s(act.approximate)}},
                    .inputs = {mat(t, s.a), mat(t, s.b, s.b_const)},
                    .label = label(s.a, s.b, t) + " " + act.activation + "/" + act.approximate +
                             (bias ? " bias" : "")};
          if (bias) op.inputs.push_back(mat(t, {s.b.back()}, true));
          expect_matches_cpu(op, tolerance(t, inner_dim(s.a)));
        }
      }
    }
  }
}

// ---- Einsum ---------------------------------------------------------------------------------

struct EinsumCase {
  const char* equation;
  Dims a, b;
  bool gpu = true;  ///< false: not one GEMM, runs on the host
};

const EinsumCase kEinsumCases[] = {
    {"ij,jk->ik", {7, 13}, {13, 5}},
    {"ij,jk", {7, 13}, {13, 5}},
    {"bij,bjk->bik", {3, 17, 9}, {3, 9, 33}},
    {"bhqd,bhkd->bhqk", {2, 3, 17, 16}, {2, 3, 19, 16}},  // attention scores, B transposed
    {"bhqk,bhkd->bhqd", {2, 3, 17, 19}, {2, 3, 19, 16}},
    {"bid,de->bie", {4, 33, 16}, {16, 20}},
    {"ik,jk->ij", {7, 13}, {5, 13}},
    {"ij,jk->ki", {7, 13}, {13, 5}},                  // output stored column-major
    {"ibd,jbd->bij", {7, 3, 8}, {9, 3, 8}},           // batch label between rows and K
    {"...ij,...jk->...ik", {2, 1, 7, 9}, {3, 9, 5}},  // broadcast ellipsis
    {"i,i->", {33}, {33}},
    {"ij,j->i", {7, 13}, {13}},
    {"bn,anm->bam", {4, 6}, {3, 6, 5}},
    {"ii,ij->j", {5, 5}, {5, 7}, false},  // diagonal
    {"ij,kl->ijkl", {3, 4}, {5, 6}},      // outer product (K = 1)
};

TEST(GemmGpu, Einsum) {
  KILN_REQUIRE_GPU();
  for (DataType t : {kF32, kF16, kI32})
    for (const EinsumCase& c : kEinsumCases)
      expect_matches_cpu({.op = "Einsum",
                          .opset = 12,
                          .attrs = {{"equation", s(c.equation)}},
                          .inputs = {dtype_is_float(t) ? mat(t, c.a) : ints_of(t, c.a),
                                     dtype_is_float(t) ? mat(t, c.b) : ints_of(t, c.b)},
                          .label = std::string(c.equation) + " " + dtype_name(t)},
                         Check{.allow_host = !c.gpu});
}

// ---- MatMulInteger --------------------------------------------------------------------------

TEST(GemmGpu, MatMulIntegerZeroPoints) {
  KILN_REQUIRE_GPU();
  auto q = [](DataType t, Dims d, bool constant = false) {
    return In{t, std::move(d), constant, {}, t == kU8 ? 0.0 : -128.0, t == kU8 ? 255.0 : 127.0};
  };
  struct Case {
    DataType a, b;
    Dims ad, bd, za, zb;  ///< za/zb {-1} = omitted
  };
  const Case cases[] = {
      {kU8, kU8, {7, 13}, {13, 5}, {-1}, {-1}},
      {kU8, kU8, {7, 13}, {13, 5}, {}, {}},
      {kU8, kI8, {7, 13}, {13, 5}, {7}, {5}},
      {kI8, kU8, {2, 7, 13}, {13, 5}, {2, 7, 1}, {1}},
      {kI8, kI8, {2, 3, 7, 33}, {3, 33, 9}, {1}, {3, 1, 9}},
      {kU8, kU8, {33}, {33, 17}, {}, {17}},
  };
  for (const Case& c : cases) {
    OpCase op{.op = "MatMulInteger",
              .opset = 10,
              .inputs = {q(c.a, c.ad), q(c.b, c.bd, true)},
              .label = label(c.ad, c.bd, c.a) + "/" + dtype_name(c.b)};
    op.inputs.push_back(c.za == Dims{-1} ? In{} : q(c.a, c.za, true));
    op.inputs.push_back(c.zb == Dims{-1} ? In{} : q(c.b, c.zb, true));
    expect_matches_cpu(op);
  }
}

}  // namespace
}  // namespace kiln::gputest
