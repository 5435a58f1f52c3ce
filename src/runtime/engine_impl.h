// Internal state of Engine and ExecutionContext.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/plan.h"
#include "kiln/kiln.h"

namespace kiln {

namespace cuda {
struct EngineState;
struct ContextState;
}  // namespace cuda

struct Engine::Impl {
  plan::LoadedPlan plan;
  Logger* logger = nullptr;
  std::shared_ptr<cuda::EngineState> cuda;  ///< CUDA backend: weights on the device
  const ir::Value* find_input(const std::string& name) const;
  const ir::Value* find_output(const std::string& name) const;
};

struct ExecutionContext::Impl {
  const Engine* engine = nullptr;
  int profile = 0;  ///< selected optimisation profile
  /// Dims of the dynamic inputs, as set by set_input_shape / set_input (the CUDA context
  /// reads them through a pointer: `cuda` is declared later, so it is destroyed first).
  std::map<std::string, std::vector<int64_t>> shapes;
  /// CPU backend: output dims for `shapes` (tensor_shape), computed once per signature.
  std::vector<int64_t> out_dims_signature;
  std::map<std::string, std::vector<int64_t>> out_dims;
  std::map<std::string, HostTensor> inputs;
  std::vector<HostTensor> outputs;
  bool profiling = false;
  std::vector<LayerTime> layer_times;
  std::shared_ptr<cuda::ContextState> cuda;  ///< CUDA backend state
};

/// "valid names are: a, b" for NotFound messages.
std::string list_names(const std::vector<std::string>& names);

}  // namespace kiln
