// Softmax, LogSoftmax and Hardmax (ONNX Operators.md).
//
// Before opset 13 the input is coerced to 2-D at `axis` (default 1): rows are the
// flattened leading dims, the normalisation runs over all trailing dims together. From
// opset 13 it runs along the single axis `axis` (default -1). Both are handled as
// [outer, n, inner] with n·inner elements per normalisation group (inner = 1 when
// coerced). Softmax subtracts the row maximum before exp so large inputs do not overflow
// (the spec's *_large_number cases); sums accumulate in double.
#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "ops/helpers.h"

namespace kiln::ops {
namespace {

enum class NormKind { kSoftmax, kLogSoftmax, kHardmax };

/// Splits dims into [outer, n, inner] around the normalised axis.
struct Groups {
  int64_t outer = 1, n = 1, inner = 1;
};

Result<int64_t> softmax_axis(const ir::Node& node, int64_t rank) {
  const int64_t def = node.opset >= 13 ? -1 : 1;
  const int64_t a = node.attr_i("axis", def);
  // A rank-0 input has one element; treat it as rank 1 for the axis check.
  auto na = normalize_axis(a, std::max<int64_t>(rank, 1));
  if (!na)
    return Status(ErrorCode::kBadAxis,
                  "axis " + std::to_string(a) + " is out of range for rank " + std::to_string(rank),
                  "axis must lie in [-rank, rank-1]", node.loc());
  return *na;
}

Status softmax_infer(InferContext& ctx) {
  const Shape& s = ctx.input_shape(0);
  if (s.rank_known)
    KILN_RETURN_IF_ERROR(softmax_axis(ctx.node(), static_cast<int64_t>(s.rank())).status());
  return infer_same_as_input0(ctx);
}

Groups groups_of(const ir::Node& node, const std::vector<int64_t>& dims, int64_t axis) {
  Groups g;
  const int64_t rank = static_cast<int64_t>(dims.size());
  for (int64_t d = 0; d < std::min(axis, rank); ++d) g.outer *= dims[d];
  if (node.opset >= 13) {
    if (axis < rank) g.n = dims[axis];
    for (int64_t d = axis + 1; d < rank; ++d) g.inner *= dims[d];
  } else {
    for (int64_t d = axis; d < rank; ++d) g.n *= dims[d];
  }
  return g;
}

/// Normalises one group: x[k*inner + i] for k < n, i < inner, vectorised over i so the
/// reads stay contiguous when the axis is not the last one (NCHW channel softmax).
template <typename T, NormKind K>
void normalize_group(const T* x, T* y, const Groups& g, std::vector<double>& mx,
                     std::vector<double>& sum) {
  using C = compute_t<T>;
  const int64_t n = g.n, inner = g.inner;
  mx.assign(static_cast<size_t>(inner), -std::numeric_limits<double>::infinity());
  for (int64_t k = 0; k < n; ++k)
    for (int64_t i = 0; i < inner; ++i)
      mx[i] = std::max(mx[i], static_cast<double>(static_cast<C>(x[k * inner + i])));
  if constexpr (K == NormKind::kHardmax) {
    std::vector<int64_t> first(static_cast<size_t>(inner), -1);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t i = 0; i < inner; ++i) {
        bool hit = first[i] < 0 && static_cast<double>(static_cast<C>(x[k * inner + i])) == mx[i];
        if (hit) first[i] = k;
        y[k * inner + i] = static_cast<T>(static_cast<C>(hit ? 1 : 0));
      }
    return;
  } else {
    sum.assign(static_cast<size_t>(inner), 0.0);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t i = 0; i < inner; ++i) {
        const C e = std::exp(static_cast<C>(x[k * inner + i]) - static_cast<C>(mx[i]));
        sum[i] += static_cast<double>(e);
        if constexpr (K == NormKind::kSoftmax) y[k * inner + i] = static_cast<T>(e);
      }
    for (int64_t k = 0; k < n; ++k)
      for (int64_t i = 0; i < inner; ++i) {
        if constexpr (K == NormKind::kSoftmax) {
          y[k * inner + i] = static_cast<T>(
              static_cast<C>(static_cast<double>(static_cast<C>(y[k * inner + i])) / sum[i]));
        } else {
          const double v =
              static_cast<double>(static_cast<C>(x[k * inner + i])) - mx[i] - std::log(sum[i]);
          y[k * inner + i] = static_cast<T>(static_cast<C>(v));
        }
      }
  }
}

template <NormKind K>
Status softmax_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  HostTensor& out = ctx.output(0);
  KILN_ASSIGN_OR_RETURN(int64_t axis, softmax_axis(ctx.node(), static_cast<int64_t>(in.rank())));
  const Groups g = groups_of(ctx.node(), in.dims(), axis);
  if (in.numel() == 0) return Status::ok();
  return dispatch_float(in.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* x = in.data<T>();
    T* y = out.data<T>();
    std::vector<double> mx, sum;
    const int64_t group = g.n * g.inner;
    for (int64_t o = 0; o < g.outer; ++o)
      normalize_group<T, K>(x + o * group, y + o * group, g, mx, sum);
    return Status::ok();
  });
}

}  // namespace

KILN_REGISTER_OPS(softmax) {
  // Versions 1 and 11 coerce to 2-D, 13 normalises one axis.
  for (auto [name, cpu, summary] :
       {std::tuple{"Softmax", &softmax_cpu<NormKind::kSoftmax>, "exp(x - max) / sum along an axis"},
        std::tuple{"LogSoftmax", &softmax_cpu<NormKind::kLogSoftmax>,
                   "x - max - log(sum(exp(x - max))) along an axis"},
        std::tuple{"Hardmax", &softmax_cpu<NormKind::kHardmax>,
                   "one-hot of the first maximum along an axis"}})
    reg.add({.op_type = name, .min_opset = 1, .max_opset = 28, .min_inputs = 1, .max_inputs = 1,
             .infer = softmax_infer, .cpu = cpu, .summary = summary});
}

}  // namespace kiln::ops
