// Reduced-precision lowering of a CUDA build (BuilderConfig::precision = kFp16 / kBf16).
#pragma once

#include "ir/graph.h"
#include "kiln/status.h"
#include "kiln/types.h"

namespace kiln::builder {

/// Stores float32 tensors in `to` (kF16 or kBF16) wherever they flow between ops that
/// have 16-bit kernels, and inserts Cast nodes at every boundary with the rest of the
/// graph. Float32 constants read by 16-bit ops are converted once, at build time.
///
/// Which ops run in 16 bits follows TensorRT's and PyTorch autocast's practice: GEMMs,
/// convolutions, pointwise activations, pooling, data movement, Softmax and normalisation
/// (their kernels accumulate in FP32) do; ops whose results overflow or lose accuracy in
/// FP16 stay FP32: Exp, Log, Pow, ReduceSum/Prod/L1/L2/LogSum/LogSumExp/SumSquare,
/// CumSum, and everything not listed (see kLowPrecisionOps in precision.cc). Engine inputs
/// and outputs keep their types; a graph output produced in 16 bits gets a Cast back. An
/// upsampling op (Resize, Upsample, Tile, Expand, DepthToSpace) that writes a graph output
/// larger than its input stays f32, so that the Cast back converts its input instead.
/// Needs resolved schemas; re-runs shape inference. Errors: from shape inference.
Status lower_precision(ir::Graph& g, DataType to);

}  // namespace kiln::builder
