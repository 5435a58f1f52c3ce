#include "ops/helpers.h"

#include <algorithm>

namespace kiln::ops {

Status unsupported_dtype(DataType t, const char* what) {
  return Status(ErrorCode::kTypeMismatch,
                std::string(what) + " does not support data type " + dtype_name(t),
                "cast the tensor to a supported type (e.g. f32) before this op");
}

std::pair<int64_t, int64_t> shape_range(const ir::Node& n, int64_t rank) {
  auto clampi = [rank](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
  int64_t b = clampi(n.attr_i("start", 0)), e = clampi(n.attr_i("end", rank));
  return {b, std::max(b, e)};
}

Status infer_same_as_input0(InferContext& ctx) {
  ctx.set_output(0, ctx.input_type(0), ctx.input_shape(0));
  return Status::ok();
}

static Result<Shape> broadcast_all(const InferContext& ctx) {
  Shape s = ctx.input_shape(0);
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    auto b = broadcast_shapes(s, ctx.input_shape(i));
    if (!b)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "inputs cannot be broadcast together: " + s.to_string() + " and " +
                           ctx.input_shape(i).to_string(),
                       "ONNX uses numpy broadcasting: trailing dims must be equal or 1");
    s = *b;
  }
  return s;
}

Status infer_broadcast(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Shape s, broadcast_all(ctx));
  ctx.set_output(0, ctx.input_type(0), std::move(s));
  return Status::ok();
}

Status infer_broadcast_bool(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Shape s, broadcast_all(ctx));
  ctx.set_output(0, DataType::kBool, std::move(s));
  return Status::ok();
}

bool known_to_differ(const std::vector<Dim>& a, const std::vector<Dim>& b) {
  if (a.size() != b.size()) return true;
  for (size_t d = 0; d < a.size(); ++d)
    if (known_to_differ(a[d], b[d])) return true;
  return false;
}

BroadcastIndexer::BroadcastIndexer(const std::vector<int64_t>& in_dims,
                                   const std::vector<int64_t>& out_dims) {
  int64_t in_numel = 1;
  for (auto d : in_dims) in_numel *= d;
  identity_ = in_dims == out_dims;
  scalar_ = in_numel == 1;
  if (identity_ || scalar_) return;
  size_t r = out_dims.size();
  out_strides_ = strides_of(out_dims);
  std::vector<int64_t> padded(r, 1);
  for (size_t i = 0; i < in_dims.size(); ++i) padded[r - in_dims.size() + i] = in_dims[i];
  auto st = strides_of(padded);
  in_strides_.resize(r);
  for (size_t d = 0; d < r; ++d) in_strides_[d] = padded[d] == 1 ? 0 : st[d];
}

}  // namespace kiln::ops
