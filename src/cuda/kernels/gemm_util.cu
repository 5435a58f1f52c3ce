// Small kernels around the cuBLASLt GEMMs of cublaslt_gemm.cc: the integer product (which
// cuBLASLt does not offer with ONNX's wrap-around semantics), Gemm's beta·C broadcast
// into the output, and the bias/activation epilogue for what cuBLASLt cannot fuse.
#include <type_traits>

#include "cuda/cublaslt_gemm.h"
#include "cuda/kernels/common.cuh"

namespace kiln::cuda {
namespace {

// ---- integer product ----------------------------------------------------------------------

// Classic shared-memory tiling (one output element per thread, kIntGemmTile² threads):
// correct for every stride pattern and type, not tuned; integer GEMMs are rare in the models
// kiln targets. Products accumulate in the unsigned type `Acc`, so overflow wraps exactly as
// the CPU reference's two's-complement arithmetic (and is never signed-overflow UB).
template <typename TA, typename TB, typename TY, typename Acc>
__global__ void int_gemm_kernel(IntGemmParams p, const TA* __restrict__ a, const TB* __restrict__ b,
                                const TA* __restrict__ za, const TB* __restrict__ zb,
                                const TY* __restrict__ c, TY* __restrict__ y) {
  constexpr int kT = static_cast<int>(kIntGemmTile);
  __shared__ Acc sa[kT][kT + 1];
  __shared__ Acc sb[kT][kT + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t row = blockIdx.y * kIntGemmTile + ty;
  const int64_t col = blockIdx.x * kIntGemmTile + tx;
  const int64_t a_mat = p.m * p.k, b_mat = p.k * p.n;
  for (int64_t t = blockIdx.z; t < p.batch; t += gridDim.z) {
    const int64_t a_off = p.a_batch.offset(t), b_off = p.b_batch.offset(t);
    const int64_t za_off = za && a_mat > 0 ? a_off / a_mat * p.za_mat : 0;
    const int64_t zb_off = zb && b_mat > 0 ? b_off / b_mat * p.zb_mat : 0;
    Acc acc = 0;
    for (int64_t k0 = 0; k0 < p.k; k0 += kIntGemmTile) {
      const int64_t ka = k0 + tx, kb = k0 + ty;
      Acc va = 0, vb = 0;
      if (row < p.m && ka < p.k) {
        int64_t v = static_cast<int64_t>(a[a_off + row * p.a_rs + ka * p.a_cs]);
        if (za) v -= static_cast<int64_t>(za[za_off + row * p.za_vec]);
        va = static_cast<Acc>(v);
      }
      if (kb < p.k && col < p.n) {
        int64_t v = static_cast<int64_t>(b[b_off + kb * p.b_rs + col * p.b_cs]);
        if (zb) v -= static_cast<int64_t>(zb[zb_off + col * p.zb_vec]);
        vb = static_cast<Acc>(v);
      }
      sa[ty][tx] = va;
      sb[ty][tx] = vb;
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < kT; ++kk) acc += sa[ty][kk] * sb[kk][tx];
      __syncthreads();
    }
    if (row < p.m && col < p.n) {
      TY out = static_cast<TY>(acc);
      if (p.affine) {
        double v = p.alpha * static_cast<double>(out);
        if (c) v += p.beta * static_cast<double>(c[row * p.c_rs + col * p.c_cs]);
        out = static_cast<TY>(v);
      }
      y[p.y_batch.offset(t) + row * p.y_rs + col * p.y_cs] = out;
    }
  }
}

template <typename TA, typename TB, typename TY, typename Acc>
Status launch_int(const IntGemmParams& p, const IntGemmPointers& ptr, cudaStream_t stream) {
  if (p.m == 0 || p.n == 0 || p.batch == 0) return Status::ok();
  const dim3 block(kIntGemmTile, kIntGemmTile);
  const dim3 grid(static_cast<unsigned>((p.n + kIntGemmTile - 1) / kIntGemmTile),
                  static_cast<unsigned>((p.m + kIntGemmTile - 1) / kIntGemmTile),
                  static_cast<unsigned>(p.batch < 65535 ? p.batch : 65535));
  int_gemm_kernel<TA, TB, TY, Acc>
      <<<grid, block, 0, stream>>>(p, static_cast<const TA*>(ptr.a), static_cast<const TB*>(ptr.b),
                                   static_cast<const TA*>(ptr.za), static_cast<const TB*>(ptr.zb),
                                   static_cast<const TY*>(ptr.c), static_cast<TY*>(ptr.y));
  KILN_CUDA_CHECK_LAUNCH("int_gemm_kernel");
  return Status::ok();
}

// ---- beta · C broadcast ---------------------------------------------------------------------

template <typename T>
__global__ void scale_broadcast_kernel(compute_t<T> beta, const T* __restrict__ c,
                                       StridedIndex c_index, int64_t count, T* __restrict__ y) {
  KILN_GRID_STRIDE_LOOP(i, count) {
    y[i] = from_compute<T>(beta * to_compute(c[c_index.offset(i)]));
  }
}

// ---- bias + activation ----------------------------------------------------------------------

template <typename C>
__device__ __forceinline__ C activate(GemmActivation act, C x) {
  switch (act) {
    case GemmActivation::kRelu:
      return x < C(0) ? C(0) : x;
    case GemmActivation::kGeluErf:
      return C(0.5) * x * (C(1) + erf(x * C(0.7071067811865476)));
    case GemmActivation::kGeluTanh: {
      const C k = C(0.7978845608028654);  // sqrt(2 / pi)
      return C(0.5) * x * (C(1) + tanh(k * (x + C(0.044715) * x * x * x)));
    }
    case GemmActivation::kNone:
      break;
  }
  return x;
}

/// V consecutive elements moved as one (up to 16-byte) memory access.
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// Each thread handles V consecutive elements; the launcher picks V > 1 only when count and n
// are multiples of V and both pointers are aligned to the pack, so a pack never straddles a
// row of the bias.
template <typename T, int V>
__global__ void bias_activation_kernel(GemmActivation act, const T* __restrict__ bias, int64_t n,
                                       int64_t packs, T* __restrict__ y) {
  using P = Pack<T, V>;
  KILN_GRID_STRIDE_LOOP(i, packs) {
    P p = reinterpret_cast<P*>(y)[i];
    const int64_t col = (i * V) % n;
    P bp{};
    if (bias) bp = *reinterpret_cast<const P*>(bias + col);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      compute_t<T> x = to_compute(p.v[j]);
      if (bias) x += to_compute(bp.v[j]);
      p.v[j] = from_compute<T>(activate(act, x));
    }
    reinterpret_cast<P*>(y)[i] = p;
  }
}

template <typename T, int V>
Status launch_bias_activation_v(GemmActivation act, const T* bias, int64_t n, int64_t count, T* y,
                                cudaStream_t stream) {
  const int64_t packs = count / V;
  bias_activation_kernel<T, V><<<grid_for(packs), kBlock, 0, stream>>>(act, bias, n, packs, y);
  KILN_CUDA_CHECK_LAUNCH("bias_activation_kernel");
  return Status::ok();
}

bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace

Status launch_int_matmul(DataType dt, const IntGemmParams& p, const IntGemmPointers& ptr,
                         cudaStream_t stream) {
  return dispatch_launch<KILN_INT_TYPES>(dt, [&](auto t) {
    using T = decltype(t);
    using Acc = std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t>;
    return launch_int<T, T, T, Acc>(p, ptr, stream);
  });
}

Status launch_matmul_integer(DataType a_dt, DataType b_dt, const IntGemmParams& p,
                             const IntGemmPointers& ptr, cudaStream_t stream) {
  return dispatch_launch<DataType::kI8, DataType::kU8>(a_dt, [&](auto ta) {
    return dispatch_launch<DataType::kI8, DataType::kU8>(b_dt, [&](auto tb) {
      return launch_int<decltype(ta), decltype(tb), int32_t, uint32_t>(p, ptr, stream);
    });
  });
}

Status launch_scale_broadcast(DataType dt, double beta, const void* c, const StridedIndex& c_index,
                              int64_t count, void* y, cudaStream_t stream) {
  if (count == 0) return Status::ok();
  return dispatch_launch<KILN_FLOAT_TYPES>(dt, [&](auto t) {
    using T = decltype(t);
    scale_broadcast_kernel<T><<<grid_for(count), kBlock, 0, stream>>>(
        static_cast<compute_t<T>>(beta), static_cast<const T*>(c), c_index, count,
        static_cast<T*>(y));
    KILN_CUDA_CHECK_LAUNCH("scale_broadcast_kernel");
    return Status::ok();
  });
}

Status launch_bias_activation(DataType dt, GemmActivation act, const void* bias, int64_t n,
                              int64_t count, void* y, cudaStream_t stream) {
  if (count == 0 || (act == GemmActivation::kNone && !bias)) return Status::ok();
  return dispatch_launch<KILN_FLOAT_TYPES>(dt, [&](auto t) {
    using T = decltype(t);
    constexpr int kV = static_cast<int>(16 / sizeof(T));
    const T* b = static_cast<const T*>(bias);
    T* out = static_cast<T*>(y);
    const bool vec =
        count % kV == 0 && n % kV == 0 && aligned_to(y, 16) && (!bias || aligned_to(bias, 16));
    return vec ? launch_bias_activation_v<T, kV>(act, b, n, count, out, stream)
               : launch_bias_activation_v<T, 1>(act, b, n, count, out, stream);
  });
}

}  // namespace kiln::cuda
