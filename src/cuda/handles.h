// RAII owners of a CUDA stream and the cuDNN / cuBLASLt handles bound to it: one set per
// execution context (and one for the builder while it lowers nodes).
#pragma once

#include "cuda/kernel.h"
#include "kiln/status.h"

namespace kiln::cuda {

class Handles {
 public:
  Handles() = default;
  Handles(const Handles&) = delete;
  Handles& operator=(const Handles&) = delete;
  ~Handles();
  /// Creates a non-blocking stream and library handles on `device`. Errors: NoGpu,
  /// CudaError, CudnnError, CublasError.
  Status init(int device);
  const Resources& res() const { return res_; }

 private:
  Resources res_;
};

/// Number of visible CUDA devices (0 when none or no driver).
int device_count();
/// Compute capability of `device` as major*10+minor, or an error (NoGpu).
Result<int> compute_capability(int device);

}  // namespace kiln::cuda
