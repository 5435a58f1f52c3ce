#include "cuda/autotune.h"

#include <cublasLt.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/lower_node.h"

namespace kiln::cuda {
namespace {

constexpr int kReps = 5;                 ///< timed repetitions per candidate; the median counts
constexpr double kRepTargetMs = 0.5;     ///< a repetition launches for about this long
constexpr int kMaxLaunchesPerRep = 64;
constexpr int kMaxRotations = 32;        ///< operand sets rotated through
constexpr size_t kRotationBudget = size_t{1} << 30;  ///< bytes of operand sets at most
constexpr double kGiveUpRatio = 1.5;     ///< stop timing a candidate this much slower than the best
constexpr size_t kAlign = 256;

size_t aligned(size_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

/// `rotations` device copies of one node's operands. Constants (weights) hold their real
/// values, other inputs seeded random values; outputs are written by the candidates.
struct OperandSets {
  std::vector<CudaBuffer> mem;
  std::vector<std::vector<const void*>> in;
  std::vector<std::vector<void*>> out;
  int rotations() const { return static_cast<int>(in.size()); }
};

Result<OperandSets> make_operand_sets(const std::vector<Operand>& ins,
                                      const std::vector<Operand>& outs, size_t l2_bytes,
                                      cudaStream_t stream, uint64_t seed) {
  size_t per_set = 0;
  for (const auto* list : {&ins, &outs})
    for (const Operand& o : *list)
      if (o.present()) per_set += aligned(std::max<size_t>(o.bytes(), 1));
  per_set = std::max<size_t>(per_set, kAlign);
  // Enough sets that consecutive launches touch at least twice the L2 between reuses.
  size_t want = (2 * l2_bytes + per_set - 1) / per_set;
  want = std::min<size_t>({want, kMaxRotations, std::max<size_t>(kRotationBudget / per_set, 1)});
  OperandSets s;
  for (size_t r = 0; r < std::max<size_t>(want, 1); ++r) {
    KILN_ASSIGN_OR_RETURN(CudaBuffer b, CudaBuffer::allocate(CudaBuffer::Kind::kDevice, per_set));
    auto* base = static_cast<uint8_t*>(b.data());
    size_t off = 0;
    std::vector<const void*> in(ins.size(), nullptr);
    std::vector<void*> out(outs.size(), nullptr);
    for (size_t k = 0; k < ins.size(); ++k) {
      const Operand& o = ins[k];
      if (!o.present()) continue;
      in[k] = base + off;
      if (o.value && o.bytes())
        KILN_CUDA_CHECK(cudaMemcpyAsync(base + off, o.value->raw(), o.bytes(),
                                        cudaMemcpyHostToDevice, stream));
      else
        KILN_RETURN_IF_ERROR(fill_uniform(o.dtype, base + off, o.numel(), seed + 7919 * (r * 64 + k), stream));
      off += aligned(std::max<size_t>(o.bytes(), 1));
    }
    for (size_t k = 0; k < outs.size(); ++k) {
      if (!outs[k].present()) continue;
      out[k] = base + off;
      off += aligned(std::max<size_t>(outs[k].bytes(), 1));
    }
    s.mem.push_back(std::move(b));
    s.in.push_back(std::move(in));
    s.out.push_back(std::move(out));
  }
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  return s;
}

struct Events {
  cudaEvent_t start = nullptr, stop = nullptr;
  ~Events() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
};

/// Median time per launch of `k`, ms; gives up early (returning its first estimate) when
/// it is clearly slower than `best`. Errors: the candidate's enqueue error (it cannot run
/// here) or a CUDA error.
Result<float> time_candidate(Kernel& k, const OperandSets& sets, void* workspace,
                             const Resources& res, Events& ev, float best) {
  cudaStream_t stream = res.stream;
  int turn = 0;
  auto launch = [&]() {
    const int r = turn++ % sets.rotations();
    LaunchArgs a{sets.in[r].data(), sets.out[r].data(), workspace, stream, res};
    return k.enqueue(a);
  };
  // Warm-up: module loading and first-launch costs stay out of the timing.
  KILN_RETURN_IF_ERROR(launch());
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  KILN_CUDA_CHECK(cudaEventRecord(ev.start, stream));
  KILN_RETURN_IF_ERROR(launch());
  KILN_CUDA_CHECK(cudaEventRecord(ev.stop, stream));
  KILN_CUDA_CHECK(cudaEventSynchronize(ev.stop));
  float first = 0;
  KILN_CUDA_CHECK(cudaEventElapsedTime(&first, ev.start, ev.stop));
  if (best > 0 && first > kGiveUpRatio * best) return first;
  const int launches = std::clamp(static_cast<int>(kRepTargetMs / std::max(first, 1e-4f)), 1,
                                  kMaxLaunchesPerRep);
  std::vector<float> per_launch;
  for (int rep = 0; rep < kReps; ++rep) {
    KILN_CUDA_CHECK(cudaEventRecord(ev.start, stream));
    for (int i = 0; i < launches; ++i) KILN_RETURN_IF_ERROR(launch());
    KILN_CUDA_CHECK(cudaEventRecord(ev.stop, stream));
    KILN_CUDA_CHECK(cudaEventSynchronize(ev.stop));
    float ms = 0;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, ev.start, ev.stop));
    per_launch.push_back(ms / launches);
  }
  std::nth_element(per_launch.begin(), per_launch.begin() + kReps / 2, per_launch.end());
  return per_launch[kReps / 2];
}

const KernelEntry* tunable_entry(const ir::Node& n) {
  if (!n.subgraphs().empty()) return nullptr;
  const KernelEntry* e =
      KernelRegistry::instance().find(n.domain == "ai.onnx" ? "" : n.domain, n.op_type);
  return e && e->candidates ? e : nullptr;
}

/// A sticky CUDA error (illegal address, launch failure) leaves the context unusable: the
/// build must stop. Other candidate errors only rule the candidate out.
bool is_sticky(const Status& st) {
  if (st.code() != ErrorCode::kCudaError) return false;
  const cudaError_t e = cudaPeekAtLastError();
  return e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure ||
         e == cudaErrorIllegalInstruction || e == cudaErrorMisalignedAddress;
}

}  // namespace

std::string precision_signature(const Precision& p) { return p.allow_tf32 ? "tf32" : "no-tf32"; }

std::string timing_environment(int device) {
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, device);
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  nlohmann::json j = {{"gpu", prop.name},
                      {"compute_capability", prop.major * 10 + prop.minor},
                      {"sm_count", prop.multiProcessorCount},
                      {"cuda_runtime", runtime},
                      {"cudnn", static_cast<int64_t>(cudnnGetVersion())},
                      {"cublaslt", static_cast<int64_t>(cublasLtGetVersion())}};
  return j.dump();
}

Result<std::set<const ir::Node*>> autotune_graph(ir::Graph& g, const Resources& res,
                                                 const Precision& p, builder::TimingCache& cache,
                                                 const AutotuneOptions& o,
                                                 const AutotuneProgress& progress,
                                                 AutotuneStats& stats) {
  std::set<const ir::Node*> tuned;
  if (!o.enabled) return tuned;
  std::vector<std::pair<ir::Node*, const KernelEntry*>> work;
  for (const auto& n : g.nodes())
    if (const KernelEntry* e = tunable_entry(*n)) work.emplace_back(n.get(), e);
  if (work.empty()) return tuned;

  cudaDeviceProp prop{};
  KILN_CUDA_CHECK(cudaGetDeviceProperties(&prop, res.device));
  Events ev;
  KILN_CUDA_CHECK(cudaEventCreate(&ev.start));
  KILN_CUDA_CHECK(cudaEventCreate(&ev.stop));
  CudaBuffer workspace;
  const std::string extra = precision_signature(p);
  for (size_t w = 0; w < work.size(); ++w) {
    ir::Node& n = *work[w].first;
    const std::string key = builder::layer_signature(n, extra);
    if (const builder::TimingEntry* hit = cache.find(key)) {
      n.tactic = hit->tactic;
      n.tactic_params = hit->params;
      n.tactic_ms = hit->ms;
      ++stats.from_cache;
      if (progress) progress(w + 1, work.size(), n, *hit, true);
      continue;
    }
    KernelConfig cfg{n, operands_of(n.inputs), operands_of(n.outputs), res, p};
    auto made = work[w].second->candidates(cfg);
    if (!made.is_ok()) {
      if (made.status().code() == ErrorCode::kNoGpuKernel) continue;  // host fallback
      return made.status().at(n.loc());
    }
    std::vector<std::unique_ptr<Kernel>>& cands = *made;
    if (cands.empty()) continue;
    KILN_ASSIGN_OR_RETURN(OperandSets sets, make_operand_sets(cfg.inputs, cfg.outputs,
                                                              static_cast<size_t>(prop.l2CacheSize),
                                                              res.stream, 0x6b696c6eULL + w));
    float best_ms = -1;
    const Kernel* best = nullptr;
    int timed = 0;
    for (auto& k : cands) {
      const size_t ws = k->workspace_bytes();
      const bool debug = o.logger && o.logger->enabled(LogLevel::kDebug);
      auto note = [&](const std::string& what) {
        if (debug) o.logger->log(LogLevel::kDebug, "  '" + n.name + "' candidate " + k->tactic() + ": " + what);
      };
      if (ws > o.workspace_limit) {
        note("skipped, workspace " + std::to_string(ws) + " bytes over the limit");
        ++stats.skipped;
        continue;
      }
      if (ws > workspace.size()) {
        workspace = CudaBuffer();  // free first: the old and new buffers need not coexist
        KILN_ASSIGN_OR_RETURN(workspace, CudaBuffer::allocate(CudaBuffer::Kind::kDevice, ws));
      }
      auto t = time_candidate(*k, sets, ws ? workspace.data() : nullptr, res, ev, best_ms);
      if (!t.is_ok()) {
        if (is_sticky(t.status())) return t.status().at(n.loc());
        cudaGetLastError();  // clear a launch-configuration error of this candidate
        note("skipped, " + t.status().message());
        ++stats.skipped;
        continue;
      }
      note(std::to_string(*t) + " ms");
      ++timed;
      if (best_ms < 0 || *t < best_ms) {
        best_ms = *t;
        best = k.get();
      }
    }
    stats.candidates += timed;
    if (!best) continue;  // none ran: the lowering keeps the heuristic choice
    builder::TimingEntry e{best->tactic(), best->tactic_params(), best_ms, timed};
    n.tactic = e.tactic;
    n.tactic_params = e.params;
    n.tactic_ms = e.ms;
    n.tactic_artifact = best->artifact();
    ++stats.tuned;
    tuned.insert(&n);
    if (progress) progress(w + 1, work.size(), n, e, false);
    cache.put(key, std::move(e));
  }
  return tuned;
}

}  // namespace kiln::cuda
