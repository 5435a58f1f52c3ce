#include "builder/precision.h"

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "onnx/importer.h"
#include "ops/fused_pointwise.h"
#include "ops/registry.h"

namespace kiln::builder {
namespace {

// Op → its inputs that carry the op's float type T (-1 = all inputs). Other inputs
// (shapes, axes, indices, scales) keep their own types.
const std::unordered_map<std::string, std::vector<int>>& low_precision_ops() {
  static const std::unordered_map<std::string, std::vector<int>> ops = [] {
    std::unordered_map<std::string, std::vector<int>> m;
    for (const char* op :
         {"Conv", "ConvTranspose", "FusedConv", "FusedPointwise", "MatMul", "Gemm", "FusedMatMul", "Add", "Sub", "Mul", "Div",
          "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip", "Elu", "Selu",
          "Celu", "Gelu", "Erf", "Softplus", "Softsign", "Mish", "Max", "Min", "Sum", "Mean", "Abs", "Neg",
          "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Softmax", "LogSoftmax",
          "LayerNormalization", "InstanceNormalization", "GroupNormalization", "BatchNormalization",
          "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Concat", "Transpose", "Equal",
          "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "ThresholdedRelu", "Shrink"})
      m[op] = {-1};
    for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Slice", "Gather", "GatherElements",
                           "Split", "Tile", "Expand", "Resize", "Upsample", "Identity", "Dropout", "DepthToSpace",
                           "SpaceToDepth", "ReduceMean", "ReduceMax", "ReduceMin", "ArgMax", "ArgMin", "TopK"})
      m[op] = {0};
    m["Pad"] = {0, 2};
    m["Where"] = {1, 2};
    return m;
  }();
  return ops;
}

// A FusedPointwise node runs in 16 bits when every op it fused is listed (its kernel
// computes in f32 whatever its I/O dtype, so 16-bit storage is then never less accurate than
// the unfused 16-bit ops). One that fused an op that stays f32 (Exp, Log, Pow, Cast...)
// keeps f32 I/O, as the unfused region around that op would have had.
bool fused_pointwise_runs_low(const ir::Node& n,
                              const std::unordered_map<std::string, std::vector<int>>& table) {
  auto p = ops::read_pw_program(n, n.inputs.size());
  if (!p.is_ok()) return false;
  for (const ops::PwInstr& ins : p->code) {
    const char* onnx = ops::pw_op_info(ins.op).onnx;
    if (*onnx && !table.count(onnx)) return false;
  }
  return true;
}

bool is_fused_pointwise(const ir::Node& n) {
  return n.domain == ops::kFusedPointwiseDomain && n.op_type == ops::kFusedPointwiseOp;
}

/// An upsampling op whose every output is a graph output (or a subgraph capture) and is
/// larger than its input: it runs in f32, after the Cast back from 16 bits, so that the Cast
/// converts its small input instead of its large output (DeepLabV3's final bilinear
/// Resize: one f32 write of the output instead of an f16 write, a read and an f32 write).
/// f32 arithmetic on the 16-bit values is also no less accurate. Needs static dims (the
/// opt dims of a dynamic build); other nodes are left to the table.
bool upsamples_into_output(const ir::Graph& g, const ir::Node& n,
                           const std::unordered_set<const ir::Value*>& implicit) {
  static const std::unordered_set<std::string> kUpsampling = {"Resize", "Upsample", "Tile",
                                                               "Expand", "DepthToSpace"};
  if (!n.domain.empty() || !kUpsampling.count(n.op_type) || n.inputs.empty() || !n.inputs[0])
    return false;
  const int64_t in = n.inputs[0]->shape.numel();
  if (in < 0) return false;
  for (const ir::Value* v : n.outputs) {
    if (!v || !(g.is_output(v) || implicit.count(v))) return false;
    const int64_t out = v->shape.numel();
    if (out <= in) return false;
  }
  return true;
}

bool is_t_input(const std::vector<int>& slots, size_t k) {
  for (int s : slots)
    if (s == -1 || s == static_cast<int>(k)) return true;
  return false;
}

}  // namespace

Status lower_precision(ir::Graph& g, DataType to) {
  const auto& table = low_precision_ops();
  const int opset = g.opset_imports.count("") ? g.opset_imports.at("") : 17;
  std::unordered_set<const ir::Value*> implicit;  // read by subgraphs: must keep f32
  for (const auto& n : g.nodes())
    for (auto* v : n->implicit_inputs) implicit.insert(v);

  // 1. Which nodes run in 16 bits: listed ops whose T inputs and float outputs are f32.
  std::unordered_set<const ir::Node*> low;
  for (const auto& n : g.nodes()) {
    auto it = table.find(n->op_type);
    if (it == table.end() || (!n->domain.empty() && n->domain != "kiln")) continue;
    if (is_fused_pointwise(*n) && !fused_pointwise_runs_low(*n, table)) continue;
    bool any_f32 = false, ok = true;
    for (size_t k = 0; k < n->inputs.size(); ++k) {
      const ir::Value* v = n->inputs[k];
      if (!v || !is_t_input(it->second, k) || !dtype_is_float(v->dtype)) continue;
      any_f32 |= v->dtype == DataType::kF32;
      ok &= v->dtype == DataType::kF32;
    }
    for (const ir::Value* v : n->outputs)
      if (v && dtype_is_float(v->dtype)) ok &= v->dtype == DataType::kF32;
    if (ok && any_f32 && !upsamples_into_output(g, *n, implicit)) low.insert(n.get());
  }

  auto make_cast = [&](ir::Value* src, DataType dt, ir::Value* dst) {
    ir::Node* c = g.add_node("Cast", g.unique_name(src->name + "_cast_" + dtype_name(dt)), {src}, {dst}, "", opset);
    c->attrs["to"] = ir::Attribute::from_int(onnx_import::to_onnx_dtype(dt));
  };

  // 2. Outputs of 16-bit nodes become 16-bit; graph outputs and subgraph captures get a
  //    Cast back to f32 under their original name.
  std::vector<ir::Node*> low_nodes;
  for (const auto& n : g.nodes())
    if (low.count(n.get())) low_nodes.push_back(n.get());
  std::unordered_set<const ir::Value*> lowered;
  for (ir::Node* n : low_nodes) {
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      ir::Value* v = n->outputs[i];
      if (!v || v->dtype != DataType::kF32) continue;
      if (g.is_output(v) || implicit.count(v)) {
        ir::Value* v16 = g.add_value(g.unique_name(v->name + "_" + dtype_name(to)), to, v->shape);
        n->outputs[i] = v16;
        v16->producer = n;
        v16->producer_output = static_cast<int>(i);
        lowered.insert(v16);
        make_cast(v16, DataType::kF32, v);  // sets v->producer to the cast
        continue;
      }
      v->dtype = to;
      lowered.insert(v);
    }
    if (is_fused_pointwise(*n))  // its output dtype is an attribute
      n->attrs["to"] = ir::Attribute::from_int(onnx_import::to_onnx_dtype(to));
  }

  // 3. Fix every edge whose producer and consumer disagree.
  std::unordered_map<const ir::Value*, ir::Value*> to_low, to_f32;
  std::vector<ir::Node*> all;
  for (const auto& n : g.nodes()) all.push_back(n.get());
  for (ir::Node* n : all) {
    auto it = low.count(n) ? table.find(n->op_type) : table.end();
    for (size_t k = 0; k < n->inputs.size(); ++k) {
      ir::Value* v = n->inputs[k];
      if (!v) continue;
      const bool wants_low = it != table.end() && is_t_input(it->second, k) && dtype_is_float(v->dtype);
      if (wants_low && v->dtype == DataType::kF32) {
        auto& conv = to_low[v];
        if (!conv) {
          if (v->constant) {
            conv = g.add_constant(g.unique_name(v->name + "_" + dtype_name(to)), v->constant->cast(to));
          } else {
            conv = g.add_value(g.unique_name(v->name + "_" + dtype_name(to)), to, v->shape);
            make_cast(v, to, conv);
          }
        }
        n->inputs[k] = conv;
      } else if (!wants_low && lowered.count(v) && n->op_type != "Cast") {
        auto& conv = to_f32[v];
        if (!conv) {
          conv = g.add_value(g.unique_name(v->name + "_f32"), DataType::kF32, v->shape);
          make_cast(v, DataType::kF32, conv);
        }
        n->inputs[k] = conv;
      }
    }
  }
  g.remove_unused_values();
  KILN_RETURN_IF_ERROR(g.topo_sort());
  KILN_RETURN_IF_ERROR(resolve_schemas(g));
  return infer_graph(g);
}

}  // namespace kiln::builder
