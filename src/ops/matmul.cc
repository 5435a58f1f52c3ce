// Matrix products (ONNX Operators.md: MatMul, Gemm, MatMulInteger). MatMul follows
// numpy.matmul: N-D operands are stacks of matrices whose batch dims broadcast, and 1-D
// operands are promoted to a row (A) or column (B) vector and the added dim removed.
// Floats go through OpenBLAS (f16/bf16 in f32); integer MatMul/Gemm wrap like two's
// complement; MatMulInteger is computed exactly in f64.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "cpu/gemm.h"
#include "ops/helpers.h"
#include "ops/matmul.h"
#include "ops/widen.h"

namespace kiln::ops {
namespace {

// ---- MatMul shapes --------------------------------------------------------------------

/// numpy.matmul output shape; unknown rank when either operand's rank is unknown.
Result<Shape> matmul_shape(const InferContext& ctx) {
  const Shape& a = ctx.input_shape(0);
  const Shape& b = ctx.input_shape(1);
  if (!a.rank_known || !b.rank_known) return Shape::unknown_rank();
  if (a.rank() == 0 || b.rank() == 0)
    return ctx.error(
        ErrorCode::kShapeMismatch,
        "MatMul operands must have rank >= 1, got " + a.to_string() + " and " + b.to_string(),
        "use Mul for scalar products");
  std::vector<Dim> ad = a.dims, bd = b.dims;
  if (ad.size() == 1) ad.insert(ad.begin(), Dim(1));
  if (bd.size() == 1) bd.push_back(Dim(1));
  const Dim& k_a = ad[ad.size() - 1];
  const Dim& k_b = bd[bd.size() - 2];
  if (known_to_differ(k_a, k_b))
    return ctx.error(ErrorCode::kShapeMismatch,
                     "inner dimensions differ: " + a.to_string() + " x " + b.to_string(),
                     "the last dim of A must equal the second-to-last dim of B");
  Shape ab(std::vector<Dim>(ad.begin(), ad.end() - 2));
  Shape bb(std::vector<Dim>(bd.begin(), bd.end() - 2));
  auto batch = broadcast_shapes(ab, bb);
  if (!batch)
    return ctx.error(ErrorCode::kShapeMismatch,
                     "batch dimensions do not broadcast: " + a.to_string() + " x " + b.to_string(),
                     "MatMul broadcasts the leading (batch) dims with numpy rules");
  Shape out = *batch;
  if (a.rank() > 1) out.dims.push_back(ad[ad.size() - 2]);
  if (b.rank() > 1) out.dims.push_back(bd.back());
  return out;
}

Status infer_matmul_integer(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Shape out, matmul_shape(ctx));
  ctx.set_output(0, DataType::kI32, std::move(out));
  return Status::ok();
}

/// Concrete batched-matmul layout: C[i] = A[a_index[i]] · B[b_index[i]] for every batch
/// index i, each matrix dense row-major.
struct MatMulPlan {
  int64_t m = 1, n = 1, k = 1;
  std::vector<int64_t> a_index, b_index;  // matrix index into A / B per output matrix
  bool a_contiguous = false;              // a_index[i] == i and every b_index[i] == 0
};

MatMulPlan make_plan(std::vector<int64_t> ad, std::vector<int64_t> bd) {
  if (ad.size() == 1) ad.insert(ad.begin(), 1);
  if (bd.size() == 1) bd.push_back(1);
  MatMulPlan p;
  p.m = ad[ad.size() - 2];
  p.k = ad.back();
  p.n = bd.back();
  std::vector<int64_t> ab(ad.begin(), ad.end() - 2), bb(bd.begin(), bd.end() - 2);
  std::vector<int64_t> batch = *broadcast_dims(ab, bb);  // validated by inference
  int64_t count = 1;
  for (auto d : batch) count *= d;
  BroadcastIndexer ia(ab, batch), ib(bb, batch);
  p.a_contiguous = ia.identity() || count <= 1;
  for (int64_t i = 0; i < count; ++i) {
    p.a_index.push_back(ia.index(i));
    p.b_index.push_back(ib.index(i));
    p.a_contiguous &= p.b_index.back() == 0;
  }
  return p;
}

template <typename T>
void run_plan(const MatMulPlan& p, const T* a, const T* b, T* c) {
  const int64_t batches = static_cast<int64_t>(p.a_index.size());
  if constexpr (std::is_floating_point_v<T>) {
    if (p.a_contiguous && batches > 1) {  // one tall GEMM: [batch·M, K] x [K, N]
      cpu::gemm(false, false, batches * p.m, p.n, p.k, T(1), a, p.k, b, p.n, T(0), c, p.n);
      return;
    }
    for (int64_t i = 0; i < batches; ++i)
      cpu::gemm(false, false, p.m, p.n, p.k, T(1), a + p.a_index[i] * p.m * p.k, p.k,
                b + p.b_index[i] * p.k * p.n, p.n, T(0), c + i * p.m * p.n, p.n);
  } else {
    for (int64_t i = 0; i < batches; ++i)
      cpu::gemm_int<T>(false, false, p.m, p.n, p.k, a + p.a_index[i] * p.m * p.k, p.k,
                       b + p.b_index[i] * p.k * p.n, p.n, false, c + i * p.m * p.n, p.n);
  }
}

template <typename F>
Status dispatch_int_matmul(DataType t, F&& f) {
  switch (t) {
    case DataType::kI32:
      return f(int32_t{});
    case DataType::kI64:
      return f(int64_t{});
    case DataType::kU32:
      return f(uint32_t{});
    case DataType::kU64:
      return f(uint64_t{});
    default:
      return unsupported_dtype(t, "MatMul/Gemm");
  }
}

Status matmul_cpu(KernelContext& ctx) {
  const HostTensor& a = ctx.input(0);
  const HostTensor& b = ctx.input(1);
  const MatMulPlan plan = make_plan(a.dims(), b.dims());
  const DataType dt = a.dtype();
  if (dtype_is_int(dt)) {
    return dispatch_int_matmul(dt, [&](auto t) -> Status {
      using T = decltype(t);
      run_plan<T>(plan, a.data<T>(), b.data<T>(), ctx.output(0).data<T>());
      return Status::ok();
    });
  }
  return compute_in_float(
      ctx, dt, [&](auto t, const std::vector<const HostTensor*>& in, HostTensor& out) -> Status {
        using T = decltype(t);
        run_plan<T>(plan, in[0]->data<T>(), in[1]->data<T>(), out.data<T>());
        return Status::ok();
      });
}

// ---- MatMulInteger --------------------------------------------------------------------

// Zero point of element (matrix `mat`, row/col `rc`) of an operand with `per` values per
// matrix (M rows of A or N columns of B). Scalar, per-row/column vector, or one value per
// (matrix, row/column) as for [..., M, 1] / [..., 1, N] zero points.
Result<std::vector<double>> centered_operand(const HostTensor& v, const HostTensor* zp,
                                             int64_t rows, int64_t cols, bool per_row,
                                             const KernelContext& ctx, const char* name) {
  const int64_t per = per_row ? rows : cols;
  const int64_t mats = rows * cols != 0 ? v.numel() / (rows * cols) : 0;
  if (zp && zp->numel() != 1 && zp->numel() != per && zp->numel() != mats * per)
    return ctx.error(
        ErrorCode::kShapeMismatch,
        std::string(name) + " has " + std::to_string(zp->numel()) + " values; expected 1, " +
            std::to_string(per) + " or " + std::to_string(mats * per),
        "zero points are per tensor, per row of A / column of B, or per batch and row/column");
  std::vector<double> out(v.numel());
  for (int64_t i = 0; i < v.numel(); ++i) {
    double z = 0;
    if (zp) {
      const int64_t mat = i / (rows * cols), r = i / cols % rows, c = i % cols;
      const int64_t j = per_row ? r : c;
      z = zp->get_f64(zp->numel() == 1 ? 0 : zp->numel() == per ? j : mat * per + j);
    }
    out[i] = v.get_f64(i) - z;
  }
  return out;
}

Status matmul_integer_cpu(KernelContext& ctx) {
  const HostTensor& a = ctx.input(0);
  const HostTensor& b = ctx.input(1);
  const MatMulPlan plan = make_plan(a.dims(), b.dims());
  KILN_ASSIGN_OR_RETURN(std::vector<double> ad,
                        centered_operand(a, ctx.has_input(2) ? &ctx.input(2) : nullptr, plan.m,
                                         plan.k, true, ctx, "a_zero_point"));
  KILN_ASSIGN_OR_RETURN(std::vector<double> bd,
                        centered_operand(b, ctx.has_input(3) ? &ctx.input(3) : nullptr, plan.k,
                                         plan.n, false, ctx, "b_zero_point"));
  HostTensor& out = ctx.output(0);
  std::vector<double> cd(out.numel());
  run_plan<double>(plan, ad.data(), bd.data(), cd.data());  // exact: |sums| << 2^53
  int32_t* y = out.data<int32_t>();
  for (int64_t i = 0; i < out.numel(); ++i) y[i] = static_cast<int32_t>(std::llround(cd[i]));
  return Status::ok();
}

// ---- Gemm -----------------------------------------------------------------------------

Status infer_gemm(InferContext& ctx) {
  const Shape& a = ctx.input_shape(0);
  const Shape& b = ctx.input_shape(1);
  const DataType dt = ctx.input_type(0);
  if (dt != ctx.input_type(1) || (ctx.has_input(2) && ctx.input_type(2) != dt))
    return ctx.error(ErrorCode::kTypeMismatch, "A, B and C must have the same type",
                     "insert Casts so all operands have the same type");
  const bool ta = ctx.node().attr_i("transA", 0) != 0, tb = ctx.node().attr_i("transB", 0) != 0;
  for (const Shape* s : {&a, &b})
    if (s->rank_known && s->rank() != 2)
      return ctx.error(ErrorCode::kShapeMismatch,
                       "Gemm operands must be matrices, got " + s->to_string(),
                       "use MatMul for batched products, or Flatten the operand first");
  Dim m, n, ka, kb;
  if (a.rank_known) {
    m = a.dims[ta ? 1 : 0];
    ka = a.dims[ta ? 0 : 1];
  }
  if (b.rank_known) {
    n = b.dims[tb ? 0 : 1];
    kb = b.dims[tb ? 1 : 0];
  }
  if (known_to_differ(ka, kb))
    return ctx.error(ErrorCode::kShapeMismatch,
                     "inner dimensions differ: A " + a.to_string() + (ta ? " (transposed)" : "") +
                         ", B " + b.to_string() + (tb ? " (transposed)" : ""),
                     "check transA / transB");
  Shape out({m, n});
  if (ctx.has_input(2) && ctx.input_shape(2).rank_known) {
    const Shape& c = ctx.input_shape(2);
    auto bc = broadcast_shapes(c, out);
    bool ok = bc.has_value() && c.rank() <= 2;
    for (size_t i = 0; ok && i < c.rank(); ++i) {
      const Dim& cd = c.dims[i];
      const Dim& od = out.dims[2 - c.rank() + i];
      ok = !(cd.is_known() && od.is_known() && cd.value != 1 && cd.value != od.value);
    }
    if (!ok)
      return ctx.error(
          ErrorCode::kShapeMismatch,
          "C " + c.to_string() + " does not broadcast to the output " + out.to_string(),
          "C must be unidirectionally broadcastable to [M, N]");
  }
  ctx.set_output(0, dt, std::move(out));
  return Status::ok();
}

Status gemm_cpu(KernelContext& ctx) {
  const HostTensor& a = ctx.input(0);
  const HostTensor& b = ctx.input(1);
  const HostTensor* c = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const bool ta = ctx.node().attr_i("transA", 0) != 0, tb = ctx.node().attr_i("transB", 0) != 0;
  const double alpha = ctx.node().attr_f("alpha", 1.0f), beta = ctx.node().attr_f("beta", 1.0f);
  const int64_t m = a.dims()[ta ? 1 : 0], k = a.dims()[ta ? 0 : 1], n = b.dims()[tb ? 0 : 1];
  const std::vector<int64_t> out_dims{m, n};
  const bool use_c = c && beta != 0.0;
  const DataType dt = a.dtype();
  if (dtype_is_int(dt)) {
    return dispatch_int_matmul(dt, [&](auto t) -> Status {
      using T = decltype(t);
      T* y = ctx.output(0).data<T>();
      cpu::gemm_int<T>(ta, tb, m, n, k, a.data<T>(), a.dims()[1], b.data<T>(), b.dims()[1], false,
                       y, n);
      std::unique_ptr<BroadcastIndexer> ic;
      if (use_c) ic = std::make_unique<BroadcastIndexer>(c->dims(), out_dims);
      for (int64_t i = 0; i < m * n; ++i) {
        double v = alpha * static_cast<double>(y[i]);
        if (use_c) v += beta * static_cast<double>(c->data<T>()[ic->index(i)]);
        y[i] = static_cast<T>(v);
      }
      return Status::ok();
    });
  }
  return compute_in_float(
      ctx, dt, [&](auto t, const std::vector<const HostTensor*>& in, HostTensor& out) -> Status {
        using T = decltype(t);
        T* y = out.data<T>();
        if (use_c) {
          BroadcastIndexer ic(in[2]->dims(), out_dims);
          const T* cp = in[2]->data<T>();
          for (int64_t i = 0; i < m * n; ++i) y[i] = static_cast<T>(beta) * cp[ic.index(i)];
        }
        cpu::gemm(ta, tb, m, n, k, static_cast<T>(alpha), in[0]->data<T>(), in[0]->dims()[1],
                  in[1]->data<T>(), in[1]->dims()[1], use_c ? T(1) : T(0), y, n);
        return Status::ok();
      });
}

}  // namespace

Status infer_matmul(InferContext& ctx) {
  if (ctx.input_type(0) != ctx.input_type(1))
    return ctx.error(ErrorCode::kTypeMismatch,
                     std::string("operands have different types: ") +
                         dtype_name(ctx.input_type(0)) + " and " + dtype_name(ctx.input_type(1)),
                     "insert a Cast so both operands have the same type");
  KILN_ASSIGN_OR_RETURN(Shape out, matmul_shape(ctx));
  ctx.set_output(0, ctx.input_type(0), std::move(out));
  return Status::ok();
}

void matmul_dense(const std::vector<int64_t>& a_dims, const float* a,
                  const std::vector<int64_t>& b_dims, const float* b, float* y) {
  run_plan<float>(make_plan(a_dims, b_dims), a, b, y);
}

void matmul_dense(const std::vector<int64_t>& a_dims, const double* a,
                  const std::vector<int64_t>& b_dims, const double* b, double* y) {
  run_plan<double>(make_plan(a_dims, b_dims), a, b, y);
}

KILN_REGISTER_OPS(matmul) {
  reg.add({.op_type = "MatMul", .min_opset = 1, .min_inputs = 2, .max_inputs = 2,
           .infer = infer_matmul, .cpu = matmul_cpu,
           .summary = "numpy.matmul: batched with broadcasting, 1-D operands promoted (BLAS "
                      "GEMM)"});
  reg.add({.op_type = "Gemm", .min_opset = 6, .min_inputs = 2, .max_inputs = 3,
           .infer = infer_gemm, .cpu = gemm_cpu,
           .summary = "alpha * op(A) * op(B) + beta * C with transposes and C broadcast (BLAS "
                      "GEMM)"});
  reg.add({.op_type = "MatMulInteger", .min_opset = 10, .min_inputs = 2, .max_inputs = 4,
           .infer = infer_matmul_integer, .cpu = matmul_integer_cpu,
           .summary = "8-bit integer matmul with zero points, int32 output"});
}

}  // namespace kiln::ops
