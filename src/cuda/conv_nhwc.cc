// Support checks of kiln's NHWC convolution kernels (see conv_nhwc.h): which Conv and
// FusedConv nodes they take, their window read with Conv's own helpers (src/ops/window.h),
// the epilogue from FusedConv's attributes. The kernels are in kernels/depthwise_conv.cu
// and kernels/stem_conv.cu; this half is host-only because the attribute readers are.
#include "cuda/conv_nhwc.h"

#include <string>
#include <vector>

#include "cuda/kernels/common.cuh"
#include "cuda/tc_gemm.h"
#include "ops/fused_conv.h"
#include "ops/window.h"

namespace kiln::cuda {

Result<ConvNhwcGeometry> read_conv_nhwc(const KernelConfig& cfg, const char* who) {
  const std::string kernel = std::string("the ") + who + " kernel";
  const ir::Node& node = cfg.node;
  const bool fused = node.domain == ops::kFusedConvDomain && node.op_type == ops::kFusedConvOp;
  if (!fused && !(node.domain.empty() && node.op_type == "Conv"))
    return cfg.unsupported(kernel + " runs Conv and FusedConv only");
  if (cfg.inputs.size() < 2 || !cfg.in(0).present() || !cfg.in(1).present() ||
      cfg.outputs.empty())
    return cfg.unsupported("convolution without X or W");
  const Operand& x = cfg.in(0);
  const Operand& w = cfg.in(1);
  const Operand& y = cfg.out(0);
  const DataType dt = x.dtype;
  if (dt != DataType::kF32 && dt != DataType::kF16 && dt != DataType::kBF16)
    return cfg.unsupported(std::string("dtype ") + dtype_name(dt) + " (" + kernel +
                           " runs f32, f16 and bf16)");
  if (w.dtype != dt || y.dtype != dt)
    return cfg.unsupported("mixed dtypes of input, weights and output");
  if (x.rank() != 4 || w.rank() != 4 || y.rank() != 4)
    return cfg.unsupported("rank " + std::to_string(x.rank()) + " (" + kernel +
                           " runs 2-D convolutions)");
  if (x.layout != Layout::kNhwc || y.layout != Layout::kNhwc)
    return cfg.unsupported(kernel + " reads and writes channels-last tensors only");
  if (x.numel() >= kFastIndexLimit || y.numel() >= kFastIndexLimit)
    return cfg.unsupported("tensors of 2^31 elements or more");

  ConvNhwcGeometry g;
  g.dt = dt;
  g.n = x.dims[0];
  g.c = x.dims[1];
  g.h = x.dims[2];
  g.w = x.dims[3];
  g.k = y.dims[1];
  g.oh = y.dims[2];
  g.ow = y.dims[3];
  g.kh = w.dims[2];
  g.kw = w.dims[3];
  g.group = node.attr_i("group", 1);
  g.w_krsc = w.layout == Layout::kNhwc;
  g.sm_count = cfg.res.sm_count;
  if (g.group < 1 || g.c % g.group != 0 || g.k % g.group != 0 || w.dims[0] != g.k ||
      w.dims[1] * g.group != g.c)
    return cfg.unsupported("weights " + dims_to_string(w.dims) + " do not match C " +
                           std::to_string(g.c) + ", K " + std::to_string(g.k) + ", group " +
                           std::to_string(g.group));
  if (y.numel() > 0) {  // an empty output launches nothing: skip the window checks
    if (x.numel() == 0) return cfg.unsupported("empty input with a non-empty output");
    KILN_ASSIGN_OR_RETURN(ops::WindowAttrs wa, ops::read_window_attrs(node, 2, {g.kh, g.kw}));
    wa.kernel = {g.kh, g.kw};  // inference checked kernel_shape against the weights
    KILN_ASSIGN_OR_RETURN(std::vector<ops::WindowDim> wd,
                          ops::forward_window_dims(wa, {g.h, g.w}));
    if (wd[0].out != g.oh || wd[1].out != g.ow)
      return cfg.error(ErrorCode::kInternal,
                       "Conv output " + dims_to_string(y.dims) +
                           " does not match its window attributes",
                       "shape inference and the kernel disagree: a kiln bug");
    g.stride_h = wa.strides[0];
    g.stride_w = wa.strides[1];
    g.dilation_h = wa.dilations[0];
    g.dilation_w = wa.dilations[1];
    g.pad_h = wd[0].pad_begin;
    g.pad_w = wd[1].pad_begin;
  }

  if (cfg.has_input(2)) {
    const Operand& b = cfg.in(2);
    if (b.dtype != dt || b.rank() != 1 || b.dims[0] != g.k)
      return cfg.unsupported("bias must be a [" + std::to_string(g.k) + "] vector of " +
                             dtype_name(dt));
    g.bias = true;
  }
  if (fused) {
    KILN_ASSIGN_OR_RETURN(g.act, ops::read_fused_epilogue(node));
    if (cfg.has_input(3)) {
      const Operand& z = cfg.in(3);
      if (z.dtype != dt || z.dims != y.dims)
        return cfg.unsupported("residual must have the output's dtype and dims");
      g.residual = true;
      g.z_nhwc = z.layout == Layout::kNhwc;
    }
  }
  return g;
}

Result<std::unique_ptr<Kernel>> create_depthwise_conv(const KernelConfig& cfg) {
  KILN_ASSIGN_OR_RETURN(ConvNhwcGeometry g, read_conv_nhwc(cfg, "depthwise"));
  if (g.group != g.c || g.k != g.c)
    return cfg.unsupported("not a depthwise convolution (group " + std::to_string(g.group) +
                           ", C " + std::to_string(g.c) + ", K " + std::to_string(g.k) +
                           "; needs group == C == K)");
  // With one input channel per group KCRS and KRSC are the same bytes.
  g.w_krsc = true;
  return make_depthwise_conv_kernel(cfg, g);
}

Result<std::unique_ptr<Kernel>> create_stem_conv(const KernelConfig& cfg) {
  KILN_ASSIGN_OR_RETURN(ConvNhwcGeometry g, read_conv_nhwc(cfg, "stem"));
  if (g.dt != DataType::kF16 && g.dt != DataType::kBF16)
    return cfg.unsupported("the stem kernel runs f16 and bf16 (tensor cores)");
  if (g.group != 1) return cfg.unsupported("grouped convolution (the stem kernel is dense)");
  if (g.residual) return cfg.unsupported("a residual input (the stem kernel has none)");
  if (g.dilation_h != 1 || g.dilation_w != 1)
    return cfg.unsupported("dilation (the stem kernel runs dilation 1)");
  if (g.stride_h != g.stride_w)
    return cfg.unsupported("unequal strides (the stem kernel runs square strides)");
  return make_stem_conv_kernel(cfg, g);
}

Result<ConvNhwcGeometry> read_conv1x1(const KernelConfig& cfg, const char* who) {
  KILN_ASSIGN_OR_RETURN(ConvNhwcGeometry g, read_conv_nhwc(cfg, who));
  if (g.kh != 1 || g.kw != 1 || g.stride_h != 1 || g.stride_w != 1 || g.pad_h != 0 ||
      g.pad_w != 0 || g.oh != g.h || g.ow != g.w)
    return cfg.unsupported("not a 1x1 stride-1 unpadded convolution");
  if (g.group != 1) return cfg.unsupported("grouped convolution");
  if (g.residual && !g.z_nhwc) return cfg.unsupported("a row-major residual");
  return g;
}

namespace {

/// Y[M][K] = act(X[M][C] · W[K][C]ᵀ + B + Z), M = N·H·W: X, Y and Z channels-last are
/// row-major matrices, W's [K][C][1][1] bytes (KRSC or KCRS alike) are W[K][C].
Result<TcGemmSpec> conv1x1_tc_spec(const KernelConfig& cfg) {
  KILN_ASSIGN_OR_RETURN(ConvNhwcGeometry g, read_conv1x1(cfg, "tensor-core GEMM"));
  if (g.dt != DataType::kF16 && g.dt != DataType::kBF16)
    return cfg.unsupported("the tensor-core GEMM runs f16 and bf16");
  TcGemmSpec s;
  s.dt = g.dt;
  s.m = g.n * g.h * g.w;
  s.n = g.k;
  s.k = g.c;
  s.bias_input = g.bias ? 2 : -1;
  s.z_input = g.residual ? 3 : -1;
  s.act = g.act;
  return s;
}

}  // namespace

Result<std::unique_ptr<Kernel>> create_conv1x1_tc(const KernelConfig& cfg) {
  KILN_ASSIGN_OR_RETURN(TcGemmSpec s, conv1x1_tc_spec(cfg));
  return replay_tc_gemm(cfg, s);
}

Result<std::vector<std::unique_ptr<Kernel>>> conv1x1_tc_candidates(const KernelConfig& cfg) {
  KILN_ASSIGN_OR_RETURN(TcGemmSpec s, conv1x1_tc_spec(cfg));
  return tc_gemm_candidates(cfg, s);
}

}  // namespace kiln::cuda
