// Conv, ConvTranspose and kiln.FusedConv on cuDNN 9 through the cudnn_frontend v1 graph API
// (ONNX Operators.md: Conv, ConvTranspose; FusedConv: src/ops/fused_conv.h).
//
// Every factory call builds one cudnn_frontend graph for the node's static shapes on the
// context's cuDNN handle: heuristics (modes A, then FALLBACK), engines filtered by
// numerical notes, the first buildable plan kept with its workspace size. ConvTranspose is
// the data gradient of the convolution whose weights it takes as they are: ONNX's
// [C_in, C_out/group, k...] is cuDNN's dgrad filter [K, C/group, k...] with K = C_in.
// Grouped and depthwise convolutions are expressed by the tensor dims alone (cuDNN takes
// the group count from X's channels over W's dim 1); 1-D convolutions become 2-D with a
// unit height; 3-D ones are native.
//
// Epilogue (Conv's bias; FusedConv's bias, residual Z and activation): first tried as
// pointwise nodes after the convolution in the same graph, which cuDNN's runtime-fusion
// engines compile into the convolution kernel (typically f16/bf16 channels-last). When no
// engine takes the fused graph, the convolution runs alone and conv_epilogue.cu applies the
// epilogue in one pass over Y.
//
// Precision: f32, f16 and bf16 tensors, always with f32 accumulation (engines noted
// REDUCED_PRECISION_REDUCTION or DOWN_CONVERT_INPUTS are excluded). Strict f32 (TF32 off)
// also excludes tensor-core (TF32), FFT and Winograd engines, whose rounding is visibly
// different from the CPU reference. f64 and anything cuDNN has no engine for return
// NoGpuKernel with cuDNN's message, and the node runs on the host.
#define CUDNN_FRONTEND_SKIP_JSON_LIB  // kiln has its own nlohmann::json; keep theirs out
#include <cudnn_frontend.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/cudnn_conv.h"
#include "cuda/kernel.h"
#include "cuda/kernels/common.cuh"
#include "ops/conv.h"
#include "ops/fused_conv.h"
#include "ops/window.h"

namespace kiln::cuda {
namespace {

namespace fe = cudnn_frontend;
using TensorPtr = std::shared_ptr<fe::graph::Tensor_attributes>;

enum class ConvKind { kConv, kTranspose, kFused };

/// The convolution in cuDNN's terms, derived once on the host. Dims are logical
/// (N, C, spatial...) with 1-D convolutions already widened to 2-D; strides follow each
/// operand's layout. For ConvTranspose, x is cuDNN's dY and y its dX.
struct ConvSpec {
  ConvKind kind = ConvKind::kConv;
  DataType dt = DataType::kF32;
  std::vector<int64_t> x_dims, x_strides, w_dims, w_strides, y_dims, y_strides, z_strides;
  std::vector<int64_t> pre, post, stride, dilation;
  bool bias = false;
  bool residual = false;
  Layout y_layout = Layout::kRowMajor, z_layout = Layout::kRowMajor;
  ops::FusedEpilogue act;
  bool allow_tf32 = true;

  bool has_epilogue() const { return bias || residual || act.act != ops::FusedActivation::kNone; }
};

/// Element strides of logical dims [N, C, spatial...] stored in `layout`.
std::vector<int64_t> strides_for(const std::vector<int64_t>& d, Layout layout) {
  if (layout == Layout::kRowMajor) return row_major_strides(d);
  std::vector<int64_t> s(d.size(), 1);  // channels last: N, spatial..., C
  int64_t acc = d[1];
  for (size_t i = d.size(); i-- > 2;) {
    s[i] = acc;
    acc *= d[i];
  }
  s[0] = acc;
  return s;
}

/// [N, C, L] → [N, C, 1, L]: cuDNN convolves 2-D and 3-D images only.
std::vector<int64_t> widen(std::vector<int64_t> d) {
  if (d.size() == 3) d.insert(d.begin() + 2, 1);
  return d;
}

/// Post padding that makes cuDNN's output size floor((in + pre + post - eff) / s) + 1 equal
/// `out` (the size shape inference found): `preferred` (ONNX's end padding) when it does,
/// else the smallest non-negative value that does. Padding past the last window changes
/// no output, so any fitting value computes the same result.
std::optional<int64_t> fit_post_padding(int64_t in, int64_t out, int64_t pre, int64_t preferred,
                                        int64_t eff, int64_t stride) {
  auto fits = [&](int64_t post) {
    const int64_t span = in + pre + post - eff;
    return post >= 0 && span >= 0 && span / stride + 1 == out;
  };
  if (fits(preferred)) return preferred;
  const int64_t p = std::max<int64_t>(0, (out - 1) * stride + eff - in - pre);
  if (fits(p)) return p;
  return std::nullopt;
}

const char* dtype_tag(DataType dt) {
  return dt == DataType::kF16 ? "f16" : dt == DataType::kBF16 ? "bf16" : "f32";
}

fe::DataType_t fe_type(DataType dt) {
  return dt == DataType::kF16    ? fe::DataType_t::HALF
         : dt == DataType::kBF16 ? fe::DataType_t::BFLOAT16
                                 : fe::DataType_t::FLOAT;
}

std::vector<int64_t> spatial(const std::vector<int64_t>& d) {
  return std::vector<int64_t>(d.begin() + 2, d.end());
}

Result<ConvSpec> make_spec(const KernelConfig& cfg, ConvKind kind) {
  const Operand& x = cfg.in(0);
  const Operand& w = cfg.in(1);
  const Operand& y = cfg.out(0);
  ConvSpec s;
  s.kind = kind;
  s.dt = x.dtype;
  s.allow_tf32 = cfg.precision.allow_tf32;
  if (s.dt != DataType::kF32 && s.dt != DataType::kF16 && s.dt != DataType::kBF16)
    return cfg.unsupported(std::string("dtype ") + dtype_name(s.dt) +
                           " (cuDNN convolutions run f32, f16 and bf16)");
  if (w.dtype != s.dt || y.dtype != s.dt)
    return cfg.unsupported("mixed dtypes of input, weights and output");
  const size_t rank = x.rank();
  if (rank < 3 || rank > 5 || w.rank() != rank || y.rank() != rank)
    return cfg.unsupported("rank " + std::to_string(rank) + " (1-D to 3-D convolutions only)");
  const size_t r = rank - 2;
  const std::vector<int64_t> x_sp = spatial(x.dims), k_sp = spatial(w.dims),
                             y_sp = spatial(y.dims);
  KILN_ASSIGN_OR_RETURN(ops::WindowAttrs wa, ops::read_window_attrs(cfg.node, r, k_sp));
  wa.kernel = k_sp;  // inference checked kernel_shape against the weights
  std::vector<int64_t> pre(r), preferred_post(r, -1);
  // cuDNN's view: a forward window from image `in` to `out` (dgrad runs it backwards).
  std::vector<int64_t> in = x_sp, out = y_sp;
  if (kind == ConvKind::kTranspose) {
    KILN_ASSIGN_OR_RETURN(ops::TransposeDims t, ops::conv_transpose_dims(cfg.node, wa, x_sp));
    pre = t.pad_begin;
    in = y_sp;
    out = x_sp;
    if (wa.auto_pad == ops::AutoPad::kNotSet)
      for (size_t d = 0; d < r; ++d) preferred_post[d] = wa.pads[d + r];
  } else {
    KILN_ASSIGN_OR_RETURN(std::vector<ops::WindowDim> wd, ops::forward_window_dims(wa, x_sp));
    for (size_t d = 0; d < r; ++d) {
      pre[d] = wd[d].pad_begin;
      preferred_post[d] = wd[d].pad_end;
    }
  }
  for (size_t d = 0; d < r; ++d) {
    const int64_t eff = (k_sp[d] - 1) * wa.dilations[d] + 1;
    auto post = fit_post_padding(in[d], out[d], pre[d], preferred_post[d], eff, wa.strides[d]);
    if (!post)
      return cfg.unsupported("spatial dim " + std::to_string(d) +
                             ": no cuDNN padding yields the output size " +
                             std::to_string(y_sp[d]));
    s.pre.push_back(pre[d]);
    s.post.push_back(*post);
    s.stride.push_back(wa.strides[d]);
    s.dilation.push_back(wa.dilations[d]);
  }
  if (r == 1) {  // the unit height of the widened 1-D convolution
    s.pre.insert(s.pre.begin(), 0);
    s.post.insert(s.post.begin(), 0);
    s.stride.insert(s.stride.begin(), 1);
    s.dilation.insert(s.dilation.begin(), 1);
  }
  s.x_dims = widen(x.dims);
  s.w_dims = widen(w.dims);
  s.y_dims = widen(y.dims);
  s.x_strides = strides_for(s.x_dims, x.layout);
  s.w_strides = strides_for(s.w_dims, w.layout);
  s.y_strides = strides_for(s.y_dims, y.layout);
  s.y_layout = y.layout;
  if (cfg.has_input(2)) {
    const Operand& b = cfg.in(2);
    if (b.dtype != s.dt || b.rank() != 1 || b.dims[0] != y.dims[1])
      return cfg.unsupported("bias must be a [" + std::to_string(y.dims[1]) + "] vector of " +
                             dtype_name(s.dt));
    s.bias = true;
  }
  if (kind == ConvKind::kFused) {
    KILN_ASSIGN_OR_RETURN(s.act, ops::read_fused_epilogue(cfg.node));
    if (cfg.has_input(3)) {
      const Operand& z = cfg.in(3);
      if (z.dtype != s.dt || z.dims != y.dims)
        return cfg.unsupported("residual must have the output's dtype and dims");
      s.residual = true;
      s.z_layout = z.layout;
      s.z_strides = strides_for(s.y_dims, z.layout);
    }
  }
  return s;
}

/// A built graph and the uids of its device tensors (-1 = not in the graph).
struct BuiltGraph {
  std::shared_ptr<fe::graph::Graph> graph;
  int64_t uid_x = -1, uid_w = -1, uid_y = -1, uid_b = -1, uid_z = -1;
  int64_t workspace = 0;
  std::string plan;
};

/// Appends `act` to `t` as pointwise nodes (compile-time scalars are pass-by-value tensors
/// broadcast over every dim). Returns the activation's output.
TensorPtr add_activation(fe::graph::Graph& g, TensorPtr t, const ops::FusedEpilogue& act,
                         size_t rank) {
  using fe::PointwiseMode_t;
  using PW = fe::graph::Pointwise_attributes;
  const std::vector<int64_t> ones(rank, 1);
  auto scalar = [&](float v) {
    return g.tensor(fe::graph::Tensor_attributes(v).set_dim(ones).set_stride(ones));
  };
  auto unary = [&](TensorPtr a, PW attrs) { return g.pointwise(a, attrs); };
  auto binary = [&](TensorPtr a, TensorPtr b, PointwiseMode_t m) {
    return g.pointwise(a, b, PW().set_mode(m));
  };
  switch (act.act) {
    case ops::FusedActivation::kNone:
      return t;
    case ops::FusedActivation::kRelu:
      return unary(t, PW().set_mode(PointwiseMode_t::RELU_FWD));
    case ops::FusedActivation::kLeakyRelu:
      return unary(t, PW().set_mode(PointwiseMode_t::RELU_FWD).set_relu_lower_clip_slope(act.p0));
    case ops::FusedActivation::kClip: {
      // max then min, as Clip's min(max(x, lo), hi); an infinite bound clips nothing.
      if (std::isfinite(act.p0)) t = binary(t, scalar(act.p0), PointwiseMode_t::MAX);
      if (std::isfinite(act.p1)) t = binary(t, scalar(act.p1), PointwiseMode_t::MIN);
      return t;
    }
    case ops::FusedActivation::kSigmoid:
      return unary(t, PW().set_mode(PointwiseMode_t::SIGMOID_FWD));
    case ops::FusedActivation::kSiLU:
      return unary(t, PW().set_mode(PointwiseMode_t::SWISH_FWD).set_swish_beta(1.0f));
    case ops::FusedActivation::kHardSwish: {
      TensorPtr h = binary(t, scalar(1.0f / 6.0f), PointwiseMode_t::MUL);
      h = binary(h, scalar(0.5f), PointwiseMode_t::ADD);
      h = binary(h, scalar(1.0f), PointwiseMode_t::MIN);
      h = binary(h, scalar(0.0f), PointwiseMode_t::MAX);
      return binary(t, h, PointwiseMode_t::MUL);
    }
  }
  return t;
}

#define KILN_FE_TRY(expr)                                                       \
  do {                                                                          \
    auto kiln_fe_ = (expr);                                                     \
    if (kiln_fe_.is_bad())                                                      \
      return cfg.unsupported(std::string("cuDNN: ") + kiln_fe_.get_message()); \
  } while (0)

/// Builds the convolution graph, with the epilogue inside it when `fuse`. NoGpuKernel with
/// cuDNN's message when cuDNN cannot build or run it.
Result<BuiltGraph> build_graph(const KernelConfig& cfg, const ConvSpec& s, bool fuse) {
  BuiltGraph b;
  b.graph = std::make_shared<fe::graph::Graph>();
  fe::graph::Graph& g = *b.graph;
  const fe::DataType_t io = fe_type(s.dt);
  g.set_io_data_type(io)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  auto tensor = [&](const char* name, const std::vector<int64_t>& d,
                    const std::vector<int64_t>& st) {
    return g.tensor(
        fe::graph::Tensor_attributes().set_name(name).set_dim(d).set_stride(st).set_data_type(io));
  };
  TensorPtr x = tensor("x", s.x_dims, s.x_strides);
  TensorPtr w = tensor("w", s.w_dims, s.w_strides);
  TensorPtr y;
  if (s.kind == ConvKind::kTranspose) {
    y = g.conv_dgrad(x, w,
                     fe::graph::Conv_dgrad_attributes()
                         .set_name("conv_transpose")
                         .set_pre_padding(s.pre)
                         .set_post_padding(s.post)
                         .set_stride(s.stride)
                         .set_dilation(s.dilation));
  } else {
    y = g.conv_fprop(x, w,
                     fe::graph::Conv_fprop_attributes()
                         .set_name("conv")
                         .set_pre_padding(s.pre)
                         .set_post_padding(s.post)
                         .set_stride(s.stride)
                         .set_dilation(s.dilation));
  }
  y->set_dim(s.y_dims).set_stride(s.y_strides);
  TensorPtr bias, z;
  if (fuse) {
    using PW = fe::graph::Pointwise_attributes;
    if (s.bias) {
      std::vector<int64_t> bd(s.y_dims.size(), 1), bs(s.y_dims.size(), s.y_dims[1]);
      bd[1] = s.y_dims[1];
      bs[1] = 1;
      bias = tensor("bias", bd, bs);
      y = g.pointwise(y, bias, PW().set_mode(fe::PointwiseMode_t::ADD));
    }
    if (s.residual) {
      z = tensor("z", s.y_dims, s.z_strides);
      y = g.pointwise(y, z, PW().set_mode(fe::PointwiseMode_t::ADD));
    }
    y = add_activation(g, y, s.act, s.y_dims.size());
  }
  y->set_output(true).set_dim(s.y_dims).set_stride(s.y_strides).set_data_type(io);

  KILN_FE_TRY(g.validate());
  KILN_FE_TRY(g.build_operation_graph(cfg.res.cudnn));
  KILN_FE_TRY(g.create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}));
  std::vector<fe::NumericalNote_t> barred = {fe::NumericalNote_t::DOWN_CONVERT_INPUTS,
                                             fe::NumericalNote_t::REDUCED_PRECISION_REDUCTION};
  if (s.dt == DataType::kF32 && !s.allow_tf32)
    barred.insert(barred.end(), {fe::NumericalNote_t::TENSOR_CORE, fe::NumericalNote_t::FFT,
                                 fe::NumericalNote_t::WINOGRAD,
                                 fe::NumericalNote_t::WINOGRAD_TILE_4x4,
                                 fe::NumericalNote_t::WINOGRAD_TILE_6x6,
                                 fe::NumericalNote_t::WINOGRAD_TILE_13x13});
  g.deselect_numeric_notes(barred);
  KILN_FE_TRY(g.check_support());
  KILN_FE_TRY(g.build_plans(fe::BuildPlanPolicy_t::HEURISTICS_CHOICE));
  KILN_FE_TRY(g.get_workspace_size(b.workspace));
  KILN_FE_TRY(g.get_plan_name(b.plan));
  b.uid_x = x->get_uid();
  b.uid_w = w->get_uid();
  b.uid_y = y->get_uid();
  if (bias) b.uid_b = bias->get_uid();
  if (z) b.uid_z = z->get_uid();
  return b;
}

#undef KILN_FE_TRY

/// How the epilogue runs when cuDNN could not fuse it: conv_epilogue.cu after the graph.
struct UnfusedEpilogue {
  ConvEpilogueParams params;
  bool bias = false;      ///< add input 2
  bool residual = false;  ///< add input 3
};

/// A convolution on cuDNN, with the epilogue fused into its graph or run after it.
class CudnnConvKernel final : public Kernel {
 public:
  CudnnConvKernel(BuiltGraph g, std::string tactic, std::optional<UnfusedEpilogue> epi,
                  DataType dt)
      : g_(std::move(g)), tactic_(std::move(tactic)), epi_(epi), dt_(dt) {}

  size_t workspace_bytes() const override { return static_cast<size_t>(g_.workspace); }
  std::string tactic() const override { return tactic_; }

  Status enqueue(const LaunchArgs& a) override {
    KILN_CUDNN_CHECK(cudnnSetStream(a.res.cudnn, a.stream));
    // The variant pack keeps its nodes between launches: only the pointers change.
    pack_[g_.uid_x] = const_cast<void*>(a.inputs[0]);
    pack_[g_.uid_w] = const_cast<void*>(a.inputs[1]);
    pack_[g_.uid_y] = a.outputs[0];
    if (g_.uid_b >= 0) pack_[g_.uid_b] = const_cast<void*>(a.inputs[2]);
    if (g_.uid_z >= 0) pack_[g_.uid_z] = const_cast<void*>(a.inputs[3]);
    auto st = g_.graph->execute(a.res.cudnn, pack_, a.workspace);
    if (st.is_bad())
      return Status(ErrorCode::kCudnnError,
                    "cudnn_frontend execute (" + tactic_ + "): " + st.get_message());
    if (!epi_) return Status::ok();
    return launch_conv_epilogue(dt_, a.outputs[0], epi_->bias ? a.inputs[2] : nullptr,
                                epi_->residual ? a.inputs[3] : nullptr, epi_->params, a.stream);
  }

 private:
  BuiltGraph g_;
  std::string tactic_;
  std::optional<UnfusedEpilogue> epi_;
  DataType dt_;
  std::unordered_map<int64_t, void*> pack_;
};

/// Output with no elements: nothing to launch.
class EmptyConvKernel final : public Kernel {
 public:
  std::string tactic() const override { return "kiln:empty"; }
  Status enqueue(const LaunchArgs&) override { return Status::ok(); }
};

Result<std::unique_ptr<Kernel>> create_conv(const KernelConfig& cfg, ConvKind kind) {
  if (cfg.out(0).numel() == 0) return std::unique_ptr<Kernel>(std::make_unique<EmptyConvKernel>());
  KILN_ASSIGN_OR_RETURN(ConvSpec s, make_spec(cfg, kind));
  const std::string name = std::string(kind == ConvKind::kTranspose ? "cudnn_dgrad" : "cudnn_conv");
  const std::string shape = std::string(s.y_layout == Layout::kNhwc ? "_nhwc_" : "_nchw_") +
                            dtype_tag(s.dt) + "_";
  try {
    std::optional<UnfusedEpilogue> epi;
    Result<BuiltGraph> built = Status(ErrorCode::kNoGpuKernel, "no epilogue to fuse");
    if (s.has_epilogue()) built = build_graph(cfg, s, true);
    std::string tactic;
    if (built.is_ok()) {
      tactic = name + "_fused" + shape + built->plan;
    } else {
      built = build_graph(cfg, s, false);
      if (!built.is_ok()) return built.status();
      tactic = name + shape + built->plan;
      if (s.has_epilogue()) {
        UnfusedEpilogue u;
        u.params.total = cfg.out(0).numel();
        u.params.channels = s.y_dims[1];
        u.params.spatial = u.params.total / (s.y_dims[0] * s.y_dims[1]);
        u.params.y_nhwc = s.y_layout == Layout::kNhwc;
        u.params.z_nhwc = s.z_layout == Layout::kNhwc;
        u.params.act = s.act;
        u.bias = s.bias;
        u.residual = s.residual;
        epi = u;
        tactic += "+kiln_epilogue";
      }
    }
    return std::unique_ptr<Kernel>(std::make_unique<CudnnConvKernel>(
        std::move(built).value(), std::move(tactic), epi, s.dt));
  } catch (const std::exception& e) {  // the front end throws on a few internal errors
    return cfg.unsupported(std::string("cuDNN front end: ") + e.what());
  }
}

Result<std::unique_ptr<Kernel>> create_conv_fprop(const KernelConfig& cfg) {
  return create_conv(cfg, ConvKind::kConv);
}
Result<std::unique_ptr<Kernel>> create_conv_transpose(const KernelConfig& cfg) {
  return create_conv(cfg, ConvKind::kTranspose);
}
Result<std::unique_ptr<Kernel>> create_fused_conv(const KernelConfig& cfg) {
  return create_conv(cfg, ConvKind::kFused);
}

}  // namespace

KILN_REGISTER_CUDA_KERNELS(cudnn_conv) {
  reg.add({.op_type = "Conv", .create = create_conv_fprop, .nhwc = true});
  reg.add({.op_type = "ConvTranspose", .create = create_conv_transpose, .nhwc = true});
  reg.add({.op_type = ops::kFusedConvOp, .domain = ops::kFusedConvDomain,
           .create = create_fused_conv, .nhwc = true});
}

}  // namespace kiln::cuda
