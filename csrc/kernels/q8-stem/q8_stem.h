// The two passes in front of a quantized network's first conv: the float input quantized to
// uint8 NHWC codes, and the im2col gather of a dense (stem) conv on those codes. Kernels work on
// one row (the op splits rows between threads); every ISA gives the same bytes as the scalar
// reference (exact: a division rounded as torch divides, then round half to even; a gather).
#pragma once
#include <cstdint>

namespace mk {

// One input row h of image n: y[w * C + c] = clamp(round(x[c * sC + w] / scale) + zp, 0, 255)
// for w < W, c < C (x's W elements contiguous per channel, NCHW-style); NaN -> 0.
using Q8QuantizeRowFn = void (*)(const float* x, int64_t C, int64_t W, int64_t sC, float scale, int32_t zp,
                                 uint8_t* y);

// im2col geometry of one conv on uint8 NHWC [N, H, W, C] -> [N, OH, OW, K], K = C * kh * kw, output
// channel index c * kh * kw + i * kw + j (the layout QConv._im2col and the packed weights use).
struct Q8Im2colParams {
  int64_t N, H, W, C, kh, kw, sh, sw, dh, dw, pt, pl, OH, OW;
  uint8_t pad;
  int64_t K() const { return C * kh * kw; }
};

// Output row oh of image n (OW * K bytes at y).
using Q8Im2colRowFn = void (*)(const Q8Im2colParams& p, const uint8_t* x, int64_t n, int64_t oh, uint8_t* y);

void q8_quantize_row_scalar(const float* x, int64_t C, int64_t W, int64_t sC, float scale, int32_t zp, uint8_t* y);
void q8_im2col_row_scalar(const Q8Im2colParams& p, const uint8_t* x, int64_t n, int64_t oh, uint8_t* y);
#if defined(MK_X86)
void q8_quantize_row_avx2(const float* x, int64_t C, int64_t W, int64_t sC, float scale, int32_t zp, uint8_t* y);
void q8_im2col_row_avx2(const Q8Im2colParams& p, const uint8_t* x, int64_t n, int64_t oh, uint8_t* y);
#endif
#if defined(MK_ARM64)
void q8_quantize_row_neon(const float* x, int64_t C, int64_t W, int64_t sC, float scale, int32_t zp, uint8_t* y);
void q8_im2col_row_neon(const Q8Im2colParams& p, const uint8_t* x, int64_t n, int64_t oh, uint8_t* y);
#endif

}  // namespace mk
