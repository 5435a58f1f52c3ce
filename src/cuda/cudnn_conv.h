// Convolutions on cuDNN (src/cuda/cudnn_conv.cc) and the epilogue kernel they fall back to
// (src/cuda/kernels/conv_epilogue.cu) when cuDNN cannot fuse bias, residual and
// activation into the convolution itself.
#pragma once

#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>

#include "kiln/status.h"
#include "kiln/types.h"
#include "ops/fused_conv.h"

namespace kiln::cuda {

/// Geometry of a convolution output Y [N, K, spatial...] for the epilogue: element i of
/// Y's memory has channel (i / spatial) % K (row-major) or i % K (channels-last).
struct ConvEpilogueParams {
  int64_t total = 0;     ///< elements of Y
  int64_t channels = 0;  ///< K
  int64_t spatial = 1;   ///< product of Y's spatial dims
  bool y_nhwc = false;   ///< Y is channels-last
  bool z_nhwc = false;   ///< residual Z is channels-last (may differ from Y)
  ops::FusedEpilogue act;
};

/// In place over Y (dtype `dt`: f32, f16 or bf16): y = act(y + bias[c] + z), computed in
/// f32 and rounded once. `bias` ([K]) and `z` (Y's logical shape) may be null. Enqueued
/// on `stream`. Errors: CudaError from the launch; Internal for another dtype.
Status launch_conv_epilogue(DataType dt, void* y, const void* bias, const void* z,
                            const ConvEpilogueParams& p, cudaStream_t stream);

/// The first cuDNN convolution of a process loads cuDNN's engine libraries and
/// initialises them (56-140 ms on an H200, docs/cuda.md "Cold start"): this builds one
/// small FP16 channels-last convolution plan on `handle` so that the cost is paid there,
/// e.g. on a thread while a plan file loads (warm_up_libraries). Errors are ignored: the
/// real convolutions report their own.
void warm_up_cudnn(cudnnHandle_t handle);

}  // namespace kiln::cuda
