// int8 GEMM dot-product traits for NEON dotprod (SDOT, int8 x int8 -> int32, 4 per lane).
// Include only from _neondot files (-march=armv8.2-a+dotprod).
#pragma once
#include <arm_neon.h>

#include <cstring>

#include "simd/vec_q8_neon.h"

namespace mk {
namespace {

struct Q8DotNeonDot : Q8NeonBase {
  static constexpr int kMR = 4;  // 4 rows x 16 cols = 16 accumulators + 4 weights
  static constexpr int kVecs = 4;
  static constexpr bool kWideX = false;
  using Acc = int32x4_t;
  using W = int8x16_t;
  using X = int8x16_t;
  static Acc zero() { return vdupq_n_s32(0); }
  static W load_w(const int8_t* p) { return vld1q_s8(p); }
  static X flip_vec(uint32_t f) { return vreinterpretq_s8_u32(vdupq_n_u32(f)); }
  template <bool Flip>
  static X bcast_x(const uint8_t* p, X flip) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    const int8x16_t b = vreinterpretq_s8_u32(vdupq_n_u32(v));
    return Flip ? veorq_s8(b, flip) : b;
  }
  static void dot(Acc& acc, X x, W w) { acc = vdotq_s32(acc, w, x); }
  static I32 finish(Acc acc) { return acc; }
};

}  // namespace
}  // namespace mk
