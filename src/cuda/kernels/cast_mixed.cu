// GPU Cast / CastLike where the source or the target is an integer or bool type (every pair
// of kiln's device types but float -> float, which cast.cu has): one flat pointwise kernel
// per pair, with ops::convert's rules (CastTo in cast.cuh).
#include "cuda/kernels/cast.cuh"

namespace kiln::cuda {

KernelResult create_cast_mixed(const KernelConfig& cfg) {
  return dispatch_set<kPwAll>(cfg.in(0).dtype, cfg, [&](auto s) {
    using S = decltype(s);
    // float -> float is cast.cu's: not instantiated here.
    constexpr uint32_t kTo = std::is_floating_point_v<compute_t<S>> ? (kPwInt | kPwBool) : kPwAll;
    return dispatch_set<kTo>(cfg.out(0).dtype, cfg, [&](auto d) {
      using D = decltype(d);
      return make_pointwise<kPathVector, D, S>(cfg, CastTo<D>{}, {0}, "cast");
    });
  });
}

}  // namespace kiln::cuda
