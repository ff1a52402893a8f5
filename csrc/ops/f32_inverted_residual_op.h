// Fused fp32 inverted-residual block (MobileNetV2/V3 without SE), NHWC:
//
//   x [N, H, W, Cin] -> 1x1 expand to Chid (+bias, act_expand)      (skipped when !expand)
//                    -> KxK depthwise, stride S (+bias, act_dw)
//                    -> 1x1 project to Cout (+bias, act_project)
//                    -> + x                                           (when residual)
//
// The expanded H x W x Chid tensor is never materialised. Each thread takes a run of output
// rows of one image and walks it in bands of `band_rows` output rows: the expand GEMM fills
// a per-thread scratch with just the expanded input rows the band needs (the rows shared with
// the previous band are kept, not recomputed), the depthwise kernel runs on that scratch into
// a second small scratch, and the project GEMM writes the output band with the residual added
// in its epilogue. Where even one-row bands would need more than 1/8 of the expanded tensor
// (28x28, stride 1), the depthwise band and the project GEMM's K run in channel tiles (see
// channel_tile). At 2+ threads the work items are bands (a thread walks its own run of rows
// in order and then takes bands left at the back of others' runs: ops/work_ranges.h). On small
// images (<= 14 output rows) whose batch does not spread over the threads, the threads instead
// expand + depthwise 32 hidden channels per item into a shared buffer and, after one barrier,
// project it in (output columns, pixels) items: the same sums as one thread, so bit-identical
// to it unless one thread tiles the hidden channels. The three stages call the GEMM and
// depthwise kernels of the active ISA.
#pragma once
#include <cstdint>
#include <string>

#include "kernels/common.h"

namespace mk {

struct F32InvertedResidualParams {
  int64_t N, H, W, Cin, Chid, Cout;
  int64_t K, S;              // square depthwise kernel, stride (dilation 1)
  int64_t PT, PB, PL, PR;    // depthwise zero padding, each side in [0, K-1]
  bool expand;               // false: the t == 1 form, Chid == Cin, the depthwise reads x
  Activation act_expand, act_dw, act_project;
  bool residual;             // requires S == 1 and Cin == Cout
  int64_t band_rows;         // output rows per band; 0 = chosen from the cache budget
  // Hidden channels per channel tile (a multiple of 16), 0 = automatic. With tiles, each band
  // expands, depthwises and projects one column slice of the hidden width at a time, the
  // project GEMM summing over the slices in the output; only the expanded rows are kept for
  // the whole width (their halo rows carry over to the next band). Ignored without expand.
  int64_t channel_tile = 0;
  int64_t OH() const { return (H + PT + PB - K) / S + 1; }
  int64_t OW() const { return (W + PL + PR - K) / S + 1; }
};

// Throws std::invalid_argument naming the first inconsistent field.
void f32_inverted_residual_validate(const F32InvertedResidualParams& p);
// The band height a call uses (p.band_rows, or the cache-budget choice when 0).
int64_t f32_inverted_residual_band_rows(const F32InvertedResidualParams& p);
// The channel tile a call uses (p.channel_tile, or the automatic choice; Chid = one tile).
int64_t f32_inverted_residual_channel_tile(const F32InvertedResidualParams& p);
// Scratch bytes one thread uses (expanded rows + depthwise band), and the number of threads a
// call with num_threads would keep busy: total scratch = the product.
int64_t f32_inverted_residual_scratch_bytes(const F32InvertedResidualParams& p);
int f32_inverted_residual_threads(const F32InvertedResidualParams& p, int num_threads);
// What runs at the active ISA level, e.g. "gemm avx2/6x16 + dwconv avx2/3x3s1, band 4".
std::string f32_inverted_residual_kernel_name(const F32InvertedResidualParams& p);
// out [N, OH, OW, Cout] dense NHWC. Each pack is a whole pack (header checked) of the given
// floats; expand_pack is ignored when !p.expand. num_threads <= 0 means one thread.
void f32_inverted_residual_run(const F32InvertedResidualParams& p, const float* x,
                               const float* expand_pack, int64_t expand_numel,
                               const float* dw_pack, int64_t dw_numel,
                               const float* project_pack, int64_t project_numel, float* out,
                               int num_threads);

}  // namespace mk
