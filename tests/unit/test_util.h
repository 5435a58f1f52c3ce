// Helpers shared by the unit tests: tensors from literals and seeded random values,
// hand-built ir::Graphs, one op run through the op table and run_node exactly as constant
// folding and the CPU backend run it, one graph pass run through the real pass manager
// (infer + verify after each change), and tensor comparisons.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/kiln.h"
#include "ops/registry.h"
#include "passes/pass.h"
#include "runtime/executor.h"

#define KILN_ASSERT_OK(expr)                               \
  do {                                                     \
    ::kiln::Status kiln_st_ = (expr);                      \
    ASSERT_TRUE(kiln_st_.is_ok()) << kiln_st_.to_string(); \
  } while (0)

namespace kiln::test {

constexpr int kOpset = 17;
using Attrs = std::map<std::string, ir::Attribute>;

// ---- tensors ------------------------------------------------------------------------------

/// A dtype-`dt` tensor holding `v` (C++ element type T must match dt).
template <typename T>
HostTensor make(DataType dt, std::vector<int64_t> dims, const std::vector<T>& v) {
  if (v.empty()) return HostTensor(dt, std::move(dims));  // nothing to copy
  return HostTensor::from_vector<T>(dt, std::move(dims), v);
}
inline HostTensor f32(std::vector<int64_t> dims, const std::vector<float>& v) {
  return make<float>(DataType::kF32, std::move(dims), v);
}
inline HostTensor i64(std::vector<int64_t> dims, const std::vector<int64_t>& v) {
  return make<int64_t>(DataType::kI64, std::move(dims), v);
}
/// A 1-D int64 tensor of v's length.
inline HostTensor i64(const std::vector<int64_t>& v) {
  return i64({static_cast<int64_t>(v.size())}, v);
}
/// f32 tensor holding 0, 1, 2, ... in row-major order.
inline HostTensor iota_f32(std::vector<int64_t> dims) {
  HostTensor t(DataType::kF32, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}
/// The elements of t (C++ element type T must match its dtype).
template <typename T>
std::vector<T> values(const HostTensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

/// Uniform random values in [lo, hi), stored in dtype dt.
inline HostTensor random_tensor(DataType dt, std::vector<int64_t> dims, std::mt19937& rng,
                                double lo = -1.0, double hi = 1.0) {
  HostTensor t(dt, std::move(dims));
  std::uniform_real_distribution<double> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.set_f64(i, d(rng));
  return t;
}

// ---- comparisons --------------------------------------------------------------------------

/// EXPECT_NEAR on every element; sizes must match.
inline void expect_near(const std::vector<float>& got, const std::vector<float>& want,
                        float tol = 1e-5f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

/// Element-wise |a - b| <= atol + rtol * |b|, same dtype and dims; reports the first five
/// differing elements, prefixed with `what`.
inline void expect_close(const HostTensor& a, const HostTensor& b, double rtol, double atol,
                         const std::string& what = "output") {
  ASSERT_EQ(a.dtype(), b.dtype()) << what;
  ASSERT_EQ(a.dims(), b.dims()) << what;
  int bad = 0;
  for (int64_t i = 0; i < a.numel() && bad < 5; ++i) {
    double x = a.get_f64(i), y = b.get_f64(i);
    if (!(std::fabs(x - y) <= atol + rtol * std::fabs(y))) {
      ADD_FAILURE() << what << " element " << i << ": " << x << " vs " << y;
      ++bad;
    }
  }
}
/// expect_close on each pair of outputs.
inline void expect_close(const std::vector<HostTensor>& a, const std::vector<HostTensor>& b,
                         double rtol = 1e-5, double atol = 1e-6) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k)
    expect_close(a[k], b[k], rtol, atol, "output " + std::to_string(k));
}

// ---- hand-built graphs --------------------------------------------------------------------

/// Adds a graph input with static dims.
inline ir::Value* add_input(ir::Graph& g, const std::string& name, std::vector<int64_t> dims,
                            DataType dt = DataType::kF32) {
  ir::Value* v = g.add_value(name, dt, Shape::from(dims));
  g.inputs.push_back(v);
  return v;
}

inline ir::Value* add_random_const(ir::Graph& g, const std::string& name, DataType dt,
                                   std::vector<int64_t> dims, std::mt19937& rng, double lo = -1.0,
                                   double hi = 1.0) {
  return g.add_constant(name, random_tensor(dt, std::move(dims), rng, lo, hi));
}

/// An int64 constant; `dims` defaults to a 1-D tensor of v's length.
inline ir::Value* add_i64(ir::Graph& g, const std::string& name, std::vector<int64_t> v,
                          std::optional<std::vector<int64_t>> dims = std::nullopt) {
  std::vector<int64_t> d = dims ? *dims : std::vector<int64_t>{static_cast<int64_t>(v.size())};
  return g.add_constant(name, HostTensor::from_vector<int64_t>(DataType::kI64, d, v));
}

/// Appends node `op` (default domain) reading `inputs` and writing new values named
/// `outs` ("" = omitted output). The node is named after its first output.
inline ir::Node* add_node(ir::Graph& g, const std::string& op, std::vector<ir::Value*> inputs,
                          std::vector<std::string> outs, Attrs attrs = {}, int opset = kOpset) {
  std::vector<ir::Value*> ov;
  for (const auto& o : outs) ov.push_back(o.empty() ? nullptr : g.add_value(o));
  ir::Node* n = g.add_node(op, op + "_" + outs.at(0), std::move(inputs), std::move(ov), "", opset);
  n->attrs = std::move(attrs);
  return n;
}

/// add_node for a one-output node; returns that output.
inline ir::Value* add_op(ir::Graph& g, const std::string& op, std::vector<ir::Value*> inputs,
                         const std::string& out, Attrs attrs = {}, int opset = kOpset) {
  return add_node(g, op, std::move(inputs), {out}, std::move(attrs), opset)->outputs[0];
}

/// resolve_schemas + infer_graph + verify_graph, as the builder does before the passes.
inline Status prepare(ir::Graph& g) {
  KILN_RETURN_IF_ERROR(resolve_schemas(g));
  KILN_RETURN_IF_ERROR(infer_graph(g));
  return ir::verify_graph(g);
}

/// Op types of g's nodes in order.
inline std::vector<std::string> op_types(const ir::Graph& g) {
  std::vector<std::string> ops;
  for (const auto& n : g.nodes()) ops.push_back(n->op_type);
  return ops;
}

// ---- one op -------------------------------------------------------------------------------

/// Runs op `op` at `opset` as a one-node graph named "node_<op>" (inputs as graph inputs,
/// nullptr = omitted optional input; `num_outputs` outputs): schema resolved, shapes
/// inferred, then runtime::run_node. Returns the outputs or the first error.
inline Result<std::vector<HostTensor>> run_op_at(int opset, const std::string& op,
                                                 const std::vector<const HostTensor*>& inputs,
                                                 Attrs attrs = {}, size_t num_outputs = 1) {
  ir::Graph g;
  std::vector<ir::Value*> ins;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) {
      ins.push_back(nullptr);
      continue;
    }
    ir::Value* v = g.add_value("in" + std::to_string(i), inputs[i]->dtype(), inputs[i]->shape());
    g.inputs.push_back(v);
    ins.push_back(v);
  }
  std::vector<ir::Value*> outs;
  for (size_t i = 0; i < num_outputs; ++i) outs.push_back(g.add_value("out" + std::to_string(i)));
  ir::Node* n = g.add_node(op, "node_" + op, ins, outs, "", opset);
  n->attrs = std::move(attrs);
  KILN_RETURN_IF_ERROR(resolve_schemas(g));
  KILN_RETURN_IF_ERROR(infer_graph(g));
  return runtime::run_node(*n, inputs);
}

/// run_op_at with a per-file default opset, so that `constexpr OpRunner run_op{18};` lets
/// calls write run_op(op, inputs[, attrs[, opset[, num_outputs]]]).
struct OpRunner {
  int default_opset;
  Result<std::vector<HostTensor>> operator()(const std::string& op,
                                             const std::vector<const HostTensor*>& inputs,
                                             Attrs attrs = {},
                                             std::optional<int> opset = std::nullopt,
                                             size_t num_outputs = 1) const {
    return run_op_at(opset.value_or(default_opset), op, inputs, std::move(attrs), num_outputs);
  }
};

// ---- graph passes -------------------------------------------------------------------------

/// Runs the pipeline, as a build for `backend` runs it, with every registered pass except
/// `pass` disabled (backend-specific passes run only for their backend).
inline Status run_only(ir::Graph& g, const std::string& pass, Backend backend = Backend::kCpu) {
  BuilderConfig cfg;
  cfg.backend = backend;
  cfg.opt_level = 3;
  bool found = false;
  for (const auto& e : passes::registered_passes()) {
    auto p = e.make();
    if (pass == p->name())
      found = true;
    else
      cfg.disabled_passes.push_back(p->name());
  }
  if (!found) return Status(ErrorCode::kNotFound, "no pass named " + pass, "");
  Logger log(LogLevel::kOff);
  return passes::run_passes(g, cfg, log);
}

/// Calls one pass's apply() on `g` alone (no recursion, no re-inference).
inline Status apply_once(ir::Graph& g, const std::string& pass, bool& changed) {
  for (const auto& e : passes::registered_passes()) {
    auto p = e.make();
    if (pass == p->name()) return p->apply(g, changed);
  }
  return Status(ErrorCode::kNotFound, "no pass named " + pass, "");
}

/// Seeded random values for every graph input (float inputs in [-1, 1)).
inline std::vector<HostTensor> random_inputs(const ir::Graph& g, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<HostTensor> in;
  for (const ir::Value* v : g.inputs)
    in.push_back(random_tensor(v->dtype, *v->shape.concrete(), rng));
  return in;
}

/// Runs g on `inputs`, asserting success.
inline std::vector<HostTensor> run(const ir::Graph& g, const std::vector<HostTensor>& inputs) {
  auto r = runtime::run_graph(g, inputs);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? std::move(r).value() : std::vector<HostTensor>{};
}

/// Runs `pass` alone on g and checks the outputs on seeded random inputs are unchanged.
inline void run_pass_and_compare(ir::Graph& g, const std::string& pass, double rtol = 1e-5,
                                 double atol = 1e-6, uint32_t seed = 1234) {
  auto inputs = random_inputs(g, seed);
  auto before = run(g, inputs);
  ASSERT_FALSE(before.empty()) << "graph does not run before " << pass;
  KILN_ASSERT_OK(run_only(g, pass));
  KILN_ASSERT_OK(ir::verify_graph(g));
  auto after = run(g, inputs);
  expect_close(after, before, rtol, atol);
}

}  // namespace kiln::test
