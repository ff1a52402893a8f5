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

  static constexpr bool kHas3x3s1 = true;
  static int64_t vert_offset(int64_t T) { return 16 * ((T + 1) / 2 * 2); }
  static int64_t prep_size(int64_t T) { return vert_offset(T) + (T == 9 ? 12 * 16 : 0); }

  // Tap pair (t, t+1) of one 16-channel block -> unpacklo / unpackhi, stored at taps t, t+1.
  // For 3x3 also the vertical pairs used by block3x3: per kw, (row 0, row 1) and (row 2, 0).
  static void prepare(const int16_t* w, int64_t cpad, int64_t T, int16_t* out) {
    auto st = [](int16_t* o, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), v); };
    for (int64_t t = 0; t < T; t += 2) {
      const __m256i wa = ld16(w + t * cpad);
      const __m256i wb = t + 1 < T ? ld16(w + (t + 1) * cpad) : _mm256_setzero_si256();
      st(out + t * 16, _mm256_unpacklo_epi16(wa, wb));
      st(out + (t + 1) * 16, _mm256_unpackhi_epi16(wa, wb));
    }
    if (T != 9) return;
    int16_t* v = out + vert_offset(T);
    const __m256i z = _mm256_setzero_si256();
    for (int kw = 0; kw < 3; ++kw) {
      const __m256i w0 = ld16(w + kw * cpad), w1 = ld16(w + (3 + kw) * cpad), w2 = ld16(w + (6 + kw) * cpad);
      st(v + (kw * 4 + 0) * 16, _mm256_unpacklo_epi16(w0, w1));
      st(v + (kw * 4 + 1) * 16, _mm256_unpackhi_epi16(w0, w1));
      st(v + (kw * 4 + 2) * 16, _mm256_unpacklo_epi16(w2, z));
      st(v + (kw * 4 + 3) * 16, _mm256_unpackhi_epi16(w2, z));
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

  // Requantization constants, read once per call site (stores through uint8_t* may alias p, so
  // reading them from p per pixel reloaded them after every store).
  struct Rq {
    __m256 hi;
    __m128i lo16, zp16;
    bool y_signed;
    explicit Rq(const Q8DwconvParams& p)
        : hi(_mm256_set1_ps(p.y_hi)),
          lo16(_mm_set1_epi16(static_cast<short>(p.y_lo))),
          zp16(_mm_set1_epi16(static_cast<short>(p.y_zp))),
          y_signed(p.y_signed) {}
  };

  // float(acc) * scale, min(hi) in fp32 (so the conversion cannot overflow upwards; a value
  // below the int32 range converts to INT_MIN, still below lo), round half to even (cvtps2dq),
  // then VPACKSSDW (saturating: order preserved) and max(lo) in int16: the same as clamping to
  // [lo, hi] before rounding, since lo and hi are integers.
  static __m256i requant(__m256i acc, __m256 scale, __m256 hi) {
    return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale), hi));
  }

  // block3x3's accumulators start from the bias; requantize, restore channel order, store 16
  // (or n) bytes.
  template <bool Tail>
  static void finish_rq(__m256i lo, __m256i hi, const float* scale, const Rq& q, uint8_t* out, int64_t n) {
    const __m256i qlo = requant(lo, _mm256_loadu_ps(scale), q.hi);
    const __m256i qhi = requant(hi, _mm256_loadu_ps(scale + 8), q.hi);
    const __m256i v16 = _mm256_packs_epi32(qlo, qhi);  // channels 0..15 in order, saturated int16
    __m128i a = _mm256_castsi256_si128(v16), b = _mm256_extracti128_si256(v16, 1);
    a = _mm_add_epi16(_mm_max_epi16(a, q.lo16), q.zp16);  // exact: in [y_min, y_max] now
    b = _mm_add_epi16(_mm_max_epi16(b, q.lo16), q.zp16);
    const __m128i bytes = q.y_signed ? _mm_packs_epi16(a, b) : _mm_packus_epi16(a, b);
    if constexpr (Tail) {
      alignas(16) uint8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
      std::memcpy(out, tmp, static_cast<size_t>(n));
    } else {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
    }
  }

  static __m256i bias_lo(const int32_t* bias) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias)); }
  static __m256i bias_hi(const int32_t* bias) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + 8)); }

  static __m256i requant_p(__m256i acc, __m256 scale, const Q8DwconvParams& p) {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(p.y_lo)), _mm256_set1_ps(p.y_hi));
    return _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(p.y_zp));
  }

  // Bias, requantize, restore channel order, store 16 (or n) bytes (per-pixel path).
  template <bool Tail>
  static void finish(__m256i lo, __m256i hi, const int32_t* bias, const float* scale, const Q8DwconvParams& p,
                     uint8_t* out, int64_t n) {
    lo = _mm256_add_epi32(lo, bias_lo(bias));  // 0-3, 8-11
    hi = _mm256_add_epi32(hi, bias_hi(bias));  // 4-7, 12-15
    const __m256i qlo = requant_p(lo, _mm256_loadu_ps(scale), p);
    const __m256i qhi = requant_p(hi, _mm256_loadu_ps(scale + 8), p);
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

  // 3x3, stride SW (1 or 2) across, dilation 1, BW output pixels of one row, 16 channels, all
  // columns inside the input. Taps are paired vertically (rows 0+1, row 2 + zero) so the
  // unpacked pair of one input column serves every output pixel that reads it: (BW-1)*SW + 3
  // columns are widened and unpacked once instead of 9 taps per pixel, the shuffle port being
  // the bottleneck.
  // r0, r1, r2: the three input rows at column ow - PL, channel c (a padding row points at a
  // row of x_zp bytes); C: channels per pixel.
  template <int BW, int SW, bool XS>
  static void block3x3(const uint8_t* r0, const uint8_t* r1, const uint8_t* r2, int64_t C, const int16_t* wv,
                       const int32_t* bias, const float* scale, const Q8DwconvParams& p, uint8_t* out) {
    const Rq q(p);
    __m256i lo[BW], hi[BW];
#pragma GCC unroll 8
    for (int i = 0; i < BW; ++i) lo[i] = bias_lo(bias), hi[i] = bias_hi(bias);
    const __m256i z = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int j = 0; j < (BW - 1) * SW + 3; ++j) {
      const __m256i x0 = load_x<false, XS>(r0 + j * C, 16), x1 = load_x<false, XS>(r1 + j * C, 16);
      const __m256i x2 = load_x<false, XS>(r2 + j * C, 16);
      const __m256i ulo = _mm256_unpacklo_epi16(x0, x1), uhi = _mm256_unpackhi_epi16(x0, x1);
      const __m256i slo = _mm256_unpacklo_epi16(x2, z), shi = _mm256_unpackhi_epi16(x2, z);
#pragma GCC unroll 8
      for (int i = 0; i < BW; ++i) {
        const int kw = j - i * SW;
        if (kw < 0 || kw > 2) continue;
        const int16_t* k = wv + kw * 4 * 16;
        lo[i] = _mm256_add_epi32(lo[i], _mm256_madd_epi16(ulo, ld16(k)));
        lo[i] = _mm256_add_epi32(lo[i], _mm256_madd_epi16(slo, ld16(k + 32)));
        hi[i] = _mm256_add_epi32(hi[i], _mm256_madd_epi16(uhi, ld16(k + 16)));
        hi[i] = _mm256_add_epi32(hi[i], _mm256_madd_epi16(shi, ld16(k + 48)));
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < BW; ++i) finish_rq<false>(lo[i], hi[i], scale, q, out + i * C, 16);
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
    finish<Tail>(lo, hi, bias, scale, p, out, n);
  }
};

}  // namespace
}  // namespace mk
