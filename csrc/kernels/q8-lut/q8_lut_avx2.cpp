// The AVX2 table kernel: Q8LutAvx2 (q8_lut_avx2.h) over the whole buffer.
#include "kernels/q8-lut/q8_lut_avx2.h"

#include "kernels/q8-lut/q8_lut.h"

namespace mk {

void q8_lut_avx2(const uint8_t* table, uint8_t* x, int64_t n) {
  if (n > 0) Q8LutAvx2(table).apply(x, n);
}

}  // namespace mk
