// fp32 depthwise convolution, avx512 path: relu6 and hardswish layers (the half of the
// activations split off f32_dwconv_avx512.cpp so the two compile in parallel). Compiled with
// the avx512 flags only (cmake/kernels.cmake).
#include "kernels/f32-dwconv/f32_dwconv_avx512_tuning.h"

namespace mk {

void f32_dwconv_avx512_clamped(const F32DwconvParams& p, const float* input, const float* packed, float* output,
                           int64_t row_begin, int64_t row_end, int64_t c_begin, int64_t c_end) {
  f32_dwconv_simd_clamped<VecF32Avx512>(p, input, packed, output, row_begin, row_end, c_begin, c_end);
}

}  // namespace mk
