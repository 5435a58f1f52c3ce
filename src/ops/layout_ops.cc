// Data-movement ops (ONNX Operators.md: Transpose, Concat, Split, Slice, Tile,
// DepthToSpace, SpaceToDepth). Every kernel is dtype-agnostic: it moves elements of
// dtype_size bytes, mostly as one strided_copy of a view of the input.
#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>

#include "ops/slice.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

// ---- Transpose ------------------------------------------------------------------------

Result<std::vector<int64_t>> transpose_perm(const InferContext& ctx, size_t rank) {
  std::vector<int64_t> perm = ctx.node().attr_ints("perm");
  if (!ctx.node().has_attr("perm")) {
    for (size_t i = 0; i < rank; ++i) perm.push_back(static_cast<int64_t>(rank - 1 - i));
    return perm;
  }
  std::vector<bool> seen(rank, false);
  bool ok = perm.size() == rank;
  for (int64_t& p : perm) {
    if (!ok) break;
    auto a = normalize_axis(p, static_cast<int64_t>(rank));
    ok = a && !seen[*a];
    if (ok) seen[*a] = true, p = *a;
  }
  if (!ok) {
    std::string ps;
    for (int64_t p : ctx.node().attr_ints("perm")) {
      if (!ps.empty()) ps += ',';
      ps += std::to_string(p);
    }
    return ctx.error(
        ErrorCode::kOnnxBadAttribute,
        "perm [" + ps + "] is not a permutation of the " + std::to_string(rank) + " axes",
        "perm must list each axis of the input exactly once");
  }
  return perm;
}

Status transpose_infer(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known) {
    size_t n = ctx.node().attr_ints("perm").size();
    ctx.set_output(
        0, ctx.input_type(0),
        ctx.node().has_attr("perm") ? Shape(std::vector<Dim>(n)) : Shape::unknown_rank());
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(auto perm, transpose_perm(ctx, in.rank()));
  Shape out;
  for (int64_t p : perm) out.dims.push_back(in.dims[p]);
  ctx.set_output(0, ctx.input_type(0), std::move(out));
  return Status::ok();
}

Status transpose_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  HostTensor& out = ctx.output(0);
  std::vector<int64_t> perm = ctx.node().attr_ints("perm");
  if (perm.empty())
    for (size_t i = 0; i < in.rank(); ++i) perm.push_back(static_cast<int64_t>(in.rank() - 1 - i));
  const auto st = strides_of(in.dims());
  std::vector<int64_t> strides;
  for (int64_t p : perm) strides.push_back(st[p < 0 ? p + static_cast<int64_t>(in.rank()) : p]);
  strided_copy(in.raw(), 0, out.dims(), strides, out.raw(), dtype_size(in.dtype()));
  return Status::ok();
}

// ---- Concat ---------------------------------------------------------------------------

Status concat_infer(InferContext& ctx) {
  const DataType t = ctx.input_type(0);
  size_t rank = 0;
  bool rank_known = false;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (ctx.input_type(i) != t && ctx.input_type(i) != DataType::kUndefined &&
        t != DataType::kUndefined)
      return ctx.error(ErrorCode::kTypeMismatch,
                       std::string("Concat input ") + std::to_string(i) + " is " +
                           dtype_name(ctx.input_type(i)) + ", input 0 is " + dtype_name(t),
                       "all inputs must have the same type");
    const Shape& s = ctx.input_shape(i);
    if (!s.rank_known) continue;
    if (rank_known && s.rank() != rank)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "Concat inputs have different ranks: " + ctx.input_shape(0).to_string() +
                           " and " + s.to_string() + " (input " + std::to_string(i) + ")",
                       "all inputs must have the same rank");
    rank = s.rank();
    rank_known = true;
  }
  if (!rank_known) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(int64_t axis, checked_axis(ctx, ctx.node().attr_i("axis", 0), rank));
  Shape out{std::vector<Dim>(rank)};
  int64_t sum = 0;
  bool sum_known = true;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Shape& s = ctx.input_shape(i);
    if (!s.rank_known) {
      sum_known = false;
      continue;
    }
    for (size_t d = 0; d < rank; ++d) {
      const Dim& x = s.dims[d];
      if (static_cast<int64_t>(d) == axis) {
        if (x.is_known())
          sum += x.value;
        else
          sum_known = false;
        continue;
      }
      Dim& o = out.dims[d];
      if (known_to_differ(x, o)) {
        std::string shapes;
        for (size_t j = 0; j < ctx.num_inputs(); ++j)
          shapes += (j ? ", " : "") + ctx.input_shape(j).to_string();
        return ctx.error(
            ErrorCode::kShapeMismatch,
            "Concat on axis " + std::to_string(axis) + " needs equal dims elsewhere, got " + shapes,
            "all dims except the concat axis must match");
      }
      if (x.is_known() || (!o.is_known() && x.is_symbolic())) o = x;
    }
  }
  if (sum_known) {
    out.dims[axis] = Dim(sum);
  } else if (ctx.num_inputs() == 1) {
    out.dims[axis] = ctx.input_shape(0).dims[axis];
  }
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

Status concat_cpu(KernelContext& ctx) {
  HostTensor& out = ctx.output(0);
  const size_t r = out.rank();
  const int64_t axis = *normalize_axis(ctx.node().attr_i("axis", 0), static_cast<int64_t>(r));
  const size_t es = dtype_size(out.dtype());
  const int64_t outer = prod(out.dims(), 0, axis);
  const int64_t inner = prod(out.dims(), axis + 1, r) * static_cast<int64_t>(es);
  const int64_t out_row = out.dims()[axis] * inner;
  char* dst = static_cast<char*>(out.raw());
  int64_t pos = 0;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const HostTensor& in = ctx.input(i);
    const int64_t row = in.dims()[axis] * inner;
    const char* src = static_cast<const char*>(in.raw());
    for (int64_t o = 0; o < outer && row > 0; ++o)
      std::memcpy(dst + o * out_row + pos, src + o * row, row);
    pos += row;
  }
  return Status::ok();
}

// ---- Split ----------------------------------------------------------------------------

// Sizes of the parts along the axis: the `split` input (opset >= 13) or attribute, else
// equal parts; from opset 18 `num_outputs` may give uneven parts (ceil, last smaller).
Status split_infer(InferContext& ctx) {
  const DataType t = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "Split split"));
  const size_t n_out = ctx.num_outputs();
  const ir::Node& n = ctx.node();
  if (n.has_attr("num_outputs") && n.attr_i("num_outputs", 0) != static_cast<int64_t>(n_out))
    return ctx.error(ErrorCode::kOnnxBadAttribute,
                     "num_outputs is " + std::to_string(n.attr_i("num_outputs", 0)) +
                         " but the node has " + std::to_string(n_out) + " outputs",
                     "num_outputs must equal the number of outputs");
  if (!in.rank_known) {
    for (size_t i = 0; i < n_out; ++i) ctx.set_output(i, t, Shape::unknown_rank());
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(int64_t axis, checked_axis(ctx, n.attr_i("axis", 0), in.rank()));
  const Dim& dim = in.dims[axis];
  bool present = false;
  std::optional<std::vector<int64_t>> split;
  if (ctx.opset() >= 13) {
    present = ctx.has_input(1);
    if (present) split = known_input_ints(ctx, 1);
  } else {
    present = n.has_attr("split");
    if (present) split = n.attr_ints("split");
  }
  if (present && split) {
    int64_t sum = 0;
    for (int64_t s : *split) {
      if (s < 0)
        return ctx.error(ErrorCode::kShapeMismatch, "split has negative size " + std::to_string(s),
                         "split sizes must be >= 0");
      sum += s;
    }
    if (split->size() != n_out || (dim.is_known() && sum != dim.value))
      return ctx.error(
          ErrorCode::kShapeMismatch,
          "split sizes sum to " + std::to_string(sum) + " in " + std::to_string(split->size()) +
              " parts, but axis " + std::to_string(axis) + " of " + in.to_string() + " has size " +
              dim.to_string() + " and the node has " + std::to_string(n_out) + " outputs",
          "give one size per output, summing to the axis size");
  } else if (!present && dim.is_known()) {
    const int64_t d = dim.value, k = static_cast<int64_t>(n_out);
    const int64_t chunk = d % k == 0 ? d / k : d / k + 1;
    if (d - chunk * (k - 1) < 0)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "cannot split axis " + std::to_string(axis) + " of size " +
                           std::to_string(d) + " into " + std::to_string(k) + " parts",
                       "use fewer outputs or give explicit split sizes");
    split = std::vector<int64_t>(n_out, chunk);
    split->back() = d - chunk * (k - 1);
  }
  for (size_t i = 0; i < n_out; ++i) {
    Shape s = in;
    s.dims[axis] = split ? Dim((*split)[i]) : (n_out == 1 ? dim : Dim::unknown());
    ctx.set_output(i, t, std::move(s));
  }
  return Status::ok();
}

Status split_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  const size_t r = in.rank();
  const int64_t axis = *normalize_axis(ctx.node().attr_i("axis", 0), static_cast<int64_t>(r));
  const size_t es = dtype_size(in.dtype());
  const int64_t outer = prod(in.dims(), 0, axis);
  const int64_t inner = prod(in.dims(), axis + 1, r) * static_cast<int64_t>(es);
  const int64_t in_row = in.dims()[axis] * inner;
  const char* src = static_cast<const char*>(in.raw());
  int64_t pos = 0;
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    // Omitted outputs still occupy their part of the axis; their size comes from inference.
    HostTensor& out = ctx.output(i);
    const int64_t row = out.dims()[axis] * inner;
    if (ctx.has_output(i)) {
      char* dst = static_cast<char*>(out.raw());
      for (int64_t o = 0; o < outer && row > 0; ++o)
        std::memcpy(dst + o * row, src + o * in_row + pos, row);
    }
    pos += row;
  }
  return Status::ok();
}

// ---- Slice ----------------------------------------------------------------------------

struct SliceArgs {
  std::vector<int64_t> starts, ends, axes, steps;
};


// Reads the arguments (attributes before opset 10, inputs after) through `ints(i)`, which
// returns input i's values when known; validates what does not depend on the data shape.
template <typename IntsFn>
Result<std::optional<SliceArgs>> slice_args(
    const ir::Node& n, int64_t rank, IntsFn ints,
    const std::function<Status(ErrorCode, std::string, std::string)>& err) {
  SliceArgs a;
  if (n.opset < 10) {
    a.starts = n.attr_ints("starts");
    a.ends = n.attr_ints("ends");
    a.axes = n.attr_ints("axes");
  } else {
    auto s = ints(1), e = ints(2);
    std::optional<std::vector<int64_t>> ax, st;
    if (n.input(3)) ax = ints(3);
    if (n.input(4)) st = ints(4);
    if (!s || !e || (n.input(3) && !ax) || (n.input(4) && !st)) return std::optional<SliceArgs>();
    a.starts = *s;
    a.ends = *e;
    if (ax) a.axes = *ax;
    if (st) a.steps = *st;
  }
  if (a.axes.empty() && !(n.opset < 10 && n.has_attr("axes")))
    for (size_t i = 0; i < a.starts.size(); ++i) a.axes.push_back(static_cast<int64_t>(i));
  if (a.steps.empty()) a.steps.assign(a.starts.size(), 1);
  if (a.ends.size() != a.starts.size() || a.axes.size() != a.starts.size() ||
      a.steps.size() != a.starts.size())
    return err(ErrorCode::kShapeMismatch,
               "Slice starts, ends, axes and steps have different lengths (" +
                   std::to_string(a.starts.size()) + ", " + std::to_string(a.ends.size()) + ", " +
                   std::to_string(a.axes.size()) + ", " + std::to_string(a.steps.size()) + ")",
               "give one value per sliced axis in each");
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < a.axes.size(); ++i) {
    auto ax = normalize_axis(a.axes[i], rank);
    if (!ax || seen[*ax])
      return err(ErrorCode::kBadAxis,
                 "Slice axis " + std::to_string(a.axes[i]) +
                     (ax ? " is repeated" : " is out of range for rank " + std::to_string(rank)),
                 "axes must be distinct and in [-rank, rank-1]");
    seen[*ax] = true;
    a.axes[i] = *ax;
    if (a.steps[i] == 0)
      return err(ErrorCode::kInvalidArgument, "Slice step is 0", "steps must be non-zero");
  }
  return std::optional<SliceArgs>(std::move(a));
}

Status slice_infer(InferContext& ctx) {
  for (size_t i = 1; i < 5; ++i)
    KILN_RETURN_IF_ERROR(require_index_type(ctx, i, "Slice starts/ends/axes/steps"));
  const DataType t = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  auto err = [&](ErrorCode c, std::string m, std::string h) { return ctx.error(c, m, h); };
  KILN_ASSIGN_OR_RETURN(auto args, slice_args(
                                       ctx.node(), static_cast<int64_t>(in.rank()),
                                       [&](size_t i) { return known_input_ints(ctx, i); }, err));
  Shape out = in;
  if (!args) {
    // Sliced axes unknown: those of a known `axes` input lose their size, else all do.
    bool ax_present = false;
    auto axes = ctx.node().input(3) ? known_input_ints(ctx, 3) : std::nullopt;
    ax_present = ctx.node().input(3) != nullptr;
    for (size_t d = 0; d < in.rank(); ++d) {
      bool sliced = true;
      if (ax_present && axes) {
        sliced = false;
        for (int64_t a : *axes) sliced |= normalize_axis(a, in.rank()) == static_cast<int64_t>(d);
      }
      if (sliced) out.dims[d] = Dim::unknown();
    }
    ctx.set_output(0, t, std::move(out));
    return Status::ok();
  }
  for (size_t i = 0; i < args->axes.size(); ++i) {
    Dim& d = out.dims[args->axes[i]];
    const int64_t b = args->starts[i], e = args->ends[i], s = args->steps[i];
    if (d.is_known()) {
      d = Dim(slice_axis(d.value, b, e, s).count);
    } else if (!(b == 0 && s == 1 && e >= std::numeric_limits<int32_t>::max())) {
      d = Dim::unknown();  // a symbolic dim survives only a full forward slice
    }
  }
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

Status slice_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  HostTensor& out = ctx.output(0);
  auto err = [&](ErrorCode c, std::string m, std::string h) { return ctx.error(c, m, h); };
  auto ints = [&](size_t i) -> std::optional<std::vector<int64_t>> {
    return ctx.has_input(i) ? std::optional(ctx.input(i).to_i64_vector()) : std::nullopt;
  };
  KILN_ASSIGN_OR_RETURN(auto args,
                        slice_args(ctx.node(), static_cast<int64_t>(in.rank()), ints, err));
  const auto st = strides_of(in.dims());
  std::vector<int64_t> strides = st;
  int64_t offset = 0;
  for (size_t i = 0; args && i < args->axes.size(); ++i) {
    const int64_t a = args->axes[i];
    AxisSlice s = slice_axis(in.dims()[a], args->starts[i], args->ends[i], args->steps[i]);
    offset += s.start * st[a];
    if (s.count > 1) strides[a] = st[a] * s.step;  // count <= dim, so this cannot overflow
  }
  strided_copy(in.raw(), offset, out.dims(), strides, out.raw(), dtype_size(in.dtype()));
  return Status::ok();
}

// ---- Tile -----------------------------------------------------------------------------

Status tile_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "Tile repeats"));
  const DataType t = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  auto reps = sym_input(ctx, 1);
  if (!in.rank_known) {
    ctx.set_output(0, t, reps ? Shape(std::vector<Dim>(reps->size())) : Shape::unknown_rank());
    return Status::ok();
  }
  if (reps && reps->size() != in.rank())
    return ctx.error(ErrorCode::kShapeMismatch,
                     "Tile repeats has " + std::to_string(reps->size()) + " values for input " +
                         in.to_string() + " of rank " + std::to_string(in.rank()),
                     "give one repeat count per input dimension");
  Shape out = in;
  for (size_t d = 0; d < in.rank(); ++d) {
    const SymInt r = reps ? (*reps)[d] : SymInt::unknown();
    if (r.known && r.value < 0)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "Tile repeat " + std::to_string(r.value) + " is negative",
                       "repeats must be >= 0");
    if (r.known && r.value == 1) continue;
    int64_t n = 0;
    if (r.known && in.dims[d].is_known() && __builtin_mul_overflow(r.value, in.dims[d].value, &n))
      return ctx.error(ErrorCode::kOutOfMemory, "Tile output is too large", "check the repeats");
    out.dims[d] = r.known && in.dims[d].is_known() ? Dim(n)
                  : (r.known && r.value == 0)      ? Dim(0)
                                                   : Dim::unknown();
  }
  KILN_RETURN_IF_ERROR(check_output_size(ctx, out, t));
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

// The tiled tensor is a broadcast view of rank 2r: dims [rep0, d0, rep1, d1, ...] with
// stride 0 on every rep axis.
Status tile_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  HostTensor& out = ctx.output(0);
  const auto st = strides_of(in.dims());
  std::vector<int64_t> dims, strides;
  for (size_t d = 0; d < in.rank(); ++d) {
    dims.push_back(in.dims()[d] ? out.dims()[d] / in.dims()[d] : 0);
    strides.push_back(0);
    dims.push_back(in.dims()[d]);
    strides.push_back(st[d]);
  }
  strided_copy(in.raw(), 0, dims, strides, out.raw(), dtype_size(in.dtype()));
  return Status::ok();
}

// ---- DepthToSpace / SpaceToDepth ------------------------------------------------------

Result<int64_t> blocksize(const InferContext& ctx) {
  int64_t b = ctx.node().attr_i("blocksize", 0);
  if (b <= 0)
    return ctx.error(ErrorCode::kOnnxBadAttribute,
                     "blocksize must be a positive integer, got " + std::to_string(b),
                     "set the blocksize attribute");
  return b;
}

Status check_mode(const ir::Node& n) {
  std::string m = n.attr_s("mode", "DCR");
  if (m != "DCR" && m != "CRD")
    return Status(ErrorCode::kOnnxBadAttribute, "mode '" + m + "' is not supported",
                  "use DCR or CRD");
  return Status::ok();
}

Status depth_space_infer(InferContext& ctx) {
  const DataType t = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  KILN_ASSIGN_OR_RETURN(int64_t b, blocksize(ctx));
  if (!in.rank_known) {
    ctx.set_output(0, t, Shape(std::vector<Dim>(4)));
    return Status::ok();
  }
  if (in.rank() != 4)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "input must be 4-D [N,C,H,W], got " + in.to_string(),
                     "reshape the input to NCHW");
  const bool to_space = ctx.node().op_type == "DepthToSpace";
  Shape out = in;
  auto scale = [&](size_t d, bool multiply, int64_t f) {
    const Dim& x = in.dims[d];
    if (!x.is_known()) {
      out.dims[d] = Dim::unknown();
      return Status::ok();
    }
    if (!multiply && x.value % f != 0)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "dimension " + std::to_string(d) + " of " + in.to_string() +
                           " is not divisible by " + std::to_string(f) + " (blocksize " +
                           std::to_string(b) + ")",
                       "pick a blocksize that divides the dimension");
    out.dims[d] = Dim(multiply ? x.value * f : x.value / f);
    return Status::ok();
  };
  KILN_RETURN_IF_ERROR(scale(1, !to_space, b * b));
  KILN_RETURN_IF_ERROR(scale(2, to_space, b));
  KILN_RETURN_IF_ERROR(scale(3, to_space, b));
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

// Both are a transpose of a 6-D view (the ONNX spec's reshape → transpose → reshape),
// written here as output dims with the matching input strides.
Status depth_space_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  HostTensor& out = ctx.output(0);
  const int64_t b = ctx.node().attr_i("blocksize", 1);
  const bool crd = ctx.node().attr_s("mode", "DCR") == "CRD";
  const auto& d = in.dims();
  const int64_t N = d[0], C = d[1], H = d[2], W = d[3];
  std::vector<int64_t> dims, strides;
  if (ctx.node().op_type == "DepthToSpace") {
    // out[n][c][h*b+i][w*b+j] = in[n][DCR: (i*b+j)*C' + c | CRD: c*b*b + i*b + j][h][w]
    const int64_t Co = C / (b * b), HW = H * W;
    dims = {N, Co, H, b, W, b};
    strides = {C * HW, (crd ? b * b : 1) * HW, W, (crd ? b : b * Co) * HW, 1, (crd ? 1 : Co) * HW};
  } else {
    // out[n][DCR: (i*b+j)*C + c | CRD: c*b*b + i*b + j][h][w] = in[n][c][h*b+i][w*b+j]
    const int64_t Ho = H / b, Wo = W / b;
    if (crd) {
      dims = {N, C, b, b, Ho, Wo};
      strides = {C * H * W, H * W, W, 1, b * W, b};
    } else {
      dims = {N, b, b, C, Ho, Wo};
      strides = {C * H * W, W, 1, H * W, b * W, b};
    }
  }
  strided_copy(in.raw(), 0, dims, strides, out.raw(), dtype_size(in.dtype()));
  return Status::ok();
}

}  // namespace

AxisSlice slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step) {
  AxisSlice s;
  s.step = step;
  if (dim == 0) return s;       // empty axis (and keeps the clamps below well-formed)
  if (start < 0) start += dim;  // no overflow: dim >= 0
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    s.count = end > start ? (end - start - 1) / step + 1 : 0;
  } else {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    const int64_t back =
        step == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -step;
    s.count = start > end ? (start - end - 1) / back + 1 : 0;
  }
  s.start = s.count ? start : 0;
  return s;
}

KILN_REGISTER_OPS(layout_ops) {
  // max_opset: Transpose-24/25 and DepthToSpace-28 only add element types; SpaceToDepth-28
  // adds `mode`, handled above.
  reg.add({.op_type = "Transpose", .min_opset = 1, .max_opset = 25, .min_inputs = 1,
           .max_inputs = 1, .infer = transpose_infer, .cpu = transpose_cpu,
           .summary = "permute axes (default: reverse)"});
  reg.add({.op_type = "Concat", .min_opset = 4, .max_opset = 23, .min_inputs = 1,
           .max_inputs = -1, .infer = concat_infer, .cpu = concat_cpu,
           .summary = "join tensors along an axis"});
  reg.add({.op_type = "Split", .min_opset = 2, .max_opset = 23, .min_inputs = 1, .max_inputs = 2,
           .max_outputs = -1, .infer = split_infer, .cpu = split_cpu,
           .summary = "split along an axis (split input from 13, uneven num_outputs from 18)"});
  reg.add({.op_type = "Slice", .min_opset = 1, .max_opset = 23, .min_inputs = 1, .max_inputs = 5,
           .infer = slice_infer, .cpu = slice_cpu,
           .summary = "strided sub-tensor (inputs from opset 10; negative and clamped bounds)"});
  reg.add({.op_type = "Tile", .min_opset = 6, .max_opset = 23, .min_inputs = 2, .max_inputs = 2,
           .infer = tile_infer, .cpu = tile_cpu, .summary = "repeat the tensor along each axis"});
  reg.add({.op_type = "DepthToSpace", .min_opset = 1, .max_opset = 28, .min_inputs = 1,
           .max_inputs = 1, .infer = depth_space_infer, .cpu = depth_space_cpu,
           .check = check_mode, .summary = "move channel blocks to spatial blocks (DCR/CRD)"});
  reg.add({.op_type = "SpaceToDepth", .min_opset = 1, .max_opset = 28, .min_inputs = 1,
           .max_inputs = 1, .infer = depth_space_infer, .cpu = depth_space_cpu,
           .check = check_mode, .summary = "move spatial blocks to channels"});
}

}  // namespace kiln::ops
