// int8 pointwise GEMM, avx2 path (compiled with the avx2 flags only, cmake/kernels.cmake).
//
// Exact: activations zero-extended and weights sign-extended to int16, VPMADDWD (exact int16
// products, pair sums in int32), VPADDD into int32 accumulators. No VPMADDUBSW (its int16 pair
// sum saturates for 255*127*2).
//
// On Zen 3 VPMADDWD issues on two pipes and VPADDD on three, so madd + add pairs top out near
// 1.5 madd/cycle (measured: 12 madd+add in ~7.6 cycles). Everything else in the k loop competes
// for the same pipes, so the loop is reduced to: 2 weight loads, 6 activation broadcasts (pure
// loads), 12 madd, 12 add per k pair. That needs both operands already widened to int16:
//  - activations: a per-thread panel of up to MC rows widened once (domain flip applied, K
//    zero-padded to even), reused by every column block;
//  - weights: the pack's int8 block [K/4][16][4] of one 16-column block widened once per
//    (row panel, column block) into [K/2][16][2] int16, with columns ordered {0-3, 8-11} in
//    the first vector and {4-7, 12-15} in the second, so that VPACKSSDW of the two requantized
//    accumulators gives the 16 columns in order (no hadd / permute in the epilogue).
// Register tile: 6 rows x 16 columns = 12 accumulators + 2 weights + 1 broadcast. Blocks with
// at most 8 valid columns (N % 16 <= 8 tails) use 6 x 8 tiles so no work is wasted on padding.
// Loop order: row panel (fits L2) > 16-column block (weights stay in L1) > 6-row tiles.
// This path serves K < kQuadMinK, where the epilogue and the old per-8-column hadd/permute
// requantization were a large share; longer K keeps the shared 6x8 quad tiling (see kQuadMinK).
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "kernels/q8-gemm/q8_gemm.h"
#include "kernels/q8-gemm/q8_gemm_tile.h"
#include "kernels/q8-lut/q8_lut_avx2.h"
#include "simd/vec_q8_avx2.h"

namespace mk {
namespace {

constexpr int kMR = 6;
// From this K on, the shared tiling's 6x8 quad kernel (q8_gemm_tile.h over Q8DotAvx2: int8
// weights widened in the k loop, 4 k per activation broadcast) is used instead: with long K the
// epilogue is negligible, and widening the weights in a separate pass (a cold read of the whole
// pack per call) cost 5-13% on the 7x7 and 14x14 layers (K 320-960), measured A/B.
constexpr int64_t kQuadMinK = 256;
constexpr int64_t kPanelBytes = 96 * 1024;  // widened activation rows per panel (L2-resident)

// rows x K activation bytes -> int16 (XOR flip, zero-extended), row stride ks >= K (zero pad).
void widen_rows(const uint8_t* x, int64_t K, int64_t rows, int64_t ks, uint8_t flip, int16_t* out) {
  const __m128i f = _mm_set1_epi8(static_cast<char>(flip));
  for (int64_t i = 0; i < rows; ++i) {
    const uint8_t* s = x + i * K;
    int16_t* o = out + i * ks;
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      const __m128i v = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + k)), f);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + k), _mm256_cvtepu8_epi16(v));
    }
    for (; k < K; ++k) o[k] = static_cast<uint8_t>(s[k] ^ flip);
    for (; k < ks; ++k) o[k] = 0;
  }
}

// One packed block (int8 [kpad/4][16 cols][4 k]) -> int16 [kpairs][16 or 8 cols][2 k].
// Wide (16 columns): per k pair, vector 0 = columns {0-3, 8-11}, vector 1 = {4-7, 12-15}.
// Narrow (8 columns, only columns 0-7 of the block are used): one vector, columns in order.
template <bool Wide>
void widen_weights(const int8_t* blk, int64_t kpairs, int16_t* out) {
  // Per 128-bit lane (4 columns x 4 k): the (k0,k1) pairs to the low 8 bytes, (k2,k3) high.
  const __m256i pairs = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                         0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  auto st = [](int16_t* o, __m128i v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_cvtepi8_epi16(v));
  };
  constexpr int64_t per_pair = Wide ? 32 : 16;  // int16 per k pair
  for (int64_t kp = 0; kp < kpairs; kp += 2, blk += 64) {
    const bool two = kp + 1 < kpairs;
    _mm_prefetch(reinterpret_cast<const char*>(blk) + 512, _MM_HINT_T0);
    const __m256i a = _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)), pairs);
    if constexpr (Wide) {
      // a = [c0-3 k01, c0-3 k23 | c4-7 k01, c4-7 k23], b likewise for columns 8-15.
      const __m256i b =
          _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32)), pairs);
      const __m256i e = _mm256_unpacklo_epi64(a, b);  // [c0-3 c8-11 k01 | c4-7 c12-15 k01]
      const __m256i o = _mm256_unpackhi_epi64(a, b);  // same for k23
      int16_t* d = out + kp * per_pair;
      st(d, _mm256_castsi256_si128(e));
      st(d + 16, _mm256_extracti128_si256(e, 1));
      if (two) {
        st(d + 32, _mm256_castsi256_si128(o));
        st(d + 48, _mm256_extracti128_si256(o, 1));
      }
    } else {
      const __m256i q = _mm256_permute4x64_epi64(a, 0xD8);  // [c0-7 k01 | c0-7 k23]
      int16_t* d = out + kp * per_pair;
      st(d, _mm256_castsi256_si128(q));
      if (two) st(d + 16, _mm256_extracti128_si256(q, 1));
    }
  }
}

// Per-block epilogue constants, in the accumulators' column order.
struct Epi {
  alignas(32) int32_t bias[16];
  alignas(32) float scale[16];
  alignas(32) int32_t wzp[16];
};

template <bool Wide>
void prepare_epi(const Q8GemmParams& p, int64_t c, Epi& e) {
  static constexpr int kWide[16] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};
  for (int i = 0; i < 16; ++i) {
    const int64_t src = c + (Wide ? kWide[i] : (i < 8 ? i : 0));
    e.bias[i] = p.bias[src];
    e.scale[i] = p.scale[src];
    e.wzp[i] = p.wzp ? p.wzp[src] : 0;
  }
}

// float(acc) * scale, min(hi) in fp32 (the conversion cannot overflow upwards; below the int32
// range it gives INT_MIN, still below lo), rounded half to even (cvtps2dq, default MXCSR).
inline __m256i requant(__m256i acc, const float* scale, __m256 hi) {
  const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_load_ps(scale));
  return _mm256_cvtps_epi32(_mm256_min_ps(v, hi));
}

// Requantize and store the tile's rows (out of line: inlined, its constants would compete with
// the accumulators for registers). acc: 2 vectors per row.
template <bool Wide>
__attribute__((noinline)) void store_rows(const __m256i* acc, int rows, const Epi& e, const Q8GemmParams& p,
                                          int64_t m0, uint8_t* y, int64_t ncols) {
  constexpr int V = Wide ? 2 : 1;
  const __m256 hi = _mm256_set1_ps(p.y_hi);
  const __m256i lo16 = _mm256_set1_epi16(static_cast<short>(p.y_lo));
  const __m256i zp16 = _mm256_set1_epi16(static_cast<short>(p.y_zp));
  // Outputs lie in [y_min, y_max]: with y_min >= 0 unsigned saturation packs them exactly, else
  // (int8 output) signed saturation does; either way the bytes are the results themselves.
  const bool nonneg = p.y_lo + static_cast<float>(p.y_zp) >= 0.f;
  const int64_t N = p.N;
  for (int i = 0; i < rows; ++i) {
    __m256i v[V];
    for (int j = 0; j < V; ++j) {
      v[j] = _mm256_add_epi32(acc[2 * i + j], _mm256_load_si256(reinterpret_cast<const __m256i*>(e.bias + 8 * j)));
      if (p.wzp)
        v[j] = _mm256_sub_epi32(v[j], _mm256_mullo_epi32(_mm256_set1_epi32(p.rowsum[m0 + i]),
                                                         _mm256_load_si256(reinterpret_cast<const __m256i*>(e.wzp + 8 * j))));
      v[j] = requant(v[j], e.scale + 8 * j, hi);
    }
    // VPACKSSDW saturates but keeps the order, so max(lo) after it equals clamping before
    // rounding; the zero-point add is then exact in int16.
    __m128i bytes;
    if constexpr (Wide) {
      const __m256i t = _mm256_add_epi16(_mm256_max_epi16(_mm256_packs_epi32(v[0], v[1]), lo16), zp16);
      const __m128i a = _mm256_castsi256_si128(t), b = _mm256_extracti128_si256(t, 1);
      bytes = nonneg ? _mm_packus_epi16(a, b) : _mm_packs_epi16(a, b);
    } else {
      __m128i t = _mm_packs_epi32(_mm256_castsi256_si128(v[0]), _mm256_extracti128_si256(v[0], 1));
      t = _mm_add_epi16(_mm_max_epi16(t, _mm256_castsi256_si128(lo16)), _mm256_castsi256_si128(zp16));
      bytes = nonneg ? _mm_packus_epi16(t, t) : _mm_packs_epi16(t, t);
    }
    uint8_t* out = y + i * N;
    if (ncols == 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
    } else if (ncols == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out), bytes);
    } else {
      alignas(16) uint8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
      std::memcpy(out, tmp, static_cast<size_t>(ncols));
    }
  }
}

// The k loop of an R x 16 (Wide) or R x 8 tile as one asm statement with fixed registers:
// accumulators of row i in ymm(2i), ymm(2i+1) (Wide) or ymm(i), weights ymm12/13, broadcast
// ymm14, product ymm15. Left to itself GCC hoisted the broadcasts of all rows ahead of the
// madds or kept the accumulators in memory, depending on the surrounding code (spills inside
// the k loop: load-add-store per madd), so the loop is pinned down here. The sums start from
// zero and are stored to acc (2 vectors per row, 32-byte aligned).
#define MK_Q8_ROW2(addr, a0, a1)                               \
  "vpbroadcastd " addr ", %%ymm14\n\t"                         \
  "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"                     \
  "vpaddd %%ymm15, %%ymm" a0 ", %%ymm" a0 "\n\t"               \
  "vpmaddwd %%ymm13, %%ymm14, %%ymm14\n\t"                     \
  "vpaddd %%ymm14, %%ymm" a1 ", %%ymm" a1 "\n\t"
#define MK_Q8_ROW1(addr, a0)                                   \
  "vpbroadcastd " addr ", %%ymm14\n\t"                         \
  "vpmaddwd %%ymm12, %%ymm14, %%ymm14\n\t"                     \
  "vpaddd %%ymm14, %%ymm" a0 ", %%ymm" a0 "\n\t"
#define MK_Q8_X0 "(%[x])"
#define MK_Q8_X1 "(%[x],%[s],1)"
#define MK_Q8_X2 "(%[x],%[s],2)"
#define MK_Q8_X3 "(%[x3])"
#define MK_Q8_X4 "(%[x3],%[s],1)"
#define MK_Q8_X5 "(%[x3],%[s],2)"
#define MK_Q8_ZERO(i, r) "vpxor %%xmm" #r ", %%xmm" #r ", %%xmm" #r "\n\t"  // zeroes all of ymm r
#define MK_Q8_ST(i, r) "vmovdqa %%ymm" #r ", " #i "*32(%[a])\n\t"
#define MK_Q8_LOOP(load, body, store, wstep)                                                     \
  __asm__ volatile(load "1:\n\t"                                                                 \
                   "vmovdqu (%[w]), %%ymm12\n\t" body "add $4, %[x]\n\t"                         \
                   "add $4, %[x3]\n\t"                                                           \
                   "add $" wstep ", %[w]\n\t"                                                    \
                   "dec %[n]\n\t"                                                                \
                   "jnz 1b\n\t" store                                                            \
                   : [x] "+r"(x), [x3] "+r"(x3), [w] "+r"(w), [n] "+r"(n)                        \
                   : [s] "r"(sb), [a] "r"(acc)                                                   \
                   : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
                     "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15")

#define MK_W1 "vmovdqu 32(%[w]), %%ymm13\n\t"

template <int R, bool Wide>
inline void k_loop(__m256i* acc, const int16_t* x, int64_t xs, const int16_t* w, int64_t n) {
  if (n <= 0) {
    for (int i = 0; i < 2 * R; ++i) acc[i] = _mm256_setzero_si256();
    return;
  }
  const int16_t* x3 = x + 3 * xs;
  const int64_t sb = 2 * xs;  // row stride in bytes
  // Row i's accumulators: Wide ymm(2i), ymm(2i+1) <-> acc[2i], acc[2i+1]; narrow ymm(i) <-> acc[2i].
  if constexpr (Wide) {
    if constexpr (R == 1)
      MK_Q8_LOOP(MK_Q8_ZERO(0, 0) MK_Q8_ZERO(1, 1), MK_W1 MK_Q8_ROW2(MK_Q8_X0, "0", "1"),
                 MK_Q8_ST(0, 0) MK_Q8_ST(1, 1), "64");
    if constexpr (R == 2)
      MK_Q8_LOOP(MK_Q8_ZERO(0, 0) MK_Q8_ZERO(1, 1) MK_Q8_ZERO(2, 2) MK_Q8_ZERO(3, 3),
                 MK_W1 MK_Q8_ROW2(MK_Q8_X0, "0", "1") MK_Q8_ROW2(MK_Q8_X1, "2", "3"),
                 MK_Q8_ST(0, 0) MK_Q8_ST(1, 1) MK_Q8_ST(2, 2) MK_Q8_ST(3, 3), "64");
    if constexpr (R == 3)
      MK_Q8_LOOP(MK_Q8_ZERO(0, 0) MK_Q8_ZERO(1, 1) MK_Q8_ZERO(2, 2) MK_Q8_ZERO(3, 3) MK_Q8_ZERO(4, 4) MK_Q8_ZERO(5, 5),
                 MK_W1 MK_Q8_ROW2(MK_Q8_X0, "0", "1") MK_Q8_ROW2(MK_Q8_X1, "2", "3") MK_Q8_ROW2(MK_Q8_X2, "4", "5"),
                 MK_Q8_ST(0, 0) MK_Q8_ST(1, 1) MK_Q8_ST(2, 2) MK_Q8_ST(3, 3) MK_Q8_ST(4, 4) MK_Q8_ST(5, 5), "64");
    if constexpr (R == 4)
      MK_Q8_LOOP(MK_Q8_ZERO(0, 0) MK_Q8_ZERO(1, 1) MK_Q8_ZERO(2, 2) MK_Q8_ZERO(3, 3) MK_Q8_ZERO(4, 4) MK_Q8_ZERO(5, 5)
                     MK_Q8_ZERO(6, 6) MK_Q8_ZERO(7, 7),
                 MK_W1 MK_Q8_ROW2(MK_Q8_X0, "0", "1") MK_Q8_ROW2(MK_Q8_X1, "2", "3") MK_Q8_ROW2(MK_Q8_X2, "4", "5")
                     MK_Q8_ROW2(MK_Q8_X3, "6", "7"),
                 MK_Q8_ST(0, 0) MK_Q8_ST(1, 1) MK_Q8_ST(2, 2) MK_Q8_ST(3, 3) MK_Q8_ST(4, 4) MK_Q8_ST(5, 5)
                     MK_Q8_ST(6, 6) MK_Q8_ST(7, 7),
                 "64");
    if constexpr (R == 5)
      MK_Q8_LOOP(MK_Q8_ZERO(0, 0) MK_Q8_ZERO(1, 1) MK_Q8_ZERO(2, 2) MK_Q8_ZERO(3, 3) MK_Q8_ZERO(4, 4) MK_Q8_ZERO(5, 5)
                     MK_Q8_ZERO(6, 6) MK_Q8_ZERO(7, 7) MK_Q8_ZERO(8, 8) MK_Q8_ZERO(9, 9),
                 MK_W1 MK_Q8_ROW2(MK_Q8_X0, "0", "1") MK_Q8_ROW2(MK_Q8_X1, "2", "3") MK_Q8_ROW2(MK_Q8_X2, "4", "5")
                     MK_Q8_ROW2(MK_Q8_X3, "6", "7") MK_Q8_ROW2(MK_Q8_X4, "8", "9"),
                 MK_Q8_ST(0, 0) MK_Q8_ST(1, 1) MK_Q8_ST(2, 2) MK_Q8_ST(3, 3) MK_Q8_ST(4, 4) MK_Q8_ST(5, 5)
                     MK_Q8_ST(6, 6) MK_Q8_ST(7, 7) MK_Q8_ST(8, 8) MK_Q8_ST(9, 9),
                 "64");
    if constexpr (R == 6)
      MK_Q8_LOOP(MK_Q8_ZERO(0, 0) MK_Q8_ZERO(1, 1) MK_Q8_ZERO(2, 2) MK_Q8_ZERO(3, 3) MK_Q8_ZERO(4, 4) MK_Q8_ZERO(5, 5)
                     MK_Q8_ZERO(6, 6) MK_Q8_ZERO(7, 7) MK_Q8_ZERO(8, 8) MK_Q8_ZERO(9, 9) MK_Q8_ZERO(10, 10) MK_Q8_ZERO(11, 11),
                 MK_W1 MK_Q8_ROW2(MK_Q8_X0, "0", "1") MK_Q8_ROW2(MK_Q8_X1, "2", "3") MK_Q8_ROW2(MK_Q8_X2, "4", "5")
                     MK_Q8_ROW2(MK_Q8_X3, "6", "7") MK_Q8_ROW2(MK_Q8_X4, "8", "9") MK_Q8_ROW2(MK_Q8_X5, "10", "11"),
                 MK_Q8_ST(0, 0) MK_Q8_ST(1, 1) MK_Q8_ST(2, 2) MK_Q8_ST(3, 3) MK_Q8_ST(4, 4) MK_Q8_ST(5, 5)
                     MK_Q8_ST(6, 6) MK_Q8_ST(7, 7) MK_Q8_ST(8, 8) MK_Q8_ST(9, 9) MK_Q8_ST(10, 10) MK_Q8_ST(11, 11),
                 "64");
  } else {
    if constexpr (R == 1) MK_Q8_LOOP(MK_Q8_ZERO(0, 0), MK_Q8_ROW1(MK_Q8_X0, "0"), MK_Q8_ST(0, 0), "32");
    if constexpr (R == 2)
      MK_Q8_LOOP(MK_Q8_ZERO(0, 0) MK_Q8_ZERO(2, 1), MK_Q8_ROW1(MK_Q8_X0, "0") MK_Q8_ROW1(MK_Q8_X1, "1"),
                 MK_Q8_ST(0, 0) MK_Q8_ST(2, 1), "32");
    if constexpr (R == 3)
      MK_Q8_LOOP(MK_Q8_ZERO(0, 0) MK_Q8_ZERO(2, 1) MK_Q8_ZERO(4, 2),
                 MK_Q8_ROW1(MK_Q8_X0, "0") MK_Q8_ROW1(MK_Q8_X1, "1") MK_Q8_ROW1(MK_Q8_X2, "2"),
                 MK_Q8_ST(0, 0) MK_Q8_ST(2, 1) MK_Q8_ST(4, 2), "32");
    if constexpr (R == 4)
      MK_Q8_LOOP(MK_Q8_ZERO(0, 0) MK_Q8_ZERO(2, 1) MK_Q8_ZERO(4, 2) MK_Q8_ZERO(6, 3),
                 MK_Q8_ROW1(MK_Q8_X0, "0") MK_Q8_ROW1(MK_Q8_X1, "1") MK_Q8_ROW1(MK_Q8_X2, "2")
                     MK_Q8_ROW1(MK_Q8_X3, "3"),
                 MK_Q8_ST(0, 0) MK_Q8_ST(2, 1) MK_Q8_ST(4, 2) MK_Q8_ST(6, 3), "32");
    if constexpr (R == 5)
      MK_Q8_LOOP(MK_Q8_ZERO(0, 0) MK_Q8_ZERO(2, 1) MK_Q8_ZERO(4, 2) MK_Q8_ZERO(6, 3) MK_Q8_ZERO(8, 4),
                 MK_Q8_ROW1(MK_Q8_X0, "0") MK_Q8_ROW1(MK_Q8_X1, "1") MK_Q8_ROW1(MK_Q8_X2, "2")
                     MK_Q8_ROW1(MK_Q8_X3, "3") MK_Q8_ROW1(MK_Q8_X4, "4"),
                 MK_Q8_ST(0, 0) MK_Q8_ST(2, 1) MK_Q8_ST(4, 2) MK_Q8_ST(6, 3) MK_Q8_ST(8, 4), "32");
    if constexpr (R == 6)
      MK_Q8_LOOP(MK_Q8_ZERO(0, 0) MK_Q8_ZERO(2, 1) MK_Q8_ZERO(4, 2) MK_Q8_ZERO(6, 3) MK_Q8_ZERO(8, 4) MK_Q8_ZERO(10, 5),
                 MK_Q8_ROW1(MK_Q8_X0, "0") MK_Q8_ROW1(MK_Q8_X1, "1") MK_Q8_ROW1(MK_Q8_X2, "2")
                     MK_Q8_ROW1(MK_Q8_X3, "3") MK_Q8_ROW1(MK_Q8_X4, "4") MK_Q8_ROW1(MK_Q8_X5, "5"),
                 MK_Q8_ST(0, 0) MK_Q8_ST(2, 1) MK_Q8_ST(4, 2) MK_Q8_ST(6, 3) MK_Q8_ST(8, 4) MK_Q8_ST(10, 5), "32");
  }
}

// One R x (16 or 8) tile over all k pairs, requantized and stored.
template <int R, bool Wide>
void tile(const int16_t* xp, int64_t xs, const int16_t* wp, int64_t kpairs, const Epi& e, const Q8GemmParams& p,
          int64_t m0, uint8_t* y, int64_t ncols) {
  alignas(32) __m256i acc[2 * R];
  k_loop<R, Wide>(acc, xp, xs, wp, kpairs);
  store_rows<Wide>(acc, R, e, p, m0, y, ncols);
}

template <int R, bool Wide>
void tile_any(int64_t r, const int16_t* xp, int64_t xs, const int16_t* wp, int64_t kpairs, const Epi& e,
              const Q8GemmParams& p, int64_t m0, uint8_t* y, int64_t ncols) {
  if constexpr (R > 0) {
    if (r == R) tile<R, Wide>(xp, xs, wp, kpairs, e, p, m0, y, ncols);
    else tile_any<R - 1, Wide>(r, xp, xs, wp, kpairs, e, p, m0, y, ncols);
  }
}

// All row tiles of one column block.
template <bool Wide>
void run_tiles(const int16_t* panel, int64_t ks, int64_t rows, const int16_t* wp, int64_t kpairs, const Epi& e,
               const Q8GemmParams& p, int64_t m0, int64_t n0, int64_t ncols) {
  uint8_t* y = p.y + m0 * p.N + n0;
  for (int64_t i = 0; i < rows; i += kMR) {
    const int64_t r = rows - i < kMR ? rows - i : kMR;
    if (r == kMR) tile<kMR, Wide>(panel + i * ks, ks, wp, kpairs, e, p, m0 + i, y + i * p.N, ncols);
    else tile_any<kMR - 1, Wide>(r, panel + i * ks, ks, wp, kpairs, e, p, m0 + i, y + i * p.N, ncols);
  }
}

// Prepared weights (q8_gemm_avx2_prepare): per 16-column block, its Epi then its widened
// weights exactly as the per-call loop below makes them (wide or narrow by the block's columns).
int64_t prepared_block_bytes(int64_t kpairs) {
  return static_cast<int64_t>(sizeof(Epi)) + round_up(2 * 32 * (kpairs + 1), 64);
}

}  // namespace

int64_t q8_gemm_avx2_prepare(const Q8GemmParams& p, void* out) {
  if (p.K >= kQuadMinK) return 0;  // the quad tiling widens in its k loop: nothing per call
  const int64_t kpad = round_up(p.K, kQ8GemmKR), kpairs = (p.K + 1) / 2;
  const int64_t bb = prepared_block_bytes(kpairs), nblocks = ceil_div(p.N, kQ8GemmNR);
  if (!out) return nblocks * bb;
  for (int64_t b = 0; b < nblocks; ++b) {
    auto* blk = static_cast<uint8_t*>(out) + b * bb;
    const int64_t n0 = b * kQ8GemmNR;
    const int8_t* w = p.w + b * kpad * kQ8GemmNR;
    auto* wp = reinterpret_cast<int16_t*>(blk + sizeof(Epi));
    if (p.N - n0 > 8) {
      prepare_epi<true>(p, n0, *reinterpret_cast<Epi*>(blk));
      widen_weights<true>(w, kpairs, wp);
    } else {
      prepare_epi<false>(p, n0, *reinterpret_cast<Epi*>(blk));
      widen_weights<false>(w, kpairs, wp);
    }
  }
  return nblocks * bb;
}

void q8_gemm_avx2(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  if (m_begin >= m_end || n_begin >= n_end) return;
  if (p.K >= kQuadMinK) return q8_gemm_tiles<Q8DotAvx2>(p, m_begin, m_end, n_begin, n_end);
  const int64_t kpad = round_up(p.K, kQ8GemmKR);
  const int64_t kpairs = (p.K + 1) / 2;
  const int64_t ks = 2 * kpairs;  // panel row stride, int16
  int64_t mc = kPanelBytes / (2 * ks) / kMR * kMR;
  if (mc < kMR) mc = kMR;
  if (mc > m_end - m_begin) mc = m_end - m_begin;
  thread_local std::vector<int16_t> panel, wpanel;
  if (static_cast<int64_t>(panel.size()) < mc * ks) panel.resize(static_cast<size_t>(mc * ks));
  const auto* prep = static_cast<const uint8_t*>(p.prepared);
  const int64_t pbb = prepared_block_bytes(kpairs);
  if (!prep && static_cast<int64_t>(wpanel.size()) < 32 * (kpairs + 1))
    wpanel.resize(static_cast<size_t>(32 * (kpairs + 1)));
  const uint8_t flip = static_cast<uint8_t>(p.x_flip & 0xFF);
  Epi own;
  // Activation table: over each finished row panel (L2-resident) in 32-byte steps. Looking rows
  // up in pairs inside the tile epilogue measured ~6% slower on 196x80->480 (thread CPU).
  std::optional<Q8LutAvx2> lut;
  if (p.lut) lut.emplace(p.lut);
  for (int64_t m0 = m_begin; m0 < m_end; m0 += mc) {
    const int64_t rows = m_end - m0 < mc ? m_end - m0 : mc;
    widen_rows(p.x + m0 * p.K, p.K, rows, ks, flip, panel.data());
    for (int64_t n0 = n_begin; n0 < n_end; n0 += kQ8GemmNR) {
      const int64_t ncols = n_end - n0 < kQ8GemmNR ? n_end - n0 : kQ8GemmNR;
      // A prepared block is wide when the block has > 8 columns in the whole N; the caller's
      // n_end may cut it shorter, which a wide tile stores correctly (ncols bytes per row).
      const bool wide = prep ? p.N - n0 > 8 : ncols > 8;
      const Epi* e = &own;
      const int16_t* wp = wpanel.data();
      if (prep) {
        const uint8_t* blk = prep + (n0 / kQ8GemmNR) * pbb;
        e = reinterpret_cast<const Epi*>(blk);
        wp = reinterpret_cast<const int16_t*>(blk + sizeof(Epi));
      }
      const int8_t* blk = p.w + (n0 / kQ8GemmNR) * kpad * kQ8GemmNR;
      if (wide) {
        if (!prep) {
          widen_weights<true>(blk, kpairs, wpanel.data());
          prepare_epi<true>(p, n0, own);
        }
        run_tiles<true>(panel.data(), ks, rows, wp, kpairs, *e, p, m0, n0, ncols);
      } else {
        if (!prep) {
          widen_weights<false>(blk, kpairs, wpanel.data());
          prepare_epi<false>(p, n0, own);
        }
        run_tiles<false>(panel.data(), ks, rows, wp, kpairs, *e, p, m0, n0, ncols);
      }
    }
    if (lut) {
      if (n_begin == 0 && n_end == p.N) lut->apply(p.y + m0 * p.N, rows * p.N);
      else
        for (int64_t i = 0; i < rows; ++i) lut->apply(p.y + (m0 + i) * p.N + n_begin, n_end - n_begin);
    }
  }
}

}  // namespace mk
