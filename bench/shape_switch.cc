// Host cost of changing a dynamic engine's input shape between inferences, against the
// same engine at one fixed shape, in the same run (issue bar: < 50 us per change in
// steady state). Also the GPU time per inference at each shape, for comparison with a
// static plan built for that shape (`kiln bench`).
//
//   shape_switch PLAN "x:1x3x224x224" "x:8x3x224x224" [ITERS]
//
// Each shape argument gives every dynamic input, NAME:DIMS separated by ','. Inputs are
// zero-filled device buffers sized for the largest shape. Both shapes are warmed first
// (kernels built, CUDA graphs captured); then, ITERS times each:
//   fixed:  set_input_shape(A) + enqueue, always A;
//   switch: set_input_shape(A or B, alternating) + enqueue.
// The host time of those two calls is measured (the stream is synchronised outside the
// timed region), and the median and mean of each mode are printed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "core/shape.h"
#include "kiln/kiln.h"

namespace {

using Shapes = std::map<std::string, std::vector<int64_t>>;

bool parse(const std::string& arg, Shapes& out) {
  size_t start = 0;
  while (start <= arg.size()) {
    size_t end = arg.find(',', start);
    if (end == std::string::npos) end = arg.size();
    const std::string entry = arg.substr(start, end - start);
    const size_t colon = entry.rfind(':');
    if (colon == std::string::npos) return false;
    auto dims = kiln::parse_dims(entry.substr(colon + 1));
    if (!dims) return false;
    out[entry.substr(0, colon)] = *dims;
    start = end + 1;
  }
  return true;
}

int fail(const kiln::Status& st) {
  std::fprintf(stderr, "%s\n", st.to_string().c_str());
  return 1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s PLAN SHAPES_A SHAPES_B [ITERS]\n", argv[0]);
    return argc == 2 && std::string(argv[1]) == "--help" ? 0 : 2;
  }
  Shapes a, b;
  if (!parse(argv[2], a) || !parse(argv[3], b)) {
    std::fprintf(stderr, "bad shapes: write NAME:1x3x224x224[,NAME2:DIMS]\n");
    return 2;
  }
  const int iters = argc > 4 ? std::atoi(argv[4]) : 2000;
  kiln::Logger log(kiln::LogLevel::kWarning);
  auto engine = kiln::Runtime(log).deserialize_file(argv[1]);
  if (!engine.is_ok()) return fail(engine.status());
  auto ctx_r = (*engine)->create_execution_context_checked();
  if (!ctx_r.is_ok()) return fail(ctx_r.status());
  auto& ctx = *ctx_r.value();
  void* stream = ctx.stream();

  // Buffers for the larger of the two shapes of every input and output.
  std::map<std::string, kiln::CudaBuffer> buffers;
  std::map<std::string, size_t> bytes;
  for (const Shapes* s : {&a, &b}) {
    for (const auto& [name, dims] : *s)
      if (auto st = ctx.set_input_shape(name, dims); !st.is_ok()) return fail(st);
    std::vector<std::string> names = (*engine)->input_names();
    for (const auto& o : (*engine)->output_names()) names.push_back(o);
    for (const auto& name : names) {
      auto dims = ctx.tensor_shape(name);
      if (!dims.is_ok()) return fail(dims.status());
      auto desc = (*engine)->tensor_desc(name);
      size_t n = kiln::dtype_size(desc->dtype);
      for (auto d : *dims) n *= static_cast<size_t>(d);
      bytes[name] = std::max(bytes[name], std::max<size_t>(n, 1));
    }
  }
  for (const auto& [name, n] : bytes) {
    auto buf = kiln::CudaBuffer::allocate(kiln::CudaBuffer::Kind::kDevice, n);
    if (!buf.is_ok()) return fail(buf.status());
    std::vector<uint8_t> zeros(n, 0);
    if (auto st = kiln::cuda_copy_async(buf->data(), zeros.data(), n, stream); !st.is_ok()) return fail(st);
    if (auto st = ctx.set_tensor_address(name, buf->data()); !st.is_ok()) return fail(st);
    buffers.emplace(name, std::move(*buf));
  }
  using Clock = std::chrono::steady_clock;
  auto one = [&](const Shapes& s, double* host_us) -> kiln::Status {
    const auto t0 = Clock::now();
    for (const auto& [name, dims] : s) KILN_RETURN_IF_ERROR(ctx.set_input_shape(name, dims));
    KILN_RETURN_IF_ERROR(ctx.enqueue(stream));
    if (host_us) *host_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    return kiln::cuda_stream_synchronize(stream);
  };
  // GPU time per inference at one shape (graph replay), for the record.
  auto gpu_ms = [&](const Shapes& s) -> double {
    const auto t0 = Clock::now();
    for (int i = 0; i < 50; ++i)
      if (!one(s, nullptr).is_ok()) return -1;
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / 50;
  };
  const auto t_first = Clock::now();
  if (auto st = one(a, nullptr); !st.is_ok()) return fail(st);
  const double first_a_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_first).count();
  const auto t_first_b = Clock::now();
  if (auto st = one(b, nullptr); !st.is_ok()) return fail(st);
  const double first_b_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_first_b).count();
  for (int i = 0; i < 5; ++i)  // captures both CUDA graphs
    for (const Shapes* s : {&a, &b})
      if (auto st = one(*s, nullptr); !st.is_ok()) return fail(st);
  std::vector<double> fixed, sw;
  for (int i = 0; i < iters; ++i) {
    double us = 0;
    if (auto st = one(a, &us); !st.is_ok()) return fail(st);
    fixed.push_back(us);
  }
  for (int i = 0; i < iters; ++i) {
    double us = 0;
    if (auto st = one(i % 2 ? b : a, &us); !st.is_ok()) return fail(st);
    sw.push_back(us);
  }
  std::printf("first inference at A: %.1f ms, at B: %.1f ms (kernels built for each shape)\n", first_a_ms, first_b_ms);
  std::printf("GPU+host per inference: A %.3f ms, B %.3f ms\n", gpu_ms(a), gpu_ms(b));
  std::printf("host us per set_input_shape+enqueue: fixed shape median %.2f mean %.2f; alternating shapes median "
              "%.2f mean %.2f; cost of a shape change %.2f us (median)\n",
              median(fixed), mean(fixed), median(sw), mean(sw), median(sw) - median(fixed));
  return 0;
}
