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
// 3x3 (dilation 1, stride 1 or 2 across, any stride down) runs in register blocks of up to 6
// output pixels: each input column's (row 0, row 1, row 2, -) group is interleaved once and
// serves every pixel of the block that reads it (three on stride 1). Interior pixels read the
// input rows directly, edge pixels (and whole rows of at most 18 pixels, in even blocks) through
// per-row tables of column pointers whose padding entries point at x_zp bytes. With 32 channels
// at stride 1 (MobileNetV2's first depthwise) two adjacent pixels share one 64-lane vector, the
// weights broadcast to both halves. Other shapes take the per-pixel path over a per-row
// indirection buffer (groups of four taps).
//
// Prepared data (per call, or ahead by q8_dwconv_avx512vnni_prepare): a 64-byte header (mode), then
// V vectors, each [nq + 3][16 bytes] over 16-channel quads q, so a block starting at any
// 16-aligned channel reads its four lanes contiguously: tap groups (per-pixel shapes: G * 4; 3x3:
// 12), bias (4), bias for signed x (4), scale (4); then (3x3) a row of x_zp bytes for padding rows.
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

// 3x3 shapes the register blocks take (every pixel of them: edges through column tables).
bool fast3x3(const Q8DwconvParams& p) {
  return p.KH == 3 && p.KW == 3 && p.DH == 1 && p.DW == 1 && (p.SW == 1 || p.SW == 2);
}

struct Prep {
  int64_t G, nqp, S, v3, vbias, vbias_s, vscale, V, zrow, total;
  bool f3;
  explicit Prep(const Q8DwconvParams& p) {
    const int64_t T = p.KH * p.KW;
    f3 = fast3x3(p);
    G = (T + 3) / 4;
    nqp = ceil_div(p.C, 16) + 3;
    S = nqp * 16;
    v3 = f3 ? 0 : G * 4;  // the per-pixel tap groups only where the per-pixel path runs
    vbias = v3 + (f3 ? 12 : 0);
    vbias_s = vbias + 4;
    vscale = vbias_s + 4;
    V = vscale + 4;
    zrow = kHeader + round_up(V * S, 64);
    total = zrow + (f3 ? round_up(p.W * p.C, 64) : 0);
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
    if (!l.f3)
      for (int64_t g = 0; g < l.G; ++g) put4(tap(4 * g), tap(4 * g + 1), tap(4 * g + 2), tap(4 * g + 3), vq + g * 4 * S, S);
    else
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
  // Dup (32 channels, two pixels per vector): the block's two quads in both halves.
  template <bool Dup>
  __m512i vec(int64_t i) const {
    if constexpr (Dup) return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i * S)));
    else return vec(i);
  }
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
template <bool Tail, bool Dup = false>
void finish(const __m512i (&acc)[4], const Blk& b, const Rq& q, uint8_t* out) {
  __m512i r[4];
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    const __m512 s = _mm512_castsi512_ps(b.vec<Dup>(b.vscale + k));
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

// Where a 3x3 block's input columns come from. Direct: interior columns, row pointers at the
// block's first column; column j at r[kh] + j * C (C: bytes per column). Table: per-row
// tables of column pointers (padding columns point at x_zp bytes), plus the channel offset.
struct Direct {
  const uint8_t* r[3];
  int64_t C;
  const uint8_t* at(int kh, int j) const { return r[kh] + j * C; }
  Direct shift(int64_t cols) const { return {{r[0] + cols * C, r[1] + cols * C, r[2] + cols * C}, C}; }
};
struct Table {
  const uint8_t* const* t[3];
  int64_t c;
  const uint8_t* at(int kh, int j) const { return t[kh][j] + c; }
  Table shift(int64_t cols) const { return {{t[0] + cols, t[1] + cols, t[2] + cols}, c}; }
};

// 3x3, stride SW (in columns of src) across, BW output pixels 64 channels wide (Dup: BW pairs
// of 32-channel pixels, SW 2 over 32-byte columns), output pixel i at out + i * ostride. Each
// input column's (row 0, row 1, row 2, -) group is interleaved once for every pixel reading it.
template <int BW, int SW, bool Tail, bool XS, bool Dup, class Src>
void block3x3(const Src& src, const Blk& b, const Rq& q, uint8_t* out, int64_t ostride) {
  __m512i acc[BW][4];
#pragma GCC unroll 8
  for (int i = 0; i < BW; ++i)
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) acc[i][k] = b.vec<Dup>(b.vbias + k);
#pragma GCC unroll 32
  for (int j = 0; j < (BW - 1) * SW + 3; ++j) {
    const __m512i x0 = load_x<Tail, XS>(src.at(0, j), b.m), x1 = load_x<Tail, XS>(src.at(1, j), b.m);
    const __m512i x2 = load_x<Tail, XS>(src.at(2, j), b.m);
    __m512i r[4];
    interleave4(x0, x1, x2, x2, r);  // the fourth byte has weight 0
#pragma GCC unroll 8
    for (int i = 0; i < BW; ++i) {
      const int kw = Dup ? j - 2 * i : j - i * SW;  // Dup: taps at 32-byte columns 2i .. 2i + 2
      if (kw < 0 || kw > 2) continue;
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) acc[i][k] = _mm512_dpbusd_epi32(acc[i][k], r[k], b.vec<Dup>(b.v3 + kw * 4 + k));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < BW; ++i) finish<Tail, Dup>(acc[i], b, q, out + i * ostride);
}

constexpr int kBW = 6;  // 3x3 pixels per register block (4 accumulators each)

// One block of n (1 .. kBW) pixels.
template <int SW, bool Tail, bool XS, bool Dup, class Src>
void block_n(int64_t n, const Src& s, const Blk& b, const Rq& q, uint8_t* o, int64_t ostride) {
  static_assert(kBW <= 8, "block_n covers blocks of up to 8 pixels");
  switch (n) {
    case 8: if constexpr (kBW >= 8) block3x3<8, SW, Tail, XS, Dup>(s, b, q, o, ostride); break;
    case 7: if constexpr (kBW >= 7) block3x3<7, SW, Tail, XS, Dup>(s, b, q, o, ostride); break;
    case 6: if constexpr (kBW >= 6) block3x3<6, SW, Tail, XS, Dup>(s, b, q, o, ostride); break;
    case 5: block3x3<5, SW, Tail, XS, Dup>(s, b, q, o, ostride); break;
    case 4: block3x3<4, SW, Tail, XS, Dup>(s, b, q, o, ostride); break;
    case 3: block3x3<3, SW, Tail, XS, Dup>(s, b, q, o, ostride); break;
    case 2: block3x3<2, SW, Tail, XS, Dup>(s, b, q, o, ostride); break;
    case 1: block3x3<1, SW, Tail, XS, Dup>(s, b, q, o, ostride); break;
    default: break;
  }
}

// Output pixels [0, n) from src in blocks of kBW (the rest as one narrower block).
template <int SW, bool Tail, bool XS, bool Dup, class Src>
void run3x3(const Src& src, int64_t n, const Blk& b, const Rq& q, uint8_t* out, int64_t ostride) {
  int64_t i = 0;
  for (; i + kBW <= n; i += kBW) block3x3<kBW, SW, Tail, XS, Dup>(src.shift(i * SW), b, q, out + i * ostride, ostride);
  if (i < n) block_n<SW, Tail, XS, Dup>(n - i, src.shift(i * SW), b, q, out + i * ostride, ostride);
}

// Output pixels [0, n) in ceil(n / kBW) blocks of near-equal size (short rows: 7 = 4 + 3, not
// 1 + 5 + 1 as edges plus interior, which interleaves 13 input columns instead of 11).
template <int SW, bool Tail, bool XS, class Src>
void run3x3_even(const Src& src, int64_t n, const Blk& b, const Rq& q, uint8_t* out, int64_t C) {
  const int64_t nb = (n + kBW - 1) / kBW, base = n / nb, extra = n % nb;
  for (int64_t k = 0, i = 0; k < nb; ++k) {
    const int64_t w = base + (k < extra ? 1 : 0);
    block_n<SW, Tail, XS, false>(w, src.shift(i * SW), b, q, out + i * C, C);
    i += w;
  }
}

// Short rows run every pixel through the column tables, in even blocks.
bool whole_row_table(const Q8DwconvParams& p) { return p.OW <= 3 * kBW && !(p.SW == 1 && p.C == 32); }

// One row of a 64-channel (or tail) block, 3x3: interior pixels [lo, hi) from the rows, the
// edge pixels through the column tables. C == 32 at stride 1: interior pixel pairs as one
// 64-lane vector (the two pixels' channels are adjacent in NHWC; weights duplicated).
template <int SW, bool Tail, bool XS>
void row3x3(const Q8DwconvParams& p, const Table& tab, const Direct& rows, int64_t lo, int64_t hi, const Blk& b,
            const Rq& q, uint8_t* y) {
  const int64_t C = p.C;
  if (whole_row_table(p)) return run3x3_even<SW, Tail, XS>(tab, p.OW, b, q, y, C);
  run3x3<SW, Tail, XS, false>(tab, lo, b, q, y, C);
  if constexpr (SW == 1 && Tail) {
    if (C == 32 && tab.c == 0 && b.m == 0xFFFFFFFFull) {  // the whole 32 channels (not a thread's half)
      const int64_t pairs = (hi - lo) / 2;
      run3x3<2, false, XS, true>(rows.shift(lo), pairs, b, q, y + lo * C, 2 * C);
      lo += 2 * pairs;
    }
  }
  run3x3<SW, Tail, XS, false>(rows.shift(lo * SW), hi - lo, b, q, y + lo * C, C);
  run3x3<SW, Tail, XS, false>(tab.shift(hi * SW), p.OW - hi, b, q, y + hi * C, C);
}

template <bool XS>
void rows(const Q8DwconvParams& p, const uint8_t* pb, int64_t row_begin, int64_t row_end, int64_t c_begin,
          int64_t c_end) {
  const Prep l(p);
  const int64_t T = p.KH * p.KW, T4 = l.G * 4;
  // Interior columns [ow_lo, ow_hi): every input column of the pixel inside the row.
  auto clamp = [&](int64_t v) { return v < 0 ? 0 : v > p.OW ? p.OW : v; };
  const int64_t ow_lo = clamp(p.PL <= 0 ? 0 : (p.PL + p.SW - 1) / p.SW);
  const int64_t last = p.W - 1 + p.PL - (p.KW - 1) * p.DW;
  const int64_t ow_hi = std::max(ow_lo, clamp(last < 0 ? 0 : last / p.SW + 1));
  const bool f3 = l.f3;
  // 3x3: per row, a table of the input columns (x_zp for padding) per kernel row; else the
  // per-pixel indirection buffer (groups of 4 taps; slots past T point at x_zp, weight 0).
  const int64_t ncols = (p.OW - 1) * p.SW + 3;
  thread_local std::vector<const uint8_t*> ind;
  const size_t need = static_cast<size_t>(f3 ? 3 * ncols : p.OW * T4);
  if (ind.size() < need) ind.resize(need);
  const uint8_t* vecs = pb + kHeader;
  const uint8_t* zrow = pb + l.zrow;
  const Rq q(p);
  std::optional<Q8LutAvx2> lut;
  if (p.lut) lut.emplace(p.lut);
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / p.OH, oh = r % p.OH;
    const uint8_t* img = p.x + n * p.H * p.W * p.C;
    const int64_t ih0 = oh * p.SH - p.PT;
    uint8_t* y = p.y + r * p.OW * p.C;
    if (f3) {
      Direct rows{{zrow, zrow, zrow}, p.C};  // at column -PL (only interior columns are read)
      Table tab{{&ind[0], &ind[ncols], &ind[2 * ncols]}, 0};
      const bool whole_row_table = mk::whole_row_table(p);
      for (int kh = 0; kh < 3; ++kh) {
        const int64_t ih = ih0 + kh;
        const bool in = ih >= 0 && ih < p.H;
        const uint8_t* row = in ? img + ih * p.W * p.C : zrow;
        rows.r[kh] = row - p.PL * p.C;
        const uint8_t** t = &ind[kh * ncols];
        auto cols = [&](int64_t j0, int64_t j1) {
          for (int64_t j = j0; j < j1; ++j) {
            const int64_t iw = j - p.PL;
            t[j] = in && iw >= 0 && iw < p.W ? row + iw * p.C : p.zero;
          }
        };
        if (whole_row_table) {
          cols(0, ncols);
        } else {  // only the edge pixels' columns (filling all cost ~10% of 112x112x32)
          cols(0, std::min(ncols, ow_lo * p.SW + 2));
          cols(std::max<int64_t>(0, ow_hi * p.SW), ncols);
        }
      }
      for (int64_t c = c_begin; c < c_end; c += 64) {
        const int64_t cn = std::min<int64_t>(64, c_end - c);
        const Blk b{vecs + c, l.S, XS ? l.vbias_s : l.vbias, l.vscale, l.v3,
                    cn == 64 ? ~__mmask64(0) : (__mmask64(1) << cn) - 1};
        Table tc = tab;
        tc.c = c;
        const Direct rc = rows.shift(0), rcc{{rc.r[0] + c, rc.r[1] + c, rc.r[2] + c}, p.C};
        if (p.SW == 1) {
          if (cn == 64) row3x3<1, false, XS>(p, tc, rcc, ow_lo, ow_hi, b, q, y + c);
          else row3x3<1, true, XS>(p, tc, rcc, ow_lo, ow_hi, b, q, y + c);
        } else {
          if (cn == 64) row3x3<2, false, XS>(p, tc, rcc, ow_lo, ow_hi, b, q, y + c);
          else row3x3<2, true, XS>(p, tc, rcc, ow_lo, ow_hi, b, q, y + c);
        }
      }
    } else {
      for (int64_t ow = 0; ow < p.OW; ++ow) {
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
      for (int64_t c = c_begin; c < c_end; c += 64) {
        const int64_t cn = std::min<int64_t>(64, c_end - c);
        const Blk b{vecs + c, l.S, XS ? l.vbias_s : l.vbias, l.vscale, l.v3,
                    cn == 64 ? ~__mmask64(0) : (__mmask64(1) << cn) - 1};
        if (cn == 64)
          for (int64_t ow = 0; ow < p.OW; ++ow) pixel<false, XS>(&ind[ow * T4], l.G, c, b, q, y + ow * p.C + c);
        else
          for (int64_t ow = 0; ow < p.OW; ++ow) pixel<true, XS>(&ind[ow * T4], l.G, c, b, q, y + ow * p.C + c);
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
