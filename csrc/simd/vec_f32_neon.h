// 4 x fp32 vector traits for AArch64 NEON.
#pragma once
#include <arm_neon.h>

#include <cstdint>

namespace mk {
namespace {

struct VecF32Neon {
  using T = float32x4_t;
  static constexpr int kWidth = 4;
  static constexpr int kBlockW = 4;  // 32 q registers
  static constexpr int kBlockWStride1 = 6;

  static T zero() { return vdupq_n_f32(0.f); }
  static T set1(float f) { return vdupq_n_f32(f); }
  static T load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, T v) { vst1q_f32(p, v); }
  // NEON has no masked loads: go through a small stack buffer so nothing past n is touched.
  static T load_partial(const float* p, int64_t n) {
    float buf[4] = {0.f, 0.f, 0.f, 0.f};
    for (int64_t i = 0; i < n; ++i) buf[i] = p[i];
    return vld1q_f32(buf);
  }
  static void store_partial(float* p, T v, int64_t n) {
    float buf[4];
    vst1q_f32(buf, v);
    for (int64_t i = 0; i < n; ++i) p[i] = buf[i];
  }
  static T fmadd(T a, T b, T c) { return vfmaq_f32(c, a, b); }
  static T add(T a, T b) { return vaddq_f32(a, b); }
  static T mul(T a, T b) { return vmulq_f32(a, b); }
  static T max(T a, T b) { return vmaxq_f32(a, b); }
  static T min(T a, T b) { return vminq_f32(a, b); }
};

}  // namespace
}  // namespace mk
