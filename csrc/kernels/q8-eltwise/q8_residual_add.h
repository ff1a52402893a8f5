// The int8 residual add on byte codes, the one elementwise step of a quantized inverted residual
// (the fused block's epilogue and the standalone q8_add of unfused networks use this one loop):
//
//   out[i] = clamp(rne(f32(a[i] - za) * fa + f32(b[i] - zb) * fb) + zo, lo, hi)
//
// with each product and the sum rounded to fp32 as torch's separate ops round them (never an
// FMA), round half to even. Baseline ISA (see q8_requant8.h). add_one is the scalar reference
// the SIMD loop must match and the tail it shares.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/q8-eltwise/q8_requant8.h"

namespace mk {

// Signed bytes are flipped to uint8 (v ^ 0x80 = v + 128), their zero points shifted by 128, so
// one unsigned widening serves both dtypes; lo, hi are the output range minus zo.
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
  const Requant8 rq(q.lo, q.hi, q.zo, q.out_signed);
  const __m128i za = _mm_set1_epi32(q.za), zb = _mm_set1_epi32(q.zb);
  const __m128 fa = _mm_set1_ps(q.fa), fb = _mm_set1_ps(q.fb);
  for (; i + 8 <= n; i += 8) {
    __m128i a32[2], b32[2];
    widen8(a + i, q.fla, a32[0], a32[1]);
    widen8(b + i, q.flb, b32[0], b32[1]);
    __m128 v[2];
    for (int h = 0; h < 2; ++h) {
      const __m128 pa = fp_barrier(_mm_mul_ps(_mm_cvtepi32_ps(_mm_sub_epi32(a32[h], za)), fa));
      const __m128 pb = fp_barrier(_mm_mul_ps(_mm_cvtepi32_ps(_mm_sub_epi32(b32[h], zb)), fb));
      v[h] = _mm_add_ps(pa, pb);
    }
    rq.store(v[0], v[1], out + i);
  }
#elif defined(__ARM_NEON)
  const Requant8 rq(q.lo, q.hi, q.zo, q.out_signed);
  const int32x4_t za = vdupq_n_s32(q.za), zb = vdupq_n_s32(q.zb);
  const float32x4_t fa = vdupq_n_f32(q.fa), fb = vdupq_n_f32(q.fb);
  for (; i + 8 <= n; i += 8) {
    int32x4_t a32[2], b32[2];
    widen8(a + i, q.fla, a32[0], a32[1]);
    widen8(b + i, q.flb, b32[0], b32[1]);
    float32x4_t v[2];
    for (int h = 0; h < 2; ++h) {
      const float32x4_t pa = fp_barrier(vmulq_f32(vcvtq_f32_s32(vsubq_s32(a32[h], za)), fa));
      const float32x4_t pb = fp_barrier(vmulq_f32(vcvtq_f32_s32(vsubq_s32(b32[h], zb)), fb));
      v[h] = vaddq_f32(pa, pb);
    }
    rq.store(v[0], v[1], out + i);
  }
#endif
  for (; i < n; ++i) out[i] = add_one(q, a[i], b[i]);
}

}  // namespace mk
