// fp32 dense (groups = 1) convolution for few input channels: the network stem (3x3 stride 2
// on 3 RGB channels). Torch-free: raw pointers + a params struct.
//
//   y[n, oy, ox, co] = act(bias[co] + sum_{ky, kx, ci} x[n, ci, iy, ix] * w[co, ci, ky, kx])
//   iy = oy * sh - pt + ky * dh,   ix = ox * sw - pl + kx * dw   (taps outside x read as 0)
//
// x is read in place through its four element strides (NCHW contiguous, channels_last, a
// slice: any layout, no copy); y is NHWC (channels_last), row stride ow * cout.
//
// Packed weights: output channels in panels of kF32ConvPanel (16). Panel j holds [16 bias]
// then T = kh * kw * cin rows of 16 weights, row t = (ky * kw + kx) * cin + ci, columns past
// cout zero. One pack serves every ISA (16 = 2 ymm = 1 zmm = 4 q registers).
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace mk {

constexpr int64_t kF32ConvPanel = 16;

struct F32ConvParams {
  int64_t n, cin, h, w;              // input shape (NCHW indexing)
  int64_t cout;
  int64_t kh, kw, sh, sw;            // kernel and stride
  int64_t pt, pb, pl, pr;            // padding top, bottom, left, right
  int64_t dh, dw;                    // dilation
  int64_t xs_n, xs_c, xs_h, xs_w;    // input element strides (>= 0)
  Activation act;
  int64_t oh() const { return (h + pt + pb - dh * (kh - 1) - 1) / sh + 1; }
  int64_t ow() const { return (w + pl + pr - dw * (kw - 1) - 1) / sw + 1; }
  int64_t taps() const { return kh * kw * cin; }
};

// A pack starts with kF32ConvPackHeader floats (magic, version, cin, cout, kh, kw) so a pack
// made for another shape is refused before any kernel reads it; the panels follow.
constexpr int64_t kF32ConvPackHeader = 16;
int64_t f32_conv_packed_size(int64_t cin, int64_t cout, int64_t kh, int64_t kw);
// weight: torch layout [cout, cin, kh, kw] dense; bias: [cout] or nullptr (zero).
void f32_conv_pack(const float* weight, const float* bias, int64_t cin, int64_t cout, int64_t kh,
                   int64_t kw, float* packed);
// Throws std::invalid_argument unless `packed` (numel floats) is a pack of this shape.
void f32_conv_check_pack(const float* packed, int64_t numel, int64_t cin, int64_t cout, int64_t kh,
                         int64_t kw);
inline const float* f32_conv_pack_data(const float* packed) { return packed + kF32ConvPackHeader; }

// A kernel computes output rows [row_begin, row_end) of the flattened (image, output row)
// range [0, n * oh), all columns and channels; `packed` is f32_conv_pack_data() of a pack,
// `y` the whole output. It reads only in-bounds input elements.
using F32ConvFn = void (*)(const F32ConvParams& p, const float* x, const float* packed, float* y,
                           int64_t row_begin, int64_t row_end);

void f32_conv_scalar(const F32ConvParams&, const float*, const float*, float*, int64_t, int64_t);
#if defined(MK_X86)
void f32_conv_avx2(const F32ConvParams&, const float*, const float*, float*, int64_t, int64_t);
void f32_conv_avx512(const F32ConvParams&, const float*, const float*, float*, int64_t, int64_t);
#endif
#if defined(MK_ARM64)
void f32_conv_neon(const F32ConvParams&, const float*, const float*, float*, int64_t, int64_t);
#endif

}  // namespace mk
