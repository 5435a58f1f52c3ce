// Index-driven writes (ONNX Operators.md: ScatterElements-11/13/16/18, ScatterND-11/13/
// 16/18, and Scatter-9, the deprecated name of ScatterElements). The output is a copy of
// `data` with `updates` written (reduction none) or combined (add, mul, max, min) at the
// indexed positions, in index order. Indices are validated before anything is written.
#include <algorithm>
#include <cstring>

#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

std::optional<Reduction> reduction_of(const ir::Node& n) {
  const std::string r = n.attr_s("reduction", "none");
  if (r == "none") return Reduction::kNone;
  if (r == "add") return Reduction::kAdd;
  if (r == "mul") return Reduction::kMul;
  if (r == "max") return Reduction::kMax;
  if (r == "min") return Reduction::kMin;
  return std::nullopt;
}

Status scatter_check(const ir::Node& n) {
  if (!reduction_of(n))
    return Status(ErrorCode::kOnnxBadAttribute,
                  "reduction '" + n.attr_s("reduction", "") + "' is not supported",
                  "use none, add, mul, max or min");
  return Status::ok();
}

Status check_updates_type(const InferContext& ctx) {
  if (ctx.input_type(2) != DataType::kUndefined && ctx.input_type(2) != ctx.input_type(0))
    return ctx.error(ErrorCode::kTypeMismatch,
                     std::string("updates are ") + dtype_name(ctx.input_type(2)) + ", data is " +
                         dtype_name(ctx.input_type(0)),
                     "updates must have the data's type");
  return Status::ok();
}

// Combines `n` consecutive update elements into `dst` with the reduction (typed), or copies
// them (none: any dtype, by bytes).
struct Combiner {
  Reduction red;
  DataType dtype;
  size_t es;
  Status apply(void* dst, const void* src, int64_t n) const {
    if (red == Reduction::kNone) {
      std::memcpy(dst, src, static_cast<size_t>(n) * es);
      return Status::ok();
    }
    return dispatch_numeric(dtype, [&](auto tag) {
      using T = decltype(tag);
      using C = compute_t<T>;
      T* d = static_cast<T*>(dst);
      const T* s = static_cast<const T*>(src);
      for (int64_t i = 0; i < n; ++i) {
        const C a = static_cast<C>(d[i]), b = static_cast<C>(s[i]);
        C v = a;
        switch (red) {
          case Reduction::kAdd:
            v = static_cast<C>(a + b);
            break;
          case Reduction::kMul:
            v = static_cast<C>(a * b);
            break;
          case Reduction::kMax:
            v = std::max(a, b);
            break;
          case Reduction::kMin:
            v = std::min(a, b);
            break;
          case Reduction::kNone:
            break;
        }
        d[i] = static_cast<T>(v);
      }
      return Status::ok();
    });
  }
};

// ---- ScatterElements / Scatter --------------------------------------------------------

Status scatter_elements_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "indices"));
  KILN_RETURN_IF_ERROR(check_updates_type(ctx));
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  const Shape& upd = ctx.input_shape(2);
  if (idx.rank_known && upd.rank_known && known_to_differ(idx.dims, upd.dims))
    return ctx.error(
        ErrorCode::kShapeMismatch,
        "indices " + idx.to_string() + " and updates " + upd.to_string() + " differ in shape",
        "indices and updates must have the same shape");
  KILN_RETURN_IF_ERROR(check_element_indices(ctx, data, idx, "", "scatter"));
  ctx.set_output(0, ctx.input_type(0), data);
  return Status::ok();
}

Status scatter_elements_cpu(KernelContext& ctx) {
  const HostTensor& data = ctx.input(0);
  const HostTensor& idx = ctx.input(1);
  const HostTensor& upd = ctx.input(2);
  HostTensor& out = ctx.output(0);
  const int64_t axis = *normalize_axis(ctx.node().attr_i("axis", 0), data.rank());
  const int64_t dim = data.dims()[axis];
  const auto st = strides_of(data.dims());
  std::vector<int64_t> offsets(idx.numel());
  Status bad = Status::ok();
  for_each_element_index(idx.dims(), st, axis, [&](int64_t i, int64_t base) {
    int64_t v = index_at(idx, i);
    if (!wrap_index(v, dim) && bad.is_ok())
      bad = index_out_of_range(ctx, "scatter index", v, axis, dim);
    offsets[i] = base + v * st[axis];
  });
  KILN_RETURN_IF_ERROR(bad);
  std::memcpy(out.raw(), data.raw(), data.bytes());
  const Combiner comb{*reduction_of(ctx.node()), data.dtype(), dtype_size(data.dtype())};
  char* dst = static_cast<char*>(out.raw());
  const char* src = static_cast<const char*>(upd.raw());
  for (int64_t i = 0; i < idx.numel(); ++i)
    KILN_RETURN_IF_ERROR(comb.apply(dst + offsets[i] * comb.es, src + i * comb.es, 1));
  return Status::ok();
}

// ---- ScatterND ------------------------------------------------------------------------

Status scatter_nd_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_int64(ctx, 1, "ScatterND indices"));
  KILN_RETURN_IF_ERROR(check_updates_type(ctx));
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  const Shape& upd = ctx.input_shape(2);
  if (data.rank_known && idx.rank_known && upd.rank_known && idx.rank() > 0 &&
      idx.dims.back().is_known()) {
    const int64_t m = idx.dims.back().value;
    if (m < 1 || m > static_cast<int64_t>(data.rank()))
      return ctx.error(ErrorCode::kShapeMismatch,
                       "ScatterND indices " + idx.to_string() + " index " + std::to_string(m) +
                           " dims of data " + data.to_string(),
                       "indices.shape[-1] must be in [1, rank(data)]");
    std::vector<Dim> want(idx.dims.begin(), idx.dims.end() - 1);
    want.insert(want.end(), data.dims.begin() + m, data.dims.end());
    if (known_to_differ(want, upd.dims))
      return ctx.error(ErrorCode::kShapeMismatch,
                       "ScatterND updates " + upd.to_string() + " should be " +
                           Shape(want).to_string() + " for data " + data.to_string() +
                           " and indices " + idx.to_string(),
                       "updates.shape must be indices.shape[:-1] + data.shape[indices.shape[-1]:]");
  }
  ctx.set_output(0, ctx.input_type(0), data);
  return Status::ok();
}

Status scatter_nd_cpu(KernelContext& ctx) {
  const HostTensor& data = ctx.input(0);
  const HostTensor& idx = ctx.input(1);
  const HostTensor& upd = ctx.input(2);
  HostTensor& out = ctx.output(0);
  const int64_t m = idx.dims().back();
  const int64_t tuples = m ? idx.numel() / m : 0;
  const int64_t slice = prod(data.dims(), m, data.rank());
  const auto st = strides_of(data.dims());
  std::vector<int64_t> offsets(tuples);
  for (int64_t k = 0; k < tuples; ++k) {
    int64_t off = 0;
    for (int64_t j = 0; j < m; ++j) {
      int64_t v = idx.data<int64_t>()[k * m + j];
      if (!wrap_index(v, data.dims()[j]))
        return index_out_of_range(ctx, "ScatterND index", v, j, data.dims()[j]);
      off += v * st[j];
    }
    offsets[k] = off;
  }
  std::memcpy(out.raw(), data.raw(), data.bytes());
  const Combiner comb{*reduction_of(ctx.node()), data.dtype(), dtype_size(data.dtype())};
  char* dst = static_cast<char*>(out.raw());
  const char* src = static_cast<const char*>(upd.raw());
  for (int64_t k = 0; k < tuples; ++k)
    KILN_RETURN_IF_ERROR(comb.apply(dst + offsets[k] * comb.es, src + k * slice * comb.es, slice));
  return Status::ok();
}

}  // namespace

KILN_REGISTER_OPS(scatter) {
  reg.add({.op_type = "ScatterElements", .min_opset = 11, .max_opset = 23, .min_inputs = 3,
           .max_inputs = 3, .infer = scatter_elements_infer, .cpu = scatter_elements_cpu,
           .check = scatter_check,
           .summary = "write or reduce updates into a copy of data along an axis (reduction from "
                      "16)"});
  reg.add({.op_type = "Scatter", .min_opset = 9, .max_opset = 23, .min_inputs = 3, .max_inputs = 3,
           .infer = scatter_elements_infer, .cpu = scatter_elements_cpu, .check = scatter_check,
           .summary = "deprecated name of ScatterElements"});
  reg.add({.op_type = "ScatterND", .min_opset = 11, .max_opset = 23, .min_inputs = 3,
           .max_inputs = 3, .infer = scatter_nd_infer, .cpu = scatter_nd_cpu,
           .check = scatter_check,
           .summary = "write or reduce update slices at index tuples (reduction from 16)"});
}

}  // namespace kiln::ops
