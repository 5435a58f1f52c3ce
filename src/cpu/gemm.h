// CPU matrix-multiply building blocks: thin wrappers over OpenBLAS (cblas_sgemm /
// cblas_dgemm) for floats, a blocked loop for integer types, and the im2col / col2im
// transforms that turn N-D convolution into GEMM (Chellapilla et al., "High Performance
// Convolutional Neural Networks for Document Processing", 2006). Used by the Conv,
// ConvTranspose, MatMul, Gemm and Einsum reference kernels and by later backends' tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::cpu {

/// C = alpha * op(A) * op(B) + beta * C with row-major storage, op(X) = X or Xᵀ.
/// op(A) is m×k, op(B) is k×n, C is m×n; lda/ldb/ldc are row strides in elements of the
/// matrices as stored (before op). beta == 0 overwrites C (NaNs in C are not propagated).
/// Dimensions may be 0 (C is then scaled by beta, or left alone when k == 0 and beta == 1).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
/// f64 overload of gemm (cblas_dgemm).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc);

/// Integer GEMM C = op(A) * op(B) (+ C when accumulate), computed in T with wrap-around
/// (ONNX integer MatMul/Gemm semantics). T: int32_t, int64_t, uint32_t, uint64_t.
template <typename T>
void gemm_int(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
              const T* b, int64_t ldb, bool accumulate, T* c, int64_t ldc);

/// Geometry of an N-D sliding window (convolution or its transpose), spatial dims only.
/// Image position of window tap `k` at column position `o`, per dim:
///   i = o * stride - pad_begin + k * dilation  (taps with i outside [0, image) read 0).
struct ConvGeometry {
  std::vector<int64_t> image;    ///< image spatial dims (Conv input / ConvTranspose output)
  std::vector<int64_t> columns;  ///< column positions (Conv output / ConvTranspose input)
  std::vector<int64_t> kernel;
  std::vector<int64_t> stride;
  std::vector<int64_t> dilation;
  std::vector<int64_t> pad_begin;

  size_t rank() const { return image.size(); }
  int64_t image_size() const;   ///< product of image dims
  int64_t column_size() const;  ///< product of column dims
  int64_t kernel_size() const;  ///< product of kernel dims
  /// True when im2col is the identity (1×…×1 kernel, unit strides, no padding).
  bool is_pointwise() const;
};

/// im2col: `col` is a (channels·kernel_size) × column_size row-major matrix; row
/// (c, k₀…kₙ) holds image channel c sampled at every column position. Every element of
/// `col` is written (padding taps as 0). T: float, double.
template <typename T>
void im2col(const T* image, int64_t channels, const ConvGeometry& g, T* col);

/// col2im: the adjoint of im2col; adds every element of `col` into the image position
/// it was sampled from (taps falling into padding are dropped). `image` must be
/// initialised by the caller (zeros or a bias). T: float, double.
template <typename T>
void col2im(const T* col, int64_t channels, const ConvGeometry& g, T* image);

}  // namespace kiln::cpu
