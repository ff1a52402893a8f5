// fp32 depthwise convolution, neon path: the shared kernel body instantiated with VecF32Neon.
// This file is compiled with the neon flags only (cmake/kernels.cmake).
#include "simd/vec_f32_neon.h"
#include "kernels/f32-dwconv/f32_dwconv_simd.h"

namespace mk {

void f32_dwconv_neon(const F32DwconvParams& p, const float* input, const float* packed,
                   float* output, int64_t row_begin, int64_t row_end, int64_t c_begin,
                   int64_t c_end) {
  f32_dwconv_simd<VecF32Neon>(p, input, packed, output, row_begin, row_end, c_begin, c_end);
}

const char* f32_dwconv_neon_variant(const F32DwconvParams& p) {
  static const char* const names[] = {"neon/3x3s1", "neon/3x3s2", "neon/5x5s1", "neon/5x5s2",
                                      "neon/7x7s1", "neon/7x7s2"};
  const int idx = fixed_index(p);
  return idx < 0 ? "neon/generic" : names[idx];
}

}  // namespace mk
