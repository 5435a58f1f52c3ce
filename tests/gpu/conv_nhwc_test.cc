// kiln's channels-last convolution kernels (src/cuda/conv_nhwc.h), depthwise and stem,
// against the CPU reference of Conv / kiln.FusedConv. One-node models are row-major, so
// the factory is called directly with kNhwc operands on device buffers: X (and a
// channels-last residual) are transposed to NHWC, W is passed as KRSC (as the layout pass
// stores it; for depthwise those are W's own bytes) or, where a case says so, as KCRS,
// Y is poisoned with NaNs before the launch and transposed back.
// Depthwise: f32, f16, bf16; channel counts for every vector width (16-byte, 8-byte,
// 4-byte, scalar); 3x3 / 5x5 (specialised) and other windows; strides, dilations,
// asymmetric pads, auto_pad; bias, residual (NHWC and row-major) and every activation;
// device pointers at odd offsets.
// Stem: every compiled variant, f16 and bf16, images whose sides are not multiples of the
// tile, pads, batches, more tiles than the persistent grid, KCRS weights, every
// activation, unaligned pointers.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "cuda/conv_nhwc.h"
#include "cuda/handles.h"
#include "gpu_test_util.h"

namespace kiln {
namespace {

using namespace gputest;
using Attrs = std::map<std::string, ir::Attribute>;
using Dims = std::vector<int64_t>;

/// One convolution. X is [N, C, H, W]; W is [C, 1, kh, kw] (depthwise, k == 0) or
/// [K, C, kh, kw] (dense, group 1).
struct DwCase {
  std::string label;
  DataType dt = kF32;
  Dims x;
  int64_t kh = 3, kw = 3;
  Attrs attrs;  ///< window attributes (group is added)
  bool bias = true;
  bool fused = false;       ///< kiln.FusedConv instead of Conv
  std::string activation;   ///< FusedConv's activation ("" = none)
  Attrs act_attrs;          ///< alpha / clip_min / clip_max
  enum Residual { kNone, kNhwc, kRowMajor } residual = kNone;
  int misalign = 0;  ///< elements by which the X, Y and Z device pointers are offset
  int64_t k = 0;     ///< output channels of a dense convolution; 0 = depthwise
  bool w_kcrs = false;  ///< pass W in KCRS memory order (dense only)
  bool gemm1x1 = false;  ///< dense: the 1x1 GEMM factory instead of the stem kernel
  bool tc1x1 = false;    ///< dense: kiln's tensor-core GEMM (replays `tactic`)
  std::string tactic;    ///< replay these tactic params (empty: the factory's choice)

  bool depthwise() const { return k == 0; }
  int64_t out_channels() const { return depthwise() ? x[1] : k; }
  Dims w_dims() const { return {out_channels(), depthwise() ? 1 : x[1], kh, kw}; }
};

/// The factory under test: depthwise cases go to the depthwise kernel, dense ones to the
/// stem kernel or the 1x1 GEMM.
Result<std::unique_ptr<cuda::Kernel>> create_kernel(const DwCase& c,
                                                    const cuda::KernelConfig& cfg) {
  if (c.depthwise()) return cuda::create_depthwise_conv(cfg);
  if (c.tc1x1) return cuda::create_conv1x1_tc(cfg);
  return c.gemm1x1 ? cuda::create_conv1x1_gemm(cfg) : cuda::create_stem_conv(cfg);
}

/// The node's KernelConfig (FP32 stays FP32: no TF32), replaying the case's tactic.
cuda::KernelConfig kernel_config(const DwCase& c, ir::Node& node,
                                 const std::vector<cuda::Operand>& ins, const cuda::Operand& out,
                                 const cuda::Resources& res) {
  cuda::KernelConfig cfg{node, ins, {out}, res, {.allow_tf32 = false}};
  if (!c.tactic.empty()) cfg.tactic = &c.tactic;
  return cfg;
}

Dims nhwc_order(const Dims& d) { return {d[0], d[2], d[3], d[1]}; }

/// 4-D transpose between NCHW and NHWC memory orders of logical dims `d`.
HostTensor transpose4(const HostTensor& t, const Dims& d, bool to_nhwc) {
  HostTensor r(t.dtype(), to_nhwc ? nhwc_order(d) : d);
  const size_t es = dtype_size(t.dtype());
  for (int64_t a = 0; a < d[0]; ++a)
    for (int64_t c = 0; c < d[1]; ++c)
      for (int64_t y = 0; y < d[2]; ++y)
        for (int64_t x = 0; x < d[3]; ++x) {
          const int64_t nchw = ((a * d[1] + c) * d[2] + y) * d[3] + x;
          const int64_t nhwc = ((a * d[2] + y) * d[3] + x) * d[1] + c;
          std::memcpy(static_cast<char*>(r.raw()) + (to_nhwc ? nhwc : nchw) * es,
                      static_cast<const char*>(t.raw()) + (to_nhwc ? nchw : nhwc) * es, es);
        }
  return r;
}

HostTensor random_host(DataType dt, const Dims& dims, std::mt19937_64& rng, double lo,
                       double hi) {
  HostTensor t(dt, dims);
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t k = 0; k < t.numel(); ++k) t.set_f64(k, u(rng));
  return t;
}

/// The case's node: Conv or FusedConv with its attributes.
ir::Node* add_node(ir::Graph& g, const DwCase& c, std::vector<ir::Value*> ins, ir::Value* out) {
  ir::Node* n = c.fused ? g.add_node(ops::kFusedConvOp, "node", std::move(ins), {out},
                                     ops::kFusedConvDomain, ops::kFusedConvVersion)
                        : g.add_node("Conv", "node", std::move(ins), {out}, "", 17);
  n->attrs = c.attrs;
  n->attrs["group"] = i(c.depthwise() ? c.x[1] : 1);
  if (c.fused) {
    n->attrs["activation"] = s(c.activation);
    for (const auto& [k, a] : c.act_attrs) n->attrs[k] = a;
  }
  return n;
}

/// Inputs of a case in logical (NCHW) order: X, W, B (undefined when absent), Z.
struct CaseData {
  HostTensor x, w, b, z;
};

CaseData make_data(const DwCase& c, const Dims& y_dims) {
  std::mt19937_64 rng(4321);
  CaseData d;
  d.x = random_host(c.dt, c.x, rng, -1, 1);
  d.w = random_host(c.dt, c.w_dims(), rng, -0.5, 0.5);
  if (c.bias) d.b = random_host(c.dt, {c.out_channels()}, rng, -1, 1);
  if (c.residual != DwCase::kNone) d.z = random_host(c.dt, y_dims, rng, -1, 1);
  return d;
}

/// Output dims from Conv's shape inference: a CPU run of the node without a residual.
Result<Dims> output_dims(const DwCase& c) {
  DwCase probe = c;
  probe.residual = DwCase::kNone;
  probe.fused = false;
  auto g = std::make_unique<ir::Graph>();
  g->opset_imports[""] = 17;
  std::mt19937_64 rng(1);
  HostTensor x = random_host(c.dt, c.x, rng, -1, 1);
  ir::Value* vx = g->add_value("x", c.dt, Shape::from(c.x));
  g->inputs.push_back(vx);
  ir::Value* vw = g->add_constant("w", HostTensor(c.dt, c.w_dims()));
  ir::Value* vy = g->add_value("y");
  g->outputs.push_back(vy);
  add_node(*g, probe, {vx, vw}, vy);
  std::vector<HostTensor> inputs{x};
  BuilderConfig cfg;
  cfg.opt_level = 0;
  KILN_ASSIGN_OR_RETURN(EngineRun r, build_and_run(std::move(g), inputs, cfg));
  return r.outputs.at(0).dims();
}

/// The CPU reference (NCHW): X and Z runtime inputs, W and B initializers.
Result<HostTensor> run_cpu(const DwCase& c, const CaseData& d) {
  auto g = std::make_unique<ir::Graph>();
  g->opset_imports[""] = 17;
  if (c.fused) g->opset_imports[ops::kFusedConvDomain] = ops::kFusedConvVersion;
  std::vector<HostTensor> inputs{d.x};
  ir::Value* vx = g->add_value("x", c.dt, Shape::from(c.x));
  g->inputs.push_back(vx);
  std::vector<ir::Value*> ins{vx, g->add_constant("w", d.w)};
  ins.push_back(c.bias ? g->add_constant("b", d.b) : nullptr);
  if (d.z.defined()) {
    ir::Value* vz = g->add_value("z", c.dt, Shape::from(d.z.dims()));
    g->inputs.push_back(vz);
    inputs.push_back(d.z);
    ins.push_back(vz);
  }
  if (!c.fused) ins.resize(c.bias ? 3 : 2);
  ir::Value* vy = g->add_value("y");
  g->outputs.push_back(vy);
  add_node(*g, c, ins, vy);
  BuilderConfig cfg;
  cfg.opt_level = 0;
  KILN_ASSIGN_OR_RETURN(EngineRun r, build_and_run(std::move(g), inputs, cfg));
  return std::move(r.outputs.at(0));
}

/// The node's KernelConfig operands: channels-last X, Y (and Z when so chosen).
struct Config {
  ir::Graph graph;
  ir::Node* node = nullptr;
  std::vector<cuda::Operand> ins;
  cuda::Operand out;
  cuda::Resources res;
};

void make_config(Config& k, const DwCase& c, const CaseData& d, const Dims& y_dims) {
  std::vector<ir::Value*> vin;
  auto operand = [&](const char* name, const HostTensor& t, cuda::Layout layout,
                     bool constant) {
    vin.push_back(k.graph.add_value(name, t.dtype(), Shape::from(t.dims())));
    k.ins.push_back({.dtype = t.dtype(), .dims = t.dims(), .layout = layout,
                     .value = constant ? &t : nullptr});
  };
  operand("x", d.x, cuda::Layout::kNhwc, false);
  // KRSC, as the layout pass stores it (the bytes are run_gpu's), or KCRS.
  operand("w", d.w, c.w_kcrs ? cuda::Layout::kRowMajor : cuda::Layout::kNhwc, true);
  if (c.bias) {
    operand("b", d.b, cuda::Layout::kRowMajor, true);
  } else if (c.fused) {
    vin.push_back(nullptr);
    k.ins.push_back({});
  }
  if (c.residual != DwCase::kNone)
    operand("z", d.z,
            c.residual == DwCase::kNhwc ? cuda::Layout::kNhwc : cuda::Layout::kRowMajor,
            false);
  k.out = {.dtype = c.dt, .dims = y_dims, .layout = cuda::Layout::kNhwc};
  ir::Value* vy = k.graph.add_value("y", c.dt, Shape::from(y_dims));
  k.node = add_node(k.graph, c, vin, vy);
}

/// Runs the case's kernel; returns Y in logical NCHW order (undefined after a failure)
/// and the tactic.
HostTensor run_gpu(const DwCase& c, const CaseData& d, const Dims& y_dims, std::string& tactic) {
  Config k;
  make_config(k, c, d, y_dims);
  cuda::Handles handles;  // stream, cuDNN and cuBLASLt handles (the 1x1 GEMM needs them)
  const Status init = handles.init(0);
  EXPECT_TRUE(init.is_ok()) << init.to_string();
  if (!init.is_ok()) return {};
  k.res = handles.res();
  EXPECT_EQ(cudaDeviceGetAttribute(&k.res.sm_count, cudaDevAttrMultiProcessorCount, 0),
            cudaSuccess);
  const cuda::KernelConfig cfg = kernel_config(c, *k.node, k.ins, k.out, k.res);
  auto kernel = create_kernel(c, cfg);
  EXPECT_TRUE(kernel.is_ok()) << kernel.status().to_string();
  if (!kernel.is_ok()) return {};
  tactic = (*kernel)->tactic();
  if (!c.gemm1x1) EXPECT_EQ((*kernel)->workspace_bytes(), 0u);
  void* workspace = nullptr;
  if ((*kernel)->workspace_bytes() > 0)
    EXPECT_EQ(cudaMalloc(&workspace, (*kernel)->workspace_bytes()), cudaSuccess);

  // Device copies in the kernel's memory order, `misalign` elements into each buffer.
  const size_t off = c.misalign * dtype_size(c.dt);
  const bool w_krsc = !c.depthwise() && !c.w_kcrs;
  std::vector<HostTensor> mem{transpose4(d.x, c.x, true),
                              w_krsc ? transpose4(d.w, c.w_dims(), true) : d.w};
  if (c.bias) mem.push_back(d.b);
  if (d.z.defined())
    mem.push_back(c.residual == DwCase::kNhwc ? transpose4(d.z, y_dims, true) : d.z);
  std::vector<void*> alloc, dev_in;
  for (size_t a = 0; a < mem.size(); ++a) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, mem[a].bytes() + off + 16), cudaSuccess);
    alloc.push_back(p);
    char* base = static_cast<char*>(p) + off;
    EXPECT_EQ(cudaMemcpy(base, mem[a].raw(), mem[a].bytes(), cudaMemcpyHostToDevice),
              cudaSuccess);
    dev_in.push_back(base);
  }
  // Input slots as the node has them: X, W, B (null when omitted), Z.
  std::vector<const void*> slots{dev_in[0], dev_in[1]};
  size_t next = 2;
  slots.push_back(c.bias ? dev_in[next++] : nullptr);
  if (d.z.defined()) slots.push_back(dev_in[next++]);
  HostTensor y(c.dt, nhwc_order(y_dims));
  void* y_alloc = nullptr;
  EXPECT_EQ(cudaMalloc(&y_alloc, y.bytes() + off + 16), cudaSuccess);
  EXPECT_EQ(cudaMemset(y_alloc, 0xff, y.bytes() + off + 16), cudaSuccess);  // NaN poison
  void* y_dev = static_cast<char*>(y_alloc) + off;
  void* outs[] = {y_dev};
  const cuda::LaunchArgs args{slots.data(), outs, workspace, k.res.stream, k.res};
  const Status st = (*kernel)->enqueue(args);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaFree(workspace);
  EXPECT_EQ(cudaMemcpy(y.raw(), y_dev, y.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  for (void* p : alloc) cudaFree(p);
  cudaFree(y_alloc);
  if (!st.is_ok()) return {};
  return transpose4(y, y_dims, false);
}

void expect_case(const DwCase& c, const std::string& tactic_prefix = {}) {
  const std::string what = c.label + " " + dtype_name(c.dt) + " x" + dims_to_string(c.x) +
                           " w" + std::to_string(c.kh) + "x" + std::to_string(c.kw);
  SCOPED_TRACE(what);
  auto y_dims = output_dims(c);
  ASSERT_TRUE(y_dims.is_ok()) << y_dims.status().to_string();
  const CaseData d = make_data(c, *y_dims);
  auto ref = run_cpu(c, d);
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  std::string tactic;
  const HostTensor got = run_gpu(c, d, *y_dims, tactic);
  if (!got.defined()) return;
  if (!tactic_prefix.empty()) EXPECT_EQ(tactic.rfind(tactic_prefix, 0), 0u) << tactic;
  auto [atol, rtol] = default_tolerance(c.dt);
  // f32: summation order alone differs from the CPU GEMM, ~sqrt(taps) roundings.
  const double terms = static_cast<double>(c.kh * c.kw * (c.depthwise() ? 1 : c.x[1]));
  if (c.dt == kF32) atol = std::max(1e-5, 2e-6 * std::sqrt(terms));
  EXPECT_EQ(compare_tensors(*ref, got, atol, rtol), "") << "tactic " << tactic;
}

/// A window: kernel size and attributes.
struct Window {
  const char* label;
  int64_t kh, kw;
  Attrs attrs;
};

TEST(CudaDepthwiseConv, ChannelsWindowsAndStrides) {
  KILN_REQUIRE_GPU();
  const Window windows[] = {
      {"3x3 p1", 3, 3, {{"pads", ints({1, 1, 1, 1})}}},
      {"5x5 p2", 5, 5, {{"pads", ints({2, 2, 2, 2})}}},
      {"1x7 p(0,3)", 1, 7, {{"pads", ints({0, 3, 0, 3})}}},
  };
  // C = 8/16/24: 16-byte vectors for 16-bit types (f32: 4 floats); 12: 8-byte; 6: 4-byte
  // for 16-bit; 3: scalar.
  const int64_t channels[] = {8, 16, 24, 12, 6, 3};
  const Dims spatial[] = {{7, 7}, {33, 17}, {64, 64}};
  for (DataType dt : {kF32, kF16, kBF16})
    for (int64_t ch : channels)
      for (const Dims& sp : spatial)
        for (const Window& w : windows)
          for (int64_t stride : {1, 2}) {
            DwCase c{.label = std::string(w.label) + " s" + std::to_string(stride),
                     .dt = dt,
                     .x = {1, ch, sp[0], sp[1]},
                     .kh = w.kh,
                     .kw = w.kw,
                     .attrs = w.attrs};
            c.attrs["strides"] = ints({stride, stride});
            expect_case(c);
          }
}

TEST(CudaDepthwiseConv, WideChannelsAndBatches) {
  KILN_REQUIRE_GPU();
  for (DataType dt : {kF32, kF16, kBF16})
    for (const Dims& x : {Dims{1, 960, 7, 7}, Dims{1, 960, 33, 17}, Dims{2, 72, 20, 21},
                          Dims{3, 40, 9, 30}})
      for (int64_t k : {3, 5})
        for (int64_t stride : {1, 2}) {
          DwCase c{.label = "s" + std::to_string(stride), .dt = dt, .x = x, .kh = k, .kw = k};
          c.attrs = {{"pads", ints({k / 2, k / 2, k / 2, k / 2})},
                     {"strides", ints({stride, stride})}};
          expect_case(c);
        }
}

TEST(CudaDepthwiseConv, DilationsPadsAndAutoPad) {
  KILN_REQUIRE_GPU();
  const Window windows[] = {
      {"3x3 d2 p2", 3, 3, {{"dilations", ints({2, 2})}, {"pads", ints({2, 2, 2, 2})}}},
      {"5x5 d2 p4", 5, 5, {{"dilations", ints({2, 2})}, {"pads", ints({4, 4, 4, 4})}}},
      {"3x3 d(2,1) p(2,1)", 3, 3, {{"dilations", ints({2, 1})}, {"pads", ints({2, 1, 2, 1})}}},
      {"3x3 d(1,3)", 3, 3, {{"dilations", ints({1, 3})}}},
      {"3x3 asym p(0,1,2,0)", 3, 3, {{"pads", ints({0, 1, 2, 0})}}},
      {"5x5 asym p(2,0,1,3)", 5, 5, {{"pads", ints({2, 0, 1, 3})}}},
      {"3x3 no pads", 3, 3, {}},
      {"3x3 SAME_UPPER", 3, 3, {{"auto_pad", s("SAME_UPPER")}}},
      {"5x5 SAME_LOWER", 5, 5, {{"auto_pad", s("SAME_LOWER")}}},
      {"5x5 VALID", 5, 5, {{"auto_pad", s("VALID")}}},
      {"4x4 SAME_UPPER", 4, 4, {{"auto_pad", s("SAME_UPPER")}}},
      {"7x7 p3", 7, 7, {{"pads", ints({3, 3, 3, 3})}}},
      {"1x1", 1, 1, {}},
      {"2x3 p(1,0,0,2)", 2, 3, {{"pads", ints({1, 0, 0, 2})}}},
  };
  for (DataType dt : {kF32, kF16, kBF16})
    for (int64_t ch : {16, 24, 3})
      for (const Window& w : windows)
        for (const Dims& strides : {Dims{1, 1}, Dims{2, 2}, Dims{2, 1}, Dims{1, 3}}) {
          DwCase c{.label = std::string(w.label) + " strides" + dims_to_string(strides),
                   .dt = dt,
                   .x = {2, ch, 33, 17},
                   .kh = w.kh,
                   .kw = w.kw,
                   .attrs = w.attrs};
          c.attrs["strides"] = ints(strides);
          expect_case(c);
        }
}

TEST(CudaDepthwiseConv, FusedEpilogue) {
  KILN_REQUIRE_GPU();
  const std::vector<Activation> acts = fused_conv_activations();
  for (DataType dt : {kF32, kF16, kBF16})
    for (int64_t ch : {16, 24, 3})
      for (const Activation& a : acts)
        for (auto residual : {DwCase::kNone, DwCase::kNhwc, DwCase::kRowMajor})
          for (bool bias : {true, false})
            for (int64_t k : {3, 5}) {
              DwCase c{.label = std::string("FusedConv ") + a.name + " residual " +
                                std::to_string(residual) + (bias ? " bias" : ""),
                       .dt = dt,
                       .x = {2, ch, 13, 17},
                       .kh = k,
                       .kw = k,
                       .attrs = {{"pads", ints({k / 2, k / 2, k / 2, k / 2})}},
                       .bias = bias,
                       .fused = true,
                       .activation = a.name,
                       .act_attrs = a.attrs,
                       .residual = residual};
              expect_case(c);
            }
}

TEST(CudaDepthwiseConv, OddPointerOffsetsNarrowTheVector) {
  KILN_REQUIRE_GPU();
  for (DataType dt : {kF32, kF16})
    for (int misalign : {1, 2, 4})
      for (auto residual : {DwCase::kNone, DwCase::kNhwc}) {
        DwCase c{.label = "offset " + std::to_string(misalign),
                 .dt = dt,
                 .x = {1, 16, 19, 23},
                 .attrs = {{"pads", ints({1, 1, 1, 1})}},
                 .fused = true,
                 .activation = "HardSwish",
                 .residual = residual,
                 .misalign = misalign};
        expect_case(c);
      }
}

TEST(CudaDepthwiseConv, TacticNames) {
  KILN_REQUIRE_GPU();
  DwCase c{.label = "tactic", .dt = kF16, .x = {1, 16, 12, 12},
           .attrs = {{"pads", ints({1, 1, 1, 1})}}};
  expect_case(c, "kiln:dwconv_nhwc_3x3_f16_v8");
  c.attrs["strides"] = ints({2, 2});
  expect_case(c, "kiln:dwconv_nhwc_3x3_s2_f16_v8");
  c.dt = kF32;
  c.kh = 1;
  c.kw = 7;
  c.attrs = {};
  expect_case(c, "kiln:dwconv_nhwc_1x7_generic_f32_v4");
  c.dt = kBF16;
  c.x = {1, 6, 12, 12};
  c.kh = c.kw = 5;
  expect_case(c, "kiln:dwconv_nhwc_5x5_bf16_v2");
}

// ---- stem kernel -----------------------------------------------------------------------

/// A dense C = 4 case for the stem kernel.
DwCase stem_case(const std::string& label, DataType dt, const Dims& x, int64_t window,
                 int64_t stride, int64_t k) {
  DwCase c{.label = label, .dt = dt, .x = x, .kh = window, .kw = window, .k = k};
  const int64_t p = window / 2;
  c.attrs = {{"pads", ints({p, p, p, p})}, {"strides", ints({stride, stride})}};
  return c;
}

TEST(CudaStemConv, EveryVariant) {
  KILN_REQUIRE_GPU();
  struct V {
    int64_t window, stride, k;
  };
  for (DataType dt : {kF16, kBF16})
    for (V v : {V{7, 2, 64}, V{3, 2, 16}, V{3, 2, 32}, V{3, 1, 32}, V{3, 1, 64}})
      for (const Dims& x : {Dims{2, 4, 37, 45}, Dims{1, 4, 16, 16}, Dims{3, 4, 5, 70}}) {
        const DwCase c = stem_case("variant", dt, x, v.window, v.stride, v.k);
        expect_case(c, "kiln:stem_conv_" + std::to_string(v.window) + "x" +
                           std::to_string(v.window) + "s" + std::to_string(v.stride) + "_c4k" +
                           std::to_string(v.k) + "_" + (dt == kF16 ? "f16" : "bf16"));
      }
}

TEST(CudaStemConv, ResNetStemAndMoreTilesThanTheGrid) {
  KILN_REQUIRE_GPU();
  expect_case(stem_case("resnet stem", kF16, {2, 4, 224, 224}, 7, 2, 64));
  // 12 images of 80x80 outputs in 8x16 tiles: 600 tiles, more than the persistent grid.
  expect_case(stem_case("many tiles", kF16, {12, 4, 160, 160}, 3, 2, 16));
}

TEST(CudaStemConv, PadsWeightsLayoutAndEpilogue) {
  KILN_REQUIRE_GPU();
  const Attrs pads[] = {
      {{"pads", ints({0, 0, 0, 0})}},
      {{"pads", ints({3, 1, 0, 2})}},
      {{"auto_pad", s("SAME_UPPER")}},
  };
  for (const Attrs& a : pads)
    for (bool kcrs : {false, true}) {
      DwCase c = stem_case("pads/layout", kF16, {2, 4, 29, 33}, 7, 2, 64);
      c.attrs = a;
      c.attrs["strides"] = ints({2, 2});
      c.w_kcrs = kcrs;
      expect_case(c);
    }
  for (const Activation& act : fused_conv_activations())
    for (bool bias : {true, false})
      for (DataType dt : {kF16, kBF16}) {
        DwCase c = stem_case(std::string("FusedConv ") + act.name, dt, {1, 4, 23, 31}, 3, 2, 32);
        c.fused = true;
        c.activation = act.name;
        c.act_attrs = act.attrs;
        c.bias = bias;
        expect_case(c);
      }
}

TEST(CudaStemConv, UnalignedPointers) {
  KILN_REQUIRE_GPU();
  for (int misalign : {1, 2, 4}) {
    DwCase c = stem_case("offset " + std::to_string(misalign), kF16, {2, 4, 21, 19}, 7, 2, 64);
    c.misalign = misalign;
    expect_case(c);
  }
}

// ---- 1x1 convolutions as one cuBLASLt GEMM ------------------------------------------------

DwCase gemm_case(const std::string& label, DataType dt, const Dims& x, int64_t k) {
  DwCase c{.label = label, .dt = dt, .x = x, .kh = 1, .kw = 1, .k = k, .gemm1x1 = true};
  return c;
}

/// A ResNet bottleneck's last 1x1: FusedConv with a channels-last residual and Relu.
DwCase gemm_residual_relu_case(const std::string& label, const Dims& x, int64_t k) {
  DwCase c = gemm_case(label, kF16, x, k);
  c.fused = true;
  c.activation = "Relu";
  c.residual = DwCase::kNhwc;
  return c;
}

TEST(CudaConv1x1Gemm, DtypesShapesAndEpilogues) {
  KILN_REQUIRE_GPU();
  for (DataType dt : {kF16, kBF16, kF32})
    for (const Dims& x : {Dims{2, 64, 14, 15}, Dims{1, 24, 7, 9}, Dims{3, 8, 5, 5}})
      for (int64_t k : {256, 40})
        for (auto residual : {DwCase::kNone, DwCase::kNhwc})
          for (const char* act : {"", "Relu"})
            for (bool bias : {true, false}) {
              DwCase c = gemm_case(std::string("act '") + act + "' residual " +
                                       std::to_string(residual) + (bias ? " bias" : ""),
                                   dt, x, k);
              c.fused = true;
              c.activation = act;
              c.residual = residual;
              c.bias = bias;
              expect_case(c, "conv1x1_gemm:cublaslt:");
            }
  DwCase conv = gemm_case("plain Conv", kF16, {2, 32, 9, 9}, 64);
  expect_case(conv, "conv1x1_gemm:cublaslt:");
  conv.misalign = 1;  // element-aligned pointers: the fallback algorithm
  expect_case(conv, "conv1x1_gemm:cublaslt:");
}

TEST(CudaConv1x1Gemm, EveryCandidateReplays) {
  KILN_REQUIRE_GPU();
  const DwCase c = gemm_residual_relu_case("candidates", {4, 64, 28, 28}, 256);
  const Dims y{4, 256, 28, 28};
  const CaseData d = make_data(c, y);
  Config k;
  make_config(k, c, d, y);
  cuda::Handles handles;
  ASSERT_TRUE(handles.init(0).is_ok());
  k.res = handles.res();
  const cuda::KernelConfig cfg = kernel_config(c, *k.node, k.ins, k.out, k.res);
  auto candidates = cuda::conv1x1_gemm_candidates(cfg);
  ASSERT_TRUE(candidates.is_ok()) << candidates.status().to_string();
  ASSERT_FALSE(candidates->empty());
  for (const auto& cand : *candidates) {
    DwCase r = c;
    r.tactic = cand->tactic_params();
    ASSERT_EQ(r.tactic.rfind(cuda::kConv1x1GemmTacticPrefix, 0), 0u) << r.tactic;
    expect_case(r, cand->tactic());
  }
}

TEST(CudaConv1x1Gemm, RefusesWhatItDoesNotRun) {
  KILN_REQUIRE_GPU();  // the factory asks cuBLASLt for algorithms
  const DwCase c = gemm_residual_relu_case("refuse", {1, 8, 6, 6}, 16);
  const Dims y{1, 16, 6, 6};
  const CaseData d = make_data(c, y);
  cuda::Handles handles;
  ASSERT_TRUE(handles.init(0).is_ok());
  auto status = [&](auto edit) {
    Config k;
    make_config(k, c, d, y);
    k.res = handles.res();
    edit(k);
    const cuda::KernelConfig cfg = kernel_config(c, *k.node, k.ins, k.out, k.res);
    return cuda::create_conv1x1_gemm(cfg).status();
  };
  EXPECT_TRUE(status([](Config&) {}).is_ok());
  auto refused = [&](const char* what, auto edit) {
    const Status st = status(edit);
    EXPECT_EQ(st.code(), ErrorCode::kNoGpuKernel) << what << ": " << st.to_string();
  };
  refused("HardSwish", [](Config& k) { k.node->attrs["activation"] = s("HardSwish"); });
  refused("row-major residual", [](Config& k) { k.ins[3].layout = cuda::Layout::kRowMajor; });
  refused("3x3 window", [](Config& k) {
    k.ins[1].dims = {16, 8, 3, 3};
    k.node->attrs["pads"] = ints({1, 1, 1, 1});
  });
  refused("stride 2", [](Config& k) {
    k.node->attrs["strides"] = ints({2, 2});
    k.out.dims = {1, 16, 3, 3};
    k.ins[3].dims = {1, 16, 3, 3};
  });
  DwCase bad = c;
  bad.tactic = "cudnn_garbage";
  Config k;
  make_config(k, bad, d, y);
  k.res = handles.res();
  const Status st =
      cuda::create_conv1x1_gemm(kernel_config(bad, *k.node, k.ins, k.out, k.res)).status();
  EXPECT_EQ(st.code(), ErrorCode::kTacticUnavailable) << st.to_string();
}

// ---- 1x1 convolutions on kiln's tensor-core GEMM --------------------------------------
// (The kernel itself: tests/gpu/tc_gemm_test.cc; here the convolution's route to it.)

TEST(CudaConv1x1Tc, EveryCandidateReplays) {
  KILN_REQUIRE_GPU();
  for (DataType dt : {kF16, kBF16}) {
    DwCase c = gemm_residual_relu_case("tc candidates", {1, 64, 14, 14}, 256);
    c.dt = dt;
    const Dims y{1, 256, 14, 14};
    const CaseData d = make_data(c, y);
    Config k;
    make_config(k, c, d, y);
    k.res.sm_count = 132;
    k.res.cc_major = 9;
    const cuda::KernelConfig cfg = kernel_config(c, *k.node, k.ins, k.out, k.res);
    auto candidates = cuda::conv1x1_tc_candidates(cfg);
    ASSERT_TRUE(candidates.is_ok()) << candidates.status().to_string();
    ASSERT_FALSE(candidates->empty());
    for (const auto& cand : *candidates) {
      DwCase r = c;
      r.gemm1x1 = false;
      r.tc1x1 = true;
      r.tactic = cand->tactic_params();
      expect_case(r, cand->tactic());
    }
  }
}

TEST(CudaConv1x1Tc, EpiloguesAndShapes) {
  KILN_REQUIRE_GPU();
  for (const Activation& act : fused_conv_activations())
    for (const Dims& x : {Dims{2, 24, 7, 9}, Dims{1, 40, 5, 5}}) {
      DwCase c = gemm_case(std::string("tc act '") + act.name + "'", kF16, x, 72);
      c.gemm1x1 = false;
      c.tc1x1 = true;
      c.tactic = "kiln_tcgemm:32x64s1";
      c.fused = true;
      c.activation = act.name;
      c.act_attrs = act.attrs;
      c.residual = DwCase::kNhwc;
      expect_case(c, "kiln:tc_gemm_32x64_splitk1_f16");
    }
  DwCase conv = gemm_case("tc plain Conv, no bias", kBF16, {2, 128, 6, 6}, 64);
  conv.gemm1x1 = false;
  conv.tc1x1 = true;
  conv.bias = false;
  conv.tactic = "kiln_tcgemm:64x64s2";
  expect_case(conv, "kiln:tc_gemm_64x64_splitk2_bf16");
}

TEST(CudaConv1x1Tc, RefusesWhatItDoesNotRun) {
  DwCase c = gemm_residual_relu_case("tc refuse", {1, 64, 6, 6}, 16);
  c.gemm1x1 = false;
  c.tc1x1 = true;
  const Dims y{1, 16, 6, 6};
  const CaseData d = make_data(c, y);
  auto status = [&](const std::string& tactic, auto edit) {
    DwCase r = c;
    r.tactic = tactic;
    Config k;
    make_config(k, r, d, y);
    k.res.sm_count = 132;
    edit(k);
    return cuda::create_conv1x1_tc(kernel_config(r, *k.node, k.ins, k.out, k.res)).status();
  };
  auto none = [](Config&) {};
  EXPECT_EQ(status("kiln_tcgemm:64x64", none).code(), ErrorCode::kTacticUnavailable);
  EXPECT_EQ(status("gemm1x1:lt00", none).code(), ErrorCode::kTacticUnavailable);
  EXPECT_EQ(status("kiln_tcgemm:64x64s1", [](Config& k) { k.res.cc_major = 8; }).code(),
            ErrorCode::kTacticUnavailable);
  EXPECT_EQ(status("kiln_tcgemm:64x64s1", [](Config& k) {
              k.ins[1].dims = {16, 64, 3, 3};
              k.node->attrs["pads"] = ints({1, 1, 1, 1});
            }).code(),
            ErrorCode::kNoGpuKernel);
}

// ---- what the factory refuses (no device needed) --------------------------------------

/// The factory's answer for `c` with its operands possibly changed by `edit`.
template <typename Edit>
Status create_status(const DwCase& c, const Dims& y_dims, Edit edit) {
  const CaseData d = make_data(c, y_dims);
  Config k;
  make_config(k, c, d, y_dims);
  edit(k);
  const cuda::KernelConfig cfg = kernel_config(c, *k.node, k.ins, k.out, k.res);
  return create_kernel(c, cfg).status();
}

TEST(CudaDepthwiseConv, RefusesWhatItDoesNotRun) {
  const DwCase c{.label = "refuse", .dt = kF16, .x = {1, 8, 6, 6},
                 .attrs = {{"pads", ints({1, 1, 1, 1})}}};
  const Dims y{1, 8, 6, 6};
  EXPECT_TRUE(create_status(c, y, [](Config&) {}).is_ok());
  auto refused = [&](const char* what, auto edit) {
    const Status st = create_status(c, y, edit);
    EXPECT_EQ(st.code(), ErrorCode::kNoGpuKernel) << what << ": " << st.to_string();
  };
  refused("row-major X", [](Config& k) { k.ins[0].layout = cuda::Layout::kRowMajor; });
  refused("row-major Y", [](Config& k) { k.out.layout = cuda::Layout::kRowMajor; });
  refused("group 1", [](Config& k) { k.node->attrs["group"] = i(1); });
  refused("f64", [](Config& k) {
    for (auto& o : k.ins) o.dtype = DataType::kF64;
    k.out.dtype = DataType::kF64;
  });
  refused("mixed dtypes", [](Config& k) { k.ins[1].dtype = kF32; });
  refused("channel multiplier 2", [](Config& k) {
    k.ins[1].dims = {16, 1, 3, 3};
    k.out.dims[1] = 16;
  });
  refused("3-D", [](Config& k) {
    k.ins[0].dims = {1, 8, 6};
    k.ins[1].dims = {8, 1, 3};
    k.out.dims = {1, 8, 6};
  });
  refused("bias shape", [](Config& k) { k.ins[2].dims = {4}; });
  refused("another op", [](Config& k) { k.node->op_type = "MaxPool"; });
}

TEST(CudaStemConv, RefusesWhatItDoesNotRun) {
  const DwCase c = stem_case("refuse", kF16, {1, 4, 8, 8}, 3, 2, 32);
  const Dims y{1, 32, 4, 4};
  // Creating the kernel sizes its grid on the device; the refusals come before that.
  if (cuda_device_count() > 0) EXPECT_TRUE(create_status(c, y, [](Config&) {}).is_ok());
  auto refused = [&](const char* what, auto edit) {
    const Status st = create_status(c, y, edit);
    EXPECT_EQ(st.code(), ErrorCode::kNoGpuKernel) << what << ": " << st.to_string();
  };
  refused("row-major X", [](Config& k) { k.ins[0].layout = cuda::Layout::kRowMajor; });
  refused("f32", [](Config& k) {
    for (auto& o : k.ins) o.dtype = kF32;
    k.out.dtype = kF32;
  });
  refused("3 input channels", [](Config& k) {
    k.ins[0].dims[1] = 3;
    k.ins[1].dims[1] = 3;
  });
  refused("K 48 (no variant)", [](Config& k) {
    k.ins[1].dims[0] = 48;
    k.ins[2].dims[0] = 48;
    k.out.dims[1] = 48;
  });
  refused("dilation 2", [](Config& k) {
    k.node->attrs["dilations"] = ints({2, 2});
    k.node->attrs["pads"] = ints({2, 2, 2, 2});
  });
  refused("group 2", [](Config& k) {
    k.node->attrs["group"] = i(2);
    k.ins[1].dims[1] = 2;
  });
}

TEST(CudaDepthwiseConv, EmptyOutputLaunchesNothing) {
  const DwCase c{.label = "empty", .dt = kF16, .x = {0, 8, 6, 6},
                 .attrs = {{"pads", ints({1, 1, 1, 1})}}};
  const CaseData d = make_data(c, {0, 8, 6, 6});
  Config k;
  make_config(k, c, d, {0, 8, 6, 6});
  const cuda::KernelConfig cfg = kernel_config(c, *k.node, k.ins, k.out, k.res);
  auto kernel = cuda::create_depthwise_conv(cfg);
  ASSERT_TRUE(kernel.is_ok()) << kernel.status().to_string();
  const void* ins[] = {nullptr, nullptr, nullptr};
  void* outs[] = {nullptr};
  const cuda::LaunchArgs args{ins, outs, nullptr, nullptr, k.res};
  EXPECT_TRUE((*kernel)->enqueue(args).is_ok());
}

}  // namespace
}  // namespace kiln
