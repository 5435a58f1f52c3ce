// Channel padding of thin convolution inputs (TensorRT's padded channel formats, e.g.
// HWC4): a 16-bit NHWC convolution whose input has 1 to 3 channels (the stem of every
// image model: RGB) finds no fast tensor-core engine in cuDNN, whose channels-last kernels
// want the channel count to fill 8-byte vectors. Padding the input to 4 channels with
// zeros, and the weights with zero input channels, computes exactly the same output (the
// extra products are 0 * 0) in less time: ResNet-50's 7x7 stem at batch 256 on an H100
// takes 0.84 ms with 4 channels against 1.51 ms for kiln's best 3-channel engine. The Pad
// node (which also does the NCHW → NHWC relayout the input needs anyway) is one more
// launch, so small inputs (fewer than kMinPaddedPixels pixels, e.g. batch 1 at 224²) are
// padded only where kiln's tensor-core stem kernel has a variant for the convolution
// (cuda/stem_conv_variants.h), whose gain outweighs the launch.
#pragma once

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::builder {

/// Input pixels (N * H * W) from which padding pays for its extra launch.
inline constexpr int64_t kMinPaddedPixels = int64_t{1} << 20;

/// Rewrites every 2-D Conv / kiln.FusedConv with group 1, an f16/bf16 input of 1..3
/// channels (static [N, C, H, W], at least kMinPaddedPixels pixels or a window, stride and
/// K the stem kernel has a variant for) and constant weights
/// [K, C, kh, kw]: its input becomes
/// Pad(x, channels C..3 = 0) ([N, 4, H, W], ONNX Pad-13, constant mode) and its weights
/// [K, 4, kh, kw] with zero input channels. Run before layout assignment, so the Pad node
/// is placed NHWC next to the convolution. Returns the number of convolutions padded.
/// Errors: none beyond the graph's own (topological sort of the rewritten graph).
Result<int> pad_conv_input_channels(ir::Graph& g);

}  // namespace kiln::builder
