#include "onnx/importer.h"

#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "onnx.pb.h"
#include "ops/registry.h"

namespace kiln::onnx_import {
namespace {

Status bad(ErrorCode code, const std::string& msg, const std::string& hint, ErrorLocation loc = {}) {
  return Status(code, msg, hint, std::move(loc));
}

std::string dir_of(const std::string& path) {
  auto p = path.find_last_of('/');
  return p == std::string::npos ? "." : path.substr(0, p);
}

Shape shape_from_type(const onnx::TypeProto& t) {
  if (!t.has_tensor_type() || !t.tensor_type().has_shape()) return Shape::unknown_rank();
  Shape s;
  for (const auto& d : t.tensor_type().shape().dim()) {
    if (d.has_dim_value() && d.dim_value() >= 0) s.dims.emplace_back(d.dim_value());
    else if (d.has_dim_param() && !d.dim_param().empty()) s.dims.push_back(Dim::sym(d.dim_param()));
    else s.dims.push_back(Dim::unknown());
  }
  return s;
}

// Nodes without a name are called after their first output (or their op type).
std::string node_name(const onnx::NodeProto& np) {
  if (!np.name().empty()) return np.name();
  return np.output_size() && !np.output(0).empty() ? np.output(0) : np.op_type();
}

// One lexical scope: the graph being imported and its enclosing scope.
struct Scope {
  ir::Graph* graph;
  Scope* parent;
  ir::Node* owner;  // node (in parent graph) whose attribute holds this graph
  std::unordered_map<std::string, ir::Value*> names;
  // Tensor → name of the node producing it, to tell a read of a tensor produced further
  // down (a cycle, or an unsorted graph) from a dangling input.
  std::unordered_map<std::string, std::string> producers;
};

class Importer {
 public:
  Importer(std::string base_dir, const ImportOptions& opts) : base_dir_(std::move(base_dir)), opts_(opts) {}

  Result<std::unique_ptr<ir::Graph>> run(const onnx::ModelProto& m) {
    if (m.ir_version() < kMinIrVersion || m.ir_version() > kMaxIrVersion)
      return bad(ErrorCode::kOnnxIrVersion,
                 "model has ONNX IR version " + std::to_string(m.ir_version()) + ", kiln reads " +
                     std::to_string(kMinIrVersion) + " to " + std::to_string(kMaxIrVersion),
                 m.ir_version() > kMaxIrVersion ? "export with an older onnx / exporter version"
                                                : "re-export the model with a recent exporter");
    if (!m.has_graph())
      return bad(ErrorCode::kOnnxMalformed, "model has no graph", "the file is not an ONNX model");
    auto g = std::make_unique<ir::Graph>();
    if (m.opset_import_size() == 0) g->opset_imports[""] = 1;  // IR v3 default
    for (const auto& op : m.opset_import()) {
      std::string domain = op.domain() == "ai.onnx" ? "" : op.domain();
      g->opset_imports[domain] = static_cast<int>(op.version());
    }
    int opset = g->opset_imports.count("") ? g->opset_imports[""] : 0;
    const int max_opset = onnx_max_known_opset();
    if (opset < kMinOpset || opset > max_opset)
      diag(bad(ErrorCode::kOnnxOpsetUnsupported,
               "model imports default-domain opset " + std::to_string(opset) + "; kiln supports " +
                   std::to_string(kMinOpset) + " to " + std::to_string(max_opset),
               "convert it: onnx.version_converter.convert_version(model, 17)"));
    opsets_ = g->opset_imports;
    Scope scope{g.get(), nullptr, nullptr, {}};
    import_graph(m.graph(), scope);
    // Op support is checked even when the structure has problems: one run reports all.
    if (opts_.check_ops) {
      std::vector<Status> op_diags;
      (void)resolve_schemas(*g, &op_diags);
      for (auto& d : op_diags) diag(d);
    }
    if (!diags_.empty()) return diags_.front();
    return g;
  }

  std::vector<Status> diags_;

 private:
  void diag(Status s) { diags_.push_back(std::move(s)); }

  ir::Value* lookup(Scope& s, const std::string& name) {
    auto it = s.names.find(name);
    if (it != s.names.end()) return it->second;
    if (!s.parent) return nullptr;
    ir::Value* outer = lookup(*s.parent, name);
    if (!outer) return nullptr;
    // Capture: a local stand-in for the outer value, and an implicit input of the owner.
    ir::Value* c = s.graph->add_value(name, outer->dtype, outer->shape);
    s.graph->captures.push_back(c);
    s.names[name] = c;
    auto& imp = s.owner->implicit_inputs;
    if (std::find(imp.begin(), imp.end(), outer) == imp.end()) imp.push_back(outer);
    return c;
  }

  bool define(Scope& s, const std::string& name, ir::Value* v, const ErrorLocation& loc) {
    if (s.names.count(name)) {
      diag(bad(ErrorCode::kOnnxDuplicateName, "tensor '" + name + "' is defined more than once",
               "ONNX graphs are in SSA form: rename one of the definitions", loc));
      return false;
    }
    s.names[name] = v;
    return true;
  }

  void import_graph(const onnx::GraphProto& gp, Scope& scope) {
    ir::Graph& g = *scope.graph;
    g.name = gp.name();
    // Initializers first: in IR < 4 they also appear in graph.input; such inputs are constants.
    std::unordered_set<std::string> init_names;
    for (const auto& t : gp.initializer()) {
      auto r = tensor_from_proto(t, base_dir_);
      if (!r.is_ok()) { diag(r.status().with_context("initializer '" + t.name() + "'")); continue; }
      ir::Value* v = g.add_constant(t.name(), std::move(r).value());
      init_names.insert(t.name());
      define(scope, t.name(), v, {});
    }
    for (const auto& sp : gp.sparse_initializer())
      diag(bad(ErrorCode::kOnnxBadTensor, "sparse initializer '" + sp.values().name() + "' is not supported",
               "densify it with onnx.numpy_helper before building"));
    for (const auto& in : gp.input()) {
      if (init_names.count(in.name())) continue;
      if (!in.type().has_tensor_type()) {
        diag(bad(ErrorCode::kOnnxUnsupportedType,
                 "graph input '" + in.name() + "' is not a tensor (sequence/map/optional types are not supported)",
                 "export the model with tensor inputs only"));
      }
      DataType dt = from_onnx_dtype(in.type().tensor_type().elem_type());
      if (in.type().has_tensor_type() && dt == DataType::kUndefined)
        diag(bad(ErrorCode::kOnnxUnsupportedType,
                 "graph input '" + in.name() + "' has unsupported element type " +
                     onnx_dtype_name(in.type().tensor_type().elem_type()),
                 "kiln supports float, integer and bool tensors"));
      ir::Value* v = g.add_value(in.name(), dt, shape_from_type(in.type()));
      if (define(scope, in.name(), v, {})) g.inputs.push_back(v);
    }
    for (const auto& np : gp.node())
      for (const auto& out : np.output())
        if (!out.empty()) scope.producers.emplace(out, node_name(np));
    for (const auto& np : gp.node()) import_node(np, scope);
    for (const auto& out : gp.output()) {
      ir::Value* v = lookup(scope, out.name());
      if (!v) {
        diag(bad(ErrorCode::kOnnxUndefinedInput, "graph output '" + out.name() + "' is not produced by any node",
                 "the exporter dropped the node producing it"));
        continue;
      }
      if (v->dtype == DataType::kUndefined) v->dtype = from_onnx_dtype(out.type().tensor_type().elem_type());
      if (!v->shape.rank_known) v->shape = shape_from_type(out.type());
      g.outputs.push_back(v);
    }
    // No topo_sort: a read of a tensor produced further down is already reported (E1006),
    // so an error-free graph is in the order it was read.
  }

  void import_node(const onnx::NodeProto& np, Scope& scope) {
    ir::Graph& g = *scope.graph;
    std::string domain = np.domain() == "ai.onnx" ? "" : np.domain();
    int opset = opsets_.count(domain) ? opsets_[domain] : 0;
    std::string name = node_name(np);
    ErrorLocation loc{name, np.op_type(), opset, {}};
    if (!opsets_.count(domain))
      diag(bad(ErrorCode::kOnnxOpsetUnsupported, "domain '" + domain + "' is not imported by the model",
               "add it to the model's opset_import", loc));

    if (np.op_type() == "Constant" && domain.empty()) { import_constant(np, scope, loc); return; }

    std::vector<ir::Value*> inputs;
    bool ok = true;
    for (int i = 0; i < np.input_size(); ++i) {
      const std::string& in = np.input(i);
      if (in.empty()) { inputs.push_back(nullptr); continue; }
      ir::Value* v = lookup(scope, in);
      if (!v) {
        ErrorLocation l = loc;
        l.detail = "input " + std::to_string(i) + " '" + in + "'";
        auto later = scope.producers.find(in);
        if (later != scope.producers.end())
          diag(bad(ErrorCode::kOnnxGraphCycle,
                   "input '" + in + "' is produced by node '" + later->second +
                       "', which comes after this node: the graph has a cycle or is not topologically sorted",
                   "ONNX requires nodes in topological order; re-export the model", l));
        else
          diag(bad(ErrorCode::kOnnxUndefinedInput,
                   "input '" + in + "' is not produced by any node, graph input or initializer",
                   "the model is incomplete: re-export it, or add the missing initializer", l));
        ok = false;
        v = g.add_value(g.unique_name(in));  // keep going to find further problems
      }
      inputs.push_back(v);
    }
    std::vector<ir::Value*> outputs;
    for (const auto& out : np.output()) {
      if (out.empty()) { outputs.push_back(nullptr); continue; }
      ir::Value* v = g.add_value(out);
      ok &= define(scope, out, v, loc);
      outputs.push_back(v);
    }
    ir::Node* n = g.add_node(np.op_type(), name, std::move(inputs), std::move(outputs), domain, opset);
    for (const auto& ap : np.attribute()) {
      auto a = import_attribute(ap, scope, n, loc);
      if (a) n->attrs[ap.name()] = std::move(*a);
    }
    (void)ok;
  }

  void import_constant(const onnx::NodeProto& np, Scope& scope, const ErrorLocation& loc) {
    if (np.output_size() != 1 || np.attribute_size() != 1) {
      diag(bad(ErrorCode::kOnnxBadAttribute, "Constant needs exactly one output and one value attribute",
               "re-export the model", loc));
      return;
    }
    const auto& a = np.attribute(0);
    HostTensor t;
    if (a.name() == "value") {
      auto r = tensor_from_proto(a.t(), base_dir_);
      if (!r.is_ok()) { diag(r.status().at(loc)); return; }
      t = std::move(r).value();
    } else if (a.name() == "value_float") {
      t = HostTensor::from_vector<float>(DataType::kF32, {}, {a.f()});
    } else if (a.name() == "value_floats") {
      std::vector<float> v(a.floats().begin(), a.floats().end());
      t = HostTensor::from_vector<float>(DataType::kF32, {static_cast<int64_t>(v.size())}, v);
    } else if (a.name() == "value_int") {
      t = HostTensor::from_vector<int64_t>(DataType::kI64, {}, {a.i()});
    } else if (a.name() == "value_ints") {
      std::vector<int64_t> v(a.ints().begin(), a.ints().end());
      t = HostTensor::from_vector<int64_t>(DataType::kI64, {static_cast<int64_t>(v.size())}, v);
    } else {
      ErrorLocation l = loc;
      l.detail = "attribute '" + a.name() + "'";
      diag(bad(ErrorCode::kOnnxUnsupportedType, "Constant with attribute " + a.name() + " is not supported",
               "only numeric tensor constants are supported", l));
      return;
    }
    ir::Value* v = scope.graph->add_constant(np.output(0), std::move(t));
    define(scope, np.output(0), v, loc);
  }

  std::optional<ir::Attribute> import_attribute(const onnx::AttributeProto& ap, Scope& scope,
                                                ir::Node* owner, const ErrorLocation& loc) {
    using K = ir::Attribute::Kind;
    ir::Attribute a;
    ErrorLocation l = loc;
    l.detail = "attribute '" + ap.name() + "'";
    auto import_sub = [&](const onnx::GraphProto& gp) {
      auto sg = std::make_shared<ir::Graph>();
      Scope sub{sg.get(), &scope, owner, {}};
      import_graph(gp, sub);
      return sg;
    };
    switch (ap.type()) {
      case onnx::AttributeProto::FLOAT: a.kind = K::kFloat; a.f = ap.f(); break;
      case onnx::AttributeProto::INT: a.kind = K::kInt; a.i = ap.i(); break;
      case onnx::AttributeProto::STRING: a.kind = K::kString; a.s = ap.s(); break;
      case onnx::AttributeProto::FLOATS: a.kind = K::kFloats; a.floats.assign(ap.floats().begin(), ap.floats().end()); break;
      case onnx::AttributeProto::INTS: a.kind = K::kInts; a.ints.assign(ap.ints().begin(), ap.ints().end()); break;
      case onnx::AttributeProto::STRINGS: a.kind = K::kStrings; a.strings.assign(ap.strings().begin(), ap.strings().end()); break;
      case onnx::AttributeProto::TENSOR: {
        auto r = tensor_from_proto(ap.t(), base_dir_);
        if (!r.is_ok()) { diag(r.status().at(l)); return std::nullopt; }
        a.kind = K::kTensor;
        a.t = std::move(r).value();
        break;
      }
      case onnx::AttributeProto::TENSORS:
        a.kind = K::kTensors;
        for (const auto& t : ap.tensors()) {
          auto r = tensor_from_proto(t, base_dir_);
          if (!r.is_ok()) { diag(r.status().at(l)); return std::nullopt; }
          a.tensors.push_back(std::move(r).value());
        }
        break;
      case onnx::AttributeProto::GRAPH: a.kind = K::kGraph; a.g = import_sub(ap.g()); break;
      case onnx::AttributeProto::GRAPHS:
        a.kind = K::kGraphs;
        for (const auto& gp : ap.graphs()) a.graphs.push_back(import_sub(gp));
        break;
      default:
        diag(bad(ErrorCode::kOnnxUnsupportedType,
                 "attribute type " + std::to_string(static_cast<int>(ap.type())) + " is not supported",
                 "sparse tensors and type protos are not supported in attributes", l));
        return std::nullopt;
    }
    return a;
  }

  std::string base_dir_;
  ImportOptions opts_;
  std::map<std::string, int> opsets_;
};

// Reads `n` elements of a repeated field into a tensor of dtype `dt`.
template <typename Field, typename Conv>
void fill(HostTensor& t, const Field& f, Conv conv) {
  for (int64_t i = 0; i < t.numel(); ++i) conv(t, i, f.Get(static_cast<int>(i)));
}

}  // namespace

DataType from_onnx_dtype(int code) {
  switch (code) {
    case onnx::TensorProto::FLOAT: return DataType::kF32;
    case onnx::TensorProto::UINT8: return DataType::kU8;
    case onnx::TensorProto::INT8: return DataType::kI8;
    case onnx::TensorProto::UINT16: return DataType::kU16;
    case onnx::TensorProto::INT16: return DataType::kI16;
    case onnx::TensorProto::INT32: return DataType::kI32;
    case onnx::TensorProto::INT64: return DataType::kI64;
    case onnx::TensorProto::BOOL: return DataType::kBool;
    case onnx::TensorProto::FLOAT16: return DataType::kF16;
    case onnx::TensorProto::DOUBLE: return DataType::kF64;
    case onnx::TensorProto::UINT32: return DataType::kU32;
    case onnx::TensorProto::UINT64: return DataType::kU64;
    case onnx::TensorProto::BFLOAT16: return DataType::kBF16;
    case onnx::TensorProto::FLOAT8E4M3FN: return DataType::kF8E4M3;
    default: return DataType::kUndefined;
  }
}

int to_onnx_dtype(DataType t) {
  switch (t) {
    case DataType::kF32: return onnx::TensorProto::FLOAT;
    case DataType::kU8: return onnx::TensorProto::UINT8;
    case DataType::kI8: return onnx::TensorProto::INT8;
    case DataType::kU16: return onnx::TensorProto::UINT16;
    case DataType::kI16: return onnx::TensorProto::INT16;
    case DataType::kI32: return onnx::TensorProto::INT32;
    case DataType::kI64: return onnx::TensorProto::INT64;
    case DataType::kBool: return onnx::TensorProto::BOOL;
    case DataType::kF16: return onnx::TensorProto::FLOAT16;
    case DataType::kF64: return onnx::TensorProto::DOUBLE;
    case DataType::kU32: return onnx::TensorProto::UINT32;
    case DataType::kU64: return onnx::TensorProto::UINT64;
    case DataType::kBF16: return onnx::TensorProto::BFLOAT16;
    case DataType::kF8E4M3: return onnx::TensorProto::FLOAT8E4M3FN;
    case DataType::kUndefined: break;
  }
  return onnx::TensorProto::UNDEFINED;
}

std::string onnx_dtype_name(int code) {
  if (onnx::TensorProto::DataType_IsValid(code))
    return onnx::TensorProto::DataType_Name(static_cast<onnx::TensorProto::DataType>(code));
  return "type " + std::to_string(code);
}

Result<HostTensor> tensor_from_proto(const onnx::TensorProto& tp, const std::string& base_dir) {
  DataType dt = from_onnx_dtype(tp.data_type());
  if (dt == DataType::kUndefined)
    return bad(ErrorCode::kOnnxUnsupportedType,
               "tensor '" + tp.name() + "' has unsupported element type " + onnx_dtype_name(tp.data_type()),
               "kiln supports float, integer and bool tensors");
  std::vector<int64_t> dims(tp.dims().begin(), tp.dims().end());
  for (auto d : dims)
    if (d < 0) return bad(ErrorCode::kOnnxBadTensor, "tensor '" + tp.name() + "' has a negative dimension", "re-export the model");
  HostTensor t(dt, dims);
  const size_t want = t.bytes();
  auto size_error = [&](size_t got) {
    return bad(ErrorCode::kOnnxBadTensor,
               "tensor '" + tp.name() + "' of shape " + dims_to_string(dims) + " (" + dtype_name(dt) +
                   ") needs " + std::to_string(want) + " bytes of data, found " + std::to_string(got),
               "the file is corrupt or was written by a buggy exporter");
  };
  if (tp.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& kv : tp.external_data()) {
      if (kv.key() == "location") location = kv.value();
      else if (kv.key() == "offset") offset = std::stoll(kv.value());
      else if (kv.key() == "length") length = std::stoll(kv.value());
    }
    if (location.empty() || base_dir.empty() || location.find("..") != std::string::npos)
      return bad(ErrorCode::kOnnxExternalData,
                 "tensor '" + tp.name() + "' refers to external data '" + location + "' that cannot be resolved",
                 "keep the external data file next to the model, with a relative path");
    std::string path = base_dir + "/" + location;
    std::ifstream f(path, std::ios::binary);
    if (!f)
      return bad(ErrorCode::kOnnxExternalData, "external data file '" + path + "' for tensor '" + tp.name() + "' cannot be opened",
                 "copy the data file next to the .onnx file");
    f.seekg(0, std::ios::end);
    int64_t fsize = f.tellg();
    if (length < 0) length = fsize - offset;
    if (offset < 0 || offset + length > fsize)
      return bad(ErrorCode::kOnnxExternalData,
                 "external data file '" + path + "' is too short for tensor '" + tp.name() + "'",
                 "the data file is truncated; copy it again");
    if (static_cast<size_t>(length) != want) return size_error(length);
    f.seekg(offset);
    f.read(static_cast<char*>(t.raw()), length);
    return t;
  }
  if (tp.has_raw_data()) {
    if (tp.raw_data().size() != want) return size_error(tp.raw_data().size());
    std::memcpy(t.raw(), tp.raw_data().data(), want);
    return t;
  }
  auto check = [&](int n) -> Status {
    if (n != t.numel()) return size_error(static_cast<size_t>(n) * dtype_size(dt));
    return Status::ok();
  };
  switch (dt) {
    case DataType::kF32:
      KILN_RETURN_IF_ERROR(check(tp.float_data_size()));
      std::memcpy(t.raw(), tp.float_data().data(), want);
      break;
    case DataType::kF64:
      KILN_RETURN_IF_ERROR(check(tp.double_data_size()));
      std::memcpy(t.raw(), tp.double_data().data(), want);
      break;
    case DataType::kI64:
      KILN_RETURN_IF_ERROR(check(tp.int64_data_size()));
      std::memcpy(t.raw(), tp.int64_data().data(), want);
      break;
    case DataType::kU32: case DataType::kU64:
      KILN_RETURN_IF_ERROR(check(tp.uint64_data_size()));
      fill(t, tp.uint64_data(), [](HostTensor& x, int64_t i, uint64_t v) { x.set_i64(i, static_cast<int64_t>(v)); });
      break;
    case DataType::kF16: case DataType::kBF16: case DataType::kF8E4M3:
      // Stored as raw bit patterns in int32_data.
      KILN_RETURN_IF_ERROR(check(tp.int32_data_size()));
      for (int64_t i = 0; i < t.numel(); ++i) {
        uint32_t bits = static_cast<uint32_t>(tp.int32_data(static_cast<int>(i)));
        if (dt == DataType::kF8E4M3) t.data<uint8_t>()[i] = static_cast<uint8_t>(bits);
        else t.data<uint16_t>()[i] = static_cast<uint16_t>(bits);
      }
      break;
    default:  // int32, int16, int8, uint16, uint8, bool: int32_data
      KILN_RETURN_IF_ERROR(check(tp.int32_data_size()));
      fill(t, tp.int32_data(), [](HostTensor& x, int64_t i, int32_t v) { x.set_i64(i, v); });
      break;
  }
  return t;
}

Result<HostTensor> read_tensor_pb(const std::string& path, std::string* name) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return bad(ErrorCode::kIoError, "cannot open '" + path + "'", "check the path");
  std::stringstream ss;
  ss << f.rdbuf();
  onnx::TensorProto tp;
  if (!tp.ParseFromString(ss.str()))
    return bad(ErrorCode::kOnnxMalformed, "'" + path + "' is not a serialized TensorProto", "");
  if (name) *name = tp.name();
  return tensor_from_proto(tp, dir_of(path));
}

Result<std::unique_ptr<ir::Graph>> import_bytes(const void* data, size_t size, const std::string& base_dir,
                                                std::vector<Status>* diags, const ImportOptions& opts) {
  onnx::ModelProto m;
  if (size == 0 || size > static_cast<size_t>(INT32_MAX) || !m.ParseFromArray(data, static_cast<int>(size))) {
    Status st = bad(ErrorCode::kOnnxMalformed,
                    "the file (" + std::to_string(size) + " bytes) is not a valid ONNX protobuf: it is truncated, "
                    "corrupted, or not an ONNX model",
                    size > static_cast<size_t>(INT32_MAX)
                        ? "models over 2 GiB must store weights as external data"
                        : "re-export the model and check the copy is complete");
    if (diags) diags->push_back(st);
    return st;
  }
  Importer imp(base_dir, opts);
  auto r = imp.run(m);
  if (diags) diags->insert(diags->end(), imp.diags_.begin(), imp.diags_.end());
  if (r.is_ok() == false && diags && imp.diags_.empty()) diags->push_back(r.status());
  return r;
}

Result<std::unique_ptr<ir::Graph>> import_file(const std::string& path, std::vector<Status>* diags,
                                               const ImportOptions& opts) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    Status st = bad(ErrorCode::kIoError, "cannot open model file '" + path + "'", "check the path");
    if (diags) diags->push_back(st);
    return st;
  }
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return import_bytes(bytes.data(), bytes.size(), dir_of(path), diags, opts);
}

}  // namespace kiln::onnx_import
