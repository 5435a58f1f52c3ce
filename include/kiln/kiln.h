// kiln public C++ API: Parser → NetworkDefinition → Builder (+ BuilderConfig) → plan bytes
// → Runtime → Engine → ExecutionContext. Mirrors TensorRT's object model.
//
//   kiln::Logger log;
//   kiln::Parser parser(log);
//   auto net = parser.parse_from_file("model.onnx");          // Result<unique_ptr<...>>
//   kiln::BuilderConfig cfg;  cfg.input_shapes["x"] = {1, 3, 224, 224};
//   auto plan = kiln::Builder(log).build_serialized_network(**net, cfg);
//   auto engine = kiln::Runtime(log).deserialize(plan->data(), plan->size());
//   auto ctx = (*engine)->create_execution_context();
//   ctx->set_input("x", view);  ctx->execute();  auto y = ctx->output("y");
//
// Errors are returned as Status / Result (see status.h); nothing throws across the API.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/status.h"
#include "kiln/types.h"

namespace kiln {

namespace ir { class Graph; }

/// Severity of a log message.
enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarning, kError, kOff };

/// Receives kiln's log messages. The default implementation writes to stderr (spdlog);
/// subclass to redirect. Messages below `level()` are dropped before formatting.
class Logger {
 public:
  explicit Logger(LogLevel level = LogLevel::kWarning) : level_(level) {}
  virtual ~Logger() = default;
  virtual void log(LogLevel level, const std::string& message);
  LogLevel level() const { return level_; }
  void set_level(LogLevel l) { level_ = l; }
  bool enabled(LogLevel l) const { return l >= level_ && level_ != LogLevel::kOff; }

 private:
  LogLevel level_;
};

/// Where a plan runs.
enum class Backend { kCpu = 0, kCuda = 1 };
const char* backend_name(Backend b);

/// An imported model (TensorRT's INetworkDefinition): the IR graph.
class NetworkDefinition {
 public:
  explicit NetworkDefinition(std::unique_ptr<ir::Graph> g);
  ~NetworkDefinition();
  ir::Graph& graph() { return *graph_; }
  const ir::Graph& graph() const { return *graph_; }
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;

 private:
  std::unique_ptr<ir::Graph> graph_;
};

/// ONNX parser. Collects every problem of a model in one pass.
class Parser {
 public:
  explicit Parser(Logger& logger) : logger_(logger) {}
  /// Parses an .onnx file (external data next to it). Errors: IoError, OnnxMalformed,
  /// OnnxIrVersion, OnnxOpsetUnsupported, OnnxUnsupportedOp, OnnxUndefinedInput, ...;
  /// all diagnostics are in diagnostics() afterwards.
  Result<std::unique_ptr<NetworkDefinition>> parse_from_file(const std::string& path);
  Result<std::unique_ptr<NetworkDefinition>> parse(const void* data, size_t size);
  const std::vector<Status>& diagnostics() const { return diags_; }

 private:
  Logger& logger_;
  std::vector<Status> diags_;
};

/// Arithmetic precision of a CUDA build (TensorRT's BuilderFlag::kFP16 / kBF16).
/// kFp16/kBf16 store activations and weights of float tensors in 16 bits where the op has
/// a 16-bit GPU kernel; GEMMs and convolutions accumulate in FP32, and reductions,
/// Softmax and normalisation statistics compute in FP32 internally. Engine inputs and
/// outputs keep the model's types (casts are inserted at the boundary).
enum class Precision { kFp32 = 0, kFp16 = 1, kBf16 = 2 };
const char* precision_name(Precision p);

/// "kiln", "cudnn" or "cublaslt".
const char* tactic_source_name(TacticSource s);
/// The names of the bits in `mask`, comma-separated ("kiln,cudnn"; "" for none).
std::string tactic_sources_to_string(uint32_t mask);
/// Parses `kiln build --tactic-sources`: either names ("kiln,cudnn": exactly those) or
/// edits of the default set, all of them signed ("-cublaslt", "+kiln,-cudnn"). Names are
/// case-insensitive. Errors: InvalidArgument for an unknown name, a mix of signed and
/// unsigned entries, or an empty set.
Result<uint32_t> parse_tactic_sources(const std::string& text);

/// Allowed shapes of an engine's dynamic inputs (TensorRT's IOptimizationProfile). For each
/// input with symbolic or unknown dims: the smallest (`min`), the most frequent (`opt`) and
/// the largest (`max`) dims an execution context may run with, element-wise
/// min <= opt <= max, one value per dimension (a dimension the model fixes is given as
/// itself). A dimension with min == max becomes fixed in the plan. The CUDA builder times
/// tactics at `opt` and sizes the activation arena for `max`; at run time
/// ExecutionContext::set_input_shape rejects dims outside [min, max] (InputOutsideProfile).
struct OptimizationProfile {
  struct Range {
    std::vector<int64_t> min, opt, max;
  };
  std::map<std::string, Range> inputs;  ///< input name → its range
};

/// One step of a long build phase (BuilderConfig::progress).
struct BuildProgress {
  std::string phase;   ///< "autotune"
  size_t done = 0;     ///< steps finished, 1..total
  size_t total = 0;
  std::string layer;   ///< node name
  std::string op;      ///< its op type
  std::string tactic;  ///< the tactic chosen
  double ms = -1;      ///< its measured time per launch, ms (-1: not timed)
  bool cached = false; ///< the choice came from the timing cache
};

/// Options of a build (TensorRT's IBuilderConfig).
struct BuilderConfig {
  Backend backend = Backend::kCpu;
  /// CUDA backend only.
  Precision precision = Precision::kFp32;
  /// CUDA backend, FP32: let convolutions and GEMMs use TF32 tensor cores (default on,
  /// as in TensorRT; `--no-tf32` turns it off for bit-closer FP32 results).
  bool allow_tf32 = true;
  /// CUDA backend: store the FP16/BF16 convolution regions channels-last (NHWC), with
  /// reformats at their borders (default on; `--no-nhwc` keeps every tensor NCHW).
  bool nhwc = true;
  /// CUDA device ordinal the plan is built for (its compute capability is recorded).
  int device = 0;
  /// Optimisation level: 0 none, 1 cleanups and constant folding, 2 fusions, 3 aggressive.
  int opt_level = 2;
  /// Passes to skip, by name (`kiln build --disable-pass=NAME`).
  std::vector<std::string> disabled_passes;
  /// Concrete shapes for inputs with symbolic or unknown dims (name → dims): a static plan.
  std::map<std::string, std::vector<int64_t>> input_shapes;
  /// Optimisation profiles for a dynamic plan (`--min-shapes/--opt-shapes/--max-shapes`),
  /// instead of input_shapes. Every dynamic input must be covered by every profile. The
  /// CUDA backend needs one for a model with dynamic inputs; the CPU backend runs any
  /// shape without one, and checks the ranges when given. Errors at build: ProfileInvalid.
  std::vector<OptimizationProfile> profiles;
  /// Pass names after which to print the graph to the logger at info level ("all" = every).
  std::vector<std::string> dump_after;
  /// CUDA backend: time every tactic candidate of each layer on the GPU (cuDNN engine
  /// configurations, cuBLASLt algorithms, kiln kernels) and keep the fastest (default on;
  /// `--no-autotune` keeps the libraries' heuristic choices and builds faster).
  bool autotune = true;
  /// CUDA backend: timing cache file, read before autotuning and rewritten after it
  /// (`--timing-cache FILE`); "" = an in-memory cache for this build only.
  std::string timing_cache;
  /// CUDA backend: the largest workspace one tactic may use, bytes (`--workspace MIB`).
  size_t workspace_limit = size_t{1} << 30;
  /// CUDA backend: the kernel sources the autotuner may choose from, TacticSource bits
  /// (`--tactic-sources`). A layer with no candidate from these keeps its default kernel.
  uint32_t tactic_sources = kAllTacticSources;
  /// CUDA backend, with every tactic source allowed: start-up-aware library choice. After
  /// autotuning, cuBLASLt and then cuDNN are dropped from the engine when moving all of
  /// their layers to other sources costs at most this fraction of the engine's summed layer
  /// time: a library's first use in a process costs 80-140 ms of the engine's cold start
  /// (docs/cuda.md, "Cold start"). 0 = only when nothing is lost; < 0 = never
  /// (`--library-tradeoff PCT`).
  double library_tradeoff = 0.02;
  /// Called as long phases advance (autotuning: once per layer), for progress bars.
  std::function<void(const BuildProgress&)> progress;
};

/// Timing of one build phase, in milliseconds.
struct PhaseTime {
  std::string phase;
  double ms;
};

/// Builds plans (TensorRT's IBuilder).
class Builder {
 public:
  explicit Builder(Logger& logger) : logger_(logger) {}
  /// Optimises `network` in place and serialises it to plan bytes (format in
  /// src/engine/plan.h). Errors: DynamicShapeUnresolved, ShapeMismatch, PassFailed, ...
  Result<std::vector<uint8_t>> build_serialized_network(NetworkDefinition& network, const BuilderConfig& cfg);
  /// Wall time of each phase of the last build.
  const std::vector<PhaseTime>& phase_times() const { return phases_; }

 private:
  Logger& logger_;
  std::vector<PhaseTime> phases_;
};

/// Parse + build in one call.
Result<std::vector<uint8_t>> build_plan_from_file(const std::string& onnx_path, const BuilderConfig& cfg,
                                                  Logger& logger);

class ExecutionContext;

/// Static description of an engine input or output.
struct TensorDesc {
  std::string name;
  DataType dtype;
  std::vector<int64_t> dims;  ///< -1 for dims that are not fixed
};

/// A deserialised plan: graph, weights and per-backend state shared by all contexts.
class Engine {
 public:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  ~Engine();
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;
  /// Errors: NotFound (lists the valid names).
  Result<TensorDesc> tensor_desc(const std::string& name) const;
  /// Number of optimisation profiles in the plan (0 for a static plan, or a dynamic CPU
  /// plan built without one).
  int num_optimization_profiles() const;
  /// The [min, opt, max] dims of `input` in profile `profile`. Errors: NotFound (no such
  /// input, or a static input), InvalidArgument (profile index out of range).
  Result<OptimizationProfile::Range> profile_shape(const std::string& input, int profile) const;
  Backend backend() const;
  /// Creates per-inference state (activations); many contexts may share one engine.
  /// On the CUDA backend this allocates the context's activation arena and builds its
  /// kernels' library plans; on failure (out of GPU memory...) it returns null and logs
  /// the error: use create_execution_context_checked for the Status.
  std::unique_ptr<ExecutionContext> create_execution_context();
  /// As above, with the error. Errors: OutOfMemory, CudaError, CudnnError, CublasError.
  Result<std::unique_ptr<ExecutionContext>> create_execution_context_checked();
  /// Device memory statistics of the plan's memory plan (CUDA), bytes: the activation
  /// arena one context allocates, the naive sum of all activation tensors it replaces,
  /// and the weights shared by all contexts. Zero on the CPU backend.
  struct MemoryStats {
    uint64_t arena_bytes = 0;
    uint64_t naive_bytes = 0;
    uint64_t weight_bytes = 0;
  };
  MemoryStats memory_stats() const;
  /// Internal: the lowered graph (for inspect tools).
  const ir::Graph& graph() const;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

/// Loads plans (TensorRT's IRuntime).
class Runtime {
 public:
  explicit Runtime(Logger& logger) : logger_(logger) {}
  /// Errors: PlanBadMagic, PlanVersion, PlanCorrupt (checksum, truncation, structure),
  /// PlanBackendMismatch. Copies `data`.
  Result<std::unique_ptr<Engine>> deserialize(const void* data, size_t size);
  /// Reads a plan file. Errors as deserialize, plus IoError.
  Result<std::unique_ptr<Engine>> deserialize_file(const std::string& path);

 private:
  Logger& logger_;
};

/// Time spent in one layer during the last profiled execute() (TensorRT's IProfiler).
struct LayerTime {
  std::string name;  ///< node name
  std::string op;    ///< op type
  double ms;         ///< wall time of the layer, milliseconds (CUDA: GPU time from events)
  std::string tactic;  ///< CUDA: the node's tactic (kernel that ran); empty on the CPU
};

/// Per-inference state over a shared Engine (TensorRT's IExecutionContext).
class ExecutionContext {
 public:
  struct Impl;
  explicit ExecutionContext(std::unique_ptr<Impl> impl);
  ~ExecutionContext();
  /// Binds an input. The data is read during execute(); the caller keeps it alive until
  /// then. Its dims also set the input's shape, as set_input_shape does.
  /// Errors: NotFound, InputShapeMismatch (dtype, rank or a fixed dim differs),
  /// InputOutsideProfile.
  Status set_input(const std::string& name, const TensorView& tensor);
  /// Selects the optimisation profile whose ranges set_input_shape checks (default 0;
  /// TensorRT's setOptimizationProfileAsync). Errors: InvalidArgument (index out of range).
  Status set_optimization_profile(int index);
  int optimization_profile() const;
  /// Sets the dims of a dynamic input for the next enqueue()/execute() (TensorRT's
  /// setInputShape). Cheap when the shape was seen before: the CUDA backend keeps the
  /// kernels, memory plan and CUDA graph of every input shape it ran. Errors: NotFound,
  /// InputShapeMismatch (rank, or a fixed dim differs), InputOutsideProfile (a dim
  /// outside the selected profile's [min, max]: the message names input, dimension, value
  /// and range).
  Status set_input_shape(const std::string& name, const std::vector<int64_t>& dims);
  /// Current dims of an input (as set), or of an output (as the input shapes determine
  /// it; TensorRT's getTensorShape). Errors: NotFound, DynamicShapeUnresolved (an input
  /// with dynamic dims whose shape has not been set).
  Result<std::vector<int64_t>> tensor_shape(const std::string& name) const;
  /// Runs the engine synchronously. Errors: MissingInput, KernelFailed (naming the node).
  Status execute();
  /// Output of the last execute(); valid until the next execute(). Errors: NotFound.
  Result<TensorView> output(const std::string& name) const;
  /// CUDA backend (TensorRT's setTensorAddress): binds device memory for an input or an
  /// output, used by enqueue(). It must hold the tensor's bytes (dims from tensor_shape,
  /// dtype from Engine::tensor_desc, dense row-major) and stay valid while work is in flight.
  /// Errors: NotFound, InvalidArgument (null pointer, or a CPU engine).
  Status set_tensor_address(const std::string& name, void* device_ptr);
  /// CUDA backend (TensorRT's enqueueV3): enqueues one inference on `stream` (a
  /// cudaStream_t; nullptr = the context's own stream) reading and writing the addresses
  /// bound with set_tensor_address. Returns without waiting for the GPU. The first call
  /// runs the kernels directly; later calls replay a CUDA graph captured from it (unless
  /// set_cuda_graph(false)). Errors: MissingInput (an address not set), CudaError,
  /// CudnnError, CublasError naming the node; KernelFailed for nodes that run on the host.
  Status enqueue(void* stream = nullptr);
  /// CUDA backend: capture enqueue() as a CUDA graph after the first run (default on).
  void set_cuda_graph(bool on);
  /// The context's own CUDA stream (cudaStream_t), or null on the CPU backend.
  void* stream() const;
  /// Records per-layer wall times during execute() (small overhead per layer; on the
  /// CUDA backend GPU time per node from CUDA events, and CUDA graphs are not used).
  void set_profiling(bool on);
  /// Layer times of the last execute() with profiling on, in execution order.
  const std::vector<LayerTime>& layer_times() const;

 private:
  std::unique_ptr<Impl> impl_;
};

/// Memory for the CUDA backend's inputs and outputs (RAII): device memory, or pinned
/// (page-locked) host memory, which makes host↔device copies asynchronous and faster.
class CudaBuffer {
 public:
  enum class Kind { kDevice, kPinnedHost };
  CudaBuffer() = default;
  CudaBuffer(CudaBuffer&& o) noexcept;
  CudaBuffer& operator=(CudaBuffer&& o) noexcept;
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;
  ~CudaBuffer();
  /// Errors: OutOfMemory, NoGpu, InvalidArgument (kiln built without CUDA).
  static Result<CudaBuffer> allocate(Kind kind, size_t bytes);
  void* data() const { return data_; }
  size_t size() const { return size_; }
  Kind kind() const { return kind_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
  Kind kind_ = Kind::kDevice;
};

/// Asynchronous copy on `stream` (cudaStream_t, may be null) between any host, pinned or
/// device pointers (cudaMemcpyDefault). Errors: CudaError.
Status cuda_copy_async(void* dst, const void* src, size_t bytes, void* stream);
/// Waits for all work on `stream`. Errors: CudaError (including faults of earlier kernels).
Status cuda_stream_synchronize(void* stream);
/// Number of CUDA GPUs visible (0 without a driver or in a build without CUDA).
int cuda_device_count();

/// "0.1.0"
const char* version();

}  // namespace kiln
