#include "cuda/handles.h"

#include <string>

#include "cuda/cuda_check.h"

namespace kiln::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the error state
    return 0;
  }
  return n;
}

Result<int> compute_capability(int device) {
  const int n = device_count();
  if (n == 0)
    return Status(ErrorCode::kNoGpu, "no CUDA GPU is visible to this process",
                  "check nvidia-smi and CUDA_VISIBLE_DEVICES, or build for --backend cpu");
  if (device < 0 || device >= n)
    return Status(ErrorCode::kNoGpu, "CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(n) +
                                         " visible)",
                  "use --device 0.." + std::to_string(n - 1));
  int major = 0, minor = 0;
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major * 10 + minor;
}

Status Handles::init(int device) {
  KILN_ASSIGN_OR_RETURN(int cc, compute_capability(device));
  res_.device = device;
  res_.cc_major = cc / 10;
  res_.cc_minor = cc % 10;
  KILN_CUDA_CHECK(cudaSetDevice(device));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&res_.sm_count, cudaDevAttrMultiProcessorCount, device));
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&res_.stream, cudaStreamNonBlocking));
  KILN_CUDNN_CHECK(cudnnCreate(&res_.cudnn));
  KILN_CUDNN_CHECK(cudnnSetStream(res_.cudnn, res_.stream));
  KILN_CUBLAS_CHECK(cublasLtCreate(&res_.cublaslt));
  return Status::ok();
}

Handles::~Handles() {
  if (res_.cublaslt) cublasLtDestroy(res_.cublaslt);
  if (res_.cudnn) cudnnDestroy(res_.cudnn);
  if (res_.stream) cudaStreamDestroy(res_.stream);
}

}  // namespace kiln::cuda
