// `kiln inspect model.kiln [--json]`: what a plan holds: its header (format and kiln
// version, backend, sizes, build options), inputs and outputs, one line per layer with
// shapes, dtypes, weight bytes and tactic, and totals per op type.
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "ir/graph.h"
#include "runtime/engine_impl.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

struct InspectOptions {
  std::string plan;
  bool json = false;
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
  return j;
}

std::string values_text(const std::vector<ir::Value*>& vs) {
  std::string s;
  for (const ir::Value* v : vs)
    s += (s.empty() ? "" : ", ") + (v ? typed_shape(v->dtype, v->shape) : std::string("-"));
  return s.empty() ? "-" : s;
}

int print_json(const std::string& path, const Engine& e, const std::vector<Layer>& layers) {
  const plan::PlanInfo& info = e.impl().plan.info;
  json j;
  j["file"] = path;
  json bi = json::parse(info.build_info, nullptr, /*allow_exceptions=*/false);
  j["plan"] = {{"format_version", info.format_version},
               {"kiln_version", info.kiln_version},
               {"backend", backend_name(info.backend)},
               {"compute_capability", info.compute_capability},
               {"file_bytes", info.file_bytes},
               {"weights_bytes", info.weights_bytes},
               {"build_info", bi.is_discarded() ? json(info.build_info) : bi}};
  j["inputs"] = json::array();
  for (const ir::Value* v : e.graph().inputs) j["inputs"].push_back(value_json(v));
  j["outputs"] = json::array();
  for (const ir::Value* v : e.graph().outputs) j["outputs"].push_back(value_json(v));
  j["layers"] = json::array();
  json totals = json::object();
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
    for (const ir::Value* v : n.inputs) l["inputs"].push_back(value_json(v));
    for (const ir::Value* v : n.outputs) l["outputs"].push_back(value_json(v));
    j["layers"].push_back(std::move(l));
    json& t = totals[n.op_type];
    if (t.is_null()) t = {{"layers", 0}, {"weight_bytes", uint64_t{0}}};
    t["layers"] = t["layers"].get<int>() + 1;
    t["weight_bytes"] = t["weight_bytes"].get<uint64_t>() + layers[i].weight_bytes;
  }
  j["totals"] = totals;
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

int print_text(const std::string& path, const Engine& e, const std::vector<Layer>& layers) {
  const plan::PlanInfo& info = e.impl().plan.info;
  std::cout << "plan: " << path << "\n"
            << "  format version " << info.format_version << ", built by kiln " << info.kiln_version
            << ", backend " << backend_name(info.backend);
  if (info.compute_capability) std::cout << " (sm_" << info.compute_capability << ")";
  std::cout << "\n  size " << format_bytes(info.file_bytes) << " (" << group_digits(info.file_bytes)
            << " bytes), weights " << format_bytes(info.weights_bytes) << " ("
            << group_digits(info.weights_bytes) << " bytes)\n"
            << "  build info: " << (info.build_info.empty() ? "-" : info.build_info) << "\n";
  std::vector<std::vector<std::string>> io;
  for (const ir::Value* v : e.graph().inputs)
    io.push_back({"input", v->name, typed_shape(v->dtype, v->shape)});
  for (const ir::Value* v : e.graph().outputs)
    io.push_back({"output", v->name, typed_shape(v->dtype, v->shape)});
  print_table(io, "");

  std::cout << "layers: " << layers.size() << "\n";
  std::vector<std::vector<std::string>> rows = {
      {"#", "name", "op", "inputs -> outputs", "weights", "tactic"}};
  std::map<std::string, std::pair<int, uint64_t>> totals;
  for (size_t i = 0; i < layers.size(); ++i) {
    const ir::Node& n = *layers[i].node;
    rows.push_back({std::to_string(i), std::string(2 * layers[i].depth, ' ') + n.name,
                    n.domain.empty() ? n.op_type : n.domain + "." + n.op_type,
                    values_text(n.inputs) + " -> " + values_text(n.outputs),
                    layers[i].weight_bytes ? format_bytes(layers[i].weight_bytes) : "-",
                    n.tactic.empty() ? "-" : n.tactic});
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
  return kExitOk;
}

int run_inspect(const InspectOptions& o) {
  Logger logger(LogLevel::kWarning);
  auto engine = load_engine(o.plan, logger, BuilderConfig{});
  if (!engine.is_ok()) return fail(engine.status());
  std::vector<Layer> layers;
  collect((*engine)->graph(), 0, layers);
  return o.json ? print_json(o.plan, **engine, layers) : print_text(o.plan, **engine, layers);
}

}  // namespace

Command add_inspect_command(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* sub =
      app.add_subcommand("inspect", "Show what a plan holds: header, inputs/outputs, layers");
  sub->add_option("plan", o->plan, "plan file (.kiln; an .onnx model is built in memory first)")
      ->required();
  sub->add_flag("--json", o->json, "print JSON instead of text");
  return {sub, [o] { return run_inspect(*o); }};
}

}  // namespace kiln::cli
