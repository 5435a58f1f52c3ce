// The broadcasting arithmetic ops Add, Sub, Mul and Div, and the factory of a binary
// pointwise op: shared by binary_arith.cu (those four on float types, which every model
// that keeps a pointwise op after fusion runs) and binary.cu (everything else, the four on
// integer types included). They are two CUDA modules because a module's first use costs
// load time in proportion to its size.
#pragma once

#include "cuda/kernels/pointwise.cuh"

namespace kiln::cuda {

// Integer arithmetic goes through wrap_t so overflow wraps instead of being UB.
#define KILN_ARITH_OP(NAME, OP)                                                          \
  struct NAME {                                                                         \
    template <typename C> __device__ C operator()(C x, C y) const {                     \
      if constexpr (std::is_integral_v<C>)                                              \
        return static_cast<C>(static_cast<wrap_t<C>>(x) OP static_cast<wrap_t<C>>(y)); \
      else return x OP y;                                                               \
    }                                                                                   \
  };
KILN_ARITH_OP(AddOp, +) KILN_ARITH_OP(SubOp, -) KILN_ARITH_OP(MulOp, *)
#undef KILN_ARITH_OP

struct DivOp {
  template <typename C> __device__ C operator()(C x, C y) const {
    if constexpr (std::is_integral_v<C>) {
      if (y == 0) return C(0);  // undefined in ONNX; no trap
      if constexpr (std::is_signed_v<C>)
        if (y == C(-1)) return static_cast<C>(-static_cast<std::make_unsigned_t<C>>(x));
      return static_cast<C>(x / y);
    } else {
      return x / y;
    }
  }
};

/// Two operands of one type in Set; output of that type, or bool when kBoolOut.
template <typename Op, uint32_t Set, bool kBoolOut = false>
KernelResult create_binary(const KernelConfig& cfg) {
  const Op op = make_op<Op>(cfg.node);
  if (cfg.in(1).dtype != cfg.in(0).dtype)
    return cfg.error(ErrorCode::kTypeMismatch, "operands must have the same dtype");
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> b_dims, legacy_rhs_dims(cfg));
  return dispatch_set<Set>(cfg.in(0).dtype, cfg, [&](auto t) {
    using T = decltype(t);
    return make_pointwise<kPathAll, std::conditional_t<kBoolOut, bool, T>, T, T>(
        cfg, op, {0, 1}, "binary", {cfg.in(0).dims, b_dims});
  });
}

/// Add, Sub, Mul or Div (cfg.node.op_type) on integer operands (binary.cu). Errors: as
/// create_binary; Internal for another op.
KernelResult create_int_arith(const KernelConfig& cfg);

}  // namespace kiln::cuda
