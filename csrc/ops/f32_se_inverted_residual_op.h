// Fused fp32 inverted-residual block with squeeze-excitation (MobileNetV3's SE bneck), NHWC:
//
//   x [N, H, W, Cin] -> 1x1 expand to Chid (+bias, act_expand)      (skipped when !expand)
//                    -> KxK depthwise, stride S (+bias, act_dw)      = d [N, OH, OW, Chid]
//                    -> SE: s = gate(fc2(act_se(fc1(mean_hw(d)))))   per image, [Chid]
//                    -> 1x1 project of d * s to Cout (+bias, act_project)
//                    -> + x                                           (when residual)
//
// SE needs the mean of the whole depthwise output before any output row can be projected, so
// the band-by-band pipeline of the plain block (f32_inverted_residual_op.h) cannot run end to
// end. Design, three passes per call:
//   1. expand + depthwise in bands exactly as the plain block (expanded rows, halo kept, in a
//      small per-thread scratch), but the depthwise output of every band goes to one buffer
//      of N*OH*OW*Chid floats (the only full-size intermediate; at most 28x28x120 = 376 KB per
//      image in V3-Large, so it stays in L2) and each band's channel sums are added up while
//      the band is still in L1;
//   2. SE on the per-image sums: fc1 and fc2 are GEMMs with M = N (the 1x1 conv packs), the
//      gate (hardsigmoid relu6(v+3)/6, or sigmoid) in a scalar loop;
//   3. the buffer's pixels are scaled in place by s (the same rounded product the unfused
//      d * s computes) and projected, residual in the epilogue.
// At 2+ threads the three passes run in one parallel region (pass 2 in one thread between
// barriers), work shared by WorkRanges (ops/work_ranges.h). Pass 1 takes bands of runs of rows,
// except on images of at most 7 output rows whose batch does not spread over the threads:
// there items are 32 hidden channels over every row (no halo rows expanded twice, no 4 : 3 row
// split of 7 rows). Pass 3 scales in pixel items, then projects in (32 output columns, pixel
// chunk) items, so a thread reads only its columns of the project weights.
// Folding s into the project weights instead would repack Chid x Cout per image, more work
// than scaling OH*OW*Chid activations for every SE block of V3 (7x7: 49*960 vs 960*160).
// The channel sums are kept per output row (float over a row's pixels) and added in row order
// in double, so the result does not depend on the thread count or the split.
#pragma once
#include <cstdint>
#include <string>

#include "kernels/common.h"
#include "ops/f32_inverted_residual_op.h"

namespace mk {

enum class SeGate : int { hardsigmoid = 0, sigmoid = 1 };

struct F32SEInvertedResidualParams {
  F32InvertedResidualParams ir;  // the block around the SE (band_rows: pass-1 bands)
  int64_t Csq;                   // squeeze channels (fc1: Chid -> Csq, fc2: Csq -> Chid)
  Activation act_se;             // after fc1 (ReLU in MobileNetV3)
  SeGate gate;                   // after fc2
};

// Throws std::invalid_argument naming the first inconsistent field.
void f32_se_inverted_residual_validate(const F32SEInvertedResidualParams& p);
// Bytes of the depthwise-output buffer a call uses (N*OH*OW*Chid floats).
int64_t f32_se_inverted_residual_buffer_bytes(const F32SEInvertedResidualParams& p);
// What runs at the active ISA level, e.g. "gemm avx2/6x16 + dwconv avx2/5x5s1 + se hardsigmoid, band 4".
std::string f32_se_inverted_residual_kernel_name(const F32SEInvertedResidualParams& p);
// out [N, OH, OW, Cout] dense NHWC, not overlapping x. Packs are whole packs (header checked):
// expand (ignored when !ir.expand) Cin x Chid, dw Chid KxK, project Chid x Cout, fc1 Chid x Csq,
// fc2 Csq x Chid (1x1 conv packs with bias). num_threads <= 0 means one thread.
void f32_se_inverted_residual_run(const F32SEInvertedResidualParams& p, const float* x,
                                  const float* expand_pack, int64_t expand_numel,
                                  const float* dw_pack, int64_t dw_numel,
                                  const float* project_pack, int64_t project_numel,
                                  const float* fc1_pack, int64_t fc1_numel,
                                  const float* fc2_pack, int64_t fc2_numel, float* out,
                                  int num_threads);

}  // namespace mk
