// int8 GEMM dot-product traits for AVX2 (see kernels/q8-gemm/q8_gemm_tile.h for the contract).
// Include only from files compiled with -mavx2 (the _avx2 / _avxvnni suffixes); all members
// are static inline inside an anonymous namespace, so nothing is shared across ISA files.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/q8-gemm/q8_gemm.h"

namespace mk {
namespace {

// 8 x int32 lanes: bias / zero-point arithmetic and the exact fp32 requantization + store.
struct Q8Avx2Base {
  static constexpr int kCols = 8;
  using I32 = __m256i;
  static I32 load_i32(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static I32 set1_i32(int32_t v) { return _mm256_set1_epi32(v); }
  static I32 add_i32(I32 a, I32 b) { return _mm256_add_epi32(a, b); }
  static I32 sub_i32(I32 a, I32 b) { return _mm256_sub_epi32(a, b); }
  static I32 mullo_i32(I32 a, I32 b) { return _mm256_mullo_epi32(a, b); }

  // float(acc) * scale, clamp to integer bounds (== clamping after rounding), round half to
  // even (cvtps2dq in the default MXCSR mode), add the zero point, keep the low byte.
  static __m128i requant8(I32 acc, const float* scale, float lo, float hi, int32_t zp) {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(scale));
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
    __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(zp));
    const __m256i low_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                               0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    q = _mm256_shuffle_epi8(q, low_bytes);
    return _mm_unpacklo_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  }
  static void store(I32 acc, const float* scale, const Q8GemmParams& p, uint8_t* y, int64_t n) {
    const __m128i b = requant8(acc, scale, p.y_lo, p.y_hi, p.y_zp);
    if (n == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(y), b);
    } else {
      alignas(16) uint8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), b);
      std::memcpy(y, tmp, static_cast<size_t>(n));
    }
  }
};

// Exact AVX2: weights sign-extended to int16, activations zero-extended to int16 and
// broadcast as a 4-k quad, VPMADDWD (exact int16 products, pair sums in int32). The
// accumulator keeps two lanes per column (k0+k1, k2+k3) and folds them once in finish().
// No VPMADDUBSW: its int16 pair sum saturates for 255*127*2.
template <int MR, int VECS>
struct Q8DotAvx2T : Q8Avx2Base {
  static constexpr int kMR = MR;
  static constexpr int kVecs = VECS;
  static constexpr bool kWideX = true;  // activations from the int16 row panel
  struct Acc { __m256i a, b; };
  struct W { __m256i lo, hi; };  // columns 0-3 and 4-7 of the vector, 4 k each, int16
  using X = __m256i;
  // 4 int16 activations (one 64-bit load) broadcast to every 64-bit lane.
  static X bcast_wide(const int16_t* p) {
    long long v;
    std::memcpy(&v, p, 8);
    return _mm256_set1_epi64x(v);
  }
  static Acc zero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
  static W load_w(const int8_t* p) {
    return {_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)))};
  }
  static X flip_vec(uint32_t f) { return _mm256_set1_epi32(static_cast<int>(f)); }
  // vpbroadcastd from memory, XOR, then one vpshufb zero-extends bytes 0-3 into the int16
  // quad (x0 x1 x2 x3) repeated in every 64-bit lane.
  template <bool Flip>
  static X bcast_x(const uint8_t* p, X flip) {
    int32_t v;
    std::memcpy(&v, p, 4);
    const __m256i quad = _mm256_setr_epi8(0, -1, 1, -1, 2, -1, 3, -1, 0, -1, 1, -1, 2, -1, 3, -1,
                                          0, -1, 1, -1, 2, -1, 3, -1, 0, -1, 1, -1, 2, -1, 3, -1);
    const __m256i b = _mm256_set1_epi32(v);
    return _mm256_shuffle_epi8(Flip ? _mm256_xor_si256(b, flip) : b, quad);
  }
  static void dot(Acc& acc, X x, const W& w) {
    acc.a = _mm256_add_epi32(acc.a, _mm256_madd_epi16(w.lo, x));
    acc.b = _mm256_add_epi32(acc.b, _mm256_madd_epi16(w.hi, x));
  }
  static I32 finish(const Acc& acc) {
    // hadd -> [c0 c1 c4 c5 | c2 c3 c6 c7]; swap the middle 64-bit halves -> c0..c7.
    return _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc.a, acc.b), 0xD8);
  }
};

// 6 rows x 8 cols: 12 accumulators + 2 weight registers + 1 broadcast (no spills); measured
// against 2x16, 3x8, 4x8 and 5x8 (interleaved A/B): 6x8 is 15-30% ahead of 4x8.
using Q8DotAvx2 = Q8DotAvx2T<6, 1>;

// The 256-bit VPDPBUSD layout's traits (2 vectors of 8 int32 columns, x broadcast 4 bytes at a
// time), shared by the AVX-VNNI kernel and its AVX2 emulation; each adds kMR, dot() and finish().
struct Q8Avx2Dot4Base : Q8Avx2Base {
  static constexpr int kVecs = 2;
  static constexpr bool kWideX = false;
  using Acc = __m256i;
  using W = __m256i;
  using X = __m256i;
  static Acc zero() { return _mm256_setzero_si256(); }
  static W load_w(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static X flip_vec(uint32_t f) { return _mm256_set1_epi32(static_cast<int>(f)); }
  template <bool Flip>
  static X bcast_x(const uint8_t* p, X flip) {
    int32_t v;
    std::memcpy(&v, p, 4);
    const __m256i b = _mm256_set1_epi32(v);
    return Flip ? _mm256_xor_si256(b, flip) : b;
  }
};

// VPDPBUSD (u8 x s8, 4 products summed into each int32 lane, wrapping) emulated in AVX2: the
// VNNI traits' exact semantics, so the VNNI tiling is tested on machines without VNNI.
struct Q8DotAvx2VnniEmu : Q8Avx2Dot4Base {
  static constexpr int kMR = 4;  // same tile as the AVX-VNNI kernel
  static __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) {
    const __m256i ulo = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(u8));
    const __m256i uhi = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(u8, 1));
    const __m256i slo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(s8));
    const __m256i shi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(s8, 1));
    const __m256i s = _mm256_hadd_epi32(_mm256_madd_epi16(ulo, slo), _mm256_madd_epi16(uhi, shi));
    return _mm256_add_epi32(acc, _mm256_permute4x64_epi64(s, 0xD8));
  }
  static void dot(Acc& acc, X x, W w) { acc = dpbusd(acc, x, w); }
  static I32 finish(Acc acc) { return acc; }
};

}  // namespace
}  // namespace mk
