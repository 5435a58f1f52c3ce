// Shapes whose dimensions are concrete (>= 0), symbolic ("batch", "seq") or unknown.
// Symbolic dims propagate through shape inference; two dims with the same symbol are equal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

/// One dimension: a concrete value, or a symbol (value < 0; symbol empty = unknown).
struct Dim {
  int64_t value = -1;
  std::string symbol;

  Dim() = default;
  Dim(int64_t v) : value(v) {}  // NOLINT: implicit from integers is the common case
  static Dim sym(std::string s) { Dim d; d.symbol = std::move(s); return d; }
  static Dim unknown() { return Dim(); }
  bool is_known() const { return value >= 0; }
  bool is_symbolic() const { return value < 0 && !symbol.empty(); }
  /// True when both are known and equal, or share a symbol.
  bool same_as(const Dim& o) const {
    if (is_known() || o.is_known()) return value == o.value;
    return !symbol.empty() && symbol == o.symbol;
  }
  std::string to_string() const { return is_known() ? std::to_string(value) : (symbol.empty() ? "?" : symbol); }
};

/// Shape of a tensor. `rank_known == false` means nothing is known (dims is empty).
struct Shape {
  std::vector<Dim> dims;
  bool rank_known = true;

  Shape() = default;
  Shape(std::vector<Dim> d) : dims(std::move(d)) {}  // NOLINT
  static Shape from(const std::vector<int64_t>& d) {
    Shape s;
    for (auto v : d) s.dims.emplace_back(v);
    return s;
  }
  static Shape unknown_rank() { Shape s; s.rank_known = false; return s; }

  size_t rank() const { return dims.size(); }
  bool is_static() const {
    if (!rank_known) return false;
    for (const auto& d : dims) if (!d.is_known()) return false;
    return true;
  }
  /// Concrete dims, or nullopt when not static.
  std::optional<std::vector<int64_t>> concrete() const {
    if (!is_static()) return std::nullopt;
    std::vector<int64_t> v;
    for (const auto& d : dims) v.push_back(d.value);
    return v;
  }
  /// Number of elements; -1 when not static.
  int64_t numel() const {
    if (!is_static()) return -1;
    int64_t n = 1;
    for (const auto& d : dims) n *= d.value;
    return n;
  }
  /// "1x3x224x224", "batchx128", "?" for unknown rank, "scalar" for rank 0.
  std::string to_string() const;
};

/// Formats concrete dims as "1x3x224x224" ("scalar" for rank 0).
std::string dims_to_string(const std::vector<int64_t>& dims);
/// Parses "1x3x224x224" (also accepts ',' separators); nullopt on bad syntax.
std::optional<std::vector<int64_t>> parse_dims(const std::string& s);

/// Numpy multidirectional broadcast of two shapes (ONNX Broadcasting.md). nullopt when
/// known dims differ and neither is 1.
std::optional<Shape> broadcast_shapes(const Shape& a, const Shape& b);
std::optional<std::vector<int64_t>> broadcast_dims(const std::vector<int64_t>& a,
                                                   const std::vector<int64_t>& b);

/// Normalises an axis in [-rank, rank-1] to [0, rank-1]; nullopt when out of range.
std::optional<int64_t> normalize_axis(int64_t axis, int64_t rank);

/// Row-major strides (in elements) of dims.
std::vector<int64_t> strides_of(const std::vector<int64_t>& dims);

}  // namespace kiln
