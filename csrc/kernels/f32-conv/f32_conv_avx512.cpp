// fp32 small-Cin conv, avx512 path: the shared body (f32_conv_simd.h) instantiated with
// VecF32Avx512, 12 output pixels x 16 channels per register block. Compiled with the avx512 flags only.
#include "simd/vec_f32_avx512.h"
#include "kernels/f32-conv/f32_conv_simd.h"

namespace mk {

void f32_conv_avx512(const F32ConvParams& p, const float* x, const float* packed, float* y,
                 int64_t row_begin, int64_t row_end) {
  f32conv::conv_rows<VecF32Avx512, 12>(p, x, packed, y, row_begin, row_end);
}

}  // namespace mk
