// The int8 residual add on byte codes, the one elementwise step of a quantized inverted residual
// (the fused block's epilogue and the standalone q8_add of unfused networks use this one loop):
//
//   out[i] = clamp(rne(f32(a[i] - za) * fa + f32(b[i] - zb) * fb) + zo, lo, hi)
//
// with each product and the sum rounded to fp32 as torch's separate ops round them (never an
// FMA), round half to even. Header-only at the baseline ISA (SSE2 on x86-64, NEON on aarch64):
// it is a streaming pass bound by memory, so it needs no runtime dispatch. add_one is the
// scalar reference the SIMD loops must match and the tail they share.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace mk {

// Keeps v rounded to fp32 where it is: the compiler cannot contract a * b + c * d into an FMA
// across it (aarch64 has FMA in its baseline; torch's add evaluates mul, mul, add separately).
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

// Clamping to [lo - zo, hi - zo] before rounding equals clamping after (the bounds are
// integers). Signed bytes are flipped to uint8 (v ^ 0x80 = v + 128), their zero points shifted
// by 128, so one unsigned widening serves both dtypes.
struct AddQuant {
  float fa, fb, lo, hi;
  int32_t za, zb, zo;
  uint8_t fla, flb;
  bool out_signed;
};

// float(double ratio): torch multiplies a float32 tensor by a Python float in fp32.
inline AddQuant make_add_quant(double sa, int32_t za, bool a_signed, double sb, int32_t zb, bool b_signed,
                               double so, int32_t zo, bool out_signed) {
  AddQuant q{};
  const int32_t lo = out_signed ? -128 : 0, hi = out_signed ? 127 : 255;
  q.fa = static_cast<float>(sa / so);
  q.fb = static_cast<float>(sb / so);
  q.fla = a_signed ? 0x80 : 0;
  q.flb = b_signed ? 0x80 : 0;
  q.za = za + (a_signed ? 128 : 0);
  q.zb = zb + (b_signed ? 128 : 0);
  q.zo = zo;
  q.lo = static_cast<float>(lo - zo);
  q.hi = static_cast<float>(hi - zo);
  q.out_signed = out_signed;
  return q;
}

inline uint8_t add_one(const AddQuant& q, uint8_t a, uint8_t b) {
  const float va = fp_barrier(static_cast<float>(int32_t(a ^ q.fla) - q.za) * q.fa);
  const float vb = fp_barrier(static_cast<float>(int32_t(b ^ q.flb) - q.zb) * q.fb);
  float v = va + vb;
  v = v < q.lo ? q.lo : (v > q.hi ? q.hi : v);
  return static_cast<uint8_t>(static_cast<int32_t>(std::nearbyintf(v)) + q.zo);
}

// n elements; out may alias a or b (each block of 8 is read before it is written).
inline void residual_add(const AddQuant& q, const uint8_t* a, const uint8_t* b, uint8_t* out, int64_t n) {
  int64_t i = 0;
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  const __m128i fla = _mm_set1_epi8(static_cast<char>(q.fla)), flb = _mm_set1_epi8(static_cast<char>(q.flb));
  const __m128i za = _mm_set1_epi32(q.za), zb = _mm_set1_epi32(q.zb), zo = _mm_set1_epi32(q.zo);
  const __m128 fa = _mm_set1_ps(q.fa), fb = _mm_set1_ps(q.fb), lo = _mm_set1_ps(q.lo), hi = _mm_set1_ps(q.hi);
  for (; i + 8 <= n; i += 8) {
    __m128i va = _mm_xor_si128(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + i)), fla);
    __m128i vb = _mm_xor_si128(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + i)), flb);
    va = _mm_unpacklo_epi8(va, zero);
    vb = _mm_unpacklo_epi8(vb, zero);
    __m128i r[2];
    for (int h = 0; h < 2; ++h) {
      const __m128i a32 = h ? _mm_unpackhi_epi16(va, zero) : _mm_unpacklo_epi16(va, zero);
      const __m128i b32 = h ? _mm_unpackhi_epi16(vb, zero) : _mm_unpacklo_epi16(vb, zero);
      const __m128 pa = fp_barrier(_mm_mul_ps(_mm_cvtepi32_ps(_mm_sub_epi32(a32, za)), fa));
      const __m128 pb = fp_barrier(_mm_mul_ps(_mm_cvtepi32_ps(_mm_sub_epi32(b32, zb)), fb));
      const __m128 v = _mm_min_ps(_mm_max_ps(_mm_add_ps(pa, pb), lo), hi);
      r[h] = _mm_add_epi32(_mm_cvtps_epi32(v), zo);  // MXCSR default: round half to even
    }
    const __m128i w16 = _mm_packs_epi32(r[0], r[1]);  // values already inside the byte range
    const __m128i w8 = q.out_signed ? _mm_packs_epi16(w16, w16) : _mm_packus_epi16(w16, w16);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), w8);
  }
#elif defined(__ARM_NEON)
  const uint8x8_t fla = vdup_n_u8(q.fla), flb = vdup_n_u8(q.flb);
  const int32x4_t za = vdupq_n_s32(q.za), zb = vdupq_n_s32(q.zb), zo = vdupq_n_s32(q.zo);
  const float32x4_t fa = vdupq_n_f32(q.fa), fb = vdupq_n_f32(q.fb), lo = vdupq_n_f32(q.lo), hi = vdupq_n_f32(q.hi);
  for (; i + 8 <= n; i += 8) {
    const uint16x8_t va = vmovl_u8(veor_u8(vld1_u8(a + i), fla));
    const uint16x8_t vb = vmovl_u8(veor_u8(vld1_u8(b + i), flb));
    int32x4_t r[2];
    for (int h = 0; h < 2; ++h) {
      const int32x4_t a32 = vreinterpretq_s32_u32(vmovl_u16(h ? vget_high_u16(va) : vget_low_u16(va)));
      const int32x4_t b32 = vreinterpretq_s32_u32(vmovl_u16(h ? vget_high_u16(vb) : vget_low_u16(vb)));
      const float32x4_t pa = fp_barrier(vmulq_f32(vcvtq_f32_s32(vsubq_s32(a32, za)), fa));
      const float32x4_t pb = fp_barrier(vmulq_f32(vcvtq_f32_s32(vsubq_s32(b32, zb)), fb));
      const float32x4_t v = vminq_f32(vmaxq_f32(vaddq_f32(pa, pb), lo), hi);
      r[h] = vaddq_s32(vcvtnq_s32_f32(v), zo);  // round to nearest, ties to even
    }
    const int16x8_t w16 = vcombine_s16(vmovn_s32(r[0]), vmovn_s32(r[1]));  // inside the byte range
    const uint8x8_t w8 = q.out_signed ? vreinterpret_u8_s8(vmovn_s16(w16)) : vmovn_u16(vreinterpretq_u16_s16(w16));
    vst1_u8(out + i, w8);
  }
#endif
  for (; i < n; ++i) out[i] = add_one(q, a[i], b[i]);
}

}  // namespace mk
