// fp32 depthwise convolution, avx512 path: the entry point and the none / relu layers; relu6 /
// hardswish run in f32_dwconv_clamped_avx512.cpp (see f32_dwconv_avx512_tuning.h). This file is
// compiled with the avx512 flags only (cmake/kernels.cmake).
#include "kernels/f32-dwconv/f32_dwconv_avx512_tuning.h"

namespace mk {

void f32_dwconv_avx512(const F32DwconvParams& p, const float* input, const float* packed,
                   float* output, int64_t row_begin, int64_t row_end, int64_t c_begin,
                   int64_t c_end) {
  if (clamped_activation(p.act))
    return f32_dwconv_avx512_clamped(p, input, packed, output, row_begin, row_end, c_begin, c_end);
  f32_dwconv_simd_unclamped<VecF32Avx512>(p, input, packed, output, row_begin, row_end, c_begin, c_end);
}

const char* f32_dwconv_avx512_variant(const F32DwconvParams& p) {
  static const char* const names[] = {"avx512/3x3s1", "avx512/3x3s2", "avx512/5x5s1", "avx512/5x5s2",
                                      "avx512/7x7s1", "avx512/7x7s2"};
  const int idx = fixed_index(p);
  return idx < 0 ? "avx512/generic" : names[idx];
}

}  // namespace mk
