// Scalar conversions between f32 and the narrow float formats kiln stores: IEEE fp16,
// bfloat16 and fp8 e4m3fn (OCP 8-bit floating point spec v1.0, "E4M3", no infinities,
// one NaN encoding 0x7f/0xff, max 448). All round to nearest even.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace kiln {

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

/// f32 → IEEE binary16 bits, round to nearest even; overflow → inf; NaN preserved.
inline uint16_t f32_to_f16(float f) {
  uint32_t x = f32_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return static_cast<uint16_t>(sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (ax < 0x38800000u) {  // subnormal or zero in f16
    // Add 0.5 (as float) to shift mantissa into place with correct rounding.
    float v = bits_f32(ax) + 0.5f;
    return static_cast<uint16_t>(sign | (f32_bits(v) - 0x3f000000u));
  }
  uint32_t mant_odd = (ax >> 13) & 1u;
  ax += 0xc8000fffu + mant_odd;  // rebias exponent (−112 << 23) and round
  return static_cast<uint16_t>(sign | (ax >> 13));
}

/// IEEE binary16 bits → f32 (exact).
inline float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // 2^-24
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

/// f32 → bfloat16 bits, round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}
inline float bf16_to_f32(uint16_t b) { return bits_f32(static_cast<uint32_t>(b) << 16); }

/// f32 → fp8 e4m3fn bits. saturate=true clamps to ±448 (ONNX Cast default), else → NaN.
inline uint8_t f32_to_f8e4m3(float f, bool saturate = true) {
  uint32_t x = f32_bits(f);
  uint8_t sign = static_cast<uint8_t>((x >> 24) & 0x80u);
  float a = std::fabs(f);
  if (std::isnan(f)) return 0x7f;
  if (std::isinf(f)) return saturate ? static_cast<uint8_t>(sign | 0x7e) : static_cast<uint8_t>(sign | 0x7f);
  if (a >= 464.0f) return saturate ? static_cast<uint8_t>(sign | 0x7e) : static_cast<uint8_t>(sign | 0x7f);
  // Values below 2^-6 are subnormal: step 2^-9.
  if (a < 0.015625f) {
    float q = std::nearbyint(a * 512.0f);  // default rounding mode: nearest even
    return static_cast<uint8_t>(sign | static_cast<uint8_t>(q));
  }
  int e;
  float m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5,1)
  // normalised: a = 1.mmm * 2^(e-1); 3 mantissa bits
  float scaled = std::nearbyint(m * 16.0f);  // in [8,16]
  if (scaled >= 16.0f) { scaled = 8.0f; ++e; }
  int exp_field = (e - 1) + 7;
  uint8_t mant = static_cast<uint8_t>(static_cast<int>(scaled) - 8);
  uint8_t bits = static_cast<uint8_t>((exp_field << 3) | mant);
  if (bits > 0x7e) bits = saturate ? 0x7e : 0x7f;
  return static_cast<uint8_t>(sign | bits);
}

/// fp8 e4m3fn bits → f32 (exact).
inline float f8e4m3_to_f32(uint8_t b) {
  uint8_t s = b & 0x80u, e = (b >> 3) & 0xfu, m = b & 0x7u;
  float v;
  if (e == 0xf && m == 0x7) v = NAN;
  else if (e == 0) v = std::ldexp(static_cast<float>(m), -9);
  else v = std::ldexp(1.0f + m / 8.0f, e - 7);
  return s ? -v : v;
}

}  // namespace kiln
