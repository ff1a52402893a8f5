// Fused int8 inverted-residual block (MobileNetV2 without SE), NHWC, the int8 twin of
// ops/f32_inverted_residual_op.h:
//
//   x [N, H, W, Cin] -> int8 1x1 expand to Chid, requant to (e.scale, e.zp), clamp  (if expand)
//                       [-> e.lut]
//                    -> int8 KxK depthwise, stride S, requant to (d.scale, d.zp), clamp [-> d.lut]
//                    -> int8 1x1 project to Cout, requant to (p.scale, p.zp), clamp [-> p.lut]
//                    -> int8 residual add with x, requant to (out_scale, out_zp)  (if residual)
//
// Bit-exact to qconv1x1 -> qdwconv2d -> qconv1x1 (ops/q8_gemm_op.h, ops/q8_dwconv_op.h) and the
// residual add of mobilekernels.quant (QBlock):
//   out = clamp(nearbyint(f32(x - x_zp) * f32(x_scale / out_scale)
//                         + f32(y - p.zp) * f32(p.scale / out_scale)) + out_zp, dtype range)
// with each product and the sum rounded to fp32 separately (no FMA), as torch evaluates it.
//
// The expanded H x W x Chid tensor is never materialised: each thread walks bands of output
// rows; the expand GEMM writes only the expanded rows a band needs into a per-thread scratch
// (rows shared with the previous band are kept), the depthwise kernel reads that scratch and
// writes one band of Chid-wide rows, and the project GEMM writes the output band, to which the
// residual is added in place. Same band / thread plan as the fp32 block, sized in bytes. Where
// even one-row bands would exceed 1/8 of the expanded tensor (H >= 28; 28x28 stride 1 in
// MobileNetV2: 3 expanded rows + 1 depthwise row = 1/7), the depthwise output row is made and
// projected in chunks of output columns instead (the fp32 block tiles hidden channels there). The
// kernels' per-call setup (GEMM weight widening, depthwise weight order) runs once per call
// when threads run several bands. Small images (<= 14 output rows from < 28 input rows) whose
// batch does not spread over the threads split hidden channels instead: each thread expands and
// depthwises its channels of the whole image into shared buffers, then projects its output
// channels. Where the batch does spread and one band is a whole image of few pixels (7x7), a
// work item takes several images, so each GEMM runs over all their rows at once.
//
// Activations: clamps in the quantized range (ReLU / ReLU6 = a narrower [min, max]), as in
// qconv1x1 / qdwconv2d, and/or a 256-entry lookup table per stage (Hardswish, any elementwise
// activation), as mobilekernels.quant's unfused path runs them: the conv requantizes to the
// table's input qparams (scale, zp, clamp), then the table maps every byte in place on the
// scratch rows (kernels/q8-lut) to the stage's output qparams (lut_scale, lut_zp), which the
// next stage (or the residual add) reads.
#pragma once
#include <cstdint>
#include <string>

#include "kernels/q8-dwconv/q8_dwconv.h"
#include "kernels/q8-gemm/q8_gemm.h"
#include "kernels/q8-lut/q8_lut.h"

namespace mk {

struct Q8StageQuant {  // output quantization of one conv stage
  double scale;
  int32_t zp;
  int32_t min, max;  // clamp in the output dtype (fused ReLU / ReLU6)
  // Optional: a 256-entry table applied after the requantization (an int8 code is looked up by
  // its byte); then (lut_scale, lut_zp) are the stage's output qparams and (scale, zp) the
  // table's input qparams.
  const uint8_t* lut = nullptr;
  double lut_scale = 1.0;
  int32_t lut_zp = 0;
  double out_scale() const { return lut ? lut_scale : scale; }
  int32_t out_zp() const { return lut ? lut_zp : zp; }
};

struct Q8InvertedResidualParams {
  int64_t N, H, W, Cin, Chid, Cout;
  int64_t K, S;            // square depthwise kernel, stride (dilation 1)
  int64_t PT, PB, PL, PR;  // depthwise padding (reads the zero point), each in [0, K-1]
  bool expand;             // false: the t == 1 form, Chid == Cin, the depthwise reads x
  bool residual;           // requires S == 1, Cin == Cout and an output as large as x
  int64_t band_rows;       // output rows per band; 0 = chosen from the cache budget
  double x_scale;
  int32_t x_zp;
  bool x_signed;           // x is int8 (true) or uint8
  bool y_signed;           // every tensor the block produces (hidden rows and output) is int8
  Q8StageQuant e, d, p;    // expand (ignored when !expand), depthwise, project
  double out_scale;        // residual add output (ignored without residual; clamp = dtype range)
  int32_t out_zp;
  // Output columns per depthwise + project step (one output row at a time when < OW); 0 =
  // automatic (the whole row unless the 1/8 scratch rule needs chunks). Not exposed to Python:
  // tests force it.
  int64_t chunk_cols = 0;
  // Images per work item where one band covers a whole image (small images at batch > 1): the
  // two GEMMs then run over several images' rows per call. 0 = automatic, 1 = one image per item.
  // Not exposed to Python: tests force it.
  int64_t group_images = 0;
  int64_t OH() const { return (H + PT + PB - K) / S + 1; }
  int64_t OW() const { return (W + PL + PR - K) / S + 1; }
};

// Throws std::invalid_argument naming the first inconsistent field.
void q8_inverted_residual_validate(const Q8InvertedResidualParams& p);
// The band height a call uses (p.band_rows, or the cache-budget choice when 0; row_sums: see
// q8_inverted_residual_chunk_cols).
int64_t q8_inverted_residual_band_rows(const Q8InvertedResidualParams& p, bool row_sums = false);
// The output columns per depthwise + project step a call uses (OW: whole rows); row_sums: a
// weight pack keeps zero points (int32 row sums in the scratch; byte 27 of its header).
int64_t q8_inverted_residual_chunk_cols(const Q8InvertedResidualParams& p, bool row_sums);
// Images per work item a call on num_threads runs (1 unless whole images run as one band; see
// Q8InvertedResidualParams::group_images).
int64_t q8_inverted_residual_group_images(const Q8InvertedResidualParams& p, bool row_sums, int num_threads);
// Scratch bytes a call on num_threads allocates per busy thread (expanded rows + the depthwise
// band or chunk, of group_images images, + int32 row sums when row_sums), and besides those the
// bytes of the buffers the threads share (the small-image channel split's whole expanded and
// depthwised image; 0 otherwise). And the threads a call would keep busy.
int64_t q8_inverted_residual_scratch_bytes(const Q8InvertedResidualParams& p, bool row_sums, int num_threads = 1);
int64_t q8_inverted_residual_shared_bytes(const Q8InvertedResidualParams& p, int num_threads);
int q8_inverted_residual_threads(const Q8InvertedResidualParams& p, int num_threads);
// Whether a call on num_threads splits the hidden channels between threads instead of the
// output rows (small images whose batch does not spread over the threads; see the .cpp).
bool q8_inverted_residual_splits_channels(const Q8InvertedResidualParams& p, int num_threads);
// What runs at the active ISA level, e.g. "gemm avx2/6x8-vpmaddwd + dwconv avx2/16c-vpmaddwd, band 4"
// (+ ", chunk 12" when rows run in column chunks).
std::string q8_inverted_residual_kernel_name(const Q8InvertedResidualParams& p, bool row_sums = false);
// out [N, OH, OW, Cout] dense NHWC bytes. Each pack is a whole int8 pack (header checked);
// expand_pack is ignored when !p.expand. num_threads <= 0 means one thread.
void q8_inverted_residual_run(const Q8InvertedResidualParams& p, const void* x,
                              const uint8_t* expand_pack, int64_t expand_bytes,
                              const uint8_t* dw_pack, int64_t dw_bytes,
                              const uint8_t* project_pack, int64_t project_bytes, void* out,
                              int num_threads);
// Same on explicit kernels (tests: every compiled path, the AVX2 emulation of VNNI too); lut
// nullptr = the active ISA's table kernel.
void q8_inverted_residual_run_with(Q8GemmFn gemm, bool gemm_signed_x, Q8DwconvFn dw,
                                   const Q8InvertedResidualParams& p, const void* x,
                                   const uint8_t* expand_pack, int64_t expand_bytes,
                                   const uint8_t* dw_pack, int64_t dw_bytes,
                                   const uint8_t* project_pack, int64_t project_bytes, void* out,
                                   int num_threads, Q8LutFn lut = nullptr);
// The table kernel of the active ISA level (and its name).
Q8LutFn q8_lut_kernel();
std::string q8_lut_kernel_name();

}  // namespace mk
