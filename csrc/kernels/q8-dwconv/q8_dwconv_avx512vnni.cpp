// int8 depthwise convolution, AVX512-VNNI: VPDPBUSD on four taps per channel, 64 channels per
// block (four zmm accumulators of 16 int32 lanes).
//
// VPDPBUSD multiplies u8 x s8 bytes in groups of four and adds them to int32 lanes, exact (no
// int16 saturation). The packed weights are w - w_zp in [-255, 255]; when every one of them fits
// int8 (symmetric int8 weights, uint8 weights with zero point 128: what quantize() makes) this
// path runs; otherwise the call goes to the AVX2 int16 kernel (exact for any weight). Signed
// activations are flipped to u8 (x ^ 0x80 = x + 128) and -128 * sum(w) is folded into the bias.
//
// Four taps of one channel must sit in one dword: two rounds of in-lane unpacks (bytes, then
// words) of four 64-byte tap vectors give R_k (k = 0..3) with dword i of 128-bit lane L =
// channel 16L + 4k + i. The weights, bias and scales are prepared in that order, and after
// requantization VPACKSSDW(R0, R1), VPACKSSDW(R2, R3) then VPACKUSWB restore channel order.
//
// 3x3 (dilation 1, stride 1 or 2 across, any stride down) interior pixels run in register blocks
// of BW pixels: each input column's (row 0, row 1, row 2, unused) group is interleaved once and
// serves every pixel of the block that reads it (three on stride 1). Every other pixel / shape
// takes the per-pixel path over a per-row indirection buffer (padding taps point at x_zp bytes).
//
// Prepared data (per call, or ahead by q8_dwconv_avx512vnni_prepare): a 64-byte header (mode), then
// V vectors, each [nq + 3][16 bytes] over 16-channel quads q, so a block starting at any
// 16-aligned channel reads its four lanes contiguously: generic tap groups (G * 4), 3x3 groups
// (12), bias (4), bias for signed x (4), scale (4); then a row of x_zp bytes for padding rows.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "kernels/q8-dwconv/q8_dwconv.h"
#include "kernels/q8-lut/q8_lut_avx2.h"

namespace mk {
namespace {

constexpr int64_t kHeader = 64;
enum : int64_t { kModeVnni = 0, kModeInt16 = 1 };

struct Prep {
  int64_t G, nqp, S, v3, vbias, vbias_s, vscale, V, zrow, total;
  explicit Prep(const Q8DwconvParams& p) {
    const int64_t T = p.KH * p.KW;
    G = (T + 3) / 4;
    nqp = ceil_div(p.C, 16) + 3;
    S = nqp * 16;
    v3 = G * 4;
    vbias = v3 + (T == 9 ? 12 : 0);
    vbias_s = vbias + 4;
    vscale = vbias_s + 4;
    V = vscale + 4;
    zrow = kHeader + round_up(V * S, 64);
    total = zrow + (T == 9 ? round_up(p.W * p.C, 64) : 0);
  }
};

bool weights_fit_s8(const Q8DwconvParams& p, int64_t c_begin, int64_t c_end) {
  const int64_t T = p.KH * p.KW, cpad = round_up(p.C, kQ8DwChannelBlock);
  __m256i mn = _mm256_setzero_si256(), mx = mn;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = c_begin / 16 * 16; c < c_end; c += 16) {  // the pack's channel padding is 0
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.w + t * cpad + c));
      mn = _mm256_min_epi16(mn, v);
      mx = _mm256_max_epi16(mx, v);
    }
  const __m256i out = _mm256_or_si256(_mm256_cmpgt_epi16(_mm256_set1_epi16(-128), mn),
                                      _mm256_cmpgt_epi16(mx, _mm256_set1_epi16(127)));
  return _mm256_testz_si256(out, out);
}

// Four 16-byte tap rows of one quad -> the quad's lanes of R0..R3 (as interleave4, one lane).
inline void put4(__m128i x0, __m128i x1, __m128i x2, __m128i x3, uint8_t* v0, int64_t S) {
  const __m128i a = _mm_unpacklo_epi8(x0, x1), b = _mm_unpackhi_epi8(x0, x1);
  const __m128i c = _mm_unpacklo_epi8(x2, x3), d = _mm_unpackhi_epi8(x2, x3);
  auto st = [&](int k, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(v0 + k * S), v); };
  st(0, _mm_unpacklo_epi16(a, c));
  st(1, _mm_unpackhi_epi16(a, c));
  st(2, _mm_unpacklo_epi16(b, d));
  st(3, _mm_unpackhi_epi16(b, d));
}

// Quads [q0, q1) of the vectors and the x_zp row. Weights must fit int8 (weights_fit_s8).
void fill(const Q8DwconvParams& p, const Prep& l, int64_t q0, int64_t q1, uint8_t* buf) {
  const int64_t T = p.KH * p.KW, cpad = round_up(p.C, kQ8DwChannelBlock), S = l.S;
  std::memset(buf, 0, static_cast<size_t>(kHeader));
  reinterpret_cast<int64_t*>(buf)[0] = kModeVnni;
  uint8_t* v = buf + kHeader;
  // The three quads after q1 read as zero (a block's lanes past c_end read them).
  const int64_t qz = std::min(q1 + 3, l.nqp);
  for (int64_t i = 0; i < l.V; ++i) std::memset(v + i * S + q1 * 16, 0, static_cast<size_t>((qz - q1) * 16));
  const __m128i z = _mm_setzero_si128();
  for (int64_t q = q0; q < q1; ++q) {
    const int16_t* wq = p.w + 16 * q;
    auto tap = [&](int64_t t) {  // 16 channels of tap t as bytes (vpmovwb: exact, they fit int8)
      return t < T ? _mm256_cvtepi16_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq + t * cpad))) : z;
    };
    uint8_t* vq = v + q * 16;
    __m512i sum = _mm512_setzero_si512();
    for (int64_t t = 0; t < T; ++t)
      sum = _mm512_add_epi32(sum, _mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq + t * cpad))));
    for (int64_t g = 0; g < l.G; ++g) put4(tap(4 * g), tap(4 * g + 1), tap(4 * g + 2), tap(4 * g + 3), vq + g * 4 * S, S);
    if (T == 9)
      for (int kw = 0; kw < 3; ++kw) put4(tap(kw), tap(3 + kw), tap(6 + kw), z, vq + (l.v3 + kw * 4) * S, S);
    // Bias, scale: lanes of R_k are channels 16q + 4k .. + 3, four contiguous channels.
    const __m512i b = _mm512_loadu_si512(p.bias + 16 * q);
    alignas(64) int32_t bs[16];
    _mm512_store_si512(bs, _mm512_sub_epi32(b, _mm512_slli_epi32(sum, 7)));  // wrapping, as the scalar
    for (int k = 0; k < 4; ++k) {
      std::memcpy(vq + (l.vbias + k) * S, p.bias + 16 * q + 4 * k, 16);
      std::memcpy(vq + (l.vbias_s + k) * S, bs + 4 * k, 16);
      std::memcpy(vq + (l.vscale + k) * S, p.scale + 16 * q + 4 * k, 16);
    }
  }
  if (l.total > l.zrow) std::memset(buf + l.zrow, p.zero[0], static_cast<size_t>(p.W * p.C));
}

// Requantization constants, read once per call site (stores through uint8_t* may alias p).
struct Rq {
  __m512 hi;
  __m512i lo16, zp16;
  bool y_signed;
  explicit Rq(const Q8DwconvParams& p)
      : hi(_mm512_set1_ps(p.y_hi)),
        lo16(_mm512_set1_epi16(static_cast<short>(p.y_lo))),
        zp16(_mm512_set1_epi16(static_cast<short>(p.y_zp))),
        y_signed(p.y_signed) {}
};

// The per-block view of the prepared vectors: vector i's 64 bytes for this block at w + i * S.
struct Blk {
  const uint8_t* w;
  int64_t S;
  int64_t vbias, vscale, v3;
  __mmask64 m;  // channel bytes of this block
  __m512i vec(int64_t i) const { return _mm512_loadu_si512(w + i * S); }
};

template <bool Tail, bool XS>
__m512i load_x(const uint8_t* p, __mmask64 m) {
  __m512i v = Tail ? _mm512_maskz_loadu_epi8(m, p) : _mm512_loadu_si512(p);
  return XS ? _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80))) : v;
}

// Four tap vectors -> R0..R3 (dword i of lane L = channel 16L + 4k + i, bytes = taps 0..3).
inline void interleave4(__m512i x0, __m512i x1, __m512i x2, __m512i x3, __m512i (&r)[4]) {
  const __m512i a = _mm512_unpacklo_epi8(x0, x1), b = _mm512_unpackhi_epi8(x0, x1);
  const __m512i c = _mm512_unpacklo_epi8(x2, x3), d = _mm512_unpackhi_epi8(x2, x3);
  r[0] = _mm512_unpacklo_epi16(a, c);
  r[1] = _mm512_unpackhi_epi16(a, c);
  r[2] = _mm512_unpacklo_epi16(b, d);
  r[3] = _mm512_unpackhi_epi16(b, d);
}

// float(acc) * scale, min(hi) in fp32, round half to even (cvtps2dq), saturating packs (order
// preserved), max(lo) and + zp in int16: the same as clamping to [lo, hi] before rounding.
template <bool Tail>
void finish(const __m512i (&acc)[4], const Blk& b, const Rq& q, uint8_t* out) {
  __m512i r[4];
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    const __m512 s = _mm512_castsi512_ps(b.vec(b.vscale + k));
    r[k] = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[k]), s), q.hi));
  }
  __m512i lo = _mm512_packs_epi32(r[0], r[1]), hi = _mm512_packs_epi32(r[2], r[3]);
  lo = _mm512_add_epi16(_mm512_max_epi16(lo, q.lo16), q.zp16);
  hi = _mm512_add_epi16(_mm512_max_epi16(hi, q.lo16), q.zp16);
  const __m512i bytes = q.y_signed ? _mm512_packs_epi16(lo, hi) : _mm512_packus_epi16(lo, hi);
  if (Tail) _mm512_mask_storeu_epi8(out, b.m, bytes);
  else _mm512_storeu_si512(out, bytes);
}

// One pixel, any taps: groups of four tap pointers (slots past T point at x_zp, weight 0).
template <bool Tail, bool XS>
void pixel(const uint8_t* const* taps, int64_t G, int64_t c, const Blk& b, const Rq& q, uint8_t* out) {
  __m512i acc[4];
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) acc[k] = b.vec(b.vbias + k);
  for (int64_t g = 0; g < G; ++g, taps += 4) {
    __m512i r[4];
    interleave4(load_x<Tail, XS>(taps[0] + c, b.m), load_x<Tail, XS>(taps[1] + c, b.m),
                load_x<Tail, XS>(taps[2] + c, b.m), load_x<Tail, XS>(taps[3] + c, b.m), r);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], r[k], b.vec(g * 4 + k));
  }
  finish<Tail>(acc, b, q, out);
}

// 3x3, stride SW across, BW output pixels, all columns inside the input. r0..r2: the three
// input rows (or the x_zp row) at the block's first input column and channel c.
template <int BW, int SW, bool Tail, bool XS>
void block3x3(const uint8_t* r0, const uint8_t* r1, const uint8_t* r2, int64_t C, const Blk& b, const Rq& q,
              uint8_t* out) {
  __m512i acc[BW][4];
#pragma GCC unroll 8
  for (int i = 0; i < BW; ++i)
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) acc[i][k] = b.vec(b.vbias + k);
#pragma GCC unroll 16
  for (int j = 0; j < (BW - 1) * SW + 3; ++j) {
    const __m512i x0 = load_x<Tail, XS>(r0 + j * C, b.m), x1 = load_x<Tail, XS>(r1 + j * C, b.m);
    const __m512i x2 = load_x<Tail, XS>(r2 + j * C, b.m);
    __m512i r[4];
    interleave4(x0, x1, x2, x2, r);  // the fourth byte has weight 0
#pragma GCC unroll 8
    for (int i = 0; i < BW; ++i) {
      const int kw = j - i * SW;
      if (kw < 0 || kw > 2) continue;
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) acc[i][k] = _mm512_dpbusd_epi32(acc[i][k], r[k], b.vec(b.v3 + kw * 4 + k));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < BW; ++i) finish<Tail>(acc[i], b, q, out + i * C);
}

constexpr int kBW = 4;  // 3x3 pixels per register block

template <int SW, bool Tail, bool XS>
void row3x3(const uint8_t* const (&rp)[3], int64_t o, int64_t ow, int64_t ow_hi, const Blk& b, const Rq& q,
            int64_t C, uint8_t* y) {
  for (; ow + kBW <= ow_hi; ow += kBW) {
    const int64_t x = o + ow * SW * C;
    block3x3<kBW, SW, Tail, XS>(rp[0] + x, rp[1] + x, rp[2] + x, C, b, q, y + ow * C);
  }
  const int64_t x = o + ow * SW * C;
  switch (ow_hi - ow) {
    case 3: block3x3<3, SW, Tail, XS>(rp[0] + x, rp[1] + x, rp[2] + x, C, b, q, y + ow * C); break;
    case 2: block3x3<2, SW, Tail, XS>(rp[0] + x, rp[1] + x, rp[2] + x, C, b, q, y + ow * C); break;
    case 1: block3x3<1, SW, Tail, XS>(rp[0] + x, rp[1] + x, rp[2] + x, C, b, q, y + ow * C); break;
    default: break;
  }
}

template <bool Tail, bool XS>
void row3x3_sw(int64_t SW, const uint8_t* const (&rp)[3], int64_t o, int64_t ow, int64_t ow_hi, const Blk& b,
               const Rq& q, int64_t C, uint8_t* y) {
  if (SW == 1) row3x3<1, Tail, XS>(rp, o, ow, ow_hi, b, q, C, y);
  else row3x3<2, Tail, XS>(rp, o, ow, ow_hi, b, q, C, y);
}

template <bool XS>
void rows(const Q8DwconvParams& p, const uint8_t* pb, int64_t row_begin, int64_t row_end, int64_t c_begin,
          int64_t c_end) {
  const Prep l(p);
  const int64_t T = p.KH * p.KW, T4 = l.G * 4;
  thread_local std::vector<const uint8_t*> ind;
  if (ind.size() < static_cast<size_t>(p.OW * T4)) ind.resize(static_cast<size_t>(p.OW * T4));
  // Interior columns [ow_lo, ow_hi): every input column of the pixel inside the row.
  auto clamp = [&](int64_t v) { return v < 0 ? 0 : v > p.OW ? p.OW : v; };
  const int64_t ow_lo = clamp(p.PL <= 0 ? 0 : (p.PL + p.SW - 1) / p.SW);
  const int64_t last = p.W - 1 + p.PL - (p.KW - 1) * p.DW;
  const int64_t ow_hi = std::max(ow_lo, clamp(last < 0 ? 0 : last / p.SW + 1));
  const bool fast3x3 = p.KH == 3 && p.KW == 3 && p.DH == 1 && p.DW == 1 && (p.SW == 1 || p.SW == 2);
  const uint8_t* zrow = pb + l.zrow;
  const uint8_t* vecs = pb + kHeader;
  const Rq q(p);
  std::optional<Q8LutAvx2> lut;
  if (p.lut) lut.emplace(p.lut);
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / p.OH, oh = r % p.OH;
    const uint8_t* img = p.x + n * p.H * p.W * p.C;
    const int64_t ih0 = oh * p.SH - p.PT;
    const uint8_t* rp[3] = {zrow, zrow, zrow};
    if (fast3x3)
      for (int kh = 0; kh < 3; ++kh)
        if (ih0 + kh >= 0 && ih0 + kh < p.H) rp[kh] = img + (ih0 + kh) * p.W * p.C;
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      if (fast3x3 && ow == ow_lo && ow_hi > ow_lo) ow = ow_hi;
      if (ow >= p.OW) break;
      const uint8_t** t = &ind[ow * T4];
      for (int64_t kh = 0; kh < p.KH; ++kh) {
        const int64_t ih = ih0 + kh * p.DH;
        for (int64_t kw = 0; kw < p.KW; ++kw) {
          const int64_t iw = ow * p.SW - p.PL + kw * p.DW;
          const bool inside = ih >= 0 && ih < p.H && iw >= 0 && iw < p.W;
          t[kh * p.KW + kw] = inside ? img + (ih * p.W + iw) * p.C : p.zero;
        }
      }
      for (int64_t i = T; i < T4; ++i) t[i] = p.zero;
    }
    uint8_t* y = p.y + r * p.OW * p.C;
    for (int64_t c = c_begin; c < c_end; c += 64) {
      const int64_t cn = std::min<int64_t>(64, c_end - c);
      const Blk b{vecs + c, l.S, XS ? l.vbias_s : l.vbias, l.vscale, l.v3,
                  cn == 64 ? ~__mmask64(0) : (__mmask64(1) << cn) - 1};
      auto pixels = [&](int64_t from, int64_t to) {
        if (cn == 64)
          for (int64_t ow = from; ow < to; ++ow) pixel<false, XS>(&ind[ow * T4], l.G, c, b, q, y + ow * p.C + c);
        else
          for (int64_t ow = from; ow < to; ++ow) pixel<true, XS>(&ind[ow * T4], l.G, c, b, q, y + ow * p.C + c);
      };
      if (fast3x3 && ow_hi > ow_lo) {
        pixels(0, ow_lo);
        const int64_t o = c - p.PL * p.C;  // column ow * SW - PL, channel c: o + ow * SW * C
        if (cn == 64) row3x3_sw<false, XS>(p.SW, rp, o, ow_lo, ow_hi, b, q, p.C, y + c);
        else row3x3_sw<true, XS>(p.SW, rp, o, ow_lo, ow_hi, b, q, p.C, y + c);
        pixels(ow_hi, p.OW);
      } else {
        pixels(0, p.OW);
      }
    }
    if (lut) {
      if (c_begin == 0 && c_end == p.C) lut->apply(y, p.OW * p.C);
      else
        for (int64_t ow = 0; ow < p.OW; ++ow) lut->apply(y + ow * p.C + c_begin, c_end - c_begin);
    }
  }
}

}  // namespace

int64_t q8_dwconv_avx512vnni_prepare(const Q8DwconvParams& p, void* out) {
  auto* buf = static_cast<uint8_t*>(out);
  if (!weights_fit_s8(p, 0, p.C)) {  // the int16 kernel's preparation behind the header
    const int64_t bytes = kHeader + q8_dwconv_avx2_prepare(p, nullptr);
    if (buf) {
      std::memset(buf, 0, static_cast<size_t>(kHeader));
      reinterpret_cast<int64_t*>(buf)[0] = kModeInt16;
      q8_dwconv_avx2_prepare(p, buf + kHeader);
    }
    return bytes;
  }
  const Prep l(p);
  if (buf) fill(p, l, 0, ceil_div(p.C, 16), buf);
  return l.total;
}

void q8_dwconv_avx512vnni(const Q8DwconvParams& p, int64_t row_begin, int64_t row_end, int64_t c_begin,
                          int64_t c_end) {
  const auto* pb = static_cast<const uint8_t*>(p.prepared);
  std::unique_ptr<uint8_t[]> own;
  if (pb) {
    if (reinterpret_cast<const int64_t*>(pb)[0] == kModeInt16) {
      Q8DwconvParams p2 = p;
      p2.prepared = pb + kHeader;
      return q8_dwconv_avx2(p2, row_begin, row_end, c_begin, c_end);
    }
  } else {
    if (!weights_fit_s8(p, c_begin, c_end)) return q8_dwconv_avx2(p, row_begin, row_end, c_begin, c_end);
    const Prep l(p);
    own.reset(new uint8_t[static_cast<size_t>(l.total) + 64]);
    uint8_t* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(own.get()) + 63) & ~uintptr_t(63));
    fill(p, l, c_begin / 16, ceil_div(c_end, 16), a);
    pb = a;
  }
  if (p.x_signed) rows<true>(p, pb, row_begin, row_end, c_begin, c_end);
  else rows<false>(p, pb, row_begin, row_end, c_begin, c_end);
}

}  // namespace mk
