// Dtype sets, dtype checks for shape inference and table registration shared by the
// elementwise op families (see elementwise.h).
#include "ops/elementwise.h"

namespace kiln::ops {

bool type_in_set(DataType t, uint32_t set) {
  switch (t) {
    case DataType::kF32: case DataType::kF64: case DataType::kF16: case DataType::kBF16:
      return set & kTsFloat;
    case DataType::kF8E4M3: return set & kTsF8;
    case DataType::kI8: case DataType::kI16: case DataType::kI32: case DataType::kI64:
      return set & kTsSigned;
    case DataType::kU8: case DataType::kU16: case DataType::kU32: case DataType::kU64:
      return set & kTsUnsigned;
    case DataType::kBool: return set & kTsBool;
    case DataType::kUndefined: return false;
  }
  return false;
}

std::string type_set_names(uint32_t set) {
  static constexpr DataType kAll[] = {
      DataType::kF32, DataType::kF64, DataType::kF16, DataType::kBF16, DataType::kF8E4M3,
      DataType::kI8,  DataType::kI16, DataType::kI32, DataType::kI64,  DataType::kU8,
      DataType::kU16, DataType::kU32, DataType::kU64, DataType::kBool};
  std::string s;
  for (DataType t : kAll)
    if (type_in_set(t, set)) s += (s.empty() ? "" : ", ") + std::string(dtype_name(t));
  return s;
}

Status check_input_type(const InferContext& ctx, size_t i, uint32_t set, const char* what) {
  DataType t = ctx.input_type(i);
  if (t == DataType::kUndefined || type_in_set(t, set)) return Status::ok();
  return ctx.error(ErrorCode::kTypeMismatch,
                   std::string(what) + " " + std::to_string(i) + " has type " + dtype_name(t) +
                       "; " + ctx.node().op_type + " accepts " + type_set_names(set),
                   "insert a Cast to one of the accepted types");
}

Status check_same_types(const InferContext& ctx, size_t first, size_t last) {
  DataType t0 = ctx.input_type(first);
  for (size_t i = first + 1; i < last; ++i) {
    DataType t = ctx.input_type(i);
    if (t == DataType::kUndefined || t0 == DataType::kUndefined || t == t0) continue;
    return ctx.error(ErrorCode::kTypeMismatch,
                     "inputs " + std::to_string(first) + " and " + std::to_string(i) +
                         " have different types: " + dtype_name(t0) + " and " + dtype_name(t),
                     "insert a Cast so the operands have the same type");
  }
  return Status::ok();
}

namespace {

/// Number of trailing 1s that legacy (opset < 7) axis broadcasting appends to B; 0 when the
/// node broadcasts numpy-style. -1 when B does not fit into A at the axis.
int64_t legacy_trailing_ones(const ir::Node& n, int64_t a_rank, int64_t b_rank) {
  if (n.opset >= 7 || n.attr_i("broadcast", 0) == 0 || !n.has_attr("axis")) return 0;
  int64_t axis = n.attr_i("axis", 0);
  if (axis < 0) axis += a_rank;
  int64_t ones = a_rank - axis - b_rank;
  return axis < 0 || ones < 0 ? -1 : ones;
}

}  // namespace

Result<Shape> rhs_broadcast_shape(const InferContext& ctx) {
  const Shape& a = ctx.input_shape(0);
  Shape b = ctx.input_shape(1);
  if (!a.rank_known || !b.rank_known) return b;
  int64_t ones = legacy_trailing_ones(ctx.node(), a.rank(), b.rank());
  if (ones < 0)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "B " + b.to_string() + " does not fit into A " + a.to_string() + " at axis " +
                         std::to_string(ctx.node().attr_i("axis", 0)),
                     "with broadcast=1 (opset < 7), B's dims must match A's dims starting at axis");
  for (int64_t i = 0; i < ones; ++i) b.dims.emplace_back(1);
  return b;
}

Status infer_binary_broadcast(InferContext& ctx, DataType t) {
  KILN_ASSIGN_OR_RETURN(Shape b, rhs_broadcast_shape(ctx));
  auto s = broadcast_shapes(ctx.input_shape(0), b);
  if (!s)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "inputs cannot be broadcast together: " + ctx.input_shape(0).to_string() +
                         " and " + ctx.input_shape(1).to_string(),
                     "ONNX uses numpy broadcasting: trailing dims must be equal or 1");
  ctx.set_output(0, t, std::move(*s));
  return Status::ok();
}

HostTensor rhs_input(const KernelContext& ctx) {
  const HostTensor& b = ctx.input(1);
  int64_t ones = legacy_trailing_ones(ctx.node(), ctx.input(0).rank(), b.rank());
  if (ones <= 0) return b;  // < 0 was rejected by shape inference
  std::vector<int64_t> dims = b.dims();
  dims.insert(dims.end(), ones, 1);
  return b.reshaped(std::move(dims));
}

void register_elementwise(OpRegistry& reg, std::span<const ElementwiseEntry> entries) {
  for (const ElementwiseEntry& e : entries)
    reg.add({.op_type = e.name, .min_opset = e.min_opset, .max_opset = e.max_opset,
             .min_inputs = e.num_inputs, .max_inputs = e.num_inputs, .infer = e.infer,
             .cpu = e.cpu, .check = e.check, .summary = e.summary});
}

}  // namespace kiln::ops
