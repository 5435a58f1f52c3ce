// The ONNX reductions as reducer functors of the reduction engine (reduce.cuh), and the
// Kernel that runs one: shared by reduce.cu (Reduce*, ArgMax/ArgMin) and global_pool.cu
// (GlobalAveragePool, GlobalMaxPool, GlobalLpPool). They are two CUDA modules because a
// module's first use costs load time in proportion to its size: a CNN's global pool loads
// its handful of kernels, not every reduction's.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cuda/kernels/reduce.cuh"

namespace kiln::cuda {

enum class ReduceKind { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

/// One ONNX reduction as a reducer functor (see reduce.cuh).
template <typename T, ReduceKind K>
struct Reduce {
  static constexpr bool kFloat = is_float_v<T>;
  static constexpr bool kMinMax = K == ReduceKind::kMax || K == ReduceKind::kMin;
  // Integer Mean/L2/LogSum(Exp) need fractions: they accumulate in double like the CPU.
  static constexpr bool kViaDouble =
      !kFloat && (K == ReduceKind::kMean || K == ReduceKind::kL2 || K == ReduceKind::kLogSum ||
                  K == ReduceKind::kLogSumExp);
  using F = std::conditional_t<kFloat, float_acc_t<T>, double>;
  using Int = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
  using In = T;
  using Out = T;
  using Acc = std::conditional_t<
      K == ReduceKind::kLogSumExp, LseAcc<F>,
      std::conditional_t<kFloat || kViaDouble, F, std::conditional_t<kMinMax, T, Int>>>;

  int64_t count = 1;  ///< reduced elements per output (Mean's divisor)

  __device__ Acc init() const {
    constexpr F kInf = std::numeric_limits<F>::infinity();
    if constexpr (K == ReduceKind::kLogSumExp) {
      return lse_init<F>();
    } else if constexpr (kMinMax && kFloat) {
      return K == ReduceKind::kMax ? -kInf : kInf;
    } else if constexpr (kMinMax) {
      return K == ReduceKind::kMax ? std::numeric_limits<T>::lowest()
                                   : std::numeric_limits<T>::max();
    } else {
      return K == ReduceKind::kProd ? Acc(1) : Acc(0);
    }
  }

  __device__ __forceinline__ void step(Acc& a, T v, int64_t) const {
    if constexpr (K == ReduceKind::kLogSumExp) {
      lse_step(a, static_cast<F>(to_compute(v)));
    } else if constexpr (kMinMax && kFloat) {
      min_max(a, static_cast<F>(to_compute(v)));
    } else if constexpr (kMinMax) {
      if (K == ReduceKind::kMax ? v > a : v < a) a = v;
    } else {
      const Acc x = static_cast<Acc>(to_compute(v));
      if constexpr (K == ReduceKind::kProd)
        a *= x;
      else if constexpr (K == ReduceKind::kSumSquare || K == ReduceKind::kL2)
        a += x * x;
      else if constexpr (K == ReduceKind::kL1 && std::is_signed_v<Acc>)
        a += x < Acc(0) ? Acc(0) - x : x;
      else
        a += x;
    }
  }

  __device__ __forceinline__ void combine(Acc& a, const Acc& b) const {
    if constexpr (K == ReduceKind::kLogSumExp) {
      lse_combine(a, b);
    } else if constexpr (kMinMax && kFloat) {
      min_max(a, b);
    } else if constexpr (kMinMax) {
      if (K == ReduceKind::kMax ? b > a : b < a) a = b;
    } else if constexpr (K == ReduceKind::kProd) {
      a *= b;
    } else {
      a += b;
    }
  }

  __device__ __forceinline__ T finish(const Acc& a) const {
    if constexpr (K == ReduceKind::kLogSumExp) {
      if (a.s == F(0)) return out(-std::numeric_limits<F>::infinity());  // empty set
      return out(isinf(a.m) ? a.m : a.m + dev_log(a.s));
    } else if constexpr (K == ReduceKind::kMean) {
      return out(a / static_cast<F>(count));
    } else if constexpr (K == ReduceKind::kL2) {
      return out(dev_sqrt(a));
    } else if constexpr (K == ReduceKind::kLogSum) {
      return out(dev_log(a));
    } else if constexpr (kFloat) {
      return out(a);
    } else {
      return static_cast<T>(a);  // integer sums wrap like the CPU's 64-bit accumulator
    }
  }

 private:
  // numpy's maximum.reduce: NaN, once seen, stays.
  static __device__ __forceinline__ void min_max(F& a, F x) {
    if ((K == ReduceKind::kMax ? x > a : x < a) || isnan(x)) a = isnan(a) ? a : x;
  }
  static __device__ __forceinline__ T out(F v) {
    if constexpr (kFloat)
      return from_compute<T>(static_cast<compute_t<T>>(v));
    else
      return float_to_int_dev<T>(static_cast<double>(v));
  }
};

/// GlobalLpPool: (sum |x|^p)^(1/p).
template <typename T>
struct LpPoolReduce {
  using F = float_acc_t<T>;
  using In = T;
  using Out = T;
  using Acc = F;
  F p = 2;

  __device__ Acc init() const { return F(0); }
  __device__ __forceinline__ void step(Acc& a, T v, int64_t) const {
    const F x = fabs(static_cast<F>(to_compute(v)));
    a += p == F(1) ? x : p == F(2) ? x * x : dev_pow(x, p);
  }
  __device__ __forceinline__ void combine(Acc& a, const Acc& b) const { a += b; }
  __device__ __forceinline__ T finish(const Acc& a) const {
    const F r = p == F(1) ? a : p == F(2) ? dev_sqrt(a) : dev_pow(a, F(1) / p);
    return from_compute<T>(static_cast<compute_t<T>>(r));
  }
};

inline std::string reduce_tactic(const ReducePlan& p) {
  std::string t = p.cols ? "kiln:reduce_cols" : "kiln:reduce_rows";
  if (p.general) t += "_general";
  if (p.splits > 1) t += "_split" + std::to_string(p.splits);
  return t;
}

/// A reduction bound to its plan.
template <typename R>
class ReduceKernel final : public Kernel {
 public:
  ReduceKernel(const R& rd, const ReducePlan& plan) : rd_(rd), plan_(plan) {}
  size_t workspace_bytes() const override {
    return reduce_workspace_bytes(plan_, sizeof(typename R::Acc));
  }
  std::string tactic() const override { return reduce_tactic(plan_); }
  Status enqueue(const LaunchArgs& a) override {
    return launch_reduce(plan_, rd_, a.in<typename R::In>(0), a.out<typename R::Out>(0),
                         a.workspace, a.stream);
  }

 private:
  R rd_;
  ReducePlan plan_;
};

/// Output 0 = input 0 (Reduce* with noop_with_empty_axes and no axes).
class ReduceCopyKernel final : public Kernel {
 public:
  explicit ReduceCopyKernel(size_t bytes) : bytes_(bytes) {}
  std::string tactic() const override { return "kiln:copy"; }
  Status enqueue(const LaunchArgs& a) override {
    if (bytes_)
      KILN_CUDA_CHECK(cudaMemcpyAsync(a.outputs[0], a.inputs[0], bytes_, cudaMemcpyDeviceToDevice,
                                      a.stream));
    return Status::ok();
  }

 private:
  size_t bytes_;
};

/// Plans `rd` over `dims` / `mask` and wraps it in a ReduceKernel.
template <typename R>
Result<std::unique_ptr<Kernel>> make_reduce_kernel(const KernelConfig& cfg, const R& rd,
                                                   const std::vector<int64_t>& dims,
                                                   const std::vector<bool>& mask) {
  ReducePlan plan;
  if (!make_reduce_plan(dims, mask, has_fast_reduce_v<typename R::In>, cfg.res.sm_count, plan,
                        has_fast_reduce_v<typename R::In> ? pack_of_v<typename R::In> : 1))
    return cfg.unsupported("more than " + std::to_string(kMaxRank) +
                           " alternating kept/reduced dim groups");
  return std::unique_ptr<Kernel>(new ReduceKernel<R>(rd, plan));
}

/// Runs `make(T{})` for the element type `dt` among Ds and returns the kernel it made.
template <DataType... Ds, typename Make>
Result<std::unique_ptr<Kernel>> make_typed(DataType dt, const KernelConfig& cfg, Make&& make) {
  std::unique_ptr<Kernel> k;
  Status st = dispatch<Ds...>(dt, cfg, [&](auto t) -> Status {
    Result<std::unique_ptr<Kernel>> r = make(t);
    if (!r.is_ok()) return r.status();
    k = std::move(r).value();
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  return Result<std::unique_ptr<Kernel>>(std::move(k));
}

}  // namespace kiln::cuda
