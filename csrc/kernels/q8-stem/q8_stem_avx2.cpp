// AVX2 stem kernels. Quantization: 8 floats per channel per step (vdivps: the same rounded
// quotient as the scalar division), clamp, round half to even (vcvtps2dq in the default MXCSR
// mode); three channels (RGB) interleaved into 24 NHWC bytes with two byte shuffles. im2col:
// each kernel row's taps are one 16-byte load, placed by vpshufb (both 16-byte output halves at
// once, one per ymm lane); border pixels take the scalar gather.
#include <immintrin.h>

#include <algorithm>

#include "kernels/q8-stem/q8_stem.h"
#include "kernels/q8-stem/q8_stem_common.h"

namespace mk {
namespace {

struct Quant8 {
  __m256 s, lo, hi;
  __m256i zp;
  Quant8(float scale, int32_t z)
      : s(_mm256_set1_ps(scale)), lo(_mm256_set1_ps(-static_cast<float>(z))),
        hi(_mm256_set1_ps(255.f - static_cast<float>(z))), zp(_mm256_set1_epi32(z)) {}
  // 8 floats -> 8 codes as int32 (max(v, lo) is lo for NaN v: the second operand)
  __m256i codes(const float* p) const {
    const __m256 v = _mm256_div_ps(_mm256_loadu_ps(p), s);
    return _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi)), zp);
  }
};

// 8 int32 codes of a and of b -> 16 bytes [a0..a7, b0..b7] (values already in 0..255)
inline __m128i bytes16(__m256i a, __m256i b) {
  const __m128i a16 = _mm_packs_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
  const __m128i b16 = _mm_packs_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
  return _mm_packus_epi16(a16, b16);
}

void quantize_rgb(const float* x, int64_t W, int64_t sC, const Quant8& q, int64_t& w, uint8_t* y) {
  // output byte o = 3 * w + c: from ab (c = 0: lane w, c = 1: lane 8 + w) or from cc (c = 2: lane w)
  alignas(16) uint8_t m[4][16];
  for (int o = 0; o < 24; ++o) {
    const int px = o / 3, c = o % 3, v = o / 16, lane = o % 16;
    m[2 * v][lane] = c < 2 ? static_cast<uint8_t>(8 * c + px) : uint8_t{0x80};
    m[2 * v + 1][lane] = c == 2 ? static_cast<uint8_t>(px) : uint8_t{0x80};
  }
  for (int lane = 8; lane < 16; ++lane) m[2][lane] = m[3][lane] = 0x80;
  const __m128i m_ab0 = _mm_load_si128(reinterpret_cast<const __m128i*>(m[0]));
  const __m128i m_cc0 = _mm_load_si128(reinterpret_cast<const __m128i*>(m[1]));
  const __m128i m_ab1 = _mm_load_si128(reinterpret_cast<const __m128i*>(m[2]));
  const __m128i m_cc1 = _mm_load_si128(reinterpret_cast<const __m128i*>(m[3]));
  for (; w + 8 <= W; w += 8) {
    const __m128i ab = bytes16(q.codes(x + w), q.codes(x + sC + w));
    const __m256i c = q.codes(x + 2 * sC + w);
    const __m128i cc = bytes16(c, c);
    const __m128i o0 = _mm_or_si128(_mm_shuffle_epi8(ab, m_ab0), _mm_shuffle_epi8(cc, m_cc0));
    const __m128i o1 = _mm_or_si128(_mm_shuffle_epi8(ab, m_ab1), _mm_shuffle_epi8(cc, m_cc1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 3 * w), o0);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + 3 * w + 16), o1);
  }
}

}  // namespace

void q8_quantize_row_avx2(const float* x, int64_t C, int64_t W, int64_t sC, float scale, int32_t zp, uint8_t* y) {
  const Quant8 q(scale, zp);
  int64_t w = 0;
  if (C == 3) {
    quantize_rgb(x, W, sC, q, w, y);
  } else {
    for (; w + 8 <= W; w += 8)
      for (int64_t c = 0; c < C; ++c) {
        alignas(16) uint8_t b[16];
        const __m256i v = q.codes(x + c * sC + w);
        _mm_store_si128(reinterpret_cast<__m128i*>(b), bytes16(v, v));
        for (int k = 0; k < 8; ++k) y[(w + k) * C + c] = b[k];
      }
  }
  const float z = static_cast<float>(zp);
  for (; w < W; ++w)
    for (int64_t c = 0; c < C; ++c) y[w * C + c] = stem_quantize_one(x[c * sC + w], scale, z);
}

void q8_im2col_row_avx2(const Q8Im2colParams& p, const uint8_t* x, int64_t n, int64_t oh, uint8_t* y) {
  const int64_t K = p.K();
  if (!stem_im2col_simd_ok(p) || p.kh > 32) {
    for (int64_t ow = 0; ow < p.OW; ++ow) stem_im2col_pixel(p, x, n, oh, ow, y + ow * K);
    return;
  }
  alignas(32) uint8_t mask[32][2][16];
  stem_im2col_masks(p, mask);
  const uint8_t* rows[32];  // kernel row i's input row, or nullptr in the vertical padding
  for (int64_t i = 0; i < p.kh; ++i) {
    const int64_t ih = oh * p.sh - p.pt + i * p.dh;
    rows[i] = ih >= 0 && ih < p.H ? x + (n * p.H + ih) * p.W * p.C : nullptr;
  }
  const __m256i padv = _mm256_set1_epi8(static_cast<char>(p.pad));
  const int64_t C = p.C, sw = p.sw, pl = p.pl, OW = p.OW, W = p.W;
  // pixels whose kernel rows are single 16-byte loads inside the input row: ow in [ow0, ow1)
  int64_t ow0 = (pl + sw - 1) / sw, ow1 = W * C >= 16 ? ((W * C - 16) / C + pl) / sw + 1 : 0;
  ow0 = std::min(ow0, OW);
  ow1 = std::max(ow0, std::min(ow1, OW));
  for (int64_t ow = 0; ow < ow0; ++ow) stem_im2col_pixel(p, x, n, oh, ow, y + ow * K);
  const bool all_rows = std::all_of(rows, rows + p.kh, [](const uint8_t* r) { return r != nullptr; });
  if (p.kh == 3 && all_rows) {  // the stem's interior rows: masks in registers, no per-row tests
    const __m256i m0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(mask[0]));
    const __m256i m1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(mask[1]));
    const __m256i m2 = _mm256_load_si256(reinterpret_cast<const __m256i*>(mask[2]));
    const uint8_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
    for (int64_t ow = ow0; ow < ow1; ++ow) {
      const int64_t off = (ow * sw - pl) * C;
      const __m256i a = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(
                                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + off))), m0);
      const __m256i b = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(
                                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(r1 + off))), m1);
      const __m256i c = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(
                                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(r2 + off))), m2);
      const __m256i acc = _mm256_or_si256(_mm256_or_si256(a, b), c);
      uint8_t* py = y + ow * K;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(py), _mm256_castsi256_si128(acc));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(py + K - 16), _mm256_extracti128_si256(acc, 1));
    }
  } else {
    for (int64_t ow = ow0; ow < ow1; ++ow) {
      const int64_t off = (ow * sw - pl) * C;
      __m256i acc = _mm256_setzero_si256();
      for (int64_t i = 0; i < p.kh; ++i) {
        const __m256i r = rows[i] ? _mm256_broadcastsi128_si256(
                                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[i] + off)))
                                  : padv;
        acc = _mm256_or_si256(acc,
                              _mm256_shuffle_epi8(r, _mm256_load_si256(reinterpret_cast<const __m256i*>(mask[i]))));
      }
      uint8_t* py = y + ow * K;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(py), _mm256_castsi256_si128(acc));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(py + K - 16), _mm256_extracti128_si256(acc, 1));
    }
  }
  for (int64_t ow = ow1; ow < OW; ++ow) stem_im2col_pixel(p, x, n, oh, ow, y + ow * K);
}

}  // namespace mk
