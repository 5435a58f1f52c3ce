// `kiln inspect model.kiln [--json]`: what a plan holds: its header (format and kiln
// version, backend, precision, sizes, build options), inputs and outputs, one line per
// layer with shapes, dtypes, weight bytes and tactic, and totals per op type. For CUDA
// plans also: the nodes that run on the host (tactic "host"), the layout reformats the
// builder inserted, and the activation memory plan against the naive sum.
//
// A plan file is read with the plan reader alone, not the runtime: inspecting a CUDA plan
// needs no GPU.
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "builder/layout.h"
#include "cli.h"
#include "engine/plan.h"
#include "ir/graph.h"
#include "runtime/engine_impl.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

struct InspectOptions {
  std::string plan;
  bool json = false;
  std::vector<std::string> shapes;
  ProfileOptions opt_profile;  ///< --min-shapes, --opt-shapes, --max-shapes
  BackendOptions backend;
};

/// Tactic of nodes the CUDA backend runs on the host.
constexpr const char* kHostTactic = "host";

/// What inspect reports on: the plan's graph and header, and its memory figures.
struct PlanView {
  const ir::Graph* graph = nullptr;
  const plan::PlanInfo* info = nullptr;
  Engine::MemoryStats memory;
};

struct Layer {
  int depth;
  const ir::Node* node;
  uint64_t weight_bytes;
};

uint64_t constant_input_bytes(const ir::Node& n) {
  uint64_t b = 0;
  for (const ir::Value* v : n.inputs)
    if (v && v->constant) b += v->constant->bytes();
  return b;
}

// Depth-first over the graph and the subgraphs of If/Loop/Scan.
void collect(const ir::Graph& g, int depth, std::vector<Layer>& out) {
  for (const auto& n : g.nodes()) {
    out.push_back({depth, n.get(), constant_input_bytes(*n)});
    for (const ir::Graph* sg : n->subgraphs()) collect(*sg, depth + 1, out);
  }
}

bool is_host_fallback(const ir::Node& n) { return n.tactic == kHostTactic; }
bool is_reformat(const ir::Node& n) {
  return n.op_type == "Transpose" && n.name.rfind(builder::kReformatPrefix, 0) == 0;
}

/// Host-fallback nodes per op type, in op-name order.
std::map<std::string, int> host_ops(const std::vector<Layer>& layers) {
  std::map<std::string, int> ops;
  for (const auto& l : layers)
    if (is_host_fallback(*l.node)) ++ops[l.node->op_type];
  return ops;
}

/// Activation memory saved by the arena against one buffer per tensor, in percent.
double saving_pct(const Engine::MemoryStats& m) {
  if (m.naive_bytes == 0) return 0.0;
  return 100.0 * (1.0 - static_cast<double>(m.arena_bytes) / static_cast<double>(m.naive_bytes));
}

json shape_json(const Shape& s) {
  if (!s.rank_known) return nullptr;
  json a = json::array();
  for (const auto& d : s.dims) {
    if (d.is_known())
      a.push_back(d.value);
    else if (d.is_symbolic())
      a.push_back(d.symbol);
    else
      a.push_back(nullptr);
  }
  return a;
}

json value_json(const ir::Value* v) {
  if (!v) return nullptr;
  json j = {{"name", v->name}, {"dtype", dtype_name(v->dtype)}, {"shape", shape_json(v->shape)}};
  if (v->constant) j["constant_bytes"] = v->constant->bytes();
  if (v->layout == builder::kLayoutNhwc) j["layout"] = "nhwc";
  return j;
}

std::string values_text(const std::vector<ir::Value*>& vs) {
  std::string s;
  for (const ir::Value* v : vs)
    s += (s.empty() ? "" : ", ") +
         (v ? typed_shape(v->dtype, v->shape) + (v->layout == builder::kLayoutNhwc ? " nhwc" : "")
            : std::string("-"));
  return s.empty() ? "-" : s;
}

/// The plan's optimisation profiles: per profile, per input, min/opt/max dims.
json profiles_json(const plan::PlanInfo& info) {
  json a = json::array();
  for (size_t i = 0; i < info.profiles.size(); ++i) {
    json inputs = json::object();
    for (const auto& [name, r] : info.profiles[i].inputs)
      inputs[name] = {{"min", r.min}, {"opt", r.opt}, {"max", r.max}};
    a.push_back({{"index", i}, {"inputs", inputs}});
  }
  return a;
}

int print_json(const std::string& path, const PlanView& pv, const std::vector<Layer>& layers) {
  const plan::PlanInfo& info = *pv.info;
  const bool cuda = info.backend == Backend::kCuda;
  json j;
  j["file"] = path;
  json bi = json::parse(info.build_info, nullptr, /*allow_exceptions=*/false);
  j["plan"] = {{"format_version", info.format_version},
               {"kiln_version", info.kiln_version},
               {"backend", backend_name(info.backend)},
               {"compute_capability", info.compute_capability},
               {"precision", cuda ? json(precision_name(info.precision)) : json(nullptr)},
               {"allow_tf32", cuda ? json(info.allow_tf32) : json(nullptr)},
               {"file_bytes", info.file_bytes},
               {"weights_bytes", info.weights_bytes},
               {"build_info", bi.is_discarded() ? json(info.build_info) : bi}};
  j["inputs"] = json::array();
  for (const ir::Value* v : pv.graph->inputs) j["inputs"].push_back(value_json(v));
  j["outputs"] = json::array();
  for (const ir::Value* v : pv.graph->outputs) j["outputs"].push_back(value_json(v));
  j["profiles"] = profiles_json(info);
  j["layers"] = json::array();
  json totals = json::object();
  json host_nodes = json::array(), reformats = json::array();
  for (size_t i = 0; i < layers.size(); ++i) {
    const ir::Node& n = *layers[i].node;
    json l = {{"index", i},
              {"depth", layers[i].depth},
              {"name", n.name},
              {"op", n.op_type},
              {"domain", n.domain.empty() ? "ai.onnx" : n.domain},
              {"opset", n.opset},
              {"inputs", json::array()},
              {"outputs", json::array()},
              {"weight_bytes", layers[i].weight_bytes},
              {"tactic", n.tactic}};
    if (n.tactic_ms >= 0) l["tactic_ms"] = n.tactic_ms;
    if (!n.tactic_params.empty()) l["tactic_params"] = n.tactic_params;
    for (const ir::Value* v : n.inputs) l["inputs"].push_back(value_json(v));
    for (const ir::Value* v : n.outputs) l["outputs"].push_back(value_json(v));
    j["layers"].push_back(std::move(l));
    json& t = totals[n.op_type];
    if (t.is_null()) t = {{"layers", 0}, {"weight_bytes", uint64_t{0}}};
    t["layers"] = t["layers"].get<int>() + 1;
    t["weight_bytes"] = t["weight_bytes"].get<uint64_t>() + layers[i].weight_bytes;
    if (is_host_fallback(n)) host_nodes.push_back({{"name", n.name}, {"op", n.op_type}});
    if (is_reformat(n))
      reformats.push_back({{"name", n.name},
                           {"input", value_json(n.input(0))},
                           {"output", value_json(n.output(0))}});
  }
  j["totals"] = totals;
  j["host_fallback"] = {
      {"count", host_nodes.size()}, {"ops", host_ops(layers)}, {"nodes", host_nodes}};
  j["reformats"] = {{"count", reformats.size()}, {"nodes", reformats}};
  if (cuda)
    j["memory"] = {{"arena_bytes", pv.memory.arena_bytes},
                   {"naive_bytes", pv.memory.naive_bytes},
                   {"weight_bytes", pv.memory.weight_bytes},
                   {"saving_pct", saving_pct(pv.memory)}};
  else
    j["memory"] = nullptr;
  std::cout << j.dump(2) << "\n";
  return kExitOk;
}

// Left-aligned columns, two spaces apart.
void print_table(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<size_t> w;
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c) {
      if (w.size() <= c) w.push_back(0);
      w[c] = std::max(w[c], r[c].size());
    }
  for (const auto& r : rows) {
    std::string line = indent;
    for (size_t c = 0; c < r.size(); ++c)
      line += r[c] + (c + 1 < r.size() ? std::string(w[c] - r[c].size() + 2, ' ') : "");
    std::cout << line << "\n";
  }
}

// The CUDA-only sections: memory plan, host fallbacks, reformats.
void print_cuda_sections(const PlanView& pv, const std::vector<Layer>& layers) {
  const Engine::MemoryStats& m = pv.memory;
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.1f%%", saving_pct(m));
  std::cout << "memory: weights " << format_bytes(m.weight_bytes) << ", activation arena "
            << format_bytes(m.arena_bytes) << " (" << group_digits(m.arena_bytes)
            << " bytes) per context vs " << format_bytes(m.naive_bytes) << " ("
            << group_digits(m.naive_bytes) << " bytes) naive: saving " << pct << "\n";

  const auto ops = host_ops(layers);
  int host = 0;
  std::string op_list;
  for (const auto& [op, k] : ops) {
    host += k;
    op_list += (op_list.empty() ? "" : ", ") + op + " x" + std::to_string(k);
  }
  std::cout << "host fallback: " << host << (host == 1 ? " node" : " nodes")
            << (host ? " (" + op_list + ")" : std::string()) << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& l : layers)
    if (is_host_fallback(*l.node)) rows.push_back({l.node->name, l.node->op_type});
  print_table(rows, "  ");

  rows.clear();
  for (const auto& l : layers)
    if (is_reformat(*l.node))
      rows.push_back(
          {l.node->name, values_text(l.node->inputs) + " -> " + values_text(l.node->outputs)});
  std::cout << "reformat nodes: " << rows.size() << "\n";
  print_table(rows, "  ");
}

/// The text form: one line per profile and input. A dynamic plan without profiles (the CPU
/// backend runs any shape) says so, a static plan prints nothing.
void print_profiles(const PlanView& pv) {
  const auto& profiles = pv.info->profiles;
  if (profiles.empty()) {
    for (const ir::Value* v : pv.graph->inputs)
      if (!v->shape.is_static()) {
        std::cout << "optimisation profiles: none (dynamic dims are resolved at run time, "
                     "without range checks)\n";
        return;
      }
    return;
  }
  std::cout << "optimisation profiles: " << profiles.size() << "\n";
  std::vector<std::vector<std::string>> rows = {{"profile", "input", "min", "opt", "max"}};
  for (size_t i = 0; i < profiles.size(); ++i)
    for (const auto& [name, r] : profiles[i].inputs)
      rows.push_back({std::to_string(i), name, dims_to_string(r.min), dims_to_string(r.opt),
                      dims_to_string(r.max)});
  print_table(rows, "  ");
}

int print_text(const std::string& path, const PlanView& pv, const std::vector<Layer>& layers) {
  const plan::PlanInfo& info = *pv.info;
  const bool cuda = info.backend == Backend::kCuda;
  std::cout << "plan: " << path << "\n"
            << "  format version " << info.format_version << ", built by kiln " << info.kiln_version
            << ", backend " << backend_name(info.backend);
  if (info.compute_capability) std::cout << " (sm_" << info.compute_capability << ")";
  if (cuda) {
    std::cout << ", precision " << precision_name(info.precision);
    if (info.precision == Precision::kFp32)
      std::cout << (info.allow_tf32 ? " (tf32)" : " (no tf32)");
  }
  std::cout << "\n  size " << format_bytes(info.file_bytes) << " (" << group_digits(info.file_bytes)
            << " bytes), weights " << format_bytes(info.weights_bytes) << " ("
            << group_digits(info.weights_bytes) << " bytes)\n"
            << "  build info: " << (info.build_info.empty() ? "-" : info.build_info) << "\n";
  const json bi = json::parse(info.build_info, nullptr, /*allow_exceptions=*/false);
  if (!bi.is_discarded() && bi.contains("kernels_per_inference")) {
    const json& k = bi["kernels_per_inference"];
    std::cout << "  kernels per inference: " << k.value("after_fusion", 0) << " ("
              << k.value("before_fusion", 0) << " before fusion)\n";
  }
  std::vector<std::vector<std::string>> io;
  for (const ir::Value* v : pv.graph->inputs)
    io.push_back({"input", v->name, typed_shape(v->dtype, v->shape)});
  for (const ir::Value* v : pv.graph->outputs)
    io.push_back({"output", v->name, typed_shape(v->dtype, v->shape)});
  print_table(io, "");
  print_profiles(pv);

  std::cout << "layers: " << layers.size() << "\n";
  std::vector<std::vector<std::string>> rows = {
      {"#", "name", "op", "inputs -> outputs", "weights", "tactic", "timed"}};
  std::map<std::string, std::pair<int, uint64_t>> totals;
  for (size_t i = 0; i < layers.size(); ++i) {
    const ir::Node& n = *layers[i].node;
    rows.push_back({std::to_string(i), std::string(2 * layers[i].depth, ' ') + n.name,
                    n.domain.empty() ? n.op_type : n.domain + "." + n.op_type,
                    values_text(n.inputs) + " -> " + values_text(n.outputs),
                    layers[i].weight_bytes ? format_bytes(layers[i].weight_bytes) : "-",
                    n.tactic.empty() ? "-" : n.tactic,
                    n.tactic_ms >= 0 ? format_num("%.4f", n.tactic_ms) + " ms" : "-"});
    auto& t = totals[n.op_type];
    ++t.first;
    t.second += layers[i].weight_bytes;
  }
  print_table(rows, "  ");
  std::cout << "totals by op:\n";
  std::vector<std::vector<std::string>> trows = {{"op", "layers", "weights"}};
  for (const auto& [op, t] : totals)
    trows.push_back({op, std::to_string(t.first), format_bytes(t.second)});
  print_table(trows, "  ");
  if (cuda) print_cuda_sections(pv, layers);
  return kExitOk;
}

// Reads a plan file without creating a runtime engine (no GPU, no weight upload).
Result<plan::LoadedPlan> read_plan(const std::string& path) {
  auto lp = plan::deserialize_file(path);
  if (!lp.is_ok()) return lp.status().with_context("'" + path + "'");
  return lp;
}

int run_inspect(const InspectOptions& o) {
  auto print = [&](const PlanView& pv) {
    std::vector<Layer> layers;
    collect(*pv.graph, 0, layers);
    return o.json ? print_json(o.plan, pv, layers) : print_text(o.plan, pv, layers);
  };
  BuilderConfig cfg;
  if (Status st = apply_shape_options(o.shapes, o.opt_profile, builds_from_onnx(o.plan), cfg);
      !st.is_ok())
    return fail(st);
  if (!builds_from_onnx(o.plan)) {
    if (Status st = apply_backend_options(o.backend, /*building=*/false, cfg); !st.is_ok())
      return fail(st);
    auto lp = read_plan(o.plan);
    if (!lp.is_ok()) return fail(lp.status());
    const plan::PlanInfo& info = lp->info;
    PlanView pv{lp->graph.get(), &info, {info.arena_bytes, info.naive_bytes, info.weights_bytes}};
    return print(pv);
  }
  // An .onnx model: built in memory, then the engine's own figures.
  Logger logger(LogLevel::kWarning);
  auto engine = load_engine(o.plan, logger, cfg, o.backend);
  if (!engine.is_ok()) return fail(engine.status());
  const Engine& e = **engine;
  return print(PlanView{&e.graph(), &e.impl().plan.info, e.memory_stats()});
}

}  // namespace

Command add_inspect_command(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* sub =
      app.add_subcommand("inspect", "Show what a plan holds: header, inputs/outputs, layers");
  sub->add_option("plan", o->plan, "plan file (.kiln; an .onnx model is built in memory first)")
      ->required();
  sub->add_flag("--json", o->json, "print JSON instead of text");
  sub->add_option("--shapes", o->shapes,
                  "when building an .onnx: concrete shapes for symbolic inputs, NAME:1x3x224x224")
      ->allow_extra_args(false);
  add_profile_options(sub, o->opt_profile);
  add_backend_options(sub, o->backend);
  return {sub, [o] { return run_inspect(*o); }};
}

}  // namespace kiln::cli
