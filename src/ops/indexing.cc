// Index-driven reads (ONNX Operators.md: Gather, GatherElements, GatherND, Compress,
// NonZero). Indices may be negative (counted from the end of the axis); an index outside
// [-dim, dim-1] is a located kInvalidArgument error, checked before any element is read.
#include <cstring>

#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

// ---- Gather ---------------------------------------------------------------------------

Status gather_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "Gather indices"));
  const DataType t = ctx.input_type(0);
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  if (!data.rank_known || !idx.rank_known) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(int64_t axis, checked_axis(ctx, ctx.node().attr_i("axis", 0), data.rank()));
  Shape out;
  out.dims.assign(data.dims.begin(), data.dims.begin() + axis);
  out.dims.insert(out.dims.end(), idx.dims.begin(), idx.dims.end());
  out.dims.insert(out.dims.end(), data.dims.begin() + axis + 1, data.dims.end());
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

// Validated, non-negative copies of all indices along an axis of size `dim`.
Result<std::vector<int64_t>> checked_indices(const KernelContext& ctx, const HostTensor& idx,
                                             int64_t axis, int64_t dim, const char* what) {
  std::vector<int64_t> out(idx.numel());
  for (int64_t i = 0; i < idx.numel(); ++i) {
    int64_t v = index_at(idx, i);
    if (!wrap_index(v, dim)) return index_out_of_range(ctx, what, v, axis, dim);
    out[i] = v;
  }
  return out;
}

Status gather_cpu(KernelContext& ctx) {
  const HostTensor& data = ctx.input(0);
  HostTensor& out = ctx.output(0);
  const int64_t axis = *normalize_axis(ctx.node().attr_i("axis", 0), data.rank());
  const int64_t dim = data.dims()[axis];
  KILN_ASSIGN_OR_RETURN(auto ids, checked_indices(ctx, ctx.input(1), axis, dim, "Gather index"));
  const size_t es = dtype_size(data.dtype());
  const int64_t outer = prod(data.dims(), 0, axis);
  const size_t block = static_cast<size_t>(prod(data.dims(), axis + 1, data.rank())) * es;
  const char* src = static_cast<const char*>(data.raw());
  char* dst = static_cast<char*>(out.raw());
  const int64_t n = static_cast<int64_t>(ids.size());
  if (block == 0) return Status::ok();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < n; ++k, dst += block)
      std::memcpy(dst, src + (o * dim + ids[k]) * block, block);
  return Status::ok();
}

// ---- GatherElements -------------------------------------------------------------------

Status gather_elements_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "GatherElements indices"));
  const Shape& idx = ctx.input_shape(1);
  KILN_RETURN_IF_ERROR(
      check_element_indices(ctx, ctx.input_shape(0), idx, "GatherElements ", "gather"));
  ctx.set_output(0, ctx.input_type(0), idx);
  return Status::ok();
}

Status gather_elements_cpu(KernelContext& ctx) {
  const HostTensor& data = ctx.input(0);
  const HostTensor& idx = ctx.input(1);
  HostTensor& out = ctx.output(0);
  const int64_t axis = *normalize_axis(ctx.node().attr_i("axis", 0), data.rank());
  const int64_t dim = data.dims()[axis];
  KILN_ASSIGN_OR_RETURN(auto ids, checked_indices(ctx, idx, axis, dim, "GatherElements index"));
  const auto st = strides_of(data.dims());
  const size_t es = dtype_size(data.dtype());
  const char* src = static_cast<const char*>(data.raw());
  char* dst = static_cast<char*>(out.raw());
  for_each_element_index(idx.dims(), st, axis, [&](int64_t i, int64_t base) {
    std::memcpy(dst + i * es, src + (base + ids[i] * st[axis]) * es, es);
  });
  return Status::ok();
}

// ---- GatherND -------------------------------------------------------------------------

Status gather_nd_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_int64(ctx, 1, "GatherND indices"));
  const DataType t = ctx.input_type(0);
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  const int64_t b = ctx.node().attr_i("batch_dims", 0);
  if (!data.rank_known || !idx.rank_known || idx.rank() == 0 || !idx.dims.back().is_known()) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  const int64_t r = static_cast<int64_t>(data.rank()), q = static_cast<int64_t>(idx.rank());
  const int64_t m = idx.dims.back().value;
  if (b < 0 || b >= std::min(r, q) || m < 1 || m > r - b)
    return ctx.error(
        ErrorCode::kShapeMismatch,
        "GatherND with data " + data.to_string() + ", indices " + idx.to_string() +
            ", batch_dims " + std::to_string(b) + " is invalid",
        "need 0 <= batch_dims < min(rank(data), rank(indices)) and 1 <= indices.shape[-1] <= "
        "rank(data) - batch_dims");
  for (int64_t d = 0; d < b; ++d)
    if (known_to_differ(data.dims[d], idx.dims[d]))
      return ctx.error(ErrorCode::kShapeMismatch,
                       "GatherND batch dim " + std::to_string(d) + " differs: data " +
                           data.to_string() + ", indices " + idx.to_string(),
                       "the first batch_dims dims of data and indices must be equal");
  Shape out;
  out.dims.assign(idx.dims.begin(), idx.dims.end() - 1);
  out.dims.insert(out.dims.end(), data.dims.begin() + b + m, data.dims.end());
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

Status gather_nd_cpu(KernelContext& ctx) {
  const HostTensor& data = ctx.input(0);
  const HostTensor& idx = ctx.input(1);
  HostTensor& out = ctx.output(0);
  const int64_t b = ctx.node().attr_i("batch_dims", 0);
  const int64_t m = idx.dims().back();
  const size_t es = dtype_size(data.dtype());
  const auto st = strides_of(data.dims());
  const int64_t batches = prod(data.dims(), 0, b);
  const int64_t batch_stride = prod(data.dims(), b, data.rank());
  const int64_t per_batch = prod(idx.dims(), b, idx.rank() - 1);  // index tuples per batch
  const size_t slice = static_cast<size_t>(prod(data.dims(), b + m, data.rank())) * es;
  const char* src = static_cast<const char*>(data.raw());
  char* dst = static_cast<char*>(out.raw());
  for (int64_t bi = 0; bi < batches; ++bi) {
    for (int64_t k = 0; k < per_batch; ++k, dst += slice) {
      const int64_t t = bi * per_batch + k;
      int64_t off = bi * batch_stride;
      for (int64_t j = 0; j < m; ++j) {
        int64_t v = idx.data<int64_t>()[t * m + j];
        const int64_t dim = data.dims()[b + j];
        if (!wrap_index(v, dim)) return index_out_of_range(ctx, "GatherND index", v, b + j, dim);
        off += v * st[b + j];
      }
      if (slice) std::memcpy(dst, src + off * es, slice);
    }
  }
  return Status::ok();
}

// ---- Compress -------------------------------------------------------------------------

Status compress_infer(InferContext& ctx) {
  const DataType t = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  const Shape& cond = ctx.input_shape(1);
  if (ctx.input_type(1) != DataType::kUndefined && ctx.input_type(1) != DataType::kBool)
    return ctx.error(ErrorCode::kTypeMismatch, "Compress condition must be bool",
                     "compare with 0 to get a bool mask");
  if (cond.rank_known && cond.rank() != 1)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "Compress condition must be 1-D, got " + cond.to_string(),
                     "pass a 1-D bool mask");
  Dim count = Dim::unknown();
  if (const HostTensor* c = ctx.input_value(1)) {
    int64_t n = 0;
    for (int64_t i = 0; i < c->numel(); ++i) n += c->data<uint8_t>()[i] != 0;
    count = Dim(n);
  }
  const bool has_axis = ctx.node().has_attr("axis");
  if (!in.rank_known) {
    ctx.set_output(0, t, has_axis ? Shape::unknown_rank() : Shape({count}));
    return Status::ok();
  }
  // The condition may be shorter than the axis (the rest counts as false), not longer.
  Dim len = has_axis ? Dim::unknown() : dim_product(in.dims, 0, in.rank());
  Shape out = has_axis ? in : Shape({count});
  if (has_axis) {
    KILN_ASSIGN_OR_RETURN(int64_t axis, checked_axis(ctx, ctx.node().attr_i("axis", 0), in.rank()));
    len = in.dims[axis];
    out.dims[axis] = count;
  }
  if (cond.rank_known && cond.dims[0].is_known() && len.is_known() &&
      cond.dims[0].value > len.value)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "Compress condition has " + std::to_string(cond.dims[0].value) +
                         " entries for " + std::to_string(len.value) + " slices of " +
                         in.to_string(),
                     "the condition must not be longer than the selected axis");
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

Status compress_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  const HostTensor& cond = ctx.input(1);
  HostTensor& out = ctx.output(0);
  const bool has_axis = ctx.node().has_attr("axis");
  const int64_t axis = has_axis ? *normalize_axis(ctx.node().attr_i("axis", 0), in.rank()) : 0;
  const std::vector<int64_t> dims = has_axis ? in.dims() : std::vector<int64_t>{in.numel()};
  const size_t es = dtype_size(in.dtype());
  const int64_t outer = prod(dims, 0, axis), dim = dims[axis];
  const size_t block = static_cast<size_t>(prod(dims, axis + 1, dims.size())) * es;
  const int64_t n = std::min(cond.numel(), dim);
  const char* src = static_cast<const char*>(in.raw());
  char* dst = static_cast<char*>(out.raw());
  const uint8_t* c = cond.data<uint8_t>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < n; ++k)
      if (c[k]) {
        std::memcpy(dst, src + (o * dim + k) * block, block);
        dst += block;
      }
  return Status::ok();
}

// ---- NonZero --------------------------------------------------------------------------

Status nonzero_infer(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  // A scalar behaves as 1-D of one element, like numpy.nonzero in the ONNX reference.
  const Dim rank = in.rank_known ? Dim(std::max<int64_t>(1, in.rank())) : Dim::unknown();
  ctx.set_output(0, DataType::kI64, Shape({rank, Dim::unknown()}));
  return Status::ok();
}

Status nonzero_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  std::vector<int64_t> hits;
  KILN_RETURN_IF_ERROR(dispatch_all(in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = in.data<T>();
    for (int64_t i = 0; i < in.numel(); ++i)
      if (static_cast<compute_t<T>>(p[i]) != compute_t<T>(0)) hits.push_back(i);
    return Status::ok();
  }));
  const std::vector<int64_t> dims = in.rank() ? in.dims() : std::vector<int64_t>{1};
  const int64_t r = static_cast<int64_t>(dims.size()), n = static_cast<int64_t>(hits.size());
  HostTensor& out = ctx.allocate_output(0, DataType::kI64, {r, n});
  int64_t* o = out.data<int64_t>();
  const auto st = strides_of(dims);
  for (int64_t k = 0; k < n; ++k) {
    int64_t rest = hits[k];
    for (int64_t d = 0; d < r; ++d) {
      o[d * n + k] = rest / st[d];
      rest %= st[d];
    }
  }
  return Status::ok();
}

}  // namespace

KILN_REGISTER_OPS(indexing) {
  // max_opset: Compress-28 only adds bfloat16.
  reg.add({.op_type = "Gather", .min_opset = 1, .max_opset = 23, .min_inputs = 2, .max_inputs = 2,
           .infer = gather_infer, .cpu = gather_cpu,
           .summary = "take slices along an axis at indices"});
  reg.add({.op_type = "GatherElements", .min_opset = 11, .max_opset = 23, .min_inputs = 2,
           .max_inputs = 2, .infer = gather_elements_infer, .cpu = gather_elements_cpu,
           .summary = "take one element per index along an axis"});
  reg.add({.op_type = "GatherND", .min_opset = 11, .max_opset = 23, .min_inputs = 2,
           .max_inputs = 2, .infer = gather_nd_infer, .cpu = gather_nd_cpu,
           .summary = "take slices at index tuples (batch_dims from 12)"});
  reg.add({.op_type = "Compress", .min_opset = 9, .max_opset = 28, .min_inputs = 2,
           .max_inputs = 2, .infer = compress_infer, .cpu = compress_cpu,
           .summary = "keep slices where a bool mask is true"});
  reg.add({.op_type = "NonZero", .min_opset = 9, .max_opset = 23, .min_inputs = 1,
           .max_inputs = 1, .infer = nonzero_infer, .cpu = nonzero_cpu,
           .summary = "int64 coordinates of non-zero elements"});
}

}  // namespace kiln::ops
