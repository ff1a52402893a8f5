// The NEON byte lookup as an inline helper, for NEON translation units only (q8_lut_neon.cpp and
// the int8 conv kernels that apply an activation table in their epilogue). Internal linkage.
// 16 bytes per lookup: four TBL/TBX over 64-byte quarters of the table (an index past 63 gives
// 0 in TBL and keeps the previous byte in TBX).
#pragma once
#include <arm_neon.h>

#include <cstdint>

namespace mk {
namespace {

struct Q8LutNeon {
  uint8x16x4_t q[4];

  explicit Q8LutNeon(const uint8_t* table) {
    for (int i = 0; i < 4; ++i) q[i] = vld1q_u8_x4(table + 64 * i);
  }

  uint8x16_t lookup(uint8x16_t idx) const {
    const uint8x16_t k64 = vdupq_n_u8(64);
    uint8x16_t r = vqtbl4q_u8(q[0], idx);
    idx = vsubq_u8(idx, k64);
    r = vqtbx4q_u8(r, q[1], idx);
    idx = vsubq_u8(idx, k64);
    r = vqtbx4q_u8(r, q[2], idx);
    idx = vsubq_u8(idx, k64);
    return vqtbx4q_u8(r, q[3], idx);
  }

  // x[i] = table[x[i]] for n bytes in place; the overlapping last vector is looked up from the
  // original bytes first and stored last, so no byte is mapped twice.
  void apply(uint8_t* x, int64_t n) const {
    if (n >= 16) {
      const uint8x16_t tail = lookup(vld1q_u8(x + n - 16));
      for (int64_t i = 0; i + 16 <= n; i += 16) vst1q_u8(x + i, lookup(vld1q_u8(x + i)));
      vst1q_u8(x + n - 16, tail);
    } else {
      uint8_t t[16] = {};
      for (int64_t i = 0; i < n; ++i) t[i] = x[i];
      vst1q_u8(t, lookup(vld1q_u8(t)));
      for (int64_t i = 0; i < n; ++i) x[i] = t[i];
    }
  }
};

}  // namespace
}  // namespace mk
