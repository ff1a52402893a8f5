// Portable scalar int8 depthwise convolution: direct loops with bounds checks (independent of
// the indirection buffer the SIMD paths use); padding taps contribute x_zp * w, which the
// op's effective bias (bias - x_zp * wsum) cancels exactly.
#include "kernels/q8-dwconv/q8_dwconv.h"
#include "kernels/q8-gemm/q8_requant.h"

namespace mk {

void q8_dwconv_scalar(const Q8DwconvParams& p, int64_t row_begin, int64_t row_end, int64_t c_begin,
                      int64_t c_end) {
  const int64_t cpad = round_up(p.C, kQ8DwChannelBlock);
  auto val = [&](uint8_t b) -> int32_t { return p.x_signed ? int32_t(int8_t(b)) : int32_t(b); };
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / p.OH, oh = r % p.OH;
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      uint8_t* out = p.y + (r * p.OW + ow) * p.C;
      for (int64_t c = c_begin; c < c_end; ++c) {
        uint32_t acc = static_cast<uint32_t>(p.bias[c]);  // wrapping int32
        for (int64_t kh = 0; kh < p.KH; ++kh) {
          const int64_t ih = oh * p.SH - p.PT + kh * p.DH;
          for (int64_t kw = 0; kw < p.KW; ++kw) {
            const int64_t iw = ow * p.SW - p.PL + kw * p.DW;
            const bool inside = ih >= 0 && ih < p.H && iw >= 0 && iw < p.W;
            const uint8_t b = inside ? p.x[((n * p.H + ih) * p.W + iw) * p.C + c] : p.zero[c];
            acc += static_cast<uint32_t>(val(b) * p.w[(kh * p.KW + kw) * cpad + c]);
          }
        }
        const uint8_t v = q8_requant_scalar(static_cast<int32_t>(acc), p.scale[c], p.y_lo, p.y_hi, p.y_zp);
        out[c] = p.lut ? p.lut[v] : v;
      }
    }
  }
}

}  // namespace mk
