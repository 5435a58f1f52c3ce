// kiln's tensor-core GEMM (src/cuda/tc_gemm.h, kernels/tc_gemm.cu) against a double
// product of the same 16-bit inputs on the host: every compiled tile with split-K 1, 2, 3
// and 8 (clusters of one to eight CTAs); sizes off the tile edges (M and N not multiples of
// the tile, K not a multiple of 32); K % 8 != 0, N % 4 != 0 and odd pointer offsets (the
// element-copy paths); alpha, bias, residual and every FusedConv activation; f16 and bf16;
// bitwise-equal results from run to run. Then the Gemm route (replay of a recorded tile,
// candidates, refusals) and the parameters' round trip.
#include <cuda_runtime.h>

#include <random>
#include <string>
#include <vector>

#include "cuda/handles.h"
#include "cuda/tc_gemm.h"
#include "gpu_test_util.h"

namespace kiln::gputest {
namespace {

using cuda::TcGemmSpec;
using cuda::TcGemmTile;
using ops::FusedActivation;
using ops::FusedEpilogue;

struct TcCase {
  DataType dt = kF16;
  int64_t m = 1, n = 1, k = 1;
  TcGemmTile tile;
  bool bias = true, z = false;
  FusedEpilogue act;
  float alpha = 1.0f;
  int misalign = 0;  ///< elements by which X and Y are offset (element-copy paths)

  std::string label() const {
    return std::string(dtype_name(dt)) + " " + std::to_string(m) + "x" + std::to_string(n) +
           "x" + std::to_string(k) + " " + cuda::tc_gemm_params(tile) +
           (bias ? " bias" : "") + (z ? " residual" : "") + " act " +
           std::to_string(static_cast<int>(act.act)) + " alpha " + std::to_string(alpha) +
           " misalign " + std::to_string(misalign);
  }
};

HostTensor random_tensor(DataType dt, std::vector<int64_t> dims, std::mt19937_64& rng, double lo,
                         double hi) {
  HostTensor t(dt, std::move(dims));
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.set_f64(i, u(rng));
  return t;
}

/// The spec's inputs: X [M, K], W [N, K], bias [N], Z [M, N] (undefined when absent).
struct Operands {
  HostTensor x, w, b, z;
};

Operands make_operands(const TcCase& c) {
  std::mt19937_64 rng(99 + c.m * 7 + c.n * 3 + c.k);
  Operands o;
  o.x = random_tensor(c.dt, {c.m, c.k}, rng, -1, 1);
  o.w = random_tensor(c.dt, {c.n, c.k}, rng, -0.5, 0.5);
  if (c.bias) o.b = random_tensor(c.dt, {c.n}, rng, -1, 1);
  if (c.z) o.z = random_tensor(c.dt, {c.m, c.n}, rng, -1, 1);
  return o;
}

/// act(alpha · X·Wᵀ + b + z) in double, rounded once to the case's dtype.
HostTensor reference(const TcCase& c, const Operands& o) {
  HostTensor y(c.dt, {c.m, c.n});
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < c.k; ++p) acc += o.x.get_f64(i * c.k + p) * o.w.get_f64(j * c.k + p);
      acc *= c.alpha;
      if (c.bias) acc += o.b.get_f64(j);
      if (c.z) acc += o.z.get_f64(i * c.n + j);
      y.set_f64(i * c.n + j, ops::apply_fused_activation<double>(c.act, acc));
    }
  return y;
}

cuda::Resources device_resources() {
  cuda::Resources res;
  EXPECT_EQ(cudaDeviceGetAttribute(&res.sm_count, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  EXPECT_EQ(cudaDeviceGetAttribute(&res.cc_major, cudaDevAttrComputeCapabilityMajor, 0),
            cudaSuccess);
  return res;
}

/// Runs `kernel` on device copies of `o` (slots X, W, B, Z), Y poisoned with NaNs; returns
/// Y (undefined after a failure).
HostTensor run_kernel(cuda::Kernel& kernel, const TcCase& c, const Operands& o,
                      const cuda::Resources& res) {
  const size_t off = static_cast<size_t>(c.misalign) * dtype_size(c.dt);
  std::vector<void*> alloc;
  auto upload = [&](const HostTensor& t, size_t offset) -> const void* {
    if (!t.defined()) return nullptr;
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, t.bytes() + offset + 16), cudaSuccess);
    alloc.push_back(p);
    char* base = static_cast<char*>(p) + offset;
    EXPECT_EQ(cudaMemcpy(base, t.raw(), t.bytes(), cudaMemcpyHostToDevice), cudaSuccess);
    return base;
  };
  const void* slots[4] = {upload(o.x, off), upload(o.w, 0), upload(o.b, 0), upload(o.z, 0)};
  HostTensor y(c.dt, {c.m, c.n});
  void* y_alloc = nullptr;
  EXPECT_EQ(cudaMalloc(&y_alloc, y.bytes() + off + 16), cudaSuccess);
  EXPECT_EQ(cudaMemset(y_alloc, 0xff, y.bytes() + off + 16), cudaSuccess);
  void* outs[] = {static_cast<char*>(y_alloc) + off};
  const cuda::LaunchArgs args{slots, outs, nullptr, nullptr, res};
  const Status st = kernel.enqueue(args);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(y.raw(), outs[0], y.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  for (void* p : alloc) cudaFree(p);
  cudaFree(y_alloc);
  return st.is_ok() ? std::move(y) : HostTensor();
}

TcGemmSpec spec_of(const TcCase& c) {
  TcGemmSpec s;
  s.dt = c.dt;
  s.m = c.m;
  s.n = c.n;
  s.k = c.k;
  s.bias_input = c.bias ? 2 : -1;
  s.z_input = c.z ? 3 : -1;
  s.alpha = c.alpha;
  s.act = c.act;
  return s;
}

/// A node for the KernelConfig (messages only).
struct Node {
  ir::Graph g;
  ir::Node* node = g.add_node("Gemm", "tc_gemm", {}, {}, "", 13);
};

/// Runs the case through make_tc_gemm_kernel; returns Y (undefined after a failure).
HostTensor run_case(const TcCase& c, const Operands& o) {
  Node n;
  const cuda::Resources res = device_resources();
  const cuda::KernelConfig cfg{*n.node, {}, {}, res, {}};
  auto kernel = cuda::make_tc_gemm_kernel(cfg, spec_of(c), c.tile);
  EXPECT_TRUE(kernel.is_ok()) << kernel.status().to_string();
  if (!kernel.is_ok()) return {};
  EXPECT_EQ((*kernel)->tactic_params(), cuda::tc_gemm_params(c.tile));
  return run_kernel(**kernel, c, o, res);
}

void expect_case(const TcCase& c) {
  SCOPED_TRACE(c.label());
  const Operands o = make_operands(c);
  const HostTensor got = run_case(c, o);
  if (!got.defined()) return;
  const auto [atol, rtol] = default_tolerance(c.dt);
  EXPECT_EQ(compare_tensors(reference(c, o), got, atol, rtol), "");
}

TEST(CudaTcGemm, EveryTileAndSplit) {
  KILN_REQUIRE_GPU();
  const TcGemmTile tiles[] = {{32, 64}, {64, 64}, {64, 128}, {128, 64}, {128, 128}};
  for (DataType dt : {kF16, kBF16})
    for (TcGemmTile t : tiles)
      for (int splits : {1, 2, 3, 8}) {
        t.splits = splits;
        // M, N off every tile edge; K = 9 steps of 32 plus a partial one.
        expect_case({.dt = dt, .m = 100, .n = 72, .k = 296, .tile = t, .z = true,
                     .act = {FusedActivation::kRelu}});
      }
}

TEST(CudaTcGemm, EpiloguesAndAlpha) {
  KILN_REQUIRE_GPU();
  const FusedEpilogue acts[] = {{FusedActivation::kNone},
                                {FusedActivation::kRelu},
                                {FusedActivation::kLeakyRelu, 0.2f},
                                {FusedActivation::kClip, -0.5f, 0.75f},
                                {FusedActivation::kSigmoid},
                                {FusedActivation::kHardSwish},
                                {FusedActivation::kSiLU}};
  for (const FusedEpilogue& act : acts)
    for (bool bias : {true, false})
      for (bool z : {true, false})
        expect_case({.m = 33, .n = 40, .k = 64, .tile = {64, 64, 2}, .bias = bias, .z = z,
                     .act = act, .alpha = bias ? 0.5f : 1.0f});
}

TEST(CudaTcGemm, NetworkShapesAndOddSizes) {
  KILN_REQUIRE_GPU();
  // A classifier (M = 1), ResNet-50 batch-1 shapes, K not a multiple of 32.
  expect_case({.m = 1, .n = 1000, .k = 2048, .tile = {32, 64, 8}});
  expect_case({.m = 49, .n = 512, .k = 2048, .tile = {64, 64, 8}, .act = {FusedActivation::kRelu}});
  expect_case({.m = 3136, .n = 64, .k = 64, .tile = {128, 64, 1}, .act = {FusedActivation::kRelu}});
  expect_case({.m = 196, .n = 1024, .k = 256, .tile = {64, 128, 4}, .z = true});
  expect_case({.m = 7, .n = 8, .k = 40, .tile = {32, 64, 2}});
  // K % 8 != 0 (element copies in), N % 4 != 0 (element stores out), tiny sizes.
  expect_case({.m = 5, .n = 6, .k = 12, .tile = {32, 64, 1}, .z = true});
  expect_case({.m = 1, .n = 1, .k = 1, .tile = {64, 64, 1}});
  expect_case({.dt = kBF16, .m = 9, .n = 13, .k = 100, .tile = {32, 64, 3}, .z = true});
}

TEST(CudaTcGemm, UnalignedPointers) {
  KILN_REQUIRE_GPU();
  for (int misalign : {1, 2, 3})
    expect_case({.m = 20, .n = 36, .k = 48, .tile = {64, 64, 1}, .z = true, .misalign = misalign});
  expect_case({.m = 20, .n = 36, .k = 96, .tile = {32, 64, 3}, .misalign = 1});
}

TEST(CudaTcGemm, SplitKIsDeterministic) {
  KILN_REQUIRE_GPU();
  const TcCase c{.m = 64, .n = 128, .k = 1024, .tile = {64, 64, 8}, .z = true};
  const Operands o = make_operands(c);
  const HostTensor a = run_case(c, o), b = run_case(c, o);
  ASSERT_TRUE(a.defined() && b.defined());
  EXPECT_EQ(compare_tensors(a, b, 0, 0), "");
}

TEST(CudaTcGemm, RefusesWhatItDoesNotRun) {
  KILN_REQUIRE_GPU();  // the factory queries the kernel's cluster occupancy
  Node n;
  const cuda::Resources res = device_resources();
  const cuda::KernelConfig cfg{*n.node, {}, {}, res, {}};
  auto refused = [&](const char* what, TcCase c) {
    const Status st = cuda::make_tc_gemm_kernel(cfg, spec_of(c), c.tile).status();
    EXPECT_EQ(st.code(), ErrorCode::kNoGpuKernel) << what << ": " << st.to_string();
  };
  refused("f32", {.dt = kF32, .m = 8, .n = 8, .k = 64});
  refused("tile 48x64", {.m = 8, .n = 8, .k = 64, .tile = {48, 64, 1}});
  refused("9 splits", {.m = 8, .n = 8, .k = 1024, .tile = {64, 64, 9}});
  refused("more splits than K-steps", {.m = 8, .n = 8, .k = 64, .tile = {64, 64, 4}});
  EXPECT_TRUE(cuda::make_tc_gemm_kernel(cfg, spec_of({.m = 8, .n = 8, .k = 64}), {64, 64, 2})
                  .is_ok());
}

TEST(CudaTcGemm, ParamsRoundTrip) {
  const TcGemmTile t{128, 64, 6};
  const std::string p = cuda::tc_gemm_params(t);
  EXPECT_EQ(p, "kiln_tcgemm:128x64s6");
  const auto back = cuda::parse_tc_gemm_params(p);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->bm, 128);
  EXPECT_EQ(back->bn, 64);
  EXPECT_EQ(back->splits, 6);
  for (const char* bad : {"kiln_tcgemm:", "kiln_tcgemm:64x64", "kiln_tcgemm:64x64s2x",
                          "tcgemm:64x64s2", "kiln_tcgemm:64x64s2 "})
    EXPECT_FALSE(cuda::parse_tc_gemm_params(bad).has_value()) << bad;
}

// ---- the Gemm route ---------------------------------------------------------------------

/// A Gemm node Y = alpha·A·Bᵀ + C (A [M, K], B [N, K], C [N]) and its operands.
struct GemmNode {
  ir::Graph g;
  ir::Node* node = nullptr;
  std::vector<cuda::Operand> ins;
  cuda::Operand out;

  GemmNode(const TcCase& c, const Operands& o, int64_t trans_b) {
    std::vector<ir::Value*> v{g.add_value("a", c.dt, Shape::from({c.m, c.k})),
                              g.add_value("b", c.dt, Shape::from(o.w.dims())),
                              g.add_value("c", c.dt, Shape::from({c.n}))};
    ir::Value* y = g.add_value("y", c.dt, Shape::from({c.m, c.n}));
    node = g.add_node("Gemm", "fc", v, {y}, "", 13);
    node->attrs["transB"] = i(trans_b);
    node->attrs["alpha"] = f(c.alpha);
    ins = {{.dtype = c.dt, .dims = {c.m, c.k}},
           {.dtype = c.dt, .dims = o.w.dims(), .value = &o.w},
           {.dtype = c.dt, .dims = {c.n}, .value = &o.b}};
    out = {.dtype = c.dt, .dims = {c.m, c.n}};
  }
};

TEST(CudaTcGemm, GemmReplaysAndEnumeratesTiles) {
  KILN_REQUIRE_GPU();
  const cuda::KernelEntry* entry = cuda::KernelRegistry::instance().find("", "Gemm");
  ASSERT_TRUE(entry && entry->create && entry->candidates);
  cuda::Handles handles;  // cuBLASLt's candidates need a handle
  ASSERT_TRUE(handles.init(0).is_ok());
  cuda::Resources res = handles.res();
  res.sm_count = device_resources().sm_count;
  res.cc_major = device_resources().cc_major;
  const TcCase c{.m = 3, .n = 100, .k = 256, .tile = {32, 64, 4}, .alpha = 0.5f};
  const Operands o = make_operands(c);
  GemmNode gemm(c, o, 1);
  const std::string params = cuda::tc_gemm_params(c.tile);
  cuda::KernelConfig cfg{*gemm.node, gemm.ins, {gemm.out}, res, {}};
  cfg.tactic = &params;
  auto kernel = entry->create(cfg);
  ASSERT_TRUE(kernel.is_ok()) << kernel.status().to_string();
  EXPECT_EQ((*kernel)->tactic(), "kiln:tc_gemm_32x64_splitk4_f16");
  const HostTensor got = run_kernel(**kernel, c, o, res);
  ASSERT_TRUE(got.defined());
  const auto [atol, rtol] = default_tolerance(c.dt);
  EXPECT_EQ(compare_tensors(reference(c, o), got, atol, rtol), "");

  // The candidates: cuBLASLt's algorithms and the tiles, each replayable.
  cfg.tactic = nullptr;
  auto candidates = entry->candidates(cfg);
  ASSERT_TRUE(candidates.is_ok()) << candidates.status().to_string();
  int tiles = 0;
  for (const auto& k : *candidates) {
    const std::string p = k->tactic_params();
    if (p.rfind(cuda::kTcGemmTacticPrefix, 0) != 0) continue;
    ++tiles;
    cuda::KernelConfig replay = cfg;
    replay.tactic = &p;
    auto r = entry->create(replay);
    ASSERT_TRUE(r.is_ok()) << p << ": " << r.status().to_string();
    EXPECT_EQ((*r)->tactic(), k->tactic());
  }
  EXPECT_GT(tiles, 0);
  EXPECT_LT(tiles, static_cast<int>(candidates->size()));  // cuBLASLt's are there too

  // A recorded tile that does not fit the node (B not transposed) is refused.
  GemmNode plain(c, o, 0);
  cuda::KernelConfig bad{*plain.node, plain.ins, {plain.out}, res, {}};
  bad.tactic = &params;
  EXPECT_EQ(entry->create(bad).status().code(), ErrorCode::kTacticUnavailable);
  const std::string garbage = "kiln_tcgemm:64x64";
  cfg.tactic = &garbage;
  EXPECT_EQ(entry->create(cfg).status().code(), ErrorCode::kTacticUnavailable);
}

}  // namespace
}  // namespace kiln::gputest
