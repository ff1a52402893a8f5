// int8 GEMM dot-product traits for AArch64 NEON (see kernels/q8-gemm/q8_gemm_tile.h).
// Activations are in the int8 domain (the op flips uint8 inputs and folds 128 into the
// bias), so NEON and SDOT share one layout: 4 columns x 4 k per 16-byte vector.
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/q8-gemm/q8_gemm.h"

namespace mk {
namespace {

struct Q8NeonBase {
  static constexpr int kCols = 4;
  using I32 = int32x4_t;
  static I32 load_i32(const int32_t* p) { return vld1q_s32(p); }
  static I32 set1_i32(int32_t v) { return vdupq_n_s32(v); }
  static I32 add_i32(I32 a, I32 b) { return vaddq_s32(a, b); }
  static I32 sub_i32(I32 a, I32 b) { return vsubq_s32(a, b); }
  static I32 mullo_i32(I32 a, I32 b) { return vmulq_s32(a, b); }
  static void store(I32 acc, const float* scale, const Q8GemmParams& p, uint8_t* y, int64_t n) {
    float32x4_t v = vmulq_f32(vcvtq_f32_s32(acc), vld1q_f32(scale));
    v = vminq_f32(vmaxq_f32(v, vdupq_n_f32(p.y_lo)), vdupq_n_f32(p.y_hi));
    // fcvtns: round to nearest, ties to even (independent of FPCR), as nearbyint by default.
    const int32x4_t q = vaddq_s32(vcvtnq_s32_f32(v), vdupq_n_s32(p.y_zp));
    const int16x4_t h = vmovn_s32(q);                              // exact: q in [-128, 255]
    const uint8x8_t b = vreinterpret_u8_s8(vmovn_s16(vcombine_s16(h, h)));  // low bytes
    if (n == 4) {
      vst1_lane_u32(reinterpret_cast<uint32_t*>(y), vreinterpret_u32_u8(b), 0);
    } else {
      uint8_t tmp[8];
      vst1_u8(tmp, b);
      std::memcpy(y, tmp, static_cast<size_t>(n));
    }
  }
};

// What the plain NEON and the SDOT traits share: 4 vectors of 4 int32 columns, x broadcast 4
// bytes at a time; each adds kMR, Acc, zero(), dot() and finish().
struct Q8NeonDot4Base : Q8NeonBase {
  static constexpr int kVecs = 4;
  static constexpr bool kWideX = false;
  using W = int8x16_t;
  using X = int8x16_t;
  static W load_w(const int8_t* p) { return vld1q_s8(p); }
  static X flip_vec(uint32_t f) { return vreinterpretq_s8_u32(vdupq_n_u32(f)); }
  template <bool Flip>
  static X bcast_x(const uint8_t* p, X flip) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    const int8x16_t b = vreinterpretq_s8_u32(vdupq_n_u32(v));
    return Flip ? veorq_s8(b, flip) : b;
  }
};

// Plain NEON: SMULL (exact int16 products of int8) + SADALP (pairwise add into int32). Two
// lanes per column (k0+k1, k2+k3) folded by ADDP in finish().
struct Q8DotNeon : Q8NeonDot4Base {
  static constexpr int kMR = 3;  // 3 rows x 16 cols = 24 accumulator registers of 32
  struct Acc { int32x4_t a, b; };
  static Acc zero() { return {vdupq_n_s32(0), vdupq_n_s32(0)}; }
  static void dot(Acc& acc, X x, W w) {
    acc.a = vpadalq_s16(acc.a, vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    acc.b = vpadalq_s16(acc.b, vmull_high_s8(w, x));
  }
  static I32 finish(const Acc& acc) { return vpaddq_s32(acc.a, acc.b); }
};

}  // namespace
}  // namespace mk
