// kiln.FusedPointwise on the GPU: code generation, artifact handling and launch (see
// fused_pointwise.h for the kernel's design).
#include "cuda/fused_pointwise.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/kernels/common.cuh"
#include "ops/fused_pointwise.h"

namespace kiln::cuda {
namespace {

using ops::PwInstr;
using ops::PwOp;
using ops::PwProgram;

// ---- the walk over the output ---------------------------------------------------------------

/// The output's dims in memory order (outer first), size-1 dims dropped and neighbours
/// merged where every input steps through both as through one dim, with each input's
/// element stride along each (0 = broadcast). Empty dims: a single element.
struct Walk {
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> strides;  ///< [input][dim]
};

Result<Walk> plan_walk(const KernelConfig& cfg) {
  const Operand& out = cfg.out(0);
  const size_t r = out.rank();
  const size_t n_in = cfg.inputs.size();
  // Stride of each input along each logical output axis, from the input's own layout.
  std::vector<std::vector<int64_t>> full(n_in, std::vector<int64_t>(r, 0));
  for (size_t k = 0; k < n_in; ++k) {
    const Operand& in = cfg.in(k);
    const size_t lead = r - std::min(r, in.rank());
    bool ok = in.rank() <= r;
    const std::vector<int64_t> st = logical_strides(in);
    for (size_t j = 0; ok && j < in.rank(); ++j) {
      ok = in.dims[j] == 1 || in.dims[j] == out.dims[lead + j];
      full[k][lead + j] = in.dims[j] == 1 ? 0 : st[j];
    }
    if (!ok)
      return cfg.error(ErrorCode::kShapeMismatch,
                       "input " + std::to_string(k) + " " + dims_to_string(in.dims) +
                           " does not broadcast to the output " + dims_to_string(out.dims));
  }
  Walk w;
  w.strides.resize(n_in);
  for (int d : memory_order(out)) {
    if (out.dims[d] == 1) continue;
    bool merge = !w.dims.empty();
    for (size_t k = 0; merge && k < n_in; ++k)
      merge = w.strides[k].back() == full[k][d] * out.dims[d];
    if (merge) {
      w.dims.back() *= out.dims[d];
      for (size_t k = 0; k < n_in; ++k) w.strides[k].back() = full[k][d];
    } else {
      w.dims.push_back(out.dims[d]);
      for (size_t k = 0; k < n_in; ++k) w.strides[k].push_back(full[k][d]);
    }
  }
  return w;
}

/// How the kernel reads one input (see fused_pointwise.h).
struct Access {
  enum class Kind { kScalar, kRun, kGeneral } kind = Kind::kGeneral;
  int64_t inner = 1;   ///< kRun: output elements per input element step
  int64_t extent = 1;  ///< kRun: input elements walked
  bool wraps = false;  ///< kRun: the run ends before the outermost dim (needs % extent)
  /// Vector kernel: V contiguous aligned elements (a pack), or one element for all V.
  bool pack = false, splat = false;
};

Access classify(const Walk& w, size_t k, int vec) {
  const std::vector<int64_t>& s = w.strides[k];
  Access a;
  int lo = -1, hi = -1;
  for (int d = 0; d < static_cast<int>(s.size()); ++d)
    if (s[d] != 0) {
      if (lo < 0) lo = d;
      hi = d;
    }
  if (lo < 0) {
    a.kind = Access::Kind::kScalar;
    return a;
  }
  int64_t dense = 1;  // a run is dense: stride 1 at its inner end, packed outwards
  for (int d = hi; d >= lo; --d) {
    if (s[d] != dense) return a;
    dense *= w.dims[d];
  }
  a.kind = Access::Kind::kRun;
  a.extent = dense;
  for (int d = hi + 1; d < static_cast<int>(w.dims.size()); ++d) a.inner *= w.dims[d];
  a.wraps = lo > 0;
  // A pack starts at a multiple of V: with inner 1 it stays inside one run (no wrap, or
  // extent a multiple of V); with inner a multiple of V all V elements share one offset.
  a.pack = vec > 1 && a.inner == 1 && (!a.wraps || a.extent % vec == 0);
  a.splat = vec > 1 && !a.pack && a.inner % vec == 0;
  return a;
}

// ---- the generated source -------------------------------------------------------------------

#define KILN_DEV_MATH1(f)                                                              \
  "__device__ __forceinline__ float " #f "(float x) { return ::" #f "f(x); }\n"         \
  "__device__ __forceinline__ double " #f "(double x) { return ::" #f "(x); }\n"
#define KILN_DEV_MATH2(f)                                                              \
  "__device__ __forceinline__ float " #f "(float x, float y) { return ::" #f "f(x, y); }\n" \
  "__device__ __forceinline__ double " #f "(double x, double y) { return ::" #f "(x, y); }\n"
#define KILN_DEV_HELPER1(name, ...) \
  "template <typename C> __device__ __forceinline__ C " #name "(C x) { return " #__VA_ARGS__ "; }\n"
#define KILN_DEV_HELPER2(name, ...)                                                            \
  "template <typename C> __device__ __forceinline__ C " #name "(C x, C y) { return " #__VA_ARGS__ \
  "; }\n"

/// Everything the formulas call, in namespace kpw (see ops/fused_pointwise.h for the host
/// twins). f16 conversions are PTX cvt (round to nearest even); bf16 ones are the bit
/// operations of core/half.h, so stores round exactly like the CPU reference.
constexpr const char* kPrelude =
    "namespace kpw {\n"
    KILN_PW_MATH1(KILN_DEV_MATH1)
    KILN_PW_MATH2(KILN_DEV_MATH2)
    "__device__ __forceinline__ float h2f(unsigned short h) {\n"
    "  float f; asm(\"cvt.f32.f16 %0, %1;\" : \"=f\"(f) : \"h\"(h)); return f;\n}\n"
    "__device__ __forceinline__ unsigned short f2h(float f) {\n"
    "  unsigned short h; asm(\"cvt.rn.f16.f32 %0, %1;\" : \"=h\"(h) : \"f\"(f)); return h;\n}\n"
    "__device__ __forceinline__ float bf2f(unsigned short b) {\n"
    "  return __uint_as_float(((unsigned)b) << 16);\n}\n"
    "__device__ __forceinline__ unsigned short f2bf(float f) {\n"
    "  unsigned x = __float_as_uint(f);\n"
    "  if ((x & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((x >> 16) | 0x40u);\n"
    "  x += 0x7fffu + ((x >> 16) & 1u);\n"
    "  return (unsigned short)(x >> 16);\n}\n"
    "__device__ __forceinline__ float pw_round_f32(float x) { return x; }\n"
    "__device__ __forceinline__ double pw_round_f32(double x) { return (double)(float)x; }\n"
    "__device__ __forceinline__ float pw_round_f16(float x) { return h2f(f2h(x)); }\n"
    "__device__ __forceinline__ double pw_round_f16(double x) {\n"
    "  return (double)h2f(f2h((float)x));\n}\n"
    "__device__ __forceinline__ float pw_round_bf16(float x) { return bf2f(f2bf(x)); }\n"
    "__device__ __forceinline__ double pw_round_bf16(double x) {\n"
    "  return (double)bf2f(f2bf((float)x));\n}\n"
    KILN_PW_HELPERS1(KILN_DEV_HELPER1)
    KILN_PW_HELPERS2(KILN_DEV_HELPER2);

#undef KILN_DEV_MATH1
#undef KILN_DEV_MATH2
#undef KILN_DEV_HELPER1
#undef KILN_DEV_HELPER2

/// Storage type of a dtype in the generated code (f16/bf16 as their bits).
const char* storage_type(DataType dt) {
  switch (dt) {
    case DataType::kF64: return "double";
    case DataType::kF16:
    case DataType::kBF16: return "unsigned short";
    default: return "float";
  }
}

/// Stored value `v` of dtype `dt` as a compute value.
std::string load_expr(DataType dt, const std::string& v) {
  switch (dt) {
    case DataType::kF16: return "(kc_t)kpw::h2f(" + v + ")";
    case DataType::kBF16: return "(kc_t)kpw::bf2f(" + v + ")";
    default: return "(kc_t)(" + v + ")";
  }
}

/// Compute value `r` rounded into dtype `dt`'s storage (f16/bf16 through f32, as the CPU).
std::string store_expr(DataType dt, const std::string& r) {
  switch (dt) {
    case DataType::kF16: return "kpw::f2h((float)(" + r + "))";
    case DataType::kBF16: return "kpw::f2bf((float)(" + r + "))";
    case DataType::kF64: return "(double)(" + r + ")";
    default: return "(float)(" + r + ")";
  }
}

/// A float constant, bit-exact (±inf and NaN included).
std::string float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (u == 0) return "0.0f";
  char buf[40];
  std::snprintf(buf, sizeof(buf), "__uint_as_float(0x%08xu)", u);
  return buf;
}

/// Name of the pack type of V elements of `dt`.
std::string pack_type(DataType dt, int vec) {
  return std::string("pk_") + (dtype_size(dt) == 8 ? "f64" : dtype_size(dt) == 4 ? "f32" : "u16") +
         "x" + std::to_string(vec);
}

class Codegen {
 public:
  Codegen(const KernelConfig& cfg, const PwProgram& p, const Walk& w)
      : cfg_(cfg), p_(p), w_(w) {
    numel_ = cfg.out(0).numel();
    wide_ = numel_ >= kFastIndexLimit;
    size_t widest = dtype_size(cfg.out(0).dtype);
    for (size_t k = 0; k < cfg.inputs.size(); ++k)
      if (classify(w, k, 1).kind != Access::Kind::kScalar)
        widest = std::max(widest, dtype_size(cfg.in(k).dtype));
    vec_ = static_cast<int>(std::max<size_t>(1, 16 / widest));
    for (size_t k = 0; k < cfg.inputs.size(); ++k) access_.push_back(classify(w, k, vec_));
  }

  int vec() const { return vec_; }
  const std::vector<Access>& access() const { return access_; }

  /// The whole translation unit: kernels "kiln_fpw_s" and, when vec() > 1, "kiln_fpw_v".
  std::string source() const {
    std::string s = "// kiln.FusedPointwise, generated by src/cuda/fused_pointwise.cc\n";
    s += kPrelude;
    std::set<PwOp> used;
    for (const PwInstr& ins : p_.code)
      if (ins.op != PwOp::kInput && ins.op != PwOp::kConst) used.insert(ins.op);
    for (PwOp op : used) {
      const ops::PwOpInfo& e = ops::pw_op_info(op);
      s += std::string("template <typename C> __device__ __forceinline__ C op_") + e.name +
           "(C x, C y, float p0, float p1) { return (C)(" + e.formula + "); }\n";
    }
    s += "}  // namespace kpw\n";
    s += std::string("typedef ") + (compute_double() ? "double" : "float") + " kc_t;\n";
    s += std::string("typedef ") + (wide_ ? "unsigned long long" : "unsigned int") + " ki_t;\n";
    for (size_t k = 0; k < access_.size(); ++k)
      if (access_[k].kind != Access::Kind::kScalar) s += offset_function(k);
    if (vec_ > 1) {
      std::set<std::string> packs;
      auto add_pack = [&](DataType dt) {
        const std::string name = pack_type(dt, vec_);
        if (packs.insert(name).second)
          s += "struct alignas(" + std::to_string(dtype_size(dt) * vec_) + ") " + name + " { " +
               storage_type(dt) + " v[" + std::to_string(vec_) + "]; };\n";
      };
      add_pack(cfg_.out(0).dtype);
      for (size_t k = 0; k < access_.size(); ++k)
        if (access_[k].pack) add_pack(cfg_.in(k).dtype);
    }
    s += kernel(false);
    if (vec_ > 1) s += kernel(true);
    return s;
  }

 private:
  bool compute_double() const {
    bool f64 = cfg_.out(0).dtype == DataType::kF64;
    for (const Operand& o : cfg_.inputs) f64 |= o.dtype == DataType::kF64;
    return f64;
  }

  std::string lit(int64_t v) const { return std::to_string(v) + (wide_ ? "ull" : "u"); }

  /// ki_t offK(ki_t e): input k's element offset for output element e.
  std::string offset_function(size_t k) const {
    const Access& a = access_[k];
    std::string body;
    if (a.kind == Access::Kind::kRun) {
      std::string e = "e";
      if (a.inner > 1) e = "(" + e + " / " + lit(a.inner) + ")";
      if (a.wraps) e = "(" + e + " % " + lit(a.extent) + ")";
      body = "  return " + e + ";\n";
    } else {  // decode e dim by dim, innermost first; the outermost needs no modulo
      body = "  ki_t o = 0;\n";
      const std::vector<int64_t>& s = w_.strides[k];
      for (size_t d = w_.dims.size(); d-- > 0;) {
        const std::string digit = d > 0 ? "(e % " + lit(w_.dims[d]) + ")" : "e";
        if (s[d] != 0) body += "  o += " + digit + " * " + lit(s[d]) + ";\n";
        if (d > 0) body += "  e /= " + lit(w_.dims[d]) + ";\n";
      }
      body += "  return o;\n";
    }
    return "__device__ __forceinline__ ki_t off" + std::to_string(k) + "(ki_t e) {\n" + body +
           "}\n";
  }

  /// The program for one element as statements; `index` is the element's linear index
  /// (scalar code) and `lane` the element within the pack ("" outside the vector loop).
  std::string element(const std::string& index, const std::string& lane,
                      const std::string& indent) const {
    std::string s;
    for (size_t r = 0; r < p_.code.size(); ++r) {
      const PwInstr& ins = p_.code[r];
      std::string v;
      if (ins.op == PwOp::kInput) {
        const size_t k = static_cast<size_t>(ins.a);
        const Access& a = access_[k];
        const std::string ks = std::to_string(k);
        const DataType dt = cfg_.in(k).dtype;
        if (a.kind == Access::Kind::kScalar) v = "s" + ks;
        else if (!lane.empty() && a.pack) v = load_expr(dt, "v" + ks + ".v[" + lane + "]");
        else if (!lane.empty() && a.splat) v = "t" + ks;
        else v = load_expr(dt, "in" + ks + "[off" + ks + "(" + index + ")]");
      } else if (ins.op == PwOp::kConst) {
        v = "(kc_t)" + float_bits(ins.p0);
      } else {
        const std::string y = ins.b >= 0 ? "r" + std::to_string(ins.b) : "(kc_t)0";
        v = std::string("kpw::op_") + ops::pw_op_info(ins.op).name + "<kc_t>(r" +
            std::to_string(ins.a) + ", " + y + ", " + float_bits(ins.p0) + ", " +
            float_bits(ins.p1) + ")";
      }
      s += indent + "const kc_t r" + std::to_string(r) + " = " + v + ";\n";
    }
    return s;
  }

  std::string kernel(bool vector) const {
    const DataType out_dt = cfg_.out(0).dtype;
    const std::string last = "r" + std::to_string(p_.code.size() - 1);
    std::string s = std::string("extern \"C\" __global__ void __launch_bounds__(") +
                    std::to_string(kBlock) + ") " + (vector ? "kiln_fpw_v(" : "kiln_fpw_s(");
    for (size_t k = 0; k < cfg_.inputs.size(); ++k)
      s += std::string("const ") + storage_type(cfg_.in(k).dtype) + "* in" + std::to_string(k) +
           ", ";
    s += std::string(storage_type(out_dt)) + "* out) {\n";
    s += "  const ki_t n = " + lit(numel_) + ";\n";
    s += "  const ki_t stride = (ki_t)gridDim.x * " + lit(kBlock) + ";\n";
    s += "  const ki_t tid = (ki_t)blockIdx.x * " + lit(kBlock) + " + threadIdx.x;\n";
    for (size_t k = 0; k < access_.size(); ++k)
      if (access_[k].kind == Access::Kind::kScalar)
        s += "  const kc_t s" + std::to_string(k) + " = " +
             load_expr(cfg_.in(k).dtype, "in" + std::to_string(k) + "[0]") + ";\n";
    std::string tail_start = "tid";
    if (vector) {
      const std::string v = std::to_string(vec_);
      const std::string opack = pack_type(out_dt, vec_);
      s += "  const ki_t packs = n / " + lit(vec_) + ";\n";
      s += "  for (ki_t p = tid; p < packs; p += stride) {\n";
      s += "    const ki_t i = p * " + lit(vec_) + ";\n";
      for (size_t k = 0; k < access_.size(); ++k) {
        const std::string ks = std::to_string(k);
        const std::string ipack = pack_type(cfg_.in(k).dtype, vec_);
        if (access_[k].pack)
          s += "    const " + ipack + " v" + ks + " = *reinterpret_cast<const " + ipack + "*>(in" +
               ks + " + off" + ks + "(i));\n";
        else if (access_[k].splat)
          s += "    const kc_t t" + ks + " = " +
               load_expr(cfg_.in(k).dtype, "in" + ks + "[off" + ks + "(i)]") + ";\n";
      }
      s += "    " + opack + " o;\n";
      s += "#pragma unroll\n";
      s += "    for (int j = 0; j < " + v + "; ++j) {\n";
      s += element("i + j", "j", "      ");
      s += "      o.v[j] = " + store_expr(out_dt, last) + ";\n";
      s += "    }\n";
      s += "    *reinterpret_cast<" + opack + "*>(out + i) = o;\n";
      s += "  }\n";
      tail_start = "packs * " + lit(vec_) + " + tid";
    }
    s += "  for (ki_t e = " + tail_start + "; e < n; e += stride) {\n";
    s += element("e", "", "    ");
    s += "    out[e] = " + store_expr(out_dt, last) + ";\n";
    s += "  }\n}\n";
    return s;
  }

  const KernelConfig& cfg_;
  const PwProgram& p_;
  const Walk& w_;
  int64_t numel_ = 0;
  bool wide_ = false;  ///< 64-bit indices
  int vec_ = 1;
  std::vector<Access> access_;
};

// ---- artifacts ------------------------------------------------------------------------------

/// Little-endian header in front of the device image in an artifact.
struct ArtifactHeader {
  char magic[8];
  uint32_t version;  ///< kArtifactVersion
  uint32_t arch;     ///< compute capability major * 10 + minor the image is for
  uint32_t kind;     ///< DeviceImage::Kind
  uint32_t reserved;
  uint64_t source_hash;  ///< fnv1a64 of the generated source
  uint64_t image_size;
  uint64_t image_hash;   ///< fnv1a64 of the image: damaged bytes are not loaded
};
static_assert(sizeof(ArtifactHeader) == 48);
constexpr char kArtifactMagic[8] = {'K', 'I', 'L', 'N', 'N', 'V', 'R', 'T'};
constexpr uint32_t kArtifactVersion = 1;

std::vector<uint8_t> make_artifact(const DeviceImage& img, uint64_t source_hash, int arch) {
  ArtifactHeader h{};
  std::memcpy(h.magic, kArtifactMagic, sizeof(h.magic));
  h.version = kArtifactVersion;
  h.arch = static_cast<uint32_t>(arch);
  h.kind = static_cast<uint32_t>(img.kind);
  h.source_hash = source_hash;
  h.image_size = img.bytes.size();
  h.image_hash = fnv1a64(img.bytes.data(), img.bytes.size());
  std::vector<uint8_t> out(sizeof(h) + img.bytes.size());
  std::memcpy(out.data(), &h, sizeof(h));
  std::memcpy(out.data() + sizeof(h), img.bytes.data(), img.bytes.size());
  return out;
}

/// The image of `art` when it was compiled from exactly this source for this GPU and is
/// intact; nullopt otherwise (the caller compiles).
std::optional<DeviceImage> image_from_artifact(const std::vector<uint8_t>& art,
                                               uint64_t source_hash, int arch) {
  ArtifactHeader h;
  if (art.size() < sizeof(h)) return std::nullopt;
  std::memcpy(&h, art.data(), sizeof(h));
  if (std::memcmp(h.magic, kArtifactMagic, sizeof(h.magic)) != 0 ||
      h.version != kArtifactVersion || h.arch != static_cast<uint32_t>(arch) ||
      h.source_hash != source_hash || h.image_size != art.size() - sizeof(h) ||
      h.kind > static_cast<uint32_t>(DeviceImage::Kind::kPtx))
    return std::nullopt;
  DeviceImage img;
  img.kind = static_cast<DeviceImage::Kind>(h.kind);
  img.bytes.assign(art.begin() + sizeof(h), art.end());
  if (fnv1a64(img.bytes.data(), img.bytes.size()) != h.image_hash) return std::nullopt;
  return img;
}

/// The device's compute capability as major * 10 + minor (from Resources when set).
Result<int> device_arch(const Resources& res) {
  int major = res.cc_major, minor = res.cc_minor;
  if (major == 0) {
    KILN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, res.device));
    KILN_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, res.device));
  }
  return major * 10 + minor;
}

}  // namespace

Status FusedPointwiseKernel::enqueue(const LaunchArgs& a) {
  if (p_.numel == 0) return Status::ok();
  const size_t n_in = p_.input_elem.size();
  const void* ptrs[ops::kMaxPwInputs + 1];
  void* params[ops::kMaxPwInputs + 1];
  for (size_t k = 0; k < n_in; ++k) {
    ptrs[k] = a.inputs[k];
    params[k] = &ptrs[k];
  }
  void* out = a.outputs[0];
  params[n_in] = &out;
  // The vector kernel needs the output and every packed input aligned to their packs.
  bool vector = p_.vector != nullptr &&
                reinterpret_cast<uintptr_t>(out) % (p_.out_elem * p_.vec) == 0;
  for (size_t k = 0; vector && k < n_in; ++k)
    vector = !p_.vector_input[k] ||
             reinterpret_cast<uintptr_t>(ptrs[k]) % (p_.input_elem[k] * p_.vec) == 0;
  const int64_t work = vector ? std::max<int64_t>(p_.numel / p_.vec, p_.numel % p_.vec) : p_.numel;
  const cudaKernel_t k = vector ? p_.vector : p_.scalar;
  KILN_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(k), dim3(grid_for(work)),
                                   dim3(kBlock), params, 0, a.stream));
  return Status::ok();
}

Result<std::unique_ptr<Kernel>> create_fused_pointwise(const KernelConfig& cfg) {
  if (cfg.outputs.size() != 1 || !cfg.out(0).present())
    return cfg.error(ErrorCode::kInternal, "FusedPointwise without its one output");
  if (cfg.inputs.size() > ops::kMaxPwInputs)
    return cfg.unsupported(std::to_string(cfg.inputs.size()) + " inputs (the kernel takes up to " +
                           std::to_string(ops::kMaxPwInputs) + ")");
  FusedPointwiseKernel::Parts parts;
  for (size_t k = 0; k < cfg.inputs.size(); ++k) {
    if (!cfg.in(k).present() || !ops::pw_dtype_ok(cfg.in(k).dtype))
      return cfg.error(ErrorCode::kTypeMismatch,
                       "input " + std::to_string(k) + " is omitted or not f32/f16/bf16/f64");
    parts.input_elem.push_back(dtype_size(cfg.in(k).dtype));
  }
  KILN_ASSIGN_OR_RETURN(PwProgram program, ops::read_pw_program(cfg.node, cfg.inputs.size()));
  const Operand& out = cfg.out(0);
  if (program.out_dtype != out.dtype)
    return cfg.error(ErrorCode::kInternal,
                     std::string("output is ") + dtype_name(out.dtype) + " but 'to' says " +
                         dtype_name(program.out_dtype));
  parts.out_elem = dtype_size(out.dtype);
  parts.numel = out.numel();
  parts.vector_input.assign(cfg.inputs.size(), false);
  if (parts.numel == 0) return std::unique_ptr<Kernel>(new FusedPointwiseKernel(std::move(parts)));

  KILN_ASSIGN_OR_RETURN(Walk walk, plan_walk(cfg));
  const Codegen gen(cfg, program, walk);
  parts.source = gen.source();
  parts.vec = gen.vec();
  for (size_t k = 0; k < cfg.inputs.size(); ++k) parts.vector_input[k] = gen.access()[k].pack;

  KILN_ASSIGN_OR_RETURN(const int arch, device_arch(cfg.res));
  const uint64_t source_hash = fnv1a64(parts.source.data(), parts.source.size());
  std::optional<DeviceImage> image;
  if (cfg.artifact && !cfg.artifact->empty())
    image = image_from_artifact(*cfg.artifact, source_hash, arch);
  parts.from_artifact = image.has_value();
  if (!image) {
    auto compiled = nvrtc_compile(parts.source, "kiln_fused_pointwise.cu", arch / 10, arch % 10);
    if (!compiled.is_ok())
      return Status(compiled.status().code(), compiled.status().message(),
                    "build with --disable-pass=fuse_pointwise to work around it, and report "
                    "it with this message",
                    cfg.node.loc());
    image = std::move(compiled).value();
  }
  parts.artifact = make_artifact(*image, source_hash, arch);
  auto lib = CudaLibrary::load(*image);
  if (!lib.is_ok()) return lib.status().at(cfg.node.loc());
  parts.lib = std::move(lib).value();
  KILN_ASSIGN_OR_RETURN(parts.scalar, parts.lib->kernel("kiln_fpw_s"));
  if (parts.vec > 1) {
    KILN_ASSIGN_OR_RETURN(parts.vector, parts.lib->kernel("kiln_fpw_v"));
  }
  return std::unique_ptr<Kernel>(new FusedPointwiseKernel(std::move(parts)));
}

KILN_REGISTER_CUDA_KERNELS(fused_pointwise) {
  reg.add({.op_type = ops::kFusedPointwiseOp,
           .domain = ops::kFusedPointwiseDomain,
           .create = create_fused_pointwise,
           .nhwc = true});
}

}  // namespace kiln::cuda
