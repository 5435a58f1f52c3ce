// fold_batchnorm_into_conv (level 1)
//
// Pattern: Conv or ConvTranspose (any opset, any group) with a constant weight and an
// omitted or constant bias, whose output is read only by an inference-mode
// BatchNormalization with constant scale, B, mean and var of one value per channel.
//
// Legality: inference BatchNormalization is the per-channel affine map
//   y = (x - mean) * s + beta,  s = gamma / sqrt(var + epsilon)   (ONNX BatchNormalization)
// and a convolution is linear per output channel, so
//   BN(Conv(x, W, b)) = Conv(x, W * s, (b - mean) * s + beta)
// with W scaled along its output-channel slices ([M, C/g, k...] for Conv; for
// ConvTranspose [C, M/g, k...], where output channel = group * M/g + j). The Conv output
// must have no other reader (it disappears) and no pinned name; BatchNormalization must be
// in inference mode (is_test before opset 7, spatial=1 in opsets 7-8, training_mode=0 from
// opset 14) with its running-statistics outputs unused. Arithmetic is done in double and
// rounded once to the weight dtype, so f16/f64 weights keep their precision.
//
// Rewrite: the Conv gets new constant W' and b' and writes BatchNormalization's output
// (which keeps its name); BatchNormalization is removed.
#include <cmath>

#include "passes/pass.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

bool batchnorm_is_inference(const ir::Node& bn, const UseMap& uses, const ir::Graph& g) {
  if (bn.opset < 7 && bn.attr_i("is_test", 0) == 0) return false;
  if (bn.opset < 9 && bn.attr_i("spatial", 1) != 1) return false;
  if (bn.attr_i("training_mode", 0) != 0) return false;
  for (size_t i = 1; i < bn.outputs.size(); ++i)
    if (!is_unused(g, uses, bn.outputs[i])) return false;
  return bn.inputs.size() == 5 && bn.output(0);
}

// The per-channel parameter vector of constant input i, or empty when it is not one.
std::vector<double> channel_param(const ir::Node& bn, size_t i, int64_t channels) {
  const ir::Value* v = bn.input(i);
  if (!v || !v->is_constant() || !dtype_is_float(v->dtype)) return {};
  const HostTensor& t = *v->constant;
  if (t.rank() != 1 || t.numel() != channels) return {};
  std::vector<double> out(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) out[c] = t.get_f64(c);
  return out;
}

bool fold_one(ir::Graph& g, const UseMap& uses, ir::Node* bn) {
  if (!bn->domain.empty() || bn->op_type != "BatchNormalization") return false;
  if (!batchnorm_is_inference(*bn, uses, g)) return false;
  auto cw = conv_feeding_only(g, uses, bn->inputs[0]);
  if (!cw) return false;
  int64_t channels = cw->out_channels;
  std::vector<double> gamma = channel_param(*bn, 1, channels),
                      beta = channel_param(*bn, 2, channels);
  std::vector<double> mean = channel_param(*bn, 3, channels), var = channel_param(*bn, 4, channels);
  if (gamma.empty() || beta.empty() || mean.empty() || var.empty()) return false;
  double eps = bn->attr_f("epsilon", 1e-5f);
  std::vector<double> scale(channels), shift(channels);
  for (int64_t c = 0; c < channels; ++c) {
    double denom = var[c] + eps;
    if (!(denom > 0)) return false;  // negative/NaN variance: keep the original semantics
    scale[c] = gamma[c] / std::sqrt(denom);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  fold_affine_consumer(g, *cw, bn, scale, shift);
  return true;
}

class FoldBatchNormIntoConv : public Pass {
 public:
  const char* name() const override { return "fold_batchnorm_into_conv"; }
  int level() const override { return 1; }

  Status apply(ir::Graph& g, bool& changed) override {
    // Each rewrite touches one Conv/BatchNormalization pair and changes no reader counts
    // of other candidates, so one use map serves the whole sweep.
    changed |= rewrite_each_node(g, fold_one);
    return Status::ok();
  }
};

}  // namespace

KILN_REGISTER_PASS(FoldBatchNormIntoConv, 400);

}  // namespace kiln::passes
