// Seeded uniform random data on the device, for the autotuner's timing inputs
// (src/cuda/autotune.cc): realistic values (not zeros, which some kernels and the
// hardware's power management treat as special) without generating hundreds of MB on the
// host. Counter-based: element i gets a hash of (seed, i), so any grid is reproducible.
#include "cuda/autotune.h"
#include "cuda/cuda_check.h"
#include "cuda/kernels/common.cuh"

namespace kiln::cuda {
namespace {

/// 64-bit finaliser of SplitMix64 (Steele, Lea, Flood: "Fast splittable pseudorandom
/// number generators", OOPSLA 2014): a bijective mix, good enough for timing data.
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

template <typename T>
__global__ void fill_uniform_kernel(T* __restrict__ p, int64_t n, uint64_t seed) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(i + 1));
    const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);  // [0, 1), 24 bits
    p[i] = from_compute<T>(static_cast<compute_t<T>>(2.0f * u - 1.0f));
  }
}

template <typename T>
Status launch(void* p, int64_t n, uint64_t seed, cudaStream_t stream) {
  fill_uniform_kernel<T><<<grid_for(n), kBlock, 0, stream>>>(static_cast<T*>(p), n, seed);
  KILN_CUDA_CHECK_LAUNCH("fill_uniform_kernel");
  return Status::ok();
}

}  // namespace

Status fill_uniform(DataType dt, void* p, int64_t n, uint64_t seed, cudaStream_t stream) {
  if (n <= 0) return Status::ok();
  switch (dt) {
    case DataType::kF32: return launch<float>(p, n, seed, stream);
    case DataType::kF16: return launch<__half>(p, n, seed, stream);
    case DataType::kBF16: return launch<__nv_bfloat16>(p, n, seed, stream);
    case DataType::kF64: return launch<double>(p, n, seed, stream);
    default:  // integers and bool: zeros are valid indices, counts and masks
      KILN_CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<size_t>(n) * dtype_size(dt), stream));
      return Status::ok();
  }
}

}  // namespace kiln::cuda
