#include "kernels/q8-lut/q8_lut.h"

namespace mk {

void q8_lut_scalar(const uint8_t* table, uint8_t* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = table[x[i]];
}

}  // namespace mk
