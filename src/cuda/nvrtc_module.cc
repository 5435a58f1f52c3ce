#include "cuda/nvrtc_module.h"

#include <nvrtc.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/cuda_check.h"

namespace kiln::cuda {
namespace {

Status nvrtc_status(nvrtcResult r, const char* call) {
  return Status(ErrorCode::kCudaError,
                std::string("NVRTC ") + call + " failed: " + nvrtcGetErrorString(r),
                "check that libnvrtc and libnvrtc-builtins of the CUDA toolkit kiln was built "
                "with are installed");
}

#define KILN_NVRTC_CHECK(call)                                    \
  do {                                                            \
    nvrtcResult kiln_r_ = (call);                                 \
    if (kiln_r_ != NVRTC_SUCCESS) return nvrtc_status(kiln_r_, #call); \
  } while (0)

/// Destroys the program on every path out of compile().
struct ProgramGuard {
  nvrtcProgram p = nullptr;
  ~ProgramGuard() {
    if (p) nvrtcDestroyProgram(&p);
  }
};

/// The architecture to compile for: the GPU's (cubin) when NVRTC knows it, else the newest
/// older one it knows (PTX, compiled by the driver at load); 0 when none fits.
Result<std::pair<int, bool>> target_arch(int arch) {
  int n = 0;
  KILN_NVRTC_CHECK(nvrtcGetNumSupportedArchs(&n));
  std::vector<int> archs(static_cast<size_t>(std::max(n, 0)));
  if (n > 0) KILN_NVRTC_CHECK(nvrtcGetSupportedArchs(archs.data()));
  if (std::find(archs.begin(), archs.end(), arch) != archs.end()) return std::pair{arch, true};
  int best = 0;
  for (int a : archs)
    if (a <= arch) best = std::max(best, a);
  return std::pair{best, false};
}

Result<DeviceImage> compile(const std::string& source, const std::string& name, int arch) {
  KILN_ASSIGN_OR_RETURN(auto target, target_arch(arch));
  if (target.first == 0)
    return Status(ErrorCode::kCudaError,
                  "NVRTC knows no GPU architecture at or below sm_" + std::to_string(arch),
                  "use a CUDA toolkit (NVRTC) that supports this GPU");
  const bool cubin = target.second;
  const std::string arch_opt = std::string("--gpu-architecture=") + (cubin ? "sm_" : "compute_") +
                               std::to_string(target.first);
  // No fast-math: the kernel must round like the CPU reference it is tested against.
  const char* opts[] = {arch_opt.c_str(), "--std=c++17"};
  ProgramGuard prog;
  KILN_NVRTC_CHECK(nvrtcCreateProgram(&prog.p, source.c_str(), name.c_str(), 0, nullptr, nullptr));
  const nvrtcResult r = nvrtcCompileProgram(prog.p, 2, opts);
  if (r != NVRTC_SUCCESS) {
    size_t log_size = 0;
    std::string log;
    if (nvrtcGetProgramLogSize(prog.p, &log_size) == NVRTC_SUCCESS && log_size > 1) {
      log.resize(log_size);
      if (nvrtcGetProgramLog(prog.p, log.data()) != NVRTC_SUCCESS) log.clear();
      while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
    }
    return Status(ErrorCode::kKernelFailed,
                  "NVRTC could not compile generated kernel '" + name + "' (" + arch_opt +
                      "): " + nvrtcGetErrorString(r) + (log.empty() ? "" : "\n" + log),
                  "a kiln bug: report it with this message");
  }
  DeviceImage img;
  size_t size = 0;
  if (cubin) {
    KILN_NVRTC_CHECK(nvrtcGetCUBINSize(prog.p, &size));
    img.bytes.resize(size);
    KILN_NVRTC_CHECK(nvrtcGetCUBIN(prog.p, reinterpret_cast<char*>(img.bytes.data())));
  } else {
    img.kind = DeviceImage::Kind::kPtx;
    KILN_NVRTC_CHECK(nvrtcGetPTXSize(prog.p, &size));  // includes the NUL
    img.bytes.resize(size);
    KILN_NVRTC_CHECK(nvrtcGetPTX(prog.p, reinterpret_cast<char*>(img.bytes.data())));
  }
  return img;
}

std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

uint64_t fnv1a64(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

Result<DeviceImage> nvrtc_compile(const std::string& source, const std::string& name,
                                  int cc_major, int cc_minor) {
  const int arch = cc_major * 10 + cc_minor;
  // One entry per distinct generated kernel and architecture; a build holds at most one per
  // fused node, so the cache stays small.
  static std::map<std::pair<int, std::string>, DeviceImage> cache;
  {
    std::lock_guard<std::mutex> lock(cache_mutex());
    auto it = cache.find({arch, source});
    if (it != cache.end()) return it->second;
  }
  // Compiled outside the lock: two threads may both compile a new source, harmlessly.
  KILN_ASSIGN_OR_RETURN(DeviceImage img, compile(source, name, arch));
  std::lock_guard<std::mutex> lock(cache_mutex());
  return cache.emplace(std::pair{arch, source}, std::move(img)).first->second;
}

Result<std::shared_ptr<const CudaLibrary>> CudaLibrary::load(const DeviceImage& image) {
  // Shared per image: keyed by the bytes' hash and size, compared in full.
  struct Entry {
    std::vector<uint8_t> bytes;
    std::weak_ptr<const CudaLibrary> lib;
  };
  static std::map<std::pair<uint64_t, size_t>, std::vector<Entry>> loaded;
  const uint64_t h = fnv1a64(image.bytes.data(), image.bytes.size());
  std::lock_guard<std::mutex> lock(cache_mutex());
  std::vector<Entry>& bucket = loaded[{h, image.bytes.size()}];
  for (Entry& e : bucket)
    if (e.bytes == image.bytes)
      if (auto lib = e.lib.lock()) return lib;
  bucket.erase(std::remove_if(bucket.begin(), bucket.end(),
                              [](const Entry& e) { return e.lib.expired(); }),
               bucket.end());
  if (image.bytes.empty() ||
      (image.kind == DeviceImage::Kind::kPtx && image.bytes.back() != '\0'))
    return Status(ErrorCode::kCudaError, "empty or unterminated device image");
  cudaLibrary_t lib = nullptr;
  KILN_CUDA_CHECK(
      cudaLibraryLoadData(&lib, image.bytes.data(), nullptr, nullptr, 0, nullptr, nullptr, 0));
  std::shared_ptr<const CudaLibrary> shared(new CudaLibrary(lib));
  bucket.push_back({image.bytes, shared});
  return shared;
}

CudaLibrary::~CudaLibrary() {
  // Errors are ignored: at process exit the runtime may already be unloading.
  if (lib_) cudaLibraryUnload(lib_);
}

Result<cudaKernel_t> CudaLibrary::kernel(const char* name) const {
  cudaKernel_t k = nullptr;
  KILN_CUDA_CHECK(cudaLibraryGetKernel(&k, lib_, name));
  // Loads the kernel into this context now rather than at its first launch.
  cudaFuncAttributes attr{};
  KILN_CUDA_CHECK(cudaFuncGetAttributes(&attr, reinterpret_cast<const void*>(k)));
  return k;
}

}  // namespace kiln::cuda
