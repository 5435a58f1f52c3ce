// kiln's own tensor-core GEMM for 16-bit operands with a fused epilogue: a tactic candidate
// next to cuBLASLt for 1x1 convolutions on channels-last activations (conv_nhwc.h) and for
// Gemm nodes of the form X·Wᵀ + bias (ONNX Operators.md, Gemm-13, transB = 1), e.g. a
// classifier's fully connected layer.
//
// It exists so that an engine can do without cuBLASLt, whose first use in a process costs
// 80-140 ms and each of whose kernels another 3-4 ms at its first launch (H200, cuBLAS
// 13.1; docs/cuda.md, "Cold start"): the autotuner keeps it where it is the fastest
// candidate, and the start-up-aware library choice (autotune.h, drop_costly_libraries)
// where cuBLASLt is dropped (a classifier's Gemm has no cuDNN kernel). It is not yet as
// fast as cuBLASLt on small layers: timed in CUDA graphs on ResNet-50's batch-1 1x1
// convolutions it takes 1.1-2.5x cuBLASLt's time (5-7 us against 2.6-5.8 us; the
// classifier 6.4 against 5.6 us), its fixed cost per launch being the gap.
//
// Algorithm (kernels/tc_gemm.cu): a CTA tile of BM x BN outputs, 32x32 per warp, GEMM-K in
// steps of 32 through a 4-stage cp.async pipeline (PTX ISA, "cp.async"), operands read with
// ldmatrix and multiplied with mma.sync.m16n8k16 in FP32 (PTX ISA, "Warp-level matrix
// multiply-accumulate"). Split-K runs the splits of one tile as one thread-block cluster
// (CUDA Programming Guide, "Thread Block Clusters"; sm_90): each CTA leaves its FP32 partial
// tile in shared memory, and after a cluster barrier CTA r sums rows r·BM/S.. of every
// partial through distributed shared memory, in split order (deterministic), applies the
// epilogue and writes whole rows. No global workspace, no second kernel, no atomics.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cuda/kernel.h"
#include "kiln/status.h"
#include "ops/fused_conv.h"

namespace kiln::cuda {

/// Y[M][N] = act(alpha · X[M][K] · W[N][K]ᵀ + bias[N] + Z[M][N]) on row-major f16 or bf16
/// operands (X rows K apart, W rows K apart, Y and Z rows N apart), FP32 accumulation and
/// epilogue, one rounding. Input indices of the node's LaunchArgs; -1 = absent.
struct TcGemmSpec {
  DataType dt = DataType::kF16;
  int64_t m = 0, n = 0, k = 0;
  int x_input = 0, w_input = 1, bias_input = -1, z_input = -1;
  float alpha = 1.0f;
  ops::FusedEpilogue act;
};

/// A compiled CTA tile (BM x BN: 32x64, 64x64, 64x128, 128x64 or 128x128) and the number
/// of GEMM-K splits (1..8, the cluster size).
struct TcGemmTile {
  int bm = 64, bn = 64, splits = 1;
};

/// Prefix of the kernel's tactic_params(): "kiln_tcgemm:<bm>x<bn>s<splits>".
inline constexpr const char* kTcGemmTacticPrefix = "kiln_tcgemm:";

std::string tc_gemm_params(const TcGemmTile& t);
/// The tile of tc_gemm_params' text; nullopt for anything else.
std::optional<TcGemmTile> parse_tc_gemm_params(const std::string& p);

/// The kernel for `s` with tile `t`. Returns NoGpuKernel (cfg.unsupported) for: another
/// dtype, a GPU below compute capability 9.0 (clusters), a tile that is not compiled,
/// more splits than GEMM-K steps, sizes of 2^31 or more. tactic():
/// "kiln:tc_gemm_<bm>x<bn>_splitk<s>_<dtype>".
Result<std::unique_ptr<Kernel>> make_tc_gemm_kernel(const KernelConfig& cfg, const TcGemmSpec& s,
                                                    const TcGemmTile& t);

/// The autotuner's candidates: every compiled tile not much larger than the problem, each
/// with the splits that keep at most two waves of CTAs (and at least two K-steps a split).
/// Empty (not an error) when the spec is outside the kernel (dtype, GPU).
std::vector<std::unique_ptr<Kernel>> tc_gemm_candidates(const KernelConfig& cfg,
                                                        const TcGemmSpec& s);

/// Rebuilds the recorded cfg.tactic (kTcGemmTacticPrefix + tile). Errors:
/// TacticUnavailable for params that are not this kernel's or a tile it cannot run.
Result<std::unique_ptr<Kernel>> replay_tc_gemm(const KernelConfig& cfg, const TcGemmSpec& s);

}  // namespace kiln::cuda
