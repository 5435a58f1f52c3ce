// Pieces of `kiln bench` (cmd_bench.cc): timing statistics, the multi-stream driver shared
// by the CPU and CUDA runners, and the CUDA runner (bench_cuda.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kiln/kiln.h"
#include "kiln/status.h"

namespace kiln::cli::bench {

/// Summary of a series of times, milliseconds. Percentiles are nearest-rank (the smallest
/// sample with at least p% of the samples at or below it, as trtexec reports them); the
/// median is the middle sample, or the mean of the two middle ones.
struct Stats {
  size_t count = 0;
  double min = 0, mean = 0, median = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
};
/// Stats of `ms` (all zero when empty).
Stats summarize(std::vector<double> ms);

/// Per-inference times (ms) of one stream or of a whole run. A runner leaves the series it
/// does not measure empty (the CPU runner measures `latency` only).
struct Samples {
  std::vector<double> gpu_compute;  ///< GPU time of the engine's work (events around enqueue)
  std::vector<double> latency;      ///< H2D + GPU compute + D2H (GPU events); CPU: execute()
  std::vector<double> enqueue;      ///< host wall time of the enqueue() call
  std::vector<double> h2d;          ///< input copies, pinned host to device
  std::vector<double> d2h;          ///< output copies, device to pinned host
  void append(const Samples& o);
};

/// How long and how wide to run.
struct RunConfig {
  int streams = 1;
  double warmup_ms = 200;
  double duration_s = 3;
  int64_t iterations = 0;  ///< > 0: this many measured inferences per stream, not a duration
  bool cuda_graph = true;
  int device = 0;
};

/// Outcome of the measured phase.
struct RunResult {
  Samples samples;
  int64_t inferences = 0;  ///< measured inferences over all streams
  double wall_s = 0;       ///< wall time from the start of the measured phase to its last result
};

/// One engine input's host data, the same for every stream.
struct InputData {
  std::string name;
  HostTensor tensor;
};

/// One stream's inference loop, driven from its own thread by run_streams.
class StreamRunner {
 public:
  virtual ~StreamRunner() = default;
  /// Called first on the worker thread (e.g. to make the GPU current there).
  virtual Status start_thread() { return Status::ok(); }
  /// Starts one inference; when `record`, its times go to `out` once known (a runner may
  /// report them during a later step or drain).
  virtual Status step(bool record, Samples& out) = 0;
  /// Waits for every started inference and reports the times still pending.
  virtual Status drain(Samples& out) = 0;
};

/// Runs every runner in its own std::thread: a warm-up of cfg.warmup_ms (at least one
/// inference each), then, all starting together, the measured phase of cfg.iterations
/// inferences per stream or cfg.duration_s seconds, ended by a drain. The wall time runs
/// from the first stream's start to the last stream's last result, so it holds exactly
/// the measured inferences. The first error of any stream stops all of them and is
/// returned.
Result<RunResult> run_streams(std::vector<std::unique_ptr<StreamRunner>>& runners,
                              const RunConfig& cfg);

/// Creates the CUDA runners: per stream an execution context (with its own CUDA stream),
/// device buffers for every input and output bound with set_tensor_address and pinned host
/// buffers they are copied from / to; the inputs are uploaded to the pinned buffers once,
/// and each context runs twice synchronously here, so that CUDA-graph capture happens
/// before any other thread uses the GPU. The device must be current on the calling thread.
/// Errors: OutOfMemory, CudaError and the engine's context/enqueue errors; NoGpu in a kiln
/// built without CUDA.
Result<std::vector<std::unique_ptr<StreamRunner>>> make_cuda_runners(
    Engine& engine, const std::vector<InputData>& inputs, const RunConfig& cfg);

}  // namespace kiln::cli::bench
