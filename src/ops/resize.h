// How a Resize / Upsample node is read (ONNX Operators.md, Resize and Upsample): its
// attributes with the opset's defaults, and the per-axis plan (output dims, scales, roi)
// derived from the input dims and the scales / sizes / roi inputs. Written once so the CPU
// reference (src/ops/resize.cc) and the CUDA kernel (src/cuda/kernels/resize.cu) interpret a
// node identically and report the same errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::ops {

/// Attribute `mode`; Upsample-7's "bilinear" is linear.
enum class ResizeMode { kNearest, kLinear, kCubic };

/// Attribute coordinate_transformation_mode (Resize-11+): maps an output index to an input
/// coordinate. Resize-10 and Upsample are always asymmetric.
enum class ResizeCoordMode {
  kHalfPixel,
  kHalfPixelSymmetric,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfCropAndResize,
  kTfHalfPixelForNn
};

/// Attribute nearest_mode (Resize-11+). kLegacy is the rule before opset 11 (ONNX Runtime's:
/// floor when upsampling, ceil when downsampling); no attribute value selects it.
enum class ResizeNearestMode { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil, kLegacy };

/// Attribute keep_aspect_ratio_policy (Resize-18+), applied to the `sizes` input.
enum class ResizeAspectPolicy { kStretch, kNotLarger, kNotSmaller };

/// Attributes of one Resize / Upsample node, with opset defaults applied.
struct ResizeParams {
  ResizeMode mode = ResizeMode::kNearest;
  ResizeCoordMode coord = ResizeCoordMode::kAsymmetric;
  ResizeNearestMode nearest = ResizeNearestMode::kLegacy;
  double cubic_a = -0.75;  ///< cubic_coeff_a
  bool exclude_outside = false;
  double extrapolation = 0.0;  ///< extrapolation_value (tf_crop_and_resize)
  bool antialias = false;      ///< opset 18+, linear / cubic only
  ResizeAspectPolicy policy = ResizeAspectPolicy::kStretch;
  std::vector<int64_t> axes;  ///< attribute axes (opset 18+) as given; empty = all axes
};

/// Reads the attributes of `n` (op_type "Resize" or "Upsample", any registered opset).
/// Before Resize-11 only `mode` is read (asymmetric mapping, legacy nearest rounding).
/// Errors: OnnxBadAttribute for an unknown mode / coordinate_transformation_mode /
/// nearest_mode / keep_aspect_ratio_policy string, mode 'cubic' before opset 11, and
/// antialias with mode 'nearest'.
Result<ResizeParams> parse_resize_params(const ir::Node& n);

/// The resized axes of a rank-`rank` input: p.axes normalised to [0, rank), or every axis
/// when p.axes is empty. Error: BadAxis for an entry out of range or repeated.
Result<std::vector<int64_t>> resize_axes(const ir::Node& n, const ResizeParams& p,
                                         int64_t rank);

/// Per logical axis of the input (all vectors have the input's rank): what the coordinate
/// mapping of that axis needs. Axes that are not resized have scale 1 and roi [0, 1].
struct ResizePlan {
  std::vector<int64_t> out_dims;  ///< -1 where the input dim is unknown (build time)
  std::vector<double> scales;     ///< output / input as the coordinate mapping uses it
  std::vector<double> roi_start, roi_end;  ///< normalised [0, 1] coordinates
  bool has_roi = false;                    ///< a non-empty roi was given (tf_crop_and_resize)
};

/// The value of input `i` of the node, or null when it is not known (not constant at build
/// time). Only asked for inputs that are present.
using ResizeInputValue = std::function<const HostTensor*(int i)>;
/// Whether input `i` of the node is given at all (omitted optional inputs are not).
using ResizeInputPresent = std::function<bool(int i)>;

/// Plans a resize of an input with dims `in` (-1 = unknown) from the node's inputs:
/// Resize-11+ reads X, roi, scales, sizes (a non-empty sizes wins over scales; roi only for
/// tf_crop_and_resize), Resize-10 / Upsample-9 read X, scales, Upsample-7 takes its scales
/// attribute. scales: float per resized axis, out = floor(in * scale); sizes: int64 per
/// resized axis, scaled uniformly under keep_aspect_ratio_policy not_larger / not_smaller
/// (out = round_half_up(in * scale)); roi: 2 values per resized axis [starts.., ends..].
/// Returns nullopt when a value it needs is not known. Errors: BadAxis (axes),
/// ShapeMismatch (wrong number of roi / sizes / scales values, a negative size, a scale
/// that is not positive and finite), OnnxBadInputs (neither scales nor sizes given).
Result<std::optional<ResizePlan>> plan_resize_from_inputs(const ir::Node& n,
                                                          const ResizeParams& p,
                                                          const std::vector<int64_t>& in,
                                                          const ResizeInputValue& value,
                                                          const ResizeInputPresent& present);

/// True when axis `d` (input dim `in_dim`) maps every output index to itself: scale 1, same
/// size and a full roi. Kernels skip such axes, as the ONNX reference does.
bool resize_axis_is_identity(const ResizeParams& p, const ResizePlan& plan, size_t d,
                             int64_t in_dim);

}  // namespace kiln::ops
