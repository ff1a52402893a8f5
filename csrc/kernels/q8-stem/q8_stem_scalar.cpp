// Scalar reference of the stem kernels (q8_stem.h).
#include "kernels/q8-stem/q8_stem.h"
#include "kernels/q8-stem/q8_stem_common.h"

namespace mk {

void q8_quantize_row_scalar(const float* x, int64_t C, int64_t W, int64_t sC, float scale, int32_t zp, uint8_t* y) {
  const float z = static_cast<float>(zp);
  for (int64_t w = 0; w < W; ++w)
    for (int64_t c = 0; c < C; ++c) y[w * C + c] = stem_quantize_one(x[c * sC + w], scale, z);
}

void q8_im2col_row_scalar(const Q8Im2colParams& p, const uint8_t* x, int64_t n, int64_t oh, uint8_t* y) {
  const int64_t K = p.K();
  for (int64_t ow = 0; ow < p.OW; ++ow) stem_im2col_pixel(p, x, n, oh, ow, y + ow * K);
}

}  // namespace mk
