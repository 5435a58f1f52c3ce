// CUDA kernels for global pooling (ONNX Operators.md: GlobalAveragePool, GlobalMaxPool,
// GlobalLpPool; CPU reference src/ops/pool.cc) through the reduction engine of reduce.cuh,
// over NCHW or NHWC inputs. f16/bf16/f32 accumulate in float, f64 in double.
#include "cuda/kernels/reduce_ops.cuh"

namespace kiln::cuda {
namespace {

// ---- Global pooling ----------------------------------------------------------------------

enum class PoolKind { kAverage, kMax, kLp };

/// Physical dims and mask of a global pool over an [N, C, spatial...] tensor: spatial
/// dims reduced; channels-last memory is [N, spatial..., C].
template <PoolKind K>
Result<std::unique_ptr<Kernel>> create_global_pool(const KernelConfig& cfg) {
  const Operand& x = cfg.in(0);
  if (x.rank() < 2)
    return cfg.error(ErrorCode::kShapeMismatch,
                     "input of rank " + std::to_string(x.rank()) + " must have rank >= 2",
                     "pooling input is [N, C, D1, ..., Dn]");
  std::vector<int64_t> dims = x.dims;
  std::vector<bool> mask(x.rank(), true);
  mask[0] = mask[1] = false;
  if (x.layout == Layout::kNhwc) {
    dims.erase(dims.begin() + 1);
    dims.push_back(x.dims[1]);
    mask.erase(mask.begin() + 1);
    mask.push_back(false);
  }
  int64_t spatial = 1;
  for (size_t d = 2; d < x.rank(); ++d) spatial *= x.dims[d];
  if constexpr (K == PoolKind::kMax) {
    return make_typed<KILN_FLOAT_TYPES, KILN_INT_TYPES>(x.dtype, cfg, [&](auto t) {
      return make_reduce_kernel(cfg, Reduce<decltype(t), ReduceKind::kMax>{}, dims, mask);
    });
  } else if constexpr (K == PoolKind::kAverage) {
    return make_typed<KILN_FLOAT_TYPES>(x.dtype, cfg, [&](auto t) {
      Reduce<decltype(t), ReduceKind::kMean> rd;
      rd.count = spatial ? spatial : 1;  // an empty map averages to 0, as on the CPU
      return make_reduce_kernel(cfg, rd, dims, mask);
    });
  } else {
    const int64_t p = cfg.node.attr_i("p", 2);
    if (p < 1)
      return cfg.error(ErrorCode::kOnnxBadAttribute, "p must be >= 1, got " + std::to_string(p),
                       "LpPool computes (sum |x|^p)^(1/p) with a positive integer p");
    return make_typed<KILN_FLOAT_TYPES>(x.dtype, cfg, [&](auto t) {
      LpPoolReduce<decltype(t)> rd;
      rd.p = static_cast<typename LpPoolReduce<decltype(t)>::F>(p);
      return make_reduce_kernel(cfg, rd, dims, mask);
    });
  }
}

}  // namespace

KILN_REGISTER_CUDA_KERNELS(global_pool) {
  // The global pools read Operand::layout (NCHW or NHWC).
  reg.add({.op_type = "GlobalAveragePool", .create = create_global_pool<PoolKind::kAverage>, .nhwc = true});
  reg.add({.op_type = "GlobalMaxPool", .create = create_global_pool<PoolKind::kMax>, .nhwc = true});
  reg.add({.op_type = "GlobalLpPool", .create = create_global_pool<PoolKind::kLp>, .nhwc = true});
}

}  // namespace kiln::cuda
