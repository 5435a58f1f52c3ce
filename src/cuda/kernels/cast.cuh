// Cast and CastLike (ONNX Operators.md; the CPU reference is src/ops/cast.cc), split over
// two CUDA modules so that a model's first cast loads little code: cast.cu holds the
// conversions between float types (every FP16/BF16 engine casts its inputs and outputs,
// often fused with the NCHW <-> NHWC reformat), cast_mixed.cu those that involve an integer
// or bool type. A module's first use costs load time in proportion to its size (about
// 2 ms per MB of SASS on an H200), so the common casts stay out of the module of the 128
// pairs with an integer or bool type.
#pragma once

#include "cuda/kernels/pointwise.cuh"

namespace kiln::cuda {

/// Converts a source compute value to D's compute type with ops::convert's rules: → bool is
/// x != 0 (NaN → true); float → integer truncates (float_to_int); integer → integer wraps;
/// → narrow float goes through f32 (f64 → f16 rounds twice, as on the CPU).
template <typename D>
struct CastTo {
  template <typename CS> __device__ compute_t<D> operator()(CS v) const {
    if constexpr (std::is_same_v<D, bool>) {
      return v != CS(0);
    } else if constexpr (std::is_integral_v<D>) {
      if constexpr (std::is_floating_point_v<CS>) return float_to_int<D>(static_cast<double>(v));
      else return static_cast<D>(v);
    } else {
      return static_cast<compute_t<D>>(v);
    }
  }
};

/// Cast (target from attribute `to`) or CastLike (target = input 1's dtype) where the
/// source or the target is an integer or bool type, same layout in and out (cast_mixed.cu).
/// Errors: as make_pointwise.
KernelResult create_cast_mixed(const KernelConfig& cfg);

}  // namespace kiln::cuda
