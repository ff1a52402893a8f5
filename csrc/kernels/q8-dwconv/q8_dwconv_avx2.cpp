// int8 depthwise convolution, avx2 path: q8_dwconv_simd.h over Q8DwAvx2.
#include "simd/vec_q8dw_avx2.h"
#include "kernels/q8-dwconv/q8_dwconv_simd.h"
#include "kernels/q8-lut/q8_lut_avx2.h"

namespace mk {

void q8_dwconv_avx2(const Q8DwconvParams& p, int64_t row_begin, int64_t row_end, int64_t c_begin,
                    int64_t c_end) {
  q8_dwconv_simd<Q8DwAvx2, Q8LutAvx2>(p, row_begin, row_end, c_begin, c_end);
}

int64_t q8_dwconv_avx2_prepare(const Q8DwconvParams& p, void* out) { return q8_dw_prepare<Q8DwAvx2>(p, out); }

}  // namespace mk
