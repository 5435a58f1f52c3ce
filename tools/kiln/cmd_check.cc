// `kiln check model.onnx`: imports the model with every diagnostic (one per line, stderr),
// runs shape inference when the import succeeded, and prints a summary (stdout) read from
// the ONNX file itself, so it is there even for models kiln cannot import: opsets, node
// count, op types with their support status, inputs and outputs.
#include <iostream>
#include <map>
#include <set>

#include "cli.h"
#include "onnx.pb.h"
#include "onnx/importer.h"
#include "ops/registry.h"

namespace kiln::cli {
namespace {

struct CheckOptions {
  std::string model;
};

struct OpStat {
  std::set<int> opsets;
  int nodes = 0;
  bool supported = true;
};

struct Census {
  std::map<std::string, int> opsets;                          // domain → version
  std::map<std::pair<std::string, std::string>, OpStat> ops;  // (domain, op_type)
  int nodes = 0;
  int subgraph_nodes = 0;
};

std::string domain_of(const std::string& d) { return d == "ai.onnx" ? "" : d; }
std::string op_label(const std::string& domain, const std::string& op) {
  return domain.empty() ? op : domain + "." + op;
}

bool op_supported(const std::string& domain, const std::string& op, int opset) {
  // The importer turns default-domain Constant nodes into constant values
  // (src/onnx/importer.cc); they never reach the op table.
  if (domain.empty() && op == "Constant") return opset > 0;
  return OpRegistry::instance().find(domain, op, opset) != nullptr;
}

void count_graph(const onnx::GraphProto& g, Census& c, bool nested) {
  for (const auto& n : g.node()) {
    const std::string domain = domain_of(n.domain());
    auto it = c.opsets.find(domain);
    const int opset = it == c.opsets.end() ? 0 : it->second;
    OpStat& s = c.ops[{domain, n.op_type()}];
    s.opsets.insert(opset);
    ++s.nodes;
    s.supported &= op_supported(domain, n.op_type(), opset);
    ++(nested ? c.subgraph_nodes : c.nodes);
    for (const auto& a : n.attribute()) {
      if (a.has_g()) count_graph(a.g(), c, true);
      for (const auto& sg : a.graphs()) count_graph(sg, c, true);
    }
  }
}

std::string type_str(const onnx::TypeProto& t) {
  if (t.has_sequence_type()) return "sequence";
  if (t.has_map_type()) return "map";
  if (t.has_optional_type()) return "optional";
  if (!t.has_tensor_type()) return "?";
  const int elem = t.tensor_type().elem_type();
  DataType dt = onnx_import::from_onnx_dtype(elem);
  std::string s = dt == DataType::kUndefined ? onnx_import::onnx_dtype_name(elem) : dtype_name(dt);
  if (!t.tensor_type().has_shape()) return s + "[?]";
  std::string dims;
  for (const auto& d : t.tensor_type().shape().dim()) {
    if (!dims.empty()) dims += "x";
    if (d.has_dim_value())
      dims += std::to_string(d.dim_value());
    else if (d.has_dim_param() && !d.dim_param().empty())
      dims += d.dim_param();
    else
      dims += "?";
  }
  return s + "[" + dims + "]";
}

void print_summary(const std::string& path, size_t file_bytes, const onnx::ModelProto& m) {
  Census c;
  for (const auto& o : m.opset_import())
    c.opsets[domain_of(o.domain())] = static_cast<int>(o.version());
  count_graph(m.graph(), c, false);

  std::cout << "model: " << path << " (" << format_bytes(file_bytes) << "), IR version "
            << m.ir_version();
  if (!m.producer_name().empty())
    std::cout << ", producer '" << m.producer_name()
              << (m.producer_version().empty() ? "" : " " + m.producer_version()) << "'";
  std::cout << "\nopsets:";
  if (c.opsets.empty()) std::cout << " none";
  bool first = true;
  for (const auto& [d, v] : c.opsets) {
    std::cout << (first ? " " : ", ") << (d.empty() ? "ai.onnx" : d) << " " << v;
    first = false;
  }
  std::cout << "\nnodes: " << c.nodes;
  if (c.subgraph_nodes) std::cout << " (+" << c.subgraph_nodes << " in subgraphs)";

  int supported = 0;
  std::string unsupported, per_type;
  for (const auto& [key, s] : c.ops) {
    const std::string label = op_label(key.first, key.second);
    per_type += (per_type.empty() ? "" : ", ") + label + " x" + std::to_string(s.nodes);
    if (s.supported) {
      ++supported;
      continue;
    }
    std::string opsets;
    for (int v : s.opsets) opsets += (opsets.empty() ? "" : "/") + std::to_string(v);
    unsupported += (unsupported.empty() ? "" : ", ") + label + " (" + std::to_string(s.nodes) +
                   (s.nodes == 1 ? " node" : " nodes") + ", opset " + opsets + ")";
  }
  std::cout << "\nops: " << c.ops.size() << " types, " << supported << " supported";
  if (!unsupported.empty()) std::cout << "; unsupported: " << unsupported;
  if (!per_type.empty()) std::cout << "\n  " << per_type;

  std::set<std::string> init_names;
  uint64_t init_bytes = 0;
  for (const auto& t : m.graph().initializer()) {
    init_names.insert(t.name());
    uint64_t n = dtype_size(onnx_import::from_onnx_dtype(t.data_type()));
    for (auto d : t.dims()) n *= d > 0 ? static_cast<uint64_t>(d) : 0;
    init_bytes += n;
  }
  std::cout << "\ninputs:";
  for (const auto& in : m.graph().input())
    if (!init_names.count(in.name()))
      std::cout << "\n  " << in.name() << "  " << type_str(in.type());
  std::cout << "\noutputs:";
  for (const auto& out : m.graph().output())
    std::cout << "\n  " << out.name() << "  " << type_str(out.type());
  std::cout << "\ninitializers: " << m.graph().initializer_size() << " ("
            << format_bytes(init_bytes) << ")\n";
}

int run_check(const CheckOptions& o) {
  std::vector<Status> diags;
  // Read once: the import and the summary below share the bytes.
  auto bytes = read_file(o.model);
  const std::string dir = std::filesystem::path(o.model).parent_path().string();
  auto graph = bytes.is_ok() ? onnx_import::import_bytes(bytes->data(), bytes->size(),
                                                         dir.empty() ? "." : dir, &diags)
                             : Result<std::unique_ptr<ir::Graph>>(bytes.status());
  Status first = graph.status();
  if (graph.is_ok()) {
    // Shape inference finds what the import cannot: incompatible shapes, bad axes...
    Status st = infer_graph(**graph);
    if (!st.is_ok()) {
      diags.push_back(st);
      first = st;
    }
  } else if (diags.empty()) {
    diags.push_back(first);
  }
  for (const auto& d : diags) std::cerr << d.to_string() << "\n";

  // The summary needs only a parsable file; it is skipped for I/O and protobuf errors,
  // which the diagnostics above already describe.
  if (bytes.is_ok()) {
    onnx::ModelProto m;
    if (bytes->size() <= static_cast<size_t>(INT32_MAX) &&
        m.ParseFromArray(bytes->data(), static_cast<int>(bytes->size())))
      print_summary(o.model, bytes->size(), m);
  }
  if (first.is_ok()) {
    std::cout << "check: ok\n";
    return kExitOk;
  }
  std::cout << "check: " << diags.size() << (diags.size() == 1 ? " problem" : " problems") << "\n";
  return exit_code_for(first.code());
}

}  // namespace

Command add_check_command(CLI::App& app) {
  auto o = std::make_shared<CheckOptions>();
  CLI::App* sub =
      app.add_subcommand("check", "Check an ONNX model: list every problem and summarise it");
  sub->add_option("model", o->model, "ONNX model file")->required();
  return {sub, [o] { return run_check(*o); }};
}

}  // namespace kiln::cli
