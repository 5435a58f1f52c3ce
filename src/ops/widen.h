// Running float kernels written for f32/f64 on f16/bf16 tensors: the narrow inputs are
// widened to f32, the kernel runs, and the f32 result is rounded once into output 0.
// Accumulating in f32 and rounding once is more accurate than narrow accumulation and is
// how the ONNX backend tests compute their bf16/f16 references (promote, compute, round).
#pragma once

#include <vector>

#include "ops/helpers.h"

namespace kiln::ops {

/// Calls body(T{}, inputs, out) with T = float or double; `inputs[i]` is null for omitted
/// inputs. For f16/bf16 `dt`, every input of dtype `dt` is passed as an f32 copy and
/// `out` is an f32 tensor shaped like output 0 that is narrowed into output 0 afterwards.
/// Other dtypes: unsupported_dtype. Output 0 must have an inferred (concrete) shape.
template <typename Body>
Status compute_in_float(KernelContext& ctx, DataType dt, Body&& body) {
  std::vector<const HostTensor*> in(ctx.num_inputs(), nullptr);
  for (size_t i = 0; i < in.size(); ++i)
    if (ctx.has_input(i)) in[i] = &ctx.input(i);
  switch (dt) {
    case DataType::kF32:
      return body(float{}, in, ctx.output(0));
    case DataType::kF64:
      return body(double{}, in, ctx.output(0));
    case DataType::kF16:
    case DataType::kBF16: {
      std::vector<HostTensor> wide(in.size());
      for (size_t i = 0; i < in.size(); ++i) {
        if (!in[i] || in[i]->dtype() != dt) continue;
        wide[i] = in[i]->cast(DataType::kF32);
        in[i] = &wide[i];
      }
      HostTensor out32(DataType::kF32, ctx.output(0).dims());
      KILN_RETURN_IF_ERROR(body(float{}, in, out32));
      ctx.set_output(0, out32.cast(dt));
      return Status::ok();
    }
    default:
      return unsupported_dtype(dt);
  }
}

}  // namespace kiln::ops
