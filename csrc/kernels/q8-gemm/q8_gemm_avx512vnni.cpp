// int8 pointwise GEMM, avx512vnni path (compiled with the avx512vnni flags only, by file-name
// suffix in cmake/kernels.cmake).
//
// VPDPBUSD zmm runs two per cycle with ~5 cycles latency on Sapphire Rapids (~607 GOP/s per core
// register-resident, GUIDE section 4), so a tile needs >= 10 independent accumulators; the shared
// tiling's 8 x 16 tile (one zmm per row) left the kernel latency-bound. Here a tile spans V packed 16-column blocks:
//   V = 3: 8 rows x 48 columns, V = 2: 12 x 32, V = 1: 16 x 16  (24, 24, 16 accumulators)
// plus V weight vectors and one broadcast: no spills (checked in the objdump). Per 4-k step a
// tile does V weight loads and MR 4-byte broadcast loads for MR * V VPDPBUSD.
//
// Activations are first copied into a panel that makes every broadcast one fixed offset from a
// single pointer: rows in groups of kRowGroup, and inside a group [k/4][kRowGroup rows][4 bytes],
// with the domain flip (int8 activations -> uint8) applied and K zero-padded to a multiple of 4
// (the pack's padding weights are zero). Any MR dividing kRowGroup reads the same panel.
//
// Loop order: row chunk (panel <= kPanelBytes, L2) > column tile (its V blocks of weights,
// kpad * 16 * V bytes, stay in L1) > row tiles. The requantization runs from registers; an
// activation table, when given, is applied per finished chunk (L2-hot) with the AVX2 lookup.
// Results are bit-identical to the scalar reference (same fp32 operations, round half to even).
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "kernels/q8-gemm/q8_gemm.h"
#include "kernels/q8-lut/q8_lut_avx2.h"
#include "simd/vec_q8_avx512vnni.h"

namespace mk {
namespace {

constexpr int64_t kRowGroup = 48;            // lcm of the tiles' row counts (8, 12, 16)
constexpr int64_t kPanelBytes = 256 * 1024;  // activation panel per row chunk (L2-resident)

// 16 rows x 64 bytes (16 groups of 4 k) -> 16 vectors, vector g = group g of the 16 rows: a
// 16 x 16 transpose of 32-bit elements (unpack 32, unpack 64, two 128-bit lane shuffles).
// Stores groups [0, ng) at out + g * kRowGroup * 4.
inline void transpose16(__m512i (&r)[16], uint8_t* out, int64_t ng) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // u[c][i] = r[4 i + c]: 128-bit lane L holds rows 4i..4i+3 of group 4L + c.
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i a = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x44), b = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xEE);
    const __m512i e = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x44), f = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xEE);
    const __m512i o[4] = {_mm512_shuffle_i32x4(a, e, 0x88), _mm512_shuffle_i32x4(a, e, 0xDD),
                          _mm512_shuffle_i32x4(b, f, 0x88), _mm512_shuffle_i32x4(b, f, 0xDD)};
    for (int L = 0; L < 4; ++L)
      if (4 * L + c < ng) _mm512_storeu_si512(out + (4 * L + c) * kRowGroup * 4, o[L]);
  }
}

// 16 rows x 32 bytes (8 groups of 4 k), rows r and r + 8 in the two halves of z[r] -> groups
// [0, ng) as in transpose16, in 24 shuffles instead of 64: the whole row at K <= 32 (the expand
// convs of the first blocks, where packing is a large share of the work) and the last step of
// longer rows when it has at most 8 groups.
inline void transpose16x8(__m512i (&z)[8], uint8_t* out, int64_t ng) {
  __m512i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(z[2 * i], z[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(z[2 * i], z[2 * i + 1]);
  }
  // u[4 i + c], 128-bit lane L: rows 4 i..4 i+3 (+8 in lanes 2, 3) of group 4 (L % 2) + c.
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  const __m512i half[2] = {_mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15)};
  for (int h = 0; h < 2; ++h)
    for (int c = 0; c < 4; ++c)
      if (4 * h + c < ng)
        _mm512_storeu_si512(out + (4 * h + c) * kRowGroup * 4, _mm512_permutex2var_epi64(u[c], half[h], u[4 + c]));
}

// rows [m0, m0 + rows) of x -> panel (see above), 16 rows at a time (rows past the end read as
// zeros: their slots exist in the panel and no tile reads them), 64 k per step (masked loads: no
// byte read past a row; the last 4-k group zero-padded).
template <bool Flip>
void pack_rows_flip(const Q8GemmParams& p, int64_t m0, int64_t rows, int64_t kpad, uint8_t* panel) {
  const __m512i vflip = _mm512_set1_epi32(static_cast<int>(p.x_flip));
  const int64_t K = p.K, groups = kpad / 4;
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    const int nr = rows - r0 < 16 ? static_cast<int>(rows - r0) : 16;
    uint8_t* out = panel + (r0 / kRowGroup) * kRowGroup * kpad + (r0 % kRowGroup) * 4;
    const uint8_t* x = p.x + (m0 + r0) * K;
    for (int64_t k = 0; k < K; k += 64, out += 16 * kRowGroup * 4) {
      const int64_t n = K - k < 64 ? K - k : 64, ng = groups - k / 4 < 16 ? groups - k / 4 : 16;
      if (n > 32) {
        const __mmask64 mask = n == 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
        __m512i r[16];
        for (int i = 0; i < 16; ++i) {
          r[i] = i < nr ? _mm512_maskz_loadu_epi8(mask, x + i * K + k) : _mm512_setzero_si512();
          if constexpr (Flip) r[i] = _mm512_xor_si512(r[i], vflip);
        }
        transpose16(r, out, ng);
      } else {
        const __mmask32 mask = n == 32 ? ~__mmask32(0) : (__mmask32(1) << n) - 1;
        __m512i z[8];
        for (int i = 0; i < 8; ++i) {
          const __m256i lo = i < nr ? _mm256_maskz_loadu_epi8(mask, x + i * K + k) : _mm256_setzero_si256();
          const __m256i hi = i + 8 < nr ? _mm256_maskz_loadu_epi8(mask, x + (i + 8) * K + k) : _mm256_setzero_si256();
          z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
          if constexpr (Flip) z[i] = _mm512_xor_si512(z[i], vflip);
        }
        transpose16x8(z, out, ng);
      }
    }
  }
}

// The flip (int8 activations) as a compile-time choice: one XOR per loaded vector less otherwise.
void pack_rows(const Q8GemmParams& p, int64_t m0, int64_t rows, int64_t kpad, uint8_t* panel) {
  if (p.x_flip) pack_rows_flip<true>(p, m0, rows, kpad, panel);
  else pack_rows_flip<false>(p, m0, rows, kpad, panel);
}

// Requantization of up to 4 rows x 16 columns at once, bit-identical to the scalar reference:
// float(acc) * scale, min(hi) in fp32 (so the conversion cannot overflow upwards; far below the
// int32 range it gives INT_MIN, still below lo), round half to even (cvtps2dq, default MXCSR),
// then two rows per VPACKSSDW (saturating, order-preserving: max(lo) after it equals clamping
// before rounding), + zero point in int16 (exact), 4 rows per VPACKUSWB / VPACKSSWB (the values
// already lie in the output dtype) and one VPERMD back to row order. Per 16 outputs that is 4
// conversions/multiplies plus ~1.5 shuffles/int16 ops, where a VPMOVDB per row costs 2 shuffles
// alone: the epilogue is most of the work at K = 16-32.
struct Epilogue {
  __m512 hi;
  __m512i lo16, zp16, order;
  bool nonneg;  // output range >= 0: unsigned saturation packs it (uint8), else signed (int8)
  explicit Epilogue(const Q8GemmParams& p)
      : hi(_mm512_set1_ps(p.y_hi)),
        lo16(_mm512_set1_epi16(static_cast<short>(p.y_lo))),
        zp16(_mm512_set1_epi16(static_cast<short>(p.y_zp))),
        // After the two packs, dword 4 L + r holds row r, columns 4 L..4 L+3.
        order(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)),
        nonneg(p.y_lo + static_cast<float>(p.y_zp) >= 0.f) {}
  __m512i round(__m512i acc, __m512 scale) const {
    return _mm512_cvtps_epi32(_mm512_min_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale), hi));
  }
  // Rows a..d (int32, bias included) -> 4 x 16 bytes, row r in 128-bit lane r.
  __m512i bytes4(__m512i a, __m512i b, __m512i c, __m512i d, __m512 scale) const {
    const __m512i ab = _mm512_add_epi16(_mm512_max_epi16(_mm512_packs_epi32(round(a, scale), round(b, scale)), lo16), zp16);
    const __m512i cd = _mm512_add_epi16(_mm512_max_epi16(_mm512_packs_epi32(round(c, scale), round(d, scale)), lo16), zp16);
    return _mm512_permutexvar_epi32(order, nonneg ? _mm512_packus_epi16(ab, cd) : _mm512_packs_epi16(ab, cd));
  }
};

// Stores lanes [0, rows) of q (row r at y + r * ld), n <= 16 columns each.
template <int Rows>
inline void store4(__m512i q, uint8_t* y, int64_t ld, int64_t n) {
  if (n >= 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y), _mm512_castsi512_si128(q));
    if constexpr (Rows > 1) _mm_storeu_si128(reinterpret_cast<__m128i*>(y + ld), _mm512_extracti32x4_epi32(q, 1));
    if constexpr (Rows > 2) _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 2 * ld), _mm512_extracti32x4_epi32(q, 2));
    if constexpr (Rows > 3) _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 3 * ld), _mm512_extracti32x4_epi32(q, 3));
  } else {
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
    _mm_mask_storeu_epi8(y, m, _mm512_castsi512_si128(q));
    if constexpr (Rows > 1) _mm_mask_storeu_epi8(y + ld, m, _mm512_extracti32x4_epi32(q, 1));
    if constexpr (Rows > 2) _mm_mask_storeu_epi8(y + 2 * ld, m, _mm512_extracti32x4_epi32(q, 2));
    if constexpr (Rows > 3) _mm_mask_storeu_epi8(y + 3 * ld, m, _mm512_extracti32x4_epi32(q, 3));
  }
}

inline __m512i dpbusd(__m512i acc, __m512i x, __m512i w) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
  return acc;
}

// One R x (16 V) tile over all of K. xp: the tile's first row in the panel (stride kRowGroup * 4
// bytes per 4-k step); w: the first block's weights (next blocks at bstride); y: row m0, column n0.
// The accumulators are one array per column vector: as one R x V array (1.5 KB at 8 x 3) GCC 12
// did not scalarize it (its SRA size limit) and stored every accumulator to the stack on each k
// step (objdump); per-vector arrays of at most 1 KB stay in registers.
template <int R, int V>
__attribute__((noinline)) void tile(const Q8GemmParams& p, const uint8_t* xp, const int8_t* w, int64_t bstride,
                                    int64_t groups, int64_t m0, int64_t n0, int64_t ncols) {
  __m512i a0[R], a1[V > 1 ? R : 1], a2[V > 2 ? R : 1];
  {  // accumulators start at the bias (one load each, no add in the epilogue)
    const __m512i b0 = _mm512_loadu_si512(p.bias + n0);
    const __m512i b1 = V > 1 ? _mm512_loadu_si512(p.bias + n0 + 16) : b0;
    const __m512i b2 = V > 2 ? _mm512_loadu_si512(p.bias + n0 + 32) : b0;
    for (int i = 0; i < R; ++i) {
      a0[i] = b0;
      if constexpr (V > 1) a1[i] = b1;
      if constexpr (V > 2) a2[i] = b2;
    }
  }
  for (int64_t g = 0; g < groups; ++g, xp += kRowGroup * 4, w += 64) {
    const __m512i w0 = _mm512_loadu_si512(w);
    const __m512i w1 = V > 1 ? _mm512_loadu_si512(w + bstride) : w0;
    const __m512i w2 = V > 2 ? _mm512_loadu_si512(w + 2 * bstride) : w0;
    for (int i = 0; i < R; ++i) {
      int32_t v;
      std::memcpy(&v, xp + 4 * i, 4);
      const __m512i xb = _mm512_set1_epi32(v);
      a0[i] = dpbusd(a0[i], xb, w0);
      if constexpr (V > 1) a1[i] = dpbusd(a1[i], xb, w1);
      if constexpr (V > 2) a2[i] = dpbusd(a2[i], xb, w2);
    }
  }
  const Epilogue e(p);
  auto store = [&](__m512i (&acc)[R], int j) {
    const int64_t c = n0 + 16 * j;
    const int64_t n = ncols - 16 * j;  // > 0: the caller sizes V to the columns
    if (p.wzp) {
      const __m512i z = _mm512_loadu_si512(p.wzp + c);
      for (int i = 0; i < R; ++i) acc[i] = _mm512_sub_epi32(acc[i], _mm512_mullo_epi32(_mm512_set1_epi32(p.rowsum[m0 + i]), z));
    }
    const __m512 scale = _mm512_loadu_ps(p.scale + c);
    uint8_t* y = p.y + m0 * p.N + c;
    int i = 0;
    for (; i + 4 <= R; i += 4)
      store4<4>(e.bytes4(acc[i], acc[i + 1], acc[i + 2], acc[i + 3], scale), y + i * p.N, p.N, n);
    if constexpr (R % 4 == 3) store4<3>(e.bytes4(acc[R - 3], acc[R - 2], acc[R - 1], acc[R - 1], scale), y + (R - 3) * p.N, p.N, n);
    if constexpr (R % 4 == 2) store4<2>(e.bytes4(acc[R - 2], acc[R - 1], acc[R - 1], acc[R - 1], scale), y + (R - 2) * p.N, p.N, n);
    if constexpr (R % 4 == 1) store4<1>(e.bytes4(acc[R - 1], acc[R - 1], acc[R - 1], acc[R - 1], scale), y + (R - 1) * p.N, p.N, n);
  };
  store(a0, 0);
  if constexpr (V > 1) store(a1, 1);
  if constexpr (V > 2) store(a2, 2);
}

// Rows left after the full tiles: one instantiation per count.
template <int R, int V>
void tile_rest(int64_t rows, const Q8GemmParams& p, const uint8_t* xp, const int8_t* w, int64_t bstride,
               int64_t groups, int64_t m0, int64_t n0, int64_t ncols) {
  if constexpr (R > 0) {
    if (rows == R) tile<R, V>(p, xp, w, bstride, groups, m0, n0, ncols);
    else tile_rest<R - 1, V>(rows, p, xp, w, bstride, groups, m0, n0, ncols);
  }
}

template <int V>
constexpr int kMR = V == 3 ? 8 : V == 2 ? 12 : 16;
static_assert(kRowGroup % kMR<1> == 0 && kRowGroup % kMR<2> == 0 && kRowGroup % kMR<3> == 0, "tiles inside a group");

// All row tiles of one column tile over a packed chunk of rows.
template <int V>
void column_tile(const Q8GemmParams& p, const uint8_t* panel, int64_t kpad, int64_t m0, int64_t rows, int64_t n0,
                 int64_t ncols) {
  constexpr int MR = kMR<V>;
  const int64_t groups = kpad / 4, bstride = kpad * kQ8GemmNR;
  const int8_t* w = p.w + (n0 / kQ8GemmNR) * bstride;
  for (int64_t r = 0; r < rows; r += MR) {
    // Row r sits in group r / kRowGroup at slot r % kRowGroup.
    const uint8_t* xp = panel + (r / kRowGroup) * kRowGroup * kpad + (r % kRowGroup) * 4;
    if (rows - r >= MR) tile<MR, V>(p, xp, w, bstride, groups, m0 + r, n0, ncols);
    else tile_rest<MR - 1, V>(rows - r, p, xp, w, bstride, groups, m0 + r, n0, ncols);
  }
}

}  // namespace

void q8_gemm_avx512vnni(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  if (m_begin >= m_end || n_begin >= n_end) return;
  const int64_t kpad = round_up(p.K, kQ8GemmKR);
  int64_t mc = kPanelBytes / kpad / kRowGroup * kRowGroup;
  if (mc < kRowGroup) mc = kRowGroup;
  if (mc > m_end - m_begin) mc = m_end - m_begin;
  thread_local std::vector<uint8_t> panel_buf;
  const size_t need = static_cast<size_t>(round_up(mc, kRowGroup) * kpad);
  if (panel_buf.size() < need) panel_buf.resize(need);
  uint8_t* panel = panel_buf.data();
  std::optional<Q8LutAvx2> lut;
  if (p.lut) lut.emplace(p.lut);
  for (int64_t m0 = m_begin; m0 < m_end; m0 += mc) {
    const int64_t rows = m_end - m0 < mc ? m_end - m0 : mc;
    pack_rows(p, m0, rows, kpad, panel);
    for (int64_t n0 = n_begin; n0 < n_end;) {
      // Blocks left: 3 per tile, except 4 = 2 + 2 (no 1-block tile where 2 + 2 fit).
      const int64_t left = ceil_div(n_end - n0, kQ8GemmNR);
      const int V = left >= 5 || left == 3 ? 3 : left >= 2 ? 2 : 1;
      const int64_t ncols = n_end - n0 < 16 * V ? n_end - n0 : 16 * V;
      if (V == 3) column_tile<3>(p, panel, kpad, m0, rows, n0, ncols);
      else if (V == 2) column_tile<2>(p, panel, kpad, m0, rows, n0, ncols);
      else column_tile<1>(p, panel, kpad, m0, rows, n0, ncols);
      n0 += ncols;
    }
    if (lut) {
      if (n_begin == 0 && n_end == p.N) lut->apply(p.y + m0 * p.N, rows * p.N);
      else
        for (int64_t i = 0; i < rows; ++i) lut->apply(p.y + (m0 + i) * p.N + n_begin, n_end - n_begin);
    }
  }
}

}  // namespace mk
