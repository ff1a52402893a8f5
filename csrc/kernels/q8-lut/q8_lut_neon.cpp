// The NEON table kernel: Q8LutNeon (q8_lut_neon.h) over the whole buffer.
#include "kernels/q8-lut/q8_lut_neon.h"

#include "kernels/q8-lut/q8_lut.h"

namespace mk {

void q8_lut_neon(const uint8_t* table, uint8_t* x, int64_t n) {
  if (n > 0) Q8LutNeon(table).apply(x, n);
}

}  // namespace mk
