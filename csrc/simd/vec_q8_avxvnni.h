// int8 GEMM dot-product traits for AVX-VNNI (256-bit VPDPBUSD, Alder Lake / Sapphire Rapids).
// Include only from _avxvnni files. Same tile and layout as Q8DotAvx2VnniEmu, which tests it.
#pragma once
#include <immintrin.h>

#include <cstring>

#include "simd/vec_q8_avx2.h"

namespace mk {
namespace {

struct Q8DotAvxVnni : Q8Avx2Base {
  static constexpr int kMR = 4;  // 4 rows x 16 cols = 8 accumulators
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
  static void dot(Acc& acc, X x, W w) { acc = _mm256_dpbusd_avx_epi32(acc, x, w); }
  static I32 finish(Acc acc) { return acc; }
};

}  // namespace
}  // namespace mk
