// HostTensor: a dense row-major tensor in host memory with shared, 64-byte aligned storage.
// Used for initializers, constants, attributes and by the CPU backend.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/shape.h"
#include "kiln/status.h"
#include "kiln/types.h"

namespace kiln {

class HostTensor {
 public:
  HostTensor() = default;
  /// Allocates zero-initialised storage for dims (elements are dtype_size(dtype) bytes).
  HostTensor(DataType dtype, std::vector<int64_t> dims);
  /// Wraps external memory without copying; `owner` keeps it alive.
  static HostTensor wrap(DataType dtype, std::vector<int64_t> dims, void* data,
                         std::shared_ptr<void> owner);
  /// A rank-0 or rank-1 tensor from values (convenience for tests and folding).
  template <typename T>
  static HostTensor from_vector(DataType dtype, std::vector<int64_t> dims, const std::vector<T>& v) {
    HostTensor t(dtype, std::move(dims));
    const size_t n = std::min(t.bytes(), v.size() * sizeof(T));
    if (n) std::memcpy(t.raw(), v.data(), n);  // v.data() may be null when empty
    return t;
  }

  bool defined() const { return dtype_ != DataType::kUndefined; }
  DataType dtype() const { return dtype_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  size_t rank() const { return dims_.size(); }
  int64_t numel() const { return numel_; }
  size_t bytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  Shape shape() const { return Shape::from(dims_); }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <typename T> T* data() { return static_cast<T*>(data_); }
  template <typename T> const T* data() const { return static_cast<const T*>(data_); }

  /// Same storage, new dims (numel must match).
  HostTensor reshaped(std::vector<int64_t> dims) const;
  /// Deep copy.
  HostTensor clone() const;

  /// Element i converted to double / int64 (any dtype; f16/bf16/f8 decoded).
  double get_f64(int64_t i) const;
  int64_t get_i64(int64_t i) const;
  /// Stores v (converted, rounding to nearest even for narrow floats) at element i.
  void set_f64(int64_t i, double v);
  void set_i64(int64_t i, int64_t v);
  /// All elements as int64 (for shape tensors, axes...).
  std::vector<int64_t> to_i64_vector() const;
  std::vector<float> to_f32_vector() const;

  /// Converts to dtype `to` (ONNX Cast semantics: float→int truncates toward zero,
  /// saturate for fp8).
  HostTensor cast(DataType to) const;

  /// Bytewise equality of dtype, dims and data.
  bool identical(const HostTensor& o) const;

 private:
  DataType dtype_ = DataType::kUndefined;
  std::vector<int64_t> dims_;
  int64_t numel_ = 0;
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
};

/// Allocates `bytes` (at least 1), zeroed, aligned to `align` (a power of two >= 64).
std::shared_ptr<void> aligned_alloc_shared(size_t bytes, size_t align = 64);

}  // namespace kiln
