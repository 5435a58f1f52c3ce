#include <cstring>

#include "kiln/types.h"

namespace kiln {

size_t dtype_size(DataType t) {
  switch (t) {
    case DataType::kF32: case DataType::kI32: case DataType::kU32: return 4;
    case DataType::kF16: case DataType::kBF16: case DataType::kI16: case DataType::kU16: return 2;
    case DataType::kF8E4M3: case DataType::kI8: case DataType::kU8: case DataType::kBool: return 1;
    case DataType::kF64: case DataType::kI64: case DataType::kU64: return 8;
    case DataType::kUndefined: return 0;
  }
  return 0;
}

namespace {
struct Name { DataType t; const char* name; };
constexpr Name kNames[] = {
    {DataType::kF32, "f32"}, {DataType::kF16, "f16"}, {DataType::kBF16, "bf16"},
    {DataType::kF8E4M3, "f8e4m3"}, {DataType::kF64, "f64"}, {DataType::kI8, "i8"},
    {DataType::kU8, "u8"}, {DataType::kI16, "i16"}, {DataType::kU16, "u16"},
    {DataType::kI32, "i32"}, {DataType::kU32, "u32"}, {DataType::kI64, "i64"},
    {DataType::kU64, "u64"}, {DataType::kBool, "bool"}, {DataType::kUndefined, "undefined"}};
}  // namespace

const char* dtype_name(DataType t) {
  for (const auto& n : kNames)
    if (n.t == t) return n.name;
  return "undefined";
}

DataType dtype_from_name(const std::string& name) {
  for (const auto& n : kNames)
    if (name == n.name) return n.t;
  return DataType::kUndefined;
}

bool dtype_is_float(DataType t) {
  return t == DataType::kF32 || t == DataType::kF16 || t == DataType::kBF16 ||
         t == DataType::kF8E4M3 || t == DataType::kF64;
}
bool dtype_is_int(DataType t) {
  return t == DataType::kI8 || t == DataType::kU8 || t == DataType::kI16 || t == DataType::kU16 ||
         t == DataType::kI32 || t == DataType::kU32 || t == DataType::kI64 || t == DataType::kU64;
}
bool dtype_is_signed(DataType t) {
  return dtype_is_float(t) || t == DataType::kI8 || t == DataType::kI16 || t == DataType::kI32 ||
         t == DataType::kI64;
}

}  // namespace kiln
