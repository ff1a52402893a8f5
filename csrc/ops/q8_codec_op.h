// The small uint8 steps between the int8 kernels of a quantized network, in C++ so a whole
// quantized forward can run without per-step torch ops: quantize the float input, dequantize the
// output, global average pooling, and the im2col gather of a dense conv
// (the stem). Each reproduces, bit for bit, the torch expression the step-by-step Python path
// evaluates (named at each function): fp32 arithmetic, rounding half to even.
//
// Passes over more than ~64 KB run on up to num_threads OpenMP threads (rows, or channel ranges);
// smaller ones on the caller's thread (a fork/join would cost more). Results never depend on the
// thread count.
#pragma once
#include <cstdint>

#include "dispatch/isa.h"
#include "kernels/q8-eltwise/q8_residual_add.h"
#include "kernels/q8-stem/q8_stem_kernels.h"

namespace mk {

// The stem kernels (input quantization rows, im2col rows) of the active ISA.
const Q8StemKernel& q8_stem_kernel();

// Python: clamp(round(x / scale) + zp, 0, 255).to(uint8) on float32 x, x read at element strides
// (sN, sC, sH, sW) so NCHW and channels_last inputs both work; y dense NHWC. NaN -> 0.
void q8_quantize_f32(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t sN, int64_t sC,
                     int64_t sH, int64_t sW, double scale, int32_t zp, uint8_t* y, int num_threads = 1);

// Python: (q.to(float32) - zp) * scale, elementwise over n codes.
void q8_dequantize_f32(const uint8_t* q, int64_t n, double scale, int32_t zp, float* y);

// Global average pool of uint8 NHWC [N, HW, C] codes -> [N, C]. Python:
//   acc = sum(q) - zp * HW  (int32);  clamp(round(float(acc) * float(scale / (HW * y_scale))) + y_zp, 0, 255)
void q8_global_avgpool(const uint8_t* x, int64_t N, int64_t HW, int64_t C, double scale, int32_t zp,
                       double y_scale, int32_t y_zp, uint8_t* y, int num_threads = 1);

// The residual add loop for an ISA level: AVX-512 (kernels/q8-eltwise/q8_residual_add_avx512.cpp)
// where the level reaches avx512, else the baseline loop of q8_residual_add.h; the same bytes
// either way. q8_add and the fused int8 block's epilogue both run it.
using Q8AddFn = void (*)(const AddQuant&, const uint8_t*, const uint8_t*, uint8_t*, int64_t);
Q8AddFn q8_add_kernel(Isa level);

// The int8 residual add on byte codes (quant.modules.qadd), n elements (out may alias a or b):
//   clamp(round(f32(a - za) * f32(sa / so) + f32(b - zb) * f32(sb / so)) + zo, out range)
// with the products and the sum each rounded to fp32 as torch's separate ops round them; each of
// a, b, out is uint8 or (flag set) int8 codes.
void q8_add(const uint8_t* a, double sa, int32_t za, const uint8_t* b, double sb, int32_t zb, double so,
            int32_t zo, uint8_t* out, int64_t n, bool a_signed = false, bool b_signed = false,
            bool out_signed = false);

// Attention gate on uint8 codes (quant.modules._mul_gate): x [N, HW, C] NHWC times a per-(n, c)
// gate g [N, C] (SE / ECA) ->
//   clamp(round(f32(x - z) * (f32(g - gz) * f32(s * gs / ys))) + yz, 0, 255)
void q8_mul_channel_gate(const uint8_t* x, int64_t N, int64_t HW, int64_t C, double s, int32_t z,
                         const uint8_t* g, double gs, int32_t gz, double ys, int32_t yz, uint8_t* out,
                         int num_threads = 1);

// im2col of uint8 NHWC [N, H, W, C] for a kh x kw conv (stride, dilation, zero padding
// top/bottom/left/right filled with pad_value) -> [N, OH, OW, C*kh*kw], channel index
// c*kh*kw + i*kw + j (the layout of QConv._im2col, which the packed weights follow).
void q8_im2col(const uint8_t* x, int64_t N, int64_t H, int64_t W, int64_t C, int64_t kh, int64_t kw,
               int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
               uint8_t pad_value, uint8_t* y, int num_threads = 1);
// Output size of q8_im2col along one dimension (torch's conv formula); throws on a bad geometry.
int64_t q8_im2col_out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1);

}  // namespace mk
