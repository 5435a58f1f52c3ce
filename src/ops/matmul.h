// MatMul pieces shared with kiln's fused matrix ops (FusedMatMul in fused_matmul.cc): the
// numpy.matmul shape inference and the dense float product (ONNX Operators.md, MatMul).
#pragma once

#include <cstdint>
#include <vector>

#include "ir/graph.h"
#include "ops/registry.h"

namespace kiln::ops {

/// Domain of kiln's own ops such as FusedMatMul (as FusedConv's): no ONNX model imports it
/// by accident; passes create these nodes, and the plan records the domain with each node.
inline constexpr char kFusedMatMulDomain[] = "kiln";

/// Activation of a FusedMatMul node (the GEMM epilogues cuBLASLt has), from its
/// attributes "activation" ("" | "Relu" | "Gelu") and "approximate" ("none": erf form |
/// "tanh"), as ONNX Relu and Gelu-20.
enum class MatMulActivation : uint8_t { kNone, kRelu, kGeluErf, kGeluTanh };

/// Parses a FusedMatMul node's activation. Errors: OnnxBadAttribute (unknown values).
Result<MatMulActivation> fused_matmul_activation(const ir::Node& n);

/// MatMul's shape/type inference: numpy.matmul output shape from inputs 0 and 1 (1-D
/// operands promoted and the added dim removed, batch dims broadcast), dtype of input 0.
/// Errors: TypeMismatch (operand dtypes differ), ShapeMismatch (rank 0, inner dims differ,
/// batch dims do not broadcast).
Status infer_matmul(InferContext& ctx);

/// y = numpy.matmul(a, b) for dense row-major operands of dims `a_dims` and `b_dims`
/// (already validated by infer_matmul); `y` holds the inferred output's elements.
/// BLAS GEMMs, one tall GEMM when B is shared by every batch.
void matmul_dense(const std::vector<int64_t>& a_dims, const float* a,
                  const std::vector<int64_t>& b_dims, const float* b, float* y);
/// f64 overload of matmul_dense.
void matmul_dense(const std::vector<int64_t>& a_dims, const double* a,
                  const std::vector<int64_t>& b_dims, const double* b, double* y);

}  // namespace kiln::ops
