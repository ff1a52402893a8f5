// Scalar pieces every stem kernel shares (the reference's arithmetic; also the SIMD kernels'
// tails and border pixels). Internal linkage on purpose: each ISA file gets its own copy compiled
// with its own flags, so the linker never hands an AVX2-built copy to the scalar path.
#pragma once
#include <cstdint>

#include "kernels/q8-stem/q8_stem.h"

namespace mk {
namespace {

// clamp(round(x / s) + zp, 0, 255) as torch computes it in fp32 (division rounded, then half to
// even); NaN -> 0. The bounds are integers, so clamping before rounding equals after; the
// 1.5 * 2^23 add/subtract rounds to nearest even in the FPU's default mode (exact for |v| < 2^22).
inline uint8_t stem_quantize_one(float x, float s, float zp) {
  const float lo = -zp, hi = 255.f - zp;
  float v = x / s;
  v = v > lo ? (v < hi ? v : hi) : lo;
  constexpr float kMagic = 12582912.0f;
  return static_cast<uint8_t>(static_cast<int32_t>((v + kMagic) - kMagic) + static_cast<int32_t>(zp));
}

// The K bytes of output pixel (oh, ow) of image n.
inline void stem_im2col_pixel(const Q8Im2colParams& p, const uint8_t* x, int64_t n, int64_t oh, int64_t ow,
                              uint8_t* py) {
  const int64_t khw = p.kh * p.kw;
  for (int64_t i = 0; i < p.kh; ++i) {
    const int64_t ih = oh * p.sh - p.pt + i * p.dh;
    for (int64_t j = 0; j < p.kw; ++j) {
      const int64_t iw = ow * p.sw - p.pl + j * p.dw;
      const int64_t k = i * p.kw + j;
      if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) {
        for (int64_t c = 0; c < p.C; ++c) py[c * khw + k] = p.pad;
      } else {
        const uint8_t* px = x + ((n * p.H + ih) * p.W + iw) * p.C;
        for (int64_t c = 0; c < p.C; ++c) py[c * khw + k] = px[c];
      }
    }
  }
}

// The SIMD gather's byte-shuffle masks, for 16 < K <= 32, dw == 1 and kw * C <= 16: kernel row
// i's kw * C input bytes (one 16-byte load at its first tap) land at output positions
// c * kh * kw + i * kw + j; mask[i][v][lane] picks the byte for output position lane (v = 0) or
// K - 16 + lane (v = 1), 0x80 (a zero byte in pshufb and tbl) where another row supplies it.
inline bool stem_im2col_simd_ok(const Q8Im2colParams& p) {
  return p.K() > 16 && p.K() <= 32 && p.dw == 1 && p.kw * p.C <= 16;
}

inline void stem_im2col_masks(const Q8Im2colParams& p, uint8_t (*mask)[2][16]) {
  const int64_t K = p.K(), khw = p.kh * p.kw;
  for (int64_t i = 0; i < p.kh; ++i)
    for (int v = 0; v < 2; ++v)
      for (int lane = 0; lane < 16; ++lane) {
        const int64_t o = v == 0 ? lane : K - 16 + lane;
        const int64_t c = o / khw, k = o % khw;
        mask[i][v][lane] = k / p.kw == i ? static_cast<uint8_t>((k % p.kw) * p.C + c) : uint8_t{0x80};
      }
}

}  // namespace
}  // namespace mk
