// Pad (ONNX Operators.md Pad-2/11/13/18/19): constant, reflect, edge and wrap modes;
// pads/value are attributes before opset 11 and inputs after, `axes` is an input from 18.
// Negative pads crop. Large reflect/wrap pads repeat periodically like numpy.pad, which the
// ONNX reference implementation calls.
#include <algorithm>
#include <cstring>
#include <functional>

#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

std::optional<PadMode> pad_mode(const ir::Node& n) {
  const std::string m = n.attr_s("mode", "constant");
  if (m == "constant") return PadMode::kConstant;
  if (m == "reflect") return PadMode::kReflect;
  if (m == "edge") return PadMode::kEdge;
  if (m == "wrap") return PadMode::kWrap;
  return std::nullopt;
}

Status pad_check(const ir::Node& n) {
  if (!pad_mode(n))
    return Status(ErrorCode::kOnnxBadAttribute,
                  "Pad mode '" + n.attr_s("mode", "") + "' is not supported",
                  "use constant, reflect, edge or wrap");
  return Status::ok();
}

// Per-axis [begin, end] pads for every axis of a rank-r input (zeros where not listed).
struct FullPads {
  std::vector<int64_t> begin, end;
};

// Reads pads (attribute before opset 11, input 1 after) and axes (input 3, opset >= 18)
// through `ints(i)`; nullopt when they are not known yet.
template <typename IntsFn>
Result<std::optional<FullPads>> read_pads(
    const ir::Node& n, int64_t rank, IntsFn ints,
    const std::function<Status(ErrorCode, std::string, std::string)>& err) {
  std::optional<std::vector<int64_t>> pads =
      n.opset < 11 ? std::optional(n.attr_ints("pads")) : ints(1);
  if (!pads) return std::optional<FullPads>();
  std::vector<int64_t> axes;
  if (n.opset >= 18 && n.input(3)) {
    auto a = ints(3);
    if (!a) return std::optional<FullPads>();
    axes = *a;
  } else {
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  }
  if (pads->size() != 2 * axes.size())
    return err(ErrorCode::kShapeMismatch,
               "Pad has " + std::to_string(pads->size()) + " pads for " +
                   std::to_string(axes.size()) + " padded axes (rank " + std::to_string(rank) + ")",
               "pads must list all begin values, then all end values: 2 per axis");
  FullPads fp{std::vector<int64_t>(rank, 0), std::vector<int64_t>(rank, 0)};
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < axes.size(); ++i) {
    auto a = normalize_axis(axes[i], rank);
    if (!a || seen[*a])
      return err(ErrorCode::kBadAxis,
                 "Pad axis " + std::to_string(axes[i]) + " is out of range or repeated",
                 "axes must be distinct and in [-rank, rank-1]");
    seen[*a] = true;
    fp.begin[*a] = (*pads)[i];
    fp.end[*a] = (*pads)[axes.size() + i];
  }
  return std::optional<FullPads>(std::move(fp));
}

Status pad_infer(InferContext& ctx) {
  if (ctx.opset() >= 11) KILN_RETURN_IF_ERROR(require_index_type(ctx, 1, "Pad pads"));
  if (ctx.opset() >= 18) KILN_RETURN_IF_ERROR(require_index_type(ctx, 3, "Pad axes"));
  const DataType t = ctx.input_type(0);
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  if (ctx.opset() >= 11 && ctx.has_input(2) && ctx.input_type(2) != t)
    return ctx.error(ErrorCode::kTypeMismatch,
                     std::string("Pad constant_value is ") + dtype_name(ctx.input_type(2)) +
                         ", data is " + dtype_name(t),
                     "constant_value must have the data's type");
  const int64_t r = static_cast<int64_t>(in.rank());
  auto err = [&](ErrorCode c, std::string m, std::string h) { return ctx.error(c, m, h); };
  KILN_ASSIGN_OR_RETURN(
      auto pads, read_pads(
                     ctx.node(), r, [&](size_t i) { return known_input_ints(ctx, i); }, err));
  Shape out = in;
  for (int64_t d = 0; d < r; ++d) {
    if (!pads) {
      out.dims[d] = Dim::unknown();
      continue;
    }
    const int64_t b = pads->begin[d], e = pads->end[d];
    if (b == 0 && e == 0) continue;
    if (!in.dims[d].is_known()) {
      out.dims[d] = Dim::unknown();
      continue;
    }
    const int64_t n = in.dims[d].value;
    // Elements kept after cropping by negative pads (written so it cannot overflow).
    const int64_t kept_b = n + std::min<int64_t>(b, 0);
    const int64_t kept =
        kept_b < 0 || std::min<int64_t>(e, 0) < -kept_b ? -1 : kept_b + std::min<int64_t>(e, 0);
    if (kept < 0)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "negative pads " + std::to_string(b) + ", " + std::to_string(e) +
                           " remove more than the " + std::to_string(n) + " elements of axis " +
                           std::to_string(d) + " of " + in.to_string(),
                       "negative pads crop; they cannot exceed the dimension");
    if (kept == 0 && (b > 0 || e > 0) && *pad_mode(ctx.node()) != PadMode::kConstant)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "cannot pad empty axis " + std::to_string(d) + " of " + in.to_string() +
                           " in mode " + ctx.node().attr_s("mode", "constant"),
                       "reflect, edge and wrap need at least one element to copy from");
    int64_t size = 0;
    if (__builtin_add_overflow(n, b, &size) || __builtin_add_overflow(size, e, &size))
      return ctx.error(ErrorCode::kOutOfMemory, "Pad output is too large", "check the pads");
    out.dims[d] = Dim(size);
  }
  KILN_RETURN_IF_ERROR(check_output_size(ctx, out, t));
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

// For each output coordinate of one axis, the input coordinate it copies, or -1 for the
// constant value.
std::vector<int64_t> axis_map(int64_t n, int64_t b, int64_t e, PadMode mode) {
  const int64_t crop = std::max<int64_t>(0, -b);
  const int64_t m = n - crop - std::max<int64_t>(0, -e);  // elements kept (>= 0, checked in infer)
  const int64_t lead = std::max<int64_t>(0, b);
  const int64_t out = m + lead + std::max<int64_t>(0, e);
  std::vector<int64_t> map(out);
  for (int64_t o = 0; o < out; ++o) {
    int64_t j = o - lead;
    if (j < 0 || j >= m) {
      switch (mode) {
        case PadMode::kConstant:
          j = -1;
          break;
        case PadMode::kEdge:
          j = std::clamp<int64_t>(j, 0, m - 1);
          break;
        case PadMode::kWrap:
          j = ((j % m) + m) % m;
          break;
        case PadMode::kReflect: {
          if (m == 1) {
            j = 0;
            break;
          }
          const int64_t p = 2 * (m - 1);
          j = ((j % p) + p) % p;
          if (j >= m) j = p - j;
          break;
        }
      }
    }
    map[o] = j < 0 ? -1 : j + crop;
  }
  return map;
}

Status pad_cpu(KernelContext& ctx) {
  const HostTensor& in = ctx.input(0);
  HostTensor& out = ctx.output(0);
  const ir::Node& n = ctx.node();
  const size_t es = dtype_size(in.dtype());
  const int64_t r = static_cast<int64_t>(in.rank());
  auto err = [&](ErrorCode c, std::string m, std::string h) { return ctx.error(c, m, h); };
  auto ints = [&](size_t i) -> std::optional<std::vector<int64_t>> {
    return ctx.has_input(i) ? std::optional(ctx.input(i).to_i64_vector()) : std::nullopt;
  };
  KILN_ASSIGN_OR_RETURN(auto pads, read_pads(n, r, ints, err));
  const PadMode mode = *pad_mode(n);

  // The constant, as bytes of the data type (zero unless given).
  HostTensor value(in.dtype(), {});
  if (n.opset < 11)
    value.set_f64(0, n.attr_f("value", 0.0f));
  else if (ctx.has_input(2) && ctx.input(2).numel() > 0)
    std::memcpy(value.raw(), ctx.input(2).raw(), es);

  if (r == 0) {
    std::memcpy(out.raw(), in.raw(), es);
    return Status::ok();
  }
  std::vector<std::vector<int64_t>> maps;
  for (int64_t d = 0; d < r; ++d)
    maps.push_back(axis_map(in.dims()[d], pads->begin[d], pads->end[d], mode));
  if (out.numel() == 0) return Status::ok();

  const auto in_st = strides_of(in.dims());
  const auto& last = maps.back();
  const int64_t row = out.dims().back();
  // The run of the last axis that copies a contiguous input range, done with one memcpy.
  int64_t lo = 0;
  while (lo < row && last[lo] < 0) ++lo;
  int64_t hi = lo;
  while (hi < row && last[hi] >= 0 && last[hi] == last[lo] + (hi - lo)) ++hi;

  const char* src = static_cast<const char*>(in.raw());
  char* dst = static_cast<char*>(out.raw());
  std::vector<int64_t> idx(r, 0);
  const int64_t rows = out.numel() / row;
  for (int64_t k = 0; k < rows; ++k, dst += row * es) {
    int64_t base = 0;
    bool constant_row = false;
    for (int64_t d = 0; d + 1 < r; ++d) {
      const int64_t m = maps[d][idx[d]];
      if (m < 0) constant_row = true;
      base += m * in_st[d];
    }
    if (constant_row) {
      fill_pattern(dst, row, value.raw(), es);
    } else {
      for (int64_t j = 0; j < row; ++j) {
        if (j == lo && hi > lo) {
          std::memcpy(dst + j * es, src + (base + last[j]) * es, (hi - lo) * es);
          j = hi - 1;
        } else if (last[j] < 0) {
          std::memcpy(dst + j * es, value.raw(), es);
        } else {
          std::memcpy(dst + j * es, src + (base + last[j]) * es, es);
        }
      }
    }
    for (int64_t d = r - 2; d >= 0; --d) {
      if (++idx[d] < out.dims()[d]) break;
      idx[d] = 0;
    }
  }
  return Status::ok();
}

}  // namespace

KILN_REGISTER_OPS(pad) {
  // Pad-23/24/25 only add types kiln lacks.
  reg.add({.op_type = "Pad", .min_opset = 2, .max_opset = 25, .min_inputs = 1, .max_inputs = 4,
           .infer = pad_infer, .cpu = pad_cpu, .check = pad_check,
           .summary = "pad with a constant, reflection, edge or wrap (negative pads crop)"});
}

}  // namespace kiln::ops
