// Variadic elementwise reductions over inputs (ONNX Operators.md: Max, Min, Sum, Mean), with
// numpy multidirectional broadcasting of all inputs. The running result is kept in the
// compute type (f32 for narrow floats), so Mean/Sum of f16 inputs round only once.
#include <cmath>
#include <tuple>

#include "ops/elementwise.h"

namespace kiln::ops {
namespace {

struct Max {
  template <typename C> C operator()(C a, C b) const {
    if constexpr (std::is_floating_point_v<C>)
      if (std::isnan(b)) return b;  // numpy.maximum propagates NaN from either side
    return a < b ? b : a;
  }
};
struct Min {
  template <typename C> C operator()(C a, C b) const {
    if constexpr (std::is_floating_point_v<C>)
      if (std::isnan(b)) return b;
    return b < a ? b : a;
  }
};
struct Sum { template <typename C> C operator()(C a, C b) const { return static_cast<C>(a + b); } };

template <uint32_t Set>
Status variadic_infer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_input_type(ctx, 0, Set));
  KILN_RETURN_IF_ERROR(check_same_types(ctx, 0, ctx.num_inputs()));
  return infer_broadcast(ctx);
}

template <uint32_t Set, typename Op, bool kMean>
Status variadic_cpu(KernelContext& ctx) {
  HostTensor& out = ctx.output(0);
  const Op op{};
  return dispatch_types<Set>(out.dtype(), [&](auto t) {
    using T = decltype(t);
    using C = compute_t<T>;
    const int64_t n = out.numel();
    std::vector<C> buf;
    C* acc;
    if constexpr (std::is_same_v<T, C>) {
      acc = out.data<T>();
    } else {
      buf.resize(static_cast<size_t>(n));
      acc = buf.data();
    }
    int64_t count = 0;
    for (size_t k = 0; k < ctx.num_inputs(); ++k) {
      if (!ctx.has_input(k)) continue;
      const HostTensor& in = ctx.input(k);
      const T* p = in.data<T>();
      const bool first = count++ == 0;
      for_each_broadcast_row<1>({&in.dims()}, out.dims(),
                                [&](const std::array<int64_t, 1>& off,
                                    const std::array<int64_t, 1>& step, int64_t o, int64_t len) {
                                  const T* x = p + off[0];
                                  C* z = acc + o;
                                  if (first) {
                                    for (int64_t i = 0; i < len; ++i)
                                      z[i] = static_cast<C>(x[i * step[0]]);
                                  } else if (step[0]) {
                                    for (int64_t i = 0; i < len; ++i)
                                      z[i] = op(z[i], static_cast<C>(x[i]));
                                  } else {
                                    const C s = static_cast<C>(*x);
                                    for (int64_t i = 0; i < len; ++i) z[i] = op(z[i], s);
                                  }
                                });
    }
    if constexpr (kMean) {
      const C c = static_cast<C>(count);
      for (int64_t i = 0; i < n; ++i) acc[i] /= c;
    }
    if constexpr (!std::is_same_v<T, C>) {
      T* po = out.data<T>();
      for (int64_t i = 0; i < n; ++i) po[i] = static_cast<T>(acc[i]);
    }
    return Status::ok();
  });
}

}  // namespace

KILN_REGISTER_OPS(variadic) {
  // Max-6 etc. (no broadcasting) are in effect at opset 7. Max/Min accept integers from
  // opset 12; Sum/Mean only floats.
  for (auto [name, infer, cpu, summary] :
       {std::tuple{"Max", &variadic_infer<kTsNumeric>, &variadic_cpu<kTsNumeric, Max, false>,
                   "elementwise maximum of N inputs with broadcasting (NaN propagates)"},
        std::tuple{"Min", &variadic_infer<kTsNumeric>, &variadic_cpu<kTsNumeric, Min, false>,
                   "elementwise minimum of N inputs with broadcasting (NaN propagates)"},
        std::tuple{"Sum", &variadic_infer<kTsFloat>, &variadic_cpu<kTsFloat, Sum, false>,
                   "elementwise sum of N inputs with broadcasting"},
        std::tuple{"Mean", &variadic_infer<kTsFloat>, &variadic_cpu<kTsFloat, Sum, true>,
                   "elementwise mean of N inputs with broadcasting"}})
    reg.add({.op_type = name, .min_opset = 1, .min_inputs = 1, .max_inputs = -1, .infer = infer,
             .cpu = cpu, .summary = summary});
}

}  // namespace kiln::ops
