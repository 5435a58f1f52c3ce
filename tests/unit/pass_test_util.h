// Helpers for graph-pass tests: build an ir::Graph by hand, run one pass through the real
// pass manager (infer + verify after each change), and compare the graph's outputs
// before/after on seeded random inputs.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
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

namespace kiln::pass_test {

constexpr int kOpset = 17;
using Attrs = std::map<std::string, ir::Attribute>;

/// Adds a graph input with static dims.
inline ir::Value* add_input(ir::Graph& g, const std::string& name, std::vector<int64_t> dims,
                            DataType dt = DataType::kF32) {
  ir::Value* v = g.add_value(name, dt, Shape::from(dims));
  g.inputs.push_back(v);
  return v;
}

/// Uniform random values in [lo, hi), stored in dtype dt.
inline HostTensor random_tensor(DataType dt, std::vector<int64_t> dims, std::mt19937& rng,
                                double lo = -1.0, double hi = 1.0) {
  HostTensor t(dt, std::move(dims));
  std::uniform_real_distribution<double> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.set_f64(i, d(rng));
  return t;
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

/// resolve_schemas + infer_graph + verify_graph, as the builder does before the passes.
inline Status prepare(ir::Graph& g) {
  KILN_RETURN_IF_ERROR(resolve_schemas(g));
  KILN_RETURN_IF_ERROR(infer_graph(g));
  return ir::verify_graph(g);
}

/// Runs the pipeline with every registered pass except `pass` disabled.
inline Status run_only(ir::Graph& g, const std::string& pass) {
  BuilderConfig cfg;
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

/// Op types of g's nodes in order.
inline std::vector<std::string> op_types(const ir::Graph& g) {
  std::vector<std::string> ops;
  for (const auto& n : g.nodes()) ops.push_back(n->op_type);
  return ops;
}

/// Element-wise |a - b| <= atol + rtol * |b|, same dtype and dims.
inline void expect_close(const std::vector<HostTensor>& a, const std::vector<HostTensor>& b,
                         double rtol = 1e-5, double atol = 1e-6) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    ASSERT_EQ(a[k].dtype(), b[k].dtype()) << "output " << k;
    ASSERT_EQ(a[k].dims(), b[k].dims()) << "output " << k;
    int bad = 0;
    for (int64_t i = 0; i < a[k].numel() && bad < 5; ++i) {
      double x = a[k].get_f64(i), y = b[k].get_f64(i);
      if (!(std::fabs(x - y) <= atol + rtol * std::fabs(y))) {
        ADD_FAILURE() << "output " << k << " element " << i << ": " << x << " vs " << y;
        ++bad;
      }
    }
  }
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

}  // namespace kiln::pass_test
