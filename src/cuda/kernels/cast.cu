// GPU Cast / CastLike between float types (f32, f16, bf16, f64), with the NCHW <-> NHWC
// reformat the layout pass fuses into a graph input's or output's cast; casts that involve
// an integer or bool type are in cast_mixed.cu (see cast.cuh for why they are apart).
#include "cuda/kernels/cast.cuh"

namespace kiln::cuda {
namespace {

/// A Cast between equal dtypes: a device-to-device copy (the CPU kernel aliases instead).
class CopyKernel final : public Kernel {
 public:
  explicit CopyKernel(size_t bytes) : bytes_(bytes) {}
  std::string tactic() const override { return "kiln:copy"; }
  Status enqueue(const LaunchArgs& a) override {
    if (bytes_ == 0) return Status::ok();
    KILN_CUDA_CHECK(cudaMemcpyAsync(a.outputs[0], a.inputs[0], bytes_, cudaMemcpyDeviceToDevice,
                                    a.stream));
    return Status::ok();
  }

 private:
  size_t bytes_;
};

/// Batched transpose [batch, rows, cols] → [batch, cols, rows] with conversion S → D,
/// through 32x32 shared-memory tiles so that both the reads and the writes coalesce (the
/// classic tiled transpose; the +1 column avoids shared-memory bank conflicts).
/// Block (32, 8); grid (ceil(cols / 32), ceil(rows / 32), batch).
template <typename D, typename S>
__global__ void __launch_bounds__(256)
    transpose_cast_kernel(const S* __restrict__ x, D* __restrict__ y, int64_t rows, int64_t cols) {
  __shared__ D tile[32][33];
  const int64_t plane = rows * cols;
  x += static_cast<int64_t>(blockIdx.z) * plane;
  y += static_cast<int64_t>(blockIdx.z) * plane;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * 32, c0 = static_cast<int64_t>(blockIdx.x) * 32;
  for (int i = threadIdx.y; i < 32; i += 8) {
    const int64_t r = r0 + i, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[i][threadIdx.x] = from_compute<D>(CastTo<D>{}(to_compute(x[r * cols + c])));
  }
  __syncthreads();
  for (int i = threadIdx.y; i < 32; i += 8) {
    const int64_t c = c0 + i, r = r0 + threadIdx.x;
    if (r < rows && c < cols) y[c * rows + r] = tile[threadIdx.x][i];
  }
}

/// A float Cast that also converts a 4-D tensor between NCHW and NHWC: per image, the
/// [C, HW] ↔ [HW, C] transpose (transpose_cast_kernel).
template <typename D, typename S>
class TransposeCastKernel final : public Kernel {
 public:
  TransposeCastKernel(int64_t batch, int64_t rows, int64_t cols) : batch_(batch), rows_(rows), cols_(cols) {}
  std::string tactic() const override { return "kiln:cast_transpose_tiled"; }
  Status enqueue(const LaunchArgs& a) override {
    if (batch_ * rows_ * cols_ == 0) return Status::ok();
    const dim3 grid(static_cast<unsigned>((cols_ + 31) / 32), static_cast<unsigned>((rows_ + 31) / 32),
                    static_cast<unsigned>(batch_));
    transpose_cast_kernel<D, S><<<grid, dim3(32, 8), 0, a.stream>>>(a.in<S>(0), a.out<D>(0), rows_, cols_);
    KILN_CUDA_CHECK_LAUNCH("transpose_cast_kernel");
    return Status::ok();
  }

 private:
  int64_t batch_, rows_, cols_;
};

/// Cast (target from attribute `to`) and CastLike (target = input 1's dtype): both have the
/// target as output 0's dtype. f8e4m3 (no device type here) → NoGpuKernel.
KernelResult create_cast(const KernelConfig& cfg) {
  const DataType from = cfg.in(0).dtype, to = cfg.out(0).dtype;
  const Operand& in = cfg.in(0);
  if (in.layout != cfg.out(0).layout && in.rank() == 4 && in.dims[0] <= 65535 &&
      (in.dims[2] * in.dims[3] + 31) / 32 <= 65535 && (in.dims[1] + 31) / 32 <= 65535) {
    // NCHW → NHWC reads [C, HW] rows and writes [HW, C]; NHWC → NCHW the other way round.
    const int64_t c = in.dims[1], hw = in.dims[2] * in.dims[3];
    const bool to_nhwc = cfg.out(0).layout == Layout::kNhwc;
    return dispatch_set<kPwFloat>(from, cfg, [&](auto s) {
      using S = decltype(s);
      return dispatch_set<kPwFloat>(to, cfg, [&](auto d) -> KernelResult {
        using D = decltype(d);
        return std::unique_ptr<Kernel>(
            std::make_unique<TransposeCastKernel<D, S>>(in.dims[0], to_nhwc ? c : hw, to_nhwc ? hw : c));
      });
    });
  }
  if (cfg.in(0).layout != cfg.out(0).layout) {
    // A layout reformat fused into the cast (the layout pass puts the graph-input cast in
    // front of an NHWC convolution): float types only, through the strided kernel.
    return dispatch_set<kPwFloat>(from, cfg, [&](auto s) {
      using S = decltype(s);
      return dispatch_set<kPwFloat>(to, cfg, [&](auto d) {
        using D = decltype(d);
        return make_pointwise<kPathBroadcast, D, S>(cfg, CastTo<D>{}, {0}, "cast_relayout");
      });
    });
  }
  if (from == to)
    return std::unique_ptr<Kernel>(std::make_unique<CopyKernel>(cfg.out(0).bytes()));
  if (pw_type_bit(from) != kPwFloat || pw_type_bit(to) != kPwFloat) return create_cast_mixed(cfg);
  return dispatch_set<kPwFloat>(from, cfg, [&](auto s) {
    using S = decltype(s);
    return dispatch_set<kPwFloat>(to, cfg, [&](auto d) {
      using D = decltype(d);
      return make_pointwise<kPathVector, D, S>(cfg, CastTo<D>{}, {0}, "cast");
    });
  });
}

}  // namespace

KILN_REGISTER_CUDA_KERNELS(cast) {
  reg.add({.op_type = "Cast", .create = create_cast, .nhwc = true});
  reg.add({.op_type = "CastLike", .create = create_cast, .nhwc = true});
}

}  // namespace kiln::cuda
