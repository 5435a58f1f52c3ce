// Matrix products on the CUDA backend: MatMul, Gemm, Einsum (when it is one GEMM),
// MatMulInteger and kiln's FusedMatMul.
//
// Float products run on cuBLASLt. cuBLASLt is column-major, so the usual trick computes a
// row-major C as Cᵀ = Bᵀ·Aᵀ (a row-major matrix read column-major is its transpose); this
// also puts a bias over C's columns on Dᵀ's rows, where cuBLASLt's BIAS epilogue adds it.
// Batch dims are canonicalised first (cublaslt_gemm.h, simplify_batch): a B shared by every
// batch folds the batch into M (one tall GEMM, the BERT case), one remaining dim becomes
// cuBLASLt's strided batch (stride 0 for a broadcast operand), and any others become a
// precomputed list of launches. Descriptors, layouts and the algorithm (from the heuristic)
// are made in the factory; enqueue only launches.
//
// Epilogues: Gemm's C is passed to cuBLASLt as is when it has the output's shape, becomes
// the BIAS epilogue when it is a row vector and beta = 1, and is otherwise broadcast into the
// output first (beta·C) so the GEMM accumulates onto it. FusedMatMul's bias + Relu / tanh-GELU
// are cuBLASLt epilogues; the erf GELU (cuBLASLt only has the tanh form), and anything the
// heuristic finds no fused algorithm for, runs as a small kernel after the GEMM.
//
// Integer products (wrap-around semantics, and MatMulInteger's zero points) use the tiled
// kernel of kernels/gemm_util.cu.
#include "cuda/cublaslt_gemm.h"

#include <algorithm>
#include <array>
#include <climits>
#include <memory>
#include <numeric>

#include "cuda/conv_nhwc.h"
#include "cuda/cuda_check.h"
#include "cuda/kernel.h"
#include "cuda/tc_gemm.h"

namespace kiln::cuda {
namespace {

/// cuBLASLt workspace offered to the heuristic (split-K and stream-K algorithms use it).
constexpr size_t kMaxWorkspace = 32u << 20;
constexpr int kRequestedAlgos = 8;
/// Base alignment of tensors the primary algorithm is chosen for: plan weights and the
/// memory planner's activations are 256-byte aligned. A second algorithm chosen for
/// element alignment serves launches whose pointers are not.
constexpr size_t kBaseAlignment = 256;
/// Most separate cuBLASLt launches one node may need (broadcast batch patterns).
constexpr int64_t kMaxLaunches = 1 << 16;

// ---- cuBLASLt descriptors (RAII) ---------------------------------------------------------

struct LtDestroy {
  void operator()(cublasLtMatmulDescOpaque_t* p) const { cublasLtMatmulDescDestroy(p); }
  void operator()(cublasLtMatrixLayoutOpaque_t* p) const { cublasLtMatrixLayoutDestroy(p); }
  void operator()(cublasLtMatmulPreferenceOpaque_t* p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using MatmulDesc = std::unique_ptr<cublasLtMatmulDescOpaque_t, LtDestroy>;
using MatrixLayout = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, LtDestroy>;
using Preference = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, LtDestroy>;

/// cuBLASLt types of a kiln float dtype: FP32 accumulation for every float type except
/// f64; TF32 tensor cores for f32 only when the build allows them.
struct LtTypes {
  cudaDataType_t data;
  cublasComputeType_t compute;
  cudaDataType_t scale;
  const char* name;
};

std::optional<LtTypes> lt_types(DataType dt, bool allow_tf32) {
  switch (dt) {
    case DataType::kF32:
      return allow_tf32 ? LtTypes{CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F, "f32_tf32"}
                        : LtTypes{CUDA_R_32F, CUBLAS_COMPUTE_32F, CUDA_R_32F, "f32"};
    case DataType::kF16:
      return LtTypes{CUDA_R_16F, CUBLAS_COMPUTE_32F, CUDA_R_32F, "f16_f32acc"};
    case DataType::kBF16:
      return LtTypes{CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F, "bf16_f32acc"};
    case DataType::kF64:
      return LtTypes{CUDA_R_64F, CUBLAS_COMPUTE_64F, CUDA_R_64F, "f64"};
    default:
      return std::nullopt;
  }
}

// ---- geometry: the problem in cuBLASLt's column-major terms --------------------------------

/// A cuBLASLt operand: the stored column-major matrix (rows × cols, leading dim ld) and
/// the op that turns it into the operand.
struct LtOperand {
  cublasOperation_t op = CUBLAS_OP_N;
  int64_t rows = 1, cols = 1, ld = 1;
};

/// An r × c input whose element (i, j) is at i·xr + j·xc. Column-major needs unit stride
/// down a column (op N) or along a row (stored transposed, op T); a dim of size 1 leaves
/// its stride free.
std::optional<LtOperand> lt_input(int64_t r, int64_t c, int64_t xr, int64_t xc) {
  if (r == 1 && c == 1) return LtOperand{CUBLAS_OP_N, 1, 1, 1};
  if (c == 1) return xr == 1 ? LtOperand{CUBLAS_OP_N, r, 1, r} : LtOperand{CUBLAS_OP_T, 1, r, xr};
  if (r == 1) return xc == 1 ? LtOperand{CUBLAS_OP_T, c, 1, c} : LtOperand{CUBLAS_OP_N, 1, c, xc};
  if (xr == 1 && xc >= r) return LtOperand{CUBLAS_OP_N, r, c, xc};
  if (xc == 1 && xr >= c) return LtOperand{CUBLAS_OP_T, c, r, xr};
  return std::nullopt;
}

/// The output D has no op (cuBLASLt has no transposed D): it must be column-major.
std::optional<LtOperand> lt_output(int64_t r, int64_t c, int64_t xr, int64_t xc) {
  if (c == 1 && (xr == 1 || r == 1)) return LtOperand{CUBLAS_OP_N, r, 1, std::max<int64_t>(r, 1)};
  if (r == 1) return LtOperand{CUBLAS_OP_N, 1, c, std::max<int64_t>(xc, 1)};
  if (xr == 1 && xc >= r) return LtOperand{CUBLAS_OP_N, r, c, xc};
  return std::nullopt;
}

/// D = op(LA)·op(LB): with `transposed`, D = Cᵀ (n × m), LA = Bᵀ, LB = Aᵀ; else D = C,
/// LA = A, LB = B (only Einsum outputs stored column-major need that).
struct LtGeometry {
  bool transposed = true;
  LtOperand la, lb, d;
};

std::optional<LtGeometry> lt_geometry(const GemmProblem& p) {
  auto td = lt_output(p.n, p.m, p.c_cs, p.c_rs);
  auto ta = lt_input(p.n, p.k, p.b_cs, p.b_rs);
  auto tb = lt_input(p.k, p.m, p.a_cs, p.a_rs);
  if (td && ta && tb) return LtGeometry{true, *ta, *tb, *td};
  auto d = lt_output(p.m, p.n, p.c_rs, p.c_cs);
  auto a = lt_input(p.m, p.k, p.a_rs, p.a_cs);
  auto b = lt_input(p.k, p.n, p.b_rs, p.b_cs);
  if (d && a && b) return LtGeometry{false, *a, *b, *d};
  return std::nullopt;
}

bool fits_int32(const LtOperand& o) {
  return o.rows <= INT32_MAX && o.cols <= INT32_MAX && o.ld <= INT32_MAX;
}

/// How the batch dims run: the largest as cuBLASLt's strided batch, the others as separate
/// launches at precomputed element offsets (problem roles A, B, C).
struct BatchPlan {
  int32_t count = 1;
  int64_t a = 0, b = 0, c = 0;
  std::vector<std::array<int64_t, 3>> launches;
  bool zero_stride() const { return count > 1 && (a == 0 || b == 0); }
};

/// The batch plan; with !zero_strides, a dim that broadcasts an operand (stride 0) is
/// never the strided one.
std::optional<BatchPlan> plan_batch(const GemmProblem& p, bool zero_strides) {
  const auto& dims = p.batch;
  size_t chosen = dims.size();
  for (size_t i = 0; i < dims.size(); ++i)
    if ((zero_strides || (dims[i].a != 0 && dims[i].b != 0)) &&
        (chosen == dims.size() || dims[i].size > dims[chosen].size))
      chosen = i;
  int64_t launches = 1;
  for (size_t i = 0; i < dims.size(); ++i)
    if (i != chosen) launches *= dims[i].size;
  BatchPlan bp;
  if (chosen < dims.size()) {
    if (dims[chosen].size > INT32_MAX) return std::nullopt;
    bp.count = static_cast<int32_t>(dims[chosen].size);
    bp.a = dims[chosen].a;
    bp.b = dims[chosen].b;
    bp.c = dims[chosen].c;
  }
  if (launches > kMaxLaunches) return std::nullopt;
  std::vector<int64_t> idx(dims.size(), 0);
  for (int64_t l = 0; l < launches; ++l) {
    std::array<int64_t, 3> off{0, 0, 0};
    for (size_t d = 0; d < dims.size(); ++d) {
      off[0] += idx[d] * dims[d].a;
      off[1] += idx[d] * dims[d].b;
      off[2] += idx[d] * dims[d].c;
    }
    bp.launches.push_back(off);
    for (size_t d = dims.size(); d-- > 0;) {
      if (d == chosen) continue;
      if (++idx[d] < dims[d].size) break;
      idx[d] = 0;
    }
  }
  return bp;
}

/// Largest power of two <= `base` dividing every byte offset a launch adds to a pointer.
uint32_t offset_alignment(size_t base, size_t elem, const std::vector<int64_t>& offsets) {
  size_t a = base;
  for (int64_t off : offsets)
    if (off != 0) a = std::gcd(a, static_cast<size_t>(off) * elem);
  return static_cast<uint32_t>(a);
}

bool aligned(const void* p, uint32_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

cublasLtEpilogue_t lt_epilogue(bool bias, GemmActivation act) {
  switch (act) {
    case GemmActivation::kRelu:
      return bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    case GemmActivation::kGeluTanh:
      return bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    default:
      return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  }
}

const char* activation_name(GemmActivation act) {
  switch (act) {
    case GemmActivation::kRelu:
      return "relu";
    case GemmActivation::kGeluErf:
      return "gelu_erf";
    case GemmActivation::kGeluTanh:
      return "gelu_tanh";
    case GemmActivation::kNone:
      break;
  }
  return "";
}

/// "bias", "relu", "bias_gelu_tanh", ...: an epilogue in tactic names.
std::string epilogue_name(bool bias, GemmActivation act) {
  std::string name = bias ? "bias" : "";
  if (act != GemmActivation::kNone) name += std::string(bias ? "_" : "") + activation_name(act);
  return name;
}

// ---- the cuBLASLt kernel ----------------------------------------------------------------

/// What runs around the GEMM, decided by the op's factory.
struct LtGemmSpec {
  DataType dt = DataType::kUndefined;
  GemmProblem problem;  ///< batch dims simplified
  int a_input = 0, b_input = 1;
  double alpha = 1.0, beta = 0.0;  ///< beta scales C
  /// Gemm's C: none, as cuBLASLt's C (output shape), as a BIAS epilogue (row vector and
  /// beta = 1), or broadcast into the output before the GEMM (anything else).
  enum class CMode { kNone, kDirect, kBias, kPrefill } c_mode = CMode::kNone;
  int c_input = -1;
  StridedIndex c_index{};  ///< kPrefill: output index → C element
  int bias_input = -1;     ///< FusedMatMul's bias (kBias: C), one value per output column
  int64_t row_len = 1;     ///< the output's last dim: the bias period
  GemmActivation act = GemmActivation::kNone;
};

class LtGemmKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> create(const KernelConfig& cfg, LtGemmSpec spec);

  size_t workspace_bytes() const override { return workspace_; }
  std::string tactic() const override { return tactic_; }
  TacticSource tactic_source() const override {
    return run_gemm_ ? TacticSource::kCublasLt : TacticSource::kKiln;
  }
  /// The primary (256-byte aligned) algorithm; empty when there is none to choose.
  std::string tactic_params() const override;
  Status enqueue(const LaunchArgs& a) override;
  /// tactic_params of every primary algorithm the heuristic offered, best first: the
  /// autotuner's candidates.
  const std::vector<std::string>& alternatives() const { return alternatives_; }

 private:
  /// Replaces the primary algorithm by cfg.tactic's, after cuBLASLt checked it fits this
  /// problem. Errors: TacticUnavailable.
  Status replay_primary(const KernelConfig& cfg, cublasLtMatmulDesc_t desc);
  /// Builds descriptors and picks algorithms with epilogue `epi`; `found` = false when
  /// the heuristic has no algorithm for it.
  Status setup(const KernelConfig& cfg, cublasLtEpilogue_t epi, bool with_bias, bool& found);

  LtGemmSpec s_;
  LtTypes types_{};
  size_t elem_ = 0;
  int64_t out_count_ = 0;
  bool run_gemm_ = false;  ///< false when K = 0 (only C / zeros / epilogue)
  LtGeometry geo_;
  BatchPlan batch_;
  MatmulDesc desc_;
  MatrixLayout la_, lb_, ld_;
  /// [0] for kBaseAlignment-aligned tensors, [1] for element-aligned ones.
  std::array<cublasLtMatmulAlgo_t, 2> algo_{};
  std::array<bool, 2> have_algo_{};
  std::array<std::array<uint32_t, 4>, 2> align_{};  ///< per algo: LA, LB, C, D bytes
  bool lt_bias_ = false;                            ///< bias added by the cuBLASLt epilogue
  GemmActivation lt_act_ = GemmActivation::kNone;   ///< activation of the cuBLASLt epilogue
  bool post_bias_ = false;  ///< bias added by launch_bias_activation after the GEMM
  GemmActivation post_act_ = GemmActivation::kNone;
  size_t workspace_ = 0;
  std::vector<std::string> alternatives_;
  float alpha_f_ = 1.f, beta_f_ = 0.f;
  double alpha_d_ = 1.0, beta_d_ = 0.0;
  std::string tactic_;
};

Result<MatrixLayout> make_layout(cudaDataType_t type, const LtOperand& o, int32_t count,
                                 int64_t stride) {
  cublasLtMatrixLayout_t raw = nullptr;
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&raw, type, static_cast<uint64_t>(o.rows),
                                               static_cast<uint64_t>(o.cols), o.ld));
  MatrixLayout layout(raw);
  if (count > 1) {
    KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(raw, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                       &count, sizeof(count)));
    KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
        raw, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return layout;
}

using Heuristics = std::vector<cublasLtMatmulHeuristicResult_t>;

/// The heuristic's algorithms that fit kMaxWorkspace, best first, for pointers aligned to
/// `align` (LA, LB, C, D); empty when it has none.
Result<Heuristics> pick_algos(cublasLtHandle_t h, cublasLtMatmulDesc_t desc,
                              cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                              cublasLtMatrixLayout_t ld, const std::array<uint32_t, 4>& align) {
  cublasLtMatmulPreference_t raw = nullptr;
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&raw));
  Preference pref(raw);
  const uint64_t ws = kMaxWorkspace;
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      raw, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const cublasLtMatmulPreferenceAttributes_t attrs[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i)
    KILN_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(raw, attrs[i], &align[i], sizeof(align[i])));
  cublasLtMatmulHeuristicResult_t res[kRequestedAlgos] = {};
  int count = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(h, desc, la, lb, ld, ld, raw, kRequestedAlgos, res, &count);
  // Layouts it cannot run (NOT_SUPPORTED, INVALID_VALUE) mean "no algorithm"; only a
  // broken handle or exhausted memory is an error.
  if (st == CUBLAS_STATUS_ALLOC_FAILED || st == CUBLAS_STATUS_NOT_INITIALIZED)
    KILN_CUBLAS_CHECK(st);
  Heuristics out;
  if (st != CUBLAS_STATUS_SUCCESS) return out;
  for (int i = 0; i < count; ++i)
    if (res[i].state == CUBLAS_STATUS_SUCCESS && res[i].workspaceSize <= kMaxWorkspace)
      out.push_back(res[i]);
  return out;
}

/// An algorithm as tactic params: "lt" and its 64 bytes in hex. cuBLASLt documents
/// cublasLtMatmulAlgo_t as plain data that may be stored and reused with the same
/// library version (the timing cache and the plan are tied to it).
std::string algo_params(const cublasLtMatmulAlgo_t& algo) {
  std::string s = "lt";
  char buf[17];
  for (uint64_t w : algo.data) {
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(w));
    s += buf;
  }
  return s;
}

std::optional<cublasLtMatmulAlgo_t> parse_algo_params(const std::string& p) {
  cublasLtMatmulAlgo_t algo{};
  constexpr size_t kWords = sizeof(algo.data) / sizeof(algo.data[0]);
  if (p.size() != 2 + 16 * kWords || p.compare(0, 2, "lt") != 0) return std::nullopt;
  for (size_t i = 0; i < kWords; ++i) {
    const std::string word = p.substr(2 + 16 * i, 16);
    if (word.find_first_not_of("0123456789abcdef") != std::string::npos) return std::nullopt;
    algo.data[i] = std::stoull(word, nullptr, 16);
  }
  return algo;
}

/// "algo<id>:tile<id>:stages<id>:splitk<n>" from the algorithm's configuration.
std::string algo_name(const cublasLtMatmulAlgo_t& algo) {
  int32_t id = -1, splitk = 1;
  uint32_t tile = 0, stages = 0;
  size_t written = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof(id), &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile),
                                       &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages,
                                       sizeof(stages), &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk,
                                       sizeof(splitk), &written);
  return "algo" + std::to_string(id) + ":tile" + std::to_string(tile) + ":stages" +
         std::to_string(stages) + ":splitk" + std::to_string(splitk);
}

Status LtGemmKernel::setup(const KernelConfig& cfg, cublasLtEpilogue_t epi, bool with_bias,
                           bool& found) {
  found = false;
  cublasLtMatmulDesc_t raw = nullptr;
  KILN_CUBLAS_CHECK(cublasLtMatmulDescCreate(&raw, types_.compute, types_.scale));
  desc_.reset(raw);
  const int32_t op_a = geo_.la.op, op_b = geo_.lb.op;
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(raw, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(raw, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(raw, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  // Problem roles → cuBLASLt roles: LA is B when transposed.
  const bool t = geo_.transposed;
  const int64_t sa = t ? batch_.b : batch_.a, sb = t ? batch_.a : batch_.b;
  KILN_ASSIGN_OR_RETURN(la_, make_layout(types_.data, geo_.la, batch_.count, sa));
  KILN_ASSIGN_OR_RETURN(lb_, make_layout(types_.data, geo_.lb, batch_.count, sb));
  KILN_ASSIGN_OR_RETURN(ld_, make_layout(types_.data, geo_.d, batch_.count, batch_.c));
  std::array<std::vector<int64_t>, 3> offsets;  // LA, LB, D
  for (const auto& off : batch_.launches) {
    offsets[0].push_back(off[t ? 1 : 0]);
    offsets[1].push_back(off[t ? 0 : 1]);
    offsets[2].push_back(off[2]);
  }
  if (batch_.count > 1) {
    offsets[0].push_back(sa);
    offsets[1].push_back(sb);
    offsets[2].push_back(batch_.c);
  }
  workspace_ = 0;
  for (int which = 0; which < 2; ++which) {
    const size_t base = which == 0 ? kBaseAlignment : elem_;
    auto& al = align_[which];
    al = {offset_alignment(base, elem_, offsets[0]), offset_alignment(base, elem_, offsets[1]),
          offset_alignment(base, elem_, offsets[2]), offset_alignment(base, elem_, offsets[2])};
    if (with_bias) {
      // The heuristic judges the bias alignment by the pointer value; the real pointer is
      // set per launch (and must then be as aligned as this stand-in).
      const void* stand_in = reinterpret_cast<const void*>(static_cast<uintptr_t>(base));
      KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(raw, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                       &stand_in, sizeof(stand_in)));
    }
    KILN_ASSIGN_OR_RETURN(Heuristics h,
                          pick_algos(cfg.res.cublaslt, raw, la_.get(), lb_.get(), ld_.get(), al));
    have_algo_[which] = !h.empty();
    if (h.empty()) continue;
    algo_[which] = h[0].algo;
    workspace_ = std::max(workspace_, h[0].workspaceSize);
    if (which == 0) {
      alternatives_.clear();
      for (const auto& r : h) alternatives_.push_back(algo_params(r.algo));
      if (cfg.tactic) KILN_RETURN_IF_ERROR(replay_primary(cfg, raw));
    }
  }
  found = have_algo_[0] || have_algo_[1];
  return Status::ok();
}

std::string LtGemmKernel::tactic_params() const {
  return run_gemm_ && have_algo_[0] ? algo_params(algo_[0]) : std::string();
}

Status LtGemmKernel::replay_primary(const KernelConfig& cfg, cublasLtMatmulDesc_t desc) {
  std::optional<cublasLtMatmulAlgo_t> algo = parse_algo_params(*cfg.tactic);
  cublasLtMatmulHeuristicResult_t check{};
  if (!algo || cublasLtMatmulAlgoCheck(cfg.res.cublaslt, desc, la_.get(), lb_.get(), ld_.get(),
                                       ld_.get(), &*algo, &check) != CUBLAS_STATUS_SUCCESS ||
      check.workspaceSize > kMaxWorkspace)
    return cfg.error(ErrorCode::kTacticUnavailable,
                     "cuBLASLt cannot run the recorded algorithm '" + *cfg.tactic +
                         "' for this GEMM",
                     "the plan was built with another cuBLAS: rebuild it with this one");
  algo_[0] = *algo;
  workspace_ = std::max(workspace_, check.workspaceSize);
  return Status::ok();
}

Result<std::unique_ptr<Kernel>> LtGemmKernel::create(const KernelConfig& cfg, LtGemmSpec spec) {
  auto k = std::unique_ptr<LtGemmKernel>(new LtGemmKernel());
  auto types = lt_types(spec.dt, cfg.precision.allow_tf32);
  if (!types) return cfg.unsupported(std::string("dtype ") + dtype_name(spec.dt));
  k->types_ = *types;
  k->elem_ = dtype_size(spec.dt);
  k->s_ = std::move(spec);
  LtGemmSpec& s = k->s_;
  const GemmProblem& p = s.problem;
  k->out_count_ = p.output_count();
  k->alpha_f_ = static_cast<float>(s.alpha);
  k->alpha_d_ = s.alpha;
  k->run_gemm_ = p.k > 0 && k->out_count_ > 0;
  if (!k->run_gemm_) {
    // No products to sum: the output is beta·C (or 0) plus the epilogue.
    if (s.c_mode == LtGemmSpec::CMode::kDirect) s.c_mode = LtGemmSpec::CMode::kPrefill;
    if (s.c_mode == LtGemmSpec::CMode::kBias) {
      s.c_mode = LtGemmSpec::CMode::kPrefill;
      s.bias_input = -1;
    }
    k->post_bias_ = s.bias_input >= 0;
    k->post_act_ = s.act;
    k->tactic_ = std::string("kiln:gemm_k0_") + types->name;
    return std::unique_ptr<Kernel>(std::move(k));
  }
  if (!cfg.res.cublaslt)
    return cfg.error(ErrorCode::kInternal, "no cuBLASLt handle in the kernel resources",
                     "the CUDA context must create one before lowering GEMMs");
  auto geo = lt_geometry(p);
  if (!geo || !fits_int32(geo->la) || !fits_int32(geo->lb) || !fits_int32(geo->d))
    return cfg.unsupported("operand strides or sizes cuBLASLt cannot express");
  k->geo_ = *geo;
  // cuBLASLt's C is the output itself unless Gemm's C has the output's shape; beta = 1
  // accumulates onto a broadcast beta·C.
  const double lt_beta = s.c_mode == LtGemmSpec::CMode::kDirect    ? s.beta
                         : s.c_mode == LtGemmSpec::CMode::kPrefill ? 1.0
                                                                   : 0.0;
  k->beta_f_ = static_cast<float>(lt_beta);
  k->beta_d_ = lt_beta;
  // cuBLASLt's epilogue adds a bias of D's row count along Dᵀ's rows = C's columns: only
  // when transposed and no batch dim was folded into n.
  const bool bias = s.bias_input >= 0;
  // cuBLASLt's GELU epilogue is the tanh form, and only float-accurate (off by ~1e-7 in
  // f64 on an H100): erf GELU, and f64 GELU, run in kiln's epilogue kernel instead.
  const bool fusable_act = s.act != GemmActivation::kGeluErf &&
                           !(s.act == GemmActivation::kGeluTanh && s.dt == DataType::kF64);
  const GemmActivation lt_act = fusable_act ? s.act : GemmActivation::kNone;
  const bool try_fused =
      geo->transposed && (!bias || p.n == s.row_len) && (bias || lt_act != GemmActivation::kNone);
  bool found = false;
  // Preferred: a stride-0 strided batch for broadcast operands, the fused epilogue. Each
  // fallback trades speed for an algorithm: own epilogue kernel, then more launches.
  for (bool zero_strides : {true, false}) {
    auto batch = plan_batch(p, zero_strides);
    if (!batch) return cfg.unsupported("batch broadcast pattern needs too many GEMM launches");
    const bool retry_later = zero_strides && batch->zero_stride();
    k->batch_ = std::move(*batch);
    if (try_fused) {
      KILN_RETURN_IF_ERROR(k->setup(cfg, lt_epilogue(bias, lt_act), bias, found));
      if (found) {
        k->lt_bias_ = bias;
        k->lt_act_ = lt_act;
        k->post_act_ = fusable_act ? GemmActivation::kNone : s.act;
        break;
      }
    }
    KILN_RETURN_IF_ERROR(k->setup(cfg, CUBLASLT_EPILOGUE_DEFAULT, false, found));
    if (found) {
      k->post_bias_ = bias;
      k->post_act_ = s.act;
      break;
    }
    if (!retry_later) break;
  }
  if (!found)
    return cfg.unsupported(std::string("cuBLASLt has no algorithm for this ") + types->name +
                           " GEMM");
  std::string t =
      std::string("cublaslt:") + types->name + ":" + algo_name(k->algo_[k->have_algo_[0] ? 0 : 1]);
  if (k->lt_bias_ || k->lt_act_ != GemmActivation::kNone)
    t += ":" + epilogue_name(k->lt_bias_, k->lt_act_);
  if (k->batch_.count > 1) t += ":batch" + std::to_string(k->batch_.count);
  if (k->batch_.launches.size() > 1) t += ":launches" + std::to_string(k->batch_.launches.size());
  if (s.c_mode == LtGemmSpec::CMode::kPrefill) t += "+kiln:beta_c";
  if (k->post_bias_ || k->post_act_ != GemmActivation::kNone)
    t += "+kiln:" + epilogue_name(k->post_bias_, k->post_act_);
  k->tactic_ = t;
  return std::unique_ptr<Kernel>(std::move(k));
}

Status LtGemmKernel::enqueue(const LaunchArgs& a) {
  if (out_count_ == 0) return Status::ok();
  void* y = a.outputs[0];
  const void* c_in = s_.c_input >= 0 ? a.inputs[s_.c_input] : nullptr;
  const void* bias = s_.bias_input >= 0 ? a.inputs[s_.bias_input] : nullptr;
  if (s_.c_mode == LtGemmSpec::CMode::kPrefill)
    KILN_RETURN_IF_ERROR(
        launch_scale_broadcast(s_.dt, s_.beta, c_in, s_.c_index, out_count_, y, a.stream));
  else if (!run_gemm_)
    KILN_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(out_count_) * elem_, a.stream));
  if (run_gemm_) {
    const bool t = geo_.transposed;
    const char* pa = static_cast<const char*>(a.inputs[t ? s_.b_input : s_.a_input]);
    const char* pb = static_cast<const char*>(a.inputs[t ? s_.a_input : s_.b_input]);
    const char* pc = static_cast<const char*>(s_.c_mode == LtGemmSpec::CMode::kDirect ? c_in : y);
    char* pd = static_cast<char*>(y);
    auto fits = [&](int which) {
      const auto& al = align_[which];
      return have_algo_[which] && aligned(pa, al[0]) && aligned(pb, al[1]) && aligned(pc, al[2]) &&
             aligned(pd, al[3]) &&
             (!lt_bias_ || aligned(bias, which == 0 ? kBaseAlignment : elem_));
    };
    const int which = fits(0) ? 0 : 1;
    if (!fits(which))
      return Status(ErrorCode::kInternal,
                    "GEMM operand pointers are not aligned as the chosen cuBLASLt algorithm needs",
                    "tensors must be aligned to their element size");
    if (lt_bias_)
      KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
          desc_.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    const bool f64 = types_.scale == CUDA_R_64F;
    const void* alpha = f64 ? static_cast<const void*>(&alpha_d_) : &alpha_f_;
    const void* beta = f64 ? static_cast<const void*>(&beta_d_) : &beta_f_;
    for (const auto& off : batch_.launches) {
      const int64_t oa = off[t ? 1 : 0], ob = off[t ? 0 : 1], oc = off[2];
      KILN_CUBLAS_CHECK(cublasLtMatmul(a.res.cublaslt, desc_.get(), alpha, pa + oa * elem_,
                                       la_.get(), pb + ob * elem_, lb_.get(), beta, pc + oc * elem_,
                                       ld_.get(), pd + oc * elem_, ld_.get(), &algo_[which],
                                       a.workspace, workspace_, a.stream));
    }
  }
  if (post_bias_ || post_act_ != GemmActivation::kNone)
    KILN_RETURN_IF_ERROR(launch_bias_activation(s_.dt, post_act_, post_bias_ ? bias : nullptr,
                                                s_.row_len, out_count_, y, a.stream));
  return Status::ok();
}

// ---- the integer kernel -------------------------------------------------------------------

/// Operands of an integer product (LaunchArgs input indices; -1 = absent).
struct IntGemmSpec {
  DataType a_dt = DataType::kUndefined, b_dt = DataType::kUndefined;
  bool matmul_integer = false;  ///< int8/uint8 operands with zero points, int32 output
  IntGemmParams params;
  int a_input = 0, b_input = 1, za_input = -1, zb_input = -1, c_input = -1;
};

class IntGemmKernel final : public Kernel {
 public:
  explicit IntGemmKernel(IntGemmSpec s) : s_(std::move(s)) {}
  std::string tactic() const override { return "kiln:int_gemm_tiled16"; }
  Status enqueue(const LaunchArgs& a) override {
    auto in = [&](int i) { return i >= 0 ? a.inputs[i] : nullptr; };
    const IntGemmPointers ptr{in(s_.a_input),  in(s_.b_input), in(s_.za_input),
                              in(s_.zb_input), in(s_.c_input), a.outputs[0]};
    return s_.matmul_integer ? launch_matmul_integer(s_.a_dt, s_.b_dt, s_.params, ptr, a.stream)
                             : launch_int_matmul(s_.a_dt, s_.params, ptr, a.stream);
  }

 private:
  IntGemmSpec s_;
};

/// The integer kernel's geometry for problem `p` (output = C); nullopt when its batch
/// rank or row count exceed what the kernel's grid covers.
std::optional<IntGemmParams> int_params(const GemmProblem& p) {
  if (p.batch.size() > static_cast<size_t>(kMaxRank) ||
      (p.m + kIntGemmTile - 1) / kIntGemmTile > 65535)
    return std::nullopt;
  IntGemmParams q;
  q.m = p.m;
  q.n = p.n;
  q.k = p.k;
  q.a_rs = p.a_rs;
  q.a_cs = p.a_cs;
  q.b_rs = p.b_rs;
  q.b_cs = p.b_cs;
  q.y_rs = p.c_rs;
  q.y_cs = p.c_cs;
  q.batch = p.batch_count();
  std::vector<int64_t> sizes, sa, sb, sc;
  for (const auto& d : p.batch) {
    sizes.push_back(d.size);
    sa.push_back(d.a);
    sb.push_back(d.b);
    sc.push_back(d.c);
  }
  q.a_batch = make_index(sizes, sa);
  q.b_batch = make_index(sizes, sb);
  q.y_batch = make_index(sizes, sc);
  return q;
}

Result<std::unique_ptr<Kernel>> make_int_gemm(const KernelConfig& cfg, const GemmProblem& p,
                                              IntGemmSpec s) {
  auto q = int_params(p);
  if (!q) return cfg.unsupported("integer product with more than 8 batch dims or 1M rows");
  // Keep what the factory set beyond the geometry (zero points, Gemm's alpha/beta/C).
  q->za_mat = s.params.za_mat;
  q->za_vec = s.params.za_vec;
  q->zb_mat = s.params.zb_mat;
  q->zb_vec = s.params.zb_vec;
  q->affine = s.params.affine;
  q->alpha = s.params.alpha;
  q->beta = s.params.beta;
  q->c_rs = s.params.c_rs;
  q->c_cs = s.params.c_cs;
  s.params = *q;
  return std::unique_ptr<Kernel>(std::make_unique<IntGemmKernel>(std::move(s)));
}

// ---- factories ------------------------------------------------------------------------------

bool is_lt_float(DataType dt) {
  return dt == DataType::kF32 || dt == DataType::kF16 || dt == DataType::kBF16 ||
         dt == DataType::kF64;
}

/// Integer types of ONNX MatMul / Gemm (and of kiln's CPU reference for them).
bool is_gemm_int(DataType dt) {
  return dt == DataType::kI32 || dt == DataType::kI64 || dt == DataType::kU32 ||
         dt == DataType::kU64;
}

bool any_nhwc(const KernelConfig& cfg) {
  for (const auto* ops : {&cfg.inputs, &cfg.outputs})
    for (const Operand& o : *ops)
      if (o.present() && o.layout == Layout::kNhwc) return true;
  return false;
}

int64_t last_dim(const Operand& o) { return o.dims.empty() ? 1 : o.dims.back(); }

/// MatMul and FusedMatMul: numpy.matmul of inputs 0 and 1, optional bias input, activation.
Result<std::unique_ptr<Kernel>> create_matmul_like(const KernelConfig& cfg, int bias_input,
                                                   GemmActivation act) {
  if (any_nhwc(cfg)) return cfg.unsupported("nhwc operands");
  const DataType dt = cfg.in(0).dtype;
  if (cfg.in(0).rank() == 0 || cfg.in(1).rank() == 0 || cfg.in(1).dtype != dt)
    return cfg.error(ErrorCode::kShapeMismatch, "MatMul operands must be tensors of one dtype",
                     "shape inference should have rejected this node");
  GemmProblem p = matmul_problem(cfg.in(0).dims, cfg.in(1).dims);
  if (p.output_count() != cfg.out(0).numel())
    return cfg.error(ErrorCode::kShapeMismatch, "MatMul output does not match its operands",
                     "shape inference should have rejected this node");
  simplify_batch(p, true);
  if (is_lt_float(dt)) {
    LtGemmSpec s;
    s.dt = dt;
    s.problem = std::move(p);
    s.bias_input = bias_input;
    s.row_len = last_dim(cfg.out(0));
    s.act = act;
    return LtGemmKernel::create(cfg, std::move(s));
  }
  if (is_gemm_int(dt) && bias_input < 0 && act == GemmActivation::kNone)
    return make_int_gemm(cfg, p, {.a_dt = dt, .b_dt = dt});
  return cfg.unsupported(std::string("dtype ") + dtype_name(dt));
}

Result<std::unique_ptr<Kernel>> create_matmul(const KernelConfig& cfg) {
  return create_matmul_like(cfg, -1, GemmActivation::kNone);
}

Result<std::unique_ptr<Kernel>> create_fused_matmul(const KernelConfig& cfg) {
  KILN_ASSIGN_OR_RETURN(GemmActivation act, ops::fused_matmul_activation(cfg.node));
  return create_matmul_like(cfg, cfg.has_input(2) ? 2 : -1, act);
}

/// Gemm as kiln's tensor-core GEMM (tc_gemm.h) when it is one: 16-bit A [M, K] and B
/// [N, K] (transA = 0, transB = 1), C absent or a bias ([N] or [1, N], beta = 1), any
/// alpha; nullopt otherwise.
std::optional<TcGemmSpec> gemm_tc_spec(const KernelConfig& cfg) {
  if (any_nhwc(cfg) || !cfg.has_input(0) || !cfg.has_input(1)) return std::nullopt;
  const Operand &a = cfg.in(0), &b = cfg.in(1);
  if ((a.dtype != DataType::kF16 && a.dtype != DataType::kBF16) || b.dtype != a.dtype ||
      a.rank() != 2 || b.rank() != 2 || a.dims[1] != b.dims[1] ||
      cfg.node.attr_i("transA", 0) != 0 || cfg.node.attr_i("transB", 0) != 1)
    return std::nullopt;
  TcGemmSpec s;
  s.dt = a.dtype;
  s.m = a.dims[0];
  s.n = b.dims[0];
  s.k = a.dims[1];
  s.alpha = cfg.node.attr_f("alpha", 1.0f);
  const float beta = cfg.node.attr_f("beta", 1.0f);
  if (cfg.has_input(2) && beta != 0.0f) {
    const Operand& c = cfg.in(2);
    const bool row = (c.rank() == 1 && c.dims[0] == s.n) ||
                     (c.rank() == 2 && c.dims[0] == 1 && c.dims[1] == s.n);
    if (c.dtype != a.dtype || beta != 1.0f || !row) return std::nullopt;
    s.bias_input = 2;
  }
  return s;
}

/// Gemm (ONNX Operators.md, Gemm-13): alpha·op(A)·op(B) + beta·C, C broadcast to [M, N].
Result<std::unique_ptr<Kernel>> create_gemm(const KernelConfig& cfg) {
  if (cfg.tactic && cfg.tactic->rfind(kTcGemmTacticPrefix, 0) == 0) {
    const std::optional<TcGemmSpec> s = gemm_tc_spec(cfg);
    if (!s)
      return cfg.error(ErrorCode::kTacticUnavailable,
                       "the recorded tensor-core GEMM tactic does not fit this Gemm",
                       "the plan is damaged or from another kiln: rebuild it");
    return replay_tc_gemm(cfg, *s);
  }
  if (any_nhwc(cfg)) return cfg.unsupported("nhwc operands");
  const Operand &a = cfg.in(0), &b = cfg.in(1);
  const DataType dt = a.dtype;
  const bool has_c = cfg.has_input(2) && cfg.node.attr_f("beta", 1.0f) != 0.0f;
  if (a.rank() != 2 || b.rank() != 2 || b.dtype != dt ||
      (has_c && (cfg.in(2).rank() > 2 || cfg.in(2).dtype != dt)))
    return cfg.error(ErrorCode::kShapeMismatch, "Gemm needs 2-D A and B and C of rank <= 2",
                     "shape inference should have rejected this node");
  const GemmProblem p = gemm_problem(a.dims, cfg.node.attr_i("transA", 0) != 0, b.dims,
                                     cfg.node.attr_i("transB", 0) != 0);
  const double alpha = cfg.node.attr_f("alpha", 1.0f), beta = cfg.node.attr_f("beta", 1.0f);
  const StridedIndex c_index = has_c ? broadcast_index(cfg.in(2).dims, {p.m, p.n}) : StridedIndex{};
  if (is_lt_float(dt)) {
    LtGemmSpec s;
    s.dt = dt;
    s.problem = p;
    s.alpha = alpha;
    s.beta = beta;
    s.row_len = p.n;
    if (has_c) {
      s.c_input = 2;
      s.c_index = c_index;
      const int64_t c_count = cfg.in(2).numel();
      if (c_count == p.m * p.n) {
        s.c_mode = LtGemmSpec::CMode::kDirect;  // same elements, same row-major order
      } else if (beta == 1.0 && c_count == p.n && c_index.strides[0] == 0) {
        s.c_mode = LtGemmSpec::CMode::kBias;
        s.bias_input = 2;
      } else {
        s.c_mode = LtGemmSpec::CMode::kPrefill;
      }
    }
    return LtGemmKernel::create(cfg, std::move(s));
  }
  if (!is_gemm_int(dt)) return cfg.unsupported(std::string("dtype ") + dtype_name(dt));
  IntGemmSpec s{.a_dt = dt, .b_dt = dt, .c_input = has_c ? 2 : -1};
  s.params.affine = true;
  s.params.alpha = alpha;
  s.params.beta = beta;
  s.params.c_rs = c_index.strides[0];
  s.params.c_cs = c_index.strides[1];
  return make_int_gemm(cfg, p, std::move(s));
}

/// Einsum (ONNX Operators.md, Einsum-12) when the equation is one batched GEMM.
Result<std::unique_ptr<Kernel>> create_einsum(const KernelConfig& cfg) {
  if (any_nhwc(cfg)) return cfg.unsupported("nhwc operands");
  const std::string eq = cfg.node.attr_s("equation", "");
  if (cfg.inputs.size() != 2 || !cfg.has_input(0) || !cfg.has_input(1))
    return cfg.unsupported("equation '" + eq + "': only two-operand contractions are GEMMs");
  const DataType dt = cfg.in(0).dtype;
  auto p = einsum_problem(eq, cfg.in(0).dims, cfg.in(1).dims, cfg.out(0).dims);
  if (!p || cfg.in(1).dtype != dt || p->output_count() != cfg.out(0).numel())
    return cfg.unsupported("equation '" + eq + "' is not one batched GEMM (diagonal, trace, " +
                           "one-sided sum or non-unit-stride layout)");
  simplify_batch(*p, true);
  if (is_lt_float(dt)) {
    LtGemmSpec s;
    s.dt = dt;
    s.problem = std::move(*p);
    return LtGemmKernel::create(cfg, std::move(s));
  }
  if (dtype_is_int(dt)) return make_int_gemm(cfg, *p, {.a_dt = dt, .b_dt = dt});
  return cfg.unsupported(std::string("dtype ") + dtype_name(dt));
}

/// MatMulInteger (ONNX Operators.md, MatMulInteger-10): (A - a_zero_point) ·
/// (B - b_zero_point) in int32; zero points per tensor, per row of A / column of B, or per
/// matrix and row / column.
Result<std::unique_ptr<Kernel>> create_matmul_integer(const KernelConfig& cfg) {
  if (any_nhwc(cfg)) return cfg.unsupported("nhwc operands");
  const Operand &a = cfg.in(0), &b = cfg.in(1);
  auto int8 = [](DataType t) { return t == DataType::kI8 || t == DataType::kU8; };
  if (!int8(a.dtype) || !int8(b.dtype))
    return cfg.unsupported(std::string("dtypes ") + dtype_name(a.dtype) + " x " +
                           dtype_name(b.dtype));
  GemmProblem p = matmul_problem(a.dims, b.dims);
  // No folding: zero points are indexed by the operands' own rows and matrices.
  simplify_batch(p, false);
  IntGemmSpec s{.a_dt = a.dtype, .b_dt = b.dtype, .matmul_integer = true};
  // Zero point strides (matrix, row/column) for `per` values per matrix of `mat` elements.
  auto zero_point = [&](int input, const Operand& x, int64_t per, int64_t mat, int64_t& zm,
                        int64_t& zv) -> Status {
    if (!cfg.has_input(input)) return Status::ok();
    const Operand& z = cfg.in(input);
    const int64_t mats = mat > 0 ? x.numel() / mat : 0;
    if (z.dtype != x.dtype)
      return cfg.error(ErrorCode::kTypeMismatch, "zero point dtype differs from its operand's",
                       "zero points have the operand's type");
    if (z.numel() == 1) {
      zm = zv = 0;
    } else if (z.numel() == per) {
      zm = 0;
      zv = 1;
    } else if (z.numel() == mats * per) {
      zm = per;
      zv = 1;
    } else {
      return cfg.error(ErrorCode::kShapeMismatch,
                       "zero point has " + std::to_string(z.numel()) + " values; expected 1, " +
                           std::to_string(per) + " or " + std::to_string(mats * per),
                       "zero points are per tensor, per row of A / column of B, or per batch "
                       "and row/column");
    }
    return Status::ok();
  };
  const int64_t m = a.rank() == 1 ? 1 : a.dims[a.rank() - 2], k = a.dims.back();
  const int64_t n = b.rank() == 1 ? 1 : b.dims.back();
  KILN_RETURN_IF_ERROR(zero_point(2, a, m, m * k, s.params.za_mat, s.params.za_vec));
  KILN_RETURN_IF_ERROR(zero_point(3, b, n, k * n, s.params.zb_mat, s.params.zb_vec));
  if (cfg.has_input(2)) s.za_input = 2;
  if (cfg.has_input(3)) s.zb_input = 3;
  return make_int_gemm(cfg, p, std::move(s));
}

/// Tactic candidates of a cuBLASLt-backed op: the kernel `create` builds with each primary
/// algorithm the heuristic offers (structure, epilogue placement and the element-aligned
/// fallback algorithm stay the heuristic's). Other kernels (integer GEMMs, K = 0) are one
/// candidate without params, which the autotuner does not record.
template <typename Create>
Result<std::vector<std::unique_ptr<Kernel>>> lt_algorithms(const KernelConfig& cfg,
                                                           Create create) {
  std::vector<std::unique_ptr<Kernel>> out;
  if (!cfg.allows(TacticSource::kCublasLt)) return out;
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> first, create(cfg));
  const auto* lt = dynamic_cast<const LtGemmKernel*>(first.get());
  if (!lt || first->tactic_params().empty()) return out;
  // The heuristic's first algorithm is `first` itself: rebuild only the others.
  const std::vector<std::string> alternatives = lt->alternatives();
  out.push_back(std::move(first));
  for (size_t i = 1; i < alternatives.size(); ++i) {
    KernelConfig c = cfg;
    c.tactic = &alternatives[i];
    auto k = create(c);
    if (k.is_ok()) out.push_back(std::move(*k));
  }
  return out;
}

template <KernelFactory create>
Result<std::vector<std::unique_ptr<Kernel>>> lt_candidates(const KernelConfig& cfg) {
  return lt_algorithms(cfg, create);
}

/// Gemm's candidates: cuBLASLt's algorithms and, for X·Wᵀ + bias in 16 bits, kiln's
/// tensor-core GEMM tiles.
Result<std::vector<std::unique_ptr<Kernel>>> gemm_candidates(const KernelConfig& cfg) {
  auto lt = lt_algorithms(cfg, create_gemm);
  std::vector<std::unique_ptr<Kernel>> tc;
  if (const std::optional<TcGemmSpec> s = gemm_tc_spec(cfg)) tc = tc_gemm_candidates(cfg, *s);
  if (!lt.is_ok()) {
    if (tc.empty()) return lt.status();
    return tc;
  }
  // One way to run (integer GEMM, K = 0: no params to record): keep it.
  if (lt->empty() && cfg.allows(TacticSource::kCublasLt)) return lt;
  for (auto& k : tc) lt->push_back(std::move(k));
  return lt;
}

// ---- 1x1 convolutions as one GEMM ---------------------------------------------------------

/// A kernel built elsewhere, its tactic_params() prefixed so that the convolution factory
/// (cudnn_conv.cc) can tell them from cuDNN's.
class PrefixedKernel final : public Kernel {
 public:
  PrefixedKernel(std::unique_ptr<Kernel> k, std::string prefix)
      : k_(std::move(k)), prefix_(std::move(prefix)) {}
  size_t workspace_bytes() const override { return k_->workspace_bytes(); }
  std::string tactic() const override { return "conv1x1_gemm:" + k_->tactic(); }
  TacticSource tactic_source() const override { return k_->tactic_source(); }
  std::string tactic_params() const override {
    const std::string p = k_->tactic_params();
    return p.empty() ? p : prefix_ + p;
  }
  std::vector<uint8_t> artifact() const override { return k_->artifact(); }
  Status enqueue(const LaunchArgs& a) override { return k_->enqueue(a); }

 private:
  std::unique_ptr<Kernel> k_;
  std::string prefix_;
};

/// The GEMM of a 1x1 convolution node, or NoGpuKernel.
Result<LtGemmSpec> conv1x1_spec(const KernelConfig& cfg) {
  KILN_ASSIGN_OR_RETURN(ConvNhwcGeometry g, read_conv1x1(cfg, "1x1 GEMM"));
  GemmActivation act = GemmActivation::kNone;
  if (g.act.act == ops::FusedActivation::kRelu) {
    act = GemmActivation::kRelu;
  } else if (g.act.act != ops::FusedActivation::kNone) {
    return cfg.unsupported(std::string("activation ") + ops::fused_activation_name(g.act.act) +
                           " (the GEMM epilogue has Relu)");
  }
  // Y[M][K] = X[M][C] · W[K][C]ᵀ, M = N·H·W: X and Y channels-last are row-major matrices,
  // W's [K][C][1][1] bytes (KRSC or KCRS alike) are Wᵀ column-major.
  LtGemmSpec s;
  s.dt = g.dt;
  GemmProblem& p = s.problem;
  p.m = g.n * g.h * g.w;
  p.n = g.k;
  p.k = g.c;
  p.a_rs = g.c;
  p.a_cs = 1;
  p.b_rs = 1;
  p.b_cs = g.c;
  p.c_rs = g.k;
  p.c_cs = 1;
  s.bias_input = g.bias ? 2 : -1;
  s.row_len = g.k;
  s.act = act;
  if (g.residual) {  // cuBLASLt's C: D = act(A·B + 1·Z + bias)
    s.c_mode = LtGemmSpec::CMode::kDirect;
    s.c_input = 3;
    s.beta = 1.0;
  }
  return s;
}

}  // namespace

Result<std::unique_ptr<Kernel>> create_conv1x1_gemm(const KernelConfig& cfg) {
  KILN_ASSIGN_OR_RETURN(LtGemmSpec s, conv1x1_spec(cfg));
  const std::string prefix = kConv1x1GemmTacticPrefix;
  std::string algo;
  KernelConfig c = cfg;
  if (cfg.tactic) {
    if (cfg.tactic->rfind(prefix, 0) != 0)
      return cfg.error(ErrorCode::kTacticUnavailable,
                       "tactic parameters '" + *cfg.tactic + "' are not a 1x1-GEMM tactic",
                       "the plan is damaged or from another kiln: rebuild it");
    algo = cfg.tactic->substr(prefix.size());
    c.tactic = &algo;
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> k, LtGemmKernel::create(c, std::move(s)));
  if (k->tactic_params().empty())
    return cfg.unsupported("the GEMM has no cuBLASLt algorithm to record");
  return std::unique_ptr<Kernel>(std::make_unique<PrefixedKernel>(std::move(k), prefix));
}

Result<std::vector<std::unique_ptr<Kernel>>> conv1x1_gemm_candidates(const KernelConfig& cfg) {
  KILN_ASSIGN_OR_RETURN(LtGemmSpec s, conv1x1_spec(cfg));
  KILN_ASSIGN_OR_RETURN(
      std::vector<std::unique_ptr<Kernel>> algos,
      lt_algorithms(cfg, [&](const KernelConfig& c) { return LtGemmKernel::create(c, s); }));
  std::vector<std::unique_ptr<Kernel>> out;
  for (auto& k : algos)
    out.push_back(std::make_unique<PrefixedKernel>(std::move(k), kConv1x1GemmTacticPrefix));
  return out;
}

KILN_REGISTER_CUDA_KERNELS(gemm) {
  reg.add({.op_type = "MatMul", .create = create_matmul,
           .candidates = lt_candidates<create_matmul>});
  reg.add({.op_type = "Gemm", .create = create_gemm, .candidates = gemm_candidates});
  reg.add({.op_type = "Einsum", .create = create_einsum,
           .candidates = lt_candidates<create_einsum>});
  reg.add({.op_type = "MatMulInteger", .create = create_matmul_integer});
  reg.add({.op_type = "FusedMatMul", .domain = ops::kFusedMatMulDomain,
           .create = create_fused_matmul, .candidates = lt_candidates<create_fused_matmul>});
}

}  // namespace kiln::cuda
