// int8 depthwise traits for AArch64 NEON (see kernels/q8-dwconv/q8_dwconv_simd.h). Exact:
// inputs widened to int16 (USHLL/SSHLL), SMLAL / SMLAL2 into four int32x4 accumulators.
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/q8-dwconv/q8_dwconv.h"

namespace mk {
namespace {

struct Q8DwNeon {
  static constexpr int64_t kPrepPerTap = 16;
  static constexpr bool kHas3x3s1 = false;  // no shuffle bottleneck: SMLAL widens for free
  static int64_t vert_offset(int64_t T) { return 16 * ((T + 1) / 2 * 2); }
  static int64_t prep_size(int64_t T) { return vert_offset(T); }
  template <int BW, int SW, bool XS>
  static void block3x3(const uint8_t*, const uint8_t*, const uint8_t*, int64_t, const int16_t*, const int32_t*,
                       const float*, const Q8DwconvParams&, uint8_t*) {}

  static void prepare(const int16_t* w, int64_t cpad, int64_t T, int16_t* out) {
    for (int64_t t = 0; t < T; ++t) std::memcpy(out + t * 16, w + t * cpad, 16 * sizeof(int16_t));
  }

  static void prepare_bs(const int32_t* bias, const float* scale, int32_t* ob, float* os) {
    std::memcpy(ob, bias, 16 * sizeof(int32_t));
    std::memcpy(os, scale, 16 * sizeof(float));
  }

  template <bool Tail>
  static uint8x16_t load_x(const uint8_t* p, int64_t n) {
    if constexpr (Tail) {
      uint8_t tmp[16] = {};
      std::memcpy(tmp, p, static_cast<size_t>(n));
      return vld1q_u8(tmp);
    } else {
      return vld1q_u8(p);
    }
  }

  static int32x4_t requant(int32x4_t acc, const float* scale, const Q8DwconvParams& p) {
    float32x4_t v = vmulq_f32(vcvtq_f32_s32(acc), vld1q_f32(scale));
    v = vminq_f32(vmaxq_f32(v, vdupq_n_f32(p.y_lo)), vdupq_n_f32(p.y_hi));
    return vaddq_s32(vcvtnq_s32_f32(v), vdupq_n_s32(p.y_zp));  // ties to even
  }

  template <int TC, bool Tail, bool XS>
  static void pixel(const uint8_t* const* taps, int64_t ntaps, int64_t c, int64_t n, const int16_t* w,
                    const int32_t* bias, const float* scale, const Q8DwconvParams& p, uint8_t* out) {
    const int64_t T = TC > 0 ? TC : ntaps;
    int32x4_t a0 = vld1q_s32(bias), a1 = vld1q_s32(bias + 4);
    int32x4_t a2 = vld1q_s32(bias + 8), a3 = vld1q_s32(bias + 12);
    for (int64_t t = 0; t < T; ++t) {
      const uint8x16_t xb = load_x<Tail>(taps[t] + c, n);
      int16x8_t xl, xh;
      if constexpr (XS) {
        xl = vmovl_s8(vget_low_s8(vreinterpretq_s8_u8(xb)));
        xh = vmovl_high_s8(vreinterpretq_s8_u8(xb));
      } else {
        xl = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(xb)));
        xh = vreinterpretq_s16_u16(vmovl_high_u8(xb));
      }
      const int16x8_t wl = vld1q_s16(w + t * 16), wh = vld1q_s16(w + t * 16 + 8);
      a0 = vmlal_s16(a0, vget_low_s16(xl), vget_low_s16(wl));
      a1 = vmlal_high_s16(a1, xl, wl);
      a2 = vmlal_s16(a2, vget_low_s16(xh), vget_low_s16(wh));
      a3 = vmlal_high_s16(a3, xh, wh);
    }
    const int16x8_t lo = vcombine_s16(vmovn_s32(requant(a0, scale, p)), vmovn_s32(requant(a1, scale + 4, p)));
    const int16x8_t hi = vcombine_s16(vmovn_s32(requant(a2, scale + 8, p)), vmovn_s32(requant(a3, scale + 12, p)));
    const uint8x16_t bytes = vreinterpretq_u8_s8(vcombine_s8(vmovn_s16(lo), vmovn_s16(hi)));  // low bytes
    if constexpr (Tail) {
      uint8_t tmp[16];
      vst1q_u8(tmp, bytes);
      std::memcpy(out, tmp, static_cast<size_t>(n));
    } else {
      vst1q_u8(out, bytes);
    }
  }
};

}  // namespace
}  // namespace mk
