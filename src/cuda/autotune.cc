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

/// An instantiated CUDA graph of `launches` enqueues of one candidate (rotating through
/// the operand sets), freed on scope exit.
struct CapturedLaunches {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~CapturedLaunches() {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
  }
};

/// Captures `launches` enqueues of `launch` on `stream` into `c`. Errors: the candidate's
/// enqueue error, or CudaError when the stream cannot be captured.
template <typename Launch>
Status capture_launches(cudaStream_t stream, int launches, Launch&& launch, CapturedLaunches& c) {
  KILN_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  Status st = Status::ok();
  for (int i = 0; i < launches && st.is_ok(); ++i) st = launch();
  const cudaError_t end = cudaStreamEndCapture(stream, &c.graph);  // ends it in every case
  KILN_RETURN_IF_ERROR(st);
  KILN_CUDA_CHECK(end);
  KILN_CUDA_CHECK(cudaGraphInstantiate(&c.exec, c.graph, 0));
  return Status::ok();
}

/// Time of one launch of `c`'s graph on `stream`, ms.
Result<float> time_graph(const CapturedLaunches& c, cudaStream_t stream, Events& ev) {
  KILN_CUDA_CHECK(cudaEventRecord(ev.start, stream));
  KILN_CUDA_CHECK(cudaGraphLaunch(c.exec, stream));
  KILN_CUDA_CHECK(cudaEventRecord(ev.stop, stream));
  KILN_CUDA_CHECK(cudaEventSynchronize(ev.stop));
  float ms = 0;
  KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, ev.start, ev.stop));
  return ms;
}

/// Median time per launch of `k`, ms, measured as an execution context runs it: enqueues
/// captured in a CUDA graph, so that the host's cost per enqueue (tens of microseconds
/// for some library calls, more than the GPU time of a small layer) stays out and only
/// the GPU's time counts. Gives up early (returning its first estimate) when it is clearly
/// slower than `best`. Errors: the candidate's enqueue error (it cannot run here) or a
/// CUDA error.
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
  // First estimate: one launch in a graph (the graph's own start-up included).
  CapturedLaunches one;
  KILN_RETURN_IF_ERROR(capture_launches(stream, 1, launch, one));
  KILN_ASSIGN_OR_RETURN(float first, time_graph(one, stream, ev));
  KILN_ASSIGN_OR_RETURN(first, time_graph(one, stream, ev));
  // Give up only above the graph start-up's noise: small layers are all timed.
  constexpr float kGiveUpFloorMs = 0.05f;
  if (best > 0 && first > kGiveUpFloorMs && first > kGiveUpRatio * best) return first;
  const int launches = std::clamp(static_cast<int>(kRepTargetMs / std::max(first, 1e-4f)), 1,
                                  kMaxLaunchesPerRep);
  CapturedLaunches many;
  KILN_RETURN_IF_ERROR(capture_launches(stream, launches, launch, many));
  KILN_RETURN_IF_ERROR(time_graph(many, stream, ev).status());  // the graph's first launch
  std::vector<float> per_launch;
  for (int rep = 0; rep < kReps; ++rep) {
    KILN_ASSIGN_OR_RETURN(float ms, time_graph(many, stream, ev));
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

std::string tuning_signature(const Precision& p, uint32_t sources) {
  std::string s = p.allow_tf32 ? "tf32" : "no-tf32";
  if (sources != kAllTacticSources) s += ";sources=" + tactic_sources_to_string(sources);
  return s;
}

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
    if (!o.only || o.only->count(n.get()))
      if (const KernelEntry* e = tunable_entry(*n)) work.emplace_back(n.get(), e);
  if (work.empty()) return tuned;

  cudaDeviceProp prop{};
  KILN_CUDA_CHECK(cudaGetDeviceProperties(&prop, res.device));
  Events ev;
  KILN_CUDA_CHECK(cudaEventCreate(&ev.start));
  KILN_CUDA_CHECK(cudaEventCreate(&ev.stop));
  CudaBuffer workspace;
  const std::string extra = tuning_signature(p, o.sources);
  for (size_t w = 0; w < work.size(); ++w) {
    ir::Node& n = *work[w].first;
    const std::string key = builder::layer_signature(n, extra);
    if (const builder::TimingEntry* hit = cache.find(key)) {
      n.tactic = hit->tactic;
      n.tactic_params = hit->params;
      n.tactic_ms = hit->ms;
      n.tactic_source = hit->source;
      ++stats.from_cache;
      if (progress) progress(w + 1, work.size(), n, *hit, true);
      continue;
    }
    KernelConfig cfg{n, operands_of(n.inputs), operands_of(n.outputs), res, p};
    cfg.sources = o.sources;
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
      if (!cfg.allows(k->tactic_source())) continue;  // an enumerator that offers every source
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
    builder::TimingEntry e{best->tactic(), best->tactic_params(), best_ms, timed,
                           tactic_source_bit(best->tactic_source())};
    n.tactic = e.tactic;
    n.tactic_params = e.params;
    n.tactic_ms = e.ms;
    n.tactic_source = e.source;
    n.tactic_artifact = best->artifact();
    ++stats.tuned;
    tuned.insert(&n);
    if (progress) progress(w + 1, work.size(), n, e, false);
    cache.put(key, std::move(e));
  }
  return tuned;
}

Result<uint32_t> drop_costly_libraries(ir::Graph& g, const Resources& res, const Precision& p,
                                       builder::TimingCache& cache, const AutotuneOptions& o,
                                       double tradeoff, std::set<const ir::Node*>& tuned,
                                       AutotuneStats& stats) {
  uint32_t dropped = 0;
  if (!o.enabled || tradeoff < 0 || o.sources != kAllTacticSources) return dropped;
  double total_ms = 0;
  for (const auto& n : g.nodes())
    if (n->tactic_ms > 0) total_ms += n->tactic_ms;
  for (TacticSource lib : {TacticSource::kCublasLt, TacticSource::kCudnn}) {
    const uint32_t bit = tactic_source_bit(lib);
    struct Choice {
      ir::Node* n;
      std::string tactic, params;
      float ms;
      uint32_t source;
      std::vector<uint8_t> artifact;
    };
    std::set<const ir::Node*> users;
    std::vector<Choice> before;  // the users' choices, restored if the library stays
    for (const auto& n : g.nodes()) {
      if (n->tactic_source != bit) continue;
      users.insert(n.get());
      before.push_back({n.get(), n->tactic, n->tactic_params, n->tactic_ms, n->tactic_source,
                        n->tactic_artifact});
    }
    if (users.empty()) continue;
    AutotuneOptions without = o;
    without.sources = o.sources & ~(dropped | bit);
    without.only = &users;
    AutotuneStats s2;
    KILN_ASSIGN_OR_RETURN(std::set<const ir::Node*> retuned,
                          autotune_graph(g, res, p, cache, without, nullptr, s2));
    bool all_moved = true;
    double extra_ms = 0;
    for (const Choice& c : before) {
      all_moved = all_moved && c.n->tactic_source != bit && c.n->tactic_source != 0;
      extra_ms += c.n->tactic_ms - c.ms;
    }
    const bool drop = all_moved && extra_ms <= tradeoff * total_ms;
    if (o.logger)
      o.logger->log(LogLevel::kInfo,
                    std::string("library choice: ") + tactic_source_name(lib) + " runs " +
                        std::to_string(users.size()) + " layers; " +
                        (all_moved ? "without it they take " + std::to_string(extra_ms * 1e3) +
                                         " us more (" +
                                         std::to_string(100.0 * extra_ms / std::max(total_ms, 1e-9)) +
                                         "% of the layers' time)"
                                   : std::string("some have no other kernel")) +
                        (drop ? ": dropped (faster start-up)" : ": kept"));
    stats.candidates += s2.candidates;
    stats.skipped += s2.skipped;
    if (drop) {
      dropped |= bit;
      // Choices from the timing cache are built again by the lowering (with their
      // compiled code); the ones timed now are built already.
      for (const Choice& c : before) tuned.erase(c.n);
      tuned.insert(retuned.begin(), retuned.end());
      continue;
    }
    for (const Choice& c : before) {
      c.n->tactic = c.tactic;
      c.n->tactic_params = c.params;
      c.n->tactic_ms = c.ms;
      c.n->tactic_source = c.source;
      c.n->tactic_artifact = c.artifact;
    }
  }
  return dropped;
}

}  // namespace kiln::cuda
