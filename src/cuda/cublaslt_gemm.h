// Matrix products on the CUDA backend (ONNX Operators.md: MatMul, Gemm, MatMulInteger,
// Einsum; kiln's FusedMatMul). Every op is first described as one GemmProblem (strided,
// batched, broadcasting) on the host; cublaslt_gemm.cc lowers float problems to cuBLASLt
// (column-major, so row-major C is computed as Cᵀ = Bᵀ·Aᵀ) and integer problems to the
// small tiled kernel of kernels/gemm_util.cu, which also holds the epilogue kernels.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cuda/kernels/common.cuh"
#include "ops/matmul.h"

namespace kiln::cuda {

// ---- the problem ----------------------------------------------------------------------

/// One batch dim of a GemmProblem: its size and the element stride of A, B and C along it
/// (0 where that operand is broadcast over the dim).
struct GemmBatchDim {
  int64_t size = 1;
  int64_t a = 0, b = 0, c = 0;
};

/// C[t] = A[t] · B[t] for every batch index t, over strided operands: element (i, k) of
/// A[t] (m × k) is at a + Σ_d t_d·batch[d].a + i·a_rs + k·a_cs, and likewise B[t] (k × n)
/// and C[t] (m × n). MatMul, Gemm and two-operand Einsum all reduce to this form.
struct GemmProblem {
  int64_t m = 1, n = 1, k = 1;
  int64_t a_rs = 0, a_cs = 0, b_rs = 0, b_cs = 0, c_rs = 0, c_cs = 0;
  std::vector<GemmBatchDim> batch;  ///< outermost first

  int64_t batch_count() const;
  int64_t output_count() const { return batch_count() * m * n; }
};

/// numpy.matmul of dense row-major operands (ONNX MatMul): 1-D A is a row [1, K], 1-D B a
/// column [K, 1]; batch dims broadcast right-aligned. Dims must be valid (inference ran);
/// C is the dense row-major output.
GemmProblem matmul_problem(std::vector<int64_t> a_dims, std::vector<int64_t> b_dims);

/// ONNX Gemm's op(A) · op(B) for 2-D row-major A, B (op = transpose when trans_*); C is
/// the dense [M, N] output.
GemmProblem gemm_problem(const std::vector<int64_t>& a_dims, bool trans_a,
                         const std::vector<int64_t>& b_dims, bool trans_b);

/// Two-operand numpy.einsum as a GemmProblem (ONNX Einsum), when it is one: no repeated
/// label within a term, no label summed inside one operand only, the contracted labels (A
/// and B) forming one dense group in the same order in both, and broadcasting (size 1
/// against size n) only on batch labels (A, B and output). Row labels (A and output) and
/// column labels (B and output) that do not nest densely become batch dims.
/// nullopt otherwise (diagonals, traces, one-sided sums, ...).
std::optional<GemmProblem> einsum_problem(const std::string& equation,
                                          const std::vector<int64_t>& a_dims,
                                          const std::vector<int64_t>& b_dims,
                                          const std::vector<int64_t>& out_dims);

/// Canonical batch dims: drops size-1 dims and merges neighbours that step every operand
/// with one stride. With `fold`, also folds a batch dim into m when B is shared across it
/// and A's and C's rows simply continue (e.g. [B, S, K] x [K, N] becomes one [B·S, K] x
/// [K, N] GEMM), or into n symmetrically. Leaves the problem's result unchanged.
void simplify_batch(GemmProblem& p, bool fold);

// ---- kernels of gemm_util.cu --------------------------------------------------------------

/// Elementwise activation applied after a GEMM: FusedMatMul's (Relu, Gelu per ONNX Gelu-20).
using GemmActivation = ops::MatMulActivation;

/// Integer product of the tiled kernel (ONNX integer MatMul/Gemm/Einsum and MatMulInteger):
/// y[t](i, j) = Σ_k (A(i,k) - za) · (B(k,j) - zb), accumulated with two's-complement wrap,
/// then for Gemm y = alpha·y + beta·C(i, j) in double and truncated to the output type.
struct IntGemmParams {
  int64_t m = 1, n = 1, k = 1;
  int64_t a_rs = 0, a_cs = 0, b_rs = 0, b_cs = 0, y_rs = 0, y_cs = 0;
  int64_t batch = 1;
  StridedIndex a_batch{}, b_batch{}, y_batch{};  ///< batch index → element offset
  /// MatMulInteger zero points: A's for row i of A's matrix q (q = offset / (m·k)) is
  /// za[q·za_mat + i·za_vec]; B's for column j of B's matrix q is zb[q·zb_mat + j·zb_vec].
  int64_t za_mat = 0, za_vec = 0, zb_mat = 0, zb_vec = 0;
  /// Gemm: apply alpha/beta with C(i, j) at c[i·c_rs + j·c_cs] (0 strides broadcast).
  bool affine = false;
  double alpha = 1.0, beta = 0.0;
  int64_t c_rs = 0, c_cs = 0;
};

/// Device pointers of one integer product; za/zb/c may be null (absent).
struct IntGemmPointers {
  const void* a = nullptr;
  const void* b = nullptr;
  const void* za = nullptr;
  const void* zb = nullptr;
  const void* c = nullptr;
  void* y = nullptr;
};

/// Rows of the tiled integer kernel's grid are limited to 65535 tiles of this height.
constexpr int64_t kIntGemmTile = 16;

/// Integer product with A, B, C and Y all of dtype `dt` (any KILN_INT_TYPES).
Status launch_int_matmul(DataType dt, const IntGemmParams& p, const IntGemmPointers& ptr,
                         cudaStream_t stream);
/// MatMulInteger: A of `a_dt`, B of `b_dt` (each int8 or uint8), int32 output.
Status launch_matmul_integer(DataType a_dt, DataType b_dt, const IntGemmParams& p,
                             const IntGemmPointers& ptr, cudaStream_t stream);

/// y[i] = beta · c[c_index.offset(i)] for i < count (Gemm's C broadcast into the output
/// before a GEMM that accumulates into it). Float dtypes.
Status launch_scale_broadcast(DataType dt, double beta, const void* c, const StridedIndex& c_index,
                              int64_t count, void* y, cudaStream_t stream);

/// y[i] = act(y[i] + bias[i mod n]) in place for i < count (bias may be null): the GEMM
/// epilogue cuBLASLt has no fused form for (erf GELU) or no algorithm for. Float dtypes.
Status launch_bias_activation(DataType dt, GemmActivation act, const void* bias, int64_t n,
                              int64_t count, void* y, cudaStream_t stream);

}  // namespace kiln::cuda
