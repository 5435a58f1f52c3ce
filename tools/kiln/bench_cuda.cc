// The CUDA runner of `kiln bench` (see bench.h): one execution context per stream, inputs
// copied from pinned host memory and outputs copied back on every inference, as an
// application would; CUDA events split each inference into H2D, compute and D2H.
#include <array>
#include <chrono>
#include <cstring>

#include "bench.h"
#include "cli.h"

#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>

#include "cuda/cuda_check.h"
#endif

namespace kiln::cli::bench {

#ifdef KILN_WITH_CUDA
namespace {

/// A device tensor and the pinned host buffer it is copied from or to.
struct Binding {
  std::string name;
  size_t bytes = 0;
  CudaBuffer device;
  CudaBuffer host;
};

/// Events of one in-flight inference. Two slots let the thread start inference i before
/// it waits for i-1, so the GPU never idles while the host enqueues.
struct Slot {
  cudaEvent_t start = nullptr, h2d_done = nullptr, compute_done = nullptr, end = nullptr;
  double enqueue_ms = 0;
  bool pending = false;
  bool record = false;
};

class CudaRunner final : public StreamRunner {
 public:
  ~CudaRunner() override {
    for (Slot& s : slots_)
      for (cudaEvent_t e : {s.start, s.h2d_done, s.compute_done, s.end})
        if (e) cudaEventDestroy(e);
  }

  Status init(Engine& engine, const std::vector<InputData>& inputs, const RunConfig& cfg) {
    device_ = cfg.device;
    KILN_ASSIGN_OR_RETURN(ctx_, engine.create_execution_context_checked());
    ctx_->set_cuda_graph(cfg.cuda_graph);
    stream_ = ctx_->stream();
    for (const InputData& in : inputs) {
      // A dynamic engine: the shape to run at (checked against the profile).
      KILN_RETURN_IF_ERROR(ctx_->set_input_shape(in.name, in.tensor.dims()));
      KILN_ASSIGN_OR_RETURN(Binding b, bind(in.name, in.tensor.bytes()));
      if (b.bytes) std::memcpy(b.host.data(), in.tensor.raw(), b.bytes);
      inputs_.push_back(std::move(b));
    }
    for (const std::string& name : engine.output_names()) {
      KILN_ASSIGN_OR_RETURN(TensorDesc d, engine.tensor_desc(name));
      // Dynamic outputs: the dims the input shapes set above give.
      KILN_ASSIGN_OR_RETURN(std::vector<int64_t> dims, ctx_->tensor_shape(name));
      int64_t numel = 1;
      for (int64_t dim : dims) numel *= dim;
      KILN_ASSIGN_OR_RETURN(Binding b,
                            bind(name, static_cast<size_t>(numel) * dtype_size(d.dtype)));
      outputs_.push_back(std::move(b));
    }
    for (Slot& s : slots_)
      for (cudaEvent_t* e : {&s.start, &s.h2d_done, &s.compute_done, &s.end})
        KILN_CUDA_CHECK(cudaEventCreate(e));
    // The first enqueue runs the kernels, the second captures the CUDA graph: both here,
    // on the main thread, so no capture overlaps another thread's CUDA calls.
    Samples unused;
    for (int i = 0; i < 2; ++i) {
      KILN_RETURN_IF_ERROR(step(false, unused));
      KILN_RETURN_IF_ERROR(drain(unused));
    }
    return Status::ok();
  }

  Status start_thread() override {
    KILN_CUDA_CHECK(cudaSetDevice(device_));
    return Status::ok();
  }

  Status step(bool record, Samples& out) override {
    Slot& s = slots_[next_];
    // The slot's previous inference (two steps ago) was collected by the last step.
    KILN_RETURN_IF_ERROR(issue(s, record));
    Slot& prev = slots_[next_ ^ 1];
    next_ ^= 1;
    if (prev.pending) return collect(prev, out);
    return Status::ok();
  }

  Status drain(Samples& out) override {
    // Between steps at most one inference is in flight (step collects the one before).
    for (Slot& s : slots_)
      if (s.pending) KILN_RETURN_IF_ERROR(collect(s, out));
    return Status::ok();
  }

 private:
  Result<Binding> bind(const std::string& name, size_t bytes) {
    Binding b;
    b.name = name;
    b.bytes = bytes;
    // Zero-size tensors still get a valid (1-byte) address.
    KILN_ASSIGN_OR_RETURN(b.device,
                          CudaBuffer::allocate(CudaBuffer::Kind::kDevice, bytes ? bytes : 1));
    KILN_ASSIGN_OR_RETURN(b.host,
                          CudaBuffer::allocate(CudaBuffer::Kind::kPinnedHost, bytes ? bytes : 1));
    KILN_RETURN_IF_ERROR(ctx_->set_tensor_address(name, b.device.data()));
    return b;
  }

  Status issue(Slot& s, bool record) {
    KILN_CUDA_CHECK(cudaEventRecord(s.start, static_cast<cudaStream_t>(stream_)));
    for (const Binding& b : inputs_)
      if (b.bytes)
        KILN_RETURN_IF_ERROR(cuda_copy_async(b.device.data(), b.host.data(), b.bytes, stream_));
    KILN_CUDA_CHECK(cudaEventRecord(s.h2d_done, static_cast<cudaStream_t>(stream_)));
    const auto t0 = std::chrono::steady_clock::now();
    KILN_RETURN_IF_ERROR(ctx_->enqueue(stream_));
    s.enqueue_ms = ms_since(t0);
    KILN_CUDA_CHECK(cudaEventRecord(s.compute_done, static_cast<cudaStream_t>(stream_)));
    for (const Binding& b : outputs_)
      if (b.bytes)
        KILN_RETURN_IF_ERROR(cuda_copy_async(b.host.data(), b.device.data(), b.bytes, stream_));
    KILN_CUDA_CHECK(cudaEventRecord(s.end, static_cast<cudaStream_t>(stream_)));
    s.pending = true;
    s.record = record;
    return Status::ok();
  }

  Status collect(Slot& s, Samples& out) {
    s.pending = false;
    // Surfaces faults of the inference's kernels too (the error is sticky).
    KILN_CUDA_CHECK(cudaEventSynchronize(s.end));
    if (!s.record) return Status::ok();
    float h2d = 0, compute = 0, d2h = 0, total = 0;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&h2d, s.start, s.h2d_done));
    KILN_CUDA_CHECK(cudaEventElapsedTime(&compute, s.h2d_done, s.compute_done));
    KILN_CUDA_CHECK(cudaEventElapsedTime(&d2h, s.compute_done, s.end));
    KILN_CUDA_CHECK(cudaEventElapsedTime(&total, s.start, s.end));
    out.h2d.push_back(h2d);
    out.gpu_compute.push_back(compute);
    out.d2h.push_back(d2h);
    out.latency.push_back(total);
    out.enqueue.push_back(s.enqueue_ms);
    return Status::ok();
  }

  int device_ = 0;
  std::unique_ptr<ExecutionContext> ctx_;
  void* stream_ = nullptr;
  std::vector<Binding> inputs_, outputs_;
  std::array<Slot, 2> slots_;
  int next_ = 0;
};

}  // namespace

Result<std::vector<std::unique_ptr<StreamRunner>>> make_cuda_runners(
    Engine& engine, const std::vector<InputData>& inputs, const RunConfig& cfg) {
  std::vector<std::unique_ptr<StreamRunner>> runners;
  for (int i = 0; i < cfg.streams; ++i) {
    auto r = std::make_unique<CudaRunner>();
    if (Status st = r->init(engine, inputs, cfg); !st.is_ok())
      return st.with_context("stream " + std::to_string(i));
    runners.push_back(std::move(r));
  }
  return runners;
}

#else

Result<std::vector<std::unique_ptr<StreamRunner>>> make_cuda_runners(Engine&,
                                                                     const std::vector<InputData>&,
                                                                     const RunConfig&) {
  return built_without_cuda();
}

#endif

}  // namespace kiln::cli::bench
