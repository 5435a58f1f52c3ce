// Runs one registered CUDA kernel directly on device buffers, with each operand's layout
// chosen by the test: one-node models are always row-major (the layout pass only makes
// FP16/BF16 convolution regions channels-last), so kernels' channels-last and mixed-layout
// paths are tested this way, against the CPU reference of the same node on NCHW data.
#pragma once

#include <cuda_runtime.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cuda/kernel.h"
#include "gpu_test_util.h"

namespace kiln::gputest {

/// One node input. `value` holds the logical (ONNX order) data; `constant` inputs are also
/// given to the factory as host values (scales, sizes); an undefined value = omitted input.
struct DirectIn {
  HostTensor value;
  cuda::Layout layout = cuda::Layout::kRowMajor;
  bool constant = false;
};

/// Output 0 of a direct run, in logical order, and the kernel's tactic.
struct DirectOut {
  HostTensor y;
  std::string tactic;
};

/// `t` (4-D, logical NCHW order) with its elements in `layout`'s memory order, or back
/// (`to_memory` false: `t` holds memory order, the result logical order). Other ranks and
/// row-major layouts are returned as they are.
inline HostTensor convert_layout(const HostTensor& t, cuda::Layout layout, bool to_memory) {
  if (layout != cuda::Layout::kNhwc || t.rank() != 4) return t.clone();
  const auto& d = t.dims();
  const int64_t n = d[0], c = d[1], h = d[2], w = d[3];
  HostTensor r(t.dtype(), d);
  const size_t es = dtype_size(t.dtype());
  for (int64_t a = 0; a < n; ++a)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const int64_t nchw = ((a * c + ch) * h + y) * w + x;
          const int64_t nhwc = ((a * h + y) * w + x) * c + ch;
          const int64_t src = to_memory ? nchw : nhwc, dst = to_memory ? nhwc : nchw;
          std::memcpy(static_cast<char*>(r.raw()) + dst * es,
                      static_cast<const char*>(t.raw()) + src * es, es);
        }
  return r;
}

/// Creates `op`'s registered CUDA kernel for these operands (output 0: `out_dtype`,
/// `out_dims`, `out_layout`) and runs it once on device copies of the inputs, the output
/// poisoned with 0xFF bytes (NaN for floats) so that unwritten elements show. `misalign`
/// bytes offset the device addresses of input 0 and output 0 (the kernels' fallback for
/// buffers the planner never produces). Errors: factory or launch errors, CUDA errors.
inline Result<DirectOut> run_direct(const std::string& op, int opset,
                                    const std::map<std::string, ir::Attribute>& attrs,
                                    const std::vector<DirectIn>& ins, DataType out_dtype,
                                    const std::vector<int64_t>& out_dims, cuda::Layout out_layout,
                                    size_t misalign = 0) {
  ir::Graph g;
  std::vector<ir::Value*> vin;
  std::vector<cuda::Operand> operands;
  for (size_t k = 0; k < ins.size(); ++k) {
    const DirectIn& in = ins[k];
    if (!in.value.defined()) {
      vin.push_back(nullptr);
      operands.emplace_back();
      continue;
    }
    vin.push_back(g.add_value("in" + std::to_string(k), in.value.dtype(), in.value.shape()));
    operands.push_back({.dtype = in.value.dtype(),
                        .dims = in.value.dims(),
                        .layout = in.layout,
                        .value = in.constant ? &in.value : nullptr});
  }
  ir::Value* vout = g.add_value("out", out_dtype, Shape::from(out_dims));
  ir::Node* node = g.add_node(op, "node", vin, {vout}, "", opset);
  for (const auto& [k, v] : attrs) node->attrs[k] = v;
  cuda::Resources res;
  if (cudaDeviceGetAttribute(&res.sm_count, cudaDevAttrMultiProcessorCount, 0) != cudaSuccess)
    return Status(ErrorCode::kCudaError, "cudaDeviceGetAttribute failed");
  const cuda::Operand out{.dtype = out_dtype, .dims = out_dims, .layout = out_layout};
  const cuda::KernelConfig cfg{*node, operands, {out}, res, {}};
  const cuda::KernelEntry* entry = cuda::KernelRegistry::instance().find("", op);
  if (!entry || !entry->create) return Status(ErrorCode::kNoGpuKernel, "no CUDA kernel for " + op);
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<cuda::Kernel> kernel, entry->create(cfg));
  std::vector<void*> blocks;
  auto release = [&] {
    for (void* p : blocks) cudaFree(p);
  };
  auto device_buffer = [&](size_t bytes, size_t offset) -> char* {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes + offset + 16) != cudaSuccess) return nullptr;
    blocks.push_back(p);
    return static_cast<char*>(p) + offset;
  };
  std::vector<const void*> dev_in(ins.size(), nullptr);
  bool ok = true;
  for (size_t k = 0; k < ins.size(); ++k) {
    if (!ins[k].value.defined()) continue;
    const HostTensor mem = convert_layout(ins[k].value, ins[k].layout, true);
    char* p = device_buffer(mem.bytes(), k == 0 ? misalign : 0);
    ok = ok && p && cudaMemcpy(p, mem.raw(), mem.bytes(), cudaMemcpyHostToDevice) == cudaSuccess;
    dev_in[k] = p;
  }
  HostTensor y(out_dtype, out_dims);
  char* dev_y = device_buffer(y.bytes(), misalign);
  ok = ok && dev_y && cudaMemset(dev_y, 0xFF, y.bytes()) == cudaSuccess;
  void* ws = nullptr;
  if (ok && kernel->workspace_bytes() > 0) {
    ws = device_buffer(kernel->workspace_bytes(), 0);
    ok = ws != nullptr;
  }
  if (!ok) {
    release();
    return Status(ErrorCode::kCudaError, "device buffers for " + op);
  }
  void* outs[1] = {dev_y};
  const cuda::LaunchArgs args{dev_in.data(), outs, ws, nullptr, res};
  Status st = kernel->enqueue(args);
  if (st.is_ok() && (cudaDeviceSynchronize() != cudaSuccess ||
                     cudaMemcpy(y.raw(), dev_y, y.bytes(), cudaMemcpyDeviceToHost) != cudaSuccess))
    st = Status(ErrorCode::kCudaError, "running " + op + " failed");
  release();
  KILN_RETURN_IF_ERROR(st);
  return DirectOut{convert_layout(y, out_layout, false), kernel->tactic()};
}

/// Output 0 of the same node on the CPU reference backend (inputs in logical order;
/// constant inputs as initializers, the others as graph inputs).
inline Result<HostTensor> cpu_reference(const std::string& op, int opset,
                                        const std::map<std::string, ir::Attribute>& attrs,
                                        const std::vector<DirectIn>& ins) {
  auto g = std::make_unique<ir::Graph>();
  g->name = "direct_reference";
  g->opset_imports[""] = opset;
  std::vector<ir::Value*> vin;
  std::vector<HostTensor> runtime;
  for (size_t k = 0; k < ins.size(); ++k) {
    const DirectIn& in = ins[k];
    const std::string name = "in" + std::to_string(k);
    if (!in.value.defined()) {
      vin.push_back(nullptr);
    } else if (in.constant) {
      vin.push_back(g->add_constant(name, in.value));
    } else {
      ir::Value* v = g->add_value(name, in.value.dtype(), in.value.shape());
      g->inputs.push_back(v);
      vin.push_back(v);
      runtime.push_back(in.value);
    }
  }
  ir::Value* out = g->add_value("out");
  g->outputs.push_back(out);
  ir::Node* node = g->add_node(op, "node", vin, {out}, "", opset);
  for (const auto& [k, v] : attrs) node->attrs[k] = v;
  BuilderConfig cfg;
  cfg.backend = Backend::kCpu;
  cfg.opt_level = 0;
  KILN_ASSIGN_OR_RETURN(EngineRun run, build_and_run(std::move(g), runtime, cfg));
  return std::move(run.outputs.at(0));
}

}  // namespace kiln::gputest
