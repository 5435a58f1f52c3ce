// Normalization ops (ONNX Operators.md): BatchNormalization (inference), Instance-,
// Layer-, GroupNormalization, LRN, MeanVarianceNormalization, LpNormalization.
// Statistics are accumulated in f64 (two passes: mean, then centred variance) whatever
// the tensor type, which is at least as precise as the stash_type the spec asks for;
// narrow floats are read and written through f32.
#include <algorithm>
#include <cmath>
#include <string>

#include "ops/helpers.h"

namespace kiln::ops {
namespace {

/// Mean and 1/sqrt(variance + eps) of `n` values at x[0], x[stride], ... (population
/// variance, as every ONNX normalization uses).
template <typename T>
std::pair<double, double> moments(const T* x, int64_t n, double eps) {
  using C = compute_t<T>;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(static_cast<C>(x[i]));
  const double mean = n ? sum / n : 0.0;
  double sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(static_cast<C>(x[i])) - mean;
    sq += d * d;
  }
  const double var = n ? sq / n : 0.0;
  return {mean, 1.0 / std::sqrt(var + eps)};
}

std::vector<double> values_f64(const HostTensor& t) {
  std::vector<double> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.get_f64(i);
  return v;
}

// ---- BatchNormalization -----------------------------------------------------------------

Status check_batch_norm(const ir::Node& n) {
  // Outputs past Y (running / saved statistics) exist only in training mode.
  const bool extra_outputs =
      std::count_if(n.outputs.begin() + std::min<size_t>(1, n.outputs.size()), n.outputs.end(),
                    [](const ir::Value* v) { return v != nullptr; }) > 0;
  const bool training = (n.opset >= 14 && n.attr_i("training_mode", 0) != 0) ||
                        (n.opset < 7 && n.attr_i("is_test", 0) == 0) || extra_outputs;
  if (training)
    return Status(
        ErrorCode::kOnnxUnsupportedAttribute,
        "BatchNormalization in training mode (batch statistics, running-mean outputs) is not "
        "supported",
        "kiln runs inference: export the model in eval mode (model.eval() / training_mode=0) so "
        "BatchNormalization uses the stored mean and variance");
  return Status::ok();
}

// kShapeMismatch when input 0 is known to have rank < 2 (it must be [N, C, D1, ..., Dn]).
Status check_nc_input(const InferContext& ctx, const char* hint) {
  const Shape& x = ctx.input_shape(0);
  if (x.rank_known && x.rank() < 2)
    return ctx.error(ErrorCode::kShapeMismatch, "input " + x.to_string() + " must have rank >= 2",
                     hint);
  return Status::ok();
}

Status infer_batch_norm(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_nc_input(ctx, "BatchNormalization input is [N, C, D1, ..., Dn]"));
  const Shape& x = ctx.input_shape(0);
  for (size_t i = 1; i < 5; ++i) {
    const Shape& p = ctx.input_shape(i);
    if (x.rank_known && p.rank_known && p.rank() == 1 && known_to_differ(p.dims[0], x.dims[1]))
      return ctx.error(ErrorCode::kShapeMismatch,
                       "input " + std::to_string(i) + " has shape " + p.to_string() + " but X " +
                           x.to_string() + " has " + x.dims[1].to_string() + " channels",
                       "scale, B, mean and var hold one value per channel");
  }
  return infer_same_as_input0(ctx);
}

Status batch_norm_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const int64_t n = x.dims()[0];
  const int64_t per_sample = n ? x.numel() / n : 0;
  const int64_t params = ctx.input(1).numel();
  // One value per channel; opset <= 8 with spatial=0 has one per (channel, position).
  if (params == 0 || per_sample % params != 0 || (params != x.dims()[1] && params != per_sample))
    return ctx.error(
        ErrorCode::kShapeMismatch,
        "scale has " + std::to_string(params) + " values for input " + dims_to_string(x.dims()),
        "scale, B, mean and var hold one value per channel");
  for (size_t i = 2; i < 5; ++i)
    if (ctx.input(i).numel() != params)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "input " + std::to_string(i) + " has " +
                           std::to_string(ctx.input(i).numel()) + " values, scale has " +
                           std::to_string(params),
                       "scale, B, mean and var must have the same shape");
  const double eps = ctx.node().attr_f("epsilon", 1e-5f);
  const auto scale = values_f64(ctx.input(1)), bias = values_f64(ctx.input(2)),
             mean = values_f64(ctx.input(3)), var = values_f64(ctx.input(4));
  std::vector<double> a(params), b(params);
  for (int64_t c = 0; c < params; ++c) {
    a[c] = scale[c] / std::sqrt(var[c] + eps);
    b[c] = bias[c] - mean[c] * a[c];
  }
  const int64_t block = per_sample / params;
  return dispatch_float(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    T* yp = ctx.output(0).data<T>();
    for (int64_t s = 0; s < n; ++s)
      for (int64_t c = 0; c < params; ++c) {
        const C ac = static_cast<C>(a[c]), bc = static_cast<C>(b[c]);
        const int64_t off = s * per_sample + c * block;
        for (int64_t i = off; i < off + block; ++i)
          yp[i] = static_cast<T>(static_cast<C>(xp[i]) * ac + bc);
      }
    return Status::ok();
  });
}

// ---- Instance / Group normalization ----------------------------------------------------------

Status infer_channel_norm(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_nc_input(ctx, "the input is [N, C, D1, ..., Dn]"));
  return infer_same_as_input0(ctx);
}

/// Normalizes each of `blocks` contiguous blocks of `block` values; the affine parameter
/// of element j of block b is scale[param(b, j)], bias[param(b, j)].
template <typename T, typename ParamIndex>
void normalize_blocks(const T* x, T* y, int64_t blocks, int64_t block, double eps,
                      const std::vector<double>& scale, const std::vector<double>& bias,
                      ParamIndex param) {
  using C = compute_t<T>;
  for (int64_t b = 0; b < blocks; ++b) {
    const T* xb = x + b * block;
    T* yb = y + b * block;
    const auto [mean, inv_std] = moments(xb, block, eps);
    for (int64_t j = 0; j < block; ++j) {
      const int64_t p = param(b, j);
      const double v = (static_cast<double>(static_cast<C>(xb[j])) - mean) * inv_std;
      yb[j] = static_cast<T>(static_cast<C>(v * scale[p] + (bias.empty() ? 0.0 : bias[p])));
    }
  }
}

Status instance_norm_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const int64_t c = x.dims()[1];
  const int64_t planes = x.dims()[0] * c;
  const int64_t spatial = planes ? x.numel() / planes : 0;
  if (ctx.input(1).numel() != c || ctx.input(2).numel() != c)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "scale and B must have " + std::to_string(c) + " values for input " +
                         dims_to_string(x.dims()),
                     "InstanceNormalization has one scale and bias per channel");
  const auto scale = values_f64(ctx.input(1)), bias = values_f64(ctx.input(2));
  const double eps = ctx.node().attr_f("epsilon", 1e-5f);
  return dispatch_float(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    normalize_blocks(x.data<T>(), ctx.output(0).data<T>(), planes, spatial, eps, scale, bias,
                     [c](int64_t b, int64_t) { return b % c; });
    return Status::ok();
  });
}

Status group_norm_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const int64_t c = x.dims()[1];
  const int64_t groups = ctx.node().attr_i("num_groups", 0);
  if (groups <= 0 || c % groups != 0)
    return ctx.error(ErrorCode::kOnnxBadAttribute,
                     "num_groups " + std::to_string(groups) + " does not divide the " +
                         std::to_string(c) + " channels",
                     "num_groups must be a positive divisor of the channel count");
  // Opset 18 has one scale/bias per group, opset 21 one per channel.
  const int64_t per = ctx.opset() >= 21 ? c : groups;
  if (ctx.input(1).numel() != per || ctx.input(2).numel() != per)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "scale and bias must have " + std::to_string(per) + " values at opset " +
                         std::to_string(ctx.opset()),
                     ctx.opset() >= 21
                         ? "GroupNormalization-21 takes one scale and bias per channel"
                         : "GroupNormalization-18 takes one scale and bias per group; "
                           "opset 21 changed it to per channel");
  const int64_t blocks = x.dims()[0] * groups;
  const int64_t block = blocks ? x.numel() / blocks : 0;
  const int64_t spatial = c ? block * groups / c : 0;
  const auto scale = values_f64(ctx.input(1)), bias = values_f64(ctx.input(2));
  const double eps = ctx.node().attr_f("epsilon", 1e-5f);
  const bool per_channel = per == c;
  return dispatch_float(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    normalize_blocks(x.data<T>(), ctx.output(0).data<T>(), blocks, block, eps, scale, bias,
                     [&](int64_t b, int64_t j) {
                       const int64_t g = b % groups;
                       return per_channel ? g * (c / groups) + (spatial ? j / spatial : 0) : g;
                     });
    return Status::ok();
  });
}

// ---- LayerNormalization ----------------------------------------------------------------------

DataType stash_dtype(const ir::Node& n) {
  return n.attr_i("stash_type", 1) == 16 ? DataType::kBF16 : DataType::kF32;
}

Status check_layer_norm(const ir::Node& n) {
  const int64_t st = n.attr_i("stash_type", 1);
  if (st != 1 && st != 16)
    return Status(ErrorCode::kOnnxBadAttribute,
                  "stash_type " + std::to_string(st) + " is not float (1) or bfloat16 (16)",
                  "the ONNX spec allows only these two stash types");
  return Status::ok();
}

Status infer_layer_norm(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  ctx.set_output(0, ctx.input_type(0), x);
  Shape stats = Shape::unknown_rank();
  if (x.rank_known) {
    auto axis = normalize_axis(ctx.node().attr_i("axis", -1), static_cast<int64_t>(x.rank()));
    if (!axis)
      return ctx.error(ErrorCode::kBadAxis,
                       "axis " + std::to_string(ctx.node().attr_i("axis", -1)) +
                           " is out of range for input " + x.to_string(),
                       "axis must be in [-rank, rank-1]");
    stats = x;
    for (size_t d = *axis; d < x.rank(); ++d) stats.dims[d] = 1;
  }
  for (size_t i = 1; i < 3; ++i) ctx.set_output(i, stash_dtype(ctx.node()), stats);
  return Status::ok();
}

Status layer_norm_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const int64_t axis =
      *normalize_axis(ctx.node().attr_i("axis", -1), static_cast<int64_t>(x.rank()));
  int64_t rows = 1;
  for (int64_t d = 0; d < axis; ++d) rows *= x.dims()[d];
  const int64_t cols = rows ? x.numel() / rows : 0;
  // Scale/B broadcast unidirectionally to X; the usual case is X's trailing dims.
  std::vector<std::vector<double>> params;
  for (size_t i = 1; i < 3; ++i) {
    if (!ctx.has_input(i)) {
      params.emplace_back();
      continue;
    }
    const HostTensor& p = ctx.input(i);
    if (!broadcast_dims(p.dims(), x.dims()) || *broadcast_dims(p.dims(), x.dims()) != x.dims())
      return ctx.error(ErrorCode::kShapeMismatch,
                       std::string(i == 1 ? "Scale " : "B ") + dims_to_string(p.dims()) +
                           " does not broadcast to X " + dims_to_string(x.dims()),
                       "Scale and B usually have the shape of X's normalized (trailing) dims");
    const auto v = values_f64(p);
    BroadcastIndexer bi(p.dims(), x.dims());
    // Constant across rows unless one of the param's dims before `axis` is > 1.
    bool per_col = true;
    const int64_t lead = static_cast<int64_t>(x.rank()) - static_cast<int64_t>(p.rank());
    for (int64_t d = 0; d < static_cast<int64_t>(p.rank()); ++d)
      if (lead + d < axis && p.dims()[d] != 1) per_col = false;
    std::vector<double> expanded(per_col ? cols : x.numel());
    for (int64_t e = 0; e < static_cast<int64_t>(expanded.size()); ++e)
      expanded[e] = v[bi.index(e)];
    params.push_back(std::move(expanded));
  }
  const double eps = ctx.node().attr_f("epsilon", 1e-5f);
  HostTensor* mean_out = ctx.has_output(1) ? &ctx.output(1) : nullptr;
  HostTensor* inv_out = ctx.has_output(2) ? &ctx.output(2) : nullptr;
  return dispatch_float(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    T* yp = ctx.output(0).data<T>();
    const auto& scale = params[0];
    const auto& bias = params[1];
    for (int64_t r = 0; r < rows; ++r) {
      const auto [mean, inv_std] = moments(xp + r * cols, cols, eps);
      if (mean_out) mean_out->set_f64(r, static_cast<float>(mean));
      if (inv_out) inv_out->set_f64(r, static_cast<float>(inv_std));
      const int64_t s_off = static_cast<int64_t>(scale.size()) > cols ? r * cols : 0;
      const int64_t b_off = static_cast<int64_t>(bias.size()) > cols ? r * cols : 0;
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t e = r * cols + j;
        const double v = (static_cast<double>(static_cast<C>(xp[e])) - mean) * inv_std;
        yp[e] = static_cast<T>(
            static_cast<C>(v * scale[s_off + j] + (bias.empty() ? 0.0 : bias[b_off + j])));
      }
    }
    return Status::ok();
  });
}

// ---- LRN ---------------------------------------------------------------------------------

Status check_lrn(const ir::Node& n) {
  if (n.attr_i("size", 0) < 1)
    return Status(ErrorCode::kOnnxBadAttribute, "size must be a positive integer",
                  "LRN requires the 'size' attribute");
  return Status::ok();
}

Status lrn_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  if (x.rank() < 3)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "input " + dims_to_string(x.dims()) + " must have rank >= 3",
                     "LRN input is [N, C, D1, ..., Dn]");
  const int64_t size = ctx.node().attr_i("size", 1);
  const double alpha = ctx.node().attr_f("alpha", 1e-4f), beta = ctx.node().attr_f("beta", 0.75f),
               bias = ctx.node().attr_f("bias", 1.0f);
  const int64_t n = x.dims()[0], c = x.dims()[1];
  const int64_t plane = n * c != 0 ? x.numel() / (n * c) : 0;
  const int64_t before = (size - 1) / 2, after = size - 1 - before;  // floor / ceil of (size-1)/2
  return dispatch_float(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    T* yp = ctx.output(0).data<T>();
    std::vector<double> sq(plane);
    for (int64_t s = 0; s < n; ++s)
      for (int64_t ch = 0; ch < c; ++ch) {
        std::fill(sq.begin(), sq.end(), 0.0);
        for (int64_t k = std::max<int64_t>(0, ch - before); k <= std::min(c - 1, ch + after); ++k) {
          const T* xk = xp + (s * c + k) * plane;
          for (int64_t i = 0; i < plane; ++i) {
            const double v = static_cast<C>(xk[i]);
            sq[i] += v * v;
          }
        }
        const int64_t off = (s * c + ch) * plane;
        for (int64_t i = 0; i < plane; ++i)
          yp[off + i] = static_cast<T>(static_cast<C>(static_cast<C>(xp[off + i]) /
                                                      std::pow(bias + alpha / size * sq[i], beta)));
      }
    return Status::ok();
  });
}

// ---- MeanVarianceNormalization, LpNormalization -------------------------------------------

/// For reductions over an arbitrary axis set: maps every element to its group (the
/// element's index with the reduced axes dropped). Returns the group count.
int64_t group_ids(const std::vector<int64_t>& dims, const std::vector<bool>& reduced,
                  std::vector<int64_t>& ids) {
  std::vector<int64_t> gstride(dims.size(), 0);
  int64_t groups = 1;
  for (size_t d = dims.size(); d-- > 0;)
    if (!reduced[d]) {
      gstride[d] = groups;
      groups *= dims[d];
    }
  int64_t numel = 1;
  for (auto v : dims) numel *= v;
  ids.assign(numel, 0);
  std::vector<int64_t> idx(dims.size(), 0);
  int64_t g = 0;
  for (int64_t e = 0; e < numel; ++e) {
    ids[e] = g;
    for (size_t d = dims.size(); d-- > 0;) {
      g += gstride[d];
      if (++idx[d] < dims[d]) break;
      g -= gstride[d] * dims[d];
      idx[d] = 0;
    }
  }
  return groups;
}

Status mvn_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  std::vector<bool> reduced(rank, false);
  for (int64_t a : ctx.node().attr_ints("axes", {0, 2, 3})) {
    auto ax = normalize_axis(a, rank);
    if (!ax)
      return ctx.error(
          ErrorCode::kBadAxis,
          "axis " + std::to_string(a) + " is out of range for input " + dims_to_string(x.dims()),
          "MeanVarianceNormalization axes default to [0, 2, 3] (4-D input)");
    reduced[*ax] = true;
  }
  std::vector<int64_t> ids;
  const int64_t groups = group_ids(x.dims(), reduced, ids);
  return dispatch_float(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    T* yp = ctx.output(0).data<T>();
    std::vector<double> sum(groups, 0.0), sq(groups, 0.0), count(groups, 0.0);
    for (int64_t e = 0; e < x.numel(); ++e) {
      sum[ids[e]] += static_cast<C>(xp[e]);
      count[ids[e]] += 1;
    }
    for (int64_t g = 0; g < groups; ++g) sum[g] = count[g] ? sum[g] / count[g] : 0.0;
    for (int64_t e = 0; e < x.numel(); ++e) {
      const double d = static_cast<C>(xp[e]) - sum[ids[e]];
      sq[ids[e]] += d * d;
    }
    // Spec body: (X - E[X]) / (sqrt(E[X²] - E[X]²) + 1e-9).
    for (int64_t g = 0; g < groups; ++g)
      sq[g] = std::sqrt(count[g] ? sq[g] / count[g] : 0.0) + 1e-9;
    for (int64_t e = 0; e < x.numel(); ++e)
      yp[e] = static_cast<T>(static_cast<C>((static_cast<C>(xp[e]) - sum[ids[e]]) / sq[ids[e]]));
    return Status::ok();
  });
}

Status check_lp_norm(const ir::Node& n) {
  const int64_t p = n.attr_i("p", 2);
  if (p != 1 && p != 2)
    return Status(ErrorCode::kOnnxBadAttribute, "p must be 1 or 2, got " + std::to_string(p),
                  "LpNormalization supports the L1 and L2 norms only");
  return Status::ok();
}

Status lp_norm_cpu(KernelContext& ctx) {
  const HostTensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  auto axis = normalize_axis(ctx.node().attr_i("axis", -1), rank);
  if (!axis)
    return ctx.error(ErrorCode::kBadAxis,
                     "axis is out of range for input " + dims_to_string(x.dims()),
                     "axis must be in [-rank, rank-1]");
  std::vector<bool> reduced(rank, false);
  reduced[*axis] = true;
  std::vector<int64_t> ids;
  const int64_t groups = group_ids(x.dims(), reduced, ids);
  const bool l1 = ctx.node().attr_i("p", 2) == 1;
  return dispatch_float(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    T* yp = ctx.output(0).data<T>();
    std::vector<double> norm(groups, 0.0);
    for (int64_t e = 0; e < x.numel(); ++e) {
      const double v = static_cast<C>(xp[e]);
      norm[ids[e]] += l1 ? std::fabs(v) : v * v;
    }
    if (!l1)
      for (auto& v : norm) v = std::sqrt(v);
    for (int64_t e = 0; e < x.numel(); ++e) {  // a zero vector stays zero (no 0/0)
      const double nv = norm[ids[e]];
      yp[e] = static_cast<T>(static_cast<C>(nv == 0 ? 0.0 : static_cast<C>(xp[e]) / nv));
    }
    return Status::ok();
  });
}

}  // namespace

KILN_REGISTER_OPS(normalization) {
  reg.add({.op_type = "BatchNormalization", .min_opset = 6, .min_inputs = 5, .max_inputs = 5,
           .max_outputs = 5, .infer = infer_batch_norm, .cpu = batch_norm_cpu,
           .check = check_batch_norm,
           .summary = "inference-mode batch normalization with stored mean/variance"});
  reg.add({.op_type = "InstanceNormalization", .min_opset = 6, .min_inputs = 3, .max_inputs = 3,
           .infer = infer_channel_norm, .cpu = instance_norm_cpu,
           .summary = "per-instance, per-channel normalization over spatial dims"});
  reg.add({.op_type = "LayerNormalization", .min_opset = 17, .min_inputs = 2, .max_inputs = 3,
           .max_outputs = 3, .infer = infer_layer_norm, .cpu = layer_norm_cpu,
           .check = check_layer_norm,
           .summary = "normalization over the trailing dims from axis, optional Mean/InvStdDev"});
  reg.add({.op_type = "GroupNormalization", .min_opset = 18, .min_inputs = 3, .max_inputs = 3,
           .infer = infer_channel_norm, .cpu = group_norm_cpu,
           .summary = "normalization over groups of channels (scale per group at 18, per "
                      "channel at 21)"});
  reg.add({.op_type = "LRN", .min_opset = 1, .min_inputs = 1, .max_inputs = 1,
           .infer = infer_same_as_input0, .cpu = lrn_cpu, .check = check_lrn,
           .summary = "local response normalization across channels"});
  reg.add({.op_type = "MeanVarianceNormalization", .min_opset = 9, .min_inputs = 1,
           .max_inputs = 1, .infer = infer_same_as_input0, .cpu = mvn_cpu,
           .summary = "(X - mean) / std over the given axes"});
  reg.add({.op_type = "LpNormalization", .min_opset = 1, .min_inputs = 1, .max_inputs = 1,
           .infer = infer_same_as_input0, .cpu = lp_norm_cpu, .check = check_lp_norm,
           .summary = "divide by the L1 or L2 norm along an axis"});
}

}  // namespace kiln::ops
