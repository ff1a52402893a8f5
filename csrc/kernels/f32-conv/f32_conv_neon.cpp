// fp32 small-Cin conv, neon path: the shared body (f32_conv_simd.h) instantiated with
// VecF32Neon, 6 output pixels x 16 channels per register block. Compiled with the neon flags only.
#include "simd/vec_f32_neon.h"
#include "kernels/f32-conv/f32_conv_simd.h"

namespace mk {

void f32_conv_neon(const F32ConvParams& p, const float* x, const float* packed, float* y,
                 int64_t row_begin, int64_t row_end) {
  f32conv::conv_rows<VecF32Neon, 6>(p, x, packed, y, row_begin, row_end);
}

}  // namespace mk
