#include "core/tensor.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/half.h"

namespace kiln {

std::shared_ptr<void> aligned_alloc_shared(size_t bytes, size_t align) {
  size_t n = (std::max<size_t>(bytes, 1) + align - 1) / align * align;
  void* p = std::aligned_alloc(align, n);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, n);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

HostTensor::HostTensor(DataType dtype, std::vector<int64_t> dims)
    : dtype_(dtype), dims_(std::move(dims)) {
  numel_ = 1;
  for (auto d : dims_) numel_ *= d;
  storage_ = aligned_alloc_shared(bytes());
  data_ = storage_.get();
}

HostTensor HostTensor::wrap(DataType dtype, std::vector<int64_t> dims, void* data,
                            std::shared_ptr<void> owner) {
  HostTensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.numel_ = 1;
  for (auto d : t.dims_) t.numel_ *= d;
  t.storage_ = std::move(owner);
  t.data_ = data;
  return t;
}

HostTensor HostTensor::reshaped(std::vector<int64_t> dims) const {
  HostTensor t = *this;
  t.dims_ = std::move(dims);
  return t;
}

HostTensor HostTensor::clone() const {
  HostTensor t(dtype_, dims_);
  if (bytes()) std::memcpy(t.data_, data_, bytes());
  return t;
}

double HostTensor::get_f64(int64_t i) const {
  switch (dtype_) {
    case DataType::kF32: return data<float>()[i];
    case DataType::kF64: return data<double>()[i];
    case DataType::kF16: return f16_to_f32(data<uint16_t>()[i]);
    case DataType::kBF16: return bf16_to_f32(data<uint16_t>()[i]);
    case DataType::kF8E4M3: return f8e4m3_to_f32(data<uint8_t>()[i]);
    case DataType::kI8: return data<int8_t>()[i];
    case DataType::kU8: return data<uint8_t>()[i];
    case DataType::kI16: return data<int16_t>()[i];
    case DataType::kU16: return data<uint16_t>()[i];
    case DataType::kI32: return data<int32_t>()[i];
    case DataType::kU32: return data<uint32_t>()[i];
    case DataType::kI64: return static_cast<double>(data<int64_t>()[i]);
    case DataType::kU64: return static_cast<double>(data<uint64_t>()[i]);
    case DataType::kBool: return data<uint8_t>()[i] ? 1.0 : 0.0;
    case DataType::kUndefined: break;
  }
  return 0.0;
}

int64_t HostTensor::get_i64(int64_t i) const {
  switch (dtype_) {
    case DataType::kI64: return data<int64_t>()[i];
    case DataType::kI32: return data<int32_t>()[i];
    case DataType::kU64: return static_cast<int64_t>(data<uint64_t>()[i]);
    case DataType::kU32: return data<uint32_t>()[i];
    case DataType::kI16: return data<int16_t>()[i];
    case DataType::kU16: return data<uint16_t>()[i];
    case DataType::kI8: return data<int8_t>()[i];
    case DataType::kU8: case DataType::kBool: return data<uint8_t>()[i];
    default: {
      double v = get_f64(i);
      if (std::isnan(v)) return 0;
      if (v >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
      if (v <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
      return static_cast<int64_t>(v);
    }
  }
}

void HostTensor::set_f64(int64_t i, double v) {
  switch (dtype_) {
    case DataType::kF32: data<float>()[i] = static_cast<float>(v); return;
    case DataType::kF64: data<double>()[i] = v; return;
    case DataType::kF16: data<uint16_t>()[i] = f32_to_f16(static_cast<float>(v)); return;
    case DataType::kBF16: data<uint16_t>()[i] = f32_to_bf16(static_cast<float>(v)); return;
    case DataType::kF8E4M3: data<uint8_t>()[i] = f32_to_f8e4m3(static_cast<float>(v)); return;
    case DataType::kBool: data<uint8_t>()[i] = v != 0.0; return;
    default: {
      // float → int: truncate toward zero, then wrap like a C cast of int64.
      int64_t iv = std::isnan(v) ? 0 : (v >= 9.2233720368547758e18 ? INT64_MIN : static_cast<int64_t>(v));
      set_i64(i, iv);
    }
  }
}

void HostTensor::set_i64(int64_t i, int64_t v) {
  switch (dtype_) {
    case DataType::kI64: data<int64_t>()[i] = v; return;
    case DataType::kI32: data<int32_t>()[i] = static_cast<int32_t>(v); return;
    case DataType::kU64: data<uint64_t>()[i] = static_cast<uint64_t>(v); return;
    case DataType::kU32: data<uint32_t>()[i] = static_cast<uint32_t>(v); return;
    case DataType::kI16: data<int16_t>()[i] = static_cast<int16_t>(v); return;
    case DataType::kU16: data<uint16_t>()[i] = static_cast<uint16_t>(v); return;
    case DataType::kI8: data<int8_t>()[i] = static_cast<int8_t>(v); return;
    case DataType::kU8: data<uint8_t>()[i] = static_cast<uint8_t>(v); return;
    case DataType::kBool: data<uint8_t>()[i] = v != 0; return;
    default: set_f64(i, static_cast<double>(v)); return;
  }
}

std::vector<int64_t> HostTensor::to_i64_vector() const {
  std::vector<int64_t> v(numel_);
  for (int64_t i = 0; i < numel_; ++i) v[i] = get_i64(i);
  return v;
}

std::vector<float> HostTensor::to_f32_vector() const {
  std::vector<float> v(numel_);
  for (int64_t i = 0; i < numel_; ++i) v[i] = static_cast<float>(get_f64(i));
  return v;
}

HostTensor HostTensor::cast(DataType to) const {
  HostTensor out(to, dims_);
  if (to == dtype_) {
    if (bytes()) std::memcpy(out.raw(), raw(), bytes());
    return out;
  }
  bool int_path = !dtype_is_float(dtype_) && !dtype_is_float(to);
  for (int64_t i = 0; i < numel_; ++i) {
    if (int_path) out.set_i64(i, get_i64(i));
    else if (dtype_ == DataType::kU64 || dtype_ == DataType::kI64) out.set_f64(i, static_cast<double>(get_i64(i)));
    else out.set_f64(i, get_f64(i));
  }
  return out;
}

bool HostTensor::identical(const HostTensor& o) const {
  return dtype_ == o.dtype_ && dims_ == o.dims_ &&
         (bytes() == 0 || std::memcmp(data_, o.data_, bytes()) == 0);
}

}  // namespace kiln
