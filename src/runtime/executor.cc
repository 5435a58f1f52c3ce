#include "runtime/executor.h"

#include <chrono>

#include "ops/registry.h"

namespace kiln::runtime {

const HostTensor* Env::find(const ir::Value* v) const {
  auto it = tensors.find(v);
  if (it != tensors.end()) return &it->second;
  if (v->constant) return v->constant.get();
  return nullptr;
}

namespace {

Status bind_captures(const ir::Graph& g, Env& env, const Env* outer) {
  for (const ir::Value* c : g.captures) {
    const HostTensor* t = nullptr;
    for (const Env* e = outer; e && !t; e = e->parent) {
      if (!e->graph) break;
      const ir::Value* ov = e->graph->find_value(c->name);
      if (ov) t = e->find(ov);
    }
    if (!t)
      return Status(ErrorCode::kInternal, "subgraph capture '" + c->name + "' is not bound", "");
    env.tensors[c] = *t;
  }
  return Status::ok();
}

}  // namespace

Result<std::vector<HostTensor>> run_node(const ir::Node& n, const std::vector<const HostTensor*>& in,
                                         const Env* outer) {
  if (!n.schema || !n.schema->cpu)
    return Status(ErrorCode::kOnnxUnsupportedOp, "no CPU kernel for " + n.op_type, "", n.loc());
  std::vector<DataType> types;
  std::vector<Shape> shapes;
  for (const HostTensor* t : in) {
    types.push_back(t ? t->dtype() : DataType::kUndefined);
    shapes.push_back(t ? t->shape() : Shape::unknown_rank());
  }
  InferContext ictx(n, std::move(types), std::move(shapes), in);
  KILN_RETURN_IF_ERROR(run_infer(n, ictx));
  std::vector<HostTensor> outputs(n.outputs.size());
  SubgraphRunner sub = [outer](const ir::Graph& g, const std::vector<HostTensor>& inputs) {
    return run_graph(g, inputs, outer);
  };
  KernelContext kctx(n, in, &outputs, &ictx, std::move(sub));
  Status st = n.schema->cpu(kctx);
  if (!st.is_ok()) return st.at(n.loc());
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!n.outputs[i] || outputs[i].defined()) continue;
    // Kernels that only write via output(i) lazily allocate; a never-touched output with a
    // known inferred shape is still valid (e.g. empty tensors).
    HostTensor& t = kctx.output(i);
    if (!t.defined())
      return Status(ErrorCode::kKernelFailed, "output " + std::to_string(i) + " was not produced",
                    "this is a kiln bug in the op's kernel", n.loc());
  }
  return outputs;
}

Result<std::vector<HostTensor>> run_graph(const ir::Graph& g, const std::vector<HostTensor>& inputs,
                                          const Env* outer, const NodeObserver& observer) {
  Env env;
  env.graph = &g;
  env.parent = outer;
  if (inputs.size() != g.inputs.size())
    return Status(ErrorCode::kInvalidArgument,
                  "graph '" + g.name + "' takes " + std::to_string(g.inputs.size()) + " inputs, got " +
                      std::to_string(inputs.size()),
                  "");
  for (size_t i = 0; i < inputs.size(); ++i) env.tensors[g.inputs[i]] = inputs[i];
  KILN_RETURN_IF_ERROR(bind_captures(g, env, outer));

  // Remaining uses per value, so intermediates are freed after their last reader.
  std::unordered_map<const ir::Value*, int> uses;
  for (const auto& n : g.nodes()) {
    for (auto* v : n->inputs) if (v) ++uses[v];
    for (auto* v : n->implicit_inputs) ++uses[v];
  }
  for (auto* v : g.outputs) uses[v] += 1 << 20;  // never freed

  std::vector<const HostTensor*> in;
  for (const auto& n : g.nodes()) {
    in.clear();
    for (auto* v : n->inputs) {
      if (!v) { in.push_back(nullptr); continue; }
      const HostTensor* t = env.find(v);
      if (!t)
        return Status(ErrorCode::kInternal, "value '" + v->name + "' was not computed", "", n->loc());
      in.push_back(t);
    }
    const auto t0 = observer ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    auto r = run_node(*n, in, &env);
    if (!r.is_ok()) return r.status();
    auto& outs = r.value();
    if (observer)
      observer(*n, outs, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    for (size_t i = 0; i < outs.size(); ++i)
      if (n->outputs[i]) env.tensors[n->outputs[i]] = std::move(outs[i]);
    for (auto* v : n->inputs)
      if (v && --uses[v] == 0 && !v->constant) env.tensors.erase(v);
  }
  std::vector<HostTensor> result;
  for (auto* v : g.outputs) {
    const HostTensor* t = env.find(v);
    if (!t) return Status(ErrorCode::kInternal, "graph output '" + v->name + "' was not computed", "");
    result.push_back(*t);
  }
  return result;
}

}  // namespace kiln::runtime
