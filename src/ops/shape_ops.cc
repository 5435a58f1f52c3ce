// Shape queries and view ops (ONNX Operators.md: Shape, Size, Reshape, Flatten, Squeeze,
// Unsqueeze, Expand). Shape inference keeps named dims ("batch") wherever they are
// derivable, and reads shape-tensor inputs through build-time value propagation
// (tensor_util.h) so Shape→Gather→Concat→Reshape chains resolve before any folding.
// Reshape/Flatten/Squeeze/Unsqueeze alias their input: no copy.
#include <algorithm>
#include <map>
#include <set>

#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

// ---- Shape / Size ---------------------------------------------------------------------

Status shape_infer(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known) {
    ctx.set_output(0, DataType::kI64, Shape({Dim::unknown()}));
    return Status::ok();
  }
  auto [b, e] = shape_range(ctx.node(), static_cast<int64_t>(in.rank()));
  ctx.set_output(0, DataType::kI64, Shape::from({e - b}));
  return Status::ok();
}

Status shape_cpu(KernelContext& ctx) {
  const auto& dims = ctx.input(0).dims();
  auto [b, e] = shape_range(ctx.node(), static_cast<int64_t>(dims.size()));
  HostTensor& out = ctx.output(0);
  for (int64_t d = b; d < e; ++d) out.data<int64_t>()[d - b] = dims[d];
  return Status::ok();
}

Status size_infer(InferContext& ctx) {
  ctx.set_output(0, DataType::kI64, Shape());
  return Status::ok();
}

Status size_cpu(KernelContext& ctx) {
  ctx.output(0).data<int64_t>()[0] = ctx.input(0).numel();
  return Status::ok();
}

// ---- Reshape --------------------------------------------------------------------------

// A product of dims kept as concrete factor × multiset of symbols, so that -1 can be
// resolved when the same symbols appear on both sides ([batch,3,4] → [batch,-1]).
struct Factors {
  int64_t known = 1;
  std::multiset<std::string> symbols;
  bool complete = true;  // false when a factor is entirely unknown
  bool overflow = false;
  void mul(const Dim& d) {
    if (d.is_known())
      overflow |= __builtin_mul_overflow(known, d.value, &known);
    else if (d.is_symbolic())
      symbols.insert(d.symbol);
    else
      complete = false;
  }
};

// Dim that replaces -1: input total / product of the other target dims.
Result<Dim> reshape_infer_minus_one(const InferContext& ctx, const Shape& in, const Shape& out,
                                    size_t minus_one) {
  Factors a, b;
  for (const Dim& d : in.dims) a.mul(d);
  for (size_t i = 0; i < out.rank(); ++i)
    if (i != minus_one) b.mul(out.dims[i]);
  if (a.overflow || b.overflow)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "Reshape of " + in.to_string() + " to " + out.to_string() +
                         ": the element count overflows int64",
                     "check the target shape values");
  if (!a.complete || !b.complete) return Dim::unknown();
  for (auto it = b.symbols.begin(); it != b.symbols.end();) {
    auto m = a.symbols.find(*it);
    if (m == a.symbols.end()) return Dim::unknown();
    a.symbols.erase(m);
    it = b.symbols.erase(it);
  }
  if (b.known == 0 || a.known % b.known != 0) {
    if (!a.symbols.empty()) return Dim::unknown();
    return ctx.error(ErrorCode::kShapeMismatch,
                     "cannot reshape " + in.to_string() + " to " + out.to_string() +
                         " (-1 at position " + std::to_string(minus_one) +
                         "): the element count is not divisible",
                     "the target shape's known dims must divide the input's element count");
  }
  const int64_t q = a.known / b.known;
  if (a.symbols.empty()) return Dim(q);
  if (a.symbols.size() == 1 && q == 1) return Dim::sym(*a.symbols.begin());
  return Dim::unknown();
}

// Element counts equal, computed without overflow: a view must never claim more elements
// than its storage holds.
bool same_numel(const Shape& a, const Shape& b) {
  Factors fa, fb;
  for (const Dim& d : a.dims) fa.mul(d);
  for (const Dim& d : b.dims) fb.mul(d);
  return !fa.overflow && !fb.overflow && fa.known == fb.known;
}

Status reshape_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "Reshape shape"));
  const DataType t = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  auto target = sym_input(ctx, 1);
  if (!target) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  const bool allowzero = ctx.opset() >= 14 && ctx.node().attr_i("allowzero", 0) != 0;
  Shape out;
  std::optional<size_t> minus_one;
  bool has_zero = false;
  for (size_t i = 0; i < target->size(); ++i) {
    const SymInt& e = (*target)[i];
    if (e.known && e.value == -1) {
      if (minus_one)
        return ctx.error(ErrorCode::kShapeMismatch, "Reshape target has more than one -1",
                         "at most one dimension can be inferred");
      minus_one = i;
      out.dims.push_back(Dim::unknown());
    } else if (e.known && e.value < -1) {
      return ctx.error(ErrorCode::kShapeMismatch,
                       "Reshape target has invalid dimension " + std::to_string(e.value),
                       "dims must be >= 0, or -1 for the inferred one");
    } else if (e.known && e.value == 0 && !allowzero) {
      // 0 copies the input's dim at the same position.
      if (in.rank_known && i >= in.rank())
        return ctx.error(ErrorCode::kShapeMismatch,
                         "Reshape target has 0 at position " + std::to_string(i) +
                             " but the input " + in.to_string() + " has rank " +
                             std::to_string(in.rank()),
                         "0 copies the input dimension at the same index");
      out.dims.push_back(in.rank_known ? in.dims[i] : Dim::unknown());
    } else {
      has_zero |= e.known && e.value == 0;
      out.dims.push_back(e.to_dim());
    }
  }
  if (minus_one && has_zero)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "Reshape with allowzero=1 has both 0 and -1 in its target",
                     "the -1 cannot be inferred when another dim is a literal 0");
  if (in.rank_known) {
    if (minus_one) {
      KILN_ASSIGN_OR_RETURN(out.dims[*minus_one],
                            reshape_infer_minus_one(ctx, in, out, *minus_one));
    } else if (in.is_static() && out.is_static() && !same_numel(in, out)) {
      return ctx.error(ErrorCode::kShapeMismatch,
                       "cannot reshape " + in.to_string() + " (" + std::to_string(in.numel()) +
                           " elements) to " + out.to_string() + " (" + std::to_string(out.numel()) +
                           " elements)",
                       "the element count must stay the same");
    }
  }
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

// ---- Flatten --------------------------------------------------------------------------

Status flatten_infer(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known) {
    ctx.set_output(0, ctx.input_type(0), Shape({Dim::unknown(), Dim::unknown()}));
    return Status::ok();
  }
  const int64_t r = static_cast<int64_t>(in.rank());
  int64_t axis = ctx.node().attr_i("axis", 1);
  // Flatten's axis ranges over [-r, r] (axis == r gives [N, 1]).
  if (axis < -r || axis > r)
    return ctx.error(
        ErrorCode::kBadAxis,
        "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(r),
        "Flatten's axis must be in [-rank, rank]");
  if (axis < 0) axis += r;
  ctx.set_output(0, ctx.input_type(0),
                 Shape({dim_product(in.dims, 0, axis), dim_product(in.dims, axis, in.rank())}));
  return Status::ok();
}

// ---- Squeeze / Unsqueeze --------------------------------------------------------------

// Squeeze-13 / Unsqueeze-13 moved `axes` from an attribute to input 1.
std::optional<std::vector<int64_t>> axes_arg(const InferContext& ctx, bool* present) {
  if (ctx.opset() >= 13) {
    *present = ctx.has_input(1);
    return *present ? known_input_ints(ctx, 1) : std::nullopt;
  }
  *present = ctx.node().has_attr("axes");
  return *present ? std::optional(ctx.node().attr_ints("axes")) : std::nullopt;
}

Result<std::vector<bool>> axis_mask(const InferContext& ctx, const std::vector<int64_t>& axes,
                                    int64_t rank) {
  std::vector<bool> mask(rank, false);
  for (int64_t a : axes) {
    KILN_ASSIGN_OR_RETURN(int64_t n, checked_axis(ctx, a, rank, "axes value"));
    if (mask[n])
      return ctx.error(ErrorCode::kBadAxis, "axes contains axis " + std::to_string(n) + " twice",
                       "list every axis once");
    mask[n] = true;
  }
  return mask;
}

Status squeeze_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "Squeeze axes"));
  const DataType t = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  bool present = false;
  auto axes = axes_arg(ctx, &present);
  if (!in.rank_known || (present && !axes)) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  Shape out;
  if (!present) {
    // Without axes every size-1 dim goes; a symbolic dim might be 1, so the rank is unknown.
    for (const Dim& d : in.dims) {
      if (!d.is_known()) {
        ctx.set_output(0, t, Shape::unknown_rank());
        return Status::ok();
      }
      if (d.value != 1) out.dims.push_back(d);
    }
    ctx.set_output(0, t, std::move(out));
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(auto mask, axis_mask(ctx, *axes, static_cast<int64_t>(in.rank())));
  for (size_t d = 0; d < in.rank(); ++d) {
    if (!mask[d]) {
      out.dims.push_back(in.dims[d]);
    } else if (in.dims[d].is_known() && in.dims[d].value != 1) {
      return ctx.error(ErrorCode::kShapeMismatch,
                       "cannot squeeze axis " + std::to_string(d) + " of " + in.to_string() +
                           ": its size is " + std::to_string(in.dims[d].value) + ", not 1",
                       "only size-1 dimensions can be squeezed");
    }
  }
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

Status unsqueeze_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "Unsqueeze axes"));
  const DataType t = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  bool present = false;
  auto axes = axes_arg(ctx, &present);
  if (!present)
    return ctx.error(ErrorCode::kOnnxBadAttribute, "Unsqueeze needs axes",
                     ctx.opset() >= 13 ? "pass axes as input 1" : "set the axes attribute");
  if (!in.rank_known || !axes) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  const int64_t r = static_cast<int64_t>(in.rank() + axes->size());
  KILN_ASSIGN_OR_RETURN(auto mask, axis_mask(ctx, *axes, r));
  Shape out;
  size_t k = 0;
  for (int64_t d = 0; d < r; ++d) out.dims.push_back(mask[d] ? Dim(1) : in.dims[k++]);
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

// One kernel for every view op: same data, dims from the op's own inference (already run
// by the executor on these inputs).
Status view_cpu(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(auto dims, ctx.inferred_dims(0));
  if (!same_numel(Shape::from(dims), ctx.input(0).shape()))
    return ctx.error(ErrorCode::kInternal, "view of " + ctx.input(0).shape().to_string() + " as " +
                                               dims_to_string(dims) + " changes the element count");
  ctx.set_output(0, ctx.input(0).reshaped(std::move(dims)));
  return Status::ok();
}

// ---- Expand ---------------------------------------------------------------------------

// One output dim of Expand's bidirectional broadcast of input dim `a` with target `t`.
std::optional<Dim> expand_dim(const Dim& a, const SymInt& t) {
  if (t.known) {
    if (t.value == 1) return a;
    if (a.is_known() && a.value != 1 && a.value != t.value) return std::nullopt;
    return Dim(t.value);
  }
  if (t.is_symbol()) {
    if (a.is_known() && a.value == 1) return Dim::sym(t.symbol);
    if (a.is_known() || (a.is_symbolic() && a.symbol == t.symbol)) return a;
    return Dim::unknown();
  }
  return a.is_known() && a.value != 1 ? a : Dim::unknown();
}

Status expand_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "Expand shape"));
  const DataType t = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  auto target = sym_input(ctx, 1);
  if (!target || !in.rank_known) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  for (const auto& e : *target)
    if (e.known && e.value < 0)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "Expand target shape has negative dim " + std::to_string(e.value),
                       "Expand takes the output shape; -1 is not allowed");
  const size_t r = std::max(in.rank(), target->size());
  Shape out{std::vector<Dim>(r)};
  for (size_t i = 0; i < r; ++i) {
    const bool has_a = i >= r - in.rank(), has_t = i >= r - target->size();
    const Dim a = has_a ? in.dims[i - (r - in.rank())] : Dim(1);
    const SymInt tt = has_t ? (*target)[i - (r - target->size())] : SymInt::of(1);
    auto d = expand_dim(a, tt);
    if (!d) {
      Shape ts;
      for (const auto& e : *target) ts.dims.push_back(e.to_dim());
      return ctx.error(ErrorCode::kShapeMismatch,
                       "cannot expand " + in.to_string() + " to " + ts.to_string(),
                       "each input dim must be 1 or equal to the target dim (numpy broadcasting)");
    }
    out.dims[i] = *d;
  }
  KILN_RETURN_IF_ERROR(check_output_size(ctx, out, t));
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

Status expand_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  HostTensor& out = ctx.output(0);
  const size_t r = out.rank();
  std::vector<int64_t> strides(r, 0);
  const auto in_strides = strides_of(in.dims());
  for (size_t i = 0; i < in.rank(); ++i) {
    const size_t o = r - in.rank() + i;
    strides[o] = in.dims()[i] == 1 ? 0 : in_strides[i];
  }
  strided_copy(in.raw(), 0, out.dims(), strides, out.raw(), dtype_size(in.dtype()));
  return Status::ok();
}

}  // namespace

KILN_REGISTER_OPS(shape_ops) {
  // max_opset: the newest ONNX versions of these ops (24, 25, 28) only add element types
  // that the importer rejects, so one entry serves them.
  reg.add({.op_type = "Shape", .min_opset = 1, .max_opset = 25, .min_inputs = 1, .max_inputs = 1,
           .infer = shape_infer, .cpu = shape_cpu,
           .summary = "int64 dims of the input (start/end from opset 15)"});
  reg.add({.op_type = "Size", .min_opset = 1, .max_opset = 25, .min_inputs = 1, .max_inputs = 1,
           .infer = size_infer, .cpu = size_cpu, .summary = "int64 element count of the input"});
  reg.add({.op_type = "Reshape", .min_opset = 5, .max_opset = 25, .min_inputs = 2,
           .max_inputs = 2, .infer = reshape_infer, .cpu = view_cpu,
           .summary = "view with a new shape (0 copies a dim, -1 infers one; allowzero from "
                      "opset 14)"});
  reg.add({.op_type = "Flatten", .min_opset = 1, .max_opset = 25, .min_inputs = 1,
           .max_inputs = 1, .infer = flatten_infer, .cpu = view_cpu,
           .summary = "view as 2-D split at axis"});
  reg.add({.op_type = "Squeeze", .min_opset = 1, .max_opset = 25, .min_inputs = 1,
           .max_inputs = 2, .infer = squeeze_infer, .cpu = view_cpu,
           .summary = "view without size-1 dims (axes input from opset 13)"});
  reg.add({.op_type = "Unsqueeze", .min_opset = 1, .max_opset = 25, .min_inputs = 1,
           .max_inputs = 2, .infer = unsqueeze_infer, .cpu = view_cpu,
           .summary = "view with size-1 dims inserted (axes input from opset 13)"});
  reg.add({.op_type = "Expand", .min_opset = 8, .max_opset = 23, .min_inputs = 2,
           .max_inputs = 2, .infer = expand_infer, .cpu = expand_cpu,
           .summary = "broadcast to a shape (numpy rules)"});
}

}  // namespace kiln::ops
