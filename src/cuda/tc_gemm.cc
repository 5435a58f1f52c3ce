// Tactic parameters and candidates of kiln's tensor-core GEMM (cuda/tc_gemm.h); the
// kernel is kernels/tc_gemm.cu.
#include "cuda/tc_gemm.h"

#include <algorithm>
#include <cstdio>

namespace kiln::cuda {
namespace {

/// The compiled tiles, as kernels/tc_gemm.cu instantiates them.
constexpr TcGemmTile kTiles[] = {{32, 64}, {64, 64}, {64, 128}, {128, 64}, {128, 128}};
/// Split-K values tried (cluster sizes).
constexpr int kSplits[] = {1, 2, 3, 4, 6, 8};
constexpr int64_t kBK = 32;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

std::string tc_gemm_params(const TcGemmTile& t) {
  return std::string(kTcGemmTacticPrefix) + std::to_string(t.bm) + "x" + std::to_string(t.bn) +
         "s" + std::to_string(t.splits);
}

std::optional<TcGemmTile> parse_tc_gemm_params(const std::string& p) {
  const std::string prefix = kTcGemmTacticPrefix;
  if (p.rfind(prefix, 0) != 0) return std::nullopt;
  TcGemmTile t;
  int used = 0;
  if (std::sscanf(p.c_str() + prefix.size(), "%dx%ds%d%n", &t.bm, &t.bn, &t.splits, &used) != 3 ||
      prefix.size() + static_cast<size_t>(used) != p.size())
    return std::nullopt;
  return t;
}

std::vector<std::unique_ptr<Kernel>> tc_gemm_candidates(const KernelConfig& cfg,
                                                        const TcGemmSpec& s) {
  std::vector<std::unique_ptr<Kernel>> out;
  const int64_t m32 = ceil_div(s.m, 32) * 32, n32 = ceil_div(s.n, 32) * 32;
  const int64_t k_steps = ceil_div(s.k, kBK);
  const int64_t waves = 2 * std::max(1, cfg.res.sm_count);
  for (TcGemmTile t : kTiles) {
    // A tile twice the (32-rounded) problem or more is mostly padding: a smaller one
    // does the same work with fewer idle lanes.
    if ((t.bm > 32 && t.bm >= 2 * m32) || (t.bn > 64 && t.bn >= 2 * n32)) continue;
    const int64_t tiles = ceil_div(s.m, t.bm) * ceil_div(s.n, t.bn);
    for (int splits : kSplits) {
      // Splitting pays only while the grid is small, and each split needs K-steps enough
      // for the pipeline (two or more).
      if (splits > 1 && (k_steps < 2 * splits || tiles * splits > waves)) continue;
      t.splits = splits;
      auto k = make_tc_gemm_kernel(cfg, s, t);
      if (k.is_ok()) out.push_back(std::move(*k));
    }
  }
  return out;
}

Result<std::unique_ptr<Kernel>> replay_tc_gemm(const KernelConfig& cfg, const TcGemmSpec& s) {
  const std::optional<TcGemmTile> t = cfg.tactic ? parse_tc_gemm_params(*cfg.tactic) : std::nullopt;
  if (!t)
    return cfg.error(ErrorCode::kTacticUnavailable,
                     "tactic parameters '" + (cfg.tactic ? *cfg.tactic : std::string()) +
                         "' are not a tensor-core GEMM tile",
                     "the plan is damaged or from another kiln: rebuild it");
  auto k = make_tc_gemm_kernel(cfg, s, *t);
  if (!k.is_ok())
    return cfg.error(ErrorCode::kTacticUnavailable,
                     "kiln's tensor-core GEMM cannot run the recorded tile '" + *cfg.tactic +
                         "': " + k.status().message(),
                     "the plan was built for another GPU or by another kiln: rebuild it");
  return k;
}

}  // namespace kiln::cuda
