#include "ops/registry.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace kiln {

const Shape& InferContext::input_shape(size_t i) const {
  static const Shape kUnknown = Shape::unknown_rank();
  return i < in_shapes_.size() ? in_shapes_[i] : kUnknown;
}

HostTensor& KernelContext::output(size_t i) {
  HostTensor& t = (*outputs_)[i];
  if (!t.defined() && inferred_) {
    auto dims = inferred_->output_shape(i).concrete();
    DataType dt = inferred_->output_type(i);
    if (dims && dt != DataType::kUndefined) t = HostTensor(dt, *dims);
  }
  return t;
}

Result<std::vector<int64_t>> KernelContext::inferred_dims(size_t i) const {
  const Shape& s = inferred_ ? inferred_->output_shape(i) : Shape::unknown_rank();
  if (auto dims = s.concrete()) return *dims;
  return error(ErrorCode::kInternal, "output " + std::to_string(i) +
                                         " shape is not concrete with concrete inputs: " + s.to_string());
}

HostTensor& KernelContext::allocate_output(size_t i, DataType dtype, std::vector<int64_t> dims) {
  (*outputs_)[i] = HostTensor(dtype, std::move(dims));
  return (*outputs_)[i];
}

OpRegistry& OpRegistry::instance() {
  static OpRegistry r;
  return r;
}

OpRegistry::Registrar::Registrar(const char* family, void (*fn)(OpRegistry&)) {
  auto& r = instance();
  r.current_family_ = family;
  fn(r);
  r.current_family_.clear();
}

void OpRegistry::add(OpSchema s) {
  s.family = current_family_;
  auto key = std::make_pair(s.domain, s.op_type);
  auto [lo, hi] = entries_.equal_range(key);
  for (auto it = lo; it != hi; ++it) {
    if (it->second->min_opset <= s.max_opset && s.min_opset <= it->second->max_opset) {
      std::fprintf(stderr, "kiln: op table bug: %s registered twice for overlapping opsets\n",
                   s.op_type.c_str());
      std::abort();
    }
  }
  entries_.emplace(key, std::make_unique<OpSchema>(std::move(s)));
}

namespace {
struct OpVersions {
  const char* name;
  std::vector<int> since;
};
const std::vector<OpVersions>& op_history() {
  static const std::vector<OpVersions> h = {
#include "onnx_op_versions.inc"
  };
  return h;
}
}  // namespace

int onnx_max_known_opset() { return KILN_ONNX_MAX_OPSET; }

int onnx_since_version(const std::string& op_type, int opset) {
  const auto& h = op_history();
  auto it = std::lower_bound(h.begin(), h.end(), op_type,
                             [](const OpVersions& e, const std::string& n) { return e.name < n; });
  if (it == h.end() || op_type != it->name) return opset;
  int v = 0;
  for (int s : it->since)
    if (s <= opset) v = s;
  return v > 0 ? v : opset;
}

const OpSchema* OpRegistry::find(const std::string& domain, const std::string& op_type,
                                 int opset) const {
  // Default domain: compare op versions. An entry's min_opset may be written as the model
  // opset it starts at (Not with min_opset 7 serves Not-1), so map it through the history too.
  const bool onnx = domain.empty();
  const int v = onnx ? onnx_since_version(op_type, opset) : opset;
  auto [lo, hi] = entries_.equal_range({domain, op_type});
  for (auto it = lo; it != hi; ++it) {
    const OpSchema& e = *it->second;
    const int lo_v = onnx ? onnx_since_version(op_type, e.min_opset) : e.min_opset;
    if (v >= lo_v && v <= e.max_opset) return &e;
  }
  return nullptr;
}

std::vector<const OpSchema*> OpRegistry::find_all(const std::string& domain,
                                                  const std::string& op_type) const {
  std::vector<const OpSchema*> out;
  auto [lo, hi] = entries_.equal_range({domain, op_type});
  for (auto it = lo; it != hi; ++it) out.push_back(it->second.get());
  return out;
}

std::vector<const OpSchema*> OpRegistry::all() const {
  std::vector<const OpSchema*> out;
  for (const auto& [k, v] : entries_) out.push_back(v.get());
  std::stable_sort(out.begin(), out.end(), [](const OpSchema* a, const OpSchema* b) {
    return std::tie(a->domain, a->op_type, a->min_opset) < std::tie(b->domain, b->op_type, b->min_opset);
  });
  return out;
}

namespace {

std::string domain_name(const std::string& d) { return d.empty() ? "ai.onnx" : d; }

Status check_node(const ir::Node& n) {
  auto& reg = OpRegistry::instance();
  const OpSchema* s = reg.find(n.domain, n.op_type, n.opset);
  if (!s) {
    auto all = reg.find_all(n.domain, n.op_type);
    if (all.empty())
      return Status(ErrorCode::kOnnxUnsupportedOp,
                    "operator " + n.op_type + " of domain " + domain_name(n.domain) + " is not supported",
                    "`kiln ops` lists supported operators; replace this op or export it as "
                    "standard ONNX ops",
                    n.loc());
    std::string ranges;
    for (auto* e : all)
      ranges += (ranges.empty() ? "" : ", ") + std::to_string(e->min_opset) + "-" + std::to_string(e->max_opset);
    int v = n.domain.empty() ? onnx_since_version(n.op_type, n.opset) : n.opset;
    return Status(ErrorCode::kOnnxOpsetUnsupported,
                  "operator " + n.op_type + " version " + std::to_string(v) + " (in effect at opset " +
                      std::to_string(n.opset) + ") is not supported; kiln implements versions " + ranges,
                  "convert the model with onnx.version_converter to an opset where " + n.op_type +
                      " has a supported version",
                  n.loc());
  }
  int nin = static_cast<int>(n.inputs.size());
  // Trailing omitted inputs do not count.
  while (nin > 0 && !n.inputs[nin - 1]) --nin;
  if (nin < s->min_inputs || (s->max_inputs >= 0 && nin > s->max_inputs))
    return Status(ErrorCode::kOnnxBadInputs,
                  "has " + std::to_string(nin) + " inputs, expected " + std::to_string(s->min_inputs) +
                      (s->max_inputs < 0 ? " or more" : " to " + std::to_string(s->max_inputs)),
                  "the model does not follow the ONNX operator spec; re-export it", n.loc());
  int nout = static_cast<int>(n.outputs.size());
  if (nout < s->min_outputs || (s->max_outputs >= 0 && nout > s->max_outputs))
    return Status(ErrorCode::kOnnxBadInputs,
                  "has " + std::to_string(nout) + " outputs, expected " + std::to_string(s->min_outputs) +
                      (s->max_outputs < 0 ? " or more" : " to " + std::to_string(s->max_outputs)),
                  "the model does not follow the ONNX operator spec; re-export it", n.loc());
  if (s->check) {
    Status st = s->check(n);
    if (!st.is_ok()) return st.at(n.loc());
  }
  return Status::ok();
}

void resolve(ir::Graph& g, std::vector<Status>& diags) {
  for (const auto& n : g.nodes()) {
    Status st = check_node(*n);
    if (st.is_ok()) n->schema = OpRegistry::instance().find(n->domain, n->op_type, n->opset);
    else diags.push_back(st);
    for (auto* sg : n->subgraphs()) resolve(*sg, diags);
  }
}

}  // namespace

Status resolve_schemas(ir::Graph& g, std::vector<Status>* diags) {
  std::vector<Status> local;
  resolve(g, local);
  if (diags) diags->insert(diags->end(), local.begin(), local.end());
  return local.empty() ? Status::ok() : local.front();
}

Status run_infer(const ir::Node& n, InferContext& ctx) {
  if (!n.schema || !n.schema->infer)
    return Status(ErrorCode::kInternal, "no shape inference for " + n.op_type, {}, n.loc());
  Status st = n.schema->infer(ctx);
  return st.is_ok() ? st : st.at(n.loc());
}

Status infer_graph(ir::Graph& g) {
  for (const auto& n : g.nodes()) {
    std::vector<DataType> types;
    std::vector<Shape> shapes;
    std::vector<const HostTensor*> values;
    for (auto* v : n->inputs) {
      types.push_back(v ? v->dtype : DataType::kUndefined);
      shapes.push_back(v ? v->shape : Shape::unknown_rank());
      values.push_back(v && v->constant ? v->constant.get() : nullptr);
    }
    // Subgraph captures take the type and shape of the enclosing values.
    for (auto* sg : n->subgraphs())
      for (auto* c : sg->captures)
        for (auto* v : n->implicit_inputs)
          if (v->name == c->name) { c->dtype = v->dtype; c->shape = v->shape; }
    InferContext ctx(*n, std::move(types), std::move(shapes), std::move(values));
    KILN_RETURN_IF_ERROR(run_infer(*n, ctx));
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      ir::Value* o = n->outputs[i];
      if (!o) continue;
      if (ctx.output_type(i) != DataType::kUndefined) o->dtype = ctx.output_type(i);
      // Keep a more precise shape already known (e.g. from the model's value_info) when
      // inference found less.
      const Shape& s = ctx.output_shape(i);
      if (s.rank_known || !o->shape.rank_known) {
        if (o->shape.rank_known && s.rank_known && o->shape.rank() == s.rank()) {
          Shape merged = s;
          for (size_t d = 0; d < s.rank(); ++d)
            if (!s.dims[d].is_known() && o->shape.dims[d].is_known()) merged.dims[d] = o->shape.dims[d];
          o->shape = merged;
        } else {
          o->shape = s;
        }
      }
    }
  }
  return Status::ok();
}

}  // namespace kiln
