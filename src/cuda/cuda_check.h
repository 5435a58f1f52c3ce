// Checked CUDA / cuDNN / cuBLASLt calls. Every call into a CUDA library goes through one of
// these macros, so a failure becomes a Status naming the call, the file:line and the
// library's own error string (the caller adds the node with Status::at).
//
//   KILN_CUDA_CHECK(cudaMemcpyAsync(...));           // returns Status on failure
//   KILN_CUDNN_CHECK(cudnnCreate(&h));
//   KILN_CUBLAS_CHECK(cublasLtMatmul(...));
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "kiln/status.h"

namespace kiln::cuda {

Status cuda_status(cudaError_t e, const char* call, const char* file, int line);
Status cudnn_status(cudnnStatus_t e, const char* call, const char* file, int line);
Status cublas_status(cublasStatus_t e, const char* call, const char* file, int line);
/// Status of the last kernel launch (cudaGetLastError): launch-configuration errors.
Status last_launch_status(const char* kernel, const char* file, int line);

}  // namespace kiln::cuda

#define KILN_CUDA_CHECK(call)                                                                \
  do {                                                                                       \
    cudaError_t kiln_e_ = (call);                                                            \
    if (kiln_e_ != cudaSuccess) return ::kiln::cuda::cuda_status(kiln_e_, #call, __FILE__, __LINE__); \
  } while (0)

#define KILN_CUDNN_CHECK(call)                                                               \
  do {                                                                                       \
    cudnnStatus_t kiln_e_ = (call);                                                          \
    if (kiln_e_ != CUDNN_STATUS_SUCCESS)                                                     \
      return ::kiln::cuda::cudnn_status(kiln_e_, #call, __FILE__, __LINE__);                 \
  } while (0)

#define KILN_CUBLAS_CHECK(call)                                                              \
  do {                                                                                       \
    cublasStatus_t kiln_e_ = (call);                                                         \
    if (kiln_e_ != CUBLAS_STATUS_SUCCESS)                                                    \
      return ::kiln::cuda::cublas_status(kiln_e_, #call, __FILE__, __LINE__);                \
  } while (0)

/// After a <<<...>>> launch: returns a CudaError Status if the launch failed.
#define KILN_CUDA_CHECK_LAUNCH(name)                                                         \
  do {                                                                                       \
    ::kiln::Status kiln_s_ = ::kiln::cuda::last_launch_status(name, __FILE__, __LINE__);     \
    if (!kiln_s_.is_ok()) return kiln_s_;                                                    \
  } while (0)
