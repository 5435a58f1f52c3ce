// text_detect: finds text regions in a photo or scan with a PP-OCR detector (DB, Liao et al.,
// "Real-time Scene Text Detection with Differentiable Binarization", AAAI 2020) run through
// the kiln C++ API. Prints one box per text region in image coordinates, writes an overlay
// PNG, and reports how long each stage took. See docs/text_detect.md.
//
//   text_detect ch_PP-OCRv4_det_infer.onnx page.png -o out/page_det.png
//   text_detect det.kiln page.png            # a plan built with kiln build --shapes x:1x3xHxW
//   text_detect --print-shape page.png       # the input shape to build that plan for
//
// Pre- and post-processing follow PaddleOCR's inference pipeline (tools/infer/predict_det.py:
// DetResizeForTest, NormalizeImage, DBPostProcess) and its port in rapidocr_onnxruntime
// (ch_ppocr_det/utils.py), so the boxes can be checked against theirs on the same input.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "kiln/kiln.h"

// Static so the example never clashes with a copy of stb compiled into the library.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// An 8-bit RGB image, rows top to bottom, channels interleaved.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  ///< width * height * 3
};

kiln::Result<Image> load_image(const std::string& path) {
  int w = 0, h = 0, c = 0;
  // Grey and RGBA files become RGB here, like rapidocr's LoadImage (GRAY2BGR / RGBA2BGR).
  uint8_t* data = stbi_load(path.c_str(), &w, &h, &c, 3);
  if (!data)
    return kiln::Status(kiln::ErrorCode::kIoError,
                        "cannot read image '" + path + "': " + stbi_failure_reason(),
                        "give a PNG, JPEG, BMP, TGA or PNM file");
  Image img{w, h, std::vector<uint8_t>(data, data + size_t(w) * h * 3)};
  stbi_image_free(data);
  return img;
}

/// One output sample of a linear resize along one axis: source indices and their weights.
struct Tap {
  int i0, i1;
  float a;  ///< weight of i1 (1 - a for i0)
};

/// OpenCV's INTER_LINEAR sampling (what PaddleOCR and rapidocr call): pixel centres aligned,
/// edge samples clamped, no antialiasing. stb's resampler filters differently and would
/// change the detector's input.
std::vector<Tap> linear_taps(int src, int dst) {
  std::vector<Tap> t(dst);
  const double scale = double(src) / dst;
  for (int i = 0; i < dst; ++i) {
    float f = float((i + 0.5) * scale - 0.5);
    int i0 = int(std::floor(f));
    f -= float(i0);
    if (i0 < 0) i0 = 0, f = 0.f;
    if (i0 >= src - 1) i0 = src - 1, f = 0.f;
    t[i] = {i0, std::min(i0 + 1, src - 1), f};
  }
  return t;
}

/// Linear resize of an 8-bit interleaved image in OpenCV's fixed-point arithmetic (11-bit
/// weights; the vertical pass rounds as its SIMD kernel does), so the detector sees the
/// same bytes as under PaddleOCR / rapidocr: plain float rounding differs by one level in
/// about 10% of the pixels.
std::vector<uint8_t> resize_linear_u8(const uint8_t* src, int sw, int sh, int channels, int dw,
                                      int dh) {
  const auto tx = linear_taps(sw, dw), ty = linear_taps(sh, dh);
  auto fixed = [](float w) { return int(std::lround(w * 2048.f)); };
  std::vector<int> wx0(dw), wx1(dw);
  for (int x = 0; x < dw; ++x) wx0[x] = fixed(1.f - tx[x].a), wx1[x] = fixed(tx[x].a);
  // Horizontal pass per source row (cached: consecutive output rows share source rows).
  std::vector<int> rows(size_t(sh) * dw * channels);
  std::vector<char> done(sh, 0);
  auto hrow = [&](int y) -> const int* {
    int* r = &rows[size_t(y) * dw * channels];
    if (done[y]) return r;
    const uint8_t* s = src + size_t(y) * sw * channels;
    for (int x = 0; x < dw; ++x)
      for (int c = 0; c < channels; ++c)
        r[x * channels + c] =
            s[tx[x].i0 * channels + c] * wx0[x] + s[tx[x].i1 * channels + c] * wx1[x];
    done[y] = 1;
    return r;
  };
  std::vector<uint8_t> dst(size_t(dw) * dh * channels);
  for (int y = 0; y < dh; ++y) {
    const int* r0 = hrow(ty[y].i0);
    const int* r1 = hrow(ty[y].i1);
    const int b0 = fixed(1.f - ty[y].a), b1 = fixed(ty[y].a);
    uint8_t* d = &dst[size_t(y) * dw * channels];
    for (int i = 0; i < dw * channels; ++i) {
      const int v = ((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16);
      d[i] = uint8_t(std::clamp((v + 2) >> 2, 0, 255));
    }
  }
  return dst;
}

/// Linear resize of a single-channel float map (the probability map, for the overlay).
std::vector<float> resize_linear_f32(const float* src, int sw, int sh, int dw, int dh) {
  const auto tx = linear_taps(sw, dw), ty = linear_taps(sh, dh);
  std::vector<float> dst(size_t(dw) * dh);
  for (int y = 0; y < dh; ++y) {
    const float* r0 = src + size_t(ty[y].i0) * sw;
    const float* r1 = src + size_t(ty[y].i1) * sw;
    for (int x = 0; x < dw; ++x) {
      const Tap& t = tx[x];
      const float top = r0[t.i0] + t.a * (r0[t.i1] - r0[t.i0]);
      const float bot = r1[t.i0] + t.a * (r1[t.i1] - r1[t.i0]);
      dst[size_t(y) * dw + x] = top + ty[y].a * (bot - top);
    }
  }
  return dst;
}

/// PaddleOCR's DetResizeForTest (limit_type 'max' or 'min'): scale so the longest side is at
/// most (or the shortest at least) `limit_side_len`, then round each side to a multiple of
/// 32 (the detector downsamples by 32), at least 32. Returns {height, width}.
std::pair<int, int> det_input_size(int h, int w, int limit_side_len,
                                   const std::string& limit_type) {
  double ratio = 1.0;
  if (limit_type == "max" && std::max(h, w) > limit_side_len)
    ratio = double(limit_side_len) / std::max(h, w);
  else if (limit_type == "min" && std::min(h, w) < limit_side_len)
    ratio = double(limit_side_len) / std::min(h, w);
  // Python's round() (ties to even) as in the reference; nearbyint uses the default mode.
  auto to32 = [](int s) { return std::max(int(std::nearbyint(s / 32.0)) * 32, 32); };
  return {to32(int(h * ratio)), to32(int(w * ratio))};
}

/// Resizes to the detector's input and normalises to a 1x3xHxW f32 tensor:
/// x[c] = (bgr[c] / 255 - mean[c]) / std[c]. Channel 0 is blue: PaddleOCR reads images with
/// OpenCV (BGR) and its NormalizeImage applies mean/std in that channel order.
std::vector<float> preprocess(const Image& img, int in_h, int in_w,
                              const std::array<float, 3>& mean, const std::array<float, 3>& stdev) {
  const auto resized = resize_linear_u8(img.rgb.data(), img.width, img.height, 3, in_w, in_h);
  const size_t plane = size_t(in_h) * in_w;
  std::vector<float> x(3 * plane);
  for (int c = 0; c < 3; ++c) {
    const float scale = 1.f / (255.f * stdev[c]), shift = mean[c] / stdev[c];
    const int rgb_c = 2 - c;
    for (size_t i = 0; i < plane; ++i) x[c * plane + i] = resized[i * 3 + rgb_c] * scale - shift;
  }
  return x;
}

// ---- DB post-processing -----------------------------------------------------------------

struct Pt {
  double x, y;
};

/// One detected text region: a rotated rectangle (corners clockwise from top-left) in
/// original image pixels, its axis-aligned bounds and the mean probability inside it.
struct TextBox {
  std::array<Pt, 4> quad;
  int x0, y0, x1, y1;
  float score;
};

/// Options of DBPostProcess. Defaults: rapidocr's config.yaml (PaddleOCR's tools/infer
/// defaults differ: box_thresh 0.6, unclip_ratio 1.5, no dilation).
struct DbOptions {
  float thresh = 0.3f;        ///< probability above which a pixel is text
  float box_thresh = 0.5f;    ///< minimum mean probability inside a box
  float unclip_ratio = 1.6f;  ///< how far a box grows back (DB shrinks text regions in training)
  int min_size = 3;           ///< minimum short side of a box, in map pixels
  int max_candidates = 1000;
  bool dilate = true;  ///< 2x2 dilation of the text mask before grouping
};

double cross(const Pt& o, const Pt& a, const Pt& b) {
  return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

/// Convex hull (Andrew's monotone chain), counter-clockwise, collinear points dropped.
std::vector<Pt> convex_hull(std::vector<Pt> p) {
  std::sort(p.begin(), p.end(),
            [](const Pt& a, const Pt& b) { return a.x < b.x || (a.x == b.x && a.y < b.y); });
  if (p.size() < 3) return p;
  std::vector<Pt> h(2 * p.size());
  size_t k = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    while (k >= 2 && cross(h[k - 2], h[k - 1], p[i]) <= 0) --k;
    h[k++] = p[i];
  }
  for (size_t i = p.size() - 1, t = k + 1; i-- > 0;) {
    while (k >= t && cross(h[k - 2], h[k - 1], p[i]) <= 0) --k;
    h[k++] = p[i];
  }
  h.resize(k - 1);
  return h;
}

/// Minimum-area enclosing rectangle (cv2.minAreaRect): one side of the optimum lies on a
/// hull edge (Freeman & Shapira 1975), so try each edge direction.
struct RotatedRect {
  Pt center;
  Pt u, v;  ///< unit axes
  double half_u = 0, half_v = 0;
  double short_side() const { return 2 * std::min(half_u, half_v); }
  std::array<Pt, 4> corners() const {
    std::array<Pt, 4> c;
    const double su[4] = {-1, 1, 1, -1}, sv[4] = {-1, -1, 1, 1};
    for (int i = 0; i < 4; ++i)
      c[i] = {center.x + su[i] * half_u * u.x + sv[i] * half_v * v.x,
              center.y + su[i] * half_u * u.y + sv[i] * half_v * v.y};
    return c;
  }
};

RotatedRect min_area_rect(const std::vector<Pt>& hull) {
  RotatedRect best;
  double best_area = -1;
  const size_t n = hull.size();
  for (size_t i = 0; i < n && n >= 3; ++i) {
    const Pt& a = hull[i];
    const Pt& b = hull[(i + 1) % n];
    const double len = std::hypot(b.x - a.x, b.y - a.y);
    if (len == 0) continue;
    const Pt u{(b.x - a.x) / len, (b.y - a.y) / len}, v{-u.y, u.x};
    double umin = 1e300, umax = -1e300, vmin = 1e300, vmax = -1e300;
    for (const Pt& p : hull) {
      const double pu = p.x * u.x + p.y * u.y, pv = p.x * v.x + p.y * v.y;
      umin = std::min(umin, pu), umax = std::max(umax, pu);
      vmin = std::min(vmin, pv), vmax = std::max(vmax, pv);
    }
    const double area = (umax - umin) * (vmax - vmin);
    if (best_area < 0 || area < best_area) {
      best_area = area;
      const double cu = (umin + umax) / 2, cv = (vmin + vmax) / 2;
      best = {
          {cu * u.x + cv * v.x, cu * u.y + cv * v.y}, u, v, (umax - umin) / 2, (vmax - vmin) / 2};
    }
  }
  return best;  // fewer than 3 hull points: zero size, rejected by the min_size check
}

/// Corners in the order DBPostProcess.get_mini_boxes gives: the two leftmost points top then
/// bottom become corners 0 and 3, the two rightmost top then bottom corners 1 and 2.
std::array<Pt, 4> order_corners(std::array<Pt, 4> c) {
  std::stable_sort(c.begin(), c.end(), [](const Pt& a, const Pt& b) { return a.x < b.x; });
  const bool l = c[1].y > c[0].y, r = c[3].y > c[2].y;
  return {l ? c[0] : c[1], r ? c[2] : c[3], r ? c[3] : c[2], l ? c[1] : c[0]};
}

/// box_score_fast: mean probability over the pixels of the box polygon within the box's
/// bounding rectangle. The polygon is rasterised like cv2.fillPoly: vertices truncated to
/// integers, the interior plus every pixel of the 8-connected (Bresenham) line along each
/// edge; without the edge lines the region is about one pixel row smaller and the mean of a
/// thin text line moves by 0.05-0.1.
float box_score(const float* prob, int mh, int mw, const std::array<Pt, 4>& q) {
  double qx0 = 1e300, qx1 = -1e300, qy0 = 1e300, qy1 = -1e300;
  for (const Pt& p : q)
    qx0 = std::min(qx0, p.x), qx1 = std::max(qx1, p.x), qy0 = std::min(qy0, p.y),
    qy1 = std::max(qy1, p.y);
  const int x0 = std::clamp(int(std::floor(qx0)), 0, mw - 1),
            x1 = std::clamp(int(std::ceil(qx1)), 0, mw - 1);
  const int y0 = std::clamp(int(std::floor(qy0)), 0, mh - 1),
            y1 = std::clamp(int(std::ceil(qy1)), 0, mh - 1);
  const int bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  // Vertices relative to (x0, y0), truncated like numpy's astype(int32).
  std::array<std::array<int, 2>, 4> v;
  for (int i = 0; i < 4; ++i) v[i] = {int(q[i].x - x0), int(q[i].y - y0)};
  std::vector<uint8_t> inside(size_t(bw) * bh, 0);
  for (int y = 0; y < bh; ++y)
    for (int x = 0; x < bw; ++x) {
      bool pos = true, neg = true;
      for (int i = 0; i < 4; ++i) {
        const auto& a = v[i];
        const auto& b = v[(i + 1) % 4];
        const long c = long(b[0] - a[0]) * (y - a[1]) - long(b[1] - a[1]) * (x - a[0]);
        pos &= c >= 0, neg &= c <= 0;
      }
      inside[size_t(y) * bw + x] = pos || neg;
    }
  for (int i = 0; i < 4; ++i) {  // Bresenham along each edge
    int x = v[i][0], y = v[i][1];
    const int ex = v[(i + 1) % 4][0], ey = v[(i + 1) % 4][1];
    const int dx = std::abs(ex - x), dy = -std::abs(ey - y), sx = x < ex ? 1 : -1,
              sy = y < ey ? 1 : -1;
    for (int err = dx + dy;;) {
      if (x >= 0 && y >= 0 && x < bw && y < bh) inside[size_t(y) * bw + x] = 1;
      if (x == ex && y == ey) break;
      const int e2 = 2 * err;
      if (e2 >= dy) err += dy, x += sx;
      if (e2 <= dx) err += dx, y += sy;
    }
  }
  double sum = 0;
  size_t count = 0;
  for (int y = 0; y < bh; ++y)
    for (int x = 0; x < bw; ++x)
      if (inside[size_t(y) * bw + x]) sum += prob[size_t(y + y0) * mw + x + x0], ++count;
  return count ? float(sum / count) : 0.f;
}

/// The binary text mask: prob > thresh, then (optionally) cv2.dilate with a 2x2 kernel,
/// whose anchor (1,1) makes each pixel the max of itself and its up/left neighbours.
std::vector<uint8_t> text_mask(const float* prob, int mh, int mw, const DbOptions& o) {
  std::vector<uint8_t> mask(size_t(mh) * mw);
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = prob[i] > o.thresh;
  if (!o.dilate) return mask;
  std::vector<uint8_t> d(mask);
  for (int y = 0; y < mh; ++y)
    for (int x = 0; x < mw; ++x) {
      const size_t i = size_t(y) * mw + x;
      uint8_t v = mask[i];
      if (x > 0) v |= mask[i - 1];
      if (y > 0) v |= mask[i - mw] | (x > 0 ? mask[i - mw - 1] : 0);
      d[i] = v;
    }
  return d;
}

/// Maps a grown box from detector pixels (mh x mw) to the src_w x src_h image the way
/// rapidocr does (scale, round, clip; then filter_tag_det_res: corners clockwise from
/// top-left, clipped inside the image). Returns false for slivers of 3 pixels or less.
bool to_image_box(const RotatedRect& grown, int mh, int mw, int src_h, int src_w, TextBox& b) {
  auto q = grown.corners();
  for (auto& p : q) {
    // + 0.0 turns the -0 that nearbyint gives for small negatives into 0.
    p.x = std::clamp(std::nearbyint(p.x / mw * src_w), 0.0, double(src_w)) + 0.0;
    p.y = std::clamp(std::nearbyint(p.y / mh * src_h), 0.0, double(src_h)) + 0.0;
  }
  std::stable_sort(q.begin(), q.end(), [](const Pt& a, const Pt& c) { return a.x < c.x; });
  if (q[1].y < q[0].y) std::swap(q[0], q[1]);
  if (q[3].y < q[2].y) std::swap(q[2], q[3]);
  b.quad = {q[0], q[2], q[3], q[1]};
  for (auto& p : b.quad)
    p.x = std::min(p.x, double(src_w - 1)), p.y = std::min(p.y, double(src_h - 1));
  const auto side = [](const Pt& a, const Pt& c) { return int(std::hypot(a.x - c.x, a.y - c.y)); };
  if (side(b.quad[0], b.quad[1]) <= 3 || side(b.quad[0], b.quad[3]) <= 3) return false;
  b.x0 = b.x1 = int(b.quad[0].x), b.y0 = b.y1 = int(b.quad[0].y);
  for (const Pt& p : b.quad) {
    b.x0 = std::min(b.x0, int(p.x)), b.x1 = std::max(b.x1, int(p.x));
    b.y0 = std::min(b.y0, int(p.y)), b.y1 = std::max(b.y1, int(p.y));
  }
  return true;
}

/// DB post-processing of a probability map (mh x mw, the detector's input size) into boxes
/// in a src_w x src_h image. Regions are 8-connected components of the (dilated) mask,
/// which are what cv2.findContours outlines; holes inside a region are not separate
/// candidates here (rapidocr's RETR_LIST also scores hole contours, which rarely pass).
std::vector<TextBox> db_postprocess(const float* prob, int mh, int mw, int src_h, int src_w,
                                    const DbOptions& o) {
  const size_t n = size_t(mh) * mw;
  std::vector<uint8_t> mask = text_mask(prob, mh, mw, o);
  std::vector<TextBox> boxes;
  std::vector<int32_t> stack;
  std::vector<Pt> extremes;  // leftmost and rightmost pixel per row: enough for the hull
  int candidates = 0;
  for (size_t seed = 0; seed < n && candidates < o.max_candidates; ++seed) {
    if (mask[seed] != 1) continue;
    ++candidates;
    // Flood fill (mask value 2 = visited), tracking each row's extent.
    const int ymin = int(seed / mw);
    std::vector<std::pair<int, int>> rows;  // per row from ymin: [xmin, xmax]
    stack.assign(1, int32_t(seed));
    mask[seed] = 2;
    while (!stack.empty()) {
      const int32_t p = stack.back();
      stack.pop_back();
      const int y = p / mw, x = p % mw;
      if (rows.size() <= size_t(y - ymin)) rows.resize(y - ymin + 1, {mw, -1});
      auto& r = rows[y - ymin];
      r.first = std::min(r.first, x), r.second = std::max(r.second, x);
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int ny = y + dy, nx = x + dx;
          if (ny < 0 || ny >= mh || nx < 0 || nx >= mw) continue;
          const size_t q = size_t(ny) * mw + nx;
          if (mask[q] == 1) mask[q] = 2, stack.push_back(int32_t(q));
        }
    }
    extremes.clear();
    for (size_t r = 0; r < rows.size(); ++r) {
      if (rows[r].second < 0) continue;
      extremes.push_back({double(rows[r].first), double(ymin + r)});
      extremes.push_back({double(rows[r].second), double(ymin + r)});
    }
    const RotatedRect rect = min_area_rect(convex_hull(extremes));
    if (rect.short_side() < o.min_size) continue;
    const float score = box_score(prob, mh, mw, order_corners(rect.corners()));
    if (score < o.box_thresh) continue;

    // Unclip: offset the rectangle outwards by area * ratio / perimeter (the DB paper's
    // D' = A' * r / L'). For a rectangle the min-area box of the round-joined offset polygon
    // is the rectangle grown by that distance on every side.
    const double w = 2 * rect.half_u, h = 2 * rect.half_v;
    const double dist = w * h * o.unclip_ratio / (2 * (w + h));
    RotatedRect grown = rect;
    grown.half_u += dist, grown.half_v += dist;
    if (grown.short_side() < o.min_size + 2) continue;

    TextBox b;
    b.score = score;
    if (!to_image_box(grown, mh, mw, src_h, src_w, b)) continue;
    boxes.push_back(b);
  }
  // Reading order: top to bottom, then left to right.
  std::stable_sort(boxes.begin(), boxes.end(), [](const TextBox& a, const TextBox& b) {
    return a.y0 != b.y0 ? a.y0 < b.y0 : a.x0 < b.x0;
  });
  return boxes;
}

// ---- overlay ------------------------------------------------------------------------------

void draw_line(Image& img, Pt a, Pt b, const std::array<uint8_t, 3>& colour, int thickness) {
  const int steps = int(std::ceil(std::max(std::abs(b.x - a.x), std::abs(b.y - a.y)))) + 1;
  for (int i = 0; i <= steps; ++i) {
    const double t = double(i) / steps;
    const int cx = int(std::lround(a.x + t * (b.x - a.x))),
              cy = int(std::lround(a.y + t * (b.y - a.y)));
    for (int dy = 0; dy < thickness; ++dy)
      for (int dx = 0; dx < thickness; ++dx) {
        const int x = cx + dx - thickness / 2, y = cy + dy - thickness / 2;
        if (x < 0 || y < 0 || x >= img.width || y >= img.height) continue;
        std::copy(colour.begin(), colour.end(), &img.rgb[(size_t(y) * img.width + x) * 3]);
      }
  }
}

/// The image with the probability map (resized to the image) blended in orange and the
/// boxes outlined in green.
Image make_overlay(const Image& img, const float* prob, int mh, int mw,
                   const std::vector<TextBox>& boxes) {
  Image out = img;
  const auto p = resize_linear_f32(prob, mw, mh, img.width, img.height);
  const float colour[3] = {255.f, 96.f, 0.f};
  for (size_t i = 0; i < p.size(); ++i) {
    const float a = 0.5f * std::clamp(p[i], 0.f, 1.f);
    for (int c = 0; c < 3; ++c)
      out.rgb[i * 3 + c] = uint8_t(std::lround((1 - a) * out.rgb[i * 3 + c] + a * colour[c]));
  }
  const int thickness = std::max(1, std::min(img.width, img.height) / 300 + 1);
  for (const auto& b : boxes)
    for (int i = 0; i < 4; ++i)
      draw_line(out, b.quad[i], b.quad[(i + 1) % 4], {0, 200, 0}, thickness);
  return out;
}

// ---- the pipeline -------------------------------------------------------------------------

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int fail(const kiln::Status& st) {
  std::fprintf(stderr, "text_detect: %s\n", st.to_string().c_str());
  return 1;
}

struct Options {
  std::vector<std::string> files;  // MODEL IMAGE, or IMAGE with --print-shape
  std::string overlay = "text_detect.png";
  std::string json_path, save_plan;
  int limit_side_len = 960;
  std::string limit_type = "max";
  std::vector<float> mean{0.485f, 0.456f, 0.406f}, stdev{0.229f, 0.224f, 0.225f};
  DbOptions db;
  bool print_shape = false, verbose = false, no_dilate = false;
  int repeat = 1;
};

/// Loads a plan, or builds one from an .onnx for a 1x3xHxW input. Adjusts in_h/in_w to a
/// plan whose input size is fixed.
kiln::Result<std::unique_ptr<kiln::Engine>> load_engine(const Options& opt, kiln::Logger& log,
                                                        int& in_h, int& in_w, bool& built) {
  const std::string& model = opt.files[0];
  built = ends_with(model, ".onnx");
  kiln::Runtime runtime(log);
  if (!built) {
    KILN_ASSIGN_OR_RETURN(auto engine, runtime.deserialize_file(model));
    if (engine->input_names().size() != 1)
      return kiln::Status(kiln::ErrorCode::kInvalidArgument,
                          "'" + model + "' is not a text detector plan",
                          "expected one input (1x3xHxW image)");
    KILN_ASSIGN_OR_RETURN(auto desc, engine->tensor_desc(engine->input_names()[0]));
    if (desc.dims.size() != 4 || (desc.dims[1] != 3 && desc.dims[1] != -1))
      return kiln::Status(kiln::ErrorCode::kShapeMismatch,
                          "plan input '" + desc.name + "' is not Nx3xHxW",
                          "build the plan from a PP-OCR detection model");
    if (desc.dims[2] > 0 && desc.dims[3] > 0 && (desc.dims[2] != in_h || desc.dims[3] != in_w)) {
      std::printf(
          "note: the plan is built for %lldx%lld; resizing to that instead of %dx%d "
          "(rebuild with --shapes %s:1x3x%dx%d to keep the aspect ratio)\n",
          (long long)desc.dims[2], (long long)desc.dims[3], in_h, in_w, desc.name.c_str(), in_h,
          in_w);
      in_h = int(desc.dims[2]), in_w = int(desc.dims[3]);
    }
    return engine;
  }
  kiln::Parser parser(log);
  auto net = parser.parse_from_file(model);
  if (!net.is_ok()) {
    for (const auto& d : parser.diagnostics())
      std::fprintf(stderr, "  %s\n", d.to_string().c_str());
    return net.status();
  }
  kiln::BuilderConfig cfg;
  const auto inputs = (*net)->input_names();
  if (inputs.size() != 1)
    return kiln::Status(kiln::ErrorCode::kInvalidArgument,
                        "'" + model + "' has " + std::to_string(inputs.size()) + " inputs",
                        "expected a PP-OCR detection model with one image input");
  cfg.input_shapes[inputs[0]] = {1, 3, in_h, in_w};
  kiln::Builder builder(log);
  KILN_ASSIGN_OR_RETURN(auto plan, builder.build_serialized_network(**net, cfg));
  if (!opt.save_plan.empty()) {
    std::ofstream f(opt.save_plan, std::ios::binary);
    f.write(reinterpret_cast<const char*>(plan.data()), std::streamsize(plan.size()));
    if (!f)
      return kiln::Status(kiln::ErrorCode::kIoError, "cannot write '" + opt.save_plan + "'",
                          "check the path");
  }
  return runtime.deserialize(plan.data(), plan.size());
}

int run(const Options& opt) {
  kiln::Logger log(opt.verbose ? kiln::LogLevel::kInfo : kiln::LogLevel::kWarning);
  std::vector<std::pair<std::string, double>> times;
  const std::string& image_path = opt.files.back();

  auto t = Clock::now();
  auto img = load_image(image_path);
  if (!img.is_ok()) return fail(img.status());
  times.push_back({"load image", ms_since(t)});
  auto [in_h, in_w] = det_input_size(img->height, img->width, opt.limit_side_len, opt.limit_type);
  if (opt.print_shape) {
    std::printf("1x3x%dx%d\n", in_h, in_w);
    return 0;
  }

  t = Clock::now();
  bool built = false;
  auto engine = load_engine(opt, log, in_h, in_w, built);
  if (!engine.is_ok()) return fail(engine.status());
  times.push_back({built ? "build plan" : "load plan", ms_since(t)});
  if ((*engine)->output_names().size() != 1)
    return fail(kiln::Status(kiln::ErrorCode::kInvalidArgument,
                             "'" + opt.files[0] + "' is not a text detector",
                             "expected one output (1x1xHxW probability map)"));
  const std::string in_name = (*engine)->input_names()[0], out_name = (*engine)->output_names()[0];
  std::printf("image %s: %dx%d, detector input %s 1x3x%dx%d\n", image_path.c_str(), img->width,
              img->height, in_name.c_str(), in_h, in_w);

  t = Clock::now();
  std::array<float, 3> mean{opt.mean[0], opt.mean[1], opt.mean[2]},
      stdev{opt.stdev[0], opt.stdev[1], opt.stdev[2]};
  std::vector<float> x = preprocess(*img, in_h, in_w, mean, stdev);
  times.push_back({"preprocess", ms_since(t)});

  auto ctx = (*engine)->create_execution_context();
  kiln::TensorView xv{kiln::DataType::kF32, {1, 3, in_h, in_w}, x.data()};
  if (auto st = ctx->set_input(in_name, xv); !st.is_ok()) return fail(st);
  double best = 1e300, total = 0;
  for (int i = 0; i < opt.repeat; ++i) {
    t = Clock::now();
    if (auto st = ctx->execute(); !st.is_ok()) return fail(st);
    const double ms = ms_since(t);
    best = std::min(best, ms), total += ms;
  }
  times.push_back(
      {opt.repeat > 1 ? "inference (mean of " + std::to_string(opt.repeat) + ")" : "inference",
       total / opt.repeat});
  if (opt.repeat > 1) times.push_back({"inference (best)", best});
  auto out = ctx->output(out_name);
  if (!out.is_ok()) return fail(out.status());
  if (out->dtype != kiln::DataType::kF32 || out->dims != std::vector<int64_t>{1, 1, in_h, in_w})
    return fail(kiln::Status(kiln::ErrorCode::kShapeMismatch,
                             "output '" + out_name + "' is not a 1x1x" + std::to_string(in_h) +
                                 "x" + std::to_string(in_w) + " f32 probability map",
                             "use a DB text detection model (PP-OCR det)"));
  const float* prob = static_cast<const float*>(out->data);

  t = Clock::now();
  const auto boxes = db_postprocess(prob, in_h, in_w, img->height, img->width, opt.db);
  times.push_back({"postprocess", ms_since(t)});

  std::printf("%zu text boxes (x0,y0,x1,y1 score | rotated box corners clockwise from top-left):\n",
              boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) {
    const auto& b = boxes[i];
    std::printf("  %2zu: %4d,%4d,%4d,%4d  %.3f |", i, b.x0, b.y0, b.x1, b.y1, b.score);
    for (const auto& p : b.quad) std::printf(" (%g,%g)", p.x, p.y);
    std::printf("\n");
  }

  if (!opt.overlay.empty()) {
    t = Clock::now();
    const Image ov = make_overlay(*img, prob, in_h, in_w, boxes);
    if (!stbi_write_png(opt.overlay.c_str(), ov.width, ov.height, 3, ov.rgb.data(), ov.width * 3))
      return fail(kiln::Status(kiln::ErrorCode::kIoError, "cannot write '" + opt.overlay + "'",
                               "check that the directory exists"));
    times.push_back({"write overlay", ms_since(t)});
    std::printf("overlay: %s\n", opt.overlay.c_str());
  }
  std::printf("timing (ms):\n");
  for (const auto& [stage, ms] : times) std::printf("  %-24s %9.2f\n", stage.c_str(), ms);

  if (!opt.json_path.empty()) {
    nlohmann::json j;
    j["image"] = image_path;
    j["image_size"] = {img->width, img->height};
    j["input_shape"] = {1, 3, in_h, in_w};
    j["boxes"] = nlohmann::json::array();
    for (const auto& b : boxes) {
      nlohmann::json q = nlohmann::json::array();
      for (const auto& p : b.quad) q.push_back({p.x, p.y});
      j["boxes"].push_back({{"bbox", {b.x0, b.y0, b.x1, b.y1}}, {"score", b.score}, {"quad", q}});
    }
    for (const auto& [stage, ms] : times) j["timing_ms"][stage] = ms;
    std::ofstream f(opt.json_path);
    f << j.dump(2) << "\n";
    if (!f)
      return fail(
          kiln::Status(kiln::ErrorCode::kIoError, "cannot write '" + opt.json_path + "'", ""));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{
      "Text detection with a PP-OCR DB detector through kiln: prints text boxes and writes an "
      "overlay"};
  app.add_option("files", opt.files,
                 "MODEL IMAGE: a PP-OCR det model (.onnx, built for the image's size) or a "
                 "kiln plan, and an image (PNG/JPEG/BMP)")
      ->required();
  app.add_option("-o,--overlay", opt.overlay, "overlay PNG to write ('' to skip)")
      ->capture_default_str();
  app.add_option("--json", opt.json_path, "also write the boxes and timings as JSON");
  app.add_option("--save-plan", opt.save_plan,
                 "with an .onnx model: also write the plan built for this image");
  app.add_flag("--print-shape", opt.print_shape,
               "print the detector input shape for IMAGE (1x3xHxW) and exit");
  app.add_option("--limit-side-len", opt.limit_side_len, "side length limit of DetResizeForTest")
      ->capture_default_str()
      ->check(CLI::Range(32, 8192));
  app.add_option("--limit-type", opt.limit_type,
                 "'max': longest side at most the limit; 'min': shortest at least")
      ->capture_default_str()
      ->check(CLI::IsMember({"max", "min"}));
  app.add_option("--mean", opt.mean,
                 "per-channel mean in B,G,R order (PaddleOCR: ImageNet; rapidocr: 0.5)")
      ->capture_default_str()
      ->expected(3);
  app.add_option("--std", opt.stdev, "per-channel std in B,G,R order")
      ->capture_default_str()
      ->expected(3);
  app.add_option("--thresh", opt.db.thresh, "text pixel probability threshold")
      ->capture_default_str();
  app.add_option("--box-thresh", opt.db.box_thresh, "minimum mean probability of a box")
      ->capture_default_str();
  app.add_option("--unclip-ratio", opt.db.unclip_ratio, "box expansion ratio")
      ->capture_default_str();
  app.add_option("--min-size", opt.db.min_size, "minimum short side of a box in detector pixels")
      ->capture_default_str();
  app.add_flag("--no-dilate", opt.no_dilate,
               "skip the 2x2 dilation of the text mask (PaddleOCR's default)");
  app.add_option("--repeat", opt.repeat, "run inference N times and report mean and best")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_flag("-v,--verbose", opt.verbose, "log build phases");
  CLI11_PARSE(app, argc, argv);
  if (opt.files.size() != (opt.print_shape ? 1u : 2u)) {
    std::fprintf(stderr, "text_detect: expected %s\n", opt.print_shape ? "IMAGE" : "MODEL IMAGE");
    return 2;
  }
  opt.db.dilate = !opt.no_dilate;
  for (float s : opt.stdev)
    if (!(s > 0)) {
      std::fprintf(stderr, "text_detect: --std values must be positive\n");
      return 2;
    }
  return run(opt);
}
