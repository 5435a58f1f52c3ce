// The broadcasting arithmetic ops Add, Sub, Mul and Div, and the factory of a binary
// pointwise op: shared by binary_arith.cu (those four on float types, which every model
// that keeps a pointwise op after fusion runs) and binary.cu (everything else, the four on
// integer types included). They are two CUDA modules because a module's first use costs
// load time in proportion to its size.
#pragma once

#include "cuda/kernels/pointwise.cuh"
#include "ops/arith.h"

namespace kiln::cuda {

// The arithmetic itself is the CPU reference's (ops/arith.h).
using ops::wrap_t;
using ops::AddOp;
using ops::DivOp;
using ops::MulOp;
using ops::SubOp;

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
