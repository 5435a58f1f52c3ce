// The CUDA backend's kernel interface and registry.
//
// A GPU kernel for an op is a factory plus a Kernel object. The factory runs when the
// builder lowers a node (to check support and record the tactic) and again when an
// execution context is created (cuDNN plans and cuBLASLt descriptors are per handle). It
// sees every operand's dtype, static dims and layout, and the host data of constant
// inputs (shape/axes/pads inputs, weights), so all shape logic runs once on the host.
// Kernel::enqueue then only launches work on the context's stream: no allocation, no
// host synchronisation, so a context's whole enqueue can be captured as a CUDA graph.
//
// Registration, one file per family under src/cuda/ (kernels in src/cuda/kernels/*.cu):
//   KILN_REGISTER_CUDA_KERNELS(pointwise) {
//     reg.add({.op_type = "Relu", .create = create_unary});
//   }
// A factory returns NoGpuKernel (with a hint) for attribute values or dtypes it does not
// implement; the builder then runs that node on the host (see runtime/cuda_context.cc)
// and `kiln inspect` lists it.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "kiln/status.h"
#include "kiln/types.h"

namespace kiln::cuda {

/// Physical layout of a 4-D/5-D activation. Dims are always given in ONNX (logical) order
/// N, C, spatial...; kNhwc means the memory order is N, spatial..., C (channels last).
enum class Layout : uint8_t { kRowMajor = 0, kNhwc = 1 };
const char* layout_name(Layout l);

/// Precision policy of a build, as the kernels see it.
struct Precision {
  /// FP32 GEMMs/convolutions may use TF32 tensor cores (10-bit mantissa inputs).
  bool allow_tf32 = true;
};

/// One operand of a node. dtype kUndefined = omitted optional input/output.
struct Operand {
  DataType dtype = DataType::kUndefined;
  std::vector<int64_t> dims;  ///< logical (ONNX) dims, static
  Layout layout = Layout::kRowMajor;
  /// Host copy of the data when the operand is a constant (initializer / folded), else null.
  const HostTensor* value = nullptr;

  bool present() const { return dtype != DataType::kUndefined; }
  int64_t numel() const {
    int64_t n = 1;
    for (auto d : dims) n *= d;
    return n;
  }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  size_t rank() const { return dims.size(); }
};

/// Library handles of one execution context (or of the builder while it lowers nodes).
struct Resources {
  int device = 0;
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
};

/// What a factory sees.
struct KernelConfig {
  const ir::Node& node;
  std::vector<Operand> inputs;   ///< one per node input (omitted → !present())
  std::vector<Operand> outputs;  ///< one per node output
  const Resources& res;
  Precision precision;
  /// Replay: the tactic_params() of the candidate the builder chose (recorded in the
  /// plan). A factory that enumerates candidates builds exactly that one, skipping its
  /// library's heuristics, or fails with TacticUnavailable. Null: choose by heuristics.
  const std::string* tactic = nullptr;
  /// Load instead of compile: the artifact() the builder's kernel produced for this node
  /// (a serialized cuDNN execution plan, an NVRTC cubin), stored in the plan. A factory that
  /// cannot use it (other library version, damaged bytes) builds the kernel as without it.
  /// Null or empty: none.
  const std::vector<uint8_t>* artifact = nullptr;
  /// Tactic sources a candidate enumerator may offer (TacticSource bits): enumerators skip
  /// the libraries that are off (the autotuner also drops such candidates).
  uint32_t sources = kAllTacticSources;
  bool allows(TacticSource s) const { return (sources & tactic_source_bit(s)) != 0; }

  int opset() const { return node.opset; }
  const Operand& in(size_t i) const { return inputs[i]; }
  const Operand& out(size_t i) const { return outputs[i]; }
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i].present(); }
  /// Error located at the node.
  Status error(ErrorCode code, const std::string& msg, const std::string& hint = {}) const {
    return Status(code, msg, hint, node.loc());
  }
  /// Shorthand for "this kernel does not implement that": NoGpuKernel at the node.
  Status unsupported(const std::string& what) const {
    return Status(ErrorCode::kNoGpuKernel, "no GPU kernel for " + node.op_type + ": " + what,
                  "the node runs on the host (slow); report the case if it matters", node.loc());
  }
};

/// Device pointers and scratch for one launch. inputs[i] is null for omitted inputs.
struct LaunchArgs {
  const void* const* inputs;
  void* const* outputs;
  void* workspace;            ///< workspace_bytes() bytes, 256-byte aligned (null if 0)
  cudaStream_t stream;
  const Resources& res;
  template <typename T> const T* in(size_t i) const { return static_cast<const T*>(inputs[i]); }
  template <typename T> T* out(size_t i) const { return static_cast<T*>(outputs[i]); }
};

/// A node lowered to the GPU, bound to static shapes.
class Kernel {
 public:
  virtual ~Kernel() = default;
  /// Scratch the kernel needs per launch (cuDNN/cuBLASLt workspace), bytes.
  virtual size_t workspace_bytes() const { return 0; }
  /// Human-readable tactic, e.g. "cudnn:eng12" or "kiln:broadcast_binary" (kiln inspect).
  virtual std::string tactic() const = 0;
  /// The library the kernel runs in (BuilderConfig::tactic_sources).
  virtual TacticSource tactic_source() const { return TacticSource::kKiln; }
  /// What KernelConfig::tactic needs to rebuild exactly this kernel (e.g. a cuDNN engine
  /// id and its knob choices); empty for kernels that have one way to run.
  virtual std::string tactic_params() const { return {}; }
  /// Compiled code that lets an execution context load this kernel without compiling it
  /// again (KernelConfig::artifact): a serialized cuDNN execution plan of a runtime-fusion
  /// engine, the cubin of a kernel generated at build time. Empty: nothing worth storing.
  /// Called by the builder once per node, after tactic selection.
  virtual std::vector<uint8_t> artifact() const { return {}; }
  /// Enqueues the op on a.stream. Must not allocate or synchronise (CUDA-graph capture).
  /// Errors: CudaError/CudnnError/CublasError naming the failing call.
  virtual Status enqueue(const LaunchArgs& a) = 0;
};

using KernelFactory = Result<std::unique_ptr<Kernel>> (*)(const KernelConfig&);
/// Every way the backend can run a node (tactic candidates), each already built for the
/// config and with its own tactic_params(); the builder times them on the GPU and records
/// the fastest (src/cuda/autotune.h). An empty list or NoGpuKernel: no GPU kernel.
using TacticEnumerator = Result<std::vector<std::unique_ptr<Kernel>>> (*)(const KernelConfig&);

/// One registry entry.
struct KernelEntry {
  std::string op_type;
  std::string domain;  ///< "" = ai.onnx
  KernelFactory create = nullptr;
  /// View ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout in inference):
  /// output 0 is input 0's memory with new dims; the memory planner aliases them and no
  /// kernel runs (create may be null).
  bool alias_input0 = false;
  /// The factory reads Operand::layout, so its kernels take kNhwc activations (and, for
  /// convolutions, KRSC weights). The layout pass (builder/layout.h) gives kNhwc operands
  /// only to such ops; the factory may still refuse a case with NoGpuKernel.
  bool nhwc = false;
  /// Optional: enumerates tactic candidates for timing. Entries without one have a single
  /// way to run (create's).
  TacticEnumerator candidates = nullptr;
};

class KernelRegistry {
 public:
  static KernelRegistry& instance();
  /// Adds an entry; a duplicate (domain, op_type) aborts at start-up (a kiln bug).
  void add(KernelEntry e);
  /// The entry for an op, or null.
  const KernelEntry* find(const std::string& domain, const std::string& op_type) const;
  std::vector<const KernelEntry*> all() const;

  struct Registrar {
    Registrar(void (*fn)(KernelRegistry&)) { fn(instance()); }
  };

 private:
  std::map<std::pair<std::string, std::string>, KernelEntry> entries_;
};

}  // namespace kiln::cuda

#define KILN_REGISTER_CUDA_KERNELS(family)                                                 \
  static void kiln_register_cuda_##family(::kiln::cuda::KernelRegistry& reg);              \
  static ::kiln::cuda::KernelRegistry::Registrar kiln_cuda_registrar_##family(             \
      kiln_register_cuda_##family);                                                        \
  static void kiln_register_cuda_##family(::kiln::cuda::KernelRegistry& reg)
