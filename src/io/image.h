// Image files → NCHW f32 tensors for `kiln run --image` (decoding by stb_image, resizing by
// stb_image_resize).
//
// Preprocessing, in order:
//   1. decode to 8-bit RGB (channels = 3) or luminance (channels = 1); PNG, JPEG, BMP, TGA,
//      GIF (first frame), PSD, HDR and PNM are read; alpha is dropped;
//   2. resize to height x width when given (0 = keep), without keeping the aspect ratio
//      (no crop), with stb_image_resize's defaults: Mitchell filter when shrinking,
//      Catmull-Rom when enlarging, clamped edges, linear colour space;
//   3. reorder RGB to BGR when `bgr`;
//   4. value = (pixel * scale - mean[c]) / std[c] per channel c (in output channel order);
//   5. layout [1, C, H, W] (NCHW), dtype f32.
// Defaults (scale 1/255, mean 0, std 1) give RGB values in [0, 1]; torchvision ImageNet
// models want mean 0.485,0.456,0.406 and std 0.229,0.224,0.225.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "kiln/status.h"

namespace kiln::io {

/// How load_image turns pixels into a tensor (see the file comment for the order).
struct ImagePreprocess {
  int64_t height = 0;  ///< resize target; 0 = keep the image's height
  int64_t width = 0;   ///< resize target; 0 = keep the image's width
  int channels = 3;    ///< 3 = RGB (or BGR), 1 = luminance
  bool bgr = false;    ///< channel order B, G, R instead of R, G, B
  float scale = 1.0f / 255.0f;
  std::array<float, 3> mean{0.0f, 0.0f, 0.0f};  ///< per output channel (index 0 for 1 channel)
  std::array<float, 3> std{1.0f, 1.0f, 1.0f};   ///< per output channel; must be non-zero
};

/// Loads and preprocesses an image file into an f32 tensor [1, C, H, W].
/// Errors: IoError (cannot open), InvalidArgument (not a decodable image, with stb_image's
/// reason; bad preprocessing parameters: channels not 1 or 3, negative size, zero std).
Result<HostTensor> load_image(const std::string& path, const ImagePreprocess& pre);

}  // namespace kiln::io
