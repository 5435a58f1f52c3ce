// Control flow (ONNX Operators.md): If, Loop, Scan (opset 8 batched form and opset 9+).
//
// Bodies run through KernelContext::run_subgraph (the executor binds captures). Body
// shapes are inferred with infer_graph at build time only: at run time every input is
// known and the body was already annotated, so graphs shared by execution contexts are
// never mutated while they run. Output shapes that depend on the data (If branches of
// different shapes, trip counts) are reported unknown at build time and come out of the
// kernel at run time.
#include <algorithm>
#include <cstring>
#include <limits>

#include "ops/helpers.h"

namespace kiln::ops {
namespace {

ir::Graph* body_attr(const ir::Node& n, const char* name) {
  const ir::Attribute* a = n.attr(name);
  return a && a->kind == ir::Attribute::Kind::kGraph ? a->g.get() : nullptr;
}

Status missing_body(const ir::Node& n, const char* name) {
  return Status(ErrorCode::kOnnxBadAttribute,
                std::string("graph attribute '") + name + "' is missing",
                "the node does not follow the ONNX spec; re-export the model", n.loc());
}

/// Combines the shapes of two values that may hold either tensor: equal dims stay, others
/// become unknown; different ranks give an unknown rank.
Shape merge_shapes(const Shape& a, const Shape& b) {
  if (!a.rank_known || !b.rank_known || a.rank() != b.rank()) return Shape::unknown_rank();
  Shape s = a;
  for (size_t d = 0; d < a.rank(); ++d)
    if (!a.dims[d].same_as(b.dims[d])) s.dims[d] = Dim::unknown();
  return s;
}

bool all_inputs_known(const InferContext& ctx) {
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i) && !ctx.input_value(i)) return false;
  return true;
}

bool has_untyped_values(const ir::Graph& g) {
  for (const auto& n : g.nodes())
    for (const auto* v : n->outputs)
      if (v && v->dtype == DataType::kUndefined) return true;
  return false;
}

/// Annotates a body at build time: binds its inputs' types (shapes where the caller
/// knows them) and runs shape inference over it. Skipped at run time (see file comment).
Status infer_body(const InferContext& ctx, ir::Graph& g,
                  const std::vector<std::pair<DataType, Shape>>& in) {
  if (all_inputs_known(ctx) && !has_untyped_values(g)) return Status::ok();
  for (size_t i = 0; i < g.inputs.size() && i < in.size(); ++i) {
    ir::Value* v = g.inputs[i];
    if (in[i].first != DataType::kUndefined) v->dtype = in[i].first;
    if (!v->shape.rank_known || (in[i].second.rank_known && v->shape.rank() != in[i].second.rank()))
      v->shape = in[i].second;
  }
  return infer_graph(g);
}

int64_t element_bytes(const HostTensor& t) { return static_cast<int64_t>(dtype_size(t.dtype())); }

/// Stacks equally shaped tensors along a new axis `axis` (reversed when `reverse`).
/// `empty_elem` gives dtype and element shape when there are no slices.
Result<HostTensor> stack(const std::vector<HostTensor>& slices, int64_t axis, bool reverse,
                         DataType empty_dtype, const Shape& empty_elem, const ir::Node& n) {
  if (slices.empty()) {
    std::vector<int64_t> dims = empty_elem.concrete().value_or(std::vector<int64_t>{});
    const int64_t a = std::clamp<int64_t>(axis, 0, static_cast<int64_t>(dims.size()));
    dims.insert(dims.begin() + a, 0);
    return HostTensor(empty_dtype == DataType::kUndefined ? DataType::kF32 : empty_dtype, dims);
  }
  const HostTensor& first = slices.front();
  for (const auto& s : slices)
    if (s.dims() != first.dims() || s.dtype() != first.dtype())
      return Status(ErrorCode::kShapeMismatch,
                    "scan output changes shape across iterations: " + dims_to_string(first.dims()) +
                        " then " + dims_to_string(s.dims()),
                    "every iteration must produce the same shape for a scan output", n.loc());
  const int64_t rank = static_cast<int64_t>(first.rank());
  auto na = normalize_axis(axis, rank + 1);
  if (!na)
    return Status(ErrorCode::kBadAxis,
                  "scan output axis " + std::to_string(axis) + " is out of range for rank " +
                      std::to_string(rank + 1),
                  "", n.loc());
  std::vector<int64_t> dims = first.dims();
  const int64_t t_len = static_cast<int64_t>(slices.size());
  dims.insert(dims.begin() + *na, t_len);
  HostTensor out(first.dtype(), dims);
  int64_t outer = 1, inner = element_bytes(first);
  for (int64_t d = 0; d < *na; ++d) outer *= first.dims()[d];
  for (int64_t d = *na; d < rank; ++d) inner *= first.dims()[d];
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t t = 0; t < t_len; ++t) {
    const int64_t pos = reverse ? t_len - 1 - t : t;
    const auto* src = static_cast<const uint8_t*>(slices[t].raw());
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + (o * t_len + pos) * inner, src + o * inner, inner);
  }
  return out;
}

/// Slice `index` of t along `axis`, with that axis removed (a copy).
HostTensor slice_along(const HostTensor& t, int64_t axis, int64_t index) {
  std::vector<int64_t> dims = t.dims();
  const int64_t len = dims[axis];
  dims.erase(dims.begin() + axis);
  HostTensor out(t.dtype(), dims);
  int64_t outer = 1, inner = element_bytes(t);
  for (int64_t d = 0; d < axis; ++d) outer *= t.dims()[d];
  for (size_t d = axis + 1; d < t.rank(); ++d) inner *= t.dims()[d];
  const auto* src = static_cast<const uint8_t*>(t.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + o * inner, src + (o * len + index) * inner, inner);
  return out;
}

Result<bool> scalar_condition(const HostTensor& t, const ir::Node& n, const char* what) {
  if (t.numel() != 1)
    return Status(
        ErrorCode::kShapeMismatch,
        std::string(what) + " must hold one element, got shape " + dims_to_string(t.dims()),
        "pass a scalar (or 1-element) bool tensor", n.loc());
  return t.get_i64(0) != 0;
}

// ---- If ----------------------------------------------------------------------------------

Status if_check(const ir::Node& n) {
  for (const char* name : {"then_branch", "else_branch"}) {
    const ir::Graph* g = body_attr(n, name);
    if (!g) return missing_body(n, name);
    if (g->outputs.size() != n.outputs.size())
      return Status(ErrorCode::kOnnxBadInputs,
                    std::string(name) + " has " + std::to_string(g->outputs.size()) +
                        " outputs, the node has " + std::to_string(n.outputs.size()),
                    "both branches must produce one value per If output", n.loc());
  }
  return Status::ok();
}

Status if_infer(InferContext& ctx) {
  const ir::Node& n = ctx.node();
  ir::Graph* then_g = body_attr(n, "then_branch");
  ir::Graph* else_g = body_attr(n, "else_branch");
  const HostTensor* cond = ctx.input_value(0);
  if (cond && cond->numel() == 1) {
    // Only the branch that runs matters: the other may be invalid for these shapes (exported
    // models guard shape-specific code this way).
    ir::Graph* taken = cond->get_i64(0) != 0 ? then_g : else_g;
    KILN_RETURN_IF_ERROR(infer_body(ctx, *taken, {}));
    for (size_t i = 0; i < ctx.num_outputs() && i < taken->outputs.size(); ++i)
      ctx.set_output(i, taken->outputs[i]->dtype, taken->outputs[i]->shape);
    return Status::ok();
  }
  // Condition unknown until run time: a branch that fails inference now cannot be ruled
  // out yet (run-time inference sees the condition), so use what the other branch says.
  Status then_st = infer_body(ctx, *then_g, {});
  Status else_st = infer_body(ctx, *else_g, {});
  if (!then_st.is_ok() && !else_st.is_ok()) return then_st;
  if (!then_st.is_ok()) then_g = else_g;
  if (!else_st.is_ok()) else_g = then_g;
  for (size_t i = 0; i < ctx.num_outputs() && i < then_g->outputs.size(); ++i) {
    const ir::Value* a = then_g->outputs[i];
    const ir::Value* b = else_g->outputs[i];
    ctx.set_output(i, a->dtype != DataType::kUndefined ? a->dtype : b->dtype,
                   merge_shapes(a->shape, b->shape));
  }
  return Status::ok();
}

Status if_cpu(KernelContext& ctx) {
  const ir::Node& n = ctx.node();
  KILN_ASSIGN_OR_RETURN(bool c, scalar_condition(ctx.input(0), n, "If condition"));
  const ir::Graph* g = body_attr(n, c ? "then_branch" : "else_branch");
  KILN_ASSIGN_OR_RETURN(std::vector<HostTensor> outs, ctx.run_subgraph(*g, {}));
  for (size_t i = 0; i < ctx.num_outputs() && i < outs.size(); ++i)
    ctx.set_output(i, std::move(outs[i]));
  return Status::ok();
}

// ---- Loop --------------------------------------------------------------------------------

/// Loop inputs: M, cond, v_initial[N]; body: (iter, cond, v[N]) → (cond, v[N], scan[K]).
/// M and cond may both be omitted, so the node can have fewer than 2 inputs.
size_t loop_carried(const ir::Node& n) { return n.inputs.size() > 2 ? n.inputs.size() - 2 : 0; }

Status loop_check(const ir::Node& n) {
  const ir::Graph* g = body_attr(n, "body");
  if (!g) return missing_body(n, "body");
  const size_t num_carried = loop_carried(n);
  if (g->inputs.size() != 2 + num_carried || n.outputs.size() < num_carried ||
      g->outputs.size() != 1 + n.outputs.size())
    return Status(ErrorCode::kOnnxBadInputs,
                  "Loop body has " + std::to_string(g->inputs.size()) + " inputs and " +
                      std::to_string(g->outputs.size()) + " outputs for " +
                      std::to_string(num_carried) + " loop-carried values and " +
                      std::to_string(n.outputs.size()) + " node outputs",
                  "the body takes (iteration, cond, carried...) and returns (cond, carried..., "
                  "scan outputs...)",
                  n.loc());
  return Status::ok();
}

Status loop_infer(InferContext& ctx) {
  const ir::Node& n = ctx.node();
  ir::Graph* body = body_attr(n, "body");
  const size_t num_carried = loop_carried(n);
  std::vector<std::pair<DataType, Shape>> in{{DataType::kI64, Shape()}, {DataType::kBool, Shape()}};
  for (size_t i = 0; i < num_carried; ++i) {
    // Carried values may change their dims between iterations: keep only the rank.
    Shape s = ctx.input_shape(2 + i);
    for (auto& d : s.dims) d = Dim::unknown();
    in.emplace_back(ctx.input_type(2 + i), s);
  }
  KILN_RETURN_IF_ERROR(infer_body(ctx, *body, in));
  for (size_t i = 0; i < num_carried; ++i)
    ctx.set_output(i, ctx.input_type(2 + i),
                   merge_shapes(ctx.input_shape(2 + i), body->outputs[1 + i]->shape));
  for (size_t k = num_carried; k < ctx.num_outputs(); ++k) {
    const ir::Value* v = body->outputs[1 + k];
    Shape s = v->shape;
    if (s.rank_known) s.dims.insert(s.dims.begin(), Dim::unknown());
    ctx.set_output(k, v->dtype, s);
  }
  return Status::ok();
}

Status loop_cpu(KernelContext& ctx) {
  const ir::Node& n = ctx.node();
  const ir::Graph* body = body_attr(n, "body");
  const size_t num_carried = loop_carried(n);
  const size_t num_scan = ctx.num_outputs() - num_carried;
  int64_t max_trips = std::numeric_limits<int64_t>::max();
  if (ctx.has_input(0)) {
    if (ctx.input(0).numel() != 1)
      return ctx.error(ErrorCode::kShapeMismatch, "Loop trip count M must hold one element",
                       "pass a scalar int64 trip count");
    max_trips = ctx.input(0).get_i64(0);
  }
  bool cond = true;
  if (ctx.has_input(1)) {
    KILN_ASSIGN_OR_RETURN(cond, scalar_condition(ctx.input(1), n, "Loop condition"));
  }
  std::vector<HostTensor> carried;
  for (size_t i = 0; i < num_carried; ++i) carried.push_back(ctx.input(2 + i));
  std::vector<std::vector<HostTensor>> scans(num_scan);
  std::vector<HostTensor> body_in;
  for (int64_t it = 0; it < max_trips && cond; ++it) {
    body_in.clear();
    body_in.push_back(HostTensor::from_vector<int64_t>(DataType::kI64, {}, {it}));
    body_in.push_back(HostTensor::from_vector<uint8_t>(DataType::kBool, {}, {1}));
    for (auto& c : carried) body_in.push_back(c);
    KILN_ASSIGN_OR_RETURN(std::vector<HostTensor> out, ctx.run_subgraph(*body, body_in));
    if (out.size() != 1 + num_carried + num_scan)
      return ctx.error(ErrorCode::kKernelFailed,
                       "Loop body returned " + std::to_string(out.size()) + " values", "");
    KILN_ASSIGN_OR_RETURN(cond, scalar_condition(out[0], n, "Loop body condition output"));
    for (size_t i = 0; i < num_carried; ++i) {
      if (out[1 + i].dtype() != carried[i].dtype())
        return ctx.error(ErrorCode::kTypeMismatch,
                         "Loop-carried value " + std::to_string(i) + " changed type from " +
                             dtype_name(carried[i].dtype()) + " to " +
                             dtype_name(out[1 + i].dtype()),
                         "");
      carried[i] = std::move(out[1 + i]);
    }
    for (size_t k = 0; k < num_scan; ++k) scans[k].push_back(std::move(out[1 + num_carried + k]));
  }
  for (size_t i = 0; i < num_carried; ++i) ctx.set_output(i, std::move(carried[i]));
  for (size_t k = 0; k < num_scan; ++k) {
    const ir::Value* bv = body->outputs[1 + num_carried + k];
    const ir::Value* nv = n.outputs[num_carried + k];
    KILN_ASSIGN_OR_RETURN(HostTensor t,
                          stack(scans[k], 0, false, nv ? nv->dtype : bv->dtype, bv->shape, n));
    ctx.set_output(num_carried + k, std::move(t));
  }
  return Status::ok();
}

// ---- Scan --------------------------------------------------------------------------------

/// Scan attributes resolved against a node (opset 9+ layout; opset 8 uses axis 0 of each
/// per-batch slice).
struct ScanSpec {
  int64_t num_scan_inputs = 0;
  size_t num_states = 0, num_scan_outputs = 0;
  size_t first_state = 0;  ///< input index of the first state (1 at opset 8: sequence_lens)
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

Result<ScanSpec> scan_spec(const ir::Node& n) {
  ScanSpec s;
  if (!n.has_attr("num_scan_inputs"))
    return Status(ErrorCode::kOnnxBadAttribute, "attribute 'num_scan_inputs' is missing", "",
                  n.loc());
  s.num_scan_inputs = n.attr_i("num_scan_inputs", 0);
  s.first_state = n.opset < 9 ? 1 : 0;
  const int64_t total = static_cast<int64_t>(n.inputs.size()) - static_cast<int64_t>(s.first_state);
  if (s.num_scan_inputs < 1 || s.num_scan_inputs > total)
    return Status(ErrorCode::kOnnxBadAttribute,
                  "num_scan_inputs " + std::to_string(s.num_scan_inputs) + " does not fit " +
                      std::to_string(total) + " inputs",
                  "", n.loc());
  s.num_states = static_cast<size_t>(total - s.num_scan_inputs);
  if (n.outputs.size() < s.num_states)
    return Status(ErrorCode::kOnnxBadInputs, "Scan has fewer outputs than states", "", n.loc());
  s.num_scan_outputs = n.outputs.size() - s.num_states;
  const size_t m = static_cast<size_t>(s.num_scan_inputs), k = s.num_scan_outputs;
  auto list = [&](const char* name, size_t len) -> Result<std::vector<int64_t>> {
    std::vector<int64_t> v = n.attr_ints(name, std::vector<int64_t>(len, 0));
    if (v.size() != len)
      return Status(ErrorCode::kOnnxBadAttribute,
                    std::string(name) + " has " + std::to_string(v.size()) + " entries, expected " +
                        std::to_string(len),
                    "", n.loc());
    return v;
  };
  if (n.opset < 9) {
    KILN_ASSIGN_OR_RETURN(s.in_dirs, list("directions", m));
    s.in_axes.assign(m, 0);
    s.out_axes.assign(k, 0);
    s.out_dirs.assign(k, 0);
  } else {
    KILN_ASSIGN_OR_RETURN(s.in_axes, list("scan_input_axes", m));
    KILN_ASSIGN_OR_RETURN(s.in_dirs, list("scan_input_directions", m));
    KILN_ASSIGN_OR_RETURN(s.out_axes, list("scan_output_axes", k));
    KILN_ASSIGN_OR_RETURN(s.out_dirs, list("scan_output_directions", k));
  }
  return s;
}

Status scan_check(const ir::Node& n) {
  const ir::Graph* g = body_attr(n, "body");
  if (!g) return missing_body(n, "body");
  KILN_ASSIGN_OR_RETURN(ScanSpec s, scan_spec(n));
  if (g->inputs.size() != s.num_states + static_cast<size_t>(s.num_scan_inputs) ||
      g->outputs.size() != s.num_states + s.num_scan_outputs)
    return Status(
        ErrorCode::kOnnxBadInputs,
        "Scan body has " + std::to_string(g->inputs.size()) + " inputs and " +
            std::to_string(g->outputs.size()) + " outputs for " + std::to_string(s.num_states) +
            " states, " + std::to_string(s.num_scan_inputs) + " scan inputs and " +
            std::to_string(s.num_scan_outputs) + " scan outputs",
        "the body takes (states..., scan slices...) and returns (states..., scan outputs...)",
        n.loc());
  return Status::ok();
}

Status scan_infer(InferContext& ctx) {
  const ir::Node& n = ctx.node();
  ir::Graph* body = body_attr(n, "body");
  KILN_ASSIGN_OR_RETURN(ScanSpec s, scan_spec(n));
  const bool batched = n.opset < 9;
  // Body input shapes: states as given (without the batch axis at opset 8), scan inputs
  // without their scan axis.
  auto drop = [](Shape sh, int64_t axis) {
    if (!sh.rank_known) return sh;
    auto a = normalize_axis(axis, static_cast<int64_t>(sh.rank()));
    if (a) sh.dims.erase(sh.dims.begin() + *a);
    return sh;
  };
  std::vector<std::pair<DataType, Shape>> in;
  for (size_t i = 0; i < s.num_states; ++i) {
    const Shape& sh = ctx.input_shape(s.first_state + i);
    in.emplace_back(ctx.input_type(s.first_state + i), batched ? drop(sh, 0) : sh);
  }
  Dim seq_len = Dim::unknown();
  for (int64_t j = 0; j < s.num_scan_inputs; ++j) {
    Shape sh = ctx.input_shape(s.first_state + s.num_states + j);
    if (batched) sh = drop(sh, 0);
    if (sh.rank_known) {
      auto a = normalize_axis(s.in_axes[j], static_cast<int64_t>(sh.rank()));
      if (!a)
        return ctx.error(ErrorCode::kBadAxis, "scan input axis " + std::to_string(s.in_axes[j]) +
                                                  " is out of range for rank " +
                                                  std::to_string(sh.rank()));
      if (j == 0) seq_len = sh.dims[*a];
    }
    in.emplace_back(ctx.input_type(s.first_state + s.num_states + j), drop(sh, s.in_axes[j]));
  }
  KILN_RETURN_IF_ERROR(infer_body(ctx, *body, in));
  for (size_t i = 0; i < s.num_states; ++i)
    ctx.set_output(i, ctx.input_type(s.first_state + i),
                   merge_shapes(ctx.input_shape(s.first_state + i),
                                batched ? Shape::unknown_rank() : body->outputs[i]->shape));
  for (size_t k = 0; k < s.num_scan_outputs; ++k) {
    const ir::Value* v = body->outputs[s.num_states + k];
    Shape sh = v->shape;
    if (sh.rank_known) {
      auto a = normalize_axis(s.out_axes[k], static_cast<int64_t>(sh.rank()) + 1);
      if (!a)
        sh = Shape::unknown_rank();
      else
        sh.dims.insert(sh.dims.begin() + *a, seq_len);
      if (batched && sh.rank_known) sh.dims.insert(sh.dims.begin(), Dim::unknown());
    }
    ctx.set_output(s.num_states + k, v->dtype, sh);
  }
  return Status::ok();
}

/// One unbatched scan (opset 9 semantics) over `states` and `scan_in`.
Result<std::vector<HostTensor>> run_scan(const KernelContext& ctx, const ir::Graph& body,
                                         const ScanSpec& s, std::vector<HostTensor> states,
                                         const std::vector<HostTensor>& scan_in) {
  const ir::Node& n = ctx.node();
  int64_t seq_len = -1;
  std::vector<int64_t> axes;
  for (size_t j = 0; j < scan_in.size(); ++j) {
    auto a = normalize_axis(s.in_axes[j], static_cast<int64_t>(scan_in[j].rank()));
    if (!a)
      return ctx.error(ErrorCode::kBadAxis, "scan input axis " + std::to_string(s.in_axes[j]) +
                                                " is out of range for shape " +
                                                dims_to_string(scan_in[j].dims()));
    const int64_t len = scan_in[j].dims()[*a];
    if (seq_len >= 0 && len != seq_len)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "scan inputs have different sequence lengths " + std::to_string(seq_len) +
                           " and " + std::to_string(len),
                       "all scan inputs must have the same length along their scan axis");
    seq_len = len;
    axes.push_back(*a);
  }
  std::vector<std::vector<HostTensor>> outs(s.num_scan_outputs);
  std::vector<HostTensor> body_in;
  for (int64_t t = 0; t < seq_len; ++t) {
    body_in = states;
    for (size_t j = 0; j < scan_in.size(); ++j)
      body_in.push_back(slice_along(scan_in[j], axes[j], s.in_dirs[j] ? seq_len - 1 - t : t));
    KILN_ASSIGN_OR_RETURN(std::vector<HostTensor> r, ctx.run_subgraph(body, body_in));
    if (r.size() != s.num_states + s.num_scan_outputs)
      return ctx.error(ErrorCode::kKernelFailed,
                       "Scan body returned " + std::to_string(r.size()) + " values", "");
    for (size_t i = 0; i < s.num_states; ++i) states[i] = std::move(r[i]);
    for (size_t k = 0; k < s.num_scan_outputs; ++k)
      outs[k].push_back(std::move(r[s.num_states + k]));
  }
  std::vector<HostTensor> result = std::move(states);
  for (size_t k = 0; k < s.num_scan_outputs; ++k) {
    const ir::Value* bv = body.outputs[s.num_states + k];
    KILN_ASSIGN_OR_RETURN(
        HostTensor t, stack(outs[k], s.out_axes[k], s.out_dirs[k] != 0, bv->dtype, bv->shape, n));
    result.push_back(std::move(t));
  }
  return result;
}

Status scan_cpu(KernelContext& ctx) {
  const ir::Node& n = ctx.node();
  const ir::Graph* body = body_attr(n, "body");
  KILN_ASSIGN_OR_RETURN(ScanSpec s, scan_spec(n));
  std::vector<HostTensor> states, scan_in;
  for (size_t i = 0; i < s.num_states; ++i) states.push_back(ctx.input(s.first_state + i));
  for (int64_t j = 0; j < s.num_scan_inputs; ++j)
    scan_in.push_back(ctx.input(s.first_state + s.num_states + j));
  if (n.opset >= 9) {
    KILN_ASSIGN_OR_RETURN(std::vector<HostTensor> r, run_scan(ctx, *body, s, states, scan_in));
    for (size_t i = 0; i < r.size(); ++i) ctx.set_output(i, std::move(r[i]));
    return Status::ok();
  }
  // Opset 8: axis 0 of every input is a batch; each batch entry is an independent scan.
  int64_t batch = -1;
  for (const auto* group : {&states, &scan_in})
    for (const auto& t : *group) {
      if (t.rank() == 0 || (batch >= 0 && t.dims()[0] != batch))
        return ctx.error(
            ErrorCode::kShapeMismatch,
            "Scan-8 inputs must share the batch axis 0, got " + dims_to_string(t.dims()), "");
      batch = t.dims()[0];
    }
  if (ctx.has_input(0)) {
    const HostTensor& lens = ctx.input(0);
    for (int64_t b = 0; b < lens.numel(); ++b)
      if (scan_in.empty() || scan_in[0].rank() < 2 || lens.get_i64(b) != scan_in[0].dims()[1])
        return ctx.error(ErrorCode::kOnnxUnsupportedOp,
                         "Scan-8 with sequence_lens shorter than the scan axis is not supported",
                         "pad the sequences to one length, or export Scan at opset 9+");
  }
  std::vector<std::vector<HostTensor>> per_batch(s.num_states + s.num_scan_outputs);
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<HostTensor> st, sc;
    for (const auto& t : states) st.push_back(slice_along(t, 0, b));
    for (const auto& t : scan_in) sc.push_back(slice_along(t, 0, b));
    KILN_ASSIGN_OR_RETURN(std::vector<HostTensor> r, run_scan(ctx, *body, s, std::move(st), sc));
    for (size_t i = 0; i < r.size(); ++i) per_batch[i].push_back(std::move(r[i]));
  }
  for (size_t i = 0; i < per_batch.size(); ++i) {
    const ir::Value* bv = body->outputs[i];
    KILN_ASSIGN_OR_RETURN(HostTensor t, stack(per_batch[i], 0, false, bv->dtype, bv->shape, n));
    ctx.set_output(i, std::move(t));
  }
  return Status::ok();
}

}  // namespace

KILN_REGISTER_OPS(control_flow) {
  // Later versions add element types; Scan-9 dropped the batch axis (scan_spec handles it).
  reg.add({.op_type = "If", .min_opset = 1, .max_opset = 25, .min_inputs = 1, .max_inputs = 1,
           .max_outputs = -1, .infer = if_infer, .cpu = if_cpu, .check = if_check,
           .summary = "runs then_branch or else_branch on a bool condition"});
  reg.add({.op_type = "Loop", .min_opset = 1, .max_opset = 25, .min_inputs = 0, .max_inputs = -1,
           .min_outputs = 0, .max_outputs = -1, .infer = loop_infer, .cpu = loop_cpu,
           .check = loop_check,
           .summary = "repeats a body up to M times while cond holds; carried values and stacked "
                      "scan outputs"});
  reg.add({.op_type = "Scan", .min_opset = 8, .max_opset = 25, .min_inputs = 1, .max_inputs = -1,
           .min_outputs = 0, .max_outputs = -1, .infer = scan_infer, .cpu = scan_cpu,
           .check = scan_check,
           .summary = "runs a body over slices of scan inputs along an axis, carrying state"});
}

}  // namespace kiln::ops
