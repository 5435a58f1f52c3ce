// Ops that create tensors from shapes and scalars, or mask by position (ONNX Operators.md:
// ConstantOfShape, Range, EyeLike, OneHot, Trilu).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "onnx/importer.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

// ---- ConstantOfShape ------------------------------------------------------------------

// The fill value: the `value` attribute (a one-element tensor), default float32 zero.
HostTensor fill_value(const ir::Node& n) {
  const ir::Attribute* a = n.attr("value");
  if (a && a->kind == ir::Attribute::Kind::kTensor && a->t.defined()) return a->t;
  return HostTensor(DataType::kF32, {1});
}

Status constant_of_shape_check(const ir::Node& n) {
  const ir::Attribute* a = n.attr("value");
  if (a && (a->kind != ir::Attribute::Kind::kTensor || a->t.numel() != 1))
    return Status(ErrorCode::kOnnxBadAttribute,
                  "ConstantOfShape value must be a one-element tensor",
                  "set value to a tensor of shape [1]");
  return Status::ok();
}

Status constant_of_shape_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 0, "ConstantOfShape input"));
  const DataType t = fill_value(ctx.node()).dtype();
  auto dims = sym_input(ctx, 0);
  if (!dims) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  Shape out;
  for (const auto& d : *dims) {
    if (d.known && d.value < 0)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "ConstantOfShape got negative dim " + std::to_string(d.value),
                       "all dims must be >= 0");
    out.dims.push_back(d.to_dim());
  }
  KILN_RETURN_IF_ERROR(check_output_size(ctx, out, t));
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

Status constant_of_shape_cpu(KernelContext& ctx) {
  HostTensor v = fill_value(ctx.node());
  HostTensor& out = ctx.output(0);
  fill_pattern(out.raw(), out.numel(), v.raw(), dtype_size(v.dtype()));
  return Status::ok();
}

// ---- Range ----------------------------------------------------------------------------

// Element count max(ceil((limit - start) / delta), 0), exact for integers.
Result<int64_t> range_count(const InferContext& ctx, const HostTensor& s, const HostTensor& l,
                            const HostTensor& d) {
  if (dtype_is_float(s.dtype())) {
    const double delta = d.get_f64(0);
    if (delta == 0 || !std::isfinite(delta))
      return ctx.error(ErrorCode::kInvalidArgument, "Range delta must be finite and non-zero", "");
    const double n = std::ceil((l.get_f64(0) - s.get_f64(0)) / delta);
    if (!(n < 9e15))
      return ctx.error(ErrorCode::kInvalidArgument, "Range would produce too many elements",
                       "check start/limit/delta");
    return n > 0 ? static_cast<int64_t>(n) : 0;
  }
  const int64_t a = s.get_i64(0), b = l.get_i64(0), delta = d.get_i64(0);
  if (delta == 0)
    return ctx.error(ErrorCode::kInvalidArgument, "Range delta is 0", "delta must be non-zero");
  int64_t span = 0;
  if (__builtin_sub_overflow(b, a, &span) || span == std::numeric_limits<int64_t>::min())
    return ctx.error(ErrorCode::kInvalidArgument, "Range start/limit span overflows int64", "");
  if ((span > 0) != (delta > 0) || span == 0) return 0;
  // ceil(span / delta) for same-sign operands, without overflowing near the int64 limits.
  return span / delta + (span % delta != 0 ? 1 : 0);
}

// Range-27's stash_type = 1 (the default) computes float16/bfloat16 ranges in float32, as
// range_cpu does for every float type; lower-precision accumulation is not implemented.
Status range_check(const ir::Node& n) {
  if (n.attr_i("stash_type", 1) != 1)
    return Status(
        ErrorCode::kOnnxUnsupportedAttribute,
        "Range stash_type " + std::to_string(n.attr_i("stash_type", 1)) + " is not supported",
        "kiln computes ranges in float32 (stash_type = 1); remove the attribute");
  return Status::ok();
}

Status range_infer(InferContext& ctx) {
  const DataType t = ctx.input_type(0);
  for (size_t i = 1; i < 3; ++i)
    if (ctx.input_type(i) != DataType::kUndefined && ctx.input_type(i) != t)
      return ctx.error(ErrorCode::kTypeMismatch,
                       "Range start, limit and delta must have the same type", "");
  for (size_t i = 0; i < 3; ++i)
    if (ctx.input_shape(i).rank_known && ctx.input_shape(i).numel() != 1 &&
        ctx.input_shape(i).is_static())
      return ctx.error(ErrorCode::kShapeMismatch,
                       "Range input " + std::to_string(i) + " must be a scalar, got " +
                           ctx.input_shape(i).to_string(),
                       "");
  Dim n = Dim::unknown();
  const HostTensor *s = ctx.input_value(0), *l = ctx.input_value(1), *d = ctx.input_value(2);
  if (s && l && d) {
    KILN_ASSIGN_OR_RETURN(int64_t c, range_count(ctx, *s, *l, *d));
    n = Dim(c);
  } else if (dtype_is_int(t)) {
    // arange(0, dim) over a named dim (positions in transformer exports) has that length.
    auto start = sym_input(ctx, 0), limit = sym_input(ctx, 1), delta = sym_input(ctx, 2);
    if (start && limit && delta && start->size() == 1 && limit->size() == 1 && delta->size() == 1 &&
        (*start)[0].known && (*start)[0].value == 0 && (*delta)[0].known && (*delta)[0].value == 1)
      n = (*limit)[0].to_dim();
  }
  KILN_RETURN_IF_ERROR(check_output_size(ctx, Shape({n}), t));
  ctx.set_output(0, t, Shape({n}));
  return Status::ok();
}

Status range_cpu(KernelContext& ctx) {
  HostTensor& out = ctx.output(0);
  const HostTensor& s = ctx.input(0);
  const HostTensor& d = ctx.input(2);
  return dispatch_numeric(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data<T>();
    if constexpr (is_float_v<T>) {
      // numpy.arange semantics: start + i * delta (no accumulated rounding).
      const double a = s.get_f64(0), step = d.get_f64(0);
      for (int64_t i = 0; i < out.numel(); ++i)
        o[i] = static_cast<T>(static_cast<compute_t<T>>(a + i * step));
    } else {
      const int64_t a = s.get_i64(0), step = d.get_i64(0);
      for (int64_t i = 0; i < out.numel(); ++i) o[i] = static_cast<T>(a + i * step);
    }
    return Status::ok();
  });
}

// ---- EyeLike --------------------------------------------------------------------------

DataType eye_like_type(const ir::Node& n, DataType input) {
  return n.has_attr("dtype") ? onnx_import::from_onnx_dtype(static_cast<int>(n.attr_i("dtype", 0)))
                             : input;
}

Status eye_like_check(const ir::Node& n) {
  if (n.has_attr("dtype") && eye_like_type(n, DataType::kUndefined) == DataType::kUndefined)
    return Status(ErrorCode::kOnnxUnsupportedType,
                  "EyeLike dtype " +
                      onnx_import::onnx_dtype_name(static_cast<int>(n.attr_i("dtype", 0))) +
                      " is not supported",
                  "use a numeric or bool type");
  return Status::ok();
}

Status eye_like_infer(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (in.rank_known && in.rank() != 2)
    return ctx.error(ErrorCode::kShapeMismatch, "EyeLike input must be 2-D, got " + in.to_string(),
                     "");
  ctx.set_output(0, eye_like_type(ctx.node(), ctx.input_type(0)),
                 in.rank_known ? in : Shape({Dim(), Dim()}));
  return Status::ok();
}

Status eye_like_cpu(KernelContext& ctx) {
  HostTensor& out = ctx.output(0);
  const int64_t rows = out.dims()[0], cols = out.dims()[1];
  const int64_t k = std::clamp<int64_t>(ctx.node().attr_i("k", 0), -rows, cols);  // no overflow
  // set_f64 writes 1 in any dtype; output() is zero-initialised.
  for (int64_t i = 0; i < rows; ++i)
    if (i + k >= 0 && i + k < cols) out.set_f64(i * cols + i + k, 1.0);
  return Status::ok();
}

// ---- OneHot ---------------------------------------------------------------------------

std::optional<int64_t> onehot_depth(const HostTensor* d) {
  if (!d || d->numel() != 1) return std::nullopt;
  return dtype_is_float(d->dtype()) ? static_cast<int64_t>(d->get_f64(0)) : d->get_i64(0);
}

Status onehot_infer(InferContext& ctx) {
  const Shape& idx = ctx.input_shape(0);
  const DataType t = ctx.input_type(2);
  const Shape& vals = ctx.input_shape(2);
  if (vals.is_static() && vals.numel() != 2)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "OneHot values must hold [off, on], got " + vals.to_string(), "");
  if (!idx.rank_known) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  Dim depth = Dim::unknown();
  if (const HostTensor* d = ctx.input_value(1)) {
    auto v = onehot_depth(d);
    if (!v || *v < 1)
      return ctx.error(ErrorCode::kInvalidArgument, "OneHot depth must be a positive scalar", "");
    depth = Dim(*v);
  }
  const int64_t r = static_cast<int64_t>(idx.rank()) + 1;
  KILN_ASSIGN_OR_RETURN(int64_t axis, checked_axis(ctx, ctx.node().attr_i("axis", -1), r));
  Shape out = idx;
  out.dims.insert(out.dims.begin() + axis, depth);
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

Status onehot_cpu(KernelContext& ctx) {
  const HostTensor& idx = ctx.input(0);
  const HostTensor& vals = ctx.input(2);
  HostTensor& out = ctx.output(0);
  const int64_t depth = *onehot_depth(&ctx.input(1));
  const int64_t axis = *normalize_axis(ctx.node().attr_i("axis", -1), out.rank());
  const size_t es = dtype_size(vals.dtype());
  const char* off = static_cast<const char*>(vals.raw());
  const char* on = off + es;
  fill_pattern(out.raw(), out.numel(), off, es);
  const int64_t outer = prod(idx.dims(), 0, axis), inner = prod(idx.dims(), axis, idx.rank());
  char* dst = static_cast<char*>(out.raw());
  const bool float_idx = dtype_is_float(idx.dtype());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t flat = o * inner + i;
      int64_t v = float_idx ? static_cast<int64_t>(idx.get_f64(flat)) : idx.get_i64(flat);
      // Out-of-range indices give an all-`off` row (ONNX OneHot); negatives count back.
      if (!wrap_index(v, depth)) continue;
      std::memcpy(dst + ((o * depth + v) * inner + i) * es, on, es);
    }
  return Status::ok();
}

// ---- Trilu ----------------------------------------------------------------------------

Status trilu_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "Trilu k"));
  const Shape& in = ctx.input_shape(0);
  if (in.rank_known && in.rank() < 2)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "Trilu input must have rank >= 2, got " + in.to_string(), "");
  if (ctx.has_input(1) && ctx.input_shape(1).is_static() && ctx.input_shape(1).numel() != 1)
    return ctx.error(ErrorCode::kShapeMismatch, "Trilu k must be a scalar", "");
  return infer_same_as_input0(ctx);
}

// Keeps element (i, j) of each matrix when j - i >= k (upper) or j - i <= k (lower), zeroes
// the rest; zero bytes are zero in every dtype.
Status trilu_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  HostTensor& out = ctx.output(0);
  const bool upper = ctx.node().attr_i("upper", 1) != 0;
  const size_t es = dtype_size(in.dtype());
  const int64_t rows = in.dims()[in.rank() - 2], cols = in.dims()[in.rank() - 1];
  // Diagonals beyond the matrix select all or nothing; clamping keeps i + k from overflowing.
  const int64_t k =
      std::clamp<int64_t>(ctx.has_input(1) ? ctx.input(1).get_i64(0) : 0, -rows - 1, cols + 1);
  const int64_t mats = rows > 0 && cols > 0 ? in.numel() / (rows * cols) : 0;
  const char* src = static_cast<const char*>(in.raw());
  char* dst = static_cast<char*>(out.raw());
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t i = 0; i < rows; ++i) {
      // Columns kept in row i: [i + k, cols) for upper, [0, i + k] for lower.
      const int64_t lo = upper ? std::clamp<int64_t>(i + k, 0, cols) : 0;
      const int64_t hi = upper ? cols : std::clamp<int64_t>(i + k + 1, 0, cols);
      const int64_t row = (m * rows + i) * cols;
      if (hi > lo) std::memcpy(dst + (row + lo) * es, src + (row + lo) * es, (hi - lo) * es);
    }
  return Status::ok();
}

}  // namespace

KILN_REGISTER_OPS(generators) {
  // max_opset: ConstantOfShape-24/25 and OneHot-28 only add types; Range-27 adds float16/
  // bfloat16 with `stash_type` (checked by range_check).
  reg.add({.op_type = "ConstantOfShape", .min_opset = 9, .max_opset = 25, .min_inputs = 1,
           .max_inputs = 1, .infer = constant_of_shape_infer, .cpu = constant_of_shape_cpu,
           .check = constant_of_shape_check,
           .summary = "tensor of a given shape filled with one value"});
  reg.add({.op_type = "Range", .min_opset = 11, .max_opset = 27, .min_inputs = 3, .max_inputs = 3,
           .infer = range_infer, .cpu = range_cpu, .check = range_check,
           .summary = "start, start + delta, ... up to limit (exclusive)"});
  reg.add({.op_type = "EyeLike", .min_opset = 9, .max_opset = 23, .min_inputs = 1,
           .max_inputs = 1, .infer = eye_like_infer, .cpu = eye_like_cpu,
           .check = eye_like_check, .summary = "2-D identity (diagonal k) like the input"});
  reg.add({.op_type = "OneHot", .min_opset = 9, .max_opset = 28, .min_inputs = 3, .max_inputs = 3,
           .infer = onehot_infer, .cpu = onehot_cpu,
           .summary = "one-hot encoding with [off, on] values"});
  reg.add({.op_type = "Trilu", .min_opset = 14, .max_opset = 23, .min_inputs = 1, .max_inputs = 2,
           .infer = trilu_infer, .cpu = trilu_cpu,
           .summary = "upper or lower triangle of the last two dims"});
}

}  // namespace kiln::ops
