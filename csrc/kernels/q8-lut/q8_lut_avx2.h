// The AVX2 byte lookup as an inline helper, for AVX2 translation units only (q8_lut_avx2.cpp and
// the int8 conv kernels that apply an activation table in their epilogue). Internal linkage.
//
// 32 bytes per lookup with 16 vpshufb over 16-entry sub-tables. vpshufb reads table[idx & 15]
// when idx's bit 7 is clear and returns 0 otherwise. For x < 128, sub-table i looked up at
// x - 16 i answers exactly when i <= x >> 4 (a larger i wraps below zero: bit 7 set), so with the
// sub-tables stored as differences (d[0] = t[0], d[i] = t[i] ^ t[i-1]) the XOR of all eight
// lookups telescopes to t[x >> 4][x & 15]. The upper half of the table does the same on
// x ^ 0x80, and x's bit 7 picks the half (vpblendvb reads the top bit of each mask byte).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace mk {
namespace {

struct Q8LutAvx2 {
  __m256i lo[8], hi[8];  // difference sub-tables, each 16 bytes broadcast to both lanes

  explicit Q8LutAvx2(const uint8_t* table) {
    for (int i = 0; i < 8; ++i) {
      alignas(16) uint8_t dl[16], dh[16];
      for (int l = 0; l < 16; ++l) {
        dl[l] = table[16 * i + l] ^ (i ? table[16 * (i - 1) + l] : 0);
        dh[l] = table[128 + 16 * i + l] ^ (i ? table[128 + 16 * (i - 1) + l] : 0);
      }
      lo[i] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(dl)));
      hi[i] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(dh)));
    }
  }

  __m256i lookup(__m256i v) const {
    const __m256i step = _mm256_set1_epi8(16), top = _mm256_set1_epi8(static_cast<char>(0x80));
    __m256i a = v, b = _mm256_xor_si256(v, top);
    __m256i ra = _mm256_shuffle_epi8(lo[0], a), rb = _mm256_shuffle_epi8(hi[0], b);
    for (int h = 1; h < 8; ++h) {
      a = _mm256_sub_epi8(a, step);
      b = _mm256_sub_epi8(b, step);
      ra = _mm256_xor_si256(ra, _mm256_shuffle_epi8(lo[h], a));
      rb = _mm256_xor_si256(rb, _mm256_shuffle_epi8(hi[h], b));
    }
    return _mm256_blendv_epi8(ra, rb, v);
  }

  // x[i] = table[x[i]] for n bytes in place. Tails: the last (overlapping) vector is looked up
  // from the original bytes before any store and stored last, so no byte is mapped twice.
  void apply(uint8_t* x, int64_t n) const {
    auto ld = [](const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); };
    auto ld16 = [](const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); };
    if (n >= 32) {
      const __m256i tail = lookup(ld(x + n - 32));
      for (int64_t i = 0; i + 32 <= n; i += 32) _mm256_storeu_si256(reinterpret_cast<__m256i*>(x + i), lookup(ld(x + i)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(x + n - 32), tail);
    } else if (n >= 16) {
      const __m256i r = lookup(_mm256_set_m128i(ld16(x + n - 16), ld16(x)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(x), _mm256_castsi256_si128(r));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(x + n - 16), _mm256_extracti128_si256(r, 1));
    } else {
      alignas(32) uint8_t t[32] = {};
      for (int64_t i = 0; i < n; ++i) t[i] = x[i];
      _mm256_store_si256(reinterpret_cast<__m256i*>(t), lookup(_mm256_load_si256(reinterpret_cast<const __m256i*>(t))));
      for (int64_t i = 0; i < n; ++i) x[i] = t[i];
    }
  }
};

}  // namespace
}  // namespace mk
