// fp32 depthwise convolution, avx2 path: the shared kernel body (f32_dwconv_simd.h) with this
// ISA's tuning (the specialisations below), included by the two avx2 files, which split the
// activations between them so the two halves compile in parallel (~60 s each at -O3 in CI's
// Release build; the AVX-512 pair took 223 s as one file): f32_dwconv_avx2.cpp (entry point,
// none / relu) and f32_dwconv_clamped_avx2.cpp (relu6 / hardswish). Include only from files
// compiled with the avx2 flags (cmake/kernels.cmake).
#pragma once
#include "simd/vec_f32_avx2.h"
#include "kernels/f32-dwconv/f32_dwconv_simd.h"

namespace mk {
namespace {
// Two-row blocks (see block2_channels), 16 ymm registers: stride 1, 4 pixels x 2 rows = 8
// accumulators + 6 input columns; stride 2, 3 x 2 = 6 + 7 columns. Measured on Zen 3 against
// the one-row blocks (6 / 4 pixels): 14x14 and 7x7 stride 1 -17..-20%, 112x112 -5%.
// 5x5: stride 1, 4 x 2 (8 columns), stride 2, 3 x 2 (9 columns). In-process A/B on the Xeon
// (AVX2 forced), thread CPU time, 1 thread, medians of 31-41 interleaved, MobileNetV3-Large's
// 5x5 layers: two-row blocks of 4 / 2 against the one-row blocks with run-time checked
// borders: 56x56x72 s2 0.99x, 28x28x120 s1 0.69x, 14x14x672 s2 0.73x (7x7x960 s1, no row pairs,
// 0.40x from the compile-time borders alone); stride 2 at 3 against 2: 0.76-0.91x; stride 1 at 5
// against 4: 28x28x120 1.02-1.07x (14x14 s1 0.93-0.96x), 6: 1.14-1.16x, 3: 1.13x: 4 kept.
template <>
struct TwoRowBlockW<VecF32Avx2> {
  static constexpr int kStride1 = 4, kStride2 = 3, k5Stride1 = 4, k5Stride2 = 3;
};
// Stride-2 sweep blocks (see block_s2_channels): 7 pixels = 7 accumulators + 3 weights + the
// carried column, on rows of at most 7 outputs. In-process A/B on Zen 3 against the two-row
// blocks (3 pixels x 2 rows, rows of 7 cut 3+2+2): 14x14 inputs (OW 7) 0.86-0.94x time, 7x7
// inputs 0.96-0.98x; 28x28 (OW 14) 0.98-1.04x and 56x56 / 112x112 (OW 28, 56) 1.06-1.1x, where
// reading 3 input rows per output row instead of 2.5 costs more than the wider blocks save:
// those keep the two-row blocks.
template <>
struct SweepS2BlockW<VecF32Avx2> {
  static constexpr int kWidth = 7, kMaxOW = 7;
};
// Stride-2 row sweeps (see sweep_row_s2_channels) on rows of 16..32 outputs. In-process A/B on
// Zen 3 against the two-row blocks, thread CPU time (1 thread) / wall (2 threads), medians of
// 150-400 interleaved: 56x56x144 0.91-0.94x / 0.70-0.75x, 56x56x24 0.82-0.85x / 0.79-0.84x,
// 32x32x144 0.94x / 0.83-0.99x, 40x40x96 0.95-1.0x / 0.92-1.04x, 64x64x96 0.96-1.02x. Not
// used: OW 14 (28x28x192 0.95-1.04x / 1.01-1.09x; 28x28x96 1.03-1.09x at 1 thread), OW 10
// (20x20x192 1.06-1.1x), OW 40..56 (80x80x64, 112x112x32/96: 1.25-1.6x, a row pass for one
// channel vector no longer fits L1 for the pass over the line's other half); OW <= 7 keeps
// the sweep blocks (0.97-1.0x).
template <>
struct RowSweepS2OW<VecF32Avx2> {
  static constexpr int kMinOW = 16, kMaxOW = 32;
};
// Stride-1 row sweeps (see sweep_rows_s1_channels) on rows of 48..64 outputs, segments of 28.
// In-process A/B on Zen 3 against the two-row blocks, thread CPU time, 1 thread, medians of 81
// interleaved (loaded machine): 56x56x144 0.84x, 56x56x24 0.83x. Cache-resident (a few rows of
// 112x28x32 repeated) the sweep takes 0.75-0.83x the blocks' time, but on full layers of other
// widths the gain is gone: 112x112x32 0.92-1.04x, 80x80x64 1.12-1.19x, 40x40x96 1.02-1.06x,
// 28x28x192 1.0-1.08x, 14x14 1.1-1.45x, 7x7x960 1.0-1.1x: those keep the blocks.
template <>
struct RowSweepS1OW<VecF32Avx2> {
  static constexpr int kMinOW = 48, kMaxOW = 64, kSegment = 28;
};
}  // namespace

// relu6 / hardswish layers (f32_dwconv_clamped_avx2.cpp); same arguments as f32_dwconv_avx2.
void f32_dwconv_avx2_clamped(const F32DwconvParams& p, const float* input, const float* packed, float* output,
                           int64_t row_begin, int64_t row_end, int64_t c_begin, int64_t c_end);

}  // namespace mk
