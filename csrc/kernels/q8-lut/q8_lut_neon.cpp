// 16 bytes per step: four TBL/TBX lookups over 64-byte quarters of the table (an index past
// 63 gives 0 in TBL and keeps the previous byte in TBX).
#include <arm_neon.h>

#include "kernels/q8-lut/q8_lut.h"

namespace mk {

void q8_lut_neon(const uint8_t* table, uint8_t* x, int64_t n) {
  const uint8x16x4_t q0 = vld1q_u8_x4(table), q1 = vld1q_u8_x4(table + 64), q2 = vld1q_u8_x4(table + 128),
                     q3 = vld1q_u8_x4(table + 192);
  const uint8x16_t k64 = vdupq_n_u8(64);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    uint8x16_t idx = vld1q_u8(x + i);
    uint8x16_t r = vqtbl4q_u8(q0, idx);
    idx = vsubq_u8(idx, k64);
    r = vqtbx4q_u8(r, q1, idx);
    idx = vsubq_u8(idx, k64);
    r = vqtbx4q_u8(r, q2, idx);
    idx = vsubq_u8(idx, k64);
    r = vqtbx4q_u8(r, q3, idx);
    vst1q_u8(x + i, r);
  }
  for (; i < n; ++i) x[i] = table[x[i]];
}

}  // namespace mk
