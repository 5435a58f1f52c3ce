#include "cpu/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace kiln::cpu {
namespace {

// BLAS rejects k == 0 (leading dimensions must be >= 1) and has nothing to do for empty
// outputs; both cases reduce to scaling C.
template <typename T>
bool gemm_trivial(int64_t m, int64_t n, int64_t k, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return true;
  if (k != 0) return false;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : c[i * ldc + j] * beta;
  return true;
}

int64_t ceil_div_pos(int64_t a, int64_t b) { return (a + b - 1) / b; }

// One routine for both directions so im2col and col2im cannot disagree on geometry.
// kToColumns: col[row, pos] = image[...] (0 for padding); else image[...] += col[row, pos].
template <typename T, bool kToColumns>
void window_transform(T* image, int64_t channels, const ConvGeometry& g, T* col) {
  const size_t r = g.rank();
  const int64_t ksize = g.kernel_size();
  const int64_t csize = g.column_size();
  const int64_t isize = g.image_size();
  if (r == 0) {  // 0-D convolution: one tap, one position.
    for (int64_t c = 0; c < channels; ++c) {
      if constexpr (kToColumns)
        col[c] = image[c];
      else
        image[c] += col[c];
    }
    return;
  }
  std::vector<int64_t> istride(r, 1);
  for (size_t d = r - 1; d > 0; --d) istride[d - 1] = istride[d] * g.image[d];
  const size_t last = r - 1;
  const int64_t w_out = g.columns[last], w_in = g.image[last], s_in = g.stride[last];
  const int64_t outer_count = w_out == 0 ? 0 : csize / w_out;
  std::vector<int64_t> k(r, 0), o(r, 0);
  for (int64_t c = 0; c < channels; ++c) {
    T* plane = image + c * isize;
    std::fill(k.begin(), k.end(), 0);
    for (int64_t kk = 0; kk < ksize; ++kk) {
      T* crow = col + (c * ksize + kk) * csize;
      // Column range of the innermost dim whose tap lands inside the image.
      const int64_t off = k[last] * g.dilation[last] - g.pad_begin[last];
      int64_t lo = off >= 0 ? 0 : ceil_div_pos(-off, s_in);
      int64_t hi = w_in - 1 - off < 0 ? 0 : (w_in - 1 - off) / s_in + 1;
      lo = std::min(lo, w_out);
      hi = std::clamp(hi, lo, w_out);
      std::fill(o.begin(), o.end(), 0);
      for (int64_t oc = 0; oc < outer_count; ++oc) {
        T* seg = crow + oc * w_out;
        bool valid = true;
        int64_t base = 0;
        for (size_t d = 0; d < last; ++d) {
          int64_t i = o[d] * g.stride[d] - g.pad_begin[d] + k[d] * g.dilation[d];
          if (i < 0 || i >= g.image[d]) {
            valid = false;
            break;
          }
          base += i * istride[d];
        }
        if constexpr (kToColumns) {
          if (!valid) {
            std::fill(seg, seg + w_out, T(0));
          } else {
            std::fill(seg, seg + lo, T(0));
            const int64_t at = base + off;  // image index of column 0 (may be < 0)
            if (s_in == 1 && hi > lo)
              std::memcpy(seg + lo, plane + at + lo, (hi - lo) * sizeof(T));
            else
              for (int64_t x = lo; x < hi; ++x) seg[x] = plane[at + x * s_in];
            std::fill(seg + hi, seg + w_out, T(0));
          }
        } else if (valid) {
          const int64_t at = base + off;
          for (int64_t x = lo; x < hi; ++x) plane[at + x * s_in] += seg[x];
        }
        for (size_t d = last; d-- > 0;) {  // advance the outer odometer
          if (++o[d] < g.columns[d]) break;
          o[d] = 0;
        }
      }
      for (size_t d = r; d-- > 0;) {  // advance the kernel odometer
        if (++k[d] < g.kernel[d]) break;
        k[d] = 0;
      }
    }
  }
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (gemm_trivial(m, n, k, beta, c, ldc)) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b,
              static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc) {
  if (gemm_trivial(m, n, k, beta, c, ldc)) return;
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b,
              static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

template <typename T>
void gemm_int(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
              const T* b, int64_t ldb, bool accumulate, T* c, int64_t ldc) {
  // Unsigned arithmetic gives the two's-complement wrap-around ONNX runtimes produce
  // without signed-overflow undefined behaviour.
  using U = std::make_unsigned_t<T>;
  for (int64_t i = 0; i < m; ++i) {
    U* crow = reinterpret_cast<U*>(c + i * ldc);
    if (!accumulate) std::fill(crow, crow + n, U(0));
    for (int64_t p = 0; p < k; ++p) {
      const U av = static_cast<U>(trans_a ? a[p * lda + i] : a[i * lda + p]);
      if (av == 0) continue;
      if (!trans_b) {
        const T* brow = b + p * ldb;
        for (int64_t j = 0; j < n; ++j) crow[j] += av * static_cast<U>(brow[j]);
      } else {
        for (int64_t j = 0; j < n; ++j) crow[j] += av * static_cast<U>(b[j * ldb + p]);
      }
    }
  }
}

template void gemm_int<int32_t>(bool, bool, int64_t, int64_t, int64_t, const int32_t*, int64_t,
                                const int32_t*, int64_t, bool, int32_t*, int64_t);
template void gemm_int<int64_t>(bool, bool, int64_t, int64_t, int64_t, const int64_t*, int64_t,
                                const int64_t*, int64_t, bool, int64_t*, int64_t);
template void gemm_int<uint32_t>(bool, bool, int64_t, int64_t, int64_t, const uint32_t*, int64_t,
                                 const uint32_t*, int64_t, bool, uint32_t*, int64_t);
template void gemm_int<uint64_t>(bool, bool, int64_t, int64_t, int64_t, const uint64_t*, int64_t,
                                 const uint64_t*, int64_t, bool, uint64_t*, int64_t);

int64_t ConvGeometry::image_size() const {
  int64_t n = 1;
  for (auto v : image) n *= v;
  return n;
}
int64_t ConvGeometry::column_size() const {
  int64_t n = 1;
  for (auto v : columns) n *= v;
  return n;
}
int64_t ConvGeometry::kernel_size() const {
  int64_t n = 1;
  for (auto v : kernel) n *= v;
  return n;
}
bool ConvGeometry::is_pointwise() const {
  for (size_t d = 0; d < rank(); ++d)
    if (kernel[d] != 1 || stride[d] != 1 || pad_begin[d] != 0 || image[d] != columns[d])
      return false;
  return true;
}

template <typename T>
void im2col(const T* image, int64_t channels, const ConvGeometry& g, T* col) {
  window_transform<T, true>(const_cast<T*>(image), channels, g, col);
}
template <typename T>
void col2im(const T* col, int64_t channels, const ConvGeometry& g, T* image) {
  window_transform<T, false>(image, channels, g, const_cast<T*>(col));
}

template void im2col<float>(const float*, int64_t, const ConvGeometry&, float*);
template void im2col<double>(const double*, int64_t, const ConvGeometry&, double*);
template void col2im<float>(const float*, int64_t, const ConvGeometry&, float*);
template void col2im<double>(const double*, int64_t, const ConvGeometry&, double*);

}  // namespace kiln::cpu
