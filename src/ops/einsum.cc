// Einsum (ONNX Operators.md; numpy.einsum semantics): explicit ("ij,jk->ik") and implicit
// ("ij,jk") output, "..." broadcast dims, repeated labels (diagonals), size-1
// broadcasting. Operands are contracted pairwise, left to right: each pair is gathered
// into [batch, m, k] x [batch, k, n] matrices (labels only one side uses are summed while
// gathering) and multiplied with BLAS GEMM, so every equation costs one strided copy per
// operand plus matrix products instead of a loop over all label combinations.
#include <algorithm>
#include <array>
#include <string>

#include "cpu/gemm.h"
#include "ops/helpers.h"
#include "ops/widen.h"

namespace kiln::ops {
namespace {

constexpr int kLetters = 52;  // a-z, A-Z; ellipsis dims get labels kLetters + i
constexpr int kMaxEllipsisDims = 64;
constexpr int kLabels = kLetters + kMaxEllipsisDims;

int letter_label(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return 26 + (c - 'A');
  return -1;
}

/// The equation split into terms; each term is a list of letter labels with the position
/// of "..." (-1 when absent).
struct Term {
  std::vector<int> letters;
  int ellipsis_at = -1;
};
struct Equation {
  std::vector<Term> inputs;
  Term output;
  bool explicit_output = false;
};

Result<Term> parse_term(const std::string& s) {
  Term t;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (t.ellipsis_at >= 0 || s.compare(i, 3, "...") != 0)
        return Status(ErrorCode::kOnnxBadAttribute, "malformed ellipsis in einsum term '" + s + "'",
                      "use at most one '...' per term");
      t.ellipsis_at = static_cast<int>(t.letters.size());
      i += 2;
      continue;
    }
    const int l = letter_label(s[i]);
    if (l < 0)
      return Status(ErrorCode::kOnnxBadAttribute,
                    std::string("einsum term '") + s + "' has invalid character '" + s[i] + "'",
                    "labels are letters a-z, A-Z");
    t.letters.push_back(l);
  }
  return t;
}

Result<Equation> parse_equation(const std::string& raw, size_t num_inputs) {
  std::string eq;
  for (char c : raw)
    if (c != ' ') eq += c;
  Equation e;
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  size_t start = 0;
  for (;;) {
    const size_t comma = lhs.find(',', start);
    KILN_ASSIGN_OR_RETURN(Term t, parse_term(lhs.substr(start, comma - start)));
    e.inputs.push_back(std::move(t));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (e.inputs.size() != num_inputs)
    return Status(ErrorCode::kOnnxBadAttribute,
                  "equation '" + raw + "' has " + std::to_string(e.inputs.size()) +
                      " input terms for " + std::to_string(num_inputs) + " inputs",
                  "write one comma-separated term per input");
  std::array<int, kLetters> count{};
  bool any_ellipsis = false;
  for (const auto& t : e.inputs) {
    for (int l : t.letters) ++count[l];
    any_ellipsis |= t.ellipsis_at >= 0;
  }
  if (arrow != std::string::npos) {
    e.explicit_output = true;
    KILN_ASSIGN_OR_RETURN(e.output, parse_term(eq.substr(arrow + 2)));
    std::array<int, kLetters> seen{};
    for (int l : e.output.letters) {
      if (count[l] == 0 || seen[l]++)
        return Status(ErrorCode::kOnnxBadAttribute,
                      "output of equation '" + raw + "' repeats a label or uses one no input has",
                      "each output label must appear once and in some input term");
    }
  } else {
    // Implicit output: "..." first, then labels used exactly once, in alphabetical order.
    if (any_ellipsis) e.output.ellipsis_at = 0;
    for (char c = 'A'; c <= 'z'; ++c) {
      const int l = letter_label(c);
      if (l >= 0 && count[l] == 1) e.output.letters.push_back(l);
    }
  }
  return e;
}

/// An equation resolved against operand ranks: every axis gets a label (ellipsis dims
/// are right-aligned across operands, numpy style).
struct Labels {
  std::vector<std::vector<int>> in;
  std::vector<int> out;
};

Result<Labels> resolve_labels(const Equation& e, const std::vector<size_t>& ranks) {
  Labels r;
  size_t ell = 0;
  for (size_t i = 0; i < e.inputs.size(); ++i) {
    const Term& t = e.inputs[i];
    if (ranks[i] < t.letters.size() || (t.ellipsis_at < 0 && ranks[i] != t.letters.size()))
      return Status(ErrorCode::kShapeMismatch,
                    "input " + std::to_string(i) + " has rank " + std::to_string(ranks[i]) +
                        " but its einsum term has " + std::to_string(t.letters.size()) + " labels",
                    "use '...' for a variable number of leading dims");
    if (t.ellipsis_at >= 0) ell = std::max(ell, ranks[i] - t.letters.size());
  }
  if (ell > static_cast<size_t>(kMaxEllipsisDims))
    return Status(ErrorCode::kShapeMismatch,
                  "'...' stands for " + std::to_string(ell) + " dims; at most " +
                      std::to_string(kMaxEllipsisDims) + " are supported",
                  "reshape the operands to fewer dims");
  auto expand = [&](const Term& t, size_t n_ell) {
    std::vector<int> v(t.letters.begin(), t.letters.end());
    if (t.ellipsis_at >= 0) {
      std::vector<int> dots;
      for (size_t j = ell - n_ell; j < ell; ++j) dots.push_back(kLetters + static_cast<int>(j));
      v.insert(v.begin() + t.ellipsis_at, dots.begin(), dots.end());
    }
    return v;
  };
  for (size_t i = 0; i < e.inputs.size(); ++i)
    r.in.push_back(expand(e.inputs[i], ranks[i] - e.inputs[i].letters.size()));
  r.out = expand(e.output, ell);
  return r;
}

Status infer_einsum(InferContext& ctx) {
  const std::string eq = ctx.node().attr_s("equation", "");
  KILN_ASSIGN_OR_RETURN(Equation e, parse_equation(eq, ctx.num_inputs()));
  std::vector<size_t> ranks;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Shape& s = ctx.input_shape(i);
    if (!s.rank_known && e.inputs[i].ellipsis_at >= 0) {
      ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
      return Status::ok();
    }
    ranks.push_back(s.rank_known ? s.rank() : e.inputs[i].letters.size());
  }
  KILN_ASSIGN_OR_RETURN(Labels lab, resolve_labels(e, ranks));
  std::vector<Dim> size(kLabels, Dim::unknown());
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Shape& s = ctx.input_shape(i);
    if (ctx.input_type(i) != ctx.input_type(0))
      return ctx.error(ErrorCode::kTypeMismatch, "einsum operands must have the same type",
                       "insert Casts so all operands have the same type");
    if (!s.rank_known) continue;
    for (size_t a = 0; a < s.rank(); ++a) {
      Dim& d = size[lab.in[i][a]];
      const Dim& v = s.dims[a];
      if (v.is_known() && d.is_known() && v.value != d.value && v.value != 1 && d.value != 1)
        return ctx.error(ErrorCode::kShapeMismatch,
                         "einsum label sizes disagree: " + std::to_string(d.value) + " vs " +
                             std::to_string(v.value) + " in input " + std::to_string(i) + " " +
                             s.to_string(),
                         "dims sharing a label must be equal (or 1)");
      if (!d.is_known() ? (v.is_known() || d.symbol.empty()) : (v.is_known() && v.value > d.value))
        d = v;
    }
  }
  Shape out;
  for (int l : lab.out) out.dims.push_back(size[l]);
  ctx.set_output(0, ctx.input_type(0), std::move(out));
  return Status::ok();
}

// ---- kernel -----------------------------------------------------------------------------

/// A strided view of an operand: one axis per distinct label (repeated labels of an
/// input are merged into one axis whose stride is the sum: the diagonal).
template <typename T>
struct View {
  const T* data = nullptr;
  std::vector<int> labels;
  std::vector<int64_t> sizes, strides;
  std::vector<T> owned;  // intermediate results
  int64_t stride_of(int l) const {
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == l) return strides[i];
    return -1;
  }
};

/// dst[dense over `dims`] = sum over `sums` of src[...]; dims/sums are (size, stride).
template <typename T>
void gather(const T* src, const std::vector<std::pair<int64_t, int64_t>>& dims,
            const std::vector<std::pair<int64_t, int64_t>>& sums, T* dst) {
  int64_t total = 1, inner = 1;
  for (auto [n, s] : dims) total *= n;
  for (auto [n, s] : sums) inner *= n;
  std::vector<int64_t> di(dims.size(), 0), si(sums.size(), 0);
  int64_t off = 0;
  for (int64_t o = 0; o < total; ++o) {
    T acc = T(0);
    int64_t soff = 0;
    for (int64_t j = 0; j < inner; ++j) {
      acc += src[off + soff];
      for (size_t d = sums.size(); d-- > 0;) {
        soff += sums[d].second;
        if (++si[d] < sums[d].first) break;
        soff -= sums[d].second * sums[d].first;
        si[d] = 0;
      }
    }
    dst[o] = acc;
    for (size_t d = dims.size(); d-- > 0;) {
      off += dims[d].second;
      if (++di[d] < dims[d].first) break;
      off -= dims[d].second * dims[d].first;
      di[d] = 0;
    }
  }
}

template <typename T>
void matmul_batched(int64_t batch, int64_t m, int64_t n, int64_t k, const T* a, const T* b, T* c) {
  for (int64_t i = 0; i < batch; ++i) {
    if constexpr (std::is_floating_point_v<T>)
      cpu::gemm(false, false, m, n, k, T(1), a + i * m * k, k, b + i * k * n, n, T(0),
                c + i * m * n, n);
    else
      cpu::gemm_int<T>(false, false, m, n, k, a + i * m * k, k, b + i * k * n, n, false,
                       c + i * m * n, n);
  }
}

/// Contracts two views, keeping the labels in `keep`; the result's axes are ordered
/// [batch (in both, kept), m (A only, kept), n (B only, kept)].
template <typename T>
View<T> contract(const View<T>& a, const View<T>& b, const std::vector<bool>& keep,
                 const std::vector<int64_t>& size) {
  std::vector<int> batch, ms, ns, ks, a_sum, b_sum;
  for (int l : a.labels) {
    const bool in_b = b.stride_of(l) >= 0;
    (in_b ? (keep[l] ? batch : ks) : (keep[l] ? ms : a_sum)).push_back(l);
  }
  for (int l : b.labels)
    if (a.stride_of(l) < 0) (keep[l] ? ns : b_sum).push_back(l);
  auto dims_of = [&](const View<T>& v, std::initializer_list<const std::vector<int>*> groups) {
    std::vector<std::pair<int64_t, int64_t>> d;
    for (const auto* g : groups)
      for (int l : *g) d.emplace_back(size[l], v.stride_of(l));
    return d;
  };
  auto prod = [&](const std::vector<int>& ls) {
    int64_t p = 1;
    for (int l : ls) p *= size[l];
    return p;
  };
  const int64_t nb = prod(batch), m = prod(ms), n = prod(ns), k = prod(ks);
  std::vector<T> ga(nb * m * k), gb(nb * k * n);
  gather(a.data, dims_of(a, {&batch, &ms, &ks}), dims_of(a, {&a_sum}), ga.data());
  gather(b.data, dims_of(b, {&batch, &ks, &ns}), dims_of(b, {&b_sum}), gb.data());
  View<T> r;
  r.owned.resize(nb * m * n);
  matmul_batched<T>(nb, m, n, k, ga.data(), gb.data(), r.owned.data());
  r.data = r.owned.data();
  for (const auto* g : {&batch, &ms, &ns})
    for (int l : *g) r.labels.push_back(l);
  int64_t stride = 1;
  r.strides.resize(r.labels.size());
  for (size_t i = r.labels.size(); i-- > 0;) {
    r.strides[i] = stride;
    stride *= size[r.labels[i]];
  }
  r.sizes.assign(r.labels.size(), 0);
  for (size_t i = 0; i < r.labels.size(); ++i) r.sizes[i] = size[r.labels[i]];
  return r;
}

template <typename T>
Status einsum_compute(const Labels& lab, const std::vector<const HostTensor*>& in,
                      HostTensor& out) {
  // Label sizes (size-1 dims broadcast: stride 0 where an operand's dim is 1).
  std::vector<int64_t> size(kLabels, 1);
  for (size_t i = 0; i < in.size(); ++i)
    for (size_t a = 0; a < in[i]->rank(); ++a)
      size[lab.in[i][a]] = std::max(size[lab.in[i][a]], in[i]->dims()[a]);
  for (size_t i = 0; i < in.size(); ++i)
    for (size_t a = 0; a < in[i]->rank(); ++a)
      if (in[i]->dims()[a] == 0) size[lab.in[i][a]] = 0;
  std::vector<View<T>> views(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    View<T>& v = views[i];
    v.data = in[i]->data<T>();
    const auto st = strides_of(in[i]->dims());
    for (size_t a = 0; a < in[i]->rank(); ++a) {
      const int l = lab.in[i][a];
      const int64_t s = in[i]->dims()[a] == 1 ? 0 : st[a];
      auto it = std::find(v.labels.begin(), v.labels.end(), l);
      if (it != v.labels.end()) {
        v.strides[it - v.labels.begin()] += s;  // repeated label: walk the diagonal
      } else {
        v.labels.push_back(l);
        v.sizes.push_back(size[l]);
        v.strides.push_back(s);
      }
    }
  }
  std::vector<bool> keep(size.size(), false);
  for (int l : lab.out) keep[l] = true;
  View<T> acc = std::move(views[0]);
  for (size_t i = 1; i < views.size(); ++i) {
    std::vector<bool> k = keep;
    for (size_t j = i + 1; j < views.size(); ++j)
      for (int l : views[j].labels) k[l] = true;
    acc = contract(acc, views[i], k, size);
  }
  std::vector<std::pair<int64_t, int64_t>> dims, sums;
  for (int l : lab.out) dims.emplace_back(size[l], std::max<int64_t>(acc.stride_of(l), 0));
  for (size_t i = 0; i < acc.labels.size(); ++i)
    if (!keep[acc.labels[i]]) sums.emplace_back(acc.sizes[i], acc.strides[i]);
  gather(acc.data, dims, sums, out.data<T>());
  return Status::ok();
}

Status einsum_cpu(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Equation e,
                        parse_equation(ctx.node().attr_s("equation", ""), ctx.num_inputs()));
  std::vector<size_t> ranks;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) ranks.push_back(ctx.input(i).rank());
  KILN_ASSIGN_OR_RETURN(Labels lab, resolve_labels(e, ranks));
  const DataType dt = ctx.input(0).dtype();
  std::vector<const HostTensor*> in;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) in.push_back(&ctx.input(i));
  switch (dt) {
    case DataType::kI32:
      return einsum_compute<int32_t>(lab, in, ctx.output(0));
    case DataType::kI64:
      return einsum_compute<int64_t>(lab, in, ctx.output(0));
    case DataType::kU32:
      return einsum_compute<uint32_t>(lab, in, ctx.output(0));
    case DataType::kU64:
      return einsum_compute<uint64_t>(lab, in, ctx.output(0));
    case DataType::kI8:
    case DataType::kU8:
    case DataType::kI16:
    case DataType::kU16: {
      // Narrow integers: computed in int64 and wrapped back, the same result modulo 2^n.
      std::vector<HostTensor> wide;
      for (const HostTensor* t : in) wide.push_back(t->cast(DataType::kI64));
      std::vector<const HostTensor*> wp;
      for (const HostTensor& t : wide) wp.push_back(&t);
      HostTensor out64(DataType::kI64, ctx.output(0).dims());
      KILN_RETURN_IF_ERROR(einsum_compute<int64_t>(lab, wp, out64));
      ctx.set_output(0, out64.cast(dt));
      return Status::ok();
    }
    default:
      break;
  }
  return compute_in_float(
      ctx, dt, [&](auto t, const std::vector<const HostTensor*>& in, HostTensor& out) -> Status {
        return einsum_compute<decltype(t)>(lab, in, out);
      });
}

Status check_einsum(const ir::Node& n) {
  if (!n.has_attr("equation"))
    return Status(ErrorCode::kOnnxBadAttribute, "attribute 'equation' is required",
                  "re-export the model");
  auto e = parse_equation(n.attr_s("equation", ""), n.inputs.size());
  return e.is_ok() ? Status::ok() : e.status();
}

}  // namespace

KILN_REGISTER_OPS(einsum) {
  // Einsum-28 only adds bfloat16.
  reg.add({.op_type = "Einsum", .min_opset = 12, .max_opset = 28, .min_inputs = 1,
           .max_inputs = -1, .infer = infer_einsum, .cpu = einsum_cpu, .check = check_einsum,
           .summary = "numpy.einsum (explicit/implicit, '...', diagonals) via pairwise BLAS "
                      "contraction"});
}

}  // namespace kiln::ops
