// Eight fp32 values -> eight output bytes, the common tail of the int8 elementwise steps
// (residual add, channel gate, input quantization):
//
//   byte = clamp(v, lo, hi) rounded half to even, + zo      (lo, hi = byte range - zo; NaN -> lo)
//
// Clamping before rounding equals clamping after because the bounds are integers. Baseline ISA
// only (SSE2 on x86-64, NEON on aarch64): these steps stream memory and need no dispatch.
// Written as intrinsics because GCC vectorizes the scalar clamp into compare-and-blend chains
// (~4x slower than the min/max here, measured).
#pragma once
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace mk {

// Keeps v rounded to fp32 where it is: the compiler cannot contract a * b + c * d into an FMA
// across it (aarch64 has FMA in its baseline; torch evaluates mul, mul, add separately).
template <class T>
inline T fp_barrier(T v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+x"(v));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(v));
#else
  volatile T t = v;
  v = t;
#endif
  return v;
}

#if defined(__SSE2__)
struct Requant8 {
  __m128 lo, hi;
  __m128i zo;
  bool out_signed;
  Requant8(float lo_, float hi_, int32_t zo_, bool out_signed_)
      : lo(_mm_set1_ps(lo_)), hi(_mm_set1_ps(hi_)), zo(_mm_set1_epi32(zo_)), out_signed(out_signed_) {}
  void store(__m128 v0, __m128 v1, uint8_t* out) const {
    // max(v, lo) returns lo when v is NaN (the second operand); MXCSR default rounds half to even
    const __m128i r0 = _mm_add_epi32(_mm_cvtps_epi32(_mm_min_ps(_mm_max_ps(v0, lo), hi)), zo);
    const __m128i r1 = _mm_add_epi32(_mm_cvtps_epi32(_mm_min_ps(_mm_max_ps(v1, lo), hi)), zo);
    const __m128i w16 = _mm_packs_epi32(r0, r1);  // already inside the byte range
    const __m128i w8 = out_signed ? _mm_packs_epi16(w16, w16) : _mm_packus_epi16(w16, w16);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), w8);
  }
};
// Eight bytes at p (XOR flip: 0x80 turns int8 into uint8 = v + 128) as two int32x4 halves.
inline void widen8(const uint8_t* p, uint8_t flip, __m128i& lo4, __m128i& hi4) {
  const __m128i zero = _mm_setzero_si128();
  const __m128i v = _mm_unpacklo_epi8(
      _mm_xor_si128(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)), _mm_set1_epi8(static_cast<char>(flip))),
      zero);
  lo4 = _mm_unpacklo_epi16(v, zero);
  hi4 = _mm_unpackhi_epi16(v, zero);
}
#elif defined(__ARM_NEON)
struct Requant8 {
  float32x4_t lo, hi;
  int32x4_t zo;
  bool out_signed;
  Requant8(float lo_, float hi_, int32_t zo_, bool out_signed_)
      : lo(vdupq_n_f32(lo_)), hi(vdupq_n_f32(hi_)), zo(vdupq_n_s32(zo_)), out_signed(out_signed_) {}
  int32x4_t one(float32x4_t v) const {
    const float32x4_t t = vbslq_f32(vcgtq_f32(v, lo), v, lo);  // NaN -> lo (vmaxq would keep NaN)
    return vaddq_s32(vcvtnq_s32_f32(vminq_f32(t, hi)), zo);     // round to nearest, ties to even
  }
  void store(float32x4_t v0, float32x4_t v1, uint8_t* out) const {
    const int16x8_t w16 = vcombine_s16(vmovn_s32(one(v0)), vmovn_s32(one(v1)));  // inside the byte range
    vst1_u8(out, out_signed ? vreinterpret_u8_s8(vmovn_s16(w16)) : vmovn_u16(vreinterpretq_u16_s16(w16)));
  }
};
inline void widen8(const uint8_t* p, uint8_t flip, int32x4_t& lo4, int32x4_t& hi4) {
  const uint16x8_t v = vmovl_u8(veor_u8(vld1_u8(p), vdup_n_u8(flip)));
  lo4 = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(v)));
  hi4 = vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(v)));
}
#endif

}  // namespace mk
