// int8 depthwise convolution, neon path: q8_dwconv_simd.h over Q8DwNeon.
#include "simd/vec_q8dw_neon.h"
#include "kernels/q8-dwconv/q8_dwconv_simd.h"
#include "kernels/q8-lut/q8_lut_neon.h"

namespace mk {

void q8_dwconv_neon(const Q8DwconvParams& p, int64_t row_begin, int64_t row_end, int64_t c_begin,
                    int64_t c_end) {
  q8_dwconv_simd<Q8DwNeon, Q8LutNeon>(p, row_begin, row_end, c_begin, c_end);
}

int64_t q8_dwconv_neon_prepare(const Q8DwconvParams& p, void* out) { return q8_dw_prepare<Q8DwNeon>(p, out); }

}  // namespace mk
