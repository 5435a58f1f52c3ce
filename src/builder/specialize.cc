#include "builder/specialize.h"

#include "ops/registry.h"
#include "passes/pass_util.h"

namespace kiln::builder {

Result<std::unique_ptr<ir::Graph>> specialize(const ir::Graph& g,
                                              const std::map<std::string, std::vector<int64_t>>& dims,
                                              bool fold_shapes) {
  std::unique_ptr<ir::Graph> s = ir::clone_graph(g);
  for (const auto& [name, d] : dims) {
    ir::Value* in = nullptr;
    for (auto* v : s->inputs)
      if (v->name == name) in = v;
    if (!in) return Status(ErrorCode::kInputShapeMismatch, "the engine has no input '" + name + "'", "");
    if (in->shape.rank_known && in->shape.rank() != d.size())
      return Status(ErrorCode::kInputShapeMismatch,
                    "input '" + name + "' has rank " + std::to_string(in->shape.rank()) + " (" +
                        in->shape.to_string() + "), got dims " + dims_to_string(d),
                    "give one value per dimension");
    for (size_t i = 0; in->shape.rank_known && i < d.size(); ++i)
      if (in->shape.dims[i].is_known() && in->shape.dims[i].value != d[i])
        return Status(ErrorCode::kInputShapeMismatch,
                      "input '" + name + "' has fixed dimension " + std::to_string(i) + " = " +
                          std::to_string(in->shape.dims[i].value) + ", got " + std::to_string(d[i]),
                      "only the dynamic dims (" + in->shape.to_string() + ") can vary");
  }
  KILN_RETURN_IF_ERROR(set_shapes_in_place(*s, dims).status());
  if (fold_shapes) {
    bool any = false;
    for (ir::Node* n : passes::node_snapshot(*s)) {
      bool row_major = true;
      for (const ir::Value* o : n->outputs) row_major = row_major && (!o || o->layout == 0);
      if (row_major) any |= passes::fold_node(*s, n);
    }
    if (any) s->remove_unused_values();
  }
  for (const auto& v : s->values())
    if (!v->constant && !v->shape.is_static()) {
      std::string given;
      for (const auto& [name, d] : dims) given += (given.empty() ? "" : ", ") + name + ":" + dims_to_string(d);
      return Status(ErrorCode::kDynamicShapeUnresolved,
                    "tensor '" + v->name + "' has shape " + v->shape.to_string() + " for inputs " + given,
                    "its shape depends on tensor data (NonZero, Unique, a data-dependent Reshape...), "
                    "which the CUDA backend cannot plan memory for");
    }
  return s;
}

Result<SymbolicShapes> set_shapes_in_place(ir::Graph& g, const std::map<std::string, std::vector<int64_t>>& dims) {
  SymbolicShapes saved;
  for (const auto& v : g.values()) saved[v.get()] = {v->name, v->shape};
  for (auto* in : g.inputs)
    if (auto it = dims.find(in->name); it != dims.end()) in->shape = Shape::from(it->second);
  // Symbolic dims of the stored shapes would survive inference where it finds less (it
  // keeps the more precise of the two); forget them, inference rederives everything.
  for (const auto& v : g.values())
    if (v->producer && !v->shape.is_static()) v->shape = Shape::unknown_rank();
  KILN_RETURN_IF_ERROR(infer_graph(g));
  return saved;
}

Status restore_symbolic(ir::Graph& g, const SymbolicShapes& saved) {
  for (const auto& v : g.values()) {
    auto it = saved.find(v.get());
    if (it != saved.end() && it->second.first == v->name) v->shape = it->second.second;
    else if (v->producer) v->shape = Shape::unknown_rank();
  }
  return infer_graph(g);
}

std::vector<int64_t> shape_signature(const ir::Graph& g, const std::map<std::string, std::vector<int64_t>>& dims) {
  std::vector<int64_t> sig;
  for (const auto* v : g.inputs) {
    auto it = dims.find(v->name);
    if (it != dims.end()) {
      sig.push_back(static_cast<int64_t>(it->second.size()));
      sig.insert(sig.end(), it->second.begin(), it->second.end());
    } else {
      sig.push_back(static_cast<int64_t>(v->shape.rank()));
      for (const auto& d : v->shape.dims) sig.push_back(d.value);
    }
  }
  return sig;
}

}  // namespace kiln::builder
