#include "core/shape.h"

#include <cstdlib>

namespace kiln {

std::string Shape::to_string() const {
  if (!rank_known) return "?";
  if (dims.empty()) return "scalar";
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += "x";
    s += dims[i].to_string();
  }
  return s;
}

std::string dims_to_string(const std::vector<int64_t>& dims) {
  return Shape::from(dims).to_string();
}

std::optional<std::vector<int64_t>> parse_dims(const std::string& s) {
  std::vector<int64_t> out;
  if (s.empty() || s == "scalar") return out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find_first_of("x,", i);
    if (j == std::string::npos) j = s.size();
    std::string tok = s.substr(i, j - i);
    if (tok.empty()) return std::nullopt;
    char* end = nullptr;
    long long v = std::strtoll(tok.c_str(), &end, 10);
    if (*end != '\0' || v < 0) return std::nullopt;
    out.push_back(v);
    i = j + 1;
  }
  return out;
}

std::optional<Shape> broadcast_shapes(const Shape& a, const Shape& b) {
  if (!a.rank_known || !b.rank_known) return Shape::unknown_rank();
  size_t r = std::max(a.rank(), b.rank());
  Shape out;
  out.dims.resize(r);
  for (size_t i = 0; i < r; ++i) {
    const Dim* da = i < r - a.rank() ? nullptr : &a.dims[i - (r - a.rank())];
    const Dim* db = i < r - b.rank() ? nullptr : &b.dims[i - (r - b.rank())];
    if (!da) { out.dims[i] = *db; continue; }
    if (!db) { out.dims[i] = *da; continue; }
    if (da->is_known() && db->is_known()) {
      if (da->value == db->value || db->value == 1) out.dims[i] = *da;
      else if (da->value == 1) out.dims[i] = *db;
      else return std::nullopt;
    } else if (da->is_known() && da->value == 1) {
      out.dims[i] = *db;
    } else if (db->is_known() && db->value == 1) {
      out.dims[i] = *da;
    } else if (da->same_as(*db)) {
      out.dims[i] = *da;
    } else if (da->is_known()) {
      out.dims[i] = *da;  // the other must be 1 or equal at run time
    } else if (db->is_known()) {
      out.dims[i] = *db;
    } else {
      out.dims[i] = Dim::unknown();
    }
  }
  return out;
}

std::optional<std::vector<int64_t>> broadcast_dims(const std::vector<int64_t>& a,
                                                   const std::vector<int64_t>& b) {
  auto s = broadcast_shapes(Shape::from(a), Shape::from(b));
  if (!s) return std::nullopt;
  return s->concrete();
}

std::optional<int64_t> normalize_axis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> st(dims.size(), 1);
  for (int64_t i = static_cast<int64_t>(dims.size()) - 2; i >= 0; --i)
    st[i] = st[i + 1] * dims[i + 1];
  return st;
}

}  // namespace kiln
