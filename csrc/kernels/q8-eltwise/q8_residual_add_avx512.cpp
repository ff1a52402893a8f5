// The int8 residual add (q8_residual_add.h) 16 lanes at a time, AVX-512 (F + BW + VL), run by
// q8_add and the fused int8 inverted-residual block's epilogue where the active level reaches
// avx512 (q8_add_kernel, ops/q8_codec_op.cpp). The same operations per element in the same order as residual_add: widen, subtract
// the zero point, convert, multiply (rounded to fp32, never fused into an FMA: the asm barrier
// below), add, max(v, lo) (NaN -> lo), min(v, hi), round half to even (MXCSR default), + zo;
// the result is inside the byte range, so truncating to a byte is exact. The tail runs masked.
// No inline function of the shared headers is used here (only the AddQuant struct), so no
// AVX-512 instantiation of one can reach the baseline code through the linker.
#include <immintrin.h>

#include <cstdint>

#include "kernels/q8-eltwise/q8_residual_add.h"

namespace mk {
namespace {

inline __m512 keep(__m512 v) {
  asm("" : "+v"(v));  // the product is rounded on its own, as torch rounds it
  return v;
}

struct Add16 {
  __m512i za, zb, zo;
  __m512 fa, fb, lo, hi;
  __m128i fla, flb;
  explicit Add16(const AddQuant& q)
      : za(_mm512_set1_epi32(q.za)), zb(_mm512_set1_epi32(q.zb)), zo(_mm512_set1_epi32(q.zo)),
        fa(_mm512_set1_ps(q.fa)), fb(_mm512_set1_ps(q.fb)), lo(_mm512_set1_ps(q.lo)), hi(_mm512_set1_ps(q.hi)),
        fla(_mm_set1_epi8(static_cast<char>(q.fla))), flb(_mm_set1_epi8(static_cast<char>(q.flb))) {}
  __m128i run(__m128i a8, __m128i b8) const {
    const __m512i a32 = _mm512_cvtepu8_epi32(_mm_xor_si128(a8, fla));
    const __m512i b32 = _mm512_cvtepu8_epi32(_mm_xor_si128(b8, flb));
    const __m512 pa = keep(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a32, za)), fa));
    const __m512 pb = keep(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(b32, zb)), fb));
    const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(pa, pb), lo), hi);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), zo));
  }
};

}  // namespace

void q8_residual_add_avx512(const AddQuant& q, const uint8_t* a, const uint8_t* b, uint8_t* out, int64_t n) {
  const Add16 k(q);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {  // two independent blocks per iteration
    const __m128i r0 = k.run(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)),
                             _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
    const __m128i r1 = k.run(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 16)),
                             _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 16)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), r0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i + 16), r1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m128i r = k.run(_mm_maskz_loadu_epi8(m, a + i), _mm_maskz_loadu_epi8(m, b + i));
    _mm_mask_storeu_epi8(out + i, m, r);
  }
}

}  // namespace mk
