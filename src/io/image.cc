// The one translation unit that compiles stb_image and stb_image_resize (their symbols are
// exported from kiln_objs for any other user; do not define the IMPLEMENTATION macros again).
#include "io/image.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image_resize.h>
#pragma GCC diagnostic pop

namespace kiln::io {
namespace {

// Bounds the decoded and resized pixel count so a forged header or a typo in the size cannot
// ask for gigabytes (2^28 pixels = a 16384 x 16384 image).
constexpr int64_t kMaxPixels = int64_t{1} << 28;

Status bad_param(const std::string& msg) {
  return Status(ErrorCode::kInvalidArgument, "image preprocessing: " + msg,
                "see `kiln run --help`");
}

}  // namespace

Result<HostTensor> load_image(const std::string& path, const ImagePreprocess& pre) {
  if (pre.channels != 1 && pre.channels != 3)
    return bad_param("channels must be 1 or 3, got " + std::to_string(pre.channels));
  if (pre.height < 0 || pre.width < 0) return bad_param("resize size must be positive");
  if (pre.height * pre.width > kMaxPixels) return bad_param("resize size is too large");
  if (!std::isfinite(pre.scale)) return bad_param("scale must be finite");
  for (int c = 0; c < pre.channels; ++c)
    if (pre.std[c] == 0.0f || !std::isfinite(pre.std[c]) || !std::isfinite(pre.mean[c]))
      return bad_param("std must be non-zero and mean and std finite");

  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return Status(ErrorCode::kIoError, "cannot open image '" + path + "'", "check the path");
  int w = 0, h = 0, file_channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> px(
      stbi_load_from_file(f.get(), &w, &h, &file_channels, pre.channels), &stbi_image_free);
  if (!px)
    return Status(ErrorCode::kInvalidArgument,
                  "'" + path + "' is not a readable image (" + stbi_failure_reason() + ")",
                  "kiln reads PNG, JPEG, BMP, TGA, GIF, PSD, HDR and PNM files");
  if (int64_t{w} * h > kMaxPixels)
    return Status(ErrorCode::kInvalidArgument, "image '" + path + "' is too large",
                  "resize it first");

  const int C = pre.channels;
  const int oh = pre.height ? static_cast<int>(pre.height) : h;
  const int ow = pre.width ? static_cast<int>(pre.width) : w;
  const stbi_uc* src = px.get();
  std::vector<stbi_uc> resized;
  if (oh != h || ow != w) {
    resized.resize(static_cast<size_t>(oh) * ow * C);
    if (!stbir_resize_uint8(px.get(), w, h, 0, resized.data(), ow, oh, 0, C))
      return Status(ErrorCode::kOutOfMemory, "cannot resize image '" + path + "'", "");
    src = resized.data();
  }

  HostTensor t(DataType::kF32, {1, C, oh, ow});
  float* dst = t.data<float>();
  const int64_t hw = int64_t{oh} * ow;
  for (int c = 0; c < C; ++c) {
    const int from = (pre.bgr && C == 3) ? 2 - c : c;
    const float mean = pre.mean[c], inv_std = 1.0f / pre.std[c];
    for (int64_t i = 0; i < hw; ++i)
      dst[c * hw + i] = (src[i * C + from] * pre.scale - mean) * inv_std;
  }
  return t;
}

}  // namespace kiln::io
