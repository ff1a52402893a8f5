// avx512 build (compiled with the avx512 flags only) of the SE row passes (f32_se_body.h): the
// loops run 16 wide; each channel is still summed in the same order, so every build gives the
// same bits.
#include "kernels/f32-se/f32_se.h"
#include "kernels/f32-se/f32_se_body.h"

namespace mk {

void f32_se_sum_rows_avx512(const float* x, int64_t rows, int64_t ow, int64_t c, int64_t ld,
                            float* racc, double* acc) {
  f32se::sum_rows(x, rows, ow, c, ld, racc, acc);
}
void f32_se_scale_avx512(float* d, int64_t pixels, int64_t c, const float* s) {
  f32se::scale(d, pixels, c, s);
}

}  // namespace mk
