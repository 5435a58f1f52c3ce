// Device-side helpers shared by kiln's own CUDA kernels (src/cuda/kernels/*.cu):
// dtype → device type mapping and dispatch, float conversion for narrow types, launch
// geometry, and a strided index helper for broadcasting / permuting kernels.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/kernel.h"
#include "kiln/types.h"

namespace kiln::cuda {

/// Max rank handled by strided kernels (ONNX models in practice use <= 6).
constexpr int kMaxRank = 8;

// ---- element types ------------------------------------------------------------------
// Device scalar types: f16 = __half, bf16 = __nv_bfloat16, bool = bool (1 byte).
template <DataType D> struct DeviceType;
template <> struct DeviceType<DataType::kF32> { using type = float; };
template <> struct DeviceType<DataType::kF16> { using type = __half; };
template <> struct DeviceType<DataType::kBF16> { using type = __nv_bfloat16; };
template <> struct DeviceType<DataType::kF64> { using type = double; };
template <> struct DeviceType<DataType::kI8> { using type = int8_t; };
template <> struct DeviceType<DataType::kU8> { using type = uint8_t; };
template <> struct DeviceType<DataType::kI16> { using type = int16_t; };
template <> struct DeviceType<DataType::kU16> { using type = uint16_t; };
template <> struct DeviceType<DataType::kI32> { using type = int32_t; };
template <> struct DeviceType<DataType::kU32> { using type = uint32_t; };
template <> struct DeviceType<DataType::kI64> { using type = int64_t; };
template <> struct DeviceType<DataType::kU64> { using type = uint64_t; };
template <> struct DeviceType<DataType::kBool> { using type = bool; };

/// Compute type of an element type: narrow floats compute in float (FP32 accumulation).
template <typename T> struct ComputeType { using type = T; };
template <> struct ComputeType<__half> { using type = float; };
template <> struct ComputeType<__nv_bfloat16> { using type = float; };
template <typename T> using compute_t = typename ComputeType<T>::type;

template <typename T> __device__ __forceinline__ compute_t<T> to_compute(T v) { return v; }
template <> __device__ __forceinline__ float to_compute<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_compute<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <typename T, typename C> __device__ __forceinline__ T from_compute(C v) {
  return static_cast<T>(v);
}
template <> __device__ __forceinline__ __half from_compute<__half, float>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_compute<__nv_bfloat16, float>(float v) {
  return __float2bfloat16_rn(v);
}

template <typename T> constexpr bool is_float_v =
    std::is_floating_point_v<T> || std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

/// Calls f(T{}) with T the device type of `dt` when dt is one of the listed types;
/// returns NoGpuKernel otherwise. Usage:
///   return dispatch<DataType::kF32, DataType::kF16, DataType::kBF16>(dt, cfg, [&](auto t) {
///     using T = decltype(t); ... return Status::ok(); });
template <DataType... Ds, typename F>
Status dispatch(DataType dt, const KernelConfig& cfg, F&& f) {
  Status result = cfg.unsupported(std::string("dtype ") + dtype_name(dt));
  bool done = false;
  ((!done && dt == Ds ? (done = true, (void)(result = f(typename DeviceType<Ds>::type{})), 0) : 0), ...);
  return result;
}
/// Same, for code that runs at enqueue time (no KernelConfig at hand).
template <DataType... Ds, typename F>
Status dispatch_launch(DataType dt, F&& f) {
  Status result(ErrorCode::kInternal, std::string("kernel not instantiated for dtype ") + dtype_name(dt));
  bool done = false;
  ((!done && dt == Ds ? (done = true, (void)(result = f(typename DeviceType<Ds>::type{})), 0) : 0), ...);
  return result;
}

#define KILN_FLOAT_TYPES ::kiln::DataType::kF32, ::kiln::DataType::kF16, ::kiln::DataType::kBF16, \
                         ::kiln::DataType::kF64
#define KILN_INT_TYPES ::kiln::DataType::kI8, ::kiln::DataType::kU8, ::kiln::DataType::kI16,       \
                       ::kiln::DataType::kU16, ::kiln::DataType::kI32, ::kiln::DataType::kU32,     \
                       ::kiln::DataType::kI64, ::kiln::DataType::kU64
#define KILN_ALL_TYPES KILN_FLOAT_TYPES, KILN_INT_TYPES, ::kiln::DataType::kBool

// ---- launch geometry -------------------------------------------------------------------
constexpr int kBlock = 256;
/// Blocks for a grid-stride loop over n items: enough to fill the GPU, capped.
inline unsigned grid_for(int64_t n, int block = kBlock) {
  int64_t b = (n + block - 1) / block;
  if (b < 1) b = 1;
  if (b > 65535LL * 8) b = 65535LL * 8;
  return static_cast<unsigned>(b);
}

#define KILN_GRID_STRIDE_LOOP(i, n)                                                   \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// ---- strided indexing ----------------------------------------------------------------
/// Maps a linear index over `dims` (row-major) to an element offset with arbitrary
/// per-dim strides (0 = broadcast). Passed to kernels by value.
struct StridedIndex {
  int rank = 0;
  int64_t dims[kMaxRank];
  int64_t strides[kMaxRank];
  __device__ __forceinline__ int64_t offset(int64_t linear) const {
    int64_t off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t q = linear / dims[d];
      off += (linear - q * dims[d]) * strides[d];
      linear = q;
    }
    return off;
  }
};

/// Row-major strides of `dims`.
std::vector<int64_t> row_major_strides(const std::vector<int64_t>& dims);
/// StridedIndex reading a tensor of `in_dims` broadcast (numpy rules, right-aligned) to
/// `out_dims`. Requires out rank <= kMaxRank (caller checks).
StridedIndex broadcast_index(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& out_dims);
/// StridedIndex over dims with the given element strides.
StridedIndex make_index(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides);

}  // namespace kiln::cuda
