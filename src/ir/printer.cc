#include <sstream>

#include "ir/graph.h"

namespace kiln::ir {
namespace {

std::string value_str(const Value* v) {
  if (!v) return "<none>";
  std::string s = "%" + v->name + ":" + dtype_name(v->dtype) + "[" + v->shape.to_string() + "]";
  if (v->is_constant()) s += "=const";
  return s;
}

std::string attr_str(const Attribute& a) {
  std::ostringstream os;
  switch (a.kind) {
    case Attribute::Kind::kFloat: os << a.f; break;
    case Attribute::Kind::kInt: os << a.i; break;
    case Attribute::Kind::kString: os << '"' << a.s << '"'; break;
    case Attribute::Kind::kTensor: os << "tensor<" << dtype_name(a.t.dtype()) << "[" << dims_to_string(a.t.dims()) << "]>"; break;
    case Attribute::Kind::kGraph: os << "graph"; break;
    case Attribute::Kind::kFloats:
      os << "[";
      for (size_t i = 0; i < a.floats.size(); ++i) os << (i ? "," : "") << a.floats[i];
      os << "]";
      break;
    case Attribute::Kind::kInts:
      os << "[";
      for (size_t i = 0; i < a.ints.size(); ++i) os << (i ? "," : "") << a.ints[i];
      os << "]";
      break;
    case Attribute::Kind::kStrings: os << "[" << a.strings.size() << " strings]"; break;
    case Attribute::Kind::kTensors: os << "[" << a.tensors.size() << " tensors]"; break;
    case Attribute::Kind::kGraphs: os << "[" << a.graphs.size() << " graphs]"; break;
  }
  return os.str();
}

void print(const Graph& g, std::ostringstream& os, const std::string& indent) {
  os << indent << "graph " << g.name << " (";
  for (size_t i = 0; i < g.inputs.size(); ++i) os << (i ? ", " : "") << value_str(g.inputs[i]);
  os << ")";
  if (!g.captures.empty()) {
    os << " captures (";
    for (size_t i = 0; i < g.captures.size(); ++i) os << (i ? ", " : "") << "%" << g.captures[i]->name;
    os << ")";
  }
  os << " {\n";
  for (const auto& n : g.nodes()) {
    os << indent << "  ";
    for (size_t i = 0; i < n->outputs.size(); ++i) os << (i ? ", " : "") << value_str(n->outputs[i]);
    os << " = " << n->op_type;
    if (!n->domain.empty()) os << "[" << n->domain << "]";
    os << "(";
    for (size_t i = 0; i < n->inputs.size(); ++i) os << (i ? ", " : "") << value_str(n->inputs[i]);
    os << ")";
    bool first = true;
    for (const auto& [k, a] : n->attrs) {
      os << (first ? " {" : ", ") << k << "=" << attr_str(a);
      first = false;
    }
    if (!first) os << "}";
    os << "  # " << n->name;
    if (!n->tactic.empty()) os << " tactic=" << n->tactic;
    os << "\n";
    for (const auto& [k, a] : n->attrs) {
      if (a.g) { os << indent << "    " << k << ":\n"; print(*a.g, os, indent + "    "); }
      for (const auto& sg : a.graphs) print(*sg, os, indent + "    ");
    }
  }
  os << indent << "  return ";
  for (size_t i = 0; i < g.outputs.size(); ++i) os << (i ? ", " : "") << value_str(g.outputs[i]);
  os << "\n" << indent << "}\n";
}

}  // namespace

std::string print_graph(const Graph& g) {
  std::ostringstream os;
  print(g, os, "");
  return os.str();
}

}  // namespace kiln::ir
