#include "cuda/cuda_check.h"

#include <string>

namespace kiln::cuda {
namespace {
std::string where(const char* call, const char* file, int line) {
  std::string f = file;
  auto p = f.find("src/");
  if (p != std::string::npos) f = f.substr(p);
  return std::string(call) + " (" + f + ":" + std::to_string(line) + ")";
}
}  // namespace

Status cuda_status(cudaError_t e, const char* call, const char* file, int line) {
  std::string hint = e == cudaErrorMemoryAllocation
                         ? "the GPU is out of memory: lower the batch size or free other work on the GPU"
                         : (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
                               ? "no usable GPU: check nvidia-smi and CUDA_VISIBLE_DEVICES"
                               : "run under compute-sanitizer to locate the fault";
  ErrorCode code = (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) ? ErrorCode::kNoGpu
                   : e == cudaErrorMemoryAllocation                             ? ErrorCode::kOutOfMemory
                                                                                : ErrorCode::kCudaError;
  return Status(code, where(call, file, line) + " failed: " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e),
                hint);
}

Status cudnn_status(cudnnStatus_t e, const char* call, const char* file, int line) {
  char buf[512] = {0};
  cudnnGetLastErrorString(buf, sizeof(buf));
  return Status(ErrorCode::kCudnnError,
                where(call, file, line) + " failed: " + cudnnGetErrorString(e) + (buf[0] ? std::string(": ") + buf : ""),
                "set CUDNN_LOGERR_DBG=1 CUDNN_LOGDEST_DBG=stderr for cuDNN's own log");
}

Status cublas_status(cublasStatus_t e, const char* call, const char* file, int line) {
  return Status(ErrorCode::kCublasError,
                where(call, file, line) + " failed: " + std::to_string(static_cast<int>(e)) + " (" +
                    cublasLtGetStatusName(e) + ": " + cublasLtGetStatusString(e) + ")",
                "set CUBLASLT_LOG_LEVEL=2 for cuBLASLt's own log");
}

Status last_launch_status(const char* kernel, const char* file, int line) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return Status::ok();
  return cuda_status(e, (std::string("launch of ") + kernel).c_str(), file, line);
}

}  // namespace kiln::cuda
