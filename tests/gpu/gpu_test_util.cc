#include "gpu_test_util.h"

#include <cmath>
#include <cstdlib>
#include <random>

namespace kiln::gputest {
namespace {

HostTensor random_tensor(const In& in, std::mt19937_64& rng) {
  HostTensor t(in.dtype, in.dims);
  std::uniform_real_distribution<double> real(in.lo, in.hi);
  std::uniform_int_distribution<int64_t> integer(static_cast<int64_t>(std::ceil(in.lo)),
                                                 static_cast<int64_t>(std::floor(in.hi)));
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (in.dtype == DataType::kBool) t.set_i64(i, rng() & 1);
    else if (dtype_is_float(in.dtype)) t.set_f64(i, real(rng));
    else t.set_i64(i, integer(rng));
  }
  return t;
}

// One-node graph of the case, with the same data on every call (same seed).
std::unique_ptr<ir::Graph> make_graph(const OpCase& c, uint64_t seed, std::vector<HostTensor>& runtime_inputs) {
  auto g = std::make_unique<ir::Graph>();
  g->name = "gpu_test";
  g->opset_imports[""] = c.opset;
  if (!c.domain.empty()) g->opset_imports[c.domain] = 1;
  std::mt19937_64 rng(seed);
  std::vector<ir::Value*> ins;
  runtime_inputs.clear();
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const In& in = c.inputs[i];
    if (in.dtype == DataType::kUndefined) {
      ins.push_back(nullptr);
      continue;
    }
    HostTensor data = in.value.defined() ? in.value : random_tensor(in, rng);
    const std::string name = "in" + std::to_string(i);
    if (in.constant) {
      ins.push_back(g->add_constant(name, data));
    } else {
      ir::Value* v = g->add_value(name, data.dtype(), data.shape());
      g->inputs.push_back(v);
      ins.push_back(v);
      runtime_inputs.push_back(data);
    }
  }
  std::vector<ir::Value*> outs;
  for (int i = 0; i < c.outputs; ++i) {
    ir::Value* v = g->add_value("out" + std::to_string(i));
    g->outputs.push_back(v);
    outs.push_back(v);
  }
  ir::Node* n = g->add_node(c.op, "node", ins, outs, c.domain, c.domain.empty() ? c.opset : 1);
  for (const auto& [k, a] : c.attrs) n->attrs[k] = a;
  return g;
}

struct RunResult {
  std::vector<HostTensor> outputs;
  std::string tactic;
};

Result<RunResult> run(const OpCase& c, uint64_t seed, Backend backend) {
  std::vector<HostTensor> inputs;
  auto graph = make_graph(c, seed, inputs);
  BuilderConfig cfg;
  cfg.backend = backend;
  cfg.opt_level = 0;
  cfg.allow_tf32 = false;
  KILN_ASSIGN_OR_RETURN(EngineRun er, build_and_run(std::move(graph), inputs, cfg));
  RunResult r;
  r.outputs = std::move(er.outputs);
  for (const auto& n : er.engine->graph().nodes())
    if (n->name == "node") r.tactic = n->tactic;
  return r;
}

}  // namespace

Result<EngineRun> build_and_run(std::unique_ptr<ir::Graph> graph, std::vector<HostTensor>& inputs,
                                const BuilderConfig& cfg) {
  NetworkDefinition net(std::move(graph));
  Logger logger(LogLevel::kError);
  KILN_ASSIGN_OR_RETURN(auto plan, Builder(logger).build_serialized_network(net, cfg));
  EngineRun r;
  KILN_ASSIGN_OR_RETURN(r.engine, Runtime(logger).deserialize(plan.data(), plan.size()));
  KILN_ASSIGN_OR_RETURN(auto ctx, r.engine->create_execution_context_checked());
  auto names = r.engine->input_names();
  for (size_t i = 0; i < names.size(); ++i)
    KILN_RETURN_IF_ERROR(ctx->set_input(names[i], TensorView{inputs[i].dtype(), inputs[i].dims(), inputs[i].raw()}));
  KILN_RETURN_IF_ERROR(ctx->execute());
  for (const auto& name : r.engine->output_names()) {
    KILN_ASSIGN_OR_RETURN(TensorView v, ctx->output(name));
    r.outputs.push_back(HostTensor::wrap(v.dtype, v.dims, v.data, nullptr).clone());
  }
  return r;
}

std::pair<double, double> default_tolerance(DataType dt) {
  switch (dt) {
    case DataType::kF32: return {1e-5, 1e-5};
    case DataType::kF64: return {1e-12, 1e-12};
    case DataType::kF16: return {2e-3, 1e-2};
    case DataType::kBF16: return {1e-2, 2e-2};
    default: return {0, 0};
  }
}

std::string compare_tensors(const HostTensor& expected, const HostTensor& got, double atol, double rtol) {
  if (expected.dtype() != got.dtype())
    return std::string("dtype ") + dtype_name(got.dtype()) + ", expected " + dtype_name(expected.dtype());
  if (expected.dims() != got.dims())
    return "dims " + dims_to_string(got.dims()) + ", expected " + dims_to_string(expected.dims());
  const bool is_float = dtype_is_float(expected.dtype());
  for (int64_t i = 0; i < expected.numel(); ++i) {
    if (is_float) {
      const double e = expected.get_f64(i), g = got.get_f64(i);
      if (std::isnan(e) && std::isnan(g)) continue;
      if (std::isinf(e) && e == g) continue;
      if (!(std::fabs(e - g) <= atol + rtol * std::fabs(e)))
        return "element " + std::to_string(i) + ": got " + std::to_string(g) + ", expected " + std::to_string(e);
    } else if (expected.get_i64(i) != got.get_i64(i)) {
      return "element " + std::to_string(i) + ": got " + std::to_string(got.get_i64(i)) + ", expected " +
             std::to_string(expected.get_i64(i));
    }
  }
  return {};
}

void expect_matches_cpu(const OpCase& c, const Check& check) {
  SCOPED_TRACE(c.op + (c.label.empty() ? "" : " [" + c.label + "]"));
  setenv("KILN_CUDA_POISON", "1", 1);
  auto cpu = run(c, check.seed, Backend::kCpu);
  ASSERT_TRUE(cpu.is_ok()) << "CPU reference failed: " << cpu.status().to_string();
  auto gpu = run(c, check.seed, Backend::kCuda);
  ASSERT_TRUE(gpu.is_ok()) << "GPU run failed: " << gpu.status().to_string();
  if (!check.allow_host) EXPECT_NE(gpu->tactic, "host") << "the node ran on the host fallback";
  ASSERT_EQ(cpu->outputs.size(), gpu->outputs.size());
  for (size_t i = 0; i < cpu->outputs.size(); ++i) {
    auto [atol, rtol] = default_tolerance(cpu->outputs[i].dtype());
    if (check.atol >= 0) atol = check.atol;
    if (check.rtol >= 0) rtol = check.rtol;
    EXPECT_EQ(compare_tensors(cpu->outputs[i], gpu->outputs[i], atol, rtol), "")
        << "output " << i << " (tactic " << gpu->tactic << ")";
  }
}

}  // namespace kiln::gputest
