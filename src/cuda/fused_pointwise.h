// The CUDA kernel of kiln.FusedPointwise (src/ops/fused_pointwise.h): one kernel generated
// per node, as CUDA C++ specialised for its program, dtypes, static dims and operand
// layouts, compiled by NVRTC for the GPU that builds the plan (src/cuda/nvrtc_module.h).
// The cubin travels in the plan as the node's artifact, so execution contexts load it
// without compiling.
//
// The generated kernel walks the output in its memory order (channels last for kNhwc) and
// reads each input at the output element's broadcast position, specialised per input:
//  - one element: loaded once per thread, before the loop;
//  - a "run": the input varies along one contiguous block of the output's merged dims,
//    offset = (i / inner) % extent with compile-time constants (the same dims and layout
//    as the output: offset i; an NHWC per-channel [1,C,1,1] operand: i % C; an NCHW one:
//    (i / HW) % C; a row [W]: i % W);
//  - anything else (mixed layouts, several broadcast dims): the index decoded dim by dim,
//    offset = sum of digit * stride, divisions by constants.
// A second entry point handles V = 16 bytes / widest element per thread (4 f32, 8 f16)
// with 16-byte vector accesses of the output and of runs with inner == 1 (splat loads for
// runs with inner % V == 0); enqueue takes it when the pointers are aligned for it.
// Formulas come from the op table as text (KILN_PW_OPS), math from NVRTC's built-in
// device functions, f16/bf16 conversions from inline PTX and bit operations: the source
// includes nothing. f16/bf16 compute in f32, f64 in f64, as the CPU reference.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cuda/kernel.h"
#include "cuda/nvrtc_module.h"

namespace kiln::cuda {

/// A FusedPointwise node bound to its operands.
class FusedPointwiseKernel final : public Kernel {
 public:
  /// What the factory prepared: see create_fused_pointwise.
  struct Parts {
    std::string source;                       ///< the generated CUDA C++ (empty: numel 0)
    std::vector<uint8_t> artifact;            ///< header + device image (empty: numel 0)
    std::shared_ptr<const CudaLibrary> lib;   ///< keeps the kernels loaded
    cudaKernel_t scalar = nullptr;            ///< one element per thread iteration
    cudaKernel_t vector = nullptr;            ///< `vec` elements per iteration, or null
    int vec = 1;
    int64_t numel = 0;
    /// Per input: read with vector loads by the vector kernel (alignment checked), and
    /// the element size in bytes.
    std::vector<bool> vector_input;
    std::vector<size_t> input_elem;
    size_t out_elem = 0;
    bool from_artifact = false;
  };
  explicit FusedPointwiseKernel(Parts p) : p_(std::move(p)) {}

  std::string tactic() const override { return "kiln:nvrtc_pointwise"; }
  /// The device image with a header identifying the source it was compiled from and the
  /// architecture (see create_fused_pointwise).
  std::vector<uint8_t> artifact() const override { return p_.artifact; }
  Status enqueue(const LaunchArgs& a) override;

  /// True when the image came from KernelConfig::artifact (nothing was compiled).
  bool loaded_from_artifact() const { return p_.from_artifact; }
  /// The generated CUDA source (tests and debugging).
  const std::string& source() const { return p_.source; }

 private:
  Parts p_;
};

/// Factory of kiln.FusedPointwise: reads the node's program (ops::read_pw_program), plans
/// the walk over the output's memory order with every operand's layout (any mix of
/// row-major and kNhwc), generates the kernel source and gets its image: from
/// cfg.artifact when its header matches (magic, format version, the FNV-1a hash of this
/// very source, the GPU's compute capability, image size and hash), else from NVRTC. An
/// empty output builds a kernel that launches nothing. Errors: OnnxBadAttribute (program),
/// ShapeMismatch (an input that does not broadcast to the output), Internal (output dtype
/// other than the program's), KernelFailed / CudaError (NVRTC, loading); NoGpuKernel for
/// more than ops::kMaxPwInputs inputs.
Result<std::unique_ptr<Kernel>> create_fused_pointwise(const KernelConfig& cfg);

}  // namespace kiln::cuda
