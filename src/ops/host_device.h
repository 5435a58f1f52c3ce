// KILN_HOST_DEVICE marks functions that the CPU reference and the CUDA kernels share (the
// one definition of an op's arithmetic): __host__ __device__ under nvcc, nothing otherwise.
#pragma once

#ifdef __CUDACC__
#define KILN_HOST_DEVICE __host__ __device__
#else
#define KILN_HOST_DEVICE
#endif
