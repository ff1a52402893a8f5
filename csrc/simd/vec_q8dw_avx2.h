// int8 depthwise traits for AVX2 (see kernels/q8-dwconv/q8_dwconv_simd.h). Exact: inputs are
// widened to int16 and taps are paired for VPMADDWD (x[t]*w[t] + x[t+1]*w[t+1] in int32).
// The in-lane unpack puts channels {0-3, 8-11} in one accumulator and {4-7, 12-15} in the
// other; VPACKSSDW of the two restores channel order for free at the end.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/q8-dwconv/q8_dwconv.h"

namespace mk {
namespace {

struct Q8DwAvx2 {
  static constexpr int64_t kPrepPerTap = 16;

  static __m256i ld16(const int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

  // Tap pair (t, t+1) of one 16-channel block -> unpacklo / unpackhi, stored at taps t, t+1.
  static void prepare(const int16_t* w, int64_t cpad, int64_t T, int16_t* out) {
    for (int64_t t = 0; t < T; t += 2) {
      const __m256i wa = ld16(w + t * cpad);
      const __m256i wb = t + 1 < T ? ld16(w + (t + 1) * cpad) : _mm256_setzero_si256();
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + t * 16), _mm256_unpacklo_epi16(wa, wb));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (t + 1) * 16), _mm256_unpackhi_epi16(wa, wb));
    }
  }

  // Accumulators hold channels {0-3, 8-11} and {4-7, 12-15}: store bias / scale that way.
  static void prepare_bs(const int32_t* bias, const float* scale, int32_t* ob, float* os) {
    static constexpr int kOrder[16] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};
    for (int i = 0; i < 16; ++i) ob[i] = bias[kOrder[i]], os[i] = scale[kOrder[i]];
  }

  template <bool Tail, bool XS>
  static __m256i load_x(const uint8_t* p, int64_t n) {
    __m128i v;
    if constexpr (Tail) {
      alignas(16) uint8_t tmp[16] = {};
      std::memcpy(tmp, p, static_cast<size_t>(n));
      v = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
    } else {
      v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    }
    return XS ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v);
  }

  static __m256i requant(__m256i acc, __m256 scale, const Q8DwconvParams& p) {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(p.y_lo)), _mm256_set1_ps(p.y_hi));
    return _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(p.y_zp));
  }

  template <int TC, bool Tail, bool XS>
  static void pixel(const uint8_t* const* taps, int64_t ntaps, int64_t c, int64_t n, const int16_t* w,
                    const int32_t* bias, const float* scale, const Q8DwconvParams& p, uint8_t* out) {
    const int64_t T = TC > 0 ? TC : ntaps;
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
    int64_t t = 0;
    for (; t + 1 < T; t += 2) {
      const __m256i xa = load_x<Tail, XS>(taps[t] + c, n), xb = load_x<Tail, XS>(taps[t + 1] + c, n);
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), ld16(w + t * 16)));
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), ld16(w + (t + 1) * 16)));
    }
    if (t < T) {  // odd tap count: the last tap's partner weight is zero
      const __m256i xa = load_x<Tail, XS>(taps[t] + c, n), z = _mm256_setzero_si256();
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, z), ld16(w + t * 16)));
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, z), ld16(w + (t + 1) * 16)));
    }
    lo = _mm256_add_epi32(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias)));  // 0-3, 8-11
    hi = _mm256_add_epi32(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + 8)));  // 4-7, 12-15
    const __m256i qlo = requant(lo, _mm256_loadu_ps(scale), p);
    const __m256i qhi = requant(hi, _mm256_loadu_ps(scale + 8), p);
    const __m256i v16 = _mm256_packs_epi32(qlo, qhi);  // channels 0..15 in order, exact int16
    const __m128i a = _mm256_castsi256_si128(v16), b = _mm256_extracti128_si256(v16, 1);
    const __m128i bytes = p.y_signed ? _mm_packs_epi16(a, b) : _mm_packus_epi16(a, b);
    if constexpr (Tail) {
      alignas(16) uint8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
      std::memcpy(out, tmp, static_cast<size_t>(n));
    } else {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
    }
  }
};

}  // namespace
}  // namespace mk
