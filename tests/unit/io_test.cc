// src/io: .npy encode/decode (every dtype, byte order, header forms, rejection of Fortran
// order, bad dtypes, truncation, and seeded random corruption), .npz round trips and
// errors, and image loading with its documented preprocessing.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zip.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "io/image.h"
#include "io/npy.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace kiln::io {
namespace {

namespace fs = std::filesystem;

class IoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kiln_io_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// Builds .npy bytes with a given header dict (format 1.0, padded like numpy).
std::vector<uint8_t> npy_bytes(const std::string& dict, const std::vector<uint8_t>& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  const std::string magic("\x93NUMPY\x01\x00", 8);
  const std::string bytes = magic + static_cast<char>(header.size() & 0xff) +
                            static_cast<char>(header.size() >> 8) + header;
  std::vector<uint8_t> out(bytes.size() + data.size());
  std::memcpy(out.data(), bytes.data(), bytes.size());
  if (!data.empty()) std::memcpy(out.data() + bytes.size(), data.data(), data.size());
  return out;
}

HostTensor sample(DataType dt, std::vector<int64_t> dims) {
  HostTensor t(dt, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i)
    t.set_f64(i, dt == DataType::kBool ? (i % 3 == 0) : (i * 7 % 11) - 3);
  if (dtype_is_int(dt) && !dtype_is_signed(dt))
    for (int64_t i = 0; i < t.numel(); ++i) t.set_i64(i, i * 7 % 11);
  return t;
}

TEST_F(IoTest, RoundTripsEveryDtype) {
  for (DataType dt : {DataType::kF32, DataType::kF16, DataType::kF64, DataType::kI8, DataType::kU8,
                      DataType::kI16, DataType::kU16, DataType::kI32, DataType::kU32,
                      DataType::kI64, DataType::kU64, DataType::kBool}) {
    for (const auto& dims : std::vector<std::vector<int64_t>>{{}, {5}, {2, 3, 4}, {0, 3}}) {
      HostTensor t = sample(dt, dims);
      auto bytes = encode_npy(t);
      ASSERT_TRUE(bytes.is_ok()) << dtype_name(dt);
      EXPECT_EQ((bytes->size() - t.bytes()) % 64, 0u) << "data must start 64-byte aligned";
      auto back = decode_npy(bytes->data(), bytes->size());
      ASSERT_TRUE(back.is_ok()) << back.status().to_string();
      EXPECT_TRUE(back->identical(t)) << dtype_name(dt) << " " << dims_to_string(dims);
    }
  }
}

TEST_F(IoTest, WritesNumpysHeader) {
  auto bytes = encode_npy(sample(DataType::kF32, {2, 3}));
  ASSERT_TRUE(bytes.is_ok());
  std::string header(bytes->begin() + 10, bytes->begin() + 10 + ((*bytes)[8] | ((*bytes)[9] << 8)));
  EXPECT_EQ(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0), 0u)
      << header;
  EXPECT_EQ(header.back(), '\n');
  auto one = encode_npy(sample(DataType::kU8, {4}));
  std::string h1(one->begin() + 10, one->begin() + 74);
  EXPECT_NE(h1.find("'descr': '|u1'"), std::string::npos);
  EXPECT_NE(h1.find("'shape': (4,)"), std::string::npos);
}

TEST_F(IoTest, ReadsOtherHeaderForms) {
  // Big-endian int16, double quotes, keys in another order, Python 2 long suffix.
  auto be = npy_bytes("{\"shape\": (2L,), 'fortran_order': False, 'descr': '>i2'}",
                      {0x01, 0x02, 0xff, 0xfe});
  auto t = decode_npy(be.data(), be.size());
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->dims(), std::vector<int64_t>{2});
  EXPECT_EQ(t->data<int16_t>()[0], 0x0102);
  EXPECT_EQ(t->data<int16_t>()[1], -2);
  // Format 2.0: u32 header length.
  auto v1 = npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", {7, 0, 0, 0});
  std::vector<uint8_t> v2(v1.begin(), v1.begin() + 8);
  v2[6] = 2;
  const uint32_t hlen = v1[8] | (v1[9] << 8);
  for (int i = 0; i < 4; ++i) v2.push_back(static_cast<uint8_t>(hlen >> (8 * i)));
  v2.insert(v2.end(), v1.begin() + 10, v1.end());
  auto t2 = decode_npy(v2.data(), v2.size());
  ASSERT_TRUE(t2.is_ok()) << t2.status().to_string();
  EXPECT_EQ(t2->data<int32_t>()[0], 7);
}

TEST_F(IoTest, RejectsWhatItCannotRead) {
  auto expect_error = [](const std::vector<uint8_t>& b, const std::string& needle) {
    auto r = decode_npy(b.data(), b.size(), "test.npy");
    ASSERT_FALSE(r.is_ok()) << needle;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.status().to_string().find(needle), std::string::npos) << r.status().to_string();
  };
  const std::vector<uint8_t> four(16, 0);
  const std::pair<const char*, const char*> bad_headers[] = {
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", "Fortran"},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "complex"},
      {"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", "not supported"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", "structured"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", "truncated"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "needs 8"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "non-negative"},
      {"{'descr': '<f4', 'fortran_order': False}", "needs 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,", "malformed"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }",
       "too large"},
  };
  for (const auto& [dict, needle] : bad_headers) expect_error(npy_bytes(dict, four), needle);
  expect_error(npy_bytes(std::string(40, '(') + std::string(40, ')'), four), "nesting");
  expect_error({'n', 'o', 'p', 'e', 0, 0, 0, 0, 0, 0, 0, 0}, "magic");
  EXPECT_EQ(encode_npy(HostTensor(DataType::kBF16, {2})).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(IoTest, CorruptBytesNeverCrash) {
  auto good = encode_npy(sample(DataType::kF32, {3, 4}));
  ASSERT_TRUE(good.is_ok());
  std::mt19937 rng(42);
  int accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> b = *good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % 128] = static_cast<uint8_t>(rng());  // header region
    if (iter % 3 == 0) b.resize(rng() % b.size());
    auto r = decode_npy(b.data(), b.size());
    accepted += r.is_ok();
    if (r.is_ok()) EXPECT_LE(r->bytes(), b.size());  // data can only come from the input
  }
  EXPECT_LT(accepted, 3000);
}

TEST_F(IoTest, NpyFiles) {
  HostTensor t = sample(DataType::kI64, {3, 2});
  ASSERT_TRUE(write_npy(path("a.npy"), t).is_ok());
  auto back = read_npy(path("a.npy"));
  ASSERT_TRUE(back.is_ok());
  EXPECT_TRUE(back->identical(t));
  EXPECT_EQ(read_npy(path("missing.npy")).status().code(), ErrorCode::kIoError);
  EXPECT_EQ(write_npy(path("no/such/dir/a.npy"), t).code(), ErrorCode::kIoError);
}

TEST_F(IoTest, NpzRoundTrip) {
  std::vector<NamedTensor> in = {{"x", sample(DataType::kF32, {2, 3})},
                                 {"mask", sample(DataType::kBool, {4})},
                                 {"ids:0", sample(DataType::kI32, {})}};
  for (bool compress : {false, true}) {
    ASSERT_TRUE(write_npz(path("a.npz"), in, compress).is_ok());
    auto out = read_npz(path("a.npz"));
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
    ASSERT_EQ(out->size(), in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      EXPECT_EQ((*out)[i].name, in[i].name);
      EXPECT_TRUE((*out)[i].tensor.identical(in[i].tensor)) << in[i].name;
    }
  }
  EXPECT_EQ(write_npz(path("b.npz"), {{"x", in[0].tensor}, {"x", in[1].tensor}}).code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(IoTest, NpzErrors) {
  EXPECT_EQ(read_npz(path("missing.npz")).status().code(), ErrorCode::kIoError);
  std::ofstream(path("junk.npz")) << "PK but not a zip archive at all";
  EXPECT_EQ(read_npz(path("junk.npz")).status().code(), ErrorCode::kIoError);
  // A zip with a member that is not an .npy array, and one whose .npy is damaged.
  for (auto [member, data] : {std::pair<std::string, std::string>{"notes.txt", "hello"},
                              std::pair<std::string, std::string>{"x.npy", "\x93NUMPY garbage"}}) {
    int err = 0;
    zip_t* za = zip_open(path("odd.npz").c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
    ASSERT_NE(za, nullptr);
    zip_source_t* src = zip_source_buffer(za, data.data(), data.size(), 0);
    ASSERT_GE(zip_file_add(za, member.c_str(), src, 0), 0);
    ASSERT_EQ(zip_close(za), 0);
    auto r = read_npz(path("odd.npz"));
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.status().to_string().find(member), std::string::npos) << r.status().to_string();
  }
}

TEST_F(IoTest, ImagePreprocessing) {
  // 2x2 RGB: red, green / blue, white.
  const uint8_t px[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
  ASSERT_NE(stbi_write_png(path("a.png").c_str(), 2, 2, 3, px, 6), 0);
  auto t = load_image(path("a.png"), {});
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->dims(), (std::vector<int64_t>{1, 3, 2, 2}));
  const float* v = t->data<float>();
  // NCHW: channel R = {1, 0, 0, 1}, G = {0, 1, 0, 1}, B = {0, 0, 1, 1}.
  const float want[12] = {1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1};
  for (int i = 0; i < 12; ++i) EXPECT_FLOAT_EQ(v[i], want[i]) << i;

  ImagePreprocess p;
  p.bgr = true;
  p.scale = 1.0f;
  p.mean = {10, 20, 30};
  p.std = {2, 4, 5};
  auto b = load_image(path("a.png"), p);
  ASSERT_TRUE(b.is_ok());
  // Channel 0 is now blue: (pixel - 10) / 2.
  EXPECT_FLOAT_EQ(b->data<float>()[0], (0 - 10) / 2.0f);
  EXPECT_FLOAT_EQ(b->data<float>()[2], (255 - 10) / 2.0f);
  EXPECT_FLOAT_EQ(b->data<float>()[4 + 1], (255 - 20) / 4.0f);  // green at (0, 1)

  ImagePreprocess gray;
  gray.channels = 1;
  gray.height = 4;
  gray.width = 3;
  auto g = load_image(path("a.png"), gray);
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g->dims(), (std::vector<int64_t>{1, 1, 4, 3}));
}

TEST_F(IoTest, ImageErrors) {
  EXPECT_EQ(load_image(path("missing.png"), {}).status().code(), ErrorCode::kIoError);
  std::ofstream(path("junk.png")) << "not an image";
  auto r = load_image(path("junk.png"), {});
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().to_string().find("not a readable image"), std::string::npos);
  const uint8_t px[3] = {1, 2, 3};
  ASSERT_NE(stbi_write_png(path("a.png").c_str(), 1, 1, 3, px, 3), 0);
  ImagePreprocess p;
  p.channels = 4;
  EXPECT_EQ(load_image(path("a.png"), p).status().code(), ErrorCode::kInvalidArgument);
  p = {};
  p.std = {1, 0, 1};
  EXPECT_EQ(load_image(path("a.png"), p).status().code(), ErrorCode::kInvalidArgument);
  p = {};
  p.height = -1;
  EXPECT_EQ(load_image(path("a.png"), p).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace kiln::io
