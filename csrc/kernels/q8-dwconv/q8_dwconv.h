// int8 depthwise 2-D convolution, NHWC. Torch-free: raw pointers + a params struct.
//
// Semantics as the pointwise GEMM (kernels/q8-gemm/q8_gemm.h), per channel c:
//   acc = bias[c] + sum_taps (x - x_zp) * (w[c][tap] - w_zp[c]),   padding taps read x_zp
//   y   = clamp(nearbyint(float(acc) * scale[c]) + y_zp, y_min, y_max)
// Any kernel size, stride, dilation and padding; 3x3, 5x5 and 7x7 get unrolled tap loops.
// Depth multiplier > 1 is handled by the op layer (input channels repeated).
//
// The kernels read taps through a per-row indirection buffer: one pointer per (output
// column, tap) to an input pixel, or to a row of C bytes holding x_zp for padding taps. That
// makes every shape one code path, and padding exact. Since padding reads x_zp, the kernels
// can compute sum x * w and let the op fold -x_zp * sum_taps w into the bias.
//
// Pack (same 64-byte Q8PackHeader as the GEMM, kind dwconv), Cpad = round_up(C, 16):
//   float w_scale[Cpad] | int32 bias[Cpad] | int32 wsum[Cpad] | int16 w[KH*KW][Cpad]
// with w = raw weight - w_zp[c] (exact in int16 for every uint8/int8 weight and zero point).
#pragma once
#include <cstdint>

#include "kernels/q8-gemm/q8_gemm.h"

namespace mk {

constexpr int64_t kQ8DwChannelBlock = 16;

struct Q8DwLayout {
  int64_t cpad, taps, scale, bias, wsum, weights, total;
};
Q8DwLayout q8_dwconv_layout(int64_t C, int64_t KH, int64_t KW);
// w [C][KH][KW] uint8 (w_signed false) or int8; wzp[C]; w_scale[C]; bias[C] or nullptr.
void q8_dwconv_pack(const void* w, bool w_signed, const int32_t* wzp, const float* w_scale,
                    const int32_t* bias, int64_t C, int64_t KH, int64_t KW, uint8_t* packed);

struct Q8DwconvParams {
  int64_t N, H, W, C;
  int64_t KH, KW, SH, SW, DH, DW, PT, PL, OH, OW;
  const uint8_t* x;      // [N][H][W][C]
  const int16_t* w;      // [KH*KW][Cpad]
  const int32_t* bias;   // [Cpad] effective: bias - x_zp * wsum
  const float* scale;    // [Cpad]
  const uint8_t* zero;   // [C] bytes equal to x_zp (padding taps point here)
  uint8_t* y;            // [N][OH][OW][C]
  bool x_signed, y_signed;
  int32_t y_zp;
  float y_lo, y_hi;      // clamp bounds minus y_zp
  // Optional: this kernel's per-call preparation (weights, bias / scale order, padding row)
  // done ahead by its Q8DwconvPrepareFn for these w, bias, scale, zero, W, C, KH, KW (nullptr:
  // the kernel prepares per call).
  const void* prepared = nullptr;
  // Optional 256-entry activation table applied to each output byte after the requantization
  // (as the GEMM's Q8GemmParams::lut; nullptr: none).
  const uint8_t* lut = nullptr;
};

// Output rows [row_begin, row_end) of the flattened N*OH rows, channels [c_begin, c_end);
// c_begin % 16 == 0.
using Q8DwconvFn = void (*)(const Q8DwconvParams& p, int64_t row_begin, int64_t row_end,
                            int64_t c_begin, int64_t c_end);

// Setup/run split for callers that run the same weights on many short row ranges (the fused
// block's bands): returns the bytes of the kernel's prepared data for p, all channels (0:
// nothing to prepare), and fills out (64-byte aligned) when it is not nullptr. Read-only
// afterwards, so threads may share it.
using Q8DwconvPrepareFn = int64_t (*)(const Q8DwconvParams& p, void* out);

void q8_dwconv_scalar(const Q8DwconvParams&, int64_t, int64_t, int64_t, int64_t);
#if defined(MK_X86)
void q8_dwconv_avx2(const Q8DwconvParams&, int64_t, int64_t, int64_t, int64_t);
int64_t q8_dwconv_avx2_prepare(const Q8DwconvParams&, void*);
void q8_dwconv_avx512vnni(const Q8DwconvParams&, int64_t, int64_t, int64_t, int64_t);
int64_t q8_dwconv_avx512vnni_prepare(const Q8DwconvParams&, void*);
#endif
#if defined(MK_ARM64)
void q8_dwconv_neon(const Q8DwconvParams&, int64_t, int64_t, int64_t, int64_t);
int64_t q8_dwconv_neon_prepare(const Q8DwconvParams&, void*);
#endif

}  // namespace mk
