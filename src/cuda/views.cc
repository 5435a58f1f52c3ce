// View ops on the CUDA backend (ONNX Operators.md: Reshape, Flatten, Squeeze, Unsqueeze,
// Identity). Their output is input 0's bytes under new dims, so they have no kernel: the
// memory planner makes output 0 share input 0's memory (alias_input0) and nothing runs.
// Inference Dropout is a view too, but it may also write a mask; it is registered with a
// kernel in kernels/data_movement.cu.
#include "cuda/kernel.h"

namespace kiln::cuda {

KILN_REGISTER_CUDA_KERNELS(views) {
  for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})
    reg.add({.op_type = op, .create = nullptr, .alias_input0 = true});
}

}  // namespace kiln::cuda
