// Bias + residual + activation over a convolution's output in one pass, for convolutions
// whose epilogue cuDNN cannot fuse (see cudnn_conv.cc). One thread per element, in Y's
// memory order, so reads of Y and (same-layout) Z are coalesced; the per-channel bias is a
// small table that stays in L1.
#include "cuda/cudnn_conv.h"
#include "cuda/kernels/common.cuh"

namespace kiln::cuda {
namespace {

template <typename T>
__global__ void conv_epilogue_kernel(T* __restrict__ y, const T* __restrict__ bias,
                                     const T* __restrict__ z, ConvEpilogueParams p) {
  const int64_t k = p.channels, s = p.spatial;
  KILN_GRID_STRIDE_LOOP(i, p.total) {
    // Logical (n, c, spatial) of element i of Y's memory order.
    int64_t n, c, sp;
    if (p.y_nhwc) {
      c = i % k;
      sp = (i / k) % s;
      n = i / (k * s);
    } else {
      sp = i % s;
      c = (i / s) % k;
      n = i / (k * s);
    }
    float v = to_compute(y[i]);
    if (bias) v += to_compute(bias[c]);
    if (z) {
      const int64_t zi = p.z_nhwc == p.y_nhwc ? i
                         : p.z_nhwc          ? (n * s + sp) * k + c
                                             : (n * k + c) * s + sp;
      v += to_compute(z[zi]);
    }
    y[i] = from_compute<T>(ops::apply_fused_activation<float>(p.act, v));
  }
}

}  // namespace

Status launch_conv_epilogue(DataType dt, void* y, const void* bias, const void* z,
                            const ConvEpilogueParams& p, cudaStream_t stream) {
  if (p.total == 0) return Status::ok();
  return dispatch_launch<DataType::kF32, DataType::kF16, DataType::kBF16>(dt, [&](auto t) {
    using T = decltype(t);
    conv_epilogue_kernel<T><<<grid_for(p.total), kBlock, 0, stream>>>(
        static_cast<T*>(y), static_cast<const T*>(bias), static_cast<const T*>(z), p);
    KILN_CUDA_CHECK_LAUNCH("conv_epilogue_kernel");
    return Status::ok();
  });
}

}  // namespace kiln::cuda
