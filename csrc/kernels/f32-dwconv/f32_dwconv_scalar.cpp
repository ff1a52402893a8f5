// Portable scalar reference for fp32 depthwise convolution: every shape, stride, dilation,
// padding and depth multiplier. It is the oracle of the C++ tests and the "scalar" path.
#include "kernels/f32-dwconv/f32_dwconv.h"
#include "kernels/scalar_activation.h"

namespace mk {
void f32_dwconv_scalar(const F32DwconvParams& p, const float* input, const float* packed,
                       float* output, int64_t row_begin, int64_t row_end, int64_t c_begin,
                       int64_t c_end) {
  const int64_t cout = p.cout();
  const int64_t cpad = round_up(cout, kF32DwconvChannelAlign);
  const float* bias = packed + p.KH * p.KW * cpad;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / p.OH, oh = r % p.OH;
    const float* in_n = input + n * p.H * p.W * p.C;
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      float* out = output + (r * p.OW + ow) * cout;
      for (int64_t oc = c_begin; oc < c_end; ++oc) {
        const int64_t ic = oc / p.M;
        float acc = bias[oc];
        for (int64_t kh = 0; kh < p.KH; ++kh) {
          const int64_t ih = oh * p.SH - p.PT + kh * p.DH;
          if (ih < 0 || ih >= p.H) continue;
          for (int64_t kw = 0; kw < p.KW; ++kw) {
            const int64_t iw = ow * p.SW - p.PL + kw * p.DW;
            if (iw < 0 || iw >= p.W) continue;
            acc += in_n[(ih * p.W + iw) * p.C + ic] * packed[f32_dwconv_widx(kh * p.KW + kw, oc, p.KH * p.KW)];
          }
        }
        out[oc] = activate_scalar(acc, p.act);
      }
    }
  }
}

const char* f32_dwconv_scalar_variant(const F32DwconvParams&) { return "scalar/reference"; }

}  // namespace mk
