// int8 GEMM dot-product traits for AVX512-VNNI (512-bit VPDPBUSD), in the shape of the shared
// tiling's contract (q8_gemm_tile.h). Include only from _avx512vnni / _amx files. The avx512vnni
// GEMM itself no longer runs the shared tiling (q8_gemm_avx512vnni.cpp: wider tiles, its own
// epilogue); q8_gemm_amx.cpp requantizes its tiles with store().
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/q8-gemm/q8_gemm.h"

namespace mk {
namespace {

struct Q8DotAvx512Vnni {
  static constexpr int kCols = 16;
  static constexpr int kMR = 8;  // 8 rows x 16 cols = 8 zmm accumulators
  static constexpr int kVecs = 1;
  static constexpr bool kWideX = false;
  using I32 = __m512i;
  using Acc = __m512i;
  using W = __m512i;
  using X = __m512i;
  static Acc zero() { return _mm512_setzero_si512(); }
  static W load_w(const int8_t* p) { return _mm512_loadu_si512(p); }
  static X flip_vec(uint32_t f) { return _mm512_set1_epi32(static_cast<int>(f)); }
  template <bool Flip>
  static X bcast_x(const uint8_t* p, X flip) {
    int32_t v;
    std::memcpy(&v, p, 4);
    const __m512i b = _mm512_set1_epi32(v);
    return Flip ? _mm512_xor_si512(b, flip) : b;
  }
  static void dot(Acc& acc, X x, W w) { acc = _mm512_dpbusd_epi32(acc, x, w); }
  static I32 finish(Acc acc) { return acc; }
  static I32 load_i32(const int32_t* p) { return _mm512_loadu_si512(p); }
  static I32 set1_i32(int32_t v) { return _mm512_set1_epi32(v); }
  static I32 add_i32(I32 a, I32 b) { return _mm512_add_epi32(a, b); }
  static I32 sub_i32(I32 a, I32 b) { return _mm512_sub_epi32(a, b); }
  static I32 mullo_i32(I32 a, I32 b) { return _mm512_mullo_epi32(a, b); }
  static void store(I32 acc, const float* scale, const Q8GemmParams& p, uint8_t* y, int64_t n) {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(scale));
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(p.y_lo)), _mm512_set1_ps(p.y_hi));
    // cvtps2dq with the default rounding (nearest even), + zp, truncate to bytes (vpmovdb).
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(p.y_zp));
    _mm_mask_storeu_epi8(y, static_cast<__mmask16>((1u << n) - 1u), _mm512_cvtepi32_epi8(q));
  }
};

}  // namespace
}  // namespace mk
