// int8 pointwise GEMM, NEON i8mm path (SMMLA: a 2x8 by 8x2 int8 matrix product per
// instruction). Same pack as every other path: two consecutive 4-k groups of 4 columns,
// zipped on 32-bit lanes, are exactly SMMLA's "2 columns x 8 k" operand. Tile: 4 rows x 16
// columns = 2 x 8 accumulators of 2x2. Requantization is Q8NeonBase's (same as neon/neondot).
// Compiled with -march=armv8.6-a+i8mm (cmake/kernels.cmake); runs under qemu -cpu max.
#include <arm_neon.h>

#include <cstring>

#include "simd/vec_q8_neon.h"

namespace mk {
namespace {

template <bool Flip>
inline int8x16_t load_rows(const uint8_t* r0, const uint8_t* r1, int8x16_t flip) {
  const int8x16_t v = vcombine_s8(vld1_s8(reinterpret_cast<const int8_t*>(r0)),
                                  vld1_s8(reinterpret_cast<const int8_t*>(r1)));
  return Flip ? veorq_s8(v, flip) : v;
}

template <bool Flip>
void tile_4x16(const Q8GemmParams& p, int64_t m0, int64_t rows, int64_t n0, int64_t ncols) {
  const int64_t kpad = round_up(p.K, kQ8GemmKR), groups = kpad / kQ8GemmKR;
  const int8_t* w = p.w + (n0 / kQ8GemmNR) * kpad * kQ8GemmNR;
  const int8x16_t flip = vreinterpretq_s8_u32(vdupq_n_u32(p.x_flip));
  const uint8_t* xr[4];
  for (int i = 0; i < 4; ++i) xr[i] = p.x + (m0 + (i < rows ? i : 0)) * p.K;  // spare rows repeat row 0
  int32x4_t acc[2][8];
  for (auto& a : acc)
    for (auto& v : a) v = vdupq_n_s32(0);
  auto step = [&](const uint8_t* const (&xp)[4], int64_t g) {
    const int8_t* w0 = w + g * kQ8GemmNR * kQ8GemmKR;
    int8x16_t b[8];
    for (int q = 0; q < 4; ++q) {  // columns 4q..4q+3: groups g and g+1 zipped per column pair
      const int32x4_t lo = vreinterpretq_s32_s8(vld1q_s8(w0 + q * 16));
      const int32x4_t hi = g + 1 < groups ? vreinterpretq_s32_s8(vld1q_s8(w0 + kQ8GemmNR * kQ8GemmKR + q * 16))
                                          : vdupq_n_s32(0);
      b[2 * q] = vreinterpretq_s8_s32(vzip1q_s32(lo, hi));
      b[2 * q + 1] = vreinterpretq_s8_s32(vzip2q_s32(lo, hi));
    }
    const int8x16_t a0 = load_rows<Flip>(xp[0], xp[1], flip), a1 = load_rows<Flip>(xp[2], xp[3], flip);
    for (int j = 0; j < 8; ++j) {
      acc[0][j] = vmmlaq_s32(acc[0][j], a0, b[j]);
      acc[1][j] = vmmlaq_s32(acc[1][j], a1, b[j]);
    }
  };
  int64_t k = 0;
  for (; k + 8 <= p.K; k += 8) {
    const uint8_t* xp[4] = {xr[0] + k, xr[1] + k, xr[2] + k, xr[3] + k};
    step(xp, k / kQ8GemmKR);
  }
  if (k < p.K) {  // last partial 8-k block: valid bytes only (the weights beyond K are zero)
    uint8_t tail[4][8] = {};
    for (int i = 0; i < 4; ++i) std::memcpy(tail[i], xr[i] + k, static_cast<size_t>(p.K - k));
    const uint8_t* xp[4] = {tail[0], tail[1], tail[2], tail[3]};
    step(xp, k / kQ8GemmKR);
  }
  for (int q = 0; q < 4; ++q) {  // 4 columns at a time: rows from the 2x2 blocks
    const int64_t c = n0 + 4 * q, n = ncols - 4 * q;
    if (n <= 0) break;
    const int32x4_t bias = vld1q_s32(p.bias + c);
    for (int rp = 0; rp < 2; ++rp) {
      const int64x2_t l = vreinterpretq_s64_s32(acc[rp][2 * q]), r = vreinterpretq_s64_s32(acc[rp][2 * q + 1]);
      const int32x4_t row[2] = {vreinterpretq_s32_s64(vzip1q_s64(l, r)), vreinterpretq_s32_s64(vzip2q_s64(l, r))};
      for (int h = 0; h < 2; ++h) {
        const int i = 2 * rp + h;
        if (i >= rows) break;
        int32x4_t v = vaddq_s32(row[h], bias);
        if (p.wzp) v = vsubq_s32(v, vmulq_s32(vdupq_n_s32(p.rowsum[m0 + i]), vld1q_s32(p.wzp + c)));
        uint8_t* y = p.y + (m0 + i) * p.N + c;
        Q8NeonBase::store(v, p.scale + c, p, y, n < 4 ? n : 4);
        if (p.lut)
          for (int64_t k = 0, e = n < 4 ? n : 4; k < e; ++k) y[k] = p.lut[y[k]];
      }
    }
  }
}

template <bool Flip>
void run(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  for (int64_t n0 = n_begin; n0 < n_end; n0 += kQ8GemmNR) {
    const int64_t ncols = n_end - n0 < kQ8GemmNR ? n_end - n0 : kQ8GemmNR;
    for (int64_t m = m_begin; m < m_end; m += 4)
      tile_4x16<Flip>(p, m, m_end - m < 4 ? m_end - m : 4, n0, ncols);
  }
}

}  // namespace

void q8_gemm_neoni8mm(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  if (p.x_flip) run<true>(p, m_begin, m_end, n_begin, n_end);
  else run<false>(p, m_begin, m_end, n_begin, n_end);
}

}  // namespace mk
