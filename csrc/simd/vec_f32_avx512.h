// 16 x fp32 vector traits for AVX-512F. Include only from files compiled with -mavx512f.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace mk {
namespace {

struct VecF32Avx512 {
  using T = __m512;
  static constexpr int kWidth = 16;
  static constexpr int kBlockW = 8;  // 32 zmm registers: 9 weights + 8 accumulators + inputs
  static constexpr int kBlockWStride1 = 8;

  static T zero() { return _mm512_setzero_ps(); }
  static T set1(float f) { return _mm512_set1_ps(f); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static __mmask16 mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
  // Masked lanes are not accessed (no fault, no out-of-bounds read).
  static T load_partial(const float* p, int64_t n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store_partial(float* p, T v, int64_t n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static T min(T a, T b) { return _mm512_min_ps(a, b); }
};

}  // namespace
}  // namespace mk
