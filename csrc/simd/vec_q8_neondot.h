// int8 GEMM dot-product traits for NEON dotprod (SDOT, int8 x int8 -> int32, 4 per lane).
// Include only from _neondot files (-march=armv8.2-a+dotprod).
#pragma once
#include <arm_neon.h>

#include "simd/vec_q8_neon.h"

namespace mk {
namespace {

struct Q8DotNeonDot : Q8NeonDot4Base {
  static constexpr int kMR = 4;  // 4 rows x 16 cols = 16 accumulators + 4 weights
  using Acc = int32x4_t;
  static Acc zero() { return vdupq_n_s32(0); }
  static void dot(Acc& acc, X x, W w) { acc = vdotq_s32(acc, w, x); }
  static I32 finish(Acc acc) { return acc; }
};

}  // namespace
}  // namespace mk
