// Depthwise 2-D convolution on channels-last activations, kiln's own kernel
// (src/cuda/depthwise_conv.cc: support checks; src/cuda/kernels/depthwise_conv.cu: the
// kernel). A tactic candidate next to cuDNN's engines for ONNX Conv (Operators.md, Conv)
// and kiln.FusedConv (src/ops/fused_conv.h) with group == C == K: cuDNN's FP16 NHWC
// engines are far from bandwidth-bound on these.
#pragma once

#include <cstdint>
#include <memory>

#include "cuda/kernel.h"
#include "kiln/status.h"
#include "kiln/types.h"
#include "ops/fused_conv.h"

namespace kiln::cuda {

/// Factory for a depthwise Conv or FusedConv node (channel multiplier 1).
///
/// Inputs: X [N, C, H, W] (kNhwc memory), W [C, 1, kh, kw] (any layout: with one input
/// channel per group KCRS and KRSC are the same bytes), optional bias B [C], and for
/// FusedConv an optional residual Z with Y's dims (kNhwc or row-major). Output Y
/// [N, C, OH, OW] (kNhwc). One dtype for all: f32, f16 or bf16; f16/bf16 accumulate and run
/// the epilogue act(conv + B + Z) in f32 and round once. W and B need not be constant.
/// Any kernel size (3x3 and 5x5 specialised), strides, dilations, explicit (asymmetric)
/// pads or auto_pad, read with Conv's window helpers (src/ops/window.h).
///
/// Returns NoGpuKernel (cfg.unsupported) for: another op, rank != 4, group != C or K != C,
/// row-major X or Y, other or mixed dtypes, bias/residual of the wrong shape, tensors of
/// 2^31 elements or more, kernel windows too large for shared memory (> ~12k taps).
/// Errors: OnnxBadAttribute from the window or activation attributes.
/// tactic(): "kiln:dwconv_nhwc_<kh>x<kw>[_s2][_generic]_<dtype>_v<channels per thread>".
Result<std::unique_ptr<Kernel>> create_depthwise_conv(const KernelConfig& cfg);

/// tactic_params() of the depthwise kernel: a recorded Conv tactic with these params is
/// rebuilt by create_depthwise_conv, not by cuDNN.
inline constexpr const char* kDepthwiseTacticParams = "kiln_dwconv";

// ---- between depthwise_conv.cc and kernels/depthwise_conv.cu ----------------------------

/// A validated depthwise convolution: logical dims, window and epilogue.
struct DepthwiseConvGeometry {
  DataType dt = DataType::kF32;
  int64_t n = 0, c = 0, h = 0, w = 0;  ///< X [N, C, H, W]
  int64_t oh = 0, ow = 0;              ///< Y [N, C, OH, OW]
  int64_t kh = 1, kw = 1;
  int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int64_t pad_h = 0, pad_w = 0;  ///< leading padding (trailing padding follows from OH/OW)
  bool bias = false;             ///< input 2 is added
  bool residual = false;         ///< input 3 is added
  bool z_nhwc = false;           ///< the residual is channels-last (else row-major NCHW)
  ops::FusedEpilogue act;
  int sm_count = 0;  ///< of the device (0 = unknown): sizes the grid
};

/// The kernel object for `g` (kernels/depthwise_conv.cu). NoGpuKernel when the window's
/// weights do not fit in shared memory.
Result<std::unique_ptr<Kernel>> make_depthwise_conv_kernel(const KernelConfig& cfg,
                                                           const DepthwiseConvGeometry& g);

}  // namespace kiln::cuda
