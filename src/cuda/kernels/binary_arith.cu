// GPU kernels of Add, Sub, Mul and Div on float types (f32, f16, bf16, f64), with
// broadcasting (ONNX Broadcasting.md) and the legacy broadcast/axis attributes of opset < 7.
// Integer operands go to binary.cu (create_int_arith); see binary.cuh for why they are apart.
#include "cuda/kernels/binary.cuh"

namespace kiln::cuda {
namespace {

template <typename Op>
KernelResult create_arith(const KernelConfig& cfg) {
  if (pw_type_bit(cfg.in(0).dtype) != kPwFloat) return create_int_arith(cfg);
  return create_binary<Op, kPwFloat>(cfg);
}

}  // namespace

KILN_REGISTER_CUDA_KERNELS(binary_arith) {
  reg.add({.op_type = "Add", .create = create_arith<AddOp>, .nhwc = true});
  reg.add({.op_type = "Sub", .create = create_arith<SubOp>, .nhwc = true});
  reg.add({.op_type = "Mul", .create = create_arith<MulOp>, .nhwc = true});
  reg.add({.op_type = "Div", .create = create_arith<DivOp>, .nhwc = true});
}

}  // namespace kiln::cuda
