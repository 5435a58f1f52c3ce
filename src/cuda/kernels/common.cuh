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
/// per-dim strides (0 = broadcast). I = int64_t for walks of any size, or a 32-bit type
/// where the caller knows every offset fits. Passed to kernels by value.
template <typename I>
struct StridedIndexT {
  int rank = 0;
  I dims[kMaxRank];
  I strides[kMaxRank];
  __device__ __forceinline__ I offset(I linear) const {
    I off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const I q = linear / dims[d];
      off += (linear - q * dims[d]) * strides[d];
      linear = q;
    }
    return off;
  }
};
using StridedIndex = StridedIndexT<int64_t>;

/// n / d for a fixed divisor and n < 2^31 by a multiply-high and a shift (Granlund and
/// Montgomery; PyTorch's IntDivider): index decoding divides by every dim per element, and
/// 64-bit division is a long instruction sequence on the GPU.
struct FastDiv {
  uint32_t d = 1, m = 0, s = 0;
  FastDiv() = default;
  /// divisor 0 (a zero-size dim: nothing is ever divided) is taken as 1.
  explicit FastDiv(uint32_t divisor) : d(divisor ? divisor : 1) {
    while (s < 32 && (uint64_t{1} << s) < d) ++s;
    m = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << s) - d)) / d + 1);
  }
#ifdef __CUDACC__
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, m) + n) >> s; }
#endif
};

/// Strided walk over fewer than 2^31 elements with FastDiv decoding (offsets stay 64-bit).
struct FastStrided {
  int rank = 0;
  FastDiv div[kMaxRank];
  int64_t strides[kMaxRank];
#ifdef __CUDACC__
  __device__ __forceinline__ int64_t offset(uint32_t linear) const {
    int64_t off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const uint32_t q = div[d].div(linear);
      off += static_cast<int64_t>(linear - q * div[d].d) * strides[d];
      linear = q;
    }
    return off;
  }
#endif
};

/// FastStrided over `dims` (each > 0, product < 2^31) reading with element `strides`.
inline FastStrided make_fast_strided(const std::vector<int64_t>& dims,
                                     const std::vector<int64_t>& strides) {
  FastStrided s;
  s.rank = static_cast<int>(dims.size());
  for (int d = 0; d < s.rank && d < kMaxRank; ++d) {
    s.div[d] = FastDiv(static_cast<uint32_t>(dims[d]));
    s.strides[d] = strides[d];
  }
  return s;
}

/// Element counts below this use FastDiv / FastStrided.
constexpr int64_t kFastIndexLimit = int64_t{1} << 31;

// ---- layouts -------------------------------------------------------------------------

/// Logical axes of `o` in memory order, outermost first: identity for row-major,
/// [0, 2, ..., r-1, 1] for kNhwc.
inline std::vector<int> memory_order(const Operand& o) {
  const int r = static_cast<int>(o.rank());
  std::vector<int> order;
  if (o.layout == Layout::kNhwc && r >= 3) {
    order.push_back(0);
    for (int d = 2; d < r; ++d) order.push_back(d);
    order.push_back(1);
  } else {
    for (int d = 0; d < r; ++d) order.push_back(d);
  }
  return order;
}

/// Memory stride, in elements, of each logical axis of `o`.
inline std::vector<int64_t> logical_strides(const Operand& o) {
  const std::vector<int> order = memory_order(o);
  std::vector<int64_t> st(o.rank(), 1);
  int64_t s = 1;
  for (int k = static_cast<int>(order.size()) - 1; k >= 0; --k) {
    st[order[k]] = s;
    s *= o.dims[order[k]];
  }
  return st;
}

/// Row-major strides of `dims`.
std::vector<int64_t> row_major_strides(const std::vector<int64_t>& dims);
/// StridedIndex reading a tensor of `in_dims` broadcast (numpy rules, right-aligned) to
/// `out_dims`. Requires out rank <= kMaxRank (caller checks).
StridedIndex broadcast_index(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& out_dims);
/// StridedIndex over dims with the given element strides.
StridedIndex make_index(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides);

}  // namespace kiln::cuda
