// Element types and small value types of the public API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

/// Element type of a tensor. Values match nothing external; use onnx/ for ONNX codes.
enum class DataType : uint8_t {
  kUndefined = 0,
  kF32, kF16, kBF16, kF8E4M3, kF64,
  kI8, kU8, kI16, kU16, kI32, kU32, kI64, kU64,
  kBool,
};

/// Bytes per element (bool is 1 byte); 0 for kUndefined.
size_t dtype_size(DataType t);
/// Short lowercase name: "f32", "f16", "bf16", "f8e4m3", "i64", "bool", ...
const char* dtype_name(DataType t);
/// Parses the names produced by dtype_name; kUndefined when unknown.
DataType dtype_from_name(const std::string& name);
bool dtype_is_float(DataType t);
bool dtype_is_int(DataType t);     ///< signed or unsigned integer (not bool)
bool dtype_is_signed(DataType t);  ///< floats and signed ints

/// A view of a tensor owned by the caller: element type, dims (row-major, dense) and data.
struct TensorView {
  DataType dtype = DataType::kUndefined;
  std::vector<int64_t> dims;
  void* data = nullptr;
  /// Number of elements (1 for a scalar, dims = {}).
  int64_t numel() const {
    int64_t n = 1;
    for (auto d : dims) n *= d;
    return n;
  }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
};

/// Where a CUDA layer's kernel comes from (TensorRT's tactic sources), as bits of
/// BuilderConfig::tactic_sources: kiln's own kernels, cuDNN, cuBLASLt.
enum class TacticSource : uint32_t { kKiln = 1u << 0, kCudnn = 1u << 1, kCublasLt = 1u << 2 };
inline constexpr uint32_t kAllTacticSources = 0x7;
inline constexpr uint32_t tactic_source_bit(TacticSource s) { return static_cast<uint32_t>(s); }

}  // namespace kiln
