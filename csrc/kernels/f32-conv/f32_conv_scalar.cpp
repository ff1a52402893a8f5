// Portable scalar fp32 small-Cin conv on the packed weights: the "scalar" path and the
// reference the SIMD kernels are tested against (the tests also check it against an fp64 loop
// on the torch weight layout). Straight from the definition in f32_conv.h.
#include "kernels/f32-conv/f32_conv.h"
#include "kernels/scalar_activation.h"

namespace mk {

void f32_conv_scalar(const F32ConvParams& p, const float* x, const float* packed, float* y,
                     int64_t row_begin, int64_t row_end) {
  const int64_t oh = p.oh(), ow = p.ow(), pstride = (p.taps() + 1) * kF32ConvPanel;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / oh, oy = r % oh;
    for (int64_t ox = 0; ox < ow; ++ox) {
      float* out = y + (r * ow + ox) * p.cout;
      for (int64_t co = 0; co < p.cout; ++co) {
        const float* panel = packed + (co / kF32ConvPanel) * pstride + co % kF32ConvPanel;
        float acc = panel[0];
        for (int64_t ky = 0; ky < p.kh; ++ky) {
          const int64_t iy = oy * p.sh - p.pt + ky * p.dh;
          if (iy < 0 || iy >= p.h) continue;
          for (int64_t kx = 0; kx < p.kw; ++kx) {
            const int64_t ix = ox * p.sw - p.pl + kx * p.dw;
            if (ix < 0 || ix >= p.w) continue;
            for (int64_t ci = 0; ci < p.cin; ++ci) {
              const int64_t t = (ky * p.kw + kx) * p.cin + ci;
              acc += x[n * p.xs_n + ci * p.xs_c + iy * p.xs_h + ix * p.xs_w] *
                     panel[(t + 1) * kF32ConvPanel];
            }
          }
        }
        out[co] = activate_scalar(acc, p.act);
      }
    }
  }
}

}  // namespace mk
