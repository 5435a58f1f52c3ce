// Parser and NetworkDefinition: the public face of src/onnx/importer.
#include "ir/graph.h"
#include "kiln/kiln.h"
#include "onnx/importer.h"

namespace kiln {

NetworkDefinition::NetworkDefinition(std::unique_ptr<ir::Graph> g) : graph_(std::move(g)) {}
NetworkDefinition::~NetworkDefinition() = default;

std::vector<std::string> NetworkDefinition::input_names() const {
  std::vector<std::string> n;
  for (auto* v : graph_->inputs) n.push_back(v->name);
  return n;
}
std::vector<std::string> NetworkDefinition::output_names() const {
  std::vector<std::string> n;
  for (auto* v : graph_->outputs) n.push_back(v->name);
  return n;
}

static Result<std::unique_ptr<NetworkDefinition>> finish(Result<std::unique_ptr<ir::Graph>> r,
                                                         const std::vector<Status>& diags, Logger& log) {
  for (const auto& d : diags) log.log(LogLevel::kDebug, d.to_string());
  if (!r.is_ok()) return r.status();
  return std::make_unique<NetworkDefinition>(std::move(r).value());
}

Result<std::unique_ptr<NetworkDefinition>> Parser::parse_from_file(const std::string& path) {
  diags_.clear();
  return finish(onnx_import::import_file(path, &diags_), diags_, logger_);
}

Result<std::unique_ptr<NetworkDefinition>> Parser::parse(const void* data, size_t size) {
  diags_.clear();
  return finish(onnx_import::import_bytes(data, size, "", &diags_), diags_, logger_);
}

}  // namespace kiln
