// Ordering and scanning ops (ONNX Operators.md: TopK-1/10/11, Unique-11, CumSum-11/14,
// ReverseSequence-10). Ties in TopK go to the lower index (the spec's stable rule); NaN
// orders above every number, like numpy's sort.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

// Strict "a < b" with NaN greater than everything (and equal to itself).
template <typename C>
bool nan_last_less(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
  }
  return a < b;
}

// ---- TopK -----------------------------------------------------------------------------

Status topk_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "TopK k"));
  const DataType t = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  std::optional<int64_t> k;
  if (ctx.opset() < 10) {
    k = ctx.node().attr_i("k", -1);
  } else if (auto v = known_input_ints(ctx, 1)) {
    if (v->size() != 1)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "TopK k must hold one value, got " + std::to_string(v->size()), "");
    k = (*v)[0];
  }
  if (k && *k < 0)
    return ctx.error(ErrorCode::kInvalidArgument, "TopK k is " + std::to_string(*k),
                     "k must be >= 0");
  if (!in.rank_known) {
    ctx.set_output(0, t, Shape::unknown_rank());
    ctx.set_output(1, DataType::kI64, Shape::unknown_rank());
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(int64_t axis, checked_axis(ctx, ctx.node().attr_i("axis", -1), in.rank()));
  Shape out = in;
  if (k && in.dims[axis].is_known() && *k > in.dims[axis].value)
    return ctx.error(ErrorCode::kInvalidArgument,
                     "TopK k = " + std::to_string(*k) + " exceeds axis " + std::to_string(axis) +
                         " of " + in.to_string(),
                     "k must be at most the axis size");
  out.dims[axis] = k ? Dim(*k) : Dim::unknown();
  ctx.set_output(0, t, out);
  ctx.set_output(1, DataType::kI64, out);
  return Status::ok();
}

Status topk_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  HostTensor& values = ctx.output(0);
  HostTensor& indices = ctx.output(1);
  const int64_t axis = *normalize_axis(ctx.node().attr_i("axis", -1), in.rank());
  const bool largest = ctx.node().attr_i("largest", 1) != 0;
  const int64_t dim = in.dims()[axis], k = values.dims()[axis];
  const int64_t outer = prod(in.dims(), 0, axis), inner = prod(in.dims(), axis + 1, in.rank());
  return dispatch_numeric(in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in.data<T>();
    T* vo = values.data<T>();
    int64_t* io = indices.data<int64_t>();
    std::vector<C> line(dim);
    std::vector<int64_t> order(dim);
    // Sorted output always (also for sorted=0, where any order is allowed).
    auto before = [&](int64_t a, int64_t b) {
      if (largest ? nan_last_less(line[b], line[a]) : nan_last_less(line[a], line[b])) return true;
      if (largest ? nan_last_less(line[a], line[b]) : nan_last_less(line[b], line[a])) return false;
      return a < b;
    };
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        for (int64_t j = 0; j < dim; ++j) line[j] = static_cast<C>(x[(o * dim + j) * inner + i]);
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
        for (int64_t j = 0; j < k; ++j) {
          const int64_t at = (o * k + j) * inner + i;
          vo[at] = x[(o * dim + order[j]) * inner + i];
          io[at] = order[j];
        }
      }
    return Status::ok();
  });
}

// ---- Unique ---------------------------------------------------------------------------

Status unique_infer(InferContext& ctx) {
  const DataType t = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  const bool has_axis = ctx.node().has_attr("axis");
  Shape y = Shape({Dim::unknown()});
  Dim items = in.rank_known ? dim_product(in.dims, 0, in.rank()) : Dim::unknown();
  if (has_axis) {
    y = in;
    if (in.rank_known) {
      KILN_ASSIGN_OR_RETURN(int64_t axis,
                            checked_axis(ctx, ctx.node().attr_i("axis", 0), in.rank()));
      items = in.dims[axis];
      y.dims[axis] = Dim::unknown();
    }
  }
  ctx.set_output(0, t, y);
  ctx.set_output(1, DataType::kI64, Shape({Dim::unknown()}));
  ctx.set_output(2, DataType::kI64, Shape({items}));
  ctx.set_output(3, DataType::kI64, Shape({Dim::unknown()}));
  return Status::ok();
}

// Unique items (elements, or slices along `axis`) compared lexicographically, like
// numpy.unique which the ONNX reference calls; sorted=0 keeps first-occurrence order.
Status unique_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  const bool has_axis = ctx.node().has_attr("axis");
  const bool sorted = ctx.node().attr_i("sorted", 1) != 0;
  const std::vector<int64_t> dims = has_axis ? in.dims() : std::vector<int64_t>{in.numel()};
  const int64_t axis = has_axis ? *normalize_axis(ctx.node().attr_i("axis", 0), in.rank()) : 0;
  const int64_t n = dims[axis], outer = prod(dims, 0, axis),
                inner = prod(dims, axis + 1, dims.size());
  const size_t es = dtype_size(in.dtype());

  std::vector<int64_t> order(n);  // item indices sorted by (item, index)
  std::iota(order.begin(), order.end(), 0);
  std::vector<int64_t> group_of(n);  // item → group id (groups in sorted order)
  std::vector<int64_t> first, counts;
  KILN_RETURN_IF_ERROR(dispatch_all(in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in.data<T>();
    // -1 / 0 / 1 comparison of items a and b.
    auto cmp = [&](int64_t a, int64_t b) {
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < inner; ++j) {
          const C va = static_cast<C>(x[(o * n + a) * inner + j]),
                  vb = static_cast<C>(x[(o * n + b) * inner + j]);
          if (nan_last_less(va, vb)) return -1;
          if (nan_last_less(vb, va)) return 1;
        }
      return 0;
    };
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
    for (int64_t i = 0; i < n; ++i) {
      if (i == 0 || cmp(order[i - 1], order[i]) != 0) {
        first.push_back(order[i]);
        counts.push_back(0);
      }
      group_of[order[i]] = static_cast<int64_t>(first.size()) - 1;
      ++counts.back();
    }
    return Status::ok();
  }));
  const int64_t u = static_cast<int64_t>(first.size());
  std::vector<int64_t> pos(u);  // group id → output position
  std::iota(pos.begin(), pos.end(), 0);
  if (!sorted) {
    std::vector<int64_t> by_first(u);
    std::iota(by_first.begin(), by_first.end(), 0);
    std::sort(by_first.begin(), by_first.end(),
              [&](int64_t a, int64_t b) { return first[a] < first[b]; });
    for (int64_t p = 0; p < u; ++p) pos[by_first[p]] = p;
  }

  std::vector<int64_t> ydims = has_axis ? in.dims() : std::vector<int64_t>{u};
  ydims[axis] = u;
  HostTensor& y = ctx.allocate_output(0, in.dtype(), ydims);
  const char* src = static_cast<const char*>(in.raw());
  char* dst = static_cast<char*>(y.raw());
  const size_t block = static_cast<size_t>(inner) * es;
  for (int64_t g = 0; g < u; ++g)
    for (int64_t o = 0; o < outer; ++o)
      if (block)
        std::memcpy(dst + (o * u + pos[g]) * block, src + (o * n + first[g]) * block, block);
  if (ctx.has_output(1)) {
    int64_t* p = ctx.allocate_output(1, DataType::kI64, {u}).data<int64_t>();
    for (int64_t g = 0; g < u; ++g) p[pos[g]] = first[g];
  }
  if (ctx.has_output(2)) {
    int64_t* p = ctx.allocate_output(2, DataType::kI64, {n}).data<int64_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = pos[group_of[i]];
  }
  if (ctx.has_output(3)) {
    int64_t* p = ctx.allocate_output(3, DataType::kI64, {u}).data<int64_t>();
    for (int64_t g = 0; g < u; ++g) p[pos[g]] = counts[g];
  }
  return Status::ok();
}

// ---- CumSum ---------------------------------------------------------------------------

Status cumsum_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "CumSum axis"));
  const Shape& in = ctx.input_shape(0);
  if (const HostTensor* a = ctx.input_value(1)) {
    if (a->numel() != 1)
      return ctx.error(ErrorCode::kShapeMismatch, "CumSum axis must be a scalar", "");
    if (in.rank_known) KILN_RETURN_IF_ERROR(checked_axis(ctx, a->get_i64(0), in.rank()).status());
  }
  return infer_same_as_input0(ctx);
}

Status cumsum_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  HostTensor& out = ctx.output(0);
  const int64_t axis = *normalize_axis(ctx.input(1).get_i64(0), in.rank());
  const bool exclusive = ctx.node().attr_i("exclusive", 0) != 0;
  const bool reverse = ctx.node().attr_i("reverse", 0) != 0;
  const int64_t dim = in.dims()[axis], outer = prod(in.dims(), 0, axis);
  const int64_t inner = prod(in.dims(), axis + 1, in.rank());
  return dispatch_numeric(in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in.data<T>();
    T* y = out.data<T>();
    std::vector<C> acc(inner);
    for (int64_t o = 0; o < outer; ++o) {
      std::fill(acc.begin(), acc.end(), C(0));
      for (int64_t s = 0; s < dim; ++s) {
        const int64_t j = reverse ? dim - 1 - s : s;
        const int64_t row = (o * dim + j) * inner;
        for (int64_t i = 0; i < inner; ++i) {
          const C v = static_cast<C>(x[row + i]);
          if (exclusive) {
            y[row + i] = static_cast<T>(acc[i]);
            acc[i] = static_cast<C>(acc[i] + v);
          } else {
            acc[i] = static_cast<C>(acc[i] + v);
            y[row + i] = static_cast<T>(acc[i]);
          }
        }
      }
    }
    return Status::ok();
  });
}

// ---- ReverseSequence ------------------------------------------------------------------

Status reverse_sequence_infer(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const int64_t b = ctx.node().attr_i("batch_axis", 1), t = ctx.node().attr_i("time_axis", 0);
  if (!((b == 0 && t == 1) || (b == 1 && t == 0)))
    return ctx.error(
        ErrorCode::kOnnxBadAttribute,
        "batch_axis " + std::to_string(b) + " and time_axis " + std::to_string(t) + " are invalid",
        "one must be 0 and the other 1");
  if (in.rank_known && in.rank() < 2)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "ReverseSequence input must have rank >= 2, got " + in.to_string(), "");
  const Shape& lens = ctx.input_shape(1);
  if (in.rank_known && lens.rank_known &&
      (lens.rank() != 1 || (lens.dims[0].is_known() && in.dims[b].is_known() &&
                            lens.dims[0].value != in.dims[b].value)))
    return ctx.error(
        ErrorCode::kShapeMismatch,
        "sequence_lens " + lens.to_string() + " does not match batch axis of " + in.to_string(),
        "give one length per batch entry");
  return infer_same_as_input0(ctx);
}

Status reverse_sequence_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  const HostTensor& lens = ctx.input(1);
  HostTensor& out = ctx.output(0);
  const int64_t baxis = ctx.node().attr_i("batch_axis", 1), taxis = 1 - baxis;
  const int64_t batch = in.dims()[baxis], steps = in.dims()[taxis];
  const auto st = strides_of(in.dims());
  const size_t es = dtype_size(in.dtype());
  const size_t block = static_cast<size_t>(prod(in.dims(), 2, in.rank())) * es;
  std::memcpy(out.raw(), in.raw(), in.bytes());
  const char* src = static_cast<const char*>(in.raw());
  char* dst = static_cast<char*>(out.raw());
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = lens.get_i64(b);
    if (len < 0 || len > steps)
      return ctx.error(ErrorCode::kInvalidArgument,
                       "sequence_lens[" + std::to_string(b) + "] = " + std::to_string(len) +
                           " is outside [0, " + std::to_string(steps) + "]",
                       "each length must be at most the time axis size");
    for (int64_t t = 0; t < len; ++t)
      std::memcpy(dst + (b * st[baxis] + t * st[taxis]) * es,
                  src + (b * st[baxis] + (len - 1 - t) * st[taxis]) * es, block);
  }
  return Status::ok();
}

}  // namespace

KILN_REGISTER_OPS(sort_scan) {
  // max_opset: TopK-24, Unique-28 and ReverseSequence-28 only add bfloat16.
  reg.add({.op_type = "TopK", .min_opset = 1, .max_opset = 24, .min_inputs = 1, .max_inputs = 2,
           .max_outputs = 2, .infer = topk_infer, .cpu = topk_cpu,
           .summary = "k largest/smallest along an axis, sorted, ties to lower index"});
  reg.add({.op_type = "Unique", .min_opset = 11, .max_opset = 28, .min_inputs = 1,
           .max_inputs = 1, .max_outputs = 4, .infer = unique_infer, .cpu = unique_cpu,
           .summary = "unique elements or slices with indices and counts"});
  reg.add({.op_type = "CumSum", .min_opset = 11, .max_opset = 23, .min_inputs = 2,
           .max_inputs = 2, .infer = cumsum_infer, .cpu = cumsum_cpu,
           .summary = "cumulative sum (exclusive, reverse)"});
  reg.add({.op_type = "ReverseSequence", .min_opset = 10, .max_opset = 28, .min_inputs = 2,
           .max_inputs = 2, .infer = reverse_sequence_infer, .cpu = reverse_sequence_cpu,
           .summary = "reverse the first len[b] steps of each batch entry"});
}

}  // namespace kiln::ops
