// Slice's per-axis arithmetic, shared by the CPU kernel (layout_ops.cc) and the CUDA one.
#pragma once

#include <cstdint>

namespace kiln::ops {

/// Effective start, step and element count of one sliced axis.
struct AxisSlice {
  int64_t start = 0, step = 1, count = 0;
};

/// ONNX Operators.md Slice-13: `start`/`end` (negative counts from the end) clamped into an
/// axis of `dim` elements for the sign of `step` (non-zero; the caller checks), then the
/// number of elements taken. An empty result has start 0.
AxisSlice slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step);

}  // namespace kiln::ops
