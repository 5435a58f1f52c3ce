// kiln's fused convolution op, domain "kiln", op_type "FusedConv" (src/ops/fused_conv.cc):
//   Y = act(Conv(X, W) + B + Z)
// with every ONNX Conv attribute plus "activation" and its parameters. The graph pass
// fuse_conv_activation (src/passes/) creates it for the CUDA backend, whose cuDNN kernel
// (src/cuda/cudnn_conv.cc) runs the epilogue inside the convolution. The activation table
// here is the one definition of the epilogue's arithmetic, for the CPU reference and for
// the GPU epilogue kernel alike (so this header compiles under nvcc too).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "ops/host_device.h"

#ifndef __CUDACC__
#include "ir/graph.h"
#include "kiln/status.h"
#endif

namespace kiln::ops {

/// Domain and op type of the fused convolution.
inline constexpr const char* kFusedConvDomain = "kiln";
inline constexpr const char* kFusedConvOp = "FusedConv";
/// Version of the kiln-domain FusedConv node (the op table's entry covers 1..1).
inline constexpr int kFusedConvVersion = 1;

/// Activation of a FusedConv epilogue; each matches the ONNX op of the same name.
enum class FusedActivation : uint8_t {
  kNone = 0,
  kRelu,       ///< max(x, 0)
  kLeakyRelu,  ///< x < 0 ? alpha * x : x ("alpha", default 0.01)
  kClip,       ///< min(max(x, clip_min), clip_max) (attrs "clip_min"/"clip_max", default ±inf)
  kSigmoid,    ///< 1 / (1 + e^-x)
  kHardSwish,  ///< x * clamp(x / 6 + 0.5, 0, 1)
  kSiLU,       ///< x * sigmoid(x)
};

/// The epilogue's activation and its parameters: LeakyRelu uses p0 = alpha; Clip uses
/// p0 = min and p1 = max.
struct FusedEpilogue {
  FusedActivation act = FusedActivation::kNone;
  float p0 = 0.0f;
  float p1 = 0.0f;
};

/// Sigmoid written like the CPU Sigmoid op (no overflow of e^-x for large negative x).
template <typename C>
KILN_HOST_DEVICE inline C fused_sigmoid(C x) {
  using std::exp;
  if (x >= C(0)) return C(1) / (C(1) + exp(-x));
  const C e = exp(x);
  return e / (C(1) + e);
}

/// Calls f(std::integral_constant<FusedActivation, a>{}): kernels compile one branch-free
/// copy of their epilogue per activation and choose it once, not per element (a switch per
/// element in unrolled code doubled the stem kernel's time and made the tensor-core GEMM
/// 200 KB of code).
template <typename F>
KILN_HOST_DEVICE inline void visit_fused_activation(FusedActivation a, F&& f) {
  switch (a) {
#define KILN_VISIT_ACTIVATION(A) \
  case FusedActivation::A: f(std::integral_constant<FusedActivation, FusedActivation::A>{}); break;
    KILN_VISIT_ACTIVATION(kNone)
    KILN_VISIT_ACTIVATION(kRelu)
    KILN_VISIT_ACTIVATION(kLeakyRelu)
    KILN_VISIT_ACTIVATION(kClip)
    KILN_VISIT_ACTIVATION(kSigmoid)
    KILN_VISIT_ACTIVATION(kHardSwish)
    KILN_VISIT_ACTIVATION(kSiLU)
#undef KILN_VISIT_ACTIVATION
  }
}

/// act(x) in compute type C (float, or double for f64), with the same expressions as the
/// CPU kernels of Relu, LeakyRelu, Clip, Sigmoid, HardSwish and x * Sigmoid(x).
template <typename C>
KILN_HOST_DEVICE inline C apply_fused_activation(const FusedEpilogue& e, C x) {
  switch (e.act) {
    case FusedActivation::kNone:
      return x;
    case FusedActivation::kRelu:
      return x < C(0) ? C(0) : x;
    case FusedActivation::kLeakyRelu:
      return x < C(0) ? C(e.p0) * x : x;
    case FusedActivation::kClip: {
      // std::min(std::max(x, lo), hi): NaN propagates, lo > hi yields hi (Clip's rule).
      const C lo = C(e.p0), hi = C(e.p1);
      const C m = x < lo ? lo : x;
      return hi < m ? hi : m;
    }
    case FusedActivation::kSigmoid:
      return fused_sigmoid(x);
    case FusedActivation::kHardSwish: {
      // x * std::max(0, std::min(1, x / 6 + 0.5)), operand order included (NaN → 0 factor).
      const C h = x / C(6) + C(0.5);
      const C m = h < C(1) ? h : C(1);
      return x * (C(0) < m ? m : C(0));
    }
    case FusedActivation::kSiLU:
      return x * fused_sigmoid(x);
  }
  return x;
}

#ifndef __CUDACC__
/// ONNX name of an activation ("" for none): the value of FusedConv's "activation".
const char* fused_activation_name(FusedActivation a);

/// The epilogue of a FusedConv node from its attributes. Errors: OnnxBadAttribute for an
/// unknown activation name.
Result<FusedEpilogue> read_fused_epilogue(const ir::Node& n);

/// Sets the attributes of `n` (a FusedConv) that describe `e` ("activation", "alpha",
/// "clip_min", "clip_max").
void write_fused_epilogue(ir::Node& n, const FusedEpilogue& e);
#endif

}  // namespace kiln::ops
