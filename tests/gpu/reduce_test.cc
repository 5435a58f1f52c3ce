// Reductions (Reduce*, ArgMax/ArgMin), global pooling, CumSum and TopK on the GPU
// (src/cuda/kernels/reduce.cu) against the CPU reference: reduced lengths around warp and
// block sizes, inner 1 (row kernel) and > 1 (column kernel), non-contiguous axis sets
// (general kernels), split reductions, empty axes, keepdims, negative axes, axes as
// attribute and as input, and channels-last operands (run on the kernels directly).
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <random>

#include "cuda/kernel.h"
#include "gpu_test_util.h"

namespace kiln {
namespace {

using namespace gputest;
using Dims = std::vector<int64_t>;
using Attrs = std::map<std::string, ir::Attribute>;


/// Reduced lengths at warp / block / vector boundaries.
const int64_t kLengths[] = {1, 7, 127, 128, 129, 768, 1000, 4097};

std::string dims_label(const Dims& d) {
  std::string s = "[";
  for (size_t k = 0; k < d.size(); ++k) s += (k ? "," : "") + std::to_string(d[k]);
  return s + "]";
}

In const_i64(std::vector<int64_t> v) {
  return In{.dtype = kI64, .dims = {static_cast<int64_t>(v.size())}, .constant = true,
            .value = i64s(std::move(v))};
}

/// Seeded values from {-1, 0, 1, 2} (exact in every dtype): many ties for Arg*/TopK.
HostTensor tied_values(DataType dt, const Dims& dims, uint64_t seed) {
  HostTensor t(dt, dims);
  std::mt19937_64 rng(seed);
  for (int64_t k = 0; k < t.numel(); ++k) t.set_f64(k, static_cast<double>(rng() % 4) - 1.0);
  return t;
}

// ---- Reduce* ------------------------------------------------------------------------------

struct ReduceLayout {
  std::string label;
  Dims dims;
  std::vector<int64_t> axes;  ///< empty: no axes (all, or identity with noop_with_empty_axes)
  bool keepdims;
};

const std::vector<ReduceLayout>& reduce_layouts() {
  static const std::vector<ReduceLayout> t = [] {
    std::vector<ReduceLayout> v;
    for (int64_t n : kLengths) {
      v.push_back({"rows " + std::to_string(n), {3, n}, {-1}, n % 2 == 0});
      v.push_back({"cols " + std::to_string(n), {2, n, 5}, {1}, n % 2 == 1});
    }
    v.push_back({"outer 1, inner 33", {1000, 33}, {0}, true});
    v.push_back({"inner 256", {2, 9, 256}, {-2}, false});
    v.push_back({"axes {0,2}: inner kept", {4, 6, 5, 7}, {0, 2}, false});
    v.push_back({"axes {-3,-1}: inner reduced", {4, 6, 5, 7}, {-3, -1}, true});
    v.push_back({"axes {0,2,4}", {3, 4, 5, 6, 7}, {0, 2, 4}, false});
    v.push_back({"axes {1,2} merge", {3, 4, 5, 6}, {1, 2}, true});
    v.push_back({"no axes = all", {2, 3, 4}, {}, false});
    v.push_back({"size-1 axis", {5, 1, 7}, {1}, true});
    v.push_back({"split rows", {1, 1 << 20}, {1}, false});
    v.push_back({"split cols", {65536, 8}, {0}, true});
    v.push_back({"cols, 16-byte vectors", {3, 1000, 40}, {1}, false});        // inner % 8 == 0
    v.push_back({"cols, vectors, split", {2, 4097, 264}, {1}, true});         // NHWC global pool shape
    v.push_back({"cols, vectors, many tiles", {2, 33, 2048}, {-2}, false});
    v.push_back({"empty reduced axis", {3, 0, 4}, {1}, true});
    return v;
  }();
  return t;
}

int64_t reduced_count(const ReduceLayout& l) {
  int64_t n = 1;
  const int64_t rank = static_cast<int64_t>(l.dims.size());
  for (int64_t d = 0; d < rank; ++d) {
    bool reduced = l.axes.empty();
    for (int64_t a : l.axes) reduced |= (a < 0 ? a + rank : a) == d;
    if (reduced) n *= l.dims[d];
  }
  return n;
}

struct ReduceOp {
  const char* name;
  int axes_input_opset;
  double lo, hi;  ///< input range: positive for LogSum, near 1 for Prod
};
const ReduceOp kReduceOps[] = {
    {"ReduceSum", 13, -2, 2},      {"ReduceMean", 18, -2, 2},        {"ReduceMax", 18, -2, 2},
    {"ReduceMin", 18, -2, 2},      {"ReduceProd", 18, 0.5, 1.5},     {"ReduceL1", 18, -2, 2},
    {"ReduceL2", 18, -2, 2},       {"ReduceLogSum", 18, 0.1, 2},     {"ReduceLogSumExp", 18, -2, 2},
    {"ReduceSumSquare", 18, -2, 2},
};

OpCase reduce_case(const ReduceOp& op, int opset, DataType dt, const ReduceLayout& l) {
  OpCase c{.op = op.name, .opset = opset, .label = l.label + " " + dtype_name(dt)};
  c.attrs["keepdims"] = i(l.keepdims);
  In x{.dtype = dt, .dims = l.dims, .lo = op.lo, .hi = op.hi};
  if (!dtype_is_float(dt)) {
    x.lo = dt == kU8 || dt == kBool ? 0 : -5;
    x.hi = 5;
  }
  c.inputs.push_back(x);
  if (opset >= op.axes_input_opset) {
    if (!l.axes.empty()) c.inputs.push_back(const_i64(l.axes));
  } else if (!l.axes.empty()) {
    c.attrs["axes"] = ints(l.axes);
  }
  return c;
}

/// f32 sums accumulate in float on the GPU and in double on the CPU: 4097-term sums near 0
/// differ by more than the default 1e-5 absolute.
Check reduce_check(DataType dt) {
  Check k;
  if (dt == kF32) k.atol = 1e-4;
  return k;
}

TEST(CudaReduce, AllOpsAllLayouts) {
  KILN_REQUIRE_GPU();
  for (const ReduceOp& op : kReduceOps)
    for (const ReduceLayout& l : reduce_layouts())
      for (DataType dt : {kF32, kF16}) expect_matches_cpu(reduce_case(op, 18, dt, l), reduce_check(dt));
}

TEST(CudaReduce, Bf16AndF64) {
  KILN_REQUIRE_GPU();
  const auto& ls = reduce_layouts();
  for (const ReduceOp& op : kReduceOps)
    for (size_t k = 0; k < ls.size(); k += 3)
      for (DataType dt : {kBF16, kF64}) expect_matches_cpu(reduce_case(op, 18, dt, ls[k]));
}

TEST(CudaReduce, IntegerTypes) {
  KILN_REQUIRE_GPU();
  const auto& ls = reduce_layouts();
  for (const ReduceOp& op : kReduceOps)
    for (size_t k = 0; k < ls.size(); k += 2)
      for (DataType dt : {kI32, kI64, kI8, kU8}) {
        // Integer products of more than ~20 values overflow int64 (undefined behaviour).
        if (std::string(op.name) == "ReduceProd" && reduced_count(ls[k]) > 20) continue;
        expect_matches_cpu(reduce_case(op, 18, dt, ls[k]));
      }
  // Bool Max/Min (opset 20 added bool).
  for (const char* name : {"ReduceMax", "ReduceMin"})
    for (const ReduceLayout& l : {ls[0], ls[5], ls[18], ls[20]})
      expect_matches_cpu(reduce_case(ReduceOp{name, 18, 0, 1}, 20, kBool, l));
}

TEST(CudaReduce, AxesAttributeAndNoop) {
  KILN_REQUIRE_GPU();
  const ReduceLayout l{"attr axes {0,-1}", {6, 5, 129}, {0, -1}, false};
  // Before opset 13 (ReduceSum) / 18 (the others) axes are an attribute.
  for (const ReduceOp& op : kReduceOps)
    for (DataType dt : {kF32, kF16}) {
      expect_matches_cpu(reduce_case(op, 11, dt, l), reduce_check(dt));
      expect_matches_cpu(reduce_case(op, 11, dt, {"attr no axes", {4, 33}, {}, true}),
                         reduce_check(dt));
    }
  // noop_with_empty_axes with no axes input: identity.
  for (const ReduceOp& op : kReduceOps) {
    OpCase c = reduce_case(op, 18, kF32, {"noop", {3, 7, 5}, {}, true});
    c.attrs["noop_with_empty_axes"] = i(1);
    expect_matches_cpu(c);
  }
}

TEST(CudaReduce, SpecialValues) {
  KILN_REQUIRE_GPU();
  // Large inputs: LogSumExp must shift by the maximum.
  for (DataType dt : {kF32, kF16}) {
    OpCase c = reduce_case(kReduceOps[8], 18, dt, {"large", {4, 1000}, {1}, true});
    c.inputs[0].lo = dt == kF16 ? 1000 : 1e5;
    c.inputs[0].hi = c.inputs[0].lo + 50;
    expect_matches_cpu(c);
  }
  // NaN propagates through Max/Min; -inf elements add nothing to LogSumExp.
  HostTensor x(kF32, {3, 300});
  std::mt19937_64 rng(7);
  for (int64_t k = 0; k < x.numel(); ++k) x.set_f64(k, static_cast<double>(rng() % 1000) / 100);
  x.set_f64(5, std::nan(""));
  x.set_f64(300 + 299, -INFINITY);
  for (const char* name : {"ReduceMax", "ReduceMin", "ReduceLogSumExp", "ReduceSum"})
    expect_matches_cpu({.op = name, .opset = 18, .inputs = {In{.dtype = kF32, .dims = {3, 300},
                                                               .value = x},
                                                            const_i64({1})},
                        .label = "nan / -inf"});
}

// ---- ArgMax / ArgMin ------------------------------------------------------------------------

TEST(CudaReduce, ArgMaxArgMin) {
  KILN_REQUIRE_GPU();
  struct A {
    Dims dims;
    int64_t axis;
  };
  std::vector<A> cases;
  for (int64_t n : kLengths) {
    cases.push_back({{3, n}, -1});
    cases.push_back({{2, n, 5}, 1});
  }
  cases.push_back({{4, 6, 5}, 0});
  cases.push_back({{1, 1 << 18}, 1});  // split rows
  cases.push_back({{7}, 0});
  uint64_t seed = 1;
  for (const char* op : {"ArgMax", "ArgMin"})
    for (const A& a : cases)
      for (int last = 0; last < 2; ++last)
        for (DataType dt : {kF32, kF16, kI32, kI64, kU8}) {
          const bool keep = (a.dims.size() + last) % 2 == 0;
          Attrs attrs{{"axis", i(a.axis)}, {"keepdims", i(keep)}, {"select_last_index", i(last)}};
          // Random values, and values with many ties for select_last_index.
          expect_matches_cpu({.op = op, .opset = 13, .attrs = attrs,
                              .inputs = {In{.dtype = dt, .dims = a.dims, .lo = 0, .hi = 100}},
                              .label = dims_label(a.dims) + " " + dtype_name(dt)});
          expect_matches_cpu({.op = op, .opset = 13, .attrs = attrs,
                              .inputs = {In{.dtype = dt, .dims = a.dims,
                                            .value = tied_values(dt, a.dims, seed++)}},
                              .label = "ties " + dims_label(a.dims) + " " + dtype_name(dt)});
        }
}

// ---- Global pooling ------------------------------------------------------------------------

TEST(CudaReduce, GlobalPools) {
  KILN_REQUIRE_GPU();
  const std::vector<Dims> shapes = {{1, 2048, 7, 7}, {2, 3, 1, 1},   {2, 5, 17, 19},
                                    {1, 4, 64, 64},  {1, 3, 4, 5, 6}, {3, 7, 129},
                                    {2, 1, 1000}};
  for (const Dims& d : shapes)
    for (DataType dt : {kF32, kF16, kBF16}) {
      const std::string label = dims_label(d) + " " + dtype_name(dt);
      const In x{.dtype = dt, .dims = d};
      expect_matches_cpu({.op = "GlobalAveragePool", .inputs = {x}, .label = label});
      expect_matches_cpu({.op = "GlobalMaxPool", .inputs = {x}, .label = label});
      for (int64_t p : {1, 2, 3})
        expect_matches_cpu({.op = "GlobalLpPool", .attrs = {{"p", i(p)}}, .inputs = {x},
                            .label = label + " p=" + std::to_string(p)},
                           Check{.rtol = dt == kF32 ? 1e-4 : -1});
    }
  expect_matches_cpu({.op = "GlobalMaxPool", .inputs = {In{.dtype = kI32, .dims = {2, 3, 9, 9},
                                                           .lo = -100, .hi = 100}}});
}

// ---- CumSum / TopK ---------------------------------------------------------------------------

TEST(CudaReduce, CumSum) {
  KILN_REQUIRE_GPU();
  struct S {
    Dims dims;
    int64_t axis;
  };
  std::vector<S> cases;
  for (int64_t n : kLengths) {
    cases.push_back({{3, n}, -1});  // rows kernel past 64
    cases.push_back({{2, n, 5}, 1});
  }
  cases.push_back({{2, 5000}, 1});  // several tiles of the row scan
  cases.push_back({{4, 3, 2}, 0});
  for (const S& s : cases)
    for (int mode = 0; mode < 4; ++mode)
      for (DataType dt : {kF32, kF16, kI32, kI64}) {
        In x{.dtype = dt, .dims = s.dims, .lo = -2, .hi = 2};
        if (!dtype_is_float(dt)) x.lo = -50, x.hi = 50;
        OpCase c{.op = "CumSum", .opset = 14,
                 .attrs = {{"exclusive", i(mode & 1)}, {"reverse", i(mode >> 1)}},
                 .inputs = {x, In{.dtype = kI64, .dims = {}, .constant = true,
                                  .value = HostTensor::from_vector<int64_t>(kI64, {}, {s.axis})}},
                 .label = dims_label(s.dims) + " mode " + std::to_string(mode) + " " +
                          dtype_name(dt)};
        // Running sums of up to 5000 terms: float order differs from the CPU's sequence.
        expect_matches_cpu(c, Check{.atol = dt == kF32 ? 1e-4 : -1, .rtol = dt == kF16 ? 2e-2 : -1});
      }
}

TEST(CudaReduce, TopK) {
  KILN_REQUIRE_GPU();
  struct K {
    Dims dims;
    int64_t axis, k;
  };
  const std::vector<K> cases = {
      {{3, 1}, -1, 1},     {{3, 7}, -1, 3},       {{3, 128}, 1, 128},   {{2, 129}, -1, 5},
      {{4, 1000}, 1, 10},  {{2, 4097}, 1, 100},   {{1, 20000}, 1, 7},   {{1, 10000}, -1, 2000},
      {{2, 33, 5}, 1, 4},  {{6, 4, 3}, 0, 6},
  };
  uint64_t seed = 11;
  for (const K& c : cases)
    for (int largest = 0; largest < 2; ++largest)
      for (DataType dt : {kF32, kF16, kI32, kI64}) {
        const std::string label = dims_label(c.dims) + " k=" + std::to_string(c.k) +
                                  (largest ? " largest " : " smallest ") + dtype_name(dt);
        for (int ties = 0; ties < 2; ++ties) {
          In x{.dtype = dt, .dims = c.dims, .lo = -1000, .hi = 1000};
          if (ties) x.value = tied_values(dt, c.dims, seed++);
          expect_matches_cpu({.op = "TopK", .opset = 11,
                              .attrs = {{"axis", i(c.axis)}, {"largest", i(largest)}},
                              .inputs = {x, const_i64({c.k})},
                              .outputs = 2,
                              .label = (ties ? "ties " : "") + label});
        }
      }
  // Opset 1: k is an attribute.
  expect_matches_cpu({.op = "TopK", .opset = 1, .attrs = {{"k", i(3)}},
                      .inputs = {In{.dtype = kF32, .dims = {5, 9}}}, .outputs = 2});
}

// ---- channels-last operands -----------------------------------------------------------------
// One-node models are always row-major, so these run the registered kernels directly on
// device buffers: the same logical tensor as [N, C, H, W] and as NHWC memory must give the
// same result.

Dims nhwc_order(const Dims& d) { return {d[0], d[2], d[3], d[1]}; }

/// 4-D transpose between NCHW and NHWC memory orders (to_nhwc false: back to NCHW).
HostTensor transpose4(const HostTensor& t, const Dims& logical, bool to_nhwc) {
  const int64_t n = logical[0], c = logical[1], h = logical[2], w = logical[3];
  HostTensor r(t.dtype(), to_nhwc ? nhwc_order(logical) : logical);
  const size_t es = dtype_size(t.dtype());
  for (int64_t a = 0; a < n; ++a)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const int64_t nchw = ((a * c + ch) * h + y) * w + x, nhwc = ((a * h + y) * w + x) * c + ch;
          const int64_t src = to_nhwc ? nchw : nhwc, dst = to_nhwc ? nhwc : nchw;
          std::memcpy(static_cast<char*>(r.raw()) + dst * es,
                      static_cast<const char*>(t.raw()) + src * es, es);
        }
  return r;
}

/// Runs op's registered CUDA kernel on `data` (memory order of each operand's layout);
/// returns output 0 in its memory order, or an undefined tensor after a test failure.
HostTensor run_kernel(const std::string& op, int opset, const Attrs& attrs,
                      const std::vector<cuda::Operand>& ins, const std::vector<HostTensor>& data,
                      const cuda::Operand& out) {
  ir::Graph g;
  std::vector<ir::Value*> vin;
  for (size_t k = 0; k < ins.size(); ++k)
    vin.push_back(g.add_value("in" + std::to_string(k), ins[k].dtype, Shape::from(ins[k].dims)));
  ir::Value* vout = g.add_value("out", out.dtype, Shape::from(out.dims));
  ir::Node* node = g.add_node(op, "node", vin, {vout}, "", opset);
  for (const auto& [k, v] : attrs) node->attrs[k] = v;
  cuda::Resources res;
  EXPECT_EQ(cudaDeviceGetAttribute(&res.sm_count, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  const cuda::KernelConfig cfg{*node, ins, {out}, res, {}};
  const cuda::KernelEntry* entry = cuda::KernelRegistry::instance().find("", op);
  EXPECT_NE(entry, nullptr) << op;
  if (!entry) return {};
  auto kernel = entry->create(cfg);
  EXPECT_TRUE(kernel.is_ok()) << kernel.status().to_string();
  if (!kernel.is_ok()) return {};
  std::vector<void*> dev_in(ins.size()), dev_out(1);
  for (size_t k = 0; k < ins.size(); ++k) {
    EXPECT_EQ(cudaMalloc(&dev_in[k], std::max<size_t>(data[k].bytes(), 1)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(dev_in[k], data[k].raw(), data[k].bytes(), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  HostTensor y(out.dtype, out.layout == cuda::Layout::kNhwc ? nhwc_order(out.dims) : out.dims);
  EXPECT_EQ(cudaMalloc(&dev_out[0], std::max<size_t>(y.bytes(), 1)), cudaSuccess);
  void* ws = nullptr;
  const size_t ws_bytes = (*kernel)->workspace_bytes();
  if (ws_bytes) EXPECT_EQ(cudaMalloc(&ws, ws_bytes), cudaSuccess);
  const cuda::LaunchArgs args{dev_in.data(), dev_out.data(), ws, nullptr, res};
  const Status st = (*kernel)->enqueue(args);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(y.raw(), dev_out[0], y.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  for (void* p : dev_in) cudaFree(p);
  cudaFree(dev_out[0]);
  if (ws) cudaFree(ws);
  return y;
}

HostTensor random_host(DataType dt, const Dims& dims, uint64_t seed, double lo, double hi) {
  HostTensor t(dt, dims);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t k = 0; k < t.numel(); ++k) t.set_f64(k, u(rng));
  return t;
}

/// Runs op with X (input 0) row-major and channels-last, other inputs as given, and
/// expects equal outputs (output 0 has X's layout and `out_dims`).
void expect_nhwc_matches(const std::string& op, int opset, const Attrs& attrs, DataType dt,
                         const Dims& x_dims, const Dims& out_dims,
                         std::vector<HostTensor> params = {}) {
  SCOPED_TRACE(op + " nhwc " + dims_label(x_dims) + " " + dtype_name(dt));
  const HostTensor x = random_host(dt, x_dims, 99, -2, 2);
  std::vector<cuda::Operand> ins{{.dtype = dt, .dims = x_dims}};
  std::vector<HostTensor> data{x};
  for (const HostTensor& p : params) {
    ins.push_back({.dtype = p.dtype(), .dims = p.dims()});
    data.push_back(p);
  }
  const cuda::Operand out{.dtype = dt, .dims = out_dims};
  const HostTensor ref = run_kernel(op, opset, attrs, ins, data, out);
  ins[0].layout = cuda::Layout::kNhwc;
  data[0] = transpose4(x, x_dims, true);
  cuda::Operand out_nhwc = out;
  out_nhwc.layout = cuda::Layout::kNhwc;
  HostTensor got = run_kernel(op, opset, attrs, ins, data, out_nhwc);
  if (!ref.defined() || !got.defined()) return;
  got = transpose4(got, out_dims, false);
  auto [atol, rtol] = default_tolerance(dt);
  EXPECT_EQ(compare_tensors(ref, got, atol, rtol), "");
}

TEST(CudaReduce, ChannelsLast) {
  KILN_REQUIRE_GPU();
  for (DataType dt : {kF32, kF16})
    for (const Dims& d : {Dims{2, 3, 5, 7}, Dims{1, 2048, 7, 7}, Dims{2, 64, 33, 31},
                          Dims{1, 8, 64, 64}}) {
      const Dims pooled{d[0], d[1], 1, 1};
      expect_nhwc_matches("GlobalAveragePool", 17, {}, dt, d, pooled);
      expect_nhwc_matches("GlobalMaxPool", 17, {}, dt, d, pooled);
      expect_nhwc_matches("GlobalLpPool", 17, {{"p", i(2)}}, dt, d, pooled);
      std::vector<HostTensor> bn;
      for (int k = 0; k < 4; ++k) bn.push_back(random_host(kF32, {d[1]}, 5 + k, 0.1, 2));
      expect_nhwc_matches("BatchNormalization", 15, {}, dt, d, d, bn);
      expect_nhwc_matches("LRN", 13, {{"size", i(3)}}, dt, d, d);
    }
}

}  // namespace
}  // namespace kiln
