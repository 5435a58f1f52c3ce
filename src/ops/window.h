// Sliding-window attributes shared by Conv, ConvTranspose, ConvInteger and the pooling
// ops: kernel_shape, strides, dilations, pads, auto_pad, ceil_mode, and the ONNX
// output-size equations (Operators.md, Conv and MaxPool: "auto_pad", "ceil_mode").
// Written once so shape inference and the kernels of every windowed op agree.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/gemm.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::ops {

/// ONNX auto_pad attribute.
enum class AutoPad { kNotSet, kSameUpper, kSameLower, kValid };

/// Window attributes of one node for a known number of spatial dims, defaults filled in.
struct WindowAttrs {
  std::vector<int64_t> kernel;     ///< kernel_shape
  std::vector<int64_t> strides;    ///< default 1
  std::vector<int64_t> dilations;  ///< default 1
  std::vector<int64_t> pads;       ///< [begin_0.., end_0..], default 0
  AutoPad auto_pad = AutoPad::kNotSet;
  bool ceil_mode = false;
  size_t rank() const { return kernel.size(); }
};

/// Output size and effective padding of one spatial dim; out < 0 when the input size is
/// unknown (shape inference with symbolic dims).
struct WindowDim {
  int64_t out = -1;
  int64_t pad_begin = 0;
  int64_t pad_end = 0;
};

/// Parses auto_pad ("NOTSET" when absent). OnnxBadAttribute for other strings.
Result<AutoPad> parse_auto_pad(const ir::Node& n);

/// Attribute-only validation for CheckFns: auto_pad value, positive strides, dilations and
/// kernel_shape, non-negative pads. OnnxBadAttribute naming the attribute.
Status check_window_attrs(const ir::Node& n);

/// Reads the window attributes of `n` for `rank` spatial dims. `kernel` is used when
/// the node has no kernel_shape attribute (Conv takes it from the weights' dims).
/// Errors (OnnxBadAttribute): list lengths that do not match `rank`, bad values.
Result<WindowAttrs> read_window_attrs(const ir::Node& n, size_t rank,
                                      const std::vector<int64_t>& kernel);

/// Output size and padding of spatial dim `d` of a forward window (Conv, pooling) over an
/// input of size `in` (< 0 = unknown). Explicit pads follow the floor/ceil equations of
/// MaxPool (ceil-mode windows must start inside the input or left padding); SAME_* give
/// ceil(in / stride) with the padding split as the spec says; VALID pads nothing.
/// ShapeMismatch when the dilated kernel is larger than the padded input.
Result<WindowDim> forward_window_dim(const WindowAttrs& w, size_t d, int64_t in);

/// forward_window_dim for every spatial dim of a concrete input.
Result<std::vector<WindowDim>> forward_window_dims(const WindowAttrs& w,
                                                   const std::vector<int64_t>& in_spatial);

/// Output shape [N, channels, out...] of a forward window op with input shape `x`
/// (rank 2 + w.rank()); spatial dims stay unknown where the input's are.
Result<Shape> forward_window_shape(const WindowAttrs& w, const Shape& x, const Dim& channels);

/// im2col geometry of a forward window over a concrete input (image = input spatial dims,
/// columns = output spatial dims).
Result<cpu::ConvGeometry> forward_geometry(const WindowAttrs& w,
                                           const std::vector<int64_t>& in_spatial);

}  // namespace kiln::ops
