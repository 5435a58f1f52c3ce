// The arithmetic of Add, Sub, Mul and Div (ONNX Operators.md), one definition for the CPU
// reference (ops/binary_arith.cc) and the CUDA kernels (cuda/kernels/binary.cuh); compiles
// under nvcc. C is the compute type (f32 for the 16-bit floats).
#pragma once

#include <type_traits>

#include "ops/host_device.h"

namespace kiln::ops {

/// For integral C: an unsigned type at least as wide as int, in which +, -, * wrap modulo 2^n
/// (numpy's integer overflow behaviour) without C++ undefined behaviour; convert the result
/// back with static_cast<C>.
template <typename C>
using wrap_t =
    std::conditional_t<(sizeof(C) < sizeof(unsigned)), unsigned, std::make_unsigned_t<C>>;

// Integer arithmetic goes through wrap_t so overflow wraps instead of being UB.
#define KILN_ARITH_OP(NAME, OP)                                                          \
  struct NAME {                                                                         \
    template <typename C> KILN_HOST_DEVICE C operator()(C x, C y) const {               \
      if constexpr (std::is_integral_v<C>)                                              \
        return static_cast<C>(static_cast<wrap_t<C>>(x) OP static_cast<wrap_t<C>>(y)); \
      else return x OP y;                                                               \
    }                                                                                   \
  };
KILN_ARITH_OP(AddOp, +) KILN_ARITH_OP(SubOp, -) KILN_ARITH_OP(MulOp, *)
#undef KILN_ARITH_OP

struct DivOp {
  template <typename C> KILN_HOST_DEVICE C operator()(C x, C y) const {
    if constexpr (std::is_integral_v<C>) {
      // Integer division by zero is undefined in ONNX; return 0 instead of trapping, and
      // INT_MIN / -1 (which traps on x86) wraps like numpy.
      if (y == 0) return C(0);
      if constexpr (std::is_signed_v<C>)
        if (y == C(-1)) return static_cast<C>(-static_cast<std::make_unsigned_t<C>>(x));
      return static_cast<C>(x / y);
    } else {
      return x / y;
    }
  }
};

}  // namespace kiln::ops
