// kiln.FusedPointwise on the GPU (src/cuda/fused_pointwise.cc: NVRTC-generated kernels)
// against its CPU reference: every op of the table, f32/f16/bf16/f64 with odd sizes, tile
// and pack boundaries and the broadcast patterns the code generator specialises (same
// shape, scalar, per-channel runs, rows, general), NCHW/NHWC/mixed operand layouts,
// misaligned pointers (scalar kernel), empty outputs; the plan artifact (a kernel built from
// another's artifact() loads without compiling and computes bit-identical results, a
// damaged or foreign one is ignored and the kernel compiled); and whole builds where the
// fuse_pointwise pass makes the node (FP32, and FP16 with an NHWC region and no reformat).
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>

#include "builder/layout.h"
#include "cuda/fused_pointwise.h"
#include "direct_kernel.h"
#include "gpu_test_util.h"
#include "ops/fused_pointwise.h"
#include "ops/registry.h"
#include "runtime/executor.h"

namespace kiln {
namespace {

using namespace gputest;
using cuda::Layout;
using ops::PwOp;
using ops::PwProgram;
using Dims = std::vector<int64_t>;

constexpr DataType kF32 = DataType::kF32, kF16 = DataType::kF16, kBF16 = DataType::kBF16,
                   kF64 = DataType::kF64;

/// The node attributes of program `p`.
Attrs program_attrs(const PwProgram& p) {
  ir::Graph g;
  ir::Node* n = g.add_node("FusedPointwise", "tmp", {}, {}, "kiln", 1);
  ops::write_pw_program(*n, p);
  return Attrs(n->attrs.begin(), n->attrs.end());
}

/// Seeded uniform values in [lo, hi) of dtype dt.
HostTensor random(DataType dt, const Dims& dims, uint64_t seed, double lo = -2, double hi = 2) {
  HostTensor t(dt, dims);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t k = 0; k < t.numel(); ++k) t.set_f64(k, u(rng));
  return t;
}

/// A graph holding one FusedPointwise node over graph inputs shaped like `ins`.
ir::Node* fused_graph(ir::Graph& g, const PwProgram& p, const std::vector<HostTensor>& ins) {
  std::vector<ir::Value*> vin;
  for (size_t k = 0; k < ins.size(); ++k) {
    ir::Value* v = g.add_value("in" + std::to_string(k), ins[k].dtype(), ins[k].shape());
    g.inputs.push_back(v);
    vin.push_back(v);
  }
  ir::Node* n = g.add_node(ops::kFusedPointwiseOp, "node", vin, {g.add_value("out")},
                           ops::kFusedPointwiseDomain, ops::kFusedPointwiseVersion);
  ops::write_pw_program(*n, p);
  g.outputs = {n->outputs[0]};
  return n;
}

/// The CPU reference of the node (logical order).
Result<HostTensor> cpu_run(const PwProgram& p, const std::vector<HostTensor>& ins) {
  ir::Graph g;
  fused_graph(g, p, ins);
  KILN_RETURN_IF_ERROR(resolve_schemas(g));
  KILN_RETURN_IF_ERROR(infer_graph(g));
  KILN_ASSIGN_OR_RETURN(std::vector<HostTensor> out, runtime::run_graph(g, ins));
  return std::move(out.at(0));
}

struct GpuRun {
  HostTensor y;  ///< logical order
  std::unique_ptr<cuda::Kernel> kernel;
};

/// Creates the registered kernel for the node with these operand layouts (and artifact),
/// runs it once on device copies (output poisoned with 0xFF, `misalign` bytes added to the
/// addresses of input 0 and the output) and returns the output and the kernel.
Result<GpuRun> gpu_run(const PwProgram& p, const std::vector<HostTensor>& ins,
                       const std::vector<Layout>& layouts, Layout out_layout,
                       const std::vector<uint8_t>* artifact = nullptr, size_t misalign = 0) {
  ir::Graph g;
  ir::Node* n = fused_graph(g, p, ins);
  KILN_RETURN_IF_ERROR(resolve_schemas(g));
  KILN_RETURN_IF_ERROR(infer_graph(g));
  const Dims out_dims = *n->outputs[0]->shape.concrete();
  std::vector<cuda::Operand> operands;
  for (size_t k = 0; k < ins.size(); ++k)
    operands.push_back({.dtype = ins[k].dtype(), .dims = ins[k].dims(), .layout = layouts[k]});
  cuda::Resources res;
  cudaDeviceGetAttribute(&res.sm_count, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceGetAttribute(&res.cc_major, cudaDevAttrComputeCapabilityMajor, 0);
  cudaDeviceGetAttribute(&res.cc_minor, cudaDevAttrComputeCapabilityMinor, 0);
  const cuda::Operand out{.dtype = p.out_dtype, .dims = out_dims, .layout = out_layout};
  cuda::KernelConfig cfg{*n, operands, {out}, res, {}};
  cfg.artifact = artifact;
  const cuda::KernelEntry* e =
      cuda::KernelRegistry::instance().find(ops::kFusedPointwiseDomain, ops::kFusedPointwiseOp);
  if (!e || !e->create || !e->nhwc)
    return Status(ErrorCode::kNoGpuKernel, "FusedPointwise is not registered");
  GpuRun r;
  KILN_ASSIGN_OR_RETURN(r.kernel, e->create(cfg));
  std::vector<void*> blocks;
  auto buffer = [&](size_t bytes, size_t offset) -> char* {
    void* q = nullptr;
    if (cudaMalloc(&q, bytes + offset + 16) != cudaSuccess) return nullptr;
    blocks.push_back(q);
    return static_cast<char*>(q) + offset;
  };
  std::vector<const void*> dev_in;
  bool ok = true;
  for (size_t k = 0; k < ins.size(); ++k) {
    const HostTensor mem = convert_layout(ins[k], layouts[k], true);
    char* q = buffer(mem.bytes(), k == 0 ? misalign : 0);
    ok = ok && q && cudaMemcpy(q, mem.raw(), mem.bytes(), cudaMemcpyHostToDevice) == cudaSuccess;
    dev_in.push_back(q);
  }
  HostTensor y(p.out_dtype, out_dims);
  char* dev_y = buffer(y.bytes(), misalign);
  ok = ok && dev_y && cudaMemset(dev_y, 0xFF, y.bytes()) == cudaSuccess;
  Status st = ok ? Status::ok() : Status(ErrorCode::kCudaError, "device buffers");
  void* outs[1] = {dev_y};
  if (st.is_ok()) st = r.kernel->enqueue({dev_in.data(), outs, nullptr, nullptr, res});
  if (st.is_ok() && (cudaDeviceSynchronize() != cudaSuccess ||
                     cudaMemcpy(y.raw(), dev_y, y.bytes(), cudaMemcpyDeviceToHost) != cudaSuccess))
    st = Status(ErrorCode::kCudaError, "running the kernel failed");
  for (void* q : blocks) cudaFree(q);
  KILN_RETURN_IF_ERROR(st);
  r.y = convert_layout(y, out_layout, false);
  return r;
}

/// GPU (given layouts) vs CPU on the same inputs, within the output dtype's tolerance.
void expect_gpu_matches_cpu(const PwProgram& p, const std::vector<HostTensor>& ins,
                            const std::vector<Layout>& layouts, Layout out_layout,
                            size_t misalign = 0) {
  auto want = cpu_run(p, ins);
  ASSERT_TRUE(want.is_ok()) << want.status().to_string();
  auto got = gpu_run(p, ins, layouts, out_layout, nullptr, misalign);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  const auto [atol, rtol] = default_tolerance(p.out_dtype);
  EXPECT_EQ(compare_tensors(*want, got->y, atol, rtol), "") << "tactic " << got->kernel->tactic();
}

/// y = Gelu(x * a + b) * Sigmoid(c) + 0.25, clipped to [-1.5, 3]: four inputs, every kind
/// of instruction; out_dtype `dt`.
PwProgram mixed_program(DataType dt) {
  PwProgram p;
  p.out_dtype = dt;
  p.code = {{PwOp::kInput, 0},
            {PwOp::kInput, 1},
            {PwOp::kMul, 0, 1},
            {PwOp::kInput, 2},
            {PwOp::kAdd, 2, 3},
            {PwOp::kGelu, 4},
            {PwOp::kInput, 3},
            {PwOp::kSigmoid, 6},
            {PwOp::kMul, 5, 7},
            {PwOp::kConst, -1, -1, 0.25f},
            {PwOp::kAdd, 8, 9},
            {PwOp::kClip, 10, -1, -1.5f, 3.0f}};
  return p;
}

// ---- every op -----------------------------------------------------------------------------------

TEST(FusedPointwiseGpu, EveryTableOpMatchesCpu) {
  KILN_REQUIRE_GPU();
  // Input ranges inside each op's domain (x; y of binary ops is in [0.5, 2]).
  const std::map<std::string, std::pair<double, double>> range = {
      {"Log", {0.05, 4}},   {"Sqrt", {0, 4}},        {"Reciprocal", {0.25, 3}},
      {"Pow", {0.1, 2}},    {"Tan", {-1.2, 1.2}},    {"Asin", {-0.95, 0.95}},
      {"Acos", {-0.95, 0.95}}, {"Acosh", {1.05, 5}}, {"Atanh", {-0.9, 0.9}},
      {"Sigmoid", {-20, 20}}, {"Softplus", {-20, 20}}, {"Round", {-5, 5}}};
  for (const ops::PwOpInfo& e : ops::pw_ops()) {
    if (e.arity == 0) continue;
    SCOPED_TRACE(e.name);
    auto it = range.find(e.name);
    const auto [lo, hi] = it == range.end() ? std::pair{-3.0, 3.0} : it->second;
    PwProgram p;
    p.out_dtype = kF32;
    p.code = {{PwOp::kInput, 0}, {PwOp::kInput, 1},
              {e.op, 0, e.arity == 2 ? 1 : -1, e.default0 == 0 ? 0.3f : e.default0, e.default1}};
    if (e.op == PwOp::kClip) p.code[2].p0 = -0.5f, p.code[2].p1 = 0.75f;
    const std::vector<HostTensor> ins = {random(kF32, {3, 1027}, 1, lo, hi),
                                         random(kF32, {1027}, 2, 0.5, 2)};
    expect_gpu_matches_cpu(p, ins, {Layout::kRowMajor, Layout::kRowMajor}, Layout::kRowMajor);
  }
}

// ---- dtypes, sizes, broadcast patterns (through the builder: plan, artifact, context) -----------

TEST(FusedPointwiseGpu, DtypesSizesAndBroadcastPatternsMatchCpu) {
  KILN_REQUIRE_GPU();
  struct Shapes {
    Dims x, a, b, c;
    const char* label;
  };
  const std::vector<Shapes> shapes = {
      {{1}, {1}, {1}, {1}, "one element"},
      {{7}, {7}, {1}, {}, "odd, scalars"},
      {{33, 129}, {129}, {33, 1}, {1, 1}, "row and column"},
      {{2, 8, 255, 3}, {8, 1, 1}, {1, 8, 1, 1}, {2, 1, 1, 1}, "per channel, per batch"},
      {{2, 16, 16, 17}, {16, 16, 17}, {16, 1, 17}, {1}, "general"},
      {{4, 3, 128, 128}, {3, 1, 128}, {4, 3, 128, 128}, {128}, "tile boundary 128"},
      {{257, 255}, {257, 1}, {255}, {257, 255}, "257x255"},
      {{1000003}, {1000003}, {1}, {1000003}, "1000003"},
  };
  for (DataType dt : {kF32, kF16, kBF16, kF64}) {
    for (const Shapes& s : shapes) {
      OpCase c{.op = ops::kFusedPointwiseOp, .domain = ops::kFusedPointwiseDomain,
               .attrs = program_attrs(mixed_program(dt)),
               .inputs = {{.dtype = dt, .dims = s.x}, {.dtype = dt, .dims = s.a},
                          {.dtype = dt, .dims = s.b}, {.dtype = dt, .dims = s.c}},
               .label = std::string(dtype_name(dt)) + " " + s.label};
      expect_matches_cpu(c);
    }
  }
  // Mixed input dtypes: f16 x, bf16 a, f32 b and c, bf16 output.
  OpCase c{.op = ops::kFusedPointwiseOp, .domain = ops::kFusedPointwiseDomain,
           .attrs = program_attrs(mixed_program(kBF16)),
           .inputs = {{.dtype = kF16, .dims = {5, 64, 9}}, {.dtype = kBF16, .dims = {64, 1}},
                      {.dtype = kF32, .dims = {9}}, {.dtype = kF32, .dims = {}}},
           .label = "mixed dtypes"};
  expect_matches_cpu(c);
}

// ---- layouts ------------------------------------------------------------------------------------

TEST(FusedPointwiseGpu, NhwcAndMixedLayoutsMatchCpu) {
  KILN_REQUIRE_GPU();
  const Layout R = Layout::kRowMajor, N = Layout::kNhwc;
  for (DataType dt : {kF16, kBF16, kF32}) {
    for (int64_t ch : {64, 3, 33}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " C=" + std::to_string(ch));
      const Dims full = {2, ch, 7, 9};
      const std::vector<HostTensor> ins = {random(dt, full, 3), random(dt, {1, ch, 1, 1}, 4),
                                           random(dt, full, 5), random(dt, {ch, 1, 1}, 6)};
      const PwProgram p = mixed_program(dt);
      // NHWC region: activations and the [1,C,1,1] operand NHWC, [C,1,1] row-major.
      expect_gpu_matches_cpu(p, ins, {N, N, N, R}, N);
      // A reformat fused into the op: NCHW activation in, NHWC out, and back.
      expect_gpu_matches_cpu(p, ins, {R, R, N, R}, N);
      expect_gpu_matches_cpu(p, ins, {N, N, R, R}, R);
      // Misaligned input 0 and output: the scalar kernel.
      expect_gpu_matches_cpu(p, ins, {N, N, N, R}, N, dtype_size(dt));
    }
  }
}

TEST(FusedPointwiseGpu, EmptyOutputLaunchesNothing) {
  KILN_REQUIRE_GPU();
  const PwProgram p = mixed_program(kF32);
  const std::vector<HostTensor> ins = {HostTensor(kF32, {0, 5}), HostTensor(kF32, {5}),
                                       HostTensor(kF32, {1}), HostTensor(kF32, {})};
  auto r = gpu_run(p, ins, std::vector<Layout>(4, Layout::kRowMajor), Layout::kRowMajor);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->y.numel(), 0);
}

// ---- artifacts ----------------------------------------------------------------------------------

bool bitwise_equal(const HostTensor& a, const HostTensor& b) {
  return a.dtype() == b.dtype() && a.dims() == b.dims() &&
         std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

TEST(FusedPointwiseGpu, ArtifactLoadsWithoutCompilingAndGivesIdenticalResults) {
  KILN_REQUIRE_GPU();
  const PwProgram p = mixed_program(kF16);
  const std::vector<HostTensor> ins = {random(kF16, {2, 32, 5, 5}, 7), random(kF16, {32, 1, 1}, 8),
                                       random(kF16, {5}, 9), random(kF16, {}, 10)};
  const std::vector<Layout> row(4, Layout::kRowMajor);
  auto built = gpu_run(p, ins, row, Layout::kRowMajor);
  ASSERT_TRUE(built.is_ok()) << built.status().to_string();
  const auto* k0 = dynamic_cast<const cuda::FusedPointwiseKernel*>(built->kernel.get());
  ASSERT_NE(k0, nullptr);
  EXPECT_EQ(k0->tactic(), "kiln:nvrtc_pointwise");
  EXPECT_FALSE(k0->loaded_from_artifact());
  const std::vector<uint8_t> art = k0->artifact();
  ASSERT_GT(art.size(), 48u);

  auto loaded = gpu_run(p, ins, row, Layout::kRowMajor, &art);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  const auto* k1 = dynamic_cast<const cuda::FusedPointwiseKernel*>(loaded->kernel.get());
  ASSERT_NE(k1, nullptr);
  EXPECT_TRUE(k1->loaded_from_artifact());
  EXPECT_EQ(k1->artifact(), art);
  EXPECT_TRUE(bitwise_equal(loaded->y, built->y));
}

TEST(FusedPointwiseGpu, DamagedOrForeignArtifactFallsBackToCompiling) {
  KILN_REQUIRE_GPU();
  const PwProgram p = mixed_program(kF32);
  const std::vector<HostTensor> ins = {random(kF32, {3, 40}, 11), random(kF32, {40}, 12),
                                       random(kF32, {3, 1}, 13), random(kF32, {}, 14)};
  const std::vector<Layout> row(4, Layout::kRowMajor);
  auto ref = gpu_run(p, ins, row, Layout::kRowMajor);
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  const std::vector<uint8_t> good = ref->kernel->artifact();
  // The artifact of another config: same program, other dims (another source).
  const std::vector<HostTensor> other_ins = {random(kF32, {3, 41}, 11), random(kF32, {41}, 12),
                                             random(kF32, {3, 1}, 13), random(kF32, {}, 14)};
  auto other = gpu_run(p, other_ins, row, Layout::kRowMajor);
  ASSERT_TRUE(other.is_ok()) << other.status().to_string();

  std::vector<std::pair<std::string, std::vector<uint8_t>>> bad;
  bad.emplace_back("empty", std::vector<uint8_t>{});
  bad.emplace_back("truncated", std::vector<uint8_t>(good.begin(), good.begin() + good.size() / 2));
  auto flipped = good;
  flipped[flipped.size() - 100] ^= 0x5a;  // inside the image: its hash no longer matches
  bad.emplace_back("damaged image", flipped);
  auto magic = good;
  magic[0] ^= 1;
  bad.emplace_back("bad magic", magic);
  auto arch = good;
  arch[12] ^= 1;  // ArtifactHeader::arch
  bad.emplace_back("other architecture", arch);
  bad.emplace_back("other kernel", other->kernel->artifact());
  for (const auto& [label, art] : bad) {
    SCOPED_TRACE(label);
    auto r = gpu_run(p, ins, row, Layout::kRowMajor, &art);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    const auto* k = dynamic_cast<const cuda::FusedPointwiseKernel*>(r->kernel.get());
    ASSERT_NE(k, nullptr);
    EXPECT_FALSE(k->loaded_from_artifact());
    EXPECT_EQ(k->artifact(), good);
    EXPECT_TRUE(bitwise_equal(r->y, ref->y));
  }
}

// ---- whole builds: the pass makes the node ------------------------------------------------------

struct BuildResult {
  std::vector<HostTensor> outputs;
  int fused = 0, reformats = 0, host = 0;
  bool fused_nhwc = false;
};

Result<BuildResult> build(const std::function<void(Net&)>& make, std::vector<HostTensor>& inputs,
                          Backend backend, Precision precision) {
  Net n;
  make(n);
  BuilderConfig cfg;
  cfg.backend = backend;
  cfg.precision = precision;
  cfg.opt_level = 2;
  cfg.allow_tf32 = false;
  KILN_ASSIGN_OR_RETURN(EngineRun er, build_and_run(std::move(n.g), inputs, cfg));
  BuildResult b;
  b.outputs = std::move(er.outputs);
  for (const auto& node : er.engine->graph().nodes()) {
    if (node->op_type == ops::kFusedPointwiseOp) {
      ++b.fused;
      EXPECT_EQ(node->tactic, "kiln:nvrtc_pointwise") << node->name;
      EXPECT_FALSE(node->tactic_artifact.empty()) << node->name << " has no stored cubin";
      b.fused_nhwc |= node->outputs[0]->layout == builder::kLayoutNhwc;
    }
    b.reformats += node->name.rfind(builder::kReformatPrefix, 0) == 0;
    b.host += node->tactic == "host";
  }
  return b;
}

std::vector<HostTensor> net_inputs(const std::function<void(Net&)>& make) {
  Net n;
  make(n);
  std::vector<HostTensor> in;
  for (const ir::Value* v : n.g->inputs)
    in.push_back(random(v->dtype, *v->shape.concrete(), 21, -1, 1));
  return in;
}

TEST(FusedPointwiseGpu, ErfGeluChainFusedByTheBuilderMatchesCpu) {
  KILN_REQUIRE_GPU();
  // x → Mul(x, scale[C,1,1]) + bias[1,C,1,1] → erf GELU as exporters write it.
  auto make = [](Net& n) {
    ir::Value* x = n.input({2, 24, 13, 13});
    ir::Value* scaled = n.op("Mul", {x, n.constant({24, 1, 1})});
    ir::Value* v = n.op("Add", {scaled, n.constant({1, 24, 1, 1})});
    ir::Value* e = n.op("Erf", {n.op("Div", {v, n.constant({}, 1.4142135, 1.4142136)})});
    ir::Value* h = n.op("Mul", {n.op("Mul", {v, n.op("Add", {e, n.constant({}, 1, 1)})}),
                                n.constant({}, 0.5, 0.5)});
    n.output(h);
  };
  std::vector<HostTensor> in = net_inputs(make);
  auto cpu = build(make, in, Backend::kCpu, Precision::kFp32);
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  EXPECT_EQ(cpu->fused, 0);  // CPU builds keep the ONNX ops
  auto gpu = build(make, in, Backend::kCuda, Precision::kFp32);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().to_string();
  EXPECT_EQ(gpu->fused, 1);
  EXPECT_EQ(gpu->host, 0);
  EXPECT_EQ(compare_tensors(cpu->outputs[0], gpu->outputs[0], 1e-5, 1e-5), "");
}

TEST(FusedPointwiseGpu, Fp16NhwcRegionFusesWithoutReformats) {
  KILN_REQUIRE_GPU();
  // Two convolutions, then Tanh(c1) * Sigmoid(c2) + c1 (c1 has two readers, so no
  // convolution epilogue takes it), then a convolution: the fused node runs NHWC between them.
  auto make = [](Net& n) {
    ir::Value* x = n.input({2, 16, 12, 12});
    ir::Value* c1 = n.conv(x, 16, 32, 3);
    ir::Value* c2 = n.conv(x, 16, 32, 1);
    ir::Value* m = n.op("Mul", {n.op("Tanh", {c1}), n.op("Sigmoid", {c2})});
    n.output(n.conv(n.op("Add", {m, c1}), 32, 8, 3));
  };
  std::vector<HostTensor> in = net_inputs(make);
  auto cpu = build(make, in, Backend::kCpu, Precision::kFp32);
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  auto gpu = build(make, in, Backend::kCuda, Precision::kFp16);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().to_string();
  EXPECT_EQ(gpu->fused, 1);
  EXPECT_TRUE(gpu->fused_nhwc);
  EXPECT_EQ(gpu->reformats, 0);
  EXPECT_EQ(gpu->host, 0);
  EXPECT_EQ(compare_tensors(cpu->outputs[0], gpu->outputs[0], 3e-2, 3e-2), "");
}

}  // namespace
}  // namespace kiln
