// Conv, ConvTranspose and kiln.FusedConv on cuDNN 9 through the cudnn_frontend v1 graph API
// (ONNX Operators.md: Conv, ConvTranspose; FusedConv: src/ops/fused_conv.h).
//
// Every factory call builds one cudnn_frontend graph for the node's static shapes on the
// context's cuDNN handle. Without a recorded tactic: heuristics (modes A, then FALLBACK),
// engines filtered by numerical notes, the first buildable plan kept with its workspace
// size. For the autotuner (KernelEntry::candidates) the first kMaxCandidates buildable
// plans of that list plus up to kMaxModeBCandidates others from heuristics mode B, fused
// and unfused, each a candidate whose tactic_params() are its list, index and plan name
// (EngineChoice); a context rebuilds exactly that plan. ConvTranspose is
// the data gradient of the convolution whose weights it takes as they are: ONNX's
// [C_in, C_out/group, k...] is cuDNN's dgrad filter [K, C/group, k...] with K = C_in.
// Grouped and depthwise convolutions are expressed by the tensor dims alone (cuDNN takes
// the group count from X's channels over W's dim 1); 1-D convolutions become 2-D with a
// unit height; 3-D ones are native.
//
// Loading without compiling: the chosen plan is serialized into the kiln plan
// (Kernel::artifact: cuDNN's JSON of the execution plan, which for runtime-fusion engines
// carries the compiled kernel) and an execution context deserializes it instead of querying
// the heuristics and compiling again (cudnn_frontend Graph::serialize/deserialize). An
// artifact cuDNN no longer accepts falls back to the replay of the engine choice.
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
// The front end's bundled nlohmann::json (needed for plan serialization) lives in its own
// versioned ABI namespace, so it coexists with the one kiln links; no kiln header pulled in
// here includes the other.
#include <cudnn_frontend.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/cudnn_conv.h"
#include "cuda/conv_nhwc.h"
#include "cuda/kernel.h"
#include "cuda/nvrtc_module.h"
#include "cuda/tc_gemm.h"
#include "kiln/kiln.h"
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
  std::vector<int64_t> built;  ///< PlanMode::kAll: indices of the plans that built
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

/// One cuDNN engine configuration as a position in the heuristics' list (modes A, then
/// FALLBACK) and the plan name found there ("eng32_k2=15_k6=3..."). cuDNN's heuristics are
/// deterministic for one graph, GPU and library version, so replay queries them again,
/// builds the plan at that index and checks the name: exactly the configuration that was
/// timed. (Replaying engine id + knobs through create_execution_plan loses the knobs the
/// front end has no name for, e.g. LDGA/LDGC, and builds a different kernel.)
struct EngineChoice {
  bool fused = false;
  /// Heuristics the list came from: "AF" (modes A then FALLBACK) or "B" (mode B, the
  /// slower, more thorough ranking).
  std::string modes = "AF";
  int64_t index = -1;
  std::string name;

  /// "f1;i3;eng32_k2=15_k6=3" for the A/FALLBACK list, "f1;mB;i3;..." for mode B
  /// (Kernel::tactic_params).
  std::string params() const {
    return std::string(fused ? "f1" : "f0") + (modes == "AF" ? "" : ";m" + modes) + ";i" +
           std::to_string(index) + ";" + name;
  }
  static std::optional<EngineChoice> parse(const std::string& p) {
    EngineChoice c;
    long long index = -1;
    int f = 0, used = 0, used_m = 0;
    char m[8] = {};
    if (std::sscanf(p.c_str(), "f%d;m%7[A-Z];%n", &f, m, &used_m) == 2 && used_m > 0) {
      c.modes = m;
      if (c.modes != "AF" && c.modes != "B") return std::nullopt;
      if (std::sscanf(p.c_str() + used_m, "i%lld;%n", &index, &used) < 1 || used == 0) return std::nullopt;
      used += used_m;
    } else if (std::sscanf(p.c_str(), "f%d;i%lld;%n", &f, &index, &used) < 2 || used == 0) {
      return std::nullopt;
    }
    if (index < 0) return std::nullopt;
    c.fused = f != 0;
    c.index = index;
    c.name = p.substr(static_cast<size_t>(used));
    if (c.name.empty()) return std::nullopt;
    return c;
  }
  std::vector<fe::HeurMode_t> heur_modes() const {
    if (modes == "B") return {fe::HeurMode_t::B};
    return {fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK};
  }
};

/// How build_graph chooses execution plans.
enum class PlanMode {
  kHeuristic,  ///< the first buildable plan of heuristics modes A, then FALLBACK
  kAll,        ///< every buildable plan of that list (up to kMaxCandidates): autotuning
  kReplay,     ///< exactly one recorded engine configuration (its index in that list)
};

/// Engine configurations built per graph when enumerating. Runtime-fusion engines compile
/// a kernel per plan, so the heuristics' ranking bounds the build time.
constexpr int64_t kMaxCandidates = 12;
/// Further configurations taken from mode B's ranking when enumerating, beyond those the
/// A/FALLBACK list already gave (mode B finds better engines for unusual shapes, e.g.
/// the 3-channel stem convolution of image models).
constexpr int64_t kMaxModeBCandidates = 4;

/// Builds the convolution graph, with the epilogue inside it when `fuse`, and its plans
/// per `mode` (`replay` for kReplay), from the heuristics `modes` (EngineChoice::modes).
/// For kAll, plans named in `skip` are not built. b.built lists the plan indices that
/// built. NoGpuKernel with cuDNN's message when cuDNN cannot build or run it.
Result<BuiltGraph> build_graph(const KernelConfig& cfg, const ConvSpec& s, bool fuse,
                               PlanMode mode = PlanMode::kHeuristic,
                               const EngineChoice* replay = nullptr,
                               const std::string& modes = "AF",
                               std::set<std::string>* skip = nullptr,
                               int64_t max_plans = kMaxCandidates) {
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
  EngineChoice list;
  list.modes = replay ? replay->modes : modes;
  KILN_FE_TRY(g.create_execution_plans(list.heur_modes()));
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
  if (mode == PlanMode::kAll) {
    // The first max_plans configurations of the ranking not already taken (skip) that build.
    // Runtime-fusion engines compile a kernel each (NVRTC, tenths of a second), so a batch of
    // plans is finalized on one thread each (the front end's documented way to autotune:
    // build_plan_at_index from several threads, each filling its own plan).
    const int64_t count = g.get_execution_plan_count();
    for (int64_t i = 0; i < count && static_cast<int64_t>(b.built.size()) < max_plans;) {
      std::vector<int64_t> batch;
      for (; i < count && static_cast<int64_t>(b.built.size() + batch.size()) < max_plans; ++i) {
        std::string name;
        if (skip && (!g.get_plan_name_at_index(i, name).is_good() || !skip->insert(name).second)) continue;
        batch.push_back(i);
      }
      std::vector<char> ok(batch.size(), 0);
      std::vector<std::thread> workers;
      for (size_t k = 0; k < batch.size(); ++k)
        workers.emplace_back([&g, &ok, &batch, k] {
          try {
            ok[k] = g.build_plan_at_index(batch[k]).is_good();
          } catch (const std::exception&) {  // the front end throws on a few internal errors
            ok[k] = 0;
          }
        });
      for (auto& w : workers) w.join();
      for (size_t k = 0; k < batch.size(); ++k)
        if (ok[k]) b.built.push_back(batch[k]);
    }
    if (b.built.empty()) return cfg.unsupported("cuDNN built none of its engine configurations");
  } else if (mode == PlanMode::kReplay) {
    std::string name;
    if (replay->index >= g.get_execution_plan_count() ||
        !g.get_plan_name_at_index(replay->index, name).is_good() || name != replay->name)
      return cfg.unsupported("the heuristics list has '" + name + "' at index " +
                             std::to_string(replay->index) + ", not '" + replay->name + "'");
    KILN_FE_TRY(g.build_plan_at_index(replay->index));
    KILN_FE_TRY(g.get_workspace_size_plan_at_index(replay->index, b.workspace));
    b.plan = name;
  } else {
    KILN_FE_TRY(g.build_plans(fe::BuildPlanPolicy_t::HEURISTICS_CHOICE));
    KILN_FE_TRY(g.get_workspace_size(b.workspace));
    KILN_FE_TRY(g.get_plan_name(b.plan));
  }
  b.uid_x = x->get_uid();
  b.uid_w = w->get_uid();
  b.uid_y = y->get_uid();
  if (bias) b.uid_b = bias->get_uid();
  if (z) b.uid_z = z->get_uid();
  return b;
}

#undef KILN_FE_TRY

/// Kernel::artifact of a cuDNN convolution: "KCDN" v1, the tensor uids, the workspace
/// size, the plan name, the FNV-1a hash of the serialized plan, then cudnn_frontend's
/// serialized plan (plan only, no graph structure). Integers in host byte order (the plan
/// is tied to the GPU and its host anyway). The hash matters: cuDNN accepts some altered
/// plans as another valid engine configuration, which would silently run a different
/// kernel than the one timed.
constexpr char kArtifactMagic[4] = {'K', 'C', 'D', 'N'};
constexpr uint32_t kArtifactVersion = 1;

std::vector<uint8_t> encode_artifact(const BuiltGraph& b, const std::vector<uint8_t>& blob) {
  std::vector<uint8_t> out(kArtifactMagic, kArtifactMagic + 4);
  auto put = [&](const void* p, size_t n) {
    out.insert(out.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
  };
  put(&kArtifactVersion, sizeof kArtifactVersion);
  for (int64_t v : {b.uid_x, b.uid_w, b.uid_y, b.uid_b, b.uid_z, b.workspace}) put(&v, sizeof v);
  const uint32_t name_len = static_cast<uint32_t>(b.plan.size());
  put(&name_len, sizeof name_len);
  put(b.plan.data(), b.plan.size());
  const uint64_t hash = fnv1a64(blob.data(), blob.size());
  put(&hash, sizeof hash);
  put(blob.data(), blob.size());
  return out;
}

/// The graph an artifact describes, deserialized on this context's handle; nullopt when the
/// bytes are not a v1 artifact for `plan_name` or this cuDNN refuses them.
std::optional<BuiltGraph> decode_artifact(const std::vector<uint8_t>& a, const std::string& plan_name,
                                          cudnnHandle_t handle) {
  size_t at = 0;
  auto get = [&](void* p, size_t n) {
    if (a.size() - at < n) return false;
    std::memcpy(p, a.data() + at, n);
    at += n;
    return true;
  };
  char magic[4];
  uint32_t version = 0, name_len = 0;
  BuiltGraph b;
  if (!get(magic, 4) || std::memcmp(magic, kArtifactMagic, 4) != 0 || !get(&version, sizeof version) ||
      version != kArtifactVersion)
    return std::nullopt;
  for (int64_t* v : {&b.uid_x, &b.uid_w, &b.uid_y, &b.uid_b, &b.uid_z, &b.workspace})
    if (!get(v, sizeof *v)) return std::nullopt;
  if (!get(&name_len, sizeof name_len) || a.size() - at < name_len) return std::nullopt;
  b.plan.assign(reinterpret_cast<const char*>(a.data() + at), name_len);
  at += name_len;
  uint64_t hash = 0;
  if (b.plan != plan_name || !get(&hash, sizeof hash) || at == a.size()) return std::nullopt;
  const std::vector<uint8_t> blob(a.begin() + static_cast<std::ptrdiff_t>(at), a.end());
  if (fnv1a64(blob.data(), blob.size()) != hash) return std::nullopt;
  b.graph = std::make_shared<fe::graph::Graph>();
  // No warm-up launch: the context's first inference runs outside CUDA-graph capture.
  if (b.graph->deserialize(handle, blob, /*enforce_precompiled=*/true, /*run_warmup=*/false).is_bad())
    return std::nullopt;
  return b;
}

/// How the epilogue runs when cuDNN could not fuse it: conv_epilogue.cu after the graph.
struct UnfusedEpilogue {
  ConvEpilogueParams params;
  bool bias = false;      ///< add input 2
  bool residual = false;  ///< add input 3
};

/// A convolution on cuDNN, with the epilogue fused into its graph or run after it. With a
/// plan index (>= 0) it runs that plan of a graph built with PlanMode::kAll (the graph is
/// shared by all candidates of a node), else the graph's one built plan.
class CudnnConvKernel final : public Kernel {
 public:
  CudnnConvKernel(BuiltGraph g, std::string tactic, std::string params,
                  std::optional<UnfusedEpilogue> epi, DataType dt, int64_t plan_index = -1,
                  int64_t workspace = -1)
      : g_(std::move(g)),
        tactic_(std::move(tactic)),
        params_(std::move(params)),
        epi_(epi),
        dt_(dt),
        plan_index_(plan_index),
        workspace_(workspace >= 0 ? workspace : g_.workspace) {}

  size_t workspace_bytes() const override { return static_cast<size_t>(workspace_); }
  std::string tactic() const override { return tactic_; }
  std::string tactic_params() const override { return params_; }
  TacticSource tactic_source() const override { return TacticSource::kCudnn; }

  /// The plan this kernel runs, serialized (see encode_artifact); empty when this cuDNN
  /// cannot serialize the engine.
  std::vector<uint8_t> artifact() const override {
    try {
      // Selecting the candidate of a shared kAll graph: its plan is built, so this only
      // marks it as the one serialize() writes.
      if (plan_index_ >= 0 && g_.graph->build_plan_at_index(plan_index_).is_bad()) return {};
      std::vector<uint8_t> blob;
      if (g_.graph->serialize(blob, /*serialize_structure=*/false).is_bad() || blob.empty()) return {};
      BuiltGraph b = g_;
      b.workspace = workspace_;
      if (plan_index_ >= 0 && g_.graph->get_plan_name_at_index(plan_index_, b.plan).is_bad()) return {};
      return encode_artifact(b, blob);
    } catch (const std::exception&) {
      return {};
    }
  }

  Status enqueue(const LaunchArgs& a) override {
    KILN_CUDNN_CHECK(cudnnSetStream(a.res.cudnn, a.stream));
    // The variant pack keeps its nodes between launches: only the pointers change.
    pack_[g_.uid_x] = const_cast<void*>(a.inputs[0]);
    pack_[g_.uid_w] = const_cast<void*>(a.inputs[1]);
    pack_[g_.uid_y] = a.outputs[0];
    if (g_.uid_b >= 0) pack_[g_.uid_b] = const_cast<void*>(a.inputs[2]);
    if (g_.uid_z >= 0) pack_[g_.uid_z] = const_cast<void*>(a.inputs[3]);
    auto st = plan_index_ >= 0
                  ? g_.graph->execute_plan_at_index(a.res.cudnn, pack_, a.workspace, plan_index_)
                  : g_.graph->execute(a.res.cudnn, pack_, a.workspace);
    if (st.is_bad())
      return Status(ErrorCode::kCudnnError,
                    "cudnn_frontend execute (" + tactic_ + "): " + st.get_message());
    if (!epi_) return Status::ok();
    return launch_conv_epilogue(dt_, a.outputs[0], epi_->bias ? a.inputs[2] : nullptr,
                                epi_->residual ? a.inputs[3] : nullptr, epi_->params, a.stream);
  }

 private:
  BuiltGraph g_;
  std::string tactic_, params_;
  std::optional<UnfusedEpilogue> epi_;
  DataType dt_;
  int64_t plan_index_;
  int64_t workspace_;
  std::unordered_map<int64_t, void*> pack_;
};

/// Output with no elements: nothing to launch.
class EmptyConvKernel final : public Kernel {
 public:
  std::string tactic() const override { return "kiln:empty"; }
  Status enqueue(const LaunchArgs&) override { return Status::ok(); }
};

/// Tactic name prefix: "cudnn_conv_fused_nhwc_f16_" and the like.
std::string tactic_prefix(const ConvSpec& s, bool fused) {
  return std::string(s.kind == ConvKind::kTranspose ? "cudnn_dgrad" : "cudnn_conv") +
         (fused ? "_fused" : "") + (s.y_layout == Layout::kNhwc ? "_nhwc_" : "_nchw_") +
         dtype_tag(s.dt) + "_";
}

/// The epilogue kernel's job for an unfused graph, or nullopt when there is no epilogue.
std::optional<UnfusedEpilogue> unfused_epilogue(const KernelConfig& cfg, const ConvSpec& s) {
  if (!s.has_epilogue()) return std::nullopt;
  UnfusedEpilogue u;
  u.params.total = cfg.out(0).numel();
  u.params.channels = s.y_dims[1];
  u.params.spatial = u.params.total / (s.y_dims[0] * s.y_dims[1]);
  u.params.y_nhwc = s.y_layout == Layout::kNhwc;
  u.params.z_nhwc = s.z_layout == Layout::kNhwc;
  u.params.act = s.act;
  u.bias = s.bias;
  u.residual = s.residual;
  return u;
}

/// Kernel for one built graph (its heuristic or replayed plan, or plan `index` of a kAll
/// graph).
std::unique_ptr<Kernel> make_kernel(const KernelConfig& cfg, const ConvSpec& s, BuiltGraph g,
                                    bool fused, int64_t index = -1, const std::string& modes = "AF") {
  std::string plan = g.plan, params;
  int64_t workspace = -1;
  std::optional<UnfusedEpilogue> epi = fused ? std::nullopt : unfused_epilogue(cfg, s);
  if (index >= 0) {
    EngineChoice c;
    c.fused = fused;
    c.modes = modes;
    c.index = index;
    // A plan whose name or workspace cannot be read cannot be replayed: empty params, and
    // conv_candidates drops it.
    if (g.graph->get_workspace_size_plan_at_index(index, workspace).is_good() &&
        g.graph->get_plan_name_at_index(index, plan).is_good()) {
      c.name = plan;
      params = c.params();
    }
  }
  std::string tactic = tactic_prefix(s, fused) + plan + (epi ? "+kiln_epilogue" : "");
  return std::make_unique<CudnnConvKernel>(std::move(g), std::move(tactic), std::move(params),
                                           epi, s.dt, index, workspace);
}

/// kiln's own convolution kernels (conv_nhwc.h): tactic candidates next to cuDNN's
/// engines, replayed by their tactic_params().
struct OwnConvKernel {
  const char* name;
  const char* params;  ///< its tactic_params(), or their prefix
  KernelFactory create;
  TacticEnumerator candidates;  ///< null: the one kernel `create` builds
  TacticSource source;          ///< the library it runs in
};
constexpr OwnConvKernel kOwnConvKernels[] = {
    {"depthwise", kDepthwiseTacticParams, create_depthwise_conv, nullptr, TacticSource::kKiln},
    {"stem", kStemConvTacticParams, create_stem_conv, nullptr, TacticSource::kKiln},
    {"1x1 GEMM", kConv1x1GemmTacticPrefix, create_conv1x1_gemm, conv1x1_gemm_candidates,
     TacticSource::kCublasLt},
    {"tensor-core GEMM", kTcGemmTacticPrefix, create_conv1x1_tc, conv1x1_tc_candidates,
     TacticSource::kKiln},
};

/// Heuristic choice (no recorded tactic) or replay of cfg.tactic.
Result<std::unique_ptr<Kernel>> create_conv(const KernelConfig& cfg, ConvKind kind) {
  if (cfg.out(0).numel() == 0) return std::unique_ptr<Kernel>(std::make_unique<EmptyConvKernel>());
  KILN_ASSIGN_OR_RETURN(ConvSpec s, make_spec(cfg, kind));
  try {
    for (const OwnConvKernel& own : kOwnConvKernels) {
      if (!cfg.tactic || cfg.tactic->rfind(own.params, 0) != 0) continue;
      auto k = own.create(cfg);
      if (!k.is_ok())
        return cfg.error(ErrorCode::kTacticUnavailable,
                         std::string("kiln's ") + own.name + " kernel cannot run this node: " +
                             k.status().message(),
                         "the plan is damaged or from another kiln: rebuild it");
      return k;
    }
    if (cfg.tactic) {
      std::optional<EngineChoice> c = EngineChoice::parse(*cfg.tactic);
      if (!c)
        return cfg.error(ErrorCode::kTacticUnavailable,
                         "tactic parameters '" + *cfg.tactic + "' are not a cuDNN engine choice",
                         "the plan is damaged or from another kiln: rebuild it");
      if (cfg.artifact) {
        if (std::optional<BuiltGraph> b = decode_artifact(*cfg.artifact, c->name, cfg.res.cudnn)) {
          std::optional<UnfusedEpilogue> epi = c->fused ? std::nullopt : unfused_epilogue(cfg, s);
          std::string tactic = tactic_prefix(s, c->fused) + b->plan + (epi ? "+kiln_epilogue" : "");
          return std::unique_ptr<Kernel>(
              std::make_unique<CudnnConvKernel>(std::move(*b), std::move(tactic), *cfg.tactic, epi, s.dt));
        }
      }
      auto built = build_graph(cfg, s, c->fused, PlanMode::kReplay, &*c);
      if (!built.is_ok())
        return cfg.error(ErrorCode::kTacticUnavailable,
                         "cuDNN cannot rebuild engine configuration '" + *cfg.tactic +
                             "': " + built.status().message(),
                         "the plan was built with another cuDNN: rebuild it with this one");
      return make_kernel(cfg, s, std::move(built).value(), c->fused, c->index, c->modes);
    }
    Result<BuiltGraph> built = Status(ErrorCode::kNoGpuKernel, "no epilogue to fuse");
    if (s.has_epilogue()) built = build_graph(cfg, s, true);
    if (built.is_ok()) return make_kernel(cfg, s, std::move(built).value(), true);
    built = build_graph(cfg, s, false);
    if (!built.is_ok()) return built.status();
    return make_kernel(cfg, s, std::move(built).value(), false);
  } catch (const std::exception& e) {  // the front end throws on a few internal errors
    return cfg.unsupported(std::string("cuDNN front end: ") + e.what());
  }
}

/// Tactic candidates: kiln's own kernels where they apply (depthwise and stem
/// convolutions, where cuDNN's channels-last 16-bit engines are slow; 1x1 convolutions as
/// cuBLASLt GEMMs and as kiln's tensor-core GEMM), the engine configurations of the fused
/// graph (when there is an epilogue) and of the plain graph with kiln's epilogue kernel
/// after it.
Result<std::vector<std::unique_ptr<Kernel>>> conv_candidates(const KernelConfig& cfg,
                                                             ConvKind kind) {
  std::vector<std::unique_ptr<Kernel>> out;
  if (cfg.out(0).numel() == 0) return out;
  KILN_ASSIGN_OR_RETURN(ConvSpec s, make_spec(cfg, kind));
  if (kind != ConvKind::kTranspose) {
    for (const OwnConvKernel& own : kOwnConvKernels) {
      if (!cfg.allows(own.source)) continue;
      // NoGpuKernel unless the node is of the kernel's kind.
      if (own.candidates) {
        auto ks = own.candidates(cfg);
        if (ks.is_ok())
          for (auto& k : *ks) out.push_back(std::move(k));
      } else if (auto k = own.create(cfg); k.is_ok()) {
        out.push_back(std::move(*k));
      }
    }
  }
  try {
    for (bool fused : {true, false}) {
      if (!cfg.allows(TacticSource::kCudnn)) break;
      if (fused && !s.has_epilogue()) continue;
      std::set<std::string> taken;  // plan names already candidates of this graph
      for (const char* modes : {"AF", "B"}) {
        const bool b = modes[0] == 'B';
        auto built = build_graph(cfg, s, fused, PlanMode::kAll, nullptr, modes, &taken,
                                 b ? kMaxModeBCandidates : kMaxCandidates);
        if (!built.is_ok()) continue;
        for (int64_t index : built->built) {
          auto k = make_kernel(cfg, s, *built, fused, index, modes);
          if (!k->tactic_params().empty()) out.push_back(std::move(k));
        }
      }
    }
  } catch (const std::exception& e) {
    return cfg.unsupported(std::string("cuDNN front end: ") + e.what());
  }
  if (out.empty())
    return cfg.unsupported(cfg.allows(TacticSource::kCudnn)
                               ? "cuDNN has no engine for this convolution"
                               : "no kernel of the allowed tactic sources (" +
                                     tactic_sources_to_string(cfg.sources) + ") runs it");
  return out;
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
Result<std::vector<std::unique_ptr<Kernel>>> conv_fprop_candidates(const KernelConfig& cfg) {
  return conv_candidates(cfg, ConvKind::kConv);
}
Result<std::vector<std::unique_ptr<Kernel>>> conv_transpose_candidates(const KernelConfig& cfg) {
  return conv_candidates(cfg, ConvKind::kTranspose);
}
Result<std::vector<std::unique_ptr<Kernel>>> fused_conv_candidates(const KernelConfig& cfg) {
  return conv_candidates(cfg, ConvKind::kFused);
}

}  // namespace

void warm_up_cudnn(cudnnHandle_t handle) {
  try {
    fe::graph::Graph g;
    g.set_io_data_type(fe::DataType_t::HALF)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    // [1, 16, 8, 8] channels-last, 16 filters of 1x1: as small as an engine takes.
    using fe::graph::Tensor_attributes;
    auto x = g.tensor(
        Tensor_attributes().set_name("x").set_dim({1, 16, 8, 8}).set_stride({1024, 1, 128, 16}));
    auto w = g.tensor(
        Tensor_attributes().set_name("w").set_dim({16, 16, 1, 1}).set_stride({16, 1, 16, 16}));
    auto y = g.conv_fprop(
        x, w,
        fe::graph::Conv_fprop_attributes().set_padding({0, 0}).set_stride({1, 1}).set_dilation({1, 1}));
    y->set_output(true);
    if (g.validate().is_good() && g.build_operation_graph(handle).is_good() &&
        g.create_execution_plans({fe::HeurMode_t::A}).is_good() && g.check_support().is_good())
      (void)g.build_plans(fe::BuildPlanPolicy_t::HEURISTICS_CHOICE);
  } catch (const std::exception&) {  // the front end throws on a few internal errors
  }
}

KILN_REGISTER_CUDA_KERNELS(cudnn_conv) {
  reg.add({.op_type = "Conv", .create = create_conv_fprop, .nhwc = true,
           .candidates = conv_fprop_candidates});
  reg.add({.op_type = "ConvTranspose", .create = create_conv_transpose, .nhwc = true,
           .candidates = conv_transpose_candidates});
  reg.add({.op_type = ops::kFusedConvOp, .domain = ops::kFusedConvDomain,
           .create = create_fused_conv, .nhwc = true, .candidates = fused_conv_candidates});
}

}  // namespace kiln::cuda
