// fp32 depthwise convolution, avx2 path: the shared kernel body instantiated with VecF32Avx2.
// This file is compiled with the avx2 flags only (cmake/kernels.cmake).
#include "simd/vec_f32_avx2.h"
#include "kernels/f32-dwconv/f32_dwconv_simd.h"

namespace mk {

void f32_dwconv_avx2(const F32DwconvParams& p, const float* input, const float* packed,
                   float* output, int64_t row_begin, int64_t row_end, int64_t c_begin,
                   int64_t c_end) {
  f32_dwconv_simd<VecF32Avx2>(p, input, packed, output, row_begin, row_end, c_begin, c_end);
}

const char* f32_dwconv_avx2_variant(const F32DwconvParams& p) {
  static const char* const names[] = {"avx2/3x3s1", "avx2/3x3s2", "avx2/5x5s1", "avx2/5x5s2",
                                      "avx2/7x7s1", "avx2/7x7s2"};
  const int idx = fixed_index(p);
  return idx < 0 ? "avx2/generic" : names[idx];
}

}  // namespace mk
