// NEON stem kernels: the AVX2 file's scheme (q8_stem_avx2.cpp). vdivq_f32 rounds as the scalar
// division; vcvtnq rounds half to even; three channels interleave with vst3; im2col places each
// kernel row's 16-byte load with tbl (index 0x80 is out of range: a zero byte).
#include <arm_neon.h>

#include "kernels/q8-stem/q8_stem.h"
#include "kernels/q8-stem/q8_stem_common.h"

namespace mk {
namespace {

struct Quant8 {
  float32x4_t s, lo, hi;
  int32x4_t zp;
  Quant8(float scale, int32_t z)
      : s(vdupq_n_f32(scale)), lo(vdupq_n_f32(-static_cast<float>(z))), hi(vdupq_n_f32(255.f - static_cast<float>(z))),
        zp(vdupq_n_s32(z)) {}
  int32x4_t four(const float* p) const {
    const float32x4_t v = vdivq_f32(vld1q_f32(p), s);
    const float32x4_t t = vbslq_f32(vcgtq_f32(v, lo), v, lo);  // NaN -> lo (vmaxq would keep NaN)
    return vaddq_s32(vcvtnq_s32_f32(vminq_f32(t, hi)), zp);
  }
  uint8x8_t codes(const float* p) const {  // 8 floats -> 8 bytes (values already in 0..255)
    const int16x8_t w16 = vcombine_s16(vmovn_s32(four(p)), vmovn_s32(four(p + 4)));
    return vmovn_u16(vreinterpretq_u16_s16(w16));
  }
};

}  // namespace

void q8_quantize_row_neon(const float* x, int64_t C, int64_t W, int64_t sC, float scale, int32_t zp, uint8_t* y) {
  const Quant8 q(scale, zp);
  int64_t w = 0;
  if (C == 3) {
    for (; w + 8 <= W; w += 8) {
      uint8x8x3_t v;
      v.val[0] = q.codes(x + w);
      v.val[1] = q.codes(x + sC + w);
      v.val[2] = q.codes(x + 2 * sC + w);
      vst3_u8(y + 3 * w, v);
    }
  } else {
    for (; w + 8 <= W; w += 8)
      for (int64_t c = 0; c < C; ++c) {
        uint8_t b[8];
        vst1_u8(b, q.codes(x + c * sC + w));
        for (int k = 0; k < 8; ++k) y[(w + k) * C + c] = b[k];
      }
  }
  const float z = static_cast<float>(zp);
  for (; w < W; ++w)
    for (int64_t c = 0; c < C; ++c) y[w * C + c] = stem_quantize_one(x[c * sC + w], scale, z);
}

void q8_im2col_row_neon(const Q8Im2colParams& p, const uint8_t* x, int64_t n, int64_t oh, uint8_t* y) {
  const int64_t K = p.K();
  if (!stem_im2col_simd_ok(p) || p.kh > 32) {
    for (int64_t ow = 0; ow < p.OW; ++ow) stem_im2col_pixel(p, x, n, oh, ow, y + ow * K);
    return;
  }
  uint8_t mask[32][2][16];
  stem_im2col_masks(p, mask);
  const uint8_t* rows[32];
  for (int64_t i = 0; i < p.kh; ++i) {
    const int64_t ih = oh * p.sh - p.pt + i * p.dh;
    rows[i] = ih >= 0 && ih < p.H ? x + (n * p.H + ih) * p.W * p.C : nullptr;
  }
  const uint8x16_t padv = vdupq_n_u8(p.pad);
  const int64_t row_bytes = p.W * p.C;
  for (int64_t ow = 0; ow < p.OW; ++ow) {
    uint8_t* py = y + ow * K;
    const int64_t iw0 = ow * p.sw - p.pl;
    if (iw0 < 0 || iw0 * p.C + 16 > row_bytes) {
      stem_im2col_pixel(p, x, n, oh, ow, py);
      continue;
    }
    uint8x16_t lo = vdupq_n_u8(0), hi = vdupq_n_u8(0);
    for (int64_t i = 0; i < p.kh; ++i) {
      const uint8x16_t r = rows[i] ? vld1q_u8(rows[i] + iw0 * p.C) : padv;
      lo = vorrq_u8(lo, vqtbl1q_u8(r, vld1q_u8(mask[i][0])));
      hi = vorrq_u8(hi, vqtbl1q_u8(r, vld1q_u8(mask[i][1])));
    }
    vst1q_u8(py, lo);
    vst1q_u8(py + K - 16, hi);
  }
}

}  // namespace mk
