// 32 bytes per step with 16 vpshufb over 16-entry sub-tables. vpshufb reads table[idx & 15] when
// idx's bit 7 is clear and returns 0 otherwise. For x < 128, sub-table i looked up at x - 16 i
// answers exactly when i <= x >> 4 (a larger i wraps below zero: bit 7 set), so with the
// sub-tables stored as differences (d[0] = t[0], d[i] = t[i] ^ t[i-1]) the XOR of all eight
// lookups telescopes to t[x >> 4][x & 15]. The upper half of the table does the same on
// x ^ 0x80, and x's bit 7 picks the half (vpblendvb reads the top bit of each mask byte).
#include <immintrin.h>

#include "kernels/q8-lut/q8_lut.h"

namespace mk {

void q8_lut_avx2(const uint8_t* table, uint8_t* x, int64_t n) {
  __m256i lo[8], hi[8];
  for (int i = 0; i < 8; ++i) {
    alignas(16) uint8_t dl[16], dh[16];
    for (int l = 0; l < 16; ++l) {
      dl[l] = table[16 * i + l] ^ (i ? table[16 * (i - 1) + l] : 0);
      dh[l] = table[128 + 16 * i + l] ^ (i ? table[128 + 16 * (i - 1) + l] : 0);
    }
    lo[i] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(dl)));
    hi[i] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(dh)));
  }
  const __m256i step = _mm256_set1_epi8(16), top = _mm256_set1_epi8(static_cast<char>(0x80));
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    __m256i a = v, b = _mm256_xor_si256(v, top);
    __m256i ra = _mm256_shuffle_epi8(lo[0], a), rb = _mm256_shuffle_epi8(hi[0], b);
    for (int h = 1; h < 8; ++h) {
      a = _mm256_sub_epi8(a, step);
      b = _mm256_sub_epi8(b, step);
      ra = _mm256_xor_si256(ra, _mm256_shuffle_epi8(lo[h], a));
      rb = _mm256_xor_si256(rb, _mm256_shuffle_epi8(hi[h], b));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x + i), _mm256_blendv_epi8(ra, rb, v));
  }
  for (; i < n; ++i) x[i] = table[x[i]];
}

}  // namespace mk
