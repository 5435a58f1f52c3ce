// The pieces of the convolution ops (src/ops/conv.cc) that other code reuses: kiln's fused
// convolution op (src/ops/fused_conv.cc) infers and computes through Conv's own inference
// and CPU kernel, and the CUDA backend (src/cuda/cudnn_conv.cc) derives ConvTranspose's
// padding exactly as the CPU reference does.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ops/registry.h"
#include "ops/window.h"

namespace kiln::ops {

/// Conv shape/type inference (ONNX Operators.md, Conv): X [N, C, D1..Dn] and W
/// [M, C/group, k1..kn] of one dtype give Y [N, M, O1..On]; an optional bias input 2 must
/// be [M]. Errors: TypeMismatch (X and W dtypes), ShapeMismatch (ranks, channels, group),
/// OnnxBadAttribute (window attributes).
Status infer_conv(InferContext& ctx);

/// Conv's CPU reference kernel (im2col + GEMM per group, f16/bf16 computed in f32): fills
/// output 0 from inputs 0 (X), 1 (W) and the optional bias input 2.
Status conv_cpu(KernelContext& ctx);

/// Runs after the convolution on its wide result, before that is rounded into output 0:
/// `in` are the node's inputs (f16/bf16 ones widened to f32; null when omitted) and `out`
/// the f32 (f64 for f64 tensors) result, which the epilogue updates in place.
using ConvCpuEpilogue =
    std::function<Status(const std::vector<const HostTensor*>& in, HostTensor& out)>;

/// conv_cpu with an epilogue (may be empty): FusedConv adds its residual and applies its
/// activation before the single rounding to a narrow output dtype. Inputs past the bias
/// are only seen by the epilogue.
Status conv_cpu_with_epilogue(KernelContext& ctx, const ConvCpuEpilogue& epilogue);

/// ConvTranspose output geometry (Operators.md, ConvTranspose: output_padding,
/// output_shape, auto_pad): output spatial sizes (-1 where the input's is unknown) and the
/// leading padding cropped from the full transposed result.
struct TransposeDims {
  std::vector<int64_t> out;
  std::vector<int64_t> pad_begin;
};

/// TransposeDims of node `n` (ConvTranspose) with window attributes `w` over input
/// spatial sizes `in` (< 0 = unknown). Errors: OnnxBadAttribute (output_padding /
/// output_shape lengths), ShapeMismatch (a non-positive output size).
Result<TransposeDims> conv_transpose_dims(const ir::Node& n, const WindowAttrs& w,
                                          const std::vector<int64_t>& in);

}  // namespace kiln::ops
