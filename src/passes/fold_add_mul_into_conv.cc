// fold_add_mul_into_conv (level 1)
//
// Pattern: Conv or ConvTranspose with a constant weight and an omitted or constant bias,
// whose output is read only by an Add, Sub, Mul or Div whose other operand is a constant
// holding one value per output channel, or one value in all: shapes [C,1,1], [1,C,1,1],
// [1], scalar, ... (anything that broadcasts along axis 1 only, without raising the rank).
//
// Legality: a convolution is linear per output channel c:
//   Conv(x, W, b)[c] + k[c] = Conv(x, W, b + k)[c]           (Add; Sub with -k)
//   Conv(x, W, b)[c] * k[c] = Conv(x, W * k[c], b * k[c])[c]  (Mul; Div with 1/k)
// Only conv-first operand order for Sub and Div (k - conv, k / conv are not affine in the
// same way). Division needs k != 0 everywhere. The Conv output must have no other reader
// and no pinned name; the elementwise output must keep the Conv's dtype and shape, which
// per_channel_values guarantees by refusing constants that would broadcast it larger.
// Arithmetic is in double, rounded once to the weight dtype.
//
// Rewrite: the Conv gets new constant W' (Mul/Div only) and b', and writes the elementwise
// node's output (which keeps its name); the elementwise node is removed. Chains
// (Conv→Mul→Add, as left by exporters for "scale and shift") fold one link per sweep.
#include <string_view>

#include "passes/pass.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

// How an elementwise op with per-channel constant k maps to (scale, shift) of the conv.
struct Rule {
  std::string_view op_type;
  bool commutative;  ///< the constant may be either operand
  bool (*affine)(const std::vector<double>& k, std::vector<double>& scale,
                 std::vector<double>& shift);
};

constexpr Rule kRules[] = {
    {"Add", true,
     [](const std::vector<double>& k, std::vector<double>&, std::vector<double>& shift) {
       shift = k;
       return true;
     }},
    {"Sub", false,
     [](const std::vector<double>& k, std::vector<double>&, std::vector<double>& shift) {
       for (double v : k) shift.push_back(-v);
       return true;
     }},
    {"Mul", true,
     [](const std::vector<double>& k, std::vector<double>& scale, std::vector<double>&) {
       scale = k;
       return true;
     }},
    {"Div", false,
     [](const std::vector<double>& k, std::vector<double>& scale, std::vector<double>&) {
       for (double v : k) {
         if (v == 0) return false;
         scale.push_back(1.0 / v);
       }
       return true;
     }},
};

bool fold_one(ir::Graph& g, const UseMap& uses, ir::Node* n) {
  if (!n->domain.empty() || n->inputs.size() != 2 || n->outputs.size() != 1 || !n->output(0))
    return false;
  const Rule* rule = nullptr;
  for (const Rule& r : kRules)
    if (r.op_type == n->op_type) rule = &r;
  if (!rule) return false;
  for (int conv_side : {0, 1}) {
    if (conv_side == 1 && !rule->commutative) break;
    ir::Value* x = n->inputs[conv_side];
    ir::Value* k = n->inputs[1 - conv_side];
    if (!x || !k || x == k || !k->is_constant()) continue;
    auto cw = conv_feeding_only(g, uses, x);
    if (!cw || k->dtype != cw->w->dtype() || n->outputs[0]->dtype != cw->w->dtype()) continue;
    auto kv = per_channel_values(*k->constant, cw->w->rank(), cw->out_channels);
    if (!kv) continue;
    std::vector<double> scale, shift;
    if (!rule->affine(*kv, scale, shift)) continue;
    fold_affine_consumer(g, *cw, n, scale, shift);
    return true;
  }
  return false;
}

class FoldAddMulIntoConv : public Pass {
 public:
  const char* name() const override { return "fold_add_mul_into_conv"; }
  int level() const override { return 1; }

  Status apply(ir::Graph& g, bool& changed) override {
    changed |= rewrite_each_node(g, fold_one);
    return Status::ok();
  }
};

}  // namespace

KILN_REGISTER_PASS(FoldAddMulIntoConv, 500);

}  // namespace kiln::passes
