// GPU kernels of the data-movement ops (ONNX Operators.md: Transpose, Slice, Tile, Expand,
// DepthToSpace, SpaceToDepth, Concat, Split, Pad, and the mask output of inference
// Dropout). No kernel here looks at the dtype: elements move as unsigned units of
// dtype_size bytes (data_movement.cuh), so every dtype is supported.
//
// Concat and Split are one launch per 32 parts over the [outer, row] view of the joined
// tensor, and Pad maps each output index per axis (constant / edge / wrap / reflect); both
// widen their unit where rows are contiguous and aligned.
//
// Transpose, Slice, Tile, Expand, DepthToSpace and SpaceToDepth are one StridedCopy: the
// output, walked in memory order, reads input element `offset + sum_d i[d] * stride[d]`
// (strides 0 for broadcast, negative for reversed slices), described per logical output
// axis so any operand layout (row-major / kNhwc) works. The plan drops size-1 axes, merges
// axes that stay adjacent, and picks: one cudaMemcpyAsync (the view is a contiguous range),
// a 32x32 shared-memory tiled transpose (the input's contiguous axis is not the output's
// innermost, e.g. NCHW<->NHWC), or a strided gather whose unit widens to 16 bytes when the
// innermost run is contiguous and aligned.
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cuda/kernels/data_movement.cuh"
#include "ops/slice.h"

namespace kiln::cuda {
namespace {

using dm::address_bits;
using dm::const_ints;
using dm::dispatch_unit;
using dm::node_axis;
using dm::Strided;
using dm::widest_unit;

// ---- kernels ----------------------------------------------------------------------------

template <typename Unit>
__global__ void fill_kernel(Unit* __restrict__ dst, int64_t n, Unit v) {
  KILN_GRID_STRIDE_LOOP(i, n) dst[i] = v;
}

// Ix: Strided<int64_t>, or dm::FastStrided below 2^31 elements.
template <typename Unit, typename Ix>
__global__ void strided_copy_kernel(const Unit* __restrict__ src, Unit* __restrict__ dst, int64_t n,
                                    Ix ix) {
  KILN_GRID_STRIDE_LOOP(i, n) dst[i] = src[ix.offset(i)];
}

constexpr int kTile = 32;
constexpr int kTileRows = 8;

/// A transpose of axis A (contiguous in the input) and axis L (contiguous in the output),
/// repeated over `batch` combinations of the other axes.
struct TileArgs {
  int64_t dim_a = 0, dim_l = 0;
  int64_t src_stride_l = 0;  ///< input stride of L (A's is 1)
  int64_t dst_stride_a = 0;  ///< output stride of A (L's is 1)
  int64_t batch = 1;
  Strided<int64_t> src_batch, dst_batch;  ///< batch index → input / output offset
};

// Reads a 32x32 tile coalesced along A, writes it coalesced along L; the +1 column keeps
// the transposed shared-memory reads free of bank conflicts. Grid-stride in all three
// grid dimensions (y and z are capped at 65535 blocks).
template <typename T>
__global__ void tiled_transpose_kernel(const T* __restrict__ src, T* __restrict__ dst, TileArgs t) {
  __shared__ T tile[kTile][kTile + 1];
  const int64_t tiles_a = (t.dim_a + kTile - 1) / kTile, tiles_l = (t.dim_l + kTile - 1) / kTile;
  for (int64_t b = blockIdx.z; b < t.batch; b += gridDim.z) {
    const T* s = src + t.src_batch.offset(b);
    T* d = dst + t.dst_batch.offset(b);
    for (int64_t tl = blockIdx.y; tl < tiles_l; tl += gridDim.y) {
      for (int64_t ta = blockIdx.x; ta < tiles_a; ta += gridDim.x) {
        const int64_t a0 = ta * kTile, l0 = tl * kTile;
        for (int j = threadIdx.y; j < kTile; j += kTileRows) {
          const int64_t a = a0 + threadIdx.x, l = l0 + j;
          if (a < t.dim_a && l < t.dim_l) tile[j][threadIdx.x] = s[l * t.src_stride_l + a];
        }
        __syncthreads();
        for (int j = threadIdx.y; j < kTile; j += kTileRows) {
          const int64_t l = l0 + threadIdx.x, a = a0 + j;
          if (a < t.dim_a && l < t.dim_l) d[a * t.dst_stride_a + l] = tile[threadIdx.x][j];
        }
        __syncthreads();
      }
    }
  }
}

// ---- StridedCopy ------------------------------------------------------------------------

/// One sub-axis of an output axis: `dim` steps of `stride` input elements.
struct CopyAxis {
  int64_t dim, stride;
};
/// For each logical output axis, its sub-axes from outer to inner (their dims multiply to
/// the axis size); Tile and DepthToSpace split an output axis in two or three.
using AxisGroups = std::vector<std::vector<CopyAxis>>;

class StridedCopyKernel final : public Kernel {
 public:
  /// `groups` has one entry per logical axis of output 0; `offset` is the input element
  /// that output element 0 reads. Unsupported: more than kMaxRank axes after merging.
  static Result<std::unique_ptr<Kernel>> create(const KernelConfig& cfg, const AxisGroups& groups,
                                                int64_t offset) {
    auto k = std::make_unique<StridedCopyKernel>();
    KILN_RETURN_IF_ERROR(k->plan(cfg, groups, offset));
    return std::unique_ptr<Kernel>(std::move(k));
  }

  std::string tactic() const override {
    switch (path_) {
      case Path::kEmpty: return "kiln:empty";
      case Path::kMemcpy: return "kiln:memcpy";
      case Path::kTiled: return "kiln:transpose_tiled32";
      case Path::kStrided: break;
    }
    return "kiln:strided_copy" + std::to_string(vec_ * 8);
  }

  Status enqueue(const LaunchArgs& a) override {
    const char* src = static_cast<const char*>(a.inputs[0]) + offset_ * static_cast<int64_t>(es_);
    void* dst = a.outputs[0];
    switch (path_) {
      case Path::kEmpty: return Status::ok();
      case Path::kMemcpy:
        KILN_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(numel_) * es_,
                                        cudaMemcpyDeviceToDevice, a.stream));
        return Status::ok();
      case Path::kTiled:
        return dispatch_unit(es_, [&](auto u) -> Status {
          using T = decltype(u);
          const int64_t tiles_a = (tile_.dim_a + kTile - 1) / kTile;
          const int64_t tiles_l = (tile_.dim_l + kTile - 1) / kTile;
          const dim3 grid(static_cast<unsigned>(std::min<int64_t>(tiles_a, 1 << 20)),
                          static_cast<unsigned>(std::min<int64_t>(tiles_l, 65535)),
                          static_cast<unsigned>(std::min<int64_t>(tile_.batch, 65535)));
          tiled_transpose_kernel<T><<<grid, dim3(kTile, kTileRows), 0, a.stream>>>(
              reinterpret_cast<const T*>(src), static_cast<T*>(dst), tile_);
          KILN_CUDA_CHECK_LAUNCH("tiled_transpose_kernel");
          return Status::ok();
        });
      case Path::kStrided: break;
    }
    // The wide plan needs both pointers aligned to its unit; else the element plan.
    const int w = vec_ > es_ && (address_bits(src) | address_bits(dst)) % vec_ == 0 ? 1 : 0;
    return dispatch_unit(w ? vec_ : es_, [&](auto u) -> Status {
      using U = decltype(u);
      const int64_t n = n_units_[w];
      if (fast_)
        strided_copy_kernel<U, dm::FastStrided><<<grid_for(n), kBlock, 0, a.stream>>>(
            reinterpret_cast<const U*>(src), static_cast<U*>(dst), n, fast_ix_[w]);
      else
        strided_copy_kernel<U, Strided<int64_t>><<<grid_for(n), kBlock, 0, a.stream>>>(
            reinterpret_cast<const U*>(src), static_cast<U*>(dst), n, ix_[w]);
      KILN_CUDA_CHECK_LAUNCH("strided_copy_kernel");
      return Status::ok();
    });
  }

 private:
  enum class Path { kEmpty, kMemcpy, kTiled, kStrided };

  Status plan(const KernelConfig& cfg, const AxisGroups& groups, int64_t offset) {
    const Operand& out = cfg.out(0);
    es_ = dtype_size(out.dtype);
    numel_ = out.numel();
    offset_ = offset;
    if (numel_ == 0) return Status::ok();
    // Output memory order, size-1 sub-axes dropped, then adjacent axes merged when the
    // input walks them as one (outer stride = inner stride * inner dim).
    std::vector<int64_t> dims, strides;
    for (int a : dm::memory_order(out)) {
      for (const CopyAxis& c : groups[a]) {
        if (c.dim == 1) continue;
        if (!dims.empty() && strides.back() == c.stride * c.dim) {
          dims.back() *= c.dim;
          strides.back() = c.stride;
        } else {
          dims.push_back(c.dim);
          strides.push_back(c.stride);
        }
      }
    }
    if (dims.empty()) dims = {1}, strides = {1};
    if (dims.size() > static_cast<size_t>(kMaxRank))
      return cfg.unsupported("more than " + std::to_string(kMaxRank) + " axes after merging");
    const size_t r = dims.size();
    if (r == 1 && strides[0] == 1) {
      path_ = Path::kMemcpy;
      return Status::ok();
    }
    // The input's contiguous axis A is not the output's innermost axis L: tile (A, L).
    int a_axis = -1;
    for (size_t d = 0; d + 1 < r; ++d)
      if (strides[d] == 1) a_axis = static_cast<int>(d);
    if (a_axis >= 0 && strides[r - 1] != 0 && dims[a_axis] >= 16 && dims[r - 1] >= 16) {
      path_ = Path::kTiled;
      const auto out_st = row_major_strides(dims);
      std::vector<int64_t> bd, bs, bo;
      for (size_t d = 0; d + 1 < r; ++d) {
        if (static_cast<int>(d) == a_axis) continue;
        bd.push_back(dims[d]);
        bs.push_back(strides[d]);
        bo.push_back(out_st[d]);
        tile_.batch *= dims[d];
      }
      tile_.dim_a = dims[a_axis];
      tile_.dim_l = dims[r - 1];
      tile_.src_stride_l = strides[r - 1];
      tile_.dst_stride_a = out_st[a_axis];
      tile_.src_batch = dm::make_strided<int64_t>(bd, bs);
      tile_.dst_batch = dm::make_strided<int64_t>(bd, bo);
      return Status::ok();
    }
    path_ = Path::kStrided;
    vec_ = es_;
    if (strides[r - 1] == 1) {
      uint64_t bits =
          static_cast<uint64_t>(dims[r - 1]) * es_ | static_cast<uint64_t>(offset) * es_;
      for (size_t d = 0; d + 1 < r; ++d)
        bits |= static_cast<uint64_t>(strides[d] < 0 ? -strides[d] : strides[d]) * es_;
      vec_ = std::max(es_, widest_unit(bits));
    }
    fast_ = numel_ < dm::kFastIndexLimit;
    for (int w = 0; w < 2; ++w) {
      const int64_t f = static_cast<int64_t>((w ? vec_ : es_) / es_);
      std::vector<int64_t> ud = dims, us = strides;
      if (f > 1) {
        ud.back() /= f;
        for (size_t d = 0; d + 1 < r; ++d) us[d] /= f;
      }
      n_units_[w] = numel_ / f;
      fast_ix_[w] = dm::make_fast_strided(ud, us);
      ix_[w] = dm::make_strided<int64_t>(ud, us);
    }
    return Status::ok();
  }

  Path path_ = Path::kEmpty;
  size_t es_ = 1, vec_ = 1;
  int64_t numel_ = 0, offset_ = 0;
  bool fast_ = false;
  int64_t n_units_[2] = {0, 0};  ///< [0]: element units, [1]: vec_-byte units
  dm::FastStrided fast_ix_[2];
  Strided<int64_t> ix_[2];
  TileArgs tile_;
};

// ---- Transpose --------------------------------------------------------------------------

Result<std::unique_ptr<Kernel>> create_transpose(const KernelConfig& cfg) {
  const Operand& in = cfg.in(0);
  const int64_t r = static_cast<int64_t>(in.rank());
  std::vector<int64_t> perm = cfg.node.attr_ints("perm");
  if (!cfg.node.has_attr("perm"))
    for (int64_t i = 0; i < r; ++i) perm.push_back(r - 1 - i);
  if (static_cast<int64_t>(perm.size()) != r)
    return cfg.error(ErrorCode::kOnnxBadAttribute, "perm does not list every axis once", "");
  const auto st = dm::logical_strides(in);
  std::vector<bool> seen(r, false);
  AxisGroups g;
  for (int64_t i = 0; i < r; ++i) {
    KILN_ASSIGN_OR_RETURN(int64_t p, node_axis(cfg, perm[i], r, "perm entry"));
    if (seen[p]) return cfg.error(ErrorCode::kOnnxBadAttribute, "perm repeats an axis", "");
    seen[p] = true;
    g.push_back({{cfg.out(0).dims[i], st[p]}});
  }
  return StridedCopyKernel::create(cfg, g, 0);
}

// ---- Slice ------------------------------------------------------------------------------

Result<std::unique_ptr<Kernel>> create_slice(const KernelConfig& cfg) {
  const Operand& in = cfg.in(0);
  const ir::Node& n = cfg.node;
  const int64_t r = static_cast<int64_t>(in.rank());
  std::vector<int64_t> starts, ends, axes, steps;
  if (cfg.opset() < 10) {
    starts = n.attr_ints("starts");
    ends = n.attr_ints("ends");
    axes = n.attr_ints("axes");
  } else {
    KILN_ASSIGN_OR_RETURN(starts, const_ints(cfg, 1, "starts"));
    KILN_ASSIGN_OR_RETURN(ends, const_ints(cfg, 2, "ends"));
    if (cfg.has_input(3)) {
      KILN_ASSIGN_OR_RETURN(axes, const_ints(cfg, 3, "axes"));
    }
    if (cfg.has_input(4)) {
      KILN_ASSIGN_OR_RETURN(steps, const_ints(cfg, 4, "steps"));
    }
  }
  if (axes.empty() && !(cfg.opset() < 10 && n.has_attr("axes")))
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    return cfg.error(ErrorCode::kShapeMismatch,
                     "Slice starts, ends, axes and steps differ in length",
                     "give one value per sliced axis in each");
  const auto st = dm::logical_strides(in);
  std::vector<int64_t> stride = st;
  int64_t offset = 0;
  std::vector<bool> seen(r, false);
  for (size_t i = 0; i < axes.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(int64_t a, node_axis(cfg, axes[i], r, "Slice axis"));
    if (seen[a] || steps[i] == 0)
      return cfg.error(ErrorCode::kInvalidArgument, "Slice axes repeat or a step is 0", "");
    seen[a] = true;
    const ops::AxisSlice s = ops::slice_axis(in.dims[a], starts[i], ends[i], steps[i]);
    if (s.count != cfg.out(0).dims[a])
      return cfg.error(ErrorCode::kInternal, "Slice output dim disagrees with shape inference", "");
    offset += s.start * st[a];
    if (s.count > 1) stride[a] = st[a] * steps[i];  // count <= dim: no overflow
  }
  AxisGroups g;
  for (int64_t d = 0; d < r; ++d) g.push_back({{cfg.out(0).dims[d], stride[d]}});
  return StridedCopyKernel::create(cfg, g, offset);
}

// ---- Tile / Expand ----------------------------------------------------------------------

// The tiled tensor is a broadcast view: output axis d = [repeat (stride 0), input axis d].
Result<std::unique_ptr<Kernel>> create_tile(const KernelConfig& cfg) {
  const Operand& in = cfg.in(0);
  const auto st = dm::logical_strides(in);
  AxisGroups g;
  for (size_t d = 0; d < in.rank(); ++d) {
    const int64_t reps = in.dims[d] ? cfg.out(0).dims[d] / in.dims[d] : 0;
    g.push_back({{reps, 0}, {in.dims[d], st[d]}});
  }
  return StridedCopyKernel::create(cfg, g, 0);
}

Result<std::unique_ptr<Kernel>> create_expand(const KernelConfig& cfg) {
  const Operand& in = cfg.in(0);
  const Operand& out = cfg.out(0);
  if (in.rank() > out.rank())
    return cfg.error(ErrorCode::kInternal, "Expand output has a lower rank than its input", "");
  const auto st = dm::logical_strides(in);
  const size_t lead = out.rank() - in.rank();
  AxisGroups g;
  for (size_t d = 0; d < out.rank(); ++d) {
    const bool has = d >= lead;
    g.push_back({{out.dims[d], has && in.dims[d - lead] != 1 ? st[d - lead] : 0}});
  }
  return StridedCopyKernel::create(cfg, g, 0);
}

// ---- DepthToSpace / SpaceToDepth --------------------------------------------------------

// Both are the ONNX spec's reshape → transpose → reshape: each output axis is a group of
// sub-axes over the input's N, C, H, W strides (sN, sC, sH, sW).
Result<std::unique_ptr<Kernel>> create_depth_space(const KernelConfig& cfg) {
  const Operand& in = cfg.in(0);
  const int64_t b = cfg.node.attr_i("blocksize", 0);
  const std::string mode = cfg.node.attr_s("mode", "DCR");
  if (in.rank() != 4 || b <= 0 || (mode != "DCR" && mode != "CRD"))
    return cfg.error(ErrorCode::kOnnxBadAttribute, "needs a 4-D input, blocksize > 0, mode DCR/CRD",
                     "");
  const bool crd = mode == "CRD";
  const int64_t N = in.dims[0], C = in.dims[1], H = in.dims[2], W = in.dims[3];
  const auto s = dm::logical_strides(in);
  const int64_t sN = s[0], sC = s[1], sH = s[2], sW = s[3];
  AxisGroups g;
  if (cfg.node.op_type == "DepthToSpace") {
    if (C % (b * b) != 0)
      return cfg.error(ErrorCode::kShapeMismatch, "C is not divisible by blocksize^2", "");
    const int64_t Co = C / (b * b);
    // out[n][c][h*b+i][w*b+j] = in[n][DCR: (i*b+j)*Co + c | CRD: c*b*b + i*b + j][h][w]
    g = {{{N, sN}},
         {{Co, (crd ? b * b : 1) * sC}},
         {{H, sH}, {b, (crd ? b : b * Co) * sC}},
         {{W, sW}, {b, (crd ? 1 : Co) * sC}}};
  } else {
    if (H % b != 0 || W % b != 0)
      return cfg.error(ErrorCode::kShapeMismatch, "H or W is not divisible by blocksize", "");
    // out[n][DCR: (i*b+j)*C + c | CRD: c*b*b + i*b + j][h][w] = in[n][c][h*b+i][w*b+j]
    std::vector<CopyAxis> depth = crd ? std::vector<CopyAxis>{{C, sC}, {b, sH}, {b, sW}}
                                      : std::vector<CopyAxis>{{b, sH}, {b, sW}, {C, sC}};
    g = {{{N, sN}}, depth, {{H / b, b * sH}}, {{W / b, b * sW}}};
  }
  return StridedCopyKernel::create(cfg, g, 0);
}

// ---- Concat / Split ---------------------------------------------------------------------

constexpr int kMaxParts = 32;

/// Up to kMaxParts parts of a concatenation viewed as [outer, row] units, each part a
/// column range [begin[k], begin[k+1]) of every row.
struct Parts {
  int n = 0;
  int64_t outer = 0, row = 0;
  int64_t col0 = 0, cols = 0;  ///< the column range this launch covers
  int64_t begin[kMaxParts + 1];
  char* ptr[kMaxParts];  ///< part k's data (Split: null = omitted output)
};

// Walks the covered columns of the whole tensor: coalesced on the concatenated side, and
// each part's rows are contiguous too. kConcat copies parts → whole, else whole → parts.
template <typename Unit, bool kConcat>
__global__ void concat_split_kernel(Parts p, Unit* whole) {
  KILN_GRID_STRIDE_LOOP(i, p.outer * p.cols) {
    const int64_t o = i / p.cols, c = p.col0 + (i - o * p.cols);
    int lo = 0, hi = p.n;  // last k with begin[k] <= c (skips empty parts)
    while (hi - lo > 1) {
      const int mid = (lo + hi) / 2;
      if (p.begin[mid] <= c)
        lo = mid;
      else
        hi = mid;
    }
    Unit* part = reinterpret_cast<Unit*>(p.ptr[lo]);
    const int64_t w = p.begin[lo + 1] - p.begin[lo];
    if (kConcat)
      whole[o * p.row + c] = part[o * w + (c - p.begin[lo])];
    else if (part)
      part[o * w + (c - p.begin[lo])] = whole[o * p.row + c];
  }
}

/// Concat (kConcat: inputs → output 0) or Split (input 0 → outputs) along one memory axis:
/// the tensor is [outer, sum of widths], part k owning widths_[k] contiguous elements of
/// each row. One launch per kMaxParts parts.
class ConcatSplitKernel final : public Kernel {
 public:
  ConcatSplitKernel(bool concat, size_t es, int64_t outer, std::vector<int64_t> widths)
      : concat_(concat), es_(es), outer_(outer), widths_(std::move(widths)) {
    for (int64_t w : widths_) row_ += w;
  }
  std::string tactic() const override { return concat_ ? "kiln:concat" : "kiln:split"; }

  Status enqueue(const LaunchArgs& a) override {
    if (outer_ == 0 || row_ == 0) return Status::ok();
    const size_t n = widths_.size();
    char* whole = static_cast<char*>(concat_ ? a.outputs[0] : const_cast<void*>(a.inputs[0]));
    auto part = [&](size_t k) -> char* {
      return static_cast<char*>(concat_ ? const_cast<void*>(a.inputs[k]) : a.outputs[k]);
    };
    uint64_t bits = address_bits(whole) | static_cast<uint64_t>(row_) * es_;
    for (size_t k = 0; k < n; ++k)
      if (widths_[k] > 0) bits |= address_bits(part(k)) | static_cast<uint64_t>(widths_[k]) * es_;
    const size_t unit = widest_unit(bits);
    const int64_t f = static_cast<int64_t>(unit / es_);
    return dispatch_unit(unit, [&](auto u) -> Status {
      using U = decltype(u);
      Parts p;
      p.outer = outer_;
      p.row = row_ / f;
      int64_t col = 0;
      for (size_t k0 = 0; k0 < n; k0 += kMaxParts) {
        p.n = static_cast<int>(std::min<size_t>(kMaxParts, n - k0));
        p.col0 = col;
        for (int k = 0; k < p.n; ++k) {
          p.begin[k] = col;
          p.ptr[k] = widths_[k0 + k] > 0 ? part(k0 + k) : nullptr;
          col += widths_[k0 + k] / f;
        }
        p.begin[p.n] = col;
        p.cols = col - p.col0;
        if (p.cols == 0) continue;
        const int64_t total = p.outer * p.cols;
        if (concat_)
          concat_split_kernel<U, true>
              <<<grid_for(total), kBlock, 0, a.stream>>>(p, reinterpret_cast<U*>(whole));
        else
          concat_split_kernel<U, false>
              <<<grid_for(total), kBlock, 0, a.stream>>>(p, reinterpret_cast<U*>(whole));
        KILN_CUDA_CHECK_LAUNCH("concat_split_kernel");
      }
      return Status::ok();
    });
  }

 private:
  bool concat_;
  size_t es_;
  int64_t outer_, row_ = 0;
  std::vector<int64_t> widths_;  ///< elements per row of each part
};

/// Outer count and elements per row below memory axis position of logical `axis`.
void split_rows(const Operand& whole, int64_t axis, int64_t& outer, int64_t& inner) {
  const std::vector<int> order = dm::memory_order(whole);
  const size_t p = std::find(order.begin(), order.end(), static_cast<int>(axis)) - order.begin();
  outer = 1, inner = 1;
  for (size_t k = 0; k < order.size(); ++k) {
    if (k < p) outer *= whole.dims[order[k]];
    if (k > p) inner *= whole.dims[order[k]];
  }
}

Result<std::unique_ptr<Kernel>> create_concat(const KernelConfig& cfg) {
  const Operand& out = cfg.out(0);
  KILN_ASSIGN_OR_RETURN(int64_t axis, node_axis(cfg, cfg.node.attr_i("axis", 0), out.rank()));
  for (const Operand& in : cfg.inputs)
    if (!in.present() || in.layout != out.layout || in.rank() != out.rank())
      return cfg.unsupported("inputs with different layouts or ranks");
  int64_t outer, inner;
  split_rows(out, axis, outer, inner);
  std::vector<int64_t> widths;
  for (const Operand& in : cfg.inputs) widths.push_back(in.dims[axis] * inner);
  return std::unique_ptr<Kernel>(
      new ConcatSplitKernel(true, dtype_size(out.dtype), outer, std::move(widths)));
}

Result<std::unique_ptr<Kernel>> create_split(const KernelConfig& cfg) {
  const Operand& in = cfg.in(0);
  KILN_ASSIGN_OR_RETURN(int64_t axis, node_axis(cfg, cfg.node.attr_i("axis", 0), in.rank()));
  const size_t n_out = cfg.outputs.size();
  std::vector<int64_t> sizes;
  bool all_present = true;
  for (const Operand& o : cfg.outputs) {
    all_present &= o.present();
    if (o.present() && o.layout != in.layout) return cfg.unsupported("outputs with another layout");
  }
  if (all_present) {
    for (const Operand& o : cfg.outputs) sizes.push_back(o.dims[axis]);
  } else if (cfg.opset() >= 13 && cfg.has_input(1)) {
    KILN_ASSIGN_OR_RETURN(sizes, const_ints(cfg, 1, "split"));
  } else if (cfg.opset() < 13 && cfg.node.has_attr("split")) {
    sizes = cfg.node.attr_ints("split");
  } else {
    // Equal parts, the last one smaller (Split-18 num_outputs rule; exact for older opsets).
    const int64_t d = in.dims[axis], k = static_cast<int64_t>(n_out);
    const int64_t chunk = d % k == 0 ? d / k : d / k + 1;
    sizes.assign(n_out, chunk);
    sizes.back() = d - chunk * (k - 1);
  }
  int64_t sum = 0;
  for (int64_t s : sizes) sum += s;
  if (sizes.size() != n_out || sum != in.dims[axis])
    return cfg.error(ErrorCode::kShapeMismatch, "Split sizes do not add up to the axis size", "");
  int64_t outer, inner;
  split_rows(in, axis, outer, inner);
  for (int64_t& s : sizes) s *= inner;
  return std::unique_ptr<Kernel>(new ConcatSplitKernel(false, dtype_size(in.dtype), outer, sizes));
}

// ---- Pad --------------------------------------------------------------------------------

enum PadMode : int { kPadConstant, kPadReflect, kPadEdge, kPadWrap };

/// One output axis in memory order: output index o reads input index j + crop where
/// j = o - lead when 0 <= j < m (m = elements kept after negative pads), else by mode.
struct PadAxis {
  int64_t out, lead, crop, m, stride;
};

template <typename Unit>
struct PadArgs {
  int rank = 0;
  int mode = kPadConstant;
  PadAxis ax[kMaxRank];
  dm::FastDiv div[kMaxRank];  ///< by ax[d].out, when `fast` (fewer than 2^31 outputs)
  bool fast = false;
  Unit fill;                                ///< constant, replicated to the unit (attribute)
  const unsigned char* fill_ptr = nullptr;  ///< constant_value input on the device, or null
  int es = 1;
};

/// Source element offset of output element `i` (p.ax in memory order), out-of-range
/// indices mapped by `mode`; `constant` is set when a kPadConstant index lies in the padding.
template <typename Unit>
__device__ __forceinline__ int64_t pad_source_offset(const PadArgs<Unit>& p, int mode, int64_t i,
                                                     bool& constant) {
  int64_t rest = i, off = 0;
  constant = false;
  for (int d = p.rank - 1; d >= 0; --d) {
    const PadAxis& a = p.ax[d];
    const int64_t q = p.fast ? p.div[d].div(static_cast<uint32_t>(rest)) : rest / a.out;
    int64_t j = rest - q * a.out - a.lead;
    rest = q;
    if (j < 0 || j >= a.m) {
      switch (mode) {
        case kPadConstant: constant = true; break;
        case kPadEdge: j = j < 0 ? 0 : a.m - 1; break;
        case kPadWrap: j = ((j % a.m) + a.m) % a.m; break;
        default: {  // reflect, periodic like numpy.pad for pads longer than the axis
          if (a.m == 1) {
            j = 0;
            break;
          }
          const int64_t period = 2 * (a.m - 1);
          j = ((j % period) + period) % period;
          if (j >= a.m) j = period - j;
        }
      }
    }
    off += (j + a.crop) * a.stride;
  }
  return off;
}

template <typename Unit>
__global__ void pad_kernel(const Unit* __restrict__ src, Unit* __restrict__ dst, int64_t n,
                           PadArgs<Unit> p) {
  Unit fill = p.fill;
  if (p.fill_ptr) {
    unsigned char bytes[sizeof(Unit)];
    for (int k = 0; k < static_cast<int>(sizeof(Unit)); ++k) bytes[k] = p.fill_ptr[k % p.es];
    memcpy(&fill, bytes, sizeof(Unit));
  }
  KILN_GRID_STRIDE_LOOP(i, n) {
    bool constant;
    const int64_t off = pad_source_offset(p, p.mode, i, constant);
    dst[i] = constant ? fill : src[off];
  }
}

/// Constant-mode Pad whose innermost output axis is padded and short: one thread per
/// output row of kPer elements, written as one R store (e.g. channels 3 → 4 of an NHWC
/// output: three 2-byte loads, one 8-byte store per pixel, where the element kernel makes
/// four 2-byte stores with an index division each). The row's source elements may be
/// strided (an NCHW input: one per channel plane; neighbouring threads still read
/// neighbouring addresses). `p` holds the outer axes; `last` the innermost.
template <typename E, typename R>
__global__ void pad_rows_kernel(const E* __restrict__ src, R* __restrict__ dst, int64_t rows,
                                PadArgs<E> p, PadAxis last) {
  constexpr int kPer = static_cast<int>(sizeof(R) / sizeof(E));
  E fill = p.fill;
  if (p.fill_ptr) memcpy(&fill, p.fill_ptr, sizeof(E));
  KILN_GRID_STRIDE_LOOP(row, rows) {
    bool constant;
    const int64_t off = pad_source_offset(p, kPadConstant, row, constant);
    E v[kPer];
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int64_t j = k - last.lead;
      v[k] = !constant && j >= 0 && j < last.m ? src[off + (j + last.crop) * last.stride] : fill;
    }
    R r;
    memcpy(&r, v, sizeof(R));
    dst[row] = r;
  }
}

class PadKernel final : public Kernel {
 public:
  PadKernel(std::vector<PadAxis> axes, int mode, size_t es, size_t vec, uint64_t fill_bits,
            int fill_input)
      : axes_(std::move(axes)),
        mode_(mode),
        es_(es),
        vec_(vec),
        fill_bits_(fill_bits),
        fill_input_(fill_input) {
    // The row kernel: constant mode, a padded innermost output axis (else the element
    // kernel's vector units apply) whose row is one 4/8/16-byte unit.
    const PadAxis& last = axes_.back();
    const size_t rb = row_bytes();
    rows_ = mode_ == kPadConstant && last.m < last.out && es_ < rb && (rb == 4 || rb == 8 || rb == 16);
  }
  std::string tactic() const override {
    return rows_ ? "kiln:pad_rows" + std::to_string(row_bytes() * 8) : "kiln:pad" + std::to_string(vec_ * 8);
  }

  Status enqueue(const LaunchArgs& a) override {
    const void* src = a.inputs[0];
    void* dst = a.outputs[0];
    if (rows_ && address_bits(dst) % row_bytes() == 0) return enqueue_rows(a);
    const size_t unit =
        vec_ > es_ && (address_bits(src) | address_bits(dst)) % vec_ == 0 ? vec_ : es_;
    const int64_t f = static_cast<int64_t>(unit / es_);
    return dispatch_unit(unit, [&](auto u) -> Status {
      using U = decltype(u);
      PadArgs<U> p;
      p.rank = static_cast<int>(axes_.size());
      p.mode = mode_;
      p.es = static_cast<int>(es_);
      int64_t n = 1;
      for (int d = 0; d < p.rank; ++d) {
        p.ax[d] = axes_[d];
        if (f > 1) {  // only the unpadded, contiguous innermost axis is widened
          if (d + 1 == p.rank)
            p.ax[d].out /= f, p.ax[d].m /= f;
          else
            p.ax[d].stride /= f;
        }
        n *= p.ax[d].out;
      }
      unsigned char bytes[sizeof(U)];
      for (size_t k = 0; k < sizeof(U); ++k)
        bytes[k] = reinterpret_cast<const unsigned char*>(&fill_bits_)[k % es_];
      std::memcpy(&p.fill, bytes, sizeof(U));
      if (fill_input_ >= 0) p.fill_ptr = static_cast<const unsigned char*>(a.inputs[fill_input_]);
      if (n == 0) return Status::ok();
      p.fast = n < dm::kFastIndexLimit;
      for (int d = 0; p.fast && d < p.rank; ++d)
        p.div[d] = dm::FastDiv(static_cast<uint32_t>(p.ax[d].out));
      pad_kernel<U><<<grid_for(n), kBlock, 0, a.stream>>>(static_cast<const U*>(src),
                                                          static_cast<U*>(dst), n, p);
      KILN_CUDA_CHECK_LAUNCH("pad_kernel");
      return Status::ok();
    });
  }

 private:
  size_t row_bytes() const { return static_cast<size_t>(axes_.back().out) * es_; }

  Status enqueue_rows(const LaunchArgs& a) {
    return dispatch_unit(es_, [&](auto e) -> Status {
      using E = decltype(e);
      return dispatch_unit(row_bytes(), [&](auto r) -> Status {
        using R = decltype(r);
        if constexpr (sizeof(R) <= sizeof(E) || sizeof(R) % sizeof(E) != 0) {
          return Status(ErrorCode::kInternal, "pad_rows: row unit not a multiple of the element");
        } else {
          PadArgs<E> p;
          p.rank = static_cast<int>(axes_.size()) - 1;
          int64_t rows = 1;
          for (int d = 0; d < p.rank; ++d) {
            p.ax[d] = axes_[d];
            rows *= p.ax[d].out;
          }
          std::memcpy(&p.fill, &fill_bits_, sizeof(E));
          if (fill_input_ >= 0) p.fill_ptr = static_cast<const unsigned char*>(a.inputs[fill_input_]);
          if (rows == 0) return Status::ok();
          p.fast = rows < dm::kFastIndexLimit;
          for (int d = 0; p.fast && d < p.rank; ++d) p.div[d] = dm::FastDiv(static_cast<uint32_t>(p.ax[d].out));
          pad_rows_kernel<E, R><<<grid_for(rows), kBlock, 0, a.stream>>>(
              static_cast<const E*>(a.inputs[0]), static_cast<R*>(a.outputs[0]), rows, p, axes_.back());
          KILN_CUDA_CHECK_LAUNCH("pad_rows_kernel");
          return Status::ok();
        }
      });
    });
  }

  std::vector<PadAxis> axes_;
  int mode_;
  size_t es_, vec_;
  uint64_t fill_bits_;
  int fill_input_;  ///< input holding the constant on the device, or -1
  bool rows_ = false;  ///< pad_rows_kernel applies (see the constructor)
};

Result<std::unique_ptr<Kernel>> create_pad(const KernelConfig& cfg) {
  const Operand& in = cfg.in(0);
  const Operand& out = cfg.out(0);
  const ir::Node& n = cfg.node;
  const int64_t r = static_cast<int64_t>(in.rank());
  const std::string ms = n.attr_s("mode", "constant");
  const int mode = ms == "constant"  ? kPadConstant
                   : ms == "reflect" ? kPadReflect
                   : ms == "edge"    ? kPadEdge
                   : ms == "wrap"    ? kPadWrap
                                     : -1;
  if (mode < 0)
    return cfg.error(ErrorCode::kOnnxBadAttribute, "Pad mode '" + ms + "' is not supported", "");
  std::vector<int64_t> pads, axes;
  if (cfg.opset() < 11) {
    pads = n.attr_ints("pads");
  } else {
    KILN_ASSIGN_OR_RETURN(pads, const_ints(cfg, 1, "pads"));
  }
  if (cfg.opset() >= 18 && cfg.has_input(3)) {
    KILN_ASSIGN_OR_RETURN(axes, const_ints(cfg, 3, "axes"));
  } else {
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  }
  if (pads.size() != 2 * axes.size())
    return cfg.error(ErrorCode::kShapeMismatch, "Pad needs 2 pads per padded axis", "");
  std::vector<int64_t> begin(r, 0), end(r, 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(int64_t a, node_axis(cfg, axes[i], r, "Pad axis"));
    begin[a] = pads[i];
    end[a] = pads[axes.size() + i];
  }
  const size_t es = dtype_size(in.dtype);
  // The constant's bytes: the attribute before opset 11, else input 2 read on the device.
  uint64_t fill_bits = 0;
  int fill_input = -1;
  if (cfg.opset() < 11) {
    HostTensor v(in.dtype, {});
    v.set_f64(0, n.attr_f("value", 0.0f));
    std::memcpy(&fill_bits, v.raw(), es);
  } else if (cfg.has_input(2) && cfg.in(2).numel() > 0) {
    fill_input = 2;
  }
  const auto in_st = dm::logical_strides(in);
  std::vector<PadAxis> ax;
  for (int a : dm::memory_order(out)) {
    const int64_t crop = std::max<int64_t>(0, -begin[a]);
    const int64_t m = in.dims[a] - crop - std::max<int64_t>(0, -end[a]);
    if (m < 0 || out.dims[a] != m + std::max<int64_t>(0, begin[a]) + std::max<int64_t>(0, end[a]))
      return cfg.error(ErrorCode::kShapeMismatch, "Pad output dims disagree with the pads", "");
    PadAxis p{out.dims[a], std::max<int64_t>(0, begin[a]), crop, m, in_st[a]};
    // Merge with the previous axis when both are unpadded and walked contiguously.
    const bool plain = p.lead == 0 && p.crop == 0 && p.m == p.out;
    if (!ax.empty() && plain) {
      PadAxis& q = ax.back();
      if (q.lead == 0 && q.crop == 0 && q.m == q.out && q.stride == p.stride * p.out) {
        q = {q.out * p.out, 0, 0, q.m * p.out, p.stride};
        continue;
      }
    }
    ax.push_back(p);
  }
  if (ax.empty()) ax.push_back({1, 0, 0, 1, 1});  // rank 0: one element
  if (ax.size() > static_cast<size_t>(kMaxRank)) return cfg.unsupported("rank > 8");
  size_t vec = es;
  const PadAxis& last = ax.back();
  if (last.lead == 0 && last.crop == 0 && last.m == last.out && last.stride == 1) {
    uint64_t bits = static_cast<uint64_t>(last.out) * es;
    for (size_t d = 0; d + 1 < ax.size(); ++d) bits |= static_cast<uint64_t>(ax[d].stride) * es;
    vec = std::max(es, widest_unit(bits));
  }
  return std::unique_ptr<Kernel>(
      new PadKernel(std::move(ax), mode, es, vec, fill_bits, fill_input));
}

// ---- Dropout (inference) ----------------------------------------------------------------

/// Output 0 aliases input 0 (alias_input0); this kernel only writes the optional mask,
/// all ones (T before opset 10, bool after).
class DropoutMaskKernel final : public Kernel {
 public:
  DropoutMaskKernel(size_t es, int64_t numel, uint64_t one) : es_(es), numel_(numel), one_(one) {}
  std::string tactic() const override { return "kiln:dropout_mask"; }
  Status enqueue(const LaunchArgs& a) override {
    if (numel_ == 0 || !a.outputs[1]) return Status::ok();
    return dispatch_unit(es_, [&](auto u) -> Status {
      using U = decltype(u);
      U v;
      std::memcpy(&v, &one_, sizeof(U));
      fill_kernel<U>
          <<<grid_for(numel_), kBlock, 0, a.stream>>>(static_cast<U*>(a.outputs[1]), numel_, v);
      KILN_CUDA_CHECK_LAUNCH("fill_kernel");
      return Status::ok();
    });
  }

 private:
  size_t es_;
  int64_t numel_;
  uint64_t one_;
};

Result<std::unique_ptr<Kernel>> create_dropout(const KernelConfig& cfg) {
  const ir::Node& n = cfg.node;
  // Training mode: the training_mode input from opset 12 (must be a known false), before
  // opset 7 the is_test attribute (default 0 = training). Ratio 0 keeps every element.
  bool training = false;
  if (cfg.opset() >= 12) {
    if (cfg.has_input(2)) {
      if (!cfg.in(2).value) return cfg.unsupported("training_mode is not a constant");
      training = cfg.in(2).value->numel() > 0 && cfg.in(2).value->get_i64(0) != 0;
    }
  } else {
    training = cfg.opset() < 7 && n.attr_i("is_test", 0) == 0;
  }
  if (training) {
    double ratio = n.attr_f("ratio", 0.5f);
    if (cfg.opset() >= 12) {
      ratio = 0.5;
      if (cfg.has_input(1) && !cfg.in(1).value) return cfg.unsupported("training mode");
      if (cfg.has_input(1) && cfg.in(1).value->numel() > 0) ratio = cfg.in(1).value->get_f64(0);
    }
    if (ratio != 0.0) return cfg.unsupported("training mode");
  }
  uint64_t one = 0;
  size_t es = 1;
  int64_t numel = 0;
  if (cfg.outputs.size() > 1 && cfg.out(1).present()) {
    const Operand& m = cfg.out(1);
    HostTensor v(m.dtype, {});
    v.set_f64(0, 1.0);
    es = dtype_size(m.dtype);
    std::memcpy(&one, v.raw(), es);
    numel = m.numel();
  }
  return std::unique_ptr<Kernel>(new DropoutMaskKernel(es, numel, one));
}

}  // namespace

KILN_REGISTER_CUDA_KERNELS(data_movement) {
  reg.add({.op_type = "Transpose", .create = create_transpose, .nhwc = true});
  reg.add({.op_type = "Slice", .create = create_slice, .nhwc = true});
  reg.add({.op_type = "Tile", .create = create_tile});
  reg.add({.op_type = "Expand", .create = create_expand});
  reg.add({.op_type = "DepthToSpace", .create = create_depth_space});
  reg.add({.op_type = "SpaceToDepth", .create = create_depth_space});
  reg.add({.op_type = "Concat", .create = create_concat, .nhwc = true});
  reg.add({.op_type = "Split", .create = create_split, .nhwc = true});
  reg.add({.op_type = "Pad", .create = create_pad, .nhwc = true});
  // Views without a kernel are registered in views.cc; Dropout's mask needs one.
  reg.add({.op_type = "Dropout", .create = create_dropout, .alias_input0 = true});
}

}  // namespace kiln::cuda
