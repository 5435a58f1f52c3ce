// GPU kernels of the broadcasting pointwise ops with several inputs (ONNX Operators.md,
// Broadcasting.md): arithmetic (Pow, Mod; Add, Sub, Mul and Div on integer types, whose
// float versions are in binary_arith.cu), bitwise (BitwiseAnd/Or/Xor,
// BitShift), comparisons (Equal, Less, LessOrEqual, Greater, GreaterOrEqual) and logic
// (And, Or, Xor) with bool output, PRelu, Where, and the variadic Max, Min, Sum, Mean.
//
// Functors are the device twins of the CPU reference's (src/ops/binary_arith.cc,
// bitwise.cc, compare_logic.cc, activations.cc, variadic.cc): integer overflow wraps,
// integer division/remainder by zero gives 0, NaN propagates as there. Binary ops of
// opset < 7 honour the legacy broadcast/axis attributes (legacy_rhs_dims).
#include "cuda/kernels/binary.cuh"

namespace kiln::cuda {
namespace {

// ---- arithmetic (binary_arith.cc; Add/Sub/Mul/Div are in binary.cuh) ----------------------

/// fmod=0: the result takes the divisor's sign (Python %); fmod=1: C fmod / truncated
/// remainder. Integer remainder by zero gives 0.
struct ModOp {
  bool c_fmod;
  explicit ModOp(const ir::Node& n) : c_fmod(n.attr_i("fmod", 0) != 0) {}
  template <typename C> __device__ C operator()(C x, C y) const {
    if constexpr (std::is_floating_point_v<C>) {
      C r = dmath::fmod(x, y);
      if (c_fmod) return r;
      if (r != C(0) && ((r < C(0)) != (y < C(0)))) r += y;
      return r == C(0) ? dmath::copysign(C(0), y) : r;
    } else {
      if (y == 0) return C(0);
      if constexpr (std::is_signed_v<C>) {
        if (y == C(-1)) return C(0);  // avoids the INT_MIN % -1 trap
        C r = static_cast<C>(x % y);
        if (!c_fmod && r != 0 && ((r < 0) != (y < 0))) r = static_cast<C>(r + y);
        return r;
      } else {
        return static_cast<C>(x % y);
      }
    }
  }
};

/// Integer power by squaring, wrapping on overflow; negative exponents give the truncated
/// real result (0 unless |base| == 1).
template <typename C, typename E>
__device__ C int_pow(C base, E e) {
  if constexpr (std::is_signed_v<E>) {
    if (e < 0) {
      if (base == C(1)) return C(1);
      if constexpr (std::is_signed_v<C>)
        if (base == C(-1)) return (e % 2 == 0) ? C(1) : C(-1);
      return C(0);
    }
  }
  using U = wrap_t<C>;
  U result = 1, b = static_cast<U>(base);
  uint64_t n = static_cast<uint64_t>(e);
  while (n) {
    if (n & 1u) result = static_cast<U>(result * b);
    b = static_cast<U>(b * b);
    n >>= 1;
  }
  return static_cast<C>(result);
}

/// Pow: output of the base's type, exponent of any numeric type (Pow-12+). f32 ** f32
/// (also for f16/bf16 operands, which compute in f32) uses powf, other float mixes pow in
/// f64.
struct PowOp {
  template <typename CA, typename CB> __device__ CA operator()(CA x, CB y) const {
    if constexpr (std::is_integral_v<CA> && std::is_integral_v<CB>) {
      return int_pow(x, y);
    } else if constexpr (std::is_integral_v<CA>) {
      return float_to_int<CA>(dmath::pow(static_cast<double>(x), static_cast<double>(y)));
    } else if constexpr (std::is_same_v<CA, float> && std::is_same_v<CB, float>) {
      return dmath::pow(x, y);
    } else {
      return static_cast<CA>(dmath::pow(static_cast<double>(x), static_cast<double>(y)));
    }
  }
};

// ---- bitwise (bitwise.cc) -------------------------------------------------------------------

/// A stateless binary functor returning EXPR of compute-type arguments a and b.
#define KILN_BINARY_FN(NAME, RET, EXPR)                     \
  struct NAME {                                             \
    template <typename C>                                   \
    __device__ RET operator()(C a, C b) const {             \
      return EXPR;                                          \
    }                                                       \
  };
KILN_BINARY_FN(BitAnd, C, static_cast<C>(a & b))
KILN_BINARY_FN(BitOr, C, static_cast<C>(a | b))
KILN_BINARY_FN(BitXor, C, static_cast<C>(a ^ b))

/// Unsigned shifts per BitShift-11; signed ones per BitShift-28 (arithmetic right shift;
/// amounts < 0 or >= the bit width give the sign fill), so no shift is undefined.
struct BitShift {
  bool left;
  explicit BitShift(const ir::Node& n) : left(n.attr_s("direction", "") == "LEFT") {}
  template <typename C> __device__ C operator()(C x, C y) const {
    using U = std::make_unsigned_t<C>;
    constexpr int64_t kBits = 8 * sizeof(C);
    const bool out_of_range =
        (std::is_signed_v<C> && y < 0) || static_cast<uint64_t>(y) >= kBits;
    if (left)
      return out_of_range ? C(0) : static_cast<C>(static_cast<U>(static_cast<U>(x) << y));
    if (out_of_range) return (std::is_signed_v<C> && x < 0) ? static_cast<C>(-1) : C(0);
    return static_cast<C>(x >> y);  // arithmetic for signed C
  }
};

// ---- comparisons and logic (compare_logic.cc) -------------------------------------------------

KILN_BINARY_FN(EqualOp, bool, a == b)
KILN_BINARY_FN(LessOp, bool, a < b)
KILN_BINARY_FN(GreaterOp, bool, a > b)
KILN_BINARY_FN(LessOrEqualOp, bool, a <= b)
KILN_BINARY_FN(GreaterOrEqualOp, bool, a >= b)
KILN_BINARY_FN(AndOp, bool, a && b)
KILN_BINARY_FN(OrOp, bool, a || b)
KILN_BINARY_FN(XorOp, bool, a != b)

struct WhereOp {
  template <typename C> __device__ C operator()(bool c, C x, C y) const { return c ? x : y; }
};

// ---- PRelu (activations.cc) -------------------------------------------------------------------

struct PReluOp {
  template <typename C> __device__ C operator()(C x, C s) const {
    if constexpr (std::is_unsigned_v<C>) return x;
    else if constexpr (std::is_integral_v<C>)  // wraps on overflow, like numpy
      return x < C(0) ? static_cast<C>(static_cast<wrap_t<C>>(s) * static_cast<wrap_t<C>>(x))
                      : x;
    else return x < C(0) ? s * x : x;
  }
};

// ---- variadic (variadic.cc) -------------------------------------------------------------------

struct MaxOp {
  template <typename C> __device__ C operator()(C a, C b) const {
    if constexpr (std::is_floating_point_v<C>)
      if (dmath::isnan(b)) return b;  // numpy.maximum propagates NaN from either side
    return a < b ? b : a;
  }
};
struct MinOp {
  template <typename C> __device__ C operator()(C a, C b) const {
    if constexpr (std::is_floating_point_v<C>)
      if (dmath::isnan(b)) return b;
    return b < a ? b : a;
  }
};
KILN_BINARY_FN(SumOp, C, static_cast<C>(a + b))
#undef KILN_BINARY_FN

/// One launch of a variadic op: acc = (accumulate ? out : in[0]), folded with the other
/// inputs in order, in the compute type; divided by mean_count when nonzero (the last launch
/// of Mean). Inputs k < count are live.
template <typename T, typename Op>
__global__ void __launch_bounds__(kBlock)
    variadic_kernel(Op op, T* out, int64_t n, PwPtrs<kMaxVariadicInputs> in, int count,
                    bool accumulate, int mean_count, PwIndex<kMaxVariadicInputs> ix) {
  using C = compute_t<T>;
  pw_for_each<true>(n, ix, count, [&](auto i, const auto& off) {
    C acc = accumulate ? to_compute(out[i])
                       : to_compute(static_cast<const T*>(in.p[0])[off[0]]);
#pragma unroll
    for (int k = 0; k < kMaxVariadicInputs; ++k)
      if (k < count && (accumulate || k > 0))
        acc = op(acc, to_compute(static_cast<const T*>(in.p[k])[off[k]]));
    if (mean_count) acc = acc / static_cast<C>(mean_count);
    out[i] = from_compute<T>(acc);
  });
}

/// Max/Min/Sum/Mean over any number of inputs: kMaxVariadicInputs per launch, later
/// launches fold into the output (for f16/bf16 that rounds the running value once per
/// launch; the CPU rounds once overall).
template <typename T, typename Op>
class VariadicKernel final : public Kernel {
 public:
  struct Launch {
    std::vector<int> slots;
    PwIndex<kMaxVariadicInputs> ix;
  };
  VariadicKernel(int64_t n, std::vector<Launch> launches, int mean_count)
      : n_(n), launches_(std::move(launches)), mean_count_(mean_count) {}

  std::string tactic() const override {
    return "kiln:variadic(" + std::to_string(launches_.size()) + " launch" +
           (launches_.size() == 1 ? ")" : "es)");
  }

  Status enqueue(const LaunchArgs& a) override {
    if (n_ == 0) return Status::ok();
    for (size_t l = 0; l < launches_.size(); ++l) {
      const Launch& launch = launches_[l];
      PwPtrs<kMaxVariadicInputs> in{};
      for (size_t k = 0; k < launch.slots.size(); ++k) in.p[k] = a.inputs[launch.slots[k]];
      const bool last = l + 1 == launches_.size();
      variadic_kernel<T, Op><<<grid_for(n_), kBlock, 0, a.stream>>>(
          Op{}, a.out<T>(0), n_, in, static_cast<int>(launch.slots.size()), l > 0,
          last ? mean_count_ : 0, launch.ix);
      KILN_CUDA_CHECK_LAUNCH("variadic_kernel");
    }
    return Status::ok();
  }

 private:
  int64_t n_;
  std::vector<Launch> launches_;
  int mean_count_;
};

template <typename Op, uint32_t Set, bool kMean>
KernelResult create_variadic(const KernelConfig& cfg) {
  std::vector<int> present;
  for (size_t k = 0; k < cfg.inputs.size(); ++k)
    if (cfg.has_input(k)) present.push_back(static_cast<int>(k));
  if (present.empty()) return cfg.error(ErrorCode::kOnnxBadInputs, "no inputs");
  for (int s : present)
    if (cfg.in(s).dtype != cfg.out(0).dtype)
      return cfg.error(ErrorCode::kTypeMismatch, "inputs must have the output's dtype");
  return dispatch_set<Set>(cfg.out(0).dtype, cfg, [&](auto t) -> KernelResult {
    using T = decltype(t);
    using Launch = typename VariadicKernel<T, Op>::Launch;
    std::vector<Launch> launches;
    // Up to kMaxVariadicInputs inputs per launch; later launches also read the output.
    for (size_t first = 0; first < present.size();) {
      const size_t take = std::min<size_t>(present.size() - first, kMaxVariadicInputs);
      Launch l;
      l.slots.assign(present.begin() + first, present.begin() + first + take);
      std::vector<std::vector<int64_t>> dims;
      for (int s : l.slots) dims.push_back(cfg.in(s).dims);
      KILN_ASSIGN_OR_RETURN(BroadcastPlan plan, plan_broadcast(cfg, dims, pointwise_layouts(cfg, l.slots),
                                                               cfg.out(0)));
      l.ix = make_pw_index<kMaxVariadicInputs>(plan, 0, take);
      launches.push_back(std::move(l));
      first += take;
    }
    return std::unique_ptr<Kernel>(std::make_unique<VariadicKernel<T, Op>>(
        cfg.out(0).numel(), std::move(launches),
        kMean ? static_cast<int>(present.size()) : 0));
  });
}

// ---- factories ------------------------------------------------------------------------------

/// Pow: base of any numeric type, exponent of any numeric type; mixed-type pairs (rare)
/// only get the strided kernel.
KernelResult create_pow(const KernelConfig& cfg) {
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> b_dims, legacy_rhs_dims(cfg));
  return dispatch_set<kPwNumeric>(cfg.in(0).dtype, cfg, [&](auto a) {
    using A = decltype(a);
    return dispatch_set<kPwNumeric>(cfg.in(1).dtype, cfg, [&](auto b) {
      using B = decltype(b);
      constexpr unsigned kPaths = std::is_same_v<A, B> ? kPathAll : kPathBroadcast;
      return make_pointwise<kPaths, A, A, B>(cfg, PowOp{}, {0, 1}, "pow",
                                             {cfg.in(0).dims, b_dims});
    });
  });
}

/// PRelu: slope broadcast to X (unidirectional). Before opset 7 a 1-D slope of X's channel
/// count is per channel (as PyTorch exported it): numpy alignment sees it as [C, 1, ..., 1].
KernelResult create_prelu(const KernelConfig& cfg) {
  const Operand& x = cfg.in(0);
  std::vector<int64_t> slope = cfg.in(1).dims;
  if (cfg.opset() < 7 && x.rank() >= 3 && slope.size() == 1 && slope[0] != 1 &&
      slope[0] == x.dims[1]) {
    slope.assign(x.rank() - 1, 1);
    slope[0] = x.dims[1];
  }
  if (cfg.in(1).dtype != x.dtype)
    return cfg.error(ErrorCode::kTypeMismatch, "slope must have X's dtype");
  return dispatch_set<kPwNumeric>(x.dtype, cfg, [&](auto t) {
    using T = decltype(t);
    return make_pointwise<kPathAll, T, T, T>(cfg, PReluOp{}, {0, 1}, "prelu", {x.dims, slope});
  });
}

KernelResult create_where(const KernelConfig& cfg) {
  if (cfg.in(0).dtype != DataType::kBool || cfg.in(1).dtype != cfg.in(2).dtype)
    return cfg.error(ErrorCode::kTypeMismatch,
                     "Where needs a bool condition and X, Y of one dtype");
  return dispatch_set<kPwAll>(cfg.in(1).dtype, cfg, [&](auto t) {
    using T = decltype(t);
    return make_pointwise<kPathAll, T, bool, T, T>(cfg, WhereOp{}, {0, 1, 2}, "where");
  });
}

struct BinaryEntry {
  const char* op_type;
  KernelFactory create;
};

constexpr uint32_t kNum = kPwNumeric;

// Dtype sets are the CPU entries' (f8e4m3 aside).
// clang-format off
const BinaryEntry kEntries[] = {
    {"Mod", create_binary<ModOp, kNum>},
    {"Pow", create_pow},
    {"BitwiseAnd", create_binary<BitAnd, kPwInt>},
    {"BitwiseOr", create_binary<BitOr, kPwInt>},
    {"BitwiseXor", create_binary<BitXor, kPwInt>},
    {"BitShift", create_binary<BitShift, kPwInt>},
    {"Equal", create_binary<EqualOp, kNum | kPwBool, true>},
    {"Less", create_binary<LessOp, kNum, true>},
    {"Greater", create_binary<GreaterOp, kNum, true>},
    {"LessOrEqual", create_binary<LessOrEqualOp, kNum, true>},
    {"GreaterOrEqual", create_binary<GreaterOrEqualOp, kNum, true>},
    {"And", create_binary<AndOp, kPwBool, true>},
    {"Or", create_binary<OrOp, kPwBool, true>},
    {"Xor", create_binary<XorOp, kPwBool, true>},
    {"PRelu", create_prelu},
    {"Where", create_where},
    {"Max", create_variadic<MaxOp, kNum, false>},
    {"Min", create_variadic<MinOp, kNum, false>},
    {"Sum", create_variadic<SumOp, kPwFloat, false>},
    {"Mean", create_variadic<SumOp, kPwFloat, true>},
};
// clang-format on

}  // namespace

KernelResult create_int_arith(const KernelConfig& cfg) {
  const std::string& op = cfg.node.op_type;
  if (op == "Add") return create_binary<AddOp, kPwInt>(cfg);
  if (op == "Sub") return create_binary<SubOp, kPwInt>(cfg);
  if (op == "Mul") return create_binary<MulOp, kPwInt>(cfg);
  if (op == "Div") return create_binary<DivOp, kPwInt>(cfg);
  return cfg.error(ErrorCode::kInternal, "create_int_arith called for " + op);
}

KILN_REGISTER_CUDA_KERNELS(binary) {
  for (const BinaryEntry& e : kEntries) reg.add({.op_type = e.op_type, .create = e.create, .nhwc = true});
}

}  // namespace kiln::cuda
