// fp32 depthwise 2-D convolution, NHWC. Torch-free: raw pointers + a params struct.
//
// Conventions (same as torch's Conv2d with groups == C):
//   input  [N, H, W, C]           (NHWC, dense)
//   output [N, OH, OW, C * M]     (NHWC, dense), output channel oc reads input channel oc / M
//   packed weights: see f32_dwconv_pack(); built once per weight, reused for every call.
// Padding is zero padding: pad_top / pad_left given, bottom / right implied by OH / OW.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace mk {

struct F32DwconvParams {
  int64_t N, H, W, C;   // input
  int64_t M;            // depth multiplier (output channels = C * M)
  int64_t KH, KW;       // kernel
  int64_t SH, SW;       // stride (>= 1)
  int64_t DH, DW;       // dilation (>= 1)
  int64_t PT, PL;       // zero padding top / left (>= 0)
  int64_t OH, OW;       // output size
  Activation act;
  // hardswish's constants {0, 6, 3, 1/6}, loaded from here at each store on purpose (as in
  // F32GemmParams): hoisted into registers, the four left too few of AVX2's 16 for a 6-pixel
  // block (6 accumulators + 8 input columns + 1 weight) and spilled in the inner loop.
  float act_consts[4] = {0.f, 6.f, 3.f, 1.f / 6.f};
  int64_t cout() const { return C * M; }
};

// Packed channel stride: output channels padded to 16 floats so every vector width we
// have (4, 8, 16) loads whole vectors from the pack.
constexpr int64_t kF32DwconvChannelAlign = 16;

// A pack is a header of kF32DwconvPackHeader floats (magic, version, cout, kh, kw) so a pack
// made for another shape is refused, then the weights in blocks of 16 channels,
// [Cpad/16][KH*KW][16] (so a kernel's taps for one channel vector sit at compile-time offsets
// from one pointer), then [Cpad] bias.
constexpr int64_t kF32DwconvPackHeader = 16;
int64_t f32_dwconv_packed_size(int64_t cout, int64_t kh, int64_t kw);
// weight: torch layout [cout, 1, kh, kw] dense; bias: [cout] or nullptr (zero).
void f32_dwconv_pack(const float* weight, const float* bias, int64_t cout, int64_t kh, int64_t kw,
                     float* packed);
// Throws std::invalid_argument unless `packed` (numel floats) is a pack for this shape.
void f32_dwconv_check_pack(const float* packed, int64_t numel, int64_t cout, int64_t kh, int64_t kw);
// Index of weight (tap, oc) in the weight part of a pack; the bias of oc is at taps*Cpad + oc.
inline constexpr int64_t f32_dwconv_widx(int64_t tap, int64_t oc, int64_t taps) {
  return (oc >> 4) * taps * 16 + tap * 16 + (oc & 15);
}
// The weights+bias part of a pack, what the kernels read.
inline const float* f32_dwconv_pack_data(const float* packed) { return packed + kF32DwconvPackHeader; }

// A kernel computes output rows [row_begin, row_end) of the flattened (N*OH) row space and
// output channels [c_begin, c_end). c_begin must be a multiple of 16.
using F32DwconvFn = void (*)(const F32DwconvParams& p, const float* input, const float* packed,
                             float* output, int64_t row_begin, int64_t row_end, int64_t c_begin,
                             int64_t c_end);
// Name of the variant a kernel picks for a shape ("3x3s1", "generic", ...).
using F32DwconvVariantFn = const char* (*)(const F32DwconvParams& p);

// Per-ISA entry points. Only the scalar one supports M > 1; the op layer expands the input
// channels for SIMD paths (depth multiplier > 1 is rare in practice: correct, not fast).
void f32_dwconv_scalar(const F32DwconvParams&, const float*, const float*, float*, int64_t, int64_t,
                       int64_t, int64_t);
const char* f32_dwconv_scalar_variant(const F32DwconvParams&);
#if defined(MK_X86)
void f32_dwconv_avx2(const F32DwconvParams&, const float*, const float*, float*, int64_t, int64_t,
                     int64_t, int64_t);
const char* f32_dwconv_avx2_variant(const F32DwconvParams&);
void f32_dwconv_avx512(const F32DwconvParams&, const float*, const float*, float*, int64_t,
                       int64_t, int64_t, int64_t);
const char* f32_dwconv_avx512_variant(const F32DwconvParams&);
#endif
#if defined(MK_ARM64)
void f32_dwconv_neon(const F32DwconvParams&, const float*, const float*, float*, int64_t, int64_t,
                     int64_t, int64_t);
const char* f32_dwconv_neon_variant(const F32DwconvParams&);
#endif

}  // namespace mk
