// GPU selection for the kiln subcommands (see cli.h). The runtime allocates and launches on
// the calling thread's current device, so the CLI sets it before loading an engine and in
// every thread that drives a context.
#include <cstdio>

#include "cli.h"

#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>

#include "cuda/cuda_check.h"
#endif

namespace kiln::cli {

Status use_cuda_device(int device) {
#ifdef KILN_WITH_CUDA
  const int n = cuda_device_count();
  if (n == 0)
    return Status(ErrorCode::kNoGpu, "no CUDA GPU is visible to this process",
                  "check nvidia-smi and CUDA_VISIBLE_DEVICES, or use --backend cpu");
  if (device < 0 || device >= n)
    return Status(ErrorCode::kInvalidArgument,
                  "--device " + std::to_string(device) + " does not exist: " + std::to_string(n) +
                      " GPU" + (n == 1 ? " is" : "s are") + " visible",
                  "give --device 0" + (n > 1 ? " to " + std::to_string(n - 1) : std::string()));
  KILN_CUDA_CHECK(cudaSetDevice(device));
  return Status::ok();
#else
  (void)device;
  return built_without_cuda();
#endif
}

std::string cuda_device_description(int device) {
#ifdef KILN_WITH_CUDA
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, device) != cudaSuccess) return "";
  char buf[384];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %d SMs, %s)", p.name, p.major, p.minor,
                p.multiProcessorCount, format_bytes(p.totalGlobalMem).c_str());
  return buf;
#else
  (void)device;
  return "";
#endif
}

}  // namespace kiln::cli
