// .npy / .npz reading and writing. The .npy header is a Python dict literal; the parser
// below accepts the subset NumPy writes (strings, ints, True/False/None, tuples, lists,
// dicts) with a nesting limit, so a hostile header cannot recurse without bound.
#include "io/npy.h"

#include <zip.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <new>
#include <set>
#include <string_view>

namespace kiln::io {
namespace {

static_assert(std::endian::native == std::endian::little, "npy I/O assumes a little-endian host");

constexpr char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kHeaderAlign = 64;  // numpy >= 1.14 aligns data to 64 bytes

// NumPy kind character and item size of each supported dtype.
struct DescrEntry {
  DataType dtype;
  char kind;
  size_t size;
};
constexpr DescrEntry kDescrs[] = {
    {DataType::kF32, 'f', 4}, {DataType::kF16, 'f', 2}, {DataType::kF64, 'f', 8},
    {DataType::kI8, 'i', 1},  {DataType::kU8, 'u', 1},  {DataType::kI16, 'i', 2},
    {DataType::kU16, 'u', 2}, {DataType::kI32, 'i', 4}, {DataType::kU32, 'u', 4},
    {DataType::kI64, 'i', 8}, {DataType::kU64, 'u', 8}, {DataType::kBool, 'b', 1},
};

Status invalid(const std::string& what, const std::string& msg, const std::string& hint = {}) {
  return Status(ErrorCode::kInvalidArgument, what + ": " + msg,
                hint.empty() ? "write the file with numpy.save / numpy.savez" : hint);
}

// A value of the Python literal subset used by .npy headers.
struct PyValue {
  enum class Kind { kString, kInt, kBool, kNone, kSequence, kDict };
  Kind kind = Kind::kNone;
  std::string s;
  int64_t i = 0;
  bool b = false;
  std::vector<PyValue> items;                            // tuple / list
  std::vector<std::pair<std::string, PyValue>> entries;  // dict (string keys only)
};

class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : s_(text) {}

  // Parses the whole header; an error message on failure.
  Result<PyValue> parse(const std::string& what) {
    PyValue v;
    if (!value(v, 0))
      return invalid(what, "malformed header: " + err_ + " near offset " + std::to_string(p_));
    skip_ws();
    if (p_ != s_.size()) return invalid(what, "malformed header: trailing text after the dict");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 16;

  void skip_ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r'))
      ++p_;
  }
  bool fail(const char* m) {
    err_ = m;
    return false;
  }
  bool consume(char c) {
    skip_ws();
    if (p_ < s_.size() && s_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool word(std::string_view w) {
    if (s_.substr(p_, w.size()) != w) return false;
    p_ += w.size();
    return true;
  }

  bool string(std::string& out) {
    char q = s_[p_++];
    while (p_ < s_.size() && s_[p_] != q) {
      if (s_[p_] == '\\' && p_ + 1 < s_.size()) ++p_;
      out += s_[p_++];
    }
    if (p_ >= s_.size()) return fail("unterminated string");
    ++p_;
    return true;
  }

  bool integer(int64_t& out) {
    bool neg = false;
    if (s_[p_] == '-') {
      neg = true;
      ++p_;
    }
    if (p_ >= s_.size() || s_[p_] < '0' || s_[p_] > '9') return fail("expected a number");
    uint64_t v = 0;
    while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') {
      v = v * 10 + static_cast<uint64_t>(s_[p_++] - '0');
      if (v > (uint64_t{1} << 62)) return fail("number too large");
    }
    if (p_ < s_.size() && (s_[p_] == 'L' || s_[p_] == 'l')) ++p_;  // Python 2 long suffix
    out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }

  bool sequence(PyValue& v, char close, int depth) {
    v.kind = PyValue::Kind::kSequence;
    if (consume(close)) return true;
    for (;;) {
      PyValue item;
      if (!value(item, depth + 1)) return false;
      v.items.push_back(std::move(item));
      if (consume(close)) return true;
      if (!consume(',')) return fail("expected ',' in a tuple or list");
      if (consume(close)) return true;  // trailing comma: (3,)
    }
  }

  bool dict(PyValue& v, int depth) {
    v.kind = PyValue::Kind::kDict;
    if (consume('}')) return true;
    for (;;) {
      skip_ws();
      if (p_ >= s_.size() || (s_[p_] != '\'' && s_[p_] != '"'))
        return fail("dict keys must be strings");
      std::string key;
      if (!string(key)) return false;
      if (!consume(':')) return fail("expected ':' after a dict key");
      PyValue item;
      if (!value(item, depth + 1)) return false;
      v.entries.emplace_back(std::move(key), std::move(item));
      if (consume('}')) return true;
      if (!consume(',')) return fail("expected ',' in the dict");
      if (consume('}')) return true;
    }
  }

  bool value(PyValue& v, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    skip_ws();
    if (p_ >= s_.size()) return fail("unexpected end of header");
    char c = s_[p_];
    if (c == '\'' || c == '"') {
      v.kind = PyValue::Kind::kString;
      return string(v.s);
    }
    if (c == '(') {
      ++p_;
      return sequence(v, ')', depth);
    }
    if (c == '[') {
      ++p_;
      return sequence(v, ']', depth);
    }
    if (c == '{') {
      ++p_;
      return dict(v, depth);
    }
    if (word("True")) {
      v.kind = PyValue::Kind::kBool;
      v.b = true;
      return true;
    }
    if (word("False")) {
      v.kind = PyValue::Kind::kBool;
      v.b = false;
      return true;
    }
    if (word("None")) {
      v.kind = PyValue::Kind::kNone;
      return true;
    }
    v.kind = PyValue::Kind::kInt;
    return integer(v.i);
  }

  std::string_view s_;
  size_t p_ = 0;
  std::string err_;
};

// Parsed 'descr': element type and whether the data is big-endian.
struct Descr {
  DataType dtype = DataType::kUndefined;
  bool swap = false;
};

Result<Descr> parse_descr(const std::string& d, const std::string& what) {
  auto unsupported = [&](const std::string& why) {
    return invalid(what, "NumPy dtype '" + d + "' is not supported" + why,
                   "kiln reads f32 f16 f64 i8 u8 i16 u16 i32 u32 i64 u64 and bool arrays; "
                   "convert with a.astype(np.float32)");
  };
  if (d.size() < 3 || std::string_view("<>|=").find(d[0]) == std::string_view::npos)
    return unsupported("");
  char order = d[0], kind = d[1];
  size_t size = 0;
  for (size_t i = 2; i < d.size(); ++i) {
    if (d[i] < '0' || d[i] > '9' || size > 64) return unsupported("");
    size = size * 10 + static_cast<size_t>(d[i] - '0');
  }
  if (kind == 'c') return unsupported(" (complex numbers)");
  if (kind == 'U' || kind == 'S' || kind == 'O' || kind == 'V' || kind == 'M' || kind == 'm')
    return unsupported(" (strings, objects, records and datetimes have no tensor equivalent)");
  for (const auto& e : kDescrs)
    if (e.kind == kind && e.size == size) return Descr{e.dtype, order == '>' && size > 1};
  return unsupported("");
}

Result<std::vector<int64_t>> parse_shape(const PyValue& v, const std::string& what) {
  if (v.kind != PyValue::Kind::kSequence)
    return invalid(what, "malformed header: 'shape' is not a tuple");
  std::vector<int64_t> dims;
  for (const auto& d : v.items) {
    if (d.kind != PyValue::Kind::kInt || d.i < 0)
      return invalid(what, "malformed header: 'shape' must hold non-negative integers");
    dims.push_back(d.i);
  }
  return dims;
}

void byteswap_elements(uint8_t* p, size_t n, size_t item) {
  for (size_t i = 0; i < n; ++i, p += item) std::reverse(p, p + item);
}

std::string descr_of(DataType t) {
  for (const auto& e : kDescrs)
    if (e.dtype == t)
      return std::string(1, e.size == 1 ? '|' : '<') + e.kind + std::to_string(e.size);
  return {};
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(ErrorCode::kIoError, "cannot open '" + path + "'", "check the path");
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return Status(ErrorCode::kIoError, "cannot read '" + path + "'", "check the file");
  return bytes;
}

std::string zip_error_text(int code) {
  zip_error_t ze;
  zip_error_init_with_code(&ze, code);
  std::string s = zip_error_strerror(&ze);
  zip_error_fini(&ze);
  return s;
}

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipCloser>;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Reads one archive member completely.
Result<std::vector<uint8_t>> read_member(zip_t* za, zip_uint64_t index, uint64_t size,
                                         const std::string& what) {
  std::vector<uint8_t> buf;
  try {
    buf.resize(size);
  } catch (const std::bad_alloc&) {
    return Status(ErrorCode::kOutOfMemory, what + " claims " + std::to_string(size) + " bytes", "");
  }
  zip_file_t* zf = zip_fopen_index(za, index, 0);
  if (!zf) return Status(ErrorCode::kIoError, "cannot open " + what + ": " + zip_strerror(za), "");
  uint64_t got = 0;
  while (got < size) {
    zip_int64_t r = zip_fread(zf, buf.data() + got, size - got);
    if (r <= 0) break;
    got += static_cast<uint64_t>(r);
  }
  std::string err = zip_file_strerror(zf);
  bool closed_ok = zip_fclose(zf) == 0;
  if (got != size || !closed_ok)
    return Status(ErrorCode::kIoError, "cannot read " + what + ": " + err,
                  "the archive is damaged; write it again");
  return buf;
}

}  // namespace

Result<HostTensor> decode_npy(const void* data, size_t size, const std::string& what) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (size < 10 || std::memcmp(p, kMagic, sizeof kMagic) != 0)
    return invalid(what, "not an .npy file (missing the \\x93NUMPY magic)");
  const int major = p[6], minor = p[7];
  size_t prefix, hlen;
  if (major == 1) {
    prefix = 10;
    hlen = p[8] | (size_t{p[9]} << 8);
  } else if (major == 2 || major == 3) {
    if (size < 12) return invalid(what, "file is truncated inside the header");
    prefix = 12;
    hlen = p[8] | (size_t{p[9]} << 8) | (size_t{p[10]} << 16) | (size_t{p[11]} << 24);
  } else {
    return invalid(what, "unsupported .npy format version " + std::to_string(major) + "." +
                             std::to_string(minor));
  }
  if (hlen > size - prefix) return invalid(what, "file is truncated inside the header");
  HeaderParser parser(std::string_view(reinterpret_cast<const char*>(p + prefix), hlen));
  KILN_ASSIGN_OR_RETURN(PyValue header, parser.parse(what));
  if (header.kind != PyValue::Kind::kDict) return invalid(what, "malformed header: not a dict");
  const PyValue *descr = nullptr, *fortran = nullptr, *shape = nullptr;
  for (const auto& [k, v] : header.entries) {
    if (k == "descr")
      descr = &v;
    else if (k == "fortran_order")
      fortran = &v;
    else if (k == "shape")
      shape = &v;
  }
  if (!descr || !fortran || !shape)
    return invalid(what, "malformed header: needs 'descr', 'fortran_order' and 'shape'");
  if (descr->kind != PyValue::Kind::kString)
    return invalid(what, "structured (record) dtypes are not supported",
                   "save a plain numeric array");
  if (fortran->kind != PyValue::Kind::kBool)
    return invalid(what, "malformed header: 'fortran_order' is not a bool");
  if (fortran->b)
    return invalid(what, "array is stored in Fortran (column-major) order; kiln reads C order only",
                   "save a C-ordered copy: np.save(path, np.ascontiguousarray(a))");
  KILN_ASSIGN_OR_RETURN(Descr d, parse_descr(descr->s, what));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> dims, parse_shape(*shape, what));
  const size_t item = dtype_size(d.dtype);
  uint64_t numel = 1;
  for (auto v : dims) {
    if (v > 0 && numel > (uint64_t{1} << 56) / static_cast<uint64_t>(v))
      return invalid(what, "shape " + dims_to_string(dims) + " is too large");
    numel *= static_cast<uint64_t>(v);
  }
  const uint64_t need = numel * item, have = size - prefix - hlen;
  if (have != need)
    return invalid(
        what,
        "data section has " + std::to_string(have) + " bytes, but shape " + dims_to_string(dims) +
            " of " + descr->s + " needs " + std::to_string(need),
        have < need ? "the file is truncated; write it again" : "write the file with numpy.save");
  HostTensor t(d.dtype, dims);
  if (need) std::memcpy(t.raw(), p + prefix + hlen, need);
  if (d.swap) byteswap_elements(static_cast<uint8_t*>(t.raw()), numel, item);
  if (d.dtype == DataType::kBool)  // any non-zero byte is True, as in NumPy
    for (uint64_t i = 0; i < numel; ++i) t.data<uint8_t>()[i] = t.data<uint8_t>()[i] != 0;
  return t;
}

Result<std::vector<uint8_t>> encode_npy(const HostTensor& t) {
  std::string descr = descr_of(t.dtype());
  if (descr.empty())
    return Status(
        ErrorCode::kInvalidArgument,
        std::string("tensor of dtype ") + dtype_name(t.dtype()) + " has no NumPy equivalent",
        "cast it to f32 before writing (HostTensor::cast)");
  std::string shape = "(";
  for (size_t i = 0; i < t.rank(); ++i) shape += (i ? ", " : "") + std::to_string(t.dims()[i]);
  shape += t.rank() == 1 ? ",)" : ")";
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Header (with its '\n') padded so the data starts 64-byte aligned; format 2.0 only when
  // the padded header length does not fit version 1.0's u16.
  auto padded_end = [&](size_t prefix) {
    return (prefix + header.size() + 1 + kHeaderAlign - 1) / kHeaderAlign * kHeaderAlign;
  };
  const size_t prefix = padded_end(10) - 10 > 0xffff ? 12 : 10;
  const size_t total = padded_end(prefix);
  header.append(total - prefix - header.size() - 1, ' ');
  header += '\n';
  std::vector<uint8_t> out(total + t.bytes());
  std::memcpy(out.data(), kMagic, sizeof kMagic);
  out[6] = prefix == 10 ? 1 : 2;
  out[7] = 0;
  const size_t hlen = header.size();
  for (size_t i = 0; i < prefix - 8; ++i) out[8 + i] = static_cast<uint8_t>(hlen >> (8 * i));
  std::memcpy(out.data() + prefix, header.data(), hlen);
  if (t.bytes()) std::memcpy(out.data() + total, t.raw(), t.bytes());
  return out;
}

Result<HostTensor> read_npy(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  return decode_npy(bytes.data(), bytes.size(), "'" + path + "'");
}

Status write_npy(const std::string& path, const HostTensor& t) {
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, encode_npy(t));
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (f)
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f)
    return Status(ErrorCode::kIoError, "cannot write '" + path + "'",
                  "check the directory and permissions");
  return Status::ok();
}

Result<std::vector<NamedTensor>> read_npz(const std::string& path) {
  int err = 0;
  ZipPtr za(zip_open(path.c_str(), ZIP_RDONLY, &err));
  if (!za) {
    if (err == ZIP_ER_NOENT || err == ZIP_ER_OPEN || err == ZIP_ER_READ)
      return Status(ErrorCode::kIoError, "cannot open '" + path + "': " + zip_error_text(err),
                    "check the path");
    return Status(ErrorCode::kIoError,
                  "'" + path + "' is not an .npz (zip) archive: " + zip_error_text(err),
                  "write it with numpy.savez");
  }
  std::vector<NamedTensor> out;
  std::set<std::string> seen;
  const zip_int64_t n = zip_get_num_entries(za.get(), 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    if (zip_stat_index(za.get(), static_cast<zip_uint64_t>(i), 0, &st) != 0 ||
        !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE))
      return Status(ErrorCode::kIoError,
                    "cannot read member " + std::to_string(i) + " of '" + path + "'",
                    "the archive is damaged");
    std::string name = st.name;
    if (ends_with(name, "/")) continue;  // directory entry
    std::string what = "member '" + name + "' of '" + path + "'";
    if (!ends_with(name, ".npy"))
      return invalid(what, "is not an .npy array",
                     "an .npz holds only <name>.npy members (numpy.savez)");
    name.resize(name.size() - 4);
    if (!seen.insert(name).second)
      return invalid("'" + path + "'", "holds array '" + name + "' twice");
    KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes,
                          read_member(za.get(), static_cast<zip_uint64_t>(i), st.size, what));
    KILN_ASSIGN_OR_RETURN(HostTensor t, decode_npy(bytes.data(), bytes.size(), what));
    out.push_back({std::move(name), std::move(t)});
  }
  return out;
}

Status write_npz(const std::string& path, const std::vector<NamedTensor>& tensors, bool compress) {
  std::set<std::string> names;
  for (const auto& nt : tensors) {
    if (nt.name.empty())
      return Status(ErrorCode::kInvalidArgument, "npz member names must not be empty", "");
    if (!names.insert(nt.name).second)
      return Status(ErrorCode::kInvalidArgument, "npz member '" + nt.name + "' given twice", "");
  }
  // Encode everything first: libzip reads the buffers only in zip_close.
  std::vector<std::vector<uint8_t>> blobs;
  blobs.reserve(tensors.size());
  for (const auto& nt : tensors) {
    auto r = encode_npy(nt.tensor);
    if (!r.is_ok()) return r.status().with_context("npz member '" + nt.name + "'");
    blobs.push_back(std::move(r).value());
  }
  int err = 0;
  ZipPtr za(zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err));
  if (!za)
    return Status(ErrorCode::kIoError, "cannot create '" + path + "': " + zip_error_text(err),
                  "check the directory and permissions");
  for (size_t i = 0; i < tensors.size(); ++i) {
    zip_source_t* src = zip_source_buffer(za.get(), blobs[i].data(), blobs[i].size(), 0);
    zip_int64_t idx =
        src ? zip_file_add(za.get(), (tensors[i].name + ".npy").c_str(), src, ZIP_FL_ENC_UTF_8)
            : -1;
    if (idx < 0) {
      if (src) zip_source_free(src);
      return Status(
          ErrorCode::kIoError,
          "cannot add '" + tensors[i].name + "' to '" + path + "': " + zip_strerror(za.get()), "");
    }
    zip_set_file_compression(za.get(), static_cast<zip_uint64_t>(idx),
                             compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  if (zip_close(za.get()) != 0)
    return Status(ErrorCode::kIoError, "cannot write '" + path + "': " + zip_strerror(za.get()),
                  "check the directory and free space");
  za.release();  // zip_close freed it
  return Status::ok();
}

}  // namespace kiln::io
