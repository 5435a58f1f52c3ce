#include "ops/tensor_util.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "onnx/importer.h"

namespace kiln::ops {

SymInt SymInt::from_dim(const Dim& d) {
  if (d.is_known()) return of(d.value);
  SymInt s;
  s.symbol = d.symbol;
  return s;
}

Dim SymInt::to_dim() const {
  if (known) return value >= 0 ? Dim(value) : Dim::unknown();
  return symbol.empty() ? Dim::unknown() : Dim::sym(symbol);
}

namespace {

// Shape tensors are short; anything longer is data, not worth propagating.
constexpr int64_t kMaxElems = 1024;
// Bounds the producer walk (chains in real exports are < 10 deep).
constexpr int kMaxDepth = 32;

std::optional<SymInts> from_tensor(const HostTensor& t) {
  const bool ints = dtype_is_int(t.dtype()) || t.dtype() == DataType::kBool;  // bool: Where masks
  if (!ints || t.numel() > kMaxElems) return std::nullopt;
  SymInts out;
  out.reserve(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) out.push_back(SymInt::of(t.get_i64(i)));
  return out;
}

// Only the element count, from the value's shape (rank 0 → 1 element, rank 1 → dim 0).
std::optional<SymInts> count_only(const ir::Value* v) {
  if (!v->shape.rank_known || v->shape.rank() > 1) return std::nullopt;
  int64_t n = v->shape.rank() == 0 ? 1 : v->shape.dims[0].value;
  if (n < 0 || n > kMaxElems) return std::nullopt;
  return SymInts(static_cast<size_t>(n));
}

std::optional<SymInts> value_of(const ir::Value* v, int depth);

std::optional<SymInts> input_of(const ir::Node& n, size_t i, int depth) {
  const ir::Value* v = n.input(i);
  return v ? value_of(v, depth + 1) : std::nullopt;
}

// The values of `s` when every element is known.
std::optional<std::vector<int64_t>> all_known(const std::optional<SymInts>& s) {
  if (!s) return std::nullopt;
  std::vector<int64_t> out;
  for (const auto& e : *s) {
    if (!e.known) return std::nullopt;
    out.push_back(e.value);
  }
  return out;
}

std::optional<std::vector<int64_t>> concrete_of(const ir::Node& n, size_t i, int depth) {
  return all_known(input_of(n, i, depth));
}

using PropFn = std::optional<SymInts> (*)(const ir::Node&, int depth);

std::optional<SymInts> prop_shape(const ir::Node& n, int) {
  const Shape& s = n.inputs[0]->shape;
  if (!s.rank_known) return std::nullopt;
  auto [b, e] = shape_range(n, static_cast<int64_t>(s.rank()));
  SymInts out;
  for (int64_t d = b; d < e; ++d) out.push_back(SymInt::from_dim(s.dims[d]));
  return out;
}

std::optional<SymInts> prop_size(const ir::Node& n, int) {
  Dim d = dim_product(n.inputs[0]->shape.dims, 0, n.inputs[0]->shape.rank());
  if (!n.inputs[0]->shape.rank_known) d = Dim::unknown();
  return SymInts{SymInt::from_dim(d)};
}

// Ops that keep the element list of a shape tensor (they only change its rank).
std::optional<SymInts> prop_passthrough(const ir::Node& n, int depth) {
  return input_of(n, 0, depth);
}

std::optional<SymInts> prop_cast(const ir::Node& n, int depth) {
  // Casts to float would make later Div non-integral; only integer casts keep values.
  if (!dtype_is_int(onnx_import::from_onnx_dtype(static_cast<int>(n.attr_i("to", 0)))))
    return std::nullopt;
  return input_of(n, 0, depth);
}

std::optional<SymInts> prop_gather(const ir::Node& n, int depth) {
  if (n.attr_i("axis", 0) != 0 && n.attr_i("axis", 0) != -1) return std::nullopt;
  auto data = input_of(n, 0, depth);
  auto idx = concrete_of(n, 1, depth);
  if (!data || !idx) return std::nullopt;
  SymInts out;
  for (int64_t i : *idx) {
    if (!wrap_index(i, static_cast<int64_t>(data->size()))) return std::nullopt;
    out.push_back((*data)[i]);
  }
  return out;
}

std::optional<SymInts> prop_concat(const ir::Node& n, int depth) {
  SymInts out;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    auto part = input_of(n, i, depth);
    if (!part) return std::nullopt;
    out.insert(out.end(), part->begin(), part->end());
  }
  return out;
}

std::optional<SymInts> prop_slice(const ir::Node& n, int depth) {
  auto data = input_of(n, 0, depth);
  if (!data) return std::nullopt;
  std::optional<std::vector<int64_t>> starts, ends, axes, steps;
  if (n.opset < 10) {
    starts = n.attr_ints("starts");
    ends = n.attr_ints("ends");
    if (n.has_attr("axes")) axes = n.attr_ints("axes");
  } else {
    starts = concrete_of(n, 1, depth);
    ends = concrete_of(n, 2, depth);
    if (n.input(3)) axes = concrete_of(n, 3, depth);
    if (n.input(4)) steps = concrete_of(n, 4, depth);
    if ((n.input(3) && !axes) || (n.input(4) && !steps)) return std::nullopt;
  }
  if (!starts || !ends || starts->size() != 1 || ends->size() != 1) return std::nullopt;
  if (axes && (axes->size() != 1 || ((*axes)[0] != 0 && (*axes)[0] != -1))) return std::nullopt;
  const int64_t step = steps ? (steps->size() == 1 ? (*steps)[0] : 0) : 1;
  if (step == 0) return std::nullopt;
  const int64_t dim = static_cast<int64_t>(data->size());
  if (dim == 0) return SymInts();
  int64_t b = (*starts)[0], e = (*ends)[0];
  if (b < 0) b += dim;
  if (e < 0) e += dim;
  SymInts out;
  if (step > 0) {
    b = std::clamp<int64_t>(b, 0, dim);
    e = std::clamp<int64_t>(e, 0, dim);
    for (int64_t i = b; i < e; i += step) out.push_back((*data)[i]);
  } else {
    b = std::clamp<int64_t>(b, 0, dim - 1);
    e = std::clamp<int64_t>(e, -1, dim - 1);
    for (int64_t i = b; i > e; i += step) out.push_back((*data)[i]);
  }
  return out;
}

// Applies f elementwise to equally long element lists, broadcasting length-1 ones (numpy
// rules for the 0-D/1-D tensors that carry shapes).
template <typename F>
std::optional<SymInts> zip(const std::vector<std::optional<SymInts>>& in, F f) {
  size_t len = 1;
  for (const auto& v : in) {
    if (!v) return std::nullopt;
    if (v->size() != 1) {
      if (len != 1 && len != v->size()) return std::nullopt;
      len = v->size();
    }
  }
  SymInts out;
  std::vector<SymInt> args(in.size());
  for (size_t i = 0; i < len; ++i) {
    for (size_t k = 0; k < in.size(); ++k) args[k] = (*in[k])[in[k]->size() == 1 ? 0 : i];
    out.push_back(f(args));
  }
  return out;
}

// Integer Add/Sub/Mul/Div. Symbols survive the identities x*1, x+0, x-0, x/1, which
// exporters emit around dynamic dims.
template <int kOp>  // 0 add, 1 sub, 2 mul, 3 div
std::optional<SymInts> prop_arith(const ir::Node& n, int depth) {
  return zip({input_of(n, 0, depth), input_of(n, 1, depth)}, [](const SymInts& a) {
    const SymInt &x = a[0], &y = a[1];
    if (x.known && y.known) {
      // Overflow (possible only with adversarial constants) makes the element unknown.
      int64_t v = 0;
      bool overflow = false;
      if constexpr (kOp == 0) overflow = __builtin_add_overflow(x.value, y.value, &v);
      if constexpr (kOp == 1) overflow = __builtin_sub_overflow(x.value, y.value, &v);
      if constexpr (kOp == 2) overflow = __builtin_mul_overflow(x.value, y.value, &v);
      if constexpr (kOp == 3) {
        overflow = y.value == -1 && x.value == std::numeric_limits<int64_t>::min();
        v = y.value == 0 || overflow ? 0 : x.value / y.value;  // x/0 → 0 like the Div kernel
      }
      return overflow ? SymInt::unknown() : SymInt::of(v);
    }
    if (y.known && ((kOp <= 1 && y.value == 0) || (kOp >= 2 && y.value == 1))) return x;
    if (x.known && ((kOp == 0 && x.value == 0) || (kOp == 2 && x.value == 1))) return y;
    return SymInt::unknown();
  });
}

// Equal and Where resolve torch's expand pattern Where(Equal(shape, -1), 1, shape): a
// named dimension is never negative, so it differs from every negative constant.
std::optional<SymInts> prop_equal(const ir::Node& n, int depth) {
  return zip({input_of(n, 0, depth), input_of(n, 1, depth)}, [](const SymInts& a) {
    const SymInt &x = a[0], &y = a[1];
    if (x.known && y.known) return SymInt::of(x.value == y.value);
    if (x.same_as(y)) return SymInt::of(1);
    if ((x.is_symbol() && y.known && y.value < 0) || (y.is_symbol() && x.known && x.value < 0))
      return SymInt::of(0);
    return SymInt::unknown();
  });
}

std::optional<SymInts> prop_where(const ir::Node& n, int depth) {
  return zip({input_of(n, 0, depth), input_of(n, 1, depth), input_of(n, 2, depth)},
             [](const SymInts& a) {
               if (a[0].known) return a[0].value ? a[1] : a[2];
               return a[1].same_as(a[2]) ? a[1] : SymInt::unknown();
             });
}

std::optional<SymInts> prop_constant_of_shape(const ir::Node& n, int depth) {
  auto shape = concrete_of(n, 0, depth);
  if (!shape) return std::nullopt;
  int64_t count = 1;
  for (int64_t d : *shape) {
    if (d < 0 || (d > 0 && count > kMaxElems / d)) return std::nullopt;
    count *= d;
  }
  int64_t v = 0;
  if (const ir::Attribute* a = n.attr("value")) {
    if (a->t.numel() != 1 || !dtype_is_int(a->t.dtype())) return std::nullopt;
    v = a->t.get_i64(0);
  }
  return SymInts(static_cast<size_t>(count), SymInt::of(v));
}

const std::unordered_map<std::string, PropFn>& prop_table() {
  static const std::unordered_map<std::string, PropFn> t = {
      {"Shape", prop_shape},          {"Size", prop_size},
      {"Gather", prop_gather},        {"Concat", prop_concat},
      {"Slice", prop_slice},          {"Cast", prop_cast},
      {"Identity", prop_passthrough}, {"Unsqueeze", prop_passthrough},
      {"Squeeze", prop_passthrough},  {"Reshape", prop_passthrough},
      {"Flatten", prop_passthrough},  {"Add", prop_arith<0>},
      {"Sub", prop_arith<1>},         {"Mul", prop_arith<2>},
      {"Div", prop_arith<3>},         {"ConstantOfShape", prop_constant_of_shape},
      {"Equal", prop_equal},          {"Where", prop_where},
  };
  return t;
}

std::optional<SymInts> value_of(const ir::Value* v, int depth) {
  if (v->constant) return from_tensor(*v->constant);
  const ir::Node* p = v->producer;
  if (p && depth < kMaxDepth && v->producer_output == 0 && p->domain.empty() &&
      !p->inputs.empty() && p->inputs[0]) {
    auto it = prop_table().find(p->op_type);
    if (it != prop_table().end())
      if (auto r = it->second(*p, depth)) return r;
  }
  return count_only(v);
}

}  // namespace

std::optional<SymInts> sym_input(const InferContext& ctx, size_t i) {
  if (const HostTensor* t = ctx.input_value(i)) return from_tensor(*t);
  const ir::Value* v = ctx.node().input(i);
  if (!v) return std::nullopt;
  auto r = value_of(v, 0);
  // The context's shape can be more precise than the graph value's (run_node callers).
  if (!r && ctx.input_shape(i).rank_known && ctx.input_shape(i).rank() <= 1) {
    const Shape& s = ctx.input_shape(i);
    int64_t n = s.rank() == 0 ? 1 : s.dims[0].value;
    if (n >= 0 && n <= kMaxElems) r = SymInts(static_cast<size_t>(n));
  }
  return r;
}

std::optional<std::vector<int64_t>> known_input_ints(const InferContext& ctx, size_t i) {
  if (const HostTensor* t = ctx.input_value(i)) return t->to_i64_vector();
  return all_known(sym_input(ctx, i));
}

Dim dim_product(const std::vector<Dim>& dims, size_t begin, size_t end) {
  int64_t p = 1;
  const Dim* sym = nullptr;
  for (size_t d = begin; d < end; ++d) {
    if (dims[d].is_known()) {
      p *= dims[d].value;
    } else if (dims[d].is_symbolic() && !sym) {
      sym = &dims[d];
    } else {
      return Dim::unknown();
    }
  }
  if (!sym) return Dim(p);
  return p == 1 ? *sym : Dim::unknown();
}

// ---- data movement ------------------------------------------------------------------

namespace {

template <typename E>
void copy_view(const E* src, const std::vector<int64_t>& dims, const std::vector<int64_t>& strides,
               E* dst) {
  const size_t r = dims.size();
  const int64_t inner = dims[r - 1], is = strides[r - 1];
  int64_t outer = 1;
  for (size_t d = 0; d + 1 < r; ++d) outer *= dims[d];
  std::vector<int64_t> idx(r, 0);
  int64_t off = 0;
  for (int64_t o = 0; o < outer; ++o) {
    const E* s = src + off;
    if (is == 1) {
      std::memcpy(dst, s, static_cast<size_t>(inner) * sizeof(E));
    } else {
      for (int64_t j = 0; j < inner; ++j) dst[j] = s[j * is];
    }
    dst += inner;
    for (int64_t d = static_cast<int64_t>(r) - 2; d >= 0; --d) {
      off += strides[d];
      if (++idx[d] < dims[d]) break;
      off -= strides[d] * dims[d];
      idx[d] = 0;
    }
  }
}

}  // namespace

void strided_copy(const void* src, int64_t offset, std::vector<int64_t> dims,
                  std::vector<int64_t> strides, void* dst, size_t elem_size) {
  // Coalesce: drop size-1 dims and merge dims that are contiguous with their successor, so
  // e.g. a transpose of the two outer dims of a big tensor copies long runs.
  std::vector<int64_t> cd, cs;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 0) return;
    if (dims[d] == 1) continue;
    if (!cd.empty() && cs.back() == strides[d] * dims[d]) {
      cd.back() *= dims[d];
      cs.back() = strides[d];
    } else {
      cd.push_back(dims[d]);
      cs.push_back(strides[d]);
    }
  }
  if (cd.empty()) {
    cd.push_back(1);
    cs.push_back(1);
  }
  const char* base = static_cast<const char*>(src) + offset * static_cast<int64_t>(elem_size);
  switch (elem_size) {
    case 1:
      return copy_view(reinterpret_cast<const uint8_t*>(base), cd, cs, static_cast<uint8_t*>(dst));
    case 2:
      return copy_view(reinterpret_cast<const uint16_t*>(base), cd, cs,
                       static_cast<uint16_t*>(dst));
    case 4:
      return copy_view(reinterpret_cast<const uint32_t*>(base), cd, cs,
                       static_cast<uint32_t*>(dst));
    case 8:
      return copy_view(reinterpret_cast<const uint64_t*>(base), cd, cs,
                       static_cast<uint64_t*>(dst));
    default: {
      // No dtype has another size; kept correct anyway by copying byte-wise.
      for (auto& s : cs) s *= static_cast<int64_t>(elem_size);
      cd.push_back(static_cast<int64_t>(elem_size));
      cs.push_back(1);
      return copy_view(reinterpret_cast<const uint8_t*>(base), cd, cs, static_cast<uint8_t*>(dst));
    }
  }
}

void fill_pattern(void* dst, int64_t n, const void* value, size_t elem_size) {
  char* d = static_cast<char*>(dst);
  for (int64_t i = 0; i < n; ++i) std::memcpy(d + i * elem_size, value, elem_size);
}

int64_t prod(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t d = begin; d < end; ++d) p *= dims[d];
  return p;
}

Status index_out_of_range(const KernelContext& ctx, const char* what, int64_t index, int64_t axis,
                          int64_t dim) {
  return ctx.error(ErrorCode::kInvalidArgument,
                   std::string(what) + " value " + std::to_string(index) +
                       " is out of range for axis " + std::to_string(axis) + " of size " +
                       std::to_string(dim),
                   "valid indices are in [" + std::to_string(-dim) + ", " +
                       std::to_string(dim - 1) + "]; check how the indices were computed");
}

Result<int64_t> checked_axis(const InferContext& ctx, int64_t axis, int64_t rank,
                             const char* what) {
  auto a = normalize_axis(axis, rank);
  if (!a)
    return ctx.error(
        ErrorCode::kBadAxis,
        std::string(what) + " " + std::to_string(axis) + " is out of range for rank " +
            std::to_string(rank),
        "use a value in [" + std::to_string(-rank) + ", " + std::to_string(rank - 1) + "]");
  return *a;
}

Status check_output_size(const InferContext& ctx, const Shape& s, DataType t) {
  constexpr int64_t kMaxBytes = int64_t{1} << 40;
  int64_t bytes = static_cast<int64_t>(std::max<size_t>(dtype_size(t), 1));
  bool overflow = false;
  for (const Dim& d : s.dims)
    if (d.is_known()) overflow |= __builtin_mul_overflow(bytes, d.value, &bytes);
  if (!overflow && bytes <= kMaxBytes) return Status::ok();
  return ctx.error(ErrorCode::kOutOfMemory,
                   "output of shape " + s.to_string() + " (" + dtype_name(t) + ") is too large",
                   "check the values of the shape/repeats/pads inputs");
}

Status require_index_type(const InferContext& ctx, size_t i, const char* what) {
  DataType t = ctx.input_type(i);
  if (t == DataType::kUndefined || t == DataType::kI32 || t == DataType::kI64) return Status::ok();
  return ctx.error(ErrorCode::kTypeMismatch,
                   std::string(what) + " must be int32 or int64, got " + dtype_name(t),
                   "insert a Cast to int64");
}

Status require_int64(const InferContext& ctx, size_t i, const char* what) {
  const DataType t = ctx.input_type(i);
  if (t == DataType::kUndefined || t == DataType::kI64) return Status::ok();
  return ctx.error(ErrorCode::kTypeMismatch, std::string(what) + " must be int64",
                   "insert a Cast to int64");
}

Status check_element_indices(const InferContext& ctx, const Shape& data, const Shape& idx,
                             const std::string& prefix, const char* verb) {
  if (!data.rank_known || !idx.rank_known) return Status::ok();
  if (data.rank() != idx.rank())
    return ctx.error(ErrorCode::kShapeMismatch,
                     prefix + "data " + data.to_string() + " and indices " + idx.to_string() +
                         " have different ranks",
                     "indices must have the rank of data");
  KILN_ASSIGN_OR_RETURN(int64_t axis, checked_axis(ctx, ctx.node().attr_i("axis", 0), data.rank()));
  for (size_t d = 0; d < data.rank(); ++d)
    if (static_cast<int64_t>(d) != axis && data.dims[d].is_known() && idx.dims[d].is_known() &&
        idx.dims[d].value > data.dims[d].value)
      return ctx.error(ErrorCode::kShapeMismatch,
                       prefix + "indices " + idx.to_string() + " exceed data " + data.to_string() +
                           " on axis " + std::to_string(d),
                       std::string("off the ") + verb +
                           " axis, indices dims must not exceed the data's");
  return Status::ok();
}

}  // namespace kiln::ops
