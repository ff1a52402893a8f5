// fp32 depthwise convolution, avx512 path: the shared kernel body (f32_dwconv_simd.h) with this
// ISA's tuning (the specialisations below), included by the two avx512 files, which split the
// activations between them so the two halves compile in parallel (one file took ~220 s at -O3):
// f32_dwconv_avx512.cpp (entry point, none / relu) and f32_dwconv_clamped_avx512.cpp (relu6 /
// hardswish). Include only from files compiled with the avx512 flags (cmake/kernels.cmake).
#pragma once
#include "simd/vec_f32_avx512.h"
#include "kernels/f32-dwconv/f32_dwconv_simd.h"

namespace mk {
namespace {
// Two-row blocks (see block2_channels): stride 1, 4 pixels x 2 rows = 8 accumulators + 6 input
// columns; stride 2, 3 x 2 = 6 + 7 columns (the AVX2 widths). Measured on the Xeon with
// AVX-512 (2 cores, loaded: load average 5-9), thread CPU time, 1 thread, medians of 15-21
// interleaved, the 17 MobileNetV2 depthwise layers against the one-row blocks (8 pixels):
// sum 0.80x and 0.84x in two runs, every layer faster (112x112x32 0.70-0.82x, 112x112x96 s2
// 0.78-0.81x, 14x14x384 0.78-0.89x, 7x7x960 0.84-0.90x). Same run, other shapes tried:
// stride-1 blocks of 6 (NX 8) as fast as 4 (sum 1.00x, 1.00x); one-row blocks of 12 at stride
// 1: 1.01x; the AVX2 sweeps on top of the two-row blocks were no better within the noise
// (stride-2 sweep blocks, OW <= 7: 1.00x; stride-2 row sweeps over OW 7..64: 1.09x, 112x112x96
// s2 1.35x; stride-1 row sweeps over OW 7..112, segments 28 or 56: 1.02-1.03x): left off.
// 5x5: stride 1, 6 pixels x 2 rows (10 columns), stride 2, 3 x 2 (9 columns). In-process A/B,
// thread CPU time, 1 thread, medians of 31-41 interleaved (load average ~4), MobileNetV3-Large's
// 5x5 layers: two-row blocks of 4 / 2 against the one-row blocks with run-time checked borders:
// 56x56x72 s2 0.89x, 28x28x120 s1 0.73x, 14x14x672 s2 0.76x (7x7x960 s1, no row pairs, 0.44x from
// the compile-time borders alone); then widths 5 / 3 against 4 / 2: 56x56x72 s2 0.91-0.92x,
// 28x28x120 0.99-1.0x, 14x14x672 s2 0.92-0.93x, 14x14x480 s1 0.84-0.88x; 6 against 4 at stride 1:
// 28x28x120 0.93x, 14x14 s1 0.83-0.84x; 6 against 5: 0.98-1.0x. Tried and left off: 5x5 pairs
// reading padding rows too (input rows skipped at run time, so 7x7 inputs pair up): 0.99-1.06x
// (7x7x960 1.06x; AVX2 0.90-1.03x).
template <>
struct TwoRowBlockW<VecF32Avx512> {
  static constexpr int kStride1 = 4, kStride2 = 3, k5Stride1 = 6, k5Stride2 = 3;
};
// Channel-outer sweeps on layers of one vector of channels (see f32_dwconv_chan_sweep.h).
// In-process A/B against the pixel blocks, thread CPU time, 1 thread, medians of 41-101
// interleaved (load average 2-4.5): 112x112x16 s1 0.55-0.73x, s2 0.59-0.79x, 56x56x16 0.58-0.67x,
// 56x56x8 0.57x, 14x14x16 0.78x. With more channels one vector's sweep strides over the other
// vectors' lines: 56x56x24 0.68x and 28x28x32 0.90x, but 112x112x24 s2 0.99x, 56x56x48 1.02x,
// 112x112x32 1.8x, 56x56x64 s2 1.5x, 14x14x384 1.2x: one vector only.
template <>
struct ChanSweep<VecF32Avx512> {
  static constexpr int kBW1 = 4, kBW2 = 4, kMaxC = 16;
};
// Channel groups (see ChanGroup) of 96 channels on 14-wide inputs, 192 on 7-wide ones. Same
// A/B, medians of 61-151, five runs: 14x14x384 0.88-0.98x, 14x14x576 0.84-0.96x, 14x14x576 s2
// 0.90-0.97x, 7x7x960 0.82-0.96x, 7x7x576 0.82x, 14x14x240 1.01x. Tried and left off: groups
// of 128 / 192 at W 14 (no better; 192 worse), and at W 28 groups of 48 (1.1-1.2x), 64, 96,
// 128 (1.0-1.13x).
template <>
struct ChanGroup<VecF32Avx512> {
  static constexpr int kBytes = 1344, kMaxW = 14;
};
}  // namespace

// relu6 / hardswish layers (f32_dwconv_clamped_avx512.cpp); same arguments as f32_dwconv_avx512.
void f32_dwconv_avx512_clamped(const F32DwconvParams& p, const float* input, const float* packed, float* output,
                           int64_t row_begin, int64_t row_end, int64_t c_begin, int64_t c_end);

}  // namespace mk
