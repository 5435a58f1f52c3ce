// kiln's own convolution kernels on channels-last activations, tactic candidates next to
// cuDNN's engines for ONNX Conv (Operators.md, Conv) and kiln.FusedConv
// (src/ops/fused_conv.h) where cuDNN's FP16 NHWC engines are far from the hardware's
// limits:
//   - depthwise (group == C == K): bandwidth-bound, cuDNN's engines are slow on them;
//   - "stem" convolutions (dense, 4 input channels, e.g. ResNet's 7x7/2 first layer after
//     builder/channel_padding): an implicit GEMM on tensor cores with a tiny GEMM-K
//     (R*S*C), where cuDNN's best engine is 2.9x slower (ResNet-50 conv1, batch 256, H200);
//   - 1x1 convolutions as one GEMM over the pixels: cuBLASLt (cublaslt_gemm.cc) or kiln's
//     tensor-core GEMM (tc_gemm.h), which wins on small batches.
// src/cuda/conv_nhwc.cc holds the support checks (host-only: the attribute readers are);
// src/cuda/kernels/{depthwise,stem}_conv.cu the kernels.
#pragma once

#include <cstdint>
#include <memory>

#include "cuda/kernel.h"
#include "kiln/status.h"
#include "kiln/types.h"
#include "ops/fused_conv.h"

namespace kiln::cuda {

/// A validated 2-D convolution on channels-last tensors: logical dims, window, epilogue.
struct ConvNhwcGeometry {
  DataType dt = DataType::kF32;
  int64_t n = 0, c = 0, h = 0, w = 0;  ///< X [N, C, H, W]
  int64_t k = 0;                       ///< output channels (Y [N, K, OH, OW])
  int64_t oh = 0, ow = 0;
  int64_t kh = 1, kw = 1;
  int64_t group = 1;
  int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int64_t pad_h = 0, pad_w = 0;  ///< leading padding (trailing padding follows from OH/OW)
  bool w_krsc = true;            ///< W's memory is [K][kh][kw][C/group] (else KCRS)
  bool bias = false;             ///< input 2 is added
  bool residual = false;         ///< input 3 is added
  bool z_nhwc = false;           ///< the residual is channels-last (else row-major NCHW)
  ops::FusedEpilogue act;
  int sm_count = 0;  ///< of the device (0 = unknown): sizes the grid
};

/// The common checks of kiln's NHWC convolution kernels, named `who` in the messages: a
/// Conv or FusedConv node with X, W (and optional B [K], residual Z with Y's dims) of one
/// dtype among f32/f16/bf16, rank 4, X and Y channels-last, every tensor < 2^31 elements.
/// Window attributes are read with Conv's helpers (src/ops/window.h); an empty output
/// skips them. Returns NoGpuKernel (cfg.unsupported) for what is outside that;
/// OnnxBadAttribute from the window or activation attributes.
Result<ConvNhwcGeometry> read_conv_nhwc(const KernelConfig& cfg, const char* who);

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

/// Factory for a dense "stem" Conv or FusedConv node: group 1, C = 4 input channels,
/// f16 or bf16 (FP32 accumulation, epilogue act(conv + B) in f32, one rounding), X
/// [N, 4, H, W] and Y [N, K, OH, OW] channels-last, W [K, 4, kh, kw] KRSC or KCRS,
/// optional bias B [K]. Windows and output channels with a compiled variant: 7x7 stride 2
/// with K = 64 (ResNet/DeepLab stems), 3x3 stride 2 with K = 16 or 32, 3x3 stride 1 with
/// K = 32 or 64; dilation 1, any pads. Algorithm: implicit GEMM (M = N*OH*OW output
/// pixels, N = K, GEMM-K = kh*kw*C) on mma.sync.m16n8k16 (PTX ISA, "Warp-level matrix
/// multiply-accumulate"), see kernels/stem_conv.cu.
///
/// Returns NoGpuKernel (cfg.unsupported) for anything else, a residual input included.
/// tactic(): "kiln:stem_conv_<kh>x<kw>s<stride>_c4k<K>_<dtype>".
Result<std::unique_ptr<Kernel>> create_stem_conv(const KernelConfig& cfg);

/// tactic_params() of the stem kernel (see kDepthwiseTacticParams).
inline constexpr const char* kStemConvTacticParams = "kiln_stemconv";

/// read_conv_nhwc plus the checks of a convolution that is one GEMM over the pixels: a
/// 1x1 window, stride 1, no pads, group 1, a channels-last residual (if any).
/// NoGpuKernel for anything else.
Result<ConvNhwcGeometry> read_conv1x1(const KernelConfig& cfg, const char* who);

/// Factory for a 1x1 Conv or FusedConv node (read_conv1x1) on kiln's tensor-core GEMM
/// (cuda/tc_gemm.h): Y[M][K] = act(X[M][C] · W[K][C]ᵀ + B + Z) with M = N*H*W, f16 or
/// bf16, any FusedConv activation. Replays `cfg.tactic` (kTcGemmTacticPrefix + tile);
/// errors: TacticUnavailable for other params or a tile this GPU cannot run; NoGpuKernel
/// as read_conv1x1 and for other dtypes.
Result<std::unique_ptr<Kernel>> create_conv1x1_tc(const KernelConfig& cfg);

/// The tensor-core GEMM's tiles and splits for a 1x1 convolution (autotuner candidates);
/// NoGpuKernel as create_conv1x1_tc.
Result<std::vector<std::unique_ptr<Kernel>>> conv1x1_tc_candidates(const KernelConfig& cfg);

/// Factory for a 1x1 Conv or FusedConv node (stride 1, no pads, group 1) on channels-last
/// f32/f16/bf16 tensors as one cuBLASLt GEMM (cublaslt_gemm.cc): Y[M][K] = X[M][C] ·
/// W[K][C]ᵀ with M = N*H*W, FP32 accumulation; bias and Relu in cuBLASLt's epilogue, a
/// channels-last residual Z as its C matrix with beta = 1, so Y = act(X·Wᵀ + Z + B).
/// Replays `cfg.tactic` (kConv1x1GemmTacticPrefix + a cuBLASLt algorithm). Returns
/// NoGpuKernel for another window, a row-major residual, another activation; errors:
/// TacticUnavailable for a recorded algorithm this cuBLAS cannot run.
/// tactic(): "conv1x1_gemm:cublaslt:<dtype>:algo<id>:tile<id>:...".
Result<std::unique_ptr<Kernel>> create_conv1x1_gemm(const KernelConfig& cfg);

/// The 1x1 GEMM with every cuBLASLt algorithm the heuristic offers (autotuner candidates);
/// NoGpuKernel as create_conv1x1_gemm.
Result<std::vector<std::unique_ptr<Kernel>>> conv1x1_gemm_candidates(const KernelConfig& cfg);

/// Prefix of the 1x1 GEMM's tactic_params() (the rest is the cuBLASLt algorithm).
inline constexpr const char* kConv1x1GemmTacticPrefix = "gemm1x1:";

// ---- between conv_nhwc.cc and kernels/{depthwise,stem}_conv.cu -----------------------

/// The depthwise kernel object for `g` (kernels/depthwise_conv.cu). NoGpuKernel when the
/// window's weights do not fit in shared memory.
Result<std::unique_ptr<Kernel>> make_depthwise_conv_kernel(const KernelConfig& cfg,
                                                           const ConvNhwcGeometry& g);

/// The stem kernel object for `g` (kernels/stem_conv.cu): NoGpuKernel when no compiled
/// variant matches (dtype, C, window, stride, K).
Result<std::unique_ptr<Kernel>> make_stem_conv_kernel(const KernelConfig& cfg,
                                                      const ConvNhwcGeometry& g);

}  // namespace kiln::cuda
