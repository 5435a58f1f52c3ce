// Host-side descriptions of matrix products as GemmProblems (see cublaslt_gemm.h): numpy
// matmul broadcasting, Gemm transposes, and the two-operand Einsums that are one batched
// GEMM, plus the batch-dim canonicalisation every lowering starts from.
#include <algorithm>
#include <array>

#include "cuda/cublaslt_gemm.h"

namespace kiln::cuda {

int64_t GemmProblem::batch_count() const {
  int64_t count = 1;
  for (const auto& d : batch) count *= d.size;
  return count;
}

GemmProblem matmul_problem(std::vector<int64_t> ad, std::vector<int64_t> bd) {
  if (ad.size() == 1) ad.insert(ad.begin(), 1);
  if (bd.size() == 1) bd.push_back(1);
  GemmProblem p;
  p.m = ad[ad.size() - 2];
  p.k = ad.back();
  p.n = bd.back();
  p.a_rs = p.k;
  p.a_cs = 1;
  p.b_rs = p.n;
  p.b_cs = 1;
  p.c_rs = p.n;
  p.c_cs = 1;
  const auto sa = row_major_strides(ad), sb = row_major_strides(bd);
  const size_t ra = ad.size() - 2, rb = bd.size() - 2, r = std::max(ra, rb);
  p.batch.resize(r);
  for (size_t d = 0; d < r; ++d) {
    // Batch dims align right (numpy): output dim d is dim d - (r - ra) of A's batch dims.
    const bool in_a = d >= r - ra, in_b = d >= r - rb;
    const int64_t da = in_a ? ad[d - (r - ra)] : 1, db = in_b ? bd[d - (r - rb)] : 1;
    GemmBatchDim& g = p.batch[d];
    g.size = da == 1 ? db : da;
    g.a = in_a && da != 1 ? sa[d - (r - ra)] : 0;
    g.b = in_b && db != 1 ? sb[d - (r - rb)] : 0;
  }
  int64_t c_stride = p.m * p.n;
  for (size_t d = r; d-- > 0;) {
    p.batch[d].c = c_stride;
    c_stride *= p.batch[d].size;
  }
  return p;
}

GemmProblem gemm_problem(const std::vector<int64_t>& ad, bool trans_a,
                         const std::vector<int64_t>& bd, bool trans_b) {
  GemmProblem p;
  p.m = ad[trans_a ? 1 : 0];
  p.k = ad[trans_a ? 0 : 1];
  p.n = bd[trans_b ? 0 : 1];
  // Stored row-major: element (r, c) of a stored [R, C] matrix is at r·C + c.
  p.a_rs = trans_a ? 1 : ad[1];
  p.a_cs = trans_a ? ad[1] : 1;
  p.b_rs = trans_b ? 1 : bd[1];
  p.b_cs = trans_b ? bd[1] : 1;
  p.c_rs = p.n;
  p.c_cs = 1;
  return p;
}

void simplify_batch(GemmProblem& p, bool fold) {
  auto& b = p.batch;
  b.erase(std::remove_if(b.begin(), b.end(), [](const GemmBatchDim& d) { return d.size == 1; }),
          b.end());
  for (size_t i = b.size(); i-- > 1;) {
    const GemmBatchDim &outer = b[i - 1], &inner = b[i];
    if (outer.a == inner.a * inner.size && outer.b == inner.b * inner.size &&
        outer.c == inner.c * inner.size) {
      b[i - 1] = {outer.size * inner.size, inner.a, inner.b, inner.c};
      b.erase(b.begin() + i);
    }
  }
  if (!fold) return;
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = b.size(); i-- > 0 && !changed;) {
      const GemmBatchDim d = b[i];
      // Rows of A and C continue across the dim while B stays: the dim is more rows.
      // With one row its stride is free, so the dim's strides become the row strides.
      if (d.b == 0 && d.a != 0 && (p.m == 1 || (d.a == p.m * p.a_rs && d.c == p.m * p.c_rs))) {
        if (p.m == 1) {
          p.a_rs = d.a;
          p.c_rs = d.c;
        }
        p.m *= d.size;
        changed = true;
      } else if (d.a == 0 && d.b != 0 &&
                 (p.n == 1 || (d.b == p.n * p.b_cs && d.c == p.n * p.c_cs))) {
        if (p.n == 1) {
          p.b_cs = d.b;
          p.c_cs = d.c;
        }
        p.n *= d.size;
        changed = true;
      }
      if (changed) b.erase(b.begin() + i);
    }
  }
}

// ---- Einsum ---------------------------------------------------------------------------------

namespace {

constexpr int kLetters = 52;  // a-z, A-Z; "..." dims get labels kLetters + i

int letter_label(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return 26 + (c - 'A');
  return -1;
}

struct Term {
  std::vector<int> letters;
  int ellipsis_at = -1;
};

std::optional<Term> parse_term(const std::string& s) {
  Term t;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 3, "...") == 0 && t.ellipsis_at < 0) {
      t.ellipsis_at = static_cast<int>(t.letters.size());
      i += 2;
      continue;
    }
    const int l = letter_label(s[i]);
    if (l < 0) return std::nullopt;
    t.letters.push_back(l);
  }
  return t;
}

/// Labels of every axis of A, B and the output, numpy's rules (as src/ops/einsum.cc):
/// "..." dims right-aligned across operands; the implicit output is "..." followed by the
/// letters used once, in ASCII order.
std::optional<std::array<std::vector<int>, 3>> einsum_labels(std::string eq,
                                                             const std::vector<size_t>& ranks) {
  eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  const size_t comma = lhs.find(',');
  if (comma == std::string::npos || lhs.find(',', comma + 1) != std::string::npos)
    return std::nullopt;
  std::array<std::optional<Term>, 3> terms = {parse_term(lhs.substr(0, comma)),
                                              parse_term(lhs.substr(comma + 1)), Term{}};
  if (!terms[0] || !terms[1]) return std::nullopt;
  size_t ell = 0;
  for (int i = 0; i < 2; ++i) {
    const Term& t = *terms[i];
    if (ranks[i] < t.letters.size() || (t.ellipsis_at < 0 && ranks[i] != t.letters.size()))
      return std::nullopt;
    if (t.ellipsis_at >= 0) ell = std::max(ell, ranks[i] - t.letters.size());
  }
  if (arrow != std::string::npos) {
    terms[2] = parse_term(eq.substr(arrow + 2));
    if (!terms[2]) return std::nullopt;
  } else {
    std::array<int, kLetters> count{};
    for (int i = 0; i < 2; ++i)
      for (int l : terms[i]->letters) ++count[l];
    if (terms[0]->ellipsis_at >= 0 || terms[1]->ellipsis_at >= 0) terms[2]->ellipsis_at = 0;
    for (char c = 'A'; c <= 'z'; ++c) {
      const int l = letter_label(c);
      if (l >= 0 && count[l] == 1) terms[2]->letters.push_back(l);
    }
  }
  std::array<std::vector<int>, 3> labels;
  for (int i = 0; i < 3; ++i) {
    const Term& t = *terms[i];
    std::vector<int>& v = labels[i];
    v = t.letters;
    if (t.ellipsis_at >= 0) {
      const size_t n_ell = i < 2 ? ranks[i] - t.letters.size() : ell;
      std::vector<int> dots;
      for (size_t j = ell - n_ell; j < ell; ++j) dots.push_back(kLetters + static_cast<int>(j));
      v.insert(v.begin() + t.ellipsis_at, dots.begin(), dots.end());
    }
  }
  return labels;
}

/// Where a label sits in one tensor: its size there and element stride (-1 = absent).
struct Axis {
  int64_t size = 1;
  int64_t stride = -1;
};

/// One label group (rows, columns or contraction) as a single stride over tensor `t`:
/// consecutive labels must nest densely, outer stride = inner stride · inner size.
/// Returns the innermost stride (0 for an empty group), or nullopt.
std::optional<int64_t> group_stride(const std::vector<int>& group,
                                    const std::vector<std::vector<Axis>>& axes, int t) {
  for (size_t i = 0; i + 1 < group.size(); ++i) {
    const Axis &outer = axes[group[i]][t], &inner = axes[group[i + 1]][t];
    if (outer.stride != inner.stride * inner.size) return std::nullopt;
  }
  return group.empty() ? 0 : axes[group.back()][t].stride;
}

}  // namespace

std::optional<GemmProblem> einsum_problem(const std::string& equation,
                                          const std::vector<int64_t>& a_dims,
                                          const std::vector<int64_t>& b_dims,
                                          const std::vector<int64_t>& out_dims) {
  const auto labels = einsum_labels(equation, {a_dims.size(), b_dims.size()});
  if (!labels) return std::nullopt;
  const std::array<const std::vector<int64_t>*, 3> dims = {&a_dims, &b_dims, &out_dims};
  if ((*labels)[2].size() != out_dims.size()) return std::nullopt;
  // axes[label][tensor]; a label of size 1 everywhere changes nothing and is dropped.
  std::vector<std::vector<Axis>> axes(kLetters + 64, std::vector<Axis>(3));
  std::vector<int64_t> size(axes.size(), 1);
  for (int t = 0; t < 3; ++t) {
    const auto strides = row_major_strides(*dims[t]);
    for (size_t i = 0; i < (*labels)[t].size(); ++i) {
      const int l = (*labels)[t][i];
      if (l >= static_cast<int>(axes.size()) || axes[l][t].stride >= 0) return std::nullopt;
      axes[l][t] = {(*dims[t])[i], strides[i]};
      size[l] = std::max(size[l], (*dims[t])[i]);
    }
  }
  for (size_t l = 0; l < axes.size(); ++l)  // an empty dim empties its label everywhere
    for (const Axis& ax : axes[l])
      if (ax.stride >= 0 && ax.size == 0) size[l] = 0;
  std::vector<int> rows, cols, inner;
  GemmProblem p;
  for (int l : (*labels)[2]) {  // batch, row and column labels in output order
    if (size[l] == 1) continue;
    const bool in_a = axes[l][0].stride >= 0, in_b = axes[l][1].stride >= 0;
    if (in_a && in_b) {
      auto stride = [&](int t) { return axes[l][t].size == 1 ? 0 : axes[l][t].stride; };
      p.batch.push_back({size[l], stride(0), stride(1), axes[l][2].stride});
      continue;
    }
    const int t = in_a ? 0 : 1;
    if (axes[l][t].size != size[l]) return std::nullopt;
    (in_a ? rows : cols).push_back(l);
  }
  for (int l : (*labels)[0]) {  // contracted labels in A's order
    if (size[l] == 1 || axes[l][2].stride >= 0) continue;
    if (axes[l][1].stride < 0 || axes[l][0].size != axes[l][1].size) return std::nullopt;
    inner.push_back(l);
  }
  for (int l : (*labels)[1])  // summed inside B alone: not a GEMM
    if (size[l] != 1 && axes[l][0].stride < 0 && axes[l][2].stride < 0) return std::nullopt;
  auto product = [&](const std::vector<int>& g) {
    int64_t v = 1;
    for (int l : g) v *= size[l];
    return v;
  };
  // A row (column) group that does not nest densely in both tensors holding it gives its
  // outer labels to the batch, where any strides work and the other operand's is 0.
  auto peel = [&](std::vector<int>& group, int t) {
    while (!group.empty() && (!group_stride(group, axes, t) || !group_stride(group, axes, 2))) {
      const int l = group.front();
      const int64_t s = axes[l][t].stride;
      p.batch.push_back({size[l], t == 0 ? s : 0, t == 1 ? s : 0, axes[l][2].stride});
      group.erase(group.begin());
    }
  };
  peel(rows, 0);
  peel(cols, 1);
  p.m = product(rows);
  p.n = product(cols);
  p.k = product(inner);
  const auto a_rs = group_stride(rows, axes, 0), c_rs = group_stride(rows, axes, 2);
  const auto b_cs = group_stride(cols, axes, 1), c_cs = group_stride(cols, axes, 2);
  const auto a_cs = group_stride(inner, axes, 0), b_rs = group_stride(inner, axes, 1);
  if (!a_cs || !b_rs) return std::nullopt;
  p.a_rs = *a_rs;
  p.a_cs = *a_cs;
  p.b_rs = *b_rs;
  p.b_cs = *b_cs;
  p.c_rs = *c_rs;
  p.c_cs = *c_cs;
  return p;
}

}  // namespace kiln::cuda
