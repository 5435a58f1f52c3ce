// CUDA kernels for the normalization ops (ONNX Operators.md): LayerNormalization,
// InstanceNormalization, GroupNormalization, BatchNormalization (inference),
// LRN, LpNormalization and MeanVarianceNormalization.
//
// Semantics follow the CPU reference (src/ops/normalization.cc). Statistics use float
// (double for f64) with two passes over a register-cached row (mean, then the centred
// variance) or, for the reduction-engine ops, Welford/Chan merging; population variance.
//
// Layer/Instance/Group normalization are one "row norm": rows of `cols` contiguous
// values, each normalised by its own mean and 1/sqrt(var + eps), then an affine map whose
// parameter index is either the column (LayerNorm: p = j mod period) or derived from the
// row (Instance: channel; Group: group, or channel at opset 21). Rows of <= 1024 values
// run one warp per row with the row in registers (BERT's rows of 768 halves: 16-byte
// loads, 3 per lane); longer rows run one block per row.
#include <memory>
#include <string>

#include "cuda/kernels/reduce.cuh"

namespace kiln::cuda {
namespace {

constexpr int kMaxWarpCols = 1024;  ///< longest row of the warp kernel (32 per lane)
constexpr int kNormBlock = 512;     ///< threads of the block-per-row kernel

// ---- row norm (Layer / Instance / Group) ------------------------------------------------

/// Where a row-norm element's scale/bias come from.
enum class ParamMode {
  kColumn,  ///< p = j % period (LayerNorm; period == cols in the usual case)
  kGroup,   ///< p = (row % groups) * per_group + j / spatial (Instance / Group norm)
};

struct RowNormArgs {
  int64_t rows = 0, cols = 0;
  double eps = 1e-5;
  int64_t period = 1;                              ///< kColumn
  int64_t groups = 1, per_group = 1, spatial = 1;  ///< kGroup (per_group 1: one per row)
  bool bias = true;                                ///< B present
  bool stats_bf16 = false;                         ///< Mean/InvStdDev stored as bf16
};

template <ParamMode PM>
__device__ __forceinline__ int64_t param_index(const RowNormArgs& a, int64_t row, int64_t j) {
  if constexpr (PM == ParamMode::kColumn) {
    return a.period == a.cols ? j : j % a.period;
  } else {
    const int64_t base = (row % a.groups) * a.per_group;
    return a.per_group == 1 ? base : base + j / a.spatial;
  }
}

/// Stores a row statistic as the stash type (float or bfloat16).
__device__ __forceinline__ void store_stat(void* p, bool bf16, int64_t row, float v) {
  if (!p) return;
  if (bf16)
    static_cast<__nv_bfloat16*>(p)[row] = __float2bfloat16_rn(v);
  else
    static_cast<float*>(p)[row] = v;
}

template <typename T, typename F>
__device__ __forceinline__ T affine(F v, F mean, F inv, const T* scale, const T* bias,
                                    int64_t p) {
  F r = (v - mean) * inv * static_cast<F>(to_compute(scale[p]));
  if (bias) r += static_cast<F>(to_compute(bias[p]));
  return from_compute<T>(static_cast<compute_t<T>>(r));
}

/// Warp-per-row kernel: lane l holds columns (it * 32 + l) * V + k, V elements per access
/// (V > 1 only when x, y and, for kColumn, scale/bias rows are aligned to V elements).
template <typename T, ParamMode PM, int kPerLane, bool kVec>
__global__ void __launch_bounds__(kReduceBlock)
    row_norm_warp_kernel(const T* __restrict__ x, const T* __restrict__ scale,
                         const T* __restrict__ bias, T* __restrict__ y, void* mean_out,
                         void* inv_out, RowNormArgs a) {
  using F = float_acc_t<T>;
  constexpr int V = kVec ? (kPerLane < pack_of_v<T> ? kPerLane : pack_of_v<T>) : 1;
  constexpr int kIters = kPerLane / V;
  constexpr int kWarps = kReduceBlock / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int cols = static_cast<int>(a.cols);
  const auto sum = [](F& s, const F& o) { s += o; };
  F v[kPerLane];
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / kWarp;
       row < a.rows; row += static_cast<int64_t>(gridDim.x) * kWarps) {
    const T* px = x + row * cols;
    F s = 0;
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int col = (it * kWarp + lane) * V;
      if (col < cols) {
        const Pack<T, V> pk = *reinterpret_cast<const Pack<T, V>*>(px + col);
#pragma unroll
        for (int k = 0; k < V; ++k) {
          v[it * V + k] = static_cast<F>(to_compute(pk.v[k]));
          s += v[it * V + k];
        }
      }
    }
    const F mean = cols ? warp_allreduce(s, sum) / static_cast<F>(cols) : F(0);
    F sq = 0;
#pragma unroll
    for (int it = 0; it < kIters; ++it)
      if ((it * kWarp + lane) * V < cols)
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const F d = v[it * V + k] - mean;
          sq += d * d;
        }
    const F var = cols ? warp_allreduce(sq, sum) / static_cast<F>(cols) : F(0);
    const F inv = F(1) / dev_sqrt(var + static_cast<F>(a.eps));
    if (lane == 0) {
      store_stat(mean_out, a.stats_bf16, row, static_cast<float>(mean));
      store_stat(inv_out, a.stats_bf16, row, static_cast<float>(inv));
    }
    T* py = y + row * cols;
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int col = (it * kWarp + lane) * V;
      if (col >= cols) continue;
      Pack<T, V> out;
      if constexpr (kVec && PM == ParamMode::kColumn) {
        // kVec with kColumn implies period == cols: the params are one aligned row.
        const Pack<T, V> sc = *reinterpret_cast<const Pack<T, V>*>(scale + col);
        Pack<T, V> bi{};
        if (bias) bi = *reinterpret_cast<const Pack<T, V>*>(bias + col);
#pragma unroll
        for (int k = 0; k < V; ++k) {
          F r = (v[it * V + k] - mean) * inv * static_cast<F>(to_compute(sc.v[k]));
          if (bias) r += static_cast<F>(to_compute(bi.v[k]));
          out.v[k] = from_compute<T>(static_cast<compute_t<T>>(r));
        }
      } else {
#pragma unroll
        for (int k = 0; k < V; ++k)
          out.v[k] = affine(v[it * V + k], mean, inv, scale, bias,
                            param_index<PM>(a, row, col + k));
      }
      *reinterpret_cast<Pack<T, V>*>(py + col) = out;
    }
  }
}

/// Block-per-row kernel for rows longer than kMaxWarpCols: three passes over the row
/// (sum, centred squares, output), which stays in L2 between them.
template <typename T, ParamMode PM>
__global__ void __launch_bounds__(kNormBlock)
    row_norm_block_kernel(const T* __restrict__ x, const T* __restrict__ scale,
                          const T* __restrict__ bias, T* __restrict__ y, void* mean_out,
                          void* inv_out, RowNormArgs a) {
  using F = float_acc_t<T>;
  KILN_SHARED_ARRAY(F, smem, kNormBlock / kWarp);
  const auto sum = [](F& s, const F& o) { s += o; };
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const T* px = x + row * a.cols;
    T* py = y + row * a.cols;
    F s = 0;
    for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) s += static_cast<F>(to_compute(px[j]));
    const F mean = group_allreduce(s, blockDim.x, sum, smem) / static_cast<F>(a.cols);
    F sq = 0;
    for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
      const F d = static_cast<F>(to_compute(px[j])) - mean;
      sq += d * d;
    }
    const F var = group_allreduce(sq, blockDim.x, sum, smem) / static_cast<F>(a.cols);
    const F inv = F(1) / dev_sqrt(var + static_cast<F>(a.eps));
    if (threadIdx.x == 0) {
      store_stat(mean_out, a.stats_bf16, row, static_cast<float>(mean));
      store_stat(inv_out, a.stats_bf16, row, static_cast<float>(inv));
    }
    for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x)
      py[j] = affine(static_cast<F>(to_compute(px[j])), mean, inv, scale, bias,
                     param_index<PM>(a, row, j));
  }
}

/// Writes the statistics of empty rows (cols == 0): mean 0, 1/sqrt(eps), as the CPU.
__global__ void empty_row_stats_kernel(void* mean_out, void* inv_out, RowNormArgs a) {
  KILN_GRID_STRIDE_LOOP(row, a.rows) {
    store_stat(mean_out, a.stats_bf16, row, 0.0f);
    store_stat(inv_out, a.stats_bf16, row, static_cast<float>(1.0 / sqrt(a.eps)));
  }
}

/// A Layer/Instance/Group normalization node.
template <typename T, ParamMode PM>
class RowNormKernel final : public Kernel {
 public:
  RowNormKernel(const RowNormArgs& a, bool mean_out, bool inv_out)
      : a_(a), mean_out_(mean_out), inv_out_(inv_out) {}
  std::string tactic() const override {
    return a_.cols <= kMaxWarpCols ? "kiln:row_norm_warp" : "kiln:row_norm_block";
  }
  Status enqueue(const LaunchArgs& la) override {
    const T* x = la.in<T>(0);
    const T* scale = la.in<T>(1);
    const T* bias = a_.bias ? la.in<T>(2) : nullptr;
    T* y = la.out<T>(0);
    void* mean = mean_out_ ? la.outputs[1] : nullptr;
    void* inv = inv_out_ ? la.outputs[2] : nullptr;
    if (a_.rows == 0) return Status::ok();
    if (a_.cols == 0) {
      if (!mean && !inv) return Status::ok();
      empty_row_stats_kernel<<<grid_for(a_.rows), kBlock, 0, la.stream>>>(mean, inv, a_);
      KILN_CUDA_CHECK_LAUNCH("empty_row_stats");
      return Status::ok();
    }
    if (a_.cols > kMaxWarpCols) {
      const unsigned grid = static_cast<unsigned>(std::min<int64_t>(a_.rows, 1 << 30));
      row_norm_block_kernel<T, PM><<<grid, kNormBlock, 0, la.stream>>>(x, scale, bias, y, mean,
                                                                      inv, a_);
      KILN_CUDA_CHECK_LAUNCH("row_norm_block");
      return Status::ok();
    }
    bool vec = aligned16(x) && aligned16(y);
    if constexpr (PM == ParamMode::kColumn)
      vec = vec && a_.period == a_.cols && aligned16(scale) && (!bias || aligned16(bias));
    const int n = static_cast<int>(a_.cols);
    auto v_ok = [&](int per_lane) { return vec && n % std::min(per_lane, pack_of_v<T>) == 0; };
    if (n <= 32) return launch<1, false>(x, scale, bias, y, mean, inv, la.stream);
#define KILN_ROW_NORM_CASE(P)                                               \
  if (n <= 32 * (P))                                                        \
    return v_ok(P) ? launch<P, true>(x, scale, bias, y, mean, inv, la.stream) \
                   : launch<P, false>(x, scale, bias, y, mean, inv, la.stream);
    KILN_ROW_NORM_CASE(2)
    KILN_ROW_NORM_CASE(4)
    KILN_ROW_NORM_CASE(8)
    KILN_ROW_NORM_CASE(16)
    KILN_ROW_NORM_CASE(32)
#undef KILN_ROW_NORM_CASE
    return Status(ErrorCode::kInternal, "row norm: no warp kernel for " + std::to_string(n));
  }

 private:
  template <int P, bool kVec>
  Status launch(const T* x, const T* scale, const T* bias, T* y, void* mean, void* inv,
                cudaStream_t stream) const {
    constexpr int kWarps = kReduceBlock / kWarp;
    const unsigned grid =
        static_cast<unsigned>(std::min<int64_t>((a_.rows + kWarps - 1) / kWarps, 1 << 30));
    row_norm_warp_kernel<T, PM, P, kVec>
        <<<grid, kReduceBlock, 0, stream>>>(x, scale, bias, y, mean, inv, a_);
    KILN_CUDA_CHECK_LAUNCH("row_norm_warp");
    return Status::ok();
  }

  RowNormArgs a_;
  bool mean_out_, inv_out_;
};

template <ParamMode PM>
Result<std::unique_ptr<Kernel>> make_row_norm(const KernelConfig& cfg, const RowNormArgs& a,
                                              bool mean_out, bool inv_out) {
  std::unique_ptr<Kernel> k;
  Status st = dispatch<KILN_FLOAT_TYPES>(cfg.in(0).dtype, cfg, [&](auto t) -> Status {
    k.reset(new RowNormKernel<decltype(t), PM>(a, mean_out, inv_out));
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  return Result<std::unique_ptr<Kernel>>(std::move(k));
}

/// Period of a LayerNorm parameter along the flattened normalized dims: the parameter,
/// right-aligned to X, must be 1 before `axis` and of the form [1, ..., 1, X's trailing
/// dims] after it. Returns -1 for other broadcasts (per-row or interleaved parameters).
int64_t column_param_period(const std::vector<int64_t>& p, const std::vector<int64_t>& x,
                            int64_t axis) {
  if (p.size() > x.size()) return -1;
  const size_t lead = x.size() - p.size();
  bool in_suffix = false;
  int64_t period = 1;
  for (size_t d = 0; d < p.size(); ++d) {
    const int64_t xd = static_cast<int64_t>(lead + d);
    if (xd < axis) {
      if (p[d] != 1) return -1;
      continue;
    }
    if (!in_suffix && p[d] == 1) continue;
    in_suffix = true;
    if (p[d] != x[xd]) return -1;
    period *= p[d];
  }
  return period;
}

/// Inputs 1.. (scale, bias) must have X's dtype: the kernels read them as T.
Status check_param_types(const KernelConfig& cfg, size_t first, size_t last) {
  for (size_t i = first; i <= last; ++i)
    if (cfg.has_input(i) && cfg.in(i).dtype != cfg.in(0).dtype)
      return cfg.unsupported(std::string("input ") + std::to_string(i) + " of dtype " +
                             dtype_name(cfg.in(i).dtype) + " with X of dtype " +
                             dtype_name(cfg.in(0).dtype));
  return Status::ok();
}

Result<std::unique_ptr<Kernel>> create_layer_norm(const KernelConfig& cfg) {
  const Operand& x = cfg.in(0);
  if (x.layout != Layout::kRowMajor) return cfg.unsupported("channels-last input");
  KILN_RETURN_IF_ERROR(check_param_types(cfg, 1, 2));
  const int64_t rank = static_cast<int64_t>(x.rank());
  const int64_t a = cfg.node.attr_i("axis", -1);
  const int64_t axis = a < 0 ? a + rank : a;
  if (axis < 0 || axis >= rank)
    return cfg.error(ErrorCode::kBadAxis,
                     "axis " + std::to_string(a) + " is out of range for rank " +
                         std::to_string(rank),
                     "axis must be in [-rank, rank-1]");
  const int64_t stash = cfg.node.attr_i("stash_type", 1);
  if (stash != 1 && stash != 16)
    return cfg.error(ErrorCode::kOnnxBadAttribute,
                     "stash_type " + std::to_string(stash) + " is not float (1) or bfloat16 (16)",
                     "the ONNX spec allows only these two stash types");
  RowNormArgs args;
  args.rows = args.cols = 1;
  for (int64_t d = 0; d < rank; ++d) (d < axis ? args.rows : args.cols) *= x.dims[d];
  args.eps = cfg.node.attr_f("epsilon", 1e-5f);
  args.bias = cfg.has_input(2);
  args.stats_bf16 = stash == 16;
  int64_t period = -1;
  for (size_t i = 1; i <= 2; ++i) {
    if (!cfg.has_input(i)) continue;
    const int64_t pi = column_param_period(cfg.in(i).dims, x.dims, axis);
    if (pi < 0 || (period >= 0 && pi != period))
      return cfg.unsupported("Scale/B broadcast that varies across rows or differs between "
                             "Scale and B");
    period = pi;
  }
  args.period = period > 0 ? period : 1;
  const bool mean_out = cfg.outputs.size() > 1 && cfg.out(1).present();
  const bool inv_out = cfg.outputs.size() > 2 && cfg.out(2).present();
  return make_row_norm<ParamMode::kColumn>(cfg, args, mean_out, inv_out);
}

/// InstanceNormalization (groups = channels) and GroupNormalization.
template <bool kGroupNorm>
Result<std::unique_ptr<Kernel>> create_channel_norm(const KernelConfig& cfg) {
  const Operand& x = cfg.in(0);
  if (x.layout != Layout::kRowMajor) return cfg.unsupported("channels-last input");
  KILN_RETURN_IF_ERROR(check_param_types(cfg, 1, 2));
  if (x.rank() < 2)
    return cfg.error(ErrorCode::kShapeMismatch,
                     "input of rank " + std::to_string(x.rank()) + " must have rank >= 2",
                     "the input is [N, C, D1, ..., Dn]");
  const int64_t c = x.dims[1];
  int64_t spatial = 1;
  for (size_t d = 2; d < x.rank(); ++d) spatial *= x.dims[d];
  RowNormArgs args;
  args.eps = cfg.node.attr_f("epsilon", 1e-5f);
  int64_t groups = c, per = c;
  if constexpr (kGroupNorm) {
    groups = cfg.node.attr_i("num_groups", 0);
    if (groups <= 0 || c % groups != 0)
      return cfg.error(ErrorCode::kOnnxBadAttribute,
                       "num_groups " + std::to_string(groups) + " does not divide the " +
                           std::to_string(c) + " channels",
                       "num_groups must be a positive divisor of the channel count");
    per = cfg.opset() >= 21 ? c : groups;  // opset 18: per group, 21: per channel
  }
  if (cfg.in(1).numel() != per || cfg.in(2).numel() != per)
    return cfg.error(ErrorCode::kShapeMismatch,
                     "scale and bias must have " + std::to_string(per) + " values",
                     kGroupNorm ? "GroupNormalization-18 takes one scale and bias per group, "
                                  "opset 21 one per channel"
                                : "InstanceNormalization has one scale and bias per channel");
  args.rows = x.dims[0] * groups;
  args.cols = groups ? (c / groups) * spatial : 0;
  args.groups = groups;
  args.per_group = per == c && kGroupNorm ? c / groups : 1;
  args.spatial = spatial ? spatial : 1;
  return make_row_norm<ParamMode::kGroup>(cfg, args, false, false);
}

// ---- BatchNormalization (inference) -----------------------------------------------------

/// Element i of a float tensor of dtype dt, as double (BatchNorm parameters may have
/// their own dtypes).
__device__ __forceinline__ double load_f64(const void* p, DataType dt, int64_t i) {
  switch (dt) {
    case DataType::kF16: return __half2float(static_cast<const __half*>(p)[i]);
    case DataType::kBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case DataType::kF64: return static_cast<const double*>(p)[i];
    default: return static_cast<const float*>(p)[i];
  }
}

struct BnParamTypes {
  DataType scale, bias, mean, var;
};

/// a = scale / sqrt(var + eps), b = bias - mean * a per parameter, in double (as the CPU).
template <typename F>
__global__ void batch_norm_prep_kernel(const void* scale, const void* bias, const void* mean,
                                       const void* var, BnParamTypes t, double eps, F* ab,
                                       int64_t params) {
  KILN_GRID_STRIDE_LOOP(c, params) {
    const double a = load_f64(scale, t.scale, c) / sqrt(load_f64(var, t.var, c) + eps);
    ab[c] = static_cast<F>(a);
    ab[params + c] = static_cast<F>(load_f64(bias, t.bias, c) - load_f64(mean, t.mean, c) * a);
  }
}

/// y = x * a[p] + b[p], p = (i / div) % params.
template <typename T, typename F>
__global__ void batch_norm_apply_kernel(const T* __restrict__ x, T* __restrict__ y,
                                        const F* __restrict__ ab, int64_t n, int64_t div,
                                        int64_t params) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t p = (div == 1 ? i : i / div) % params;
    y[i] = from_compute<T>(static_cast<compute_t<T>>(
        static_cast<F>(to_compute(x[i])) * ab[p] + ab[params + p]));
  }
}

template <typename T>
class BatchNormKernel final : public Kernel {
  using F = float_acc_t<T>;

 public:
  BatchNormKernel(BnParamTypes t, double eps, int64_t n, int64_t div, int64_t params)
      : t_(t), eps_(eps), n_(n), div_(div), params_(params) {}
  size_t workspace_bytes() const override { return 2 * params_ * sizeof(F); }
  std::string tactic() const override { return "kiln:batch_norm"; }
  Status enqueue(const LaunchArgs& a) override {
    if (n_ == 0) return Status::ok();
    F* ab = static_cast<F*>(a.workspace);
    batch_norm_prep_kernel<F><<<grid_for(params_), kBlock, 0, a.stream>>>(
        a.inputs[1], a.inputs[2], a.inputs[3], a.inputs[4], t_, eps_, ab, params_);
    KILN_CUDA_CHECK_LAUNCH("batch_norm_prep");
    batch_norm_apply_kernel<T, F><<<grid_for(n_), kBlock, 0, a.stream>>>(
        a.in<T>(0), a.out<T>(0), ab, n_, div_, params_);
    KILN_CUDA_CHECK_LAUNCH("batch_norm_apply");
    return Status::ok();
  }

 private:
  BnParamTypes t_;
  double eps_;
  int64_t n_, div_, params_;
};

Result<std::unique_ptr<Kernel>> create_batch_norm(const KernelConfig& cfg) {
  const ir::Node& n = cfg.node;
  bool extra_outputs = false;
  for (size_t i = 1; i < cfg.outputs.size(); ++i) extra_outputs |= cfg.out(i).present();
  if ((cfg.opset() >= 14 && n.attr_i("training_mode", 0) != 0) ||
      (cfg.opset() < 7 && n.attr_i("is_test", 0) == 0) || extra_outputs)
    return cfg.unsupported("training mode (batch statistics)");
  const Operand& x = cfg.in(0);
  if (x.rank() < 2 || cfg.inputs.size() < 5)
    return cfg.error(ErrorCode::kShapeMismatch, "BatchNormalization needs X [N, C, ...] and "
                     "scale, B, mean, var", "");
  for (size_t i = 1; i < 5; ++i) {
    const DataType dt = cfg.in(i).dtype;
    if (dt != DataType::kF32 && dt != DataType::kF16 && dt != DataType::kBF16 &&
        dt != DataType::kF64)
      return cfg.unsupported(std::string("parameter dtype ") + dtype_name(dt));
  }
  const int64_t c = x.dims[1];
  const int64_t per_sample = x.dims[0] ? x.numel() / x.dims[0] : 0;
  const int64_t params = cfg.in(1).numel();
  for (size_t i = 2; i < 5; ++i)
    if (cfg.in(i).numel() != params)
      return cfg.error(ErrorCode::kShapeMismatch,
                       "scale, B, mean and var must have the same number of values", "");
  int64_t div;
  if (params == c && x.layout == Layout::kNhwc)
    div = 1;
  else if (params == c)
    div = c ? per_sample / c : 1;
  else if (params == per_sample && x.layout == Layout::kRowMajor)
    div = 1;  // opset <= 8 with spatial=0: one value per (channel, position)
  else
    return cfg.error(ErrorCode::kShapeMismatch,
                     "scale has " + std::to_string(params) + " values for " +
                         std::to_string(c) + " channels",
                     "scale, B, mean and var hold one value per channel");
  const BnParamTypes t{cfg.in(1).dtype, cfg.in(2).dtype, cfg.in(3).dtype, cfg.in(4).dtype};
  const double eps = n.attr_f("epsilon", 1e-5f);
  std::unique_ptr<Kernel> k;
  Status st = dispatch<KILN_FLOAT_TYPES>(x.dtype, cfg, [&](auto tag) -> Status {
    k.reset(new BatchNormKernel<decltype(tag)>(t, eps, x.numel(), div ? div : 1,
                                               params ? params : 1));
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  return Result<std::unique_ptr<Kernel>>(std::move(k));
}

// ---- LRN ----------------------------------------------------------------------------------

struct LrnArgs {
  int64_t n = 0;       ///< elements
  int64_t c = 1;       ///< channels
  int64_t cdiv = 1;    ///< channel = (i / cdiv) % c; also the channel stride
  int64_t before = 0, after = 0;
  double alpha_over_size = 0, beta = 0, bias = 1;
};

/// y = x / (bias + alpha / size * sum of x^2 over the channel window)^beta.
template <typename T>
__global__ void lrn_kernel(const T* __restrict__ x, T* __restrict__ y, LrnArgs a) {
  using F = float_acc_t<T>;
  KILN_GRID_STRIDE_LOOP(i, a.n) {
    const int64_t ch = (a.cdiv == 1 ? i : i / a.cdiv) % a.c;
    const int64_t lo = ch - a.before < 0 ? 0 : ch - a.before;
    const int64_t hi = ch + a.after >= a.c ? a.c - 1 : ch + a.after;
    F sq = 0;
    for (int64_t k = lo; k <= hi; ++k) {
      const F v = static_cast<F>(to_compute(x[i + (k - ch) * a.cdiv]));
      sq += v * v;
    }
    const F d = dev_pow(static_cast<F>(a.bias) + static_cast<F>(a.alpha_over_size) * sq,
                        static_cast<F>(a.beta));
    y[i] = from_compute<T>(static_cast<compute_t<T>>(static_cast<F>(to_compute(x[i])) / d));
  }
}

template <typename T>
class LrnKernel final : public Kernel {
 public:
  explicit LrnKernel(const LrnArgs& a) : a_(a) {}
  std::string tactic() const override { return "kiln:lrn"; }
  Status enqueue(const LaunchArgs& la) override {
    if (a_.n == 0) return Status::ok();
    lrn_kernel<T><<<grid_for(a_.n), kBlock, 0, la.stream>>>(la.in<T>(0), la.out<T>(0), a_);
    KILN_CUDA_CHECK_LAUNCH("lrn");
    return Status::ok();
  }

 private:
  LrnArgs a_;
};

Result<std::unique_ptr<Kernel>> create_lrn(const KernelConfig& cfg) {
  const Operand& x = cfg.in(0);
  if (x.rank() < 3)
    return cfg.error(ErrorCode::kShapeMismatch,
                     "input of rank " + std::to_string(x.rank()) + " must have rank >= 3",
                     "LRN input is [N, C, D1, ..., Dn]");
  const int64_t size = cfg.node.attr_i("size", 0);
  if (size < 1)
    return cfg.error(ErrorCode::kOnnxBadAttribute, "size must be a positive integer",
                     "LRN requires the 'size' attribute");
  LrnArgs a;
  a.n = x.numel();
  a.c = x.dims[1] ? x.dims[1] : 1;
  int64_t plane = 1;
  for (size_t d = 2; d < x.rank(); ++d) plane *= x.dims[d];
  a.cdiv = x.layout == Layout::kNhwc ? 1 : (plane ? plane : 1);
  a.before = (size - 1) / 2;
  a.after = size - 1 - a.before;
  a.alpha_over_size = cfg.node.attr_f("alpha", 1e-4f) / static_cast<double>(size);
  a.beta = cfg.node.attr_f("beta", 0.75f);
  a.bias = cfg.node.attr_f("bias", 1.0f);
  std::unique_ptr<Kernel> k;
  Status st = dispatch<KILN_FLOAT_TYPES>(x.dtype, cfg, [&](auto t) -> Status {
    k.reset(new LrnKernel<decltype(t)>(a));
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  return Result<std::unique_ptr<Kernel>>(std::move(k));
}

// ---- LpNormalization, MeanVarianceNormalization: reduce, then apply ------------------------

/// L1 or L2 norm as a reducer (Out: the norm in float / double).
template <typename T>
struct NormReduce {
  using F = float_acc_t<T>;
  using In = T;
  using Acc = F;
  using Out = F;
  bool l1 = false;
  __device__ Acc init() const { return F(0); }
  __device__ __forceinline__ void step(Acc& a, T v, int64_t) const {
    const F x = static_cast<F>(to_compute(v));
    a += l1 ? fabs(x) : x * x;
  }
  __device__ __forceinline__ void combine(Acc& a, const Acc& b) const { a += b; }
  __device__ __forceinline__ F finish(const Acc& a) const { return l1 ? a : dev_sqrt(a); }
};

/// Mean and sqrt(variance) + 1e-9 of a group.
template <typename F>
struct MeanStd {
  F mean, denom;
};

/// Welford / Chan moments as a reducer (MeanVarianceNormalization).
template <typename T>
struct MomentsReduce {
  using F = float_acc_t<T>;
  using In = T;
  struct Acc {
    F n, mean, m2;
  };
  using Out = MeanStd<F>;
  __device__ Acc init() const { return Acc{F(0), F(0), F(0)}; }
  __device__ __forceinline__ void step(Acc& a, T v, int64_t) const {
    const F x = static_cast<F>(to_compute(v));
    a.n += F(1);
    const F d = x - a.mean;
    a.mean += d / a.n;
    a.m2 += d * (x - a.mean);
  }
  __device__ __forceinline__ void combine(Acc& a, const Acc& b) const {
    if (b.n == F(0)) return;
    if (a.n == F(0)) {
      a = b;
      return;
    }
    const F n = a.n + b.n, d = b.mean - a.mean;
    a.mean += d * (b.n / n);
    a.m2 += b.m2 + d * d * (a.n * (b.n / n));
    a.n = n;
  }
  __device__ __forceinline__ Out finish(const Acc& a) const {
    const F var = a.n > F(0) ? a.m2 / a.n : F(0);
    return Out{a.n > F(0) ? a.mean : F(0), dev_sqrt(var) + F(1e-9)};  // spec: std + 1e-9
  }
};

/// y = x / norm (0 for a zero norm) from a NormReduce result.
template <typename T>
struct LpApply {
  using F = float_acc_t<T>;
  __device__ __forceinline__ T operator()(T x, F norm) const {
    const F r = norm == F(0) ? F(0) : static_cast<F>(to_compute(x)) / norm;
    return from_compute<T>(static_cast<compute_t<T>>(r));
  }
};
/// y = (x - mean) / (std + 1e-9) from a MomentsReduce result.
template <typename T>
struct MvnApply {
  using F = float_acc_t<T>;
  __device__ __forceinline__ T operator()(T x, MeanStd<F> s) const {
    return from_compute<T>(
        static_cast<compute_t<T>>((static_cast<F>(to_compute(x)) - s.mean) / s.denom));
  }
};

/// y[i] = fn(x[i], stats[group of i]); the group index is gidx.offset(i).
template <typename T, typename S, typename Fn>
__global__ void apply_group_stats_kernel(const T* __restrict__ x, T* __restrict__ y,
                                         const S* __restrict__ stats, StridedIndex gidx,
                                         int64_t n, Fn fn) {
  KILN_GRID_STRIDE_LOOP(i, n) y[i] = fn(x[i], stats[gidx.offset(i)]);
}

/// Maps an element of a tensor of `dims` to its group (the index with the `mask`ed dims
/// dropped), after merging adjacent dims of the same role. False when too many groups.
bool group_index(const std::vector<int64_t>& dims, const std::vector<bool>& mask,
                 StridedIndex& out) {
  std::vector<int64_t> sizes;
  std::vector<bool> red;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 1) continue;
    if (!sizes.empty() && red.back() == mask[d])
      sizes.back() *= dims[d];
    else {
      sizes.push_back(dims[d]);
      red.push_back(mask[d]);
    }
  }
  if (sizes.size() > static_cast<size_t>(kMaxRank)) return false;
  std::vector<int64_t> strides(sizes.size(), 0);
  int64_t g = 1;
  for (size_t d = sizes.size(); d-- > 0;)
    if (!red[d]) {
      strides[d] = g;
      g *= sizes[d];
    }
  out = make_index(sizes, strides);
  return true;
}

/// Reduces x over `mask` with R into per-group statistics in the workspace, then maps
/// every element through Apply.
template <typename R, typename Apply>
class GroupStatsKernel final : public Kernel {
  using T = typename R::In;
  using S = typename R::Out;

 public:
  GroupStatsKernel(const R& rd, const ReducePlan& plan, const StridedIndex& gidx, int64_t n,
                   const char* tactic)
      : rd_(rd), plan_(plan), gidx_(gidx), n_(n), tactic_(tactic) {}
  size_t workspace_bytes() const override {
    return stats_bytes() + reduce_workspace_bytes(plan_, sizeof(typename R::Acc));
  }
  std::string tactic() const override { return tactic_; }
  Status enqueue(const LaunchArgs& a) override {
    if (n_ == 0) return Status::ok();
    S* stats = static_cast<S*>(a.workspace);
    void* partial = static_cast<char*>(a.workspace) + stats_bytes();
    KILN_RETURN_IF_ERROR(launch_reduce(plan_, rd_, a.in<T>(0), stats, partial, a.stream));
    apply_group_stats_kernel<T, S, Apply><<<grid_for(n_), kBlock, 0, a.stream>>>(
        a.in<T>(0), a.out<T>(0), stats, gidx_, n_, Apply{});
    KILN_CUDA_CHECK_LAUNCH("apply_group_stats");
    return Status::ok();
  }

 private:
  size_t stats_bytes() const { return (plan_.outputs * sizeof(S) + 255) / 256 * 256; }
  R rd_;
  ReducePlan plan_;
  StridedIndex gidx_;
  int64_t n_;
  const char* tactic_;
};

template <template <typename> class Reducer, template <typename> class Apply, typename Setup>
Result<std::unique_ptr<Kernel>> make_group_stats(const KernelConfig& cfg,
                                                 const std::vector<bool>& mask,
                                                 const char* tactic, Setup setup) {
  const Operand& x = cfg.in(0);
  if (x.layout != Layout::kRowMajor) return cfg.unsupported("channels-last input");
  StridedIndex gidx;
  if (!group_index(x.dims, mask, gidx))
    return cfg.unsupported("more than " + std::to_string(kMaxRank) + " dim groups");
  std::unique_ptr<Kernel> k;
  Status st = dispatch<KILN_FLOAT_TYPES>(x.dtype, cfg, [&](auto t) -> Status {
    using T = decltype(t);
    Reducer<T> rd;
    setup(rd);
    ReducePlan plan;
    if (!make_reduce_plan(x.dims, mask, has_fast_reduce_v<T>, cfg.res.sm_count, plan))
      return cfg.unsupported("more than " + std::to_string(kMaxRank) + " dim groups");
    k.reset(new GroupStatsKernel<Reducer<T>, Apply<T>>(rd, plan, gidx, x.numel(), tactic));
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  return Result<std::unique_ptr<Kernel>>(std::move(k));
}

Result<std::unique_ptr<Kernel>> create_lp_norm(const KernelConfig& cfg) {
  const int64_t p = cfg.node.attr_i("p", 2);
  if (p != 1 && p != 2)
    return cfg.error(ErrorCode::kOnnxBadAttribute, "p must be 1 or 2, got " + std::to_string(p),
                     "LpNormalization supports the L1 and L2 norms only");
  const int64_t rank = static_cast<int64_t>(cfg.in(0).rank());
  const int64_t a = cfg.node.attr_i("axis", -1);
  const int64_t axis = a < 0 ? a + rank : a;
  if (axis < 0 || axis >= rank)
    return cfg.error(ErrorCode::kBadAxis, "axis " + std::to_string(a) + " is out of range",
                     "axis must be in [-rank, rank-1]");
  std::vector<bool> mask(rank, false);
  mask[axis] = true;
  return make_group_stats<NormReduce, LpApply>(cfg, mask, "kiln:lp_norm",
                                               [&](auto& rd) { rd.l1 = p == 1; });
}

Result<std::unique_ptr<Kernel>> create_mvn(const KernelConfig& cfg) {
  const int64_t rank = static_cast<int64_t>(cfg.in(0).rank());
  std::vector<bool> mask(rank, false);
  for (int64_t a : cfg.node.attr_ints("axes", {0, 2, 3})) {
    const int64_t ax = a < 0 ? a + rank : a;
    if (ax < 0 || ax >= rank)
      return cfg.error(ErrorCode::kBadAxis, "axis " + std::to_string(a) + " is out of range",
                       "MeanVarianceNormalization axes default to [0, 2, 3] (4-D input)");
    mask[ax] = true;
  }
  return make_group_stats<MomentsReduce, MvnApply>(cfg, mask, "kiln:mvn", [](auto&) {});
}

}  // namespace

KILN_REGISTER_CUDA_KERNELS(normalization) {
  reg.add({.op_type = "LayerNormalization", .create = create_layer_norm});
  reg.add({.op_type = "InstanceNormalization", .create = create_channel_norm<false>});
  reg.add({.op_type = "GroupNormalization", .create = create_channel_norm<true>});
  reg.add({.op_type = "BatchNormalization", .create = create_batch_norm, .nhwc = true});
  reg.add({.op_type = "LRN", .create = create_lrn});
  reg.add({.op_type = "LpNormalization", .create = create_lp_norm});
  reg.add({.op_type = "MeanVarianceNormalization", .create = create_mvn});
}

}  // namespace kiln::cuda
