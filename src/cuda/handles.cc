#include "cuda/handles.h"

#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "cuda/backend.h"
#include "cuda/cuda_check.h"
#include "cuda/cudnn_conv.h"

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

namespace {

/// cuBLASLt's first call in a process builds its kernel tables: one heuristic query for a
/// small FP16 GEMM pays for it.
void warm_up_cublaslt() {
  cublasLtHandle_t h = nullptr;
  if (cublasLtCreate(&h) != CUBLAS_STATUS_SUCCESS) return;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t l = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  if (cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
      cublasLtMatrixLayoutCreate(&l, CUDA_R_16F, 64, 64, 64) == CUBLAS_STATUS_SUCCESS &&
      cublasLtMatmulPreferenceCreate(&pref) == CUBLAS_STATUS_SUCCESS) {
    cublasLtMatmulHeuristicResult_t r{};
    int count = 0;
    (void)cublasLtMatmulAlgoGetHeuristic(h, desc, l, l, l, l, pref, 1, &r, &count);
  }
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (l) cublasLtMatrixLayoutDestroy(l);
  if (desc) cublasLtMatmulDescDestroy(desc);
  cublasLtDestroy(h);
}

/// The process's warm-up thread, joined when the process exits.
struct WarmUp {
  std::once_flag once;
  std::thread thread;
  ~WarmUp() {
    if (thread.joinable()) thread.join();
  }
};

WarmUp& warm_up_state() {
  static WarmUp w;
  return w;
}

}  // namespace

void warm_up_libraries(uint32_t sources) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  if (const char* env = std::getenv("KILN_LIBRARY_WARMUP"); env && std::string(env) == "0") return;
  const bool lt = sources & tactic_source_bit(TacticSource::kCublasLt);
  const bool dnn = sources & tactic_source_bit(TacticSource::kCudnn);
  if (!lt && !dnn) return;
  WarmUp& w = warm_up_state();
  std::call_once(w.once, [&] {
    w.thread = std::thread([device, dnn] {
      if (cudaSetDevice(device) != cudaSuccess) {
        cudaGetLastError();
        return;
      }
      // cuBLASLt's tables for either library: cuDNN's first convolution pays for part of
      // them too (warming cuDNN alone gained less). Then cuDNN's own loading.
      warm_up_cublaslt();
      if (dnn) {
        cudnnHandle_t h = nullptr;
        if (cudnnCreate(&h) == CUDNN_STATUS_SUCCESS) {
          warm_up_cudnn(h);
          cudnnDestroy(h);
        }
      }
    });
  });
}

}  // namespace kiln::cuda
