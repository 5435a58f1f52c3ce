// Resize (opsets 10, 11, 13, 18, 19) and the deprecated Upsample (7-9), ONNX Operators.md.
//
// Interpolation is separable: every resized axis gets a tap table (for each output index,
// n input indices and weights) and the tensor is resized one axis at a time, exactly as
// the ONNX reference implementation (onnx/reference/ops/op_resize.py) does; so all
// coordinate transformation modes, nearest rounding modes, cubic_coeff_a,
// exclude_outside, antialias (opset 18, a widened triangle/cubic filter when
// downsampling) and tf_crop_and_resize's extrapolation share one code path. Resizing only
// the two innermost axes with at most 2 taps per axis (bilinear / nearest on NCHW) runs
// in one 2-D pass without intermediate buffers.
//
// Output sizes: floor(in * scale) from scales (roi does not enter, as in the reference and
// ONNX Runtime), or `sizes` (with keep_aspect_ratio_policy: one scale for all resized
// axes, size = round_half_up(scale * in)). Before opset 11 (Resize-10, Upsample) the
// mapping is asymmetric and nearest uses ONNX Runtime's legacy rule: floor when
// upsampling, ceil when downsampling. Reading the attributes and planning the output
// (ops/resize.h) is shared with the CUDA kernel.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "ops/resize.h"

#include "ops/helpers.h"

namespace kiln::ops {
namespace {

template <typename E>
struct Named {
  const char* name;
  E value;
};
constexpr Named<ResizeMode> kModes[] = {{"nearest", ResizeMode::kNearest},
                                         {"linear", ResizeMode::kLinear},
                                         {"bilinear", ResizeMode::kLinear},
                                         {"cubic", ResizeMode::kCubic}};
constexpr Named<ResizeCoordMode> kCoordModes[] = {
    {"half_pixel", ResizeCoordMode::kHalfPixel},
    {"half_pixel_symmetric", ResizeCoordMode::kHalfPixelSymmetric},
    {"pytorch_half_pixel", ResizeCoordMode::kPytorchHalfPixel},
    {"align_corners", ResizeCoordMode::kAlignCorners},
    {"asymmetric", ResizeCoordMode::kAsymmetric},
    {"tf_crop_and_resize", ResizeCoordMode::kTfCropAndResize},
    {"tf_half_pixel_for_nn", ResizeCoordMode::kTfHalfPixelForNn}};
constexpr Named<ResizeNearestMode> kNearestModes[] = {
    {"round_prefer_floor", ResizeNearestMode::kRoundPreferFloor},
    {"round_prefer_ceil", ResizeNearestMode::kRoundPreferCeil},
    {"floor", ResizeNearestMode::kFloor},
    {"ceil", ResizeNearestMode::kCeil}};
constexpr Named<ResizeAspectPolicy> kPolicies[] = {
    {"stretch", ResizeAspectPolicy::kStretch},
    {"not_larger", ResizeAspectPolicy::kNotLarger},
    {"not_smaller", ResizeAspectPolicy::kNotSmaller}};

template <typename E, size_t N>
Result<E> parse_enum(const ir::Node& n, const char* attr, const std::string& def,
                     const Named<E> (&table)[N]) {
  const std::string v = n.attr_s(attr, def);
  std::string valid;
  for (const auto& e : table) {
    if (v == e.name) return e.value;
    valid += (valid.empty() ? "" : ", ") + std::string(e.name);
  }
  return Status(ErrorCode::kOnnxBadAttribute, std::string(attr) + " '" + v + "' is not supported",
                "valid values are: " + valid, n.loc(std::string("attribute '") + attr + "'"));
}

bool is_upsample(const ir::Node& n) { return n.op_type == "Upsample"; }
/// Opset 11 introduced roi/sizes inputs and the coordinate-mode attributes.
bool modern(const ir::Node& n) { return !is_upsample(n) && n.opset >= 11; }

/// Input slots: Resize-11+: X, roi, scales, sizes; Resize-10 / Upsample-9: X, scales.
struct Slots {
  int roi = -1, scales = -1, sizes = -1;
};
Slots slots_of(const ir::Node& n) {
  if (modern(n)) return {1, 2, 3};
  if (is_upsample(n) && n.opset < 9) return {};
  return {-1, 1, -1};
}

/// `scales` and `sizes` values (either may be null = not known / not given).
Result<ResizePlan> plan_resize(const ir::Node& n, const ResizeParams& p,
                               const std::vector<int64_t>& in, const std::vector<double>* scales,
                               const std::vector<int64_t>* sizes, const std::vector<double>* roi) {
  const int64_t rank = static_cast<int64_t>(in.size());
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, resize_axes(n, p, rank));
  const size_t na = axes.size();
  ResizePlan plan;
  plan.out_dims = in;
  plan.scales.assign(static_cast<size_t>(rank), 1.0);
  plan.roi_start.assign(static_cast<size_t>(rank), 0.0);
  plan.roi_end.assign(static_cast<size_t>(rank), 1.0);
  if (roi && !roi->empty()) {
    if (roi->size() != 2 * na)
      return Status(
          ErrorCode::kShapeMismatch,
          "roi has " + std::to_string(roi->size()) + " values, expected " + std::to_string(2 * na),
          "roi holds [start_1..start_N, end_1..end_N] for the resized axes", n.loc("input 'roi'"));
    for (size_t i = 0; i < na; ++i) {
      plan.roi_start[axes[i]] = (*roi)[i];
      plan.roi_end[axes[i]] = (*roi)[na + i];
    }
    plan.has_roi = true;
  }
  if (sizes) {
    if (sizes->size() != na)
      return Status(
          ErrorCode::kShapeMismatch,
          "sizes has " + std::to_string(sizes->size()) + " values, expected " + std::to_string(na),
          "give one output size per resized axis", n.loc("input 'sizes'"));
    for (int64_t s : *sizes)
      if (s < 0)
        return Status(ErrorCode::kShapeMismatch,
                      "sizes contains a negative value " + std::to_string(s), "",
                      n.loc("input 'sizes'"));
    bool all_known = true;
    for (size_t i = 0; i < na; ++i) all_known = all_known && in[axes[i]] >= 0;
    if (p.policy == ResizeAspectPolicy::kStretch) {
      for (size_t i = 0; i < na; ++i) {
        const int64_t d = axes[i];
        plan.out_dims[d] = (*sizes)[i];
        plan.scales[d] =
            in[d] > 0 ? static_cast<double>((*sizes)[i]) / static_cast<double>(in[d]) : 1.0;
      }
    } else if (!all_known) {
      for (int64_t d : axes) plan.out_dims[d] = -1;
    } else {
      double s = p.policy == ResizeAspectPolicy::kNotLarger ? INFINITY : -INFINITY;
      for (size_t i = 0; i < na; ++i) {
        double r = in[axes[i]] > 0
                       ? static_cast<double>((*sizes)[i]) / static_cast<double>(in[axes[i]])
                       : 1.0;
        s = p.policy == ResizeAspectPolicy::kNotLarger ? std::min(s, r) : std::max(s, r);
      }
      for (int64_t d : axes) {
        plan.scales[d] = s;
        plan.out_dims[d] =
            static_cast<int64_t>(s * static_cast<double>(in[d]) + 0.5);  // round half up
      }
    }
  } else if (scales) {
    if (scales->size() != na)
      return Status(ErrorCode::kShapeMismatch,
                    "scales has " + std::to_string(scales->size()) + " values, expected " +
                        std::to_string(na),
                    "give one scale per resized axis", n.loc("input 'scales'"));
    for (size_t i = 0; i < na; ++i) {
      const double s = (*scales)[i];
      if (!(s > 0) || !std::isfinite(s))
        return Status(ErrorCode::kShapeMismatch,
                      "scale " + std::to_string(s) + " is not a positive number",
                      "scales must be > 0", n.loc("input 'scales'"));
      const int64_t d = axes[i];
      plan.scales[d] = s;
      plan.out_dims[d] =
          in[d] < 0 ? -1 : static_cast<int64_t>(s * static_cast<double>(in[d]));  // floor
    }
  } else {
    return Status(ErrorCode::kOnnxBadInputs, "neither scales nor sizes is given",
                  "exactly one of the scales and sizes inputs must be non-empty", n.loc());
  }
  return plan;
}

std::vector<double> to_f64_vector(const HostTensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.get_f64(i);
  return v;
}

}  // namespace

Result<ResizeParams> parse_resize_params(const ir::Node& n) {
  ResizeParams p;
  KILN_ASSIGN_OR_RETURN(p.mode, parse_enum(n, "mode", "nearest", kModes));
  if (!modern(n)) {
    if (p.mode == ResizeMode::kCubic)
      return Status(ErrorCode::kOnnxBadAttribute, "mode 'cubic' needs Resize opset 11 or later",
                    "re-export the model at opset 11+", n.loc("attribute 'mode'"));
    return p;  // asymmetric, legacy nearest rounding
  }
  KILN_ASSIGN_OR_RETURN(p.coord,
                        parse_enum(n, "coordinate_transformation_mode", "half_pixel", kCoordModes));
  KILN_ASSIGN_OR_RETURN(p.nearest,
                        parse_enum(n, "nearest_mode", "round_prefer_floor", kNearestModes));
  p.cubic_a = n.attr_f("cubic_coeff_a", -0.75f);
  p.exclude_outside = n.attr_i("exclude_outside", 0) != 0;
  p.extrapolation = n.attr_f("extrapolation_value", 0.0f);
  if (n.opset >= 18) {
    p.antialias = n.attr_i("antialias", 0) != 0;
    KILN_ASSIGN_OR_RETURN(p.policy,
                          parse_enum(n, "keep_aspect_ratio_policy", "stretch", kPolicies));
    p.axes = n.attr_ints("axes");
  }
  if (p.antialias && p.mode == ResizeMode::kNearest)
    return Status(ErrorCode::kOnnxBadAttribute, "antialias is not defined for mode 'nearest'",
                  "use mode 'linear' or 'cubic' with antialias, or set antialias=0",
                  n.loc("attribute 'antialias'"));
  return p;
}

Result<std::vector<int64_t>> resize_axes(const ir::Node& n, const ResizeParams& p,
                                         int64_t rank) {
  std::vector<int64_t> axes;
  if (p.axes.empty()) {
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
    return axes;
  }
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t a : p.axes) {
    auto na = normalize_axis(a, rank);
    if (!na || seen[*na])
      return Status(ErrorCode::kBadAxis,
                    "axes entry " + std::to_string(a) + " is out of range or repeated for rank " +
                        std::to_string(rank),
                    "axes must be distinct and lie in [-rank, rank-1]", n.loc("attribute 'axes'"));
    seen[*na] = true;
    axes.push_back(*na);
  }
  return axes;
}

Result<std::optional<ResizePlan>> plan_resize_from_inputs(const ir::Node& n,
                                                          const ResizeParams& p,
                                                          const std::vector<int64_t>& in,
                                                          const ResizeInputValue& value,
                                                          const ResizeInputPresent& present) {
  const Slots sl = slots_of(n);
  std::vector<double> scales, roi;
  std::vector<int64_t> sizes;
  bool use_sizes = false, use_scales = false;
  if (sl.scales < 0) {
    for (float f : n.attr_floats("scales")) scales.push_back(f);
    use_scales = true;
  }
  if (sl.sizes >= 0 && present(sl.sizes)) {
    const HostTensor* t = value(sl.sizes);
    if (!t) return std::optional<ResizePlan>();
    if (t->numel() > 0) {
      sizes = t->to_i64_vector();
      use_sizes = true;
    }
  }
  if (!use_sizes && sl.scales >= 0 && present(sl.scales)) {
    const HostTensor* t = value(sl.scales);
    if (!t) return std::optional<ResizePlan>();
    if (t->numel() > 0) {
      scales = to_f64_vector(*t);
      use_scales = true;
    }
  }
  if (p.coord == ResizeCoordMode::kTfCropAndResize && sl.roi >= 0 && present(sl.roi)) {
    const HostTensor* t = value(sl.roi);
    if (!t) return std::optional<ResizePlan>();
    roi = to_f64_vector(*t);
  }
  KILN_ASSIGN_OR_RETURN(
      ResizePlan plan,
      plan_resize(n, p, in, use_scales ? &scales : nullptr, use_sizes ? &sizes : nullptr, &roi));
  return std::optional<ResizePlan>(std::move(plan));
}

bool resize_axis_is_identity(const ResizeParams& p, const ResizePlan& plan, size_t d,
                             int64_t in_dim) {
  const bool roi_trivial =
      !plan.has_roi || p.coord != ResizeCoordMode::kTfCropAndResize ||
      (std::fabs(plan.roi_start[d]) < 1e-9 && std::fabs(plan.roi_end[d] - 1) < 1e-9);
  return std::fabs(plan.scales[d] - 1) <= 1e-9 && plan.out_dims[d] == in_dim && roi_trivial;
}

namespace {

Status resize_check(const ir::Node& n) { return parse_resize_params(n).status(); }

Status resize_infer(InferContext& ctx) {
  const ir::Node& n = ctx.node();
  const DataType dt = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  KILN_ASSIGN_OR_RETURN(ResizeParams p, parse_resize_params(n));
  if (!in.rank_known) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status::ok();
  }
  std::vector<int64_t> dims;
  for (const auto& d : in.dims) dims.push_back(d.is_known() ? d.value : -1);
  KILN_ASSIGN_OR_RETURN(
      std::optional<ResizePlan> plan,
      plan_resize_from_inputs(
          n, p, dims, [&](int i) { return ctx.input_value(i); },
          [&](int i) { return ctx.has_input(i); }));
  Shape out = in;
  if (!plan) {
    // Scales/sizes computed at run time: the resized axes are unknown.
    KILN_ASSIGN_OR_RETURN(std::vector<int64_t> axes,
                          resize_axes(n, p, static_cast<int64_t>(in.rank())));
    for (int64_t d : axes) out.dims[d] = Dim::unknown();
  } else {
    for (size_t d = 0; d < in.rank(); ++d)
      if (plan->out_dims[d] != dims[d] || dims[d] < 0)
        out.dims[d] = plan->out_dims[d] >= 0
                          ? Dim(plan->out_dims[d])
                          : (plan->scales[d] == 1.0 ? in.dims[d] : Dim::unknown());
  }
  ctx.set_output(0, dt, std::move(out));
  return Status::ok();
}

// ---- tap tables ------------------------------------------------------------------------

/// For each output index o along one axis: taps n input indices idx[o*n+k] (already
/// clamped to the input, i.e. edge padding) with weights w[o*n+k]; extrap[o] marks
/// tf_crop_and_resize positions outside the input that take extrapolation_value.
struct AxisTaps {
  int64_t n = 1;
  std::vector<int64_t> idx;
  std::vector<double> w;
  std::vector<uint8_t> extrap;
  bool any_extrap = false;
};

/// Source coordinate of output index y (onnx reference _compute_x_ori).
double source_coord(const ResizeParams& p, double y, double scale, int64_t in, int64_t out_int,
                    double roi_s, double roi_e, bool& extrapolated) {
  const double out_w = scale * static_cast<double>(in);
  const double in_w = static_cast<double>(in);
  extrapolated = false;
  switch (p.coord) {
    case ResizeCoordMode::kAlignCorners:
      return out_w == 1 ? 0.0 : y * (in_w - 1) / (out_w - 1);
    case ResizeCoordMode::kAsymmetric:
      return y / scale;
    case ResizeCoordMode::kTfCropAndResize: {
      double x = out_w == 1 ? (roi_e - roi_s) * (in_w - 1) / 2
                            : y * (roi_e - roi_s) * (in_w - 1) / (out_w - 1);
      x += roi_s * (in_w - 1);
      extrapolated = x < 0 || x > in_w - 1;
      return x;
    }
    case ResizeCoordMode::kPytorchHalfPixel:
      return out_w == 1 ? -0.5 : (y + 0.5) / scale - 0.5;
    case ResizeCoordMode::kHalfPixel:
      return (y + 0.5) / scale - 0.5;
    case ResizeCoordMode::kTfHalfPixelForNn:
      return (y + 0.5) / scale;
    case ResizeCoordMode::kHalfPixelSymmetric: {
      const double adjustment = static_cast<double>(out_int) / out_w;
      const double offset = in_w / 2 * (1 - adjustment);
      return offset + (y + 0.5) / scale - 0.5;
    }
  }
  return 0.0;
}

/// Filter coefficients for the fractional position `ratio` in (0, 1] (onnx reference
/// _linear_coeffs, _cubic_coeffs and their antialias variants: Keys' cubic convolution
/// with parameter a; the antialias filters are stretched by 1/scale when downsampling).
std::vector<double> filter_coeffs(const ResizeParams& p, double ratio, double scale) {
  std::vector<double> c;
  const double A = p.cubic_a;
  if (p.mode == ResizeMode::kLinear && !p.antialias) return {1 - ratio, ratio};
  if (p.mode == ResizeMode::kCubic && !p.antialias) {
    const double r1 = ratio + 1, q = 1 - ratio, q1 = q + 1;
    return {((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A,
            ((A + 2) * ratio - (A + 3)) * ratio * ratio + 1, ((A + 2) * q - (A + 3)) * q * q + 1,
            ((A * q1 - 5 * A) * q1 + 8 * A) * q1 - 4 * A};
  }
  const double s = std::min(scale, 1.0);
  double sum = 0;
  if (p.mode == ResizeMode::kLinear) {
    const int64_t start = static_cast<int64_t>(std::floor(-1 / s) + 1);
    for (int64_t i = start; i < start + 2 - 2 * start; ++i) {
      c.push_back(std::clamp(1 - std::fabs((static_cast<double>(i) - ratio) * s), 0.0, 1.0));
      sum += c.back();
    }
  } else {
    const int64_t start = static_cast<int64_t>(std::floor(-2 / s) + 1);
    for (int64_t i = start; i < 2 - start; ++i) {
      const double x = std::fabs(s * (static_cast<double>(i) - ratio));
      const double x2 = x * x, x3 = x2 * x;
      c.push_back(x <= 1  ? (A + 2) * x3 - (A + 3) * x2 + 1
                  : x < 2 ? A * x3 - 5 * A * x2 + 8 * A * x - 4 * A
                          : 0.0);
      sum += c.back();
    }
  }
  for (double& v : c) v /= sum;
  return c;
}

int64_t nearest_index(const ResizeParams& p, double x, double scale) {
  const double fl = std::floor(x);
  if (x == fl) return static_cast<int64_t>(x);
  const double r = x - fl;
  switch (p.nearest) {
    case ResizeNearestMode::kRoundPreferFloor:
      return static_cast<int64_t>(r <= 0.5 ? fl : fl + 1);
    case ResizeNearestMode::kRoundPreferCeil:
      return static_cast<int64_t>(r < 0.5 ? fl : fl + 1);
    case ResizeNearestMode::kFloor:
      return static_cast<int64_t>(fl);
    case ResizeNearestMode::kCeil:
      return static_cast<int64_t>(fl + 1);
    case ResizeNearestMode::kLegacy:
      return static_cast<int64_t>(scale < 1 ? fl + 1 : fl);
  }
  return 0;
}

AxisTaps build_taps(const ResizeParams& p, int64_t in, int64_t out, double scale, double roi_s,
                    double roi_e) {
  AxisTaps t;
  t.extrap.assign(static_cast<size_t>(out), 0);
  auto clamp_idx = [in](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
  if (p.mode == ResizeMode::kNearest) {
    t.n = 1;
    for (int64_t o = 0; o < out; ++o) {
      bool ex;
      const double x = source_coord(p, static_cast<double>(o), scale, in, out, roi_s, roi_e, ex);
      const int64_t i = nearest_index(p, x, scale);
      t.extrap[o] = ex;
      t.any_extrap |= ex;
      t.idx.push_back(clamp_idx(i));
      // exclude_outside drops taps outside the input; the reference then divides by a
      // zero sum guarded to 1, which leaves 0.
      t.w.push_back(p.exclude_outside && (i < 0 || i >= in) ? 0.0 : 1.0);
    }
    return t;
  }
  for (int64_t o = 0; o < out; ++o) {
    bool ex;
    const double x = source_coord(p, static_cast<double>(o), scale, in, out, roi_s, roi_e, ex);
    t.extrap[o] = ex;
    t.any_extrap |= ex;
    const double fl = std::floor(x);
    // The window prefers the pixel left of x, so an exact integer has ratio 1.
    const double ratio = x == fl ? 1.0 : x - fl;
    std::vector<double> c = filter_coeffs(p, ratio, scale);
    const int64_t n = static_cast<int64_t>(c.size());
    t.n = n;
    // The n input indices nearest to x, ties to the smaller (reference _get_neighbor).
    const int64_t pad = (n + 1) / 2;
    const double xp = x + static_cast<double>(pad);
    const double pp = std::floor(xp);
    const double frac = xp - pp;
    int64_t off;
    if (n % 2 == 0)
      off = frac == 0 ? -(n / 2) : -(n / 2) + 1;
    else
      off = frac <= 0.5 ? -((n - 1) / 2) : -((n - 1) / 2) + 1;
    const int64_t start = static_cast<int64_t>(pp) + off - pad;
    if (p.exclude_outside) {
      double sum = 0;
      for (int64_t k = 0; k < n; ++k) {
        if (start + k < 0 || start + k >= in) c[k] = 0;
        sum += c[k];
      }
      if (sum == 0) sum = 1;
      for (double& v : c) v /= sum;
    }
    for (int64_t k = 0; k < n; ++k) {
      t.idx.push_back(clamp_idx(start + k));
      t.w.push_back(c[k]);
    }
  }
  return t;
}

// ---- kernels ---------------------------------------------------------------------------

/// Intermediate precision: double for f64 and integers (rounded at the end like the
/// reference's saturate_cast), float for f32/f16/bf16.
template <typename T>
using interp_t =
    std::conditional_t<std::is_same_v<T, double> || std::is_integral_v<T>, double, float>;

template <typename T>
T store(double v) {
  if constexpr (std::is_integral_v<T>) {
    v = std::nearbyint(v);
    v = std::clamp(v, static_cast<double>(std::numeric_limits<T>::lowest()),
                   static_cast<double>(std::numeric_limits<T>::max()));
    return static_cast<T>(v);
  } else {
    return static_cast<T>(static_cast<compute_t<T>>(v));
  }
}

/// Resizes one axis: src has dims `dims`, dst has dims with dims[axis] = out.
template <typename S, typename D>
void resize_axis(const S* src, D* dst, const std::vector<int64_t>& dims, size_t axis,
                 const AxisTaps& t, int64_t out, double extrapolation) {
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= dims[d];
  for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
  const int64_t in = dims[axis];
  using A = interp_t<D>;
  std::vector<A> acc(static_cast<size_t>(inner));
  for (int64_t o = 0; o < outer; ++o) {
    const S* s = src + o * in * inner;
    D* d = dst + o * out * inner;
    for (int64_t y = 0; y < out; ++y) {
      D* row = d + y * inner;
      if (t.extrap[y]) {
        for (int64_t i = 0; i < inner; ++i) row[i] = store<D>(extrapolation);
        continue;
      }
      std::fill(acc.begin(), acc.end(), A(0));
      for (int64_t k = 0; k < t.n; ++k) {
        const A w = static_cast<A>(t.w[y * t.n + k]);
        if (w == A(0)) continue;
        const S* sr = s + t.idx[y * t.n + k] * inner;
        for (int64_t i = 0; i < inner; ++i)
          acc[i] += w * static_cast<A>(static_cast<compute_t<S>>(sr[i]));
      }
      for (int64_t i = 0; i < inner; ++i) row[i] = store<D>(static_cast<double>(acc[i]));
    }
  }
}

/// Fast path: the two innermost axes in one pass (NCHW bilinear / nearest).
template <typename T>
void resize_2d(const T* src, T* dst, int64_t planes, int64_t ih, int64_t iw, const AxisTaps& ty,
               const AxisTaps& tx, int64_t oh, int64_t ow) {
  using A = interp_t<T>;
  std::vector<A> wx(tx.w.begin(), tx.w.end()), wy(ty.w.begin(), ty.w.end());
  for (int64_t p = 0; p < planes; ++p) {
    const T* s = src + p * ih * iw;
    T* d = dst + p * oh * ow;
    for (int64_t y = 0; y < oh; ++y) {
      for (int64_t x = 0; x < ow; ++x) {
        A acc = 0;
        for (int64_t ky = 0; ky < ty.n; ++ky) {
          const T* sr = s + ty.idx[y * ty.n + ky] * iw;
          A racc = 0;
          for (int64_t kx = 0; kx < tx.n; ++kx)
            racc += wx[x * tx.n + kx] *
                    static_cast<A>(static_cast<compute_t<T>>(sr[tx.idx[x * tx.n + kx]]));
          acc += wy[y * ty.n + ky] * racc;
        }
        d[y * ow + x] = store<T>(static_cast<double>(acc));
      }
    }
  }
}

template <typename T>
Status resize_typed(KernelContext& ctx, const ResizeParams& p, const ResizePlan& plan) {
  const HostTensor& in = ctx.input(0);
  HostTensor& out = ctx.output(0);
  const size_t rank = in.rank();
  std::vector<size_t> work;
  std::vector<AxisTaps> taps;
  for (size_t d = 0; d < rank; ++d) {
    if (resize_axis_is_identity(p, plan, d, in.dims()[d])) continue;
    work.push_back(d);
    taps.push_back(build_taps(p, in.dims()[d], plan.out_dims[d], plan.scales[d], plan.roi_start[d],
                              plan.roi_end[d]));
  }
  if (out.numel() == 0) return Status::ok();
  if (in.numel() == 0)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "cannot resize an empty input " + dims_to_string(in.dims()) + " to " +
                         dims_to_string(out.dims()),
                     "");
  if (work.empty()) {
    std::memcpy(out.raw(), in.raw(), in.bytes());
    return Status::ok();
  }
  if (rank >= 2 && work.size() == 2 && work[0] == rank - 2 && work[1] == rank - 1 &&
      taps[0].n <= 2 && taps[1].n <= 2 && !taps[0].any_extrap && !taps[1].any_extrap) {
    int64_t planes = 1;
    for (size_t d = 0; d + 2 < rank; ++d) planes *= in.dims()[d];
    resize_2d<T>(in.data<T>(), out.data<T>(), planes, in.dims()[rank - 2], in.dims()[rank - 1],
                 taps[0], taps[1], plan.out_dims[rank - 2], plan.out_dims[rank - 1]);
    return Status::ok();
  }
  using A = interp_t<T>;
  std::vector<int64_t> dims = in.dims();
  std::vector<A> cur, next;
  for (size_t i = 0; i < work.size(); ++i) {
    const size_t d = work[i];
    const int64_t od = plan.out_dims[d];
    std::vector<int64_t> ndims = dims;
    ndims[d] = od;
    const bool first = i == 0, last = i + 1 == work.size();
    int64_t numel = 1;
    for (auto v : ndims) numel *= v;
    if (last) {
      if (first)
        resize_axis<T, T>(in.data<T>(), out.data<T>(), dims, d, taps[i], od, p.extrapolation);
      else
        resize_axis<A, T>(cur.data(), out.data<T>(), dims, d, taps[i], od, p.extrapolation);
    } else {
      next.assign(static_cast<size_t>(numel), A(0));
      if (first)
        resize_axis<T, A>(in.data<T>(), next.data(), dims, d, taps[i], od, p.extrapolation);
      else
        resize_axis<A, A>(cur.data(), next.data(), dims, d, taps[i], od, p.extrapolation);
      cur.swap(next);
    }
    dims = ndims;
  }
  return Status::ok();
}

Status resize_cpu(KernelContext& ctx) {
  const ir::Node& n = ctx.node();
  KILN_ASSIGN_OR_RETURN(ResizeParams p, parse_resize_params(n));
  KILN_ASSIGN_OR_RETURN(
      std::optional<ResizePlan> known,
      plan_resize_from_inputs(
          n, p, ctx.input(0).dims(),
          [&](int i) { return ctx.has_input(i) ? &ctx.input(i) : nullptr; },
          [&](int i) { return ctx.has_input(i); }));
  if (!known || known->out_dims.size() != ctx.input(0).rank())
    return ctx.error(ErrorCode::kInternal, "Resize inputs were not available to the kernel", "");
  const ResizePlan& plan = *known;
  if (plan.out_dims != ctx.output(0).dims())
    return ctx.error(ErrorCode::kInternal, "Resize output was allocated with a different shape", "");
  return dispatch_numeric(ctx.input(0).dtype(),
                          [&](auto t) { return resize_typed<decltype(t)>(ctx, p, plan); });
}

}  // namespace

KILN_REGISTER_OPS(resize) {
  // One kernel serves all four forms; resize_infer and resize_check tell them apart by opset.
  reg.add({.op_type = "Upsample", .min_opset = 7, .max_opset = 8, .min_inputs = 1,
           .max_inputs = 1, .infer = resize_infer, .cpu = resize_cpu, .check = resize_check,
           .summary = "deprecated: nearest/linear upsampling, scales attribute"});
  reg.add({.op_type = "Upsample", .min_opset = 9, .max_opset = 10, .min_inputs = 2,
           .max_inputs = 2, .infer = resize_infer, .cpu = resize_cpu, .check = resize_check,
           .summary = "deprecated: nearest/linear upsampling, scales input"});
  reg.add({.op_type = "Resize", .min_opset = 10, .max_opset = 10, .min_inputs = 2,
           .max_inputs = 2, .infer = resize_infer, .cpu = resize_cpu, .check = resize_check,
           .summary = "nearest/linear resize by scales (asymmetric)"});
  reg.add({.op_type = "Resize", .min_opset = 11, .max_opset = 28, .min_inputs = 1,
           .max_inputs = 4, .infer = resize_infer, .cpu = resize_cpu, .check = resize_check,
           .summary = "nearest/linear/cubic resize by scales or sizes, all coordinate modes"});
}

}  // namespace kiln::ops
