#include "ops/window.h"

#include <string>

namespace kiln::ops {
namespace {

Status bad_attr(const std::string& msg, const std::string& hint) {
  return Status(ErrorCode::kOnnxBadAttribute, msg, hint);
}

std::string list_to_string(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  return s + "]";
}

// Floor division for a possibly negative numerator and positive denominator.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

}  // namespace

Result<AutoPad> parse_auto_pad(const ir::Node& n) {
  const std::string s = n.attr_s("auto_pad", "NOTSET");
  if (s == "NOTSET" || s.empty()) return AutoPad::kNotSet;
  if (s == "SAME_UPPER") return AutoPad::kSameUpper;
  if (s == "SAME_LOWER") return AutoPad::kSameLower;
  if (s == "VALID") return AutoPad::kValid;
  return bad_attr("auto_pad '" + s + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID",
                  "fix the attribute value in the model");
}

Status check_window_attrs(const ir::Node& n) {
  KILN_ASSIGN_OR_RETURN(AutoPad ap, parse_auto_pad(n));
  (void)ap;
  for (const char* name : {"kernel_shape", "strides", "dilations"})
    for (int64_t v : n.attr_ints(name))
      if (v <= 0)
        return bad_attr(std::string(name) + " " + list_to_string(n.attr_ints(name)) +
                            " has a non-positive value",
                        "every kernel size, stride and dilation must be >= 1");
  for (int64_t v : n.attr_ints("pads"))
    if (v < 0)
      return bad_attr("pads " + list_to_string(n.attr_ints("pads")) + " has a negative value",
                      "negative padding (cropping) is not supported; insert a Slice instead");
  return Status::ok();
}

Result<WindowAttrs> read_window_attrs(const ir::Node& n, size_t rank,
                                      const std::vector<int64_t>& kernel) {
  KILN_RETURN_IF_ERROR(check_window_attrs(n));
  WindowAttrs w;
  KILN_ASSIGN_OR_RETURN(w.auto_pad, parse_auto_pad(n));
  w.kernel = n.has_attr("kernel_shape") ? n.attr_ints("kernel_shape") : kernel;
  w.strides = n.attr_ints("strides", std::vector<int64_t>(rank, 1));
  w.dilations = n.attr_ints("dilations", std::vector<int64_t>(rank, 1));
  w.pads = n.attr_ints("pads", std::vector<int64_t>(2 * rank, 0));
  w.ceil_mode = n.attr_i("ceil_mode", 0) != 0;
  // Some exporters write empty lists for "default".
  if (w.strides.empty()) w.strides.assign(rank, 1);
  if (w.dilations.empty()) w.dilations.assign(rank, 1);
  if (w.pads.empty()) w.pads.assign(2 * rank, 0);
  const std::string hint =
      "the model does not follow the ONNX spec: lists must have one entry per "
      "spatial dim (pads two); re-export it";
  if (w.kernel.size() != rank)
    return bad_attr("kernel_shape " + list_to_string(w.kernel) + " does not have " +
                        std::to_string(rank) + " spatial dims",
                    hint);
  if (w.strides.size() != rank)
    return bad_attr("strides " + list_to_string(w.strides) + " does not have " +
                        std::to_string(rank) + " entries",
                    hint);
  if (w.dilations.size() != rank)
    return bad_attr("dilations " + list_to_string(w.dilations) + " does not have " +
                        std::to_string(rank) + " entries",
                    hint);
  if (w.pads.size() != 2 * rank)
    return bad_attr("pads " + list_to_string(w.pads) + " does not have " +
                        std::to_string(2 * rank) + " entries",
                    hint);
  for (int64_t k : w.kernel)
    if (k <= 0)
      return bad_attr("kernel_shape " + list_to_string(w.kernel) + " has a non-positive size",
                      hint);
  return w;
}

Result<WindowDim> forward_window_dim(const WindowAttrs& w, size_t d, int64_t in) {
  const int64_t s = w.strides[d];
  const int64_t eff = (w.kernel[d] - 1) * w.dilations[d] + 1;  // dilated kernel extent
  WindowDim r;
  if (w.auto_pad == AutoPad::kNotSet) {
    r.pad_begin = w.pads[d];
    r.pad_end = w.pads[d + w.rank()];
  }
  if (in < 0) return r;
  auto too_small = [&](int64_t padded) {
    return Status(ErrorCode::kShapeMismatch,
                  "spatial dim " + std::to_string(d) + ": input size " + std::to_string(in) +
                      " (padded " + std::to_string(padded) +
                      ") is smaller than the dilated kernel " + std::to_string(eff),
                  "use a larger input or a smaller kernel / dilation, or pad the input");
  };
  switch (w.auto_pad) {
    case AutoPad::kNotSet: {
      const int64_t span = in + r.pad_begin + r.pad_end - eff;
      if (span < 0) return too_small(in + r.pad_begin + r.pad_end);
      if (w.ceil_mode) {
        r.out = (span + s - 1) / s + 1;
        // The last window must start inside the input or the left padding.
        if ((r.out - 1) * s >= in + r.pad_begin) --r.out;
      } else {
        r.out = span / s + 1;
      }
      break;
    }
    case AutoPad::kValid:
      if (in < eff) return too_small(in);
      r.out = (in - eff) / s + 1;
      break;
    case AutoPad::kSameUpper:
    case AutoPad::kSameLower: {
      r.out = floor_div(in - 1, s) + 1;
      const int64_t total = std::max<int64_t>(0, (r.out - 1) * s + eff - in);
      const int64_t small = total / 2;
      r.pad_begin = w.auto_pad == AutoPad::kSameUpper ? small : total - small;
      r.pad_end = total - r.pad_begin;
      break;
    }
  }
  return r;
}

Result<std::vector<WindowDim>> forward_window_dims(const WindowAttrs& w,
                                                   const std::vector<int64_t>& in_spatial) {
  std::vector<WindowDim> dims;
  for (size_t d = 0; d < w.rank(); ++d) {
    KILN_ASSIGN_OR_RETURN(WindowDim wd, forward_window_dim(w, d, in_spatial[d]));
    dims.push_back(wd);
  }
  return dims;
}

Result<Shape> forward_window_shape(const WindowAttrs& w, const Shape& x, const Dim& channels) {
  Shape out;
  out.dims.push_back(x.dims[0]);
  out.dims.push_back(channels);
  for (size_t d = 0; d < w.rank(); ++d) {
    const Dim& in = x.dims[2 + d];
    KILN_ASSIGN_OR_RETURN(WindowDim wd, forward_window_dim(w, d, in.is_known() ? in.value : -1));
    out.dims.push_back(wd.out >= 0 ? Dim(wd.out) : Dim::unknown());
  }
  return out;
}

Result<cpu::ConvGeometry> forward_geometry(const WindowAttrs& w,
                                           const std::vector<int64_t>& in_spatial) {
  KILN_ASSIGN_OR_RETURN(std::vector<WindowDim> dims, forward_window_dims(w, in_spatial));
  cpu::ConvGeometry g;
  g.image = in_spatial;
  g.kernel = w.kernel;
  g.stride = w.strides;
  g.dilation = w.dilations;
  for (const auto& wd : dims) {
    g.columns.push_back(wd.out);
    g.pad_begin.push_back(wd.pad_begin);
  }
  return g;
}

}  // namespace kiln::ops
