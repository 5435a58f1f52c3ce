// The compiled variants of kiln's tensor-core stem convolution (kernels/stem_conv.cu,
// conv_nhwc.h): which (window, stride, output channels) it runs, with 4 input channels,
// 16-bit, dilation 1. Header-only and free of CUDA headers, so that the builder's channel
// padding (builder/channel_padding.h) can ask whether a padded stem will find the kernel.
#pragma once

#include <cstdint>

namespace kiln::cuda {

/// One compiled variant: a square window of `window` taps per side, square `stride`,
/// `k` output channels.
struct StemConvVariant {
  int64_t window, stride, k;
};

inline constexpr StemConvVariant kStemConvVariants[] = {
    {7, 2, 64}, {3, 2, 16}, {3, 2, 32}, {3, 1, 32}, {3, 1, 64}};

/// Whether the stem kernel has a variant for a kh x kw window, strides (sh, sw), dilations
/// (dh, dw) and K output channels (4 input channels, group 1 assumed).
inline bool stem_conv_has_variant(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                                  int64_t dw, int64_t k) {
  if (kh != kw || sh != sw || dh != 1 || dw != 1) return false;
  for (const StemConvVariant& v : kStemConvVariants)
    if (v.window == kh && v.stride == sh && v.k == k) return true;
  return false;
}

}  // namespace kiln::cuda
