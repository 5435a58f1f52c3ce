// Reductions (ONNX Operators.md: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
// ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare) and ArgMax/ArgMin.
//
// Axes are an attribute before opset 13 (ReduceSum) / 18 (the others) and an optional
// input from then on, where `noop_with_empty_axes` decides whether "no axes" means "all
// axes" or "identity". Reducing over an empty set yields the reduction's identity element
// (0 for sums, 1 for Prod, -inf for Max and LogSum(Exp), +inf for Min), as in the spec's
// *_empty_set cases. Floats accumulate in double, integers in 64 bits.
#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "ops/helpers.h"

namespace kiln::ops {
namespace {

enum class ReduceKind { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

template <ReduceKind K>
Status reduce_cpu(KernelContext& ctx);

struct ReduceInfo {
  const char* name;
  CpuKernelFn cpu;
  int axes_input_opset;  ///< first opset where axes is input 1 instead of an attribute
  const char* summary;
};

using enum ReduceKind;
constexpr ReduceInfo kReductions[] = {
    {"ReduceSum", reduce_cpu<kSum>, 13, "sum over axes"},
    {"ReduceMean", reduce_cpu<kMean>, 18, "mean over axes"},
    {"ReduceMax", reduce_cpu<kMax>, 18, "maximum over axes (-inf for an empty set)"},
    {"ReduceMin", reduce_cpu<kMin>, 18, "minimum over axes (+inf for an empty set)"},
    {"ReduceProd", reduce_cpu<kProd>, 18, "product over axes"},
    {"ReduceL1", reduce_cpu<kL1>, 18, "sum of absolute values over axes"},
    {"ReduceL2", reduce_cpu<kL2>, 18, "Euclidean norm over axes"},
    {"ReduceLogSum", reduce_cpu<kLogSum>, 18, "log of the sum over axes"},
    {"ReduceLogSumExp", reduce_cpu<kLogSumExp>, 18, "log(sum(exp(x))) over axes, max-shifted"},
    {"ReduceSumSquare", reduce_cpu<kSumSquare>, 18, "sum of squares over axes"},
};

const ReduceInfo& reduce_info(const std::string& op_type) {
  for (const auto& r : kReductions)
    if (op_type == r.name) return r;
  return kReductions[0];  // unreachable: only registered names reach here
}

bool axes_from_input(const ir::Node& n) {
  return n.opset >= reduce_info(n.op_type).axes_input_opset;
}

/// Which axes of a rank-`rank` input are reduced. `axes` empty means all axes unless
/// noop_with_empty_axes is set, in which case the result is all-false (identity).
Result<std::vector<bool>> reduced_mask(const ir::Node& n, int64_t rank,
                                       const std::vector<int64_t>& axes) {
  std::vector<bool> mask(static_cast<size_t>(rank), false);
  if (axes.empty()) {
    if (axes_from_input(n) && n.attr_i("noop_with_empty_axes", 0) != 0) return mask;
    std::fill(mask.begin(), mask.end(), true);
    return mask;
  }
  for (int64_t a : axes) {
    auto na = normalize_axis(a, rank);
    if (!na)
      return Status(ErrorCode::kBadAxis,
                    "reduction axis " + std::to_string(a) + " is out of range for rank " +
                        std::to_string(rank),
                    "axes must lie in [-rank, rank-1]", n.loc());
    if (mask[*na])
      return Status(ErrorCode::kBadAxis, "reduction axis " + std::to_string(a) + " is listed twice",
                    "list each axis once", n.loc());
    mask[*na] = true;
  }
  return mask;
}

/// Before the axes-as-input opset the op has exactly one input.
Status reduce_check(const ir::Node& n) {
  if (!axes_from_input(n) && n.has_input(1))
    return Status(ErrorCode::kOnnxBadInputs,
                  n.op_type + " takes axes as an attribute at opset " + std::to_string(n.opset) +
                      ", but the node has a second input",
                  "axes became an input at opset " +
                      std::to_string(reduce_info(n.op_type).axes_input_opset) +
                      "; re-export the model with a consistent opset");
  return Status::ok();
}

Status reduce_infer(InferContext& ctx) {
  const ir::Node& n = ctx.node();
  const DataType dt = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  const bool keepdims = n.attr_i("keepdims", 1) != 0;
  std::optional<std::vector<int64_t>> axes;
  if (axes_from_input(n)) {
    if (!ctx.has_input(1))
      axes = std::vector<int64_t>{};
    else if (const HostTensor* v = ctx.input_value(1))
      axes = v->to_i64_vector();
  } else {
    axes = n.attr_ints("axes");
  }
  if (!in.rank_known) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status::ok();
  }
  if (!axes) {
    // Axes computed at run time: with keepdims the rank is still known.
    if (!keepdims) {
      ctx.set_output(0, dt, Shape::unknown_rank());
      return Status::ok();
    }
    ctx.set_output(0, dt, Shape(std::vector<Dim>(in.rank(), Dim::unknown())));
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask,
                        reduced_mask(n, static_cast<int64_t>(in.rank()), *axes));
  Shape out;
  for (size_t d = 0; d < in.rank(); ++d) {
    if (!mask[d])
      out.dims.push_back(in.dims[d]);
    else if (keepdims)
      out.dims.emplace_back(1);
  }
  ctx.set_output(0, dt, std::move(out));
  return Status::ok();
}

/// Flat offsets (with `strides`) of every element of the sub-box spanned by the groups
/// where `select` is true (others fixed at 0), in row-major order of those groups.
std::vector<int64_t> box_offsets(const std::vector<int64_t>& sizes,
                                 const std::vector<int64_t>& strides,
                                 const std::vector<bool>& select) {
  std::vector<int64_t> offs{0};
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (!select[d]) continue;
    std::vector<int64_t> next;
    next.reserve(offs.size() * static_cast<size_t>(sizes[d]));
    for (int64_t base : offs)
      for (int64_t i = 0; i < sizes[d]; ++i) next.push_back(base + i * strides[d]);
    offs.swap(next);
  }
  return offs;
}

template <typename T>
double to_f64(T v) {
  return static_cast<double>(static_cast<compute_t<T>>(v));
}

template <typename T>
T from_f64(double v) {
  if constexpr (is_float_v<T>)
    return static_cast<T>(static_cast<compute_t<T>>(v));
  else if constexpr (std::is_same_v<T, bool>)
    return v != 0;
  else
    return float_to_int<T>(v);  // truncates toward zero; inf/NaN (log of 0) stay defined
}

/// Running log-sum-exp: s = sum(exp(x - m)) with m the maximum so far (one pass, no
/// overflow for large inputs).
struct LseAcc {
  double m = -std::numeric_limits<double>::infinity();
  double s = 0;
};

/// One reduction as init / step / finish over an accumulator. Floats accumulate in
/// double, integers in 64 bits (Max/Min in their own type, exact).
template <typename T, ReduceKind K>
struct Reducer {
  static constexpr bool kMinMax = K == ReduceKind::kMax || K == ReduceKind::kMin;
  static constexpr bool kViaDouble =
      is_float_v<T> || K == ReduceKind::kMean || K == ReduceKind::kL2 || K == ReduceKind::kLogSum;
  using Int = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
  // bool min/max accumulate as bytes (vector<bool> has no element references).
  using Own = std::conditional_t<std::is_same_v<T, bool>, uint8_t, T>;
  using A = std::conditional_t<
      K == ReduceKind::kLogSumExp, LseAcc,
      std::conditional_t<kViaDouble, double, std::conditional_t<kMinMax, Own, Int>>>;

  static A init() {
    if constexpr (K == ReduceKind::kLogSumExp) {
      return LseAcc{};
    } else if constexpr (kMinMax) {
      constexpr bool kMax = K == ReduceKind::kMax;
      if constexpr (is_float_v<T>)
        return kMax ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
      else
        return static_cast<A>(kMax ? std::numeric_limits<T>::lowest()
                                   : std::numeric_limits<T>::max());
    } else {
      return K == ReduceKind::kProd ? A(1) : A(0);
    }
  }

  static void step(A& acc, T v) {
    if constexpr (K == ReduceKind::kLogSumExp) {
      const double x = to_f64(v);
      if (x == -std::numeric_limits<double>::infinity()) return;  // exp(-inf) adds nothing
      if (x > acc.m) {
        acc.s = acc.s * std::exp(acc.m - x) + 1;
        acc.m = x;
      } else {
        acc.s += std::exp(x - acc.m);  // NaN propagates through here
      }
    } else if constexpr (kMinMax && is_float_v<T>) {
      const double x = to_f64(v);
      // NaN propagates like numpy's maximum.reduce.
      if ((K == ReduceKind::kMax ? x > acc : x < acc) || std::isnan(x))
        acc = std::isnan(acc) ? acc : x;
    } else if constexpr (kMinMax) {
      acc = K == ReduceKind::kMax ? std::max(acc, static_cast<A>(v))
                                  : std::min(acc, static_cast<A>(v));
    } else {
      A x;
      if constexpr (kViaDouble)
        x = to_f64(v);
      else
        x = static_cast<A>(v);
      if constexpr (K == ReduceKind::kProd)
        acc *= x;
      else if constexpr (K == ReduceKind::kSumSquare || K == ReduceKind::kL2)
        acc += x * x;
      else if constexpr (K == ReduceKind::kL1)
        acc += x < A(0) ? A(0) - x : x;
      else
        acc += x;
    }
  }

  static T finish(const A& acc, int64_t n) {
    if constexpr (K == ReduceKind::kLogSumExp) {
      if (acc.s == 0) return from_f64<T>(-std::numeric_limits<double>::infinity());  // empty set
      return from_f64<T>(std::isinf(acc.m) ? acc.m : acc.m + std::log(acc.s));
    } else if constexpr (K == ReduceKind::kMean) {
      return from_f64<T>(acc / static_cast<double>(n));
    } else if constexpr (K == ReduceKind::kL2) {
      return from_f64<T>(std::sqrt(acc));
    } else if constexpr (K == ReduceKind::kLogSum) {
      return from_f64<T>(std::log(acc));
    } else if constexpr (kViaDouble) {
      return from_f64<T>(acc);
    } else {
      return static_cast<T>(acc);
    }
  }
};

/// Reduces `in` over the axes in `mask`. Adjacent axes with the same role are merged, so
/// the innermost group is contiguous: when it is reduced each output sums contiguous
/// runs; when it is kept, a row of accumulators advances along contiguous input rows.
template <typename T, ReduceKind K>
void reduce_kernel(const HostTensor& in, const std::vector<bool>& mask, HostTensor& out) {
  using R = Reducer<T, K>;
  if (out.numel() == 0) return;
  std::vector<int64_t> sizes;
  std::vector<bool> red;
  int64_t count = 1;
  for (size_t d = 0; d < mask.size(); ++d) {
    const int64_t n = in.dims()[d];
    if (mask[d]) count *= n;
    if (n == 1) continue;  // a size-1 axis changes no offsets
    if (!sizes.empty() && red.back() == mask[d])
      sizes.back() *= n;
    else {
      sizes.push_back(n);
      red.push_back(mask[d]);
    }
  }
  if (sizes.empty()) {
    sizes.push_back(1);
    red.push_back(true);
  }
  const auto strides = strides_of(sizes);
  const T* src = in.data<T>();
  T* dst = out.data<T>();
  const int64_t run = sizes.back();
  std::vector<bool> outer_red = red, outer_kept(red.size());
  for (size_t g = 0; g < red.size(); ++g) outer_kept[g] = !red[g];
  if (red.back()) {
    outer_red.back() = false;
    const auto kept = box_offsets(sizes, strides, outer_kept);
    const auto reduced = box_offsets(sizes, strides, outer_red);
    for (size_t o = 0; o < kept.size(); ++o) {
      typename R::A acc = R::init();
      for (int64_t r : reduced) {
        const T* p = src + kept[o] + r;
        for (int64_t i = 0; i < run; ++i) R::step(acc, p[i]);
      }
      dst[o] = R::finish(acc, count);
    }
  } else {
    outer_kept.back() = false;
    const auto kept = box_offsets(sizes, strides, outer_kept);
    const auto reduced = box_offsets(sizes, strides, outer_red);
    std::vector<typename R::A> acc(static_cast<size_t>(run));
    for (size_t o = 0; o < kept.size(); ++o) {
      std::fill(acc.begin(), acc.end(), R::init());
      for (int64_t r : reduced) {
        const T* p = src + kept[o] + r;
        for (int64_t i = 0; i < run; ++i) R::step(acc[i], p[i]);
      }
      for (int64_t i = 0; i < run; ++i) dst[o * run + i] = R::finish(acc[i], count);
    }
  }
}

template <ReduceKind K>
Status reduce_cpu(KernelContext& ctx) {
  const ir::Node& n = ctx.node();
  const HostTensor& in = ctx.input(0);
  std::vector<int64_t> axes;
  if (axes_from_input(n)) {
    if (ctx.has_input(1)) axes = ctx.input(1).to_i64_vector();
  } else {
    axes = n.attr_ints("axes");
  }
  if (axes.empty() && axes_from_input(n) && n.attr_i("noop_with_empty_axes", 0) != 0) {
    ctx.set_output(0, in);  // the spec's identity case: alias, no copy
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask,
                        reduced_mask(n, static_cast<int64_t>(in.rank()), axes));
  HostTensor& out = ctx.output(0);
  auto run = [&](auto t) -> Status {
    using T = decltype(t);
    if constexpr (std::is_same_v<T, bool>) {
      if constexpr (K != ReduceKind::kMax && K != ReduceKind::kMin)
        return unsupported_dtype(DataType::kBool, n.op_type.c_str());
    }
    reduce_kernel<T, K>(in, mask, out);
    return Status::ok();
  };
  if constexpr (K == ReduceKind::kMax || K == ReduceKind::kMin)
    return dispatch_all(in.dtype(), run);
  else
    return dispatch_numeric(in.dtype(), run);
}

// ---- ArgMax / ArgMin ----------------------------------------------------------------

Status arg_infer(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known) {
    ctx.set_output(0, DataType::kI64, Shape::unknown_rank());
    return Status::ok();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  const int64_t axis_attr = ctx.node().attr_i("axis", 0);
  auto axis = normalize_axis(axis_attr, rank);
  if (!axis)
    return ctx.error(
        ErrorCode::kBadAxis,
        "axis " + std::to_string(axis_attr) + " is out of range for rank " + std::to_string(rank),
        "axis must lie in [-rank, rank-1]");
  if (in.dims[*axis].is_known() && in.dims[*axis].value == 0)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "cannot take " + ctx.node().op_type + " over an empty axis",
                     "the reduced axis must have at least one element");
  Shape out;
  for (int64_t d = 0; d < rank; ++d) {
    if (d != *axis)
      out.dims.push_back(in.dims[d]);
    else if (ctx.node().attr_i("keepdims", 1) != 0)
      out.dims.emplace_back(1);
  }
  ctx.set_output(0, DataType::kI64, std::move(out));
  return Status::ok();
}

template <bool kMax>
Status arg_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(in.rank());
  const int64_t axis = *normalize_axis(ctx.node().attr_i("axis", 0), rank);  // checked by infer
  const bool last = ctx.node().attr_i("select_last_index", 0) != 0;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= in.dims()[d];
  for (int64_t d = axis + 1; d < rank; ++d) inner *= in.dims()[d];
  const int64_t n = rank == 0 ? 1 : in.dims()[axis];
  int64_t* dst = ctx.output(0).data<int64_t>();
  return dispatch_all(in.dtype(), [&](auto t) {
    using T = decltype(t);
    using C = compute_t<T>;
    auto is_nan = [](C v) {
      if constexpr (std::is_floating_point_v<C>)
        return std::isnan(v);
      else
        return false;
    };
    const T* src = in.data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* p = src + o * n * inner + i;
        int64_t best = 0;
        C bv = static_cast<C>(p[0]);
        for (int64_t k = 1; k < n && !is_nan(bv); ++k) {
          C v = static_cast<C>(p[k * inner]);
          // numpy's argmax/argmin return the first NaN; ties go to the first (or last) index.
          bool better = is_nan(v) || (kMax ? v > bv : v < bv) || (last && v == bv);
          if (better) {
            best = k;
            bv = v;
          }
        }
        dst[o * inner + i] = best;
      }
    return Status::ok();
  });
}

}  // namespace

KILN_REGISTER_OPS(reduce) {
  // Versions 1-28: later versions moved axes to an input (handled by axes_from_input; the
  // axes input is checked against the opset in infer), added bool to Max/Min (20) and
  // restricted LogSum(Exp) to floats (28).
  for (const auto& r : kReductions)
    reg.add({.op_type = r.name, .min_opset = 1, .max_opset = 28, .min_inputs = 1,
             .max_inputs = 2, .infer = reduce_infer, .cpu = r.cpu,
             .check = reduce_check, .summary = r.summary});
  // Versions 1, 11, 12 (select_last_index), 13.
  for (auto [name, cpu, summary] :
       {std::tuple{"ArgMax", &arg_cpu<true>, "index of the maximum along an axis (i64)"},
        std::tuple{"ArgMin", &arg_cpu<false>, "index of the minimum along an axis (i64)"}})
    reg.add({.op_type = name, .min_opset = 1, .max_opset = 28, .min_inputs = 1, .max_inputs = 1,
             .infer = arg_infer, .cpu = cpu, .summary = summary});
}

}  // namespace kiln::ops
