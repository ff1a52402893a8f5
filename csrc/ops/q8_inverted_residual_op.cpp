#include "ops/q8_inverted_residual_op.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>


#include "kernels/q8-dwconv/q8_dwconv_kernels.h"
#include "kernels/q8-eltwise/q8_residual_add.h"
#include "kernels/q8-gemm/q8_gemm_kernels.h"
#include "kernels/q8-lut/q8_lut_kernels.h"
#include "ops/q8_dwconv_op.h"
#include "ops/aligned_scratch.h"
#include "ops/ir_bands.h"
#include "ops/q8_codec_op.h"
#include "ops/q8_gemm_op.h"
#include "ops/q8_quant_op.h"

namespace mk {
namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("qinverted_residual: " + what);
}

// The unfused op's choice (at amx: AMX per GEMM call where it pays, see ops/q8_gemm_op.cpp).
const Q8GemmKernel& gemm_kernel(Isa level) { return q8_gemm_kernel(level); }

const Q8DwconvKernel& dw_kernel(Isa level) {
  const Isa isa = q8_dwconv_resolve(level);
  for (const Q8DwconvKernel& k : kQ8DwconvKernels)
    if (k.isa == isa) return k;
  return kQ8DwconvKernels[0];
}

const Q8LutKernel& lut_kernel(Isa level) { return kernel_for(kQ8LutKernels, level); }

// The setup/run split of a kernel given by its run function (tests pass kernels explicitly):
// nullptr when it has none (or is not in the tables), then it prepares per call.
Q8GemmPrepareFn gemm_prepare_of(Q8GemmFn fn) {
  for (const Q8GemmKernel& k : kQ8GemmKernels)
    if (k.run == fn) return k.prepare;
  return nullptr;
}

Q8DwconvPrepareFn dw_prepare_of(Q8DwconvFn fn) {
  for (const Q8DwconvKernel& k : kQ8DwconvKernels)
    if (k.run == fn) return k.prepare;
  return nullptr;
}

// A kernel's prepared data: once per call, read-only and shared by the threads, so bands of a
// row or two skip the kernels' per-call setup (GEMM weight widening, depthwise weight order).
struct Prepared {
  std::unique_ptr<uint8_t[]> raw;  // not value-initialized: the kernel fills every byte it reads
  const void* data = nullptr;
  template <class Fn, class Params>
  const void* make(Fn fn, const Params& params) {
    const int64_t bytes = fn ? fn(params, nullptr) : 0;
    if (bytes <= 0) return data = nullptr;
    raw.reset(new uint8_t[static_cast<size_t>(bytes + 64)]);
    auto* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw.get()) + 63) & ~uintptr_t(63));
    fn(params, aligned);
    return data = aligned;
  }
};

using irbands::in_rows;
using irbands::pieces_per_image;

// Images of at most this many output rows from inputs under 28 rows (7x7 in MobileNets; the
// 1/8 scratch rule holds from 28 rows on) split their hidden channels between
// threads when the batch cannot go one image per thread, as the fp32 blocks do: split by rows,
// 7 rows run 4:3 and both threads expand the halo rows. Each thread expands and depthwises its
// 16-channel blocks of the whole image into shared buffers (int8, <= 113 KB on MobileNetV2),
// then, after a barrier, projects its blocks of output channels (+ table, + residual) from all
// hidden channels, so every output byte is computed exactly as the unfused ops compute it.
// Measured against the row split (Zen 3, V2 blocks, batch 1, 2 threads, the busier thread's CPU
// time per call, bench_q8_inverted_residual fused_2t_cpu): 7x7 0.82x, 14 -> 7 s2 0.90x, 14x14
// 0.95-0.98x. On the AVX-512/AMX Xeon (wall time, bench_blocks.py --dtype int8 --threads 2,
// A/B/A runs) the 14-row blocks 8-13 ran at 0.86-1.05x of the three unfused convs with the
// channel split and at 1.26-1.38x with row pieces, so only 7-row outputs split channels (as fp32).
constexpr int64_t kSplitMaxRows = 7;

bool channel_split(const Q8InvertedResidualParams& p, int nt) {
  return nt > 1 && p.N % nt != 0 && p.OH() <= kSplitMaxRows && p.H < 28 &&
         ceil_div(p.Chid, kQ8DwChannelBlock) >= 2 * nt && ceil_div(p.Cout, kQ8GemmNR) >= nt;
}

// Channels [lo, hi) of thread t of team in 16-channel blocks.
void block_share(int64_t C, int t, int team, int64_t& lo, int64_t& hi) {
  const int64_t blocks = ceil_div(C, kQ8GemmNR);
  lo = std::min(C, kQ8GemmNR * (blocks * t / team));
  hi = std::min(C, kQ8GemmNR * (blocks * (t + 1) / team));
}

// Depthwise output pixels one step holds: the band, or one chunk of a row.
int64_t dw_pixels(const Q8InvertedResidualParams& p, int64_t band, int64_t chunk) {
  return chunk >= p.OW() ? band * p.OW() : chunk;
}
// Activation bytes of one thread's scratch: expanded input rows + the depthwise band or chunk.
int64_t act_bytes(const Q8InvertedResidualParams& p, int64_t band, int64_t chunk) {
  return (p.expand ? in_rows(p, band) * p.W * p.Chid : 0) + dw_pixels(p, band, chunk) * p.Chid;
}
// int32 row sums of the two GEMM inputs (only when a pack keeps weight zero points).
int64_t rowsum_ints(const Q8InvertedResidualParams& p, int64_t band, int64_t chunk) {
  return (p.expand ? in_rows(p, band) * p.W : 0) + dw_pixels(p, band, chunk);
}
int64_t scratch_bytes(const Q8InvertedResidualParams& p, int64_t band, int64_t chunk, bool sums) {
  return act_bytes(p, band, chunk) + (sums ? 4 * rowsum_ints(p, band, chunk) : 0);
}

// Output columns per depthwise + project step. From 28 rows on the scratch stays within 1/8 of
// the expanded tensor (irbands::band_rows), but at 28x28 stride 1 (V2 blocks 5 and 6) even a
// one-row band is 3 expanded rows + 1 depthwise row = 1/7: there the depthwise row is made and
// projected a chunk of output columns at a time (same numbers: every output pixel is computed
// alone). The fewest chunks that meet 1/8, and of those widths a multiple of 12 where one
// gives as few chunks (the GEMM row tiles are 3, 4, 6 or 8 rows, the depthwise register blocks
// 4 pixels), else the widest: 28 columns run as 14 + 14, or 12 + 12 + 4 with row sums. Whole
// rows where 1/8 holds without chunks or where the expanded rows alone miss it (5x5 kernels on
// 28 rows). The price is the setup of more, shorter depthwise and GEMM calls: on V2 blocks 5
// and 6 (AVX2, thread CPU time, in-process A/B against whole rows) 14 + 14 cost +3.3%,
// 12 + 12 + 4 +4.0%, 10 + 10 + 8 +5.6%.
constexpr int64_t kChunkAlign = 12;

int64_t chunk_for(const Q8InvertedResidualParams& p, int64_t band, bool sums) {
  const int64_t OW = p.OW();
  if (p.chunk_cols > 0) return std::min(p.chunk_cols, OW);
  const int64_t expanded = p.H * p.W * p.Chid;
  auto fits = [&](int64_t c) { return scratch_bytes(p, band, c, sums) * 8 <= expanded; };
  if (p.H < 28 || fits(OW) || !fits(1)) return OW;
  int64_t c = OW - 1;
  while (!fits(c)) --c;
  const int64_t aligned = c - c % kChunkAlign;
  return aligned > 0 && ceil_div(OW, aligned) == ceil_div(OW, c) ? aligned : c;
}

// Small images at batch > 1: where one band covers the whole image of few output pixels, a
// work item takes several consecutive images (contiguous in x and out), so the expand GEMM,
// the depthwise and the project GEMM each run once over all their rows (the images' scratch
// side by side). A 7x7 image is 49 GEMM rows, 8 six-row tiles and a one-row tile that costs
// about as much as a full one; 4 images are 196 rows (32 tiles + a 4-row one), and the
// per-call setup (weight widening, epilogue constants, depthwise weight order) is shared.
// Measured on V2 blocks 15-17 at batch 32 (AVX2, thread CPU time, in-process A/B against one
// image per item): 1 thread 2-3% faster, 2 threads 2-4%; on 14x14 images (196 rows alone) 2
// images per item made no difference, so images are grouped up to kGroupRows output pixels
// (and kGroupBudgetBytes of scratch), in equal groups.
constexpr int64_t kMaxGroupImages = 4;
constexpr int64_t kGroupRows = 200;
constexpr int64_t kGroupBudgetBytes = 384 * 1024;

// Scratch of a group of g whole images: all H expanded rows (x's images are contiguous), the
// depthwise output, and row sums.
int64_t group_scratch_bytes(const Q8InvertedResidualParams& p, int64_t g, bool sums) {
  const int64_t in_px = p.expand ? p.H * p.W : 0, out_px = p.OH() * p.OW();
  return g * ((in_px + out_px) * p.Chid + (sums ? 4 * (in_px + out_px) : 0));
}

int64_t group_for(const Q8InvertedResidualParams& p, int64_t band, int64_t chunk, bool sums, int nt) {
  // (not where a thread's share is a piece of an image: N = 3 on 2 threads)
  if (p.N < 2 || band < p.OH() || chunk < p.OW() || channel_split(p, nt) || pieces_per_image(p, nt) > 1) return 1;
  const int64_t team = std::min<int64_t>(nt, p.N);
  const int64_t per_thread = ceil_div(p.N, team);  // images of the busiest thread
  if (p.group_images > 0) return std::min(p.group_images, per_thread);
  const int64_t g_max = std::min({kMaxGroupImages, per_thread, kGroupRows / (p.OH() * p.OW())});
  int64_t g = 1;
  while (g < g_max && group_scratch_bytes(p, g + 1, sums) <= kGroupBudgetBytes) ++g;
  return ceil_div(per_thread, ceil_div(per_thread, g));  // equal groups
}

uint8_t* thread_scratch(int64_t bytes) {
  // Reused across calls (the point is a small buffer that stays hot); 64-byte aligned.
  static thread_local std::vector<uint8_t> buf;
  return aligned_in(buf, bytes);
}

Q8Quant stage_quant(double xs, int32_t xz, bool xsig, const Q8StageQuant& s, bool ysig) {
  return Q8Quant{xs, xz, xsig, s.scale, s.zp, ysig, s.min, s.max};
}

// Per-call GEMM preparation, computed exactly as q8_gemm_run_with does (ops/q8_gemm_op.cpp):
// effective bias, requantization scales, the sign flip into the kernel's domain and the weight
// zero points that need row sums. Per band only x, y, M and the row sums change.
struct GemmStage {
  Q8GemmParams base{};
  std::vector<int32_t> bias_eff, wzp_pad;
  std::vector<float> scale;
  Prepared prep;
  bool has_wzp = false, signed_x = false;
  uint8_t flip = 0;

  void prepare(const uint8_t* packed, int64_t bytes, int64_t K, int64_t N, const Q8Quant& q,
               bool kernel_signed_x, Q8GemmPrepareFn kernel_prepare) {
    const Q8PackHeader& h = q8_check_pack(packed, bytes, Q8PackKind::gemm, K, N, 1, 1);
    const Q8GemmLayout l = q8_gemm_layout(K, N);
    const auto* colsum = reinterpret_cast<const int32_t*>(packed + l.colsum);
    const auto* bias = reinterpret_cast<const int32_t*>(packed + l.bias);
    const auto* wzp = reinterpret_cast<const int32_t*>(packed + l.wzp);
    scale = q8_requant_scales(q, reinterpret_cast<const float*>(packed + l.scale), N, l.npad);
    const Q8Domain d = q8_domain(q, kernel_signed_x);
    bias_eff.assign(static_cast<size_t>(l.npad), 0);
    for (int64_t oc = 0; oc < N; ++oc) {
      const int64_t v = int64_t(bias[oc]) - int64_t(d.x_zp) * colsum[oc] + K * int64_t(d.x_zp) * wzp[oc];
      bias_eff[oc] = static_cast<int32_t>(static_cast<uint32_t>(v));
    }
    has_wzp = h.has_wzp != 0;
    if (has_wzp) wzp_pad.assign(wzp, wzp + l.npad);
    signed_x = kernel_signed_x;
    flip = static_cast<uint8_t>(d.flip);
    base.M = 0;
    base.K = K;
    base.N = N;
    base.w = reinterpret_cast<const int8_t*>(packed + l.weights);
    base.bias = bias_eff.data();
    base.scale = scale.data();
    base.wzp = has_wzp ? wzp_pad.data() : nullptr;
    base.rowsum = nullptr;
    base.x_flip = d.flip;
    base.y_zp = q.y_zp;
    base.y_lo = static_cast<float>(q.y_min - q.y_zp);
    base.y_hi = static_cast<float>(q.y_max - q.y_zp);
    base.prepared = prep.make(kernel_prepare, base);
  }

  // y[M][N] = requant(x[M][K] @ w), output channels [n_begin, n_end) (n_begin % 16 == 0, y's
  // rows N wide); rowsum: M int32 of scratch (used only with zero points).
  void run(Q8GemmFn fn, const uint8_t* x, int64_t M, uint8_t* y, int32_t* rowsum, int64_t n_begin = 0,
           int64_t n_end = -1) const {
    Q8GemmParams g = base;
    g.M = M;
    g.x = x;
    g.y = y;
    if (has_wzp) {
      for (int64_t m = 0; m < M; ++m) {
        int32_t s = 0;
        for (int64_t k = 0; k < g.K; ++k) {
          const uint8_t v = x[m * g.K + k] ^ flip;
          s += signed_x ? int32_t(int8_t(v)) : int32_t(v);
        }
        rowsum[m] = s;
      }
      g.rowsum = rowsum;
    }
    fn(g, 0, M, n_begin, n_end < 0 ? g.N : n_end);
  }
};

// Per-call depthwise preparation, as q8_dwconv_run_with (ops/q8_dwconv_op.cpp).
struct DwStage {
  std::vector<int32_t> bias_eff;
  std::vector<float> scale;
  std::vector<uint8_t> zero;
  const int16_t* w = nullptr;
  Q8Quant q{};

  void prepare(const uint8_t* packed, int64_t bytes, int64_t C, int64_t K, const Q8Quant& qq) {
    q8_check_pack(packed, bytes, Q8PackKind::dwconv, C, C, K, K);
    const Q8DwLayout l = q8_dwconv_layout(C, K, K);
    require(bytes == l.total, "depthwise packed weight size does not match its shape");
    const auto* wsum = reinterpret_cast<const int32_t*>(packed + l.wsum);
    const auto* bias = reinterpret_cast<const int32_t*>(packed + l.bias);
    scale = q8_requant_scales(qq, reinterpret_cast<const float*>(packed + l.scale), C, l.cpad);
    bias_eff.assign(static_cast<size_t>(l.cpad), 0);
    for (int64_t c = 0; c < C; ++c)
      bias_eff[c] = static_cast<int32_t>(static_cast<uint32_t>(int64_t(bias[c]) - int64_t(qq.x_zp) * wsum[c]));
    zero.assign(static_cast<size_t>(C), static_cast<uint8_t>(qq.x_zp));
    w = reinterpret_cast<const int16_t*>(packed + l.weights);
    q = qq;
  }
};


}  // namespace

void q8_inverted_residual_validate(const Q8InvertedResidualParams& p) {
  irbands::validate_geometry(p, require);
  require(p.chunk_cols >= 0, "chunk_cols must be >= 0 (0 = automatic)");
  const int32_t ylo = p.y_signed ? -128 : 0, yhi = p.y_signed ? 127 : 255;
  const char* names[3] = {"expand", "depthwise", "project"};
  const Q8StageQuant* stages[3] = {&p.e, &p.d, &p.p};
  for (int i = p.expand ? 0 : 1; i < 3; ++i) {
    const Q8StageQuant& s = *stages[i];
    if (!s.lut) continue;
    require(std::isfinite(s.lut_scale) && s.lut_scale > 0, std::string(names[i]) + " table scale must be finite and > 0");
    require(s.lut_zp >= ylo && s.lut_zp <= yhi, std::string(names[i]) + " table zero point outside the output dtype");
  }
  // Every stage's scales, zero points and clamps (q8_quant_validate names the bad one); a stage
  // with a table feeds the next one its table's output qparams.
  if (p.expand) q8_quant_validate(stage_quant(p.x_scale, p.x_zp, p.x_signed, p.e, p.y_signed));
  const double d_in_scale = p.expand ? p.e.out_scale() : p.x_scale;
  const int32_t d_in_zp = p.expand ? p.e.out_zp() : p.x_zp;
  q8_quant_validate(stage_quant(d_in_scale, d_in_zp, p.expand ? p.y_signed : p.x_signed, p.d, p.y_signed));
  q8_quant_validate(stage_quant(p.d.out_scale(), p.d.out_zp(), p.y_signed, p.p, p.y_signed));
  if (p.residual) {
    const int32_t lo = p.y_signed ? -128 : 0, hi = p.y_signed ? 127 : 255;
    require(std::isfinite(p.out_scale) && p.out_scale > 0, "out_scale must be finite and > 0");
    require(p.out_zp >= lo && p.out_zp <= hi, "out_zero_point outside the output dtype");
    const float fa = static_cast<float>(p.x_scale / p.out_scale), fb = static_cast<float>(p.p.out_scale() / p.out_scale);
    require(std::isfinite(fa) && fa > 0 && std::isfinite(fb) && fb > 0,
            "residual scale ratios x_scale / out_scale and project scale / out_scale must be finite fp32");
  }
}

int64_t q8_inverted_residual_band_rows(const Q8InvertedResidualParams& p, bool row_sums) {
  int64_t band = irbands::band_rows(p, 1);  // the fp32 block's rules, in bytes of int8 activations
  // Row sums add 4 bytes per GEMM input pixel (1/8 more on 32 channels): a band that met 1/8
  // without them (112x112 t == 1: 14 rows, exactly 1/8) gets shorter rather than chunked.
  if (p.band_rows > 0 || !row_sums || p.H < 28) return band;
  while (band > 1 && scratch_bytes(p, band, p.OW(), true) * 8 > p.H * p.W * p.Chid) --band;
  return band;
}

int64_t q8_inverted_residual_chunk_cols(const Q8InvertedResidualParams& p, bool row_sums) {
  return chunk_for(p, q8_inverted_residual_band_rows(p, row_sums), row_sums);
}

int64_t q8_inverted_residual_group_images(const Q8InvertedResidualParams& p, bool row_sums, int num_threads) {
  const int64_t band = q8_inverted_residual_band_rows(p, row_sums);
  return group_for(p, band, chunk_for(p, band, row_sums), row_sums, std::max(1, num_threads));
}

int64_t q8_inverted_residual_scratch_bytes(const Q8InvertedResidualParams& p, bool row_sums, int num_threads) {
  const int nt = std::max(1, num_threads);
  if (channel_split(p, nt)) return row_sums ? 4 * std::max(p.H * p.W, p.OH() * p.OW()) : 0;
  const int64_t band = q8_inverted_residual_band_rows(p, row_sums), chunk = chunk_for(p, band, row_sums);
  const int64_t g = group_for(p, band, chunk, row_sums, nt);
  return g > 1 ? group_scratch_bytes(p, g, row_sums) : scratch_bytes(p, band, chunk, row_sums);
}

int64_t q8_inverted_residual_shared_bytes(const Q8InvertedResidualParams& p, int num_threads) {
  if (!channel_split(p, std::max(1, num_threads))) return 0;
  return ((p.expand ? p.H * p.W : 0) + p.OH() * p.OW()) * p.Chid;
}

bool q8_inverted_residual_splits_channels(const Q8InvertedResidualParams& p, int num_threads) {
  return channel_split(p, std::max(1, num_threads));
}

int q8_inverted_residual_threads(const Q8InvertedResidualParams& p, int num_threads) {
  const int nt = std::max(1, num_threads);
  if (channel_split(p, nt)) return nt;
  return static_cast<int>(std::min<int64_t>(nt, std::max<int64_t>(1, p.N) * pieces_per_image(p, nt)));
}

std::string q8_inverted_residual_kernel_name(const Q8InvertedResidualParams& p, bool row_sums) {
  q8_inverted_residual_validate(p);
  const bool luts = (p.expand && p.e.lut) || p.d.lut || p.p.lut;
  const int64_t chunk = q8_inverted_residual_chunk_cols(p, row_sums);
  return std::string("gemm ") + gemm_kernel(active_isa()).name + " + dwconv " + dw_kernel(active_isa()).name +
         (luts ? std::string(" + lut ") + lut_kernel(active_isa()).name : std::string()) + ", band " +
         std::to_string(q8_inverted_residual_band_rows(p, row_sums)) +
         (chunk < p.OW() ? ", chunk " + std::to_string(chunk) : std::string());
}

Q8LutFn q8_lut_kernel() { return lut_kernel(active_isa()).run; }
std::string q8_lut_kernel_name() { return lut_kernel(active_isa()).name; }

void q8_inverted_residual_run_with(Q8GemmFn gemm, bool gemm_signed_x, Q8DwconvFn dwfn,
                                   const Q8InvertedResidualParams& p, const void* x_in,
                                   const uint8_t* expand_pack, int64_t expand_bytes,
                                   const uint8_t* dw_pack, int64_t dw_bytes,
                                   const uint8_t* project_pack, int64_t project_bytes, void* out_v,
                                   int num_threads, Q8LutFn lutfn) {
  q8_inverted_residual_validate(p);
  if (!lutfn) lutfn = q8_lut_kernel();
  const int64_t OH = p.OH(), OW = p.OW();
  const int nt = std::max(1, num_threads);
  const int64_t pieces = pieces_per_image(p, nt), items = p.N * pieces;
  const int64_t piece_rows = ceil_div(OH, pieces);
  // Row sums (scratch) when a GEMM pack keeps weight zero points; band and chunk depend on it.
  const bool sums =
      (p.expand && q8_check_pack(expand_pack, expand_bytes, Q8PackKind::gemm, p.Cin, p.Chid, 1, 1).has_wzp) ||
      q8_check_pack(project_pack, project_bytes, Q8PackKind::gemm, p.Chid, p.Cout, 1, 1).has_wzp;
  const int64_t band_auto = q8_inverted_residual_band_rows(p, sums);
  const int64_t band = irbands::even_band(band_auto, piece_rows);  // equal bands in a piece
  const int64_t chunk = chunk_for(p, band_auto, sums);
  // Kernel setup ahead, once per call, only where a thread runs several bands (or chunks, or
  // images): with one band per thread (batch 1: 14x14, 7x7) the kernels' own per-call setup is
  // done as often, and widening a 16-column block at a time into L1 measured ~3% faster than
  // reading all prepared weights (up to 300 KB on 7x7x960) from L2. Once a thread runs several
  // whole images (batch > 1, 14x14 and 7x7) preparing once per call measured 1.2% faster at 1
  // thread and 1.7% at 2 over V2 blocks 8-17 at batch 32 (thread CPU time, in-process A/B).
  const bool split = channel_split(p, nt);
  const int64_t group = group_for(p, band_auto, chunk, sums, nt);
  const int64_t thread_bands =  // bands the busiest thread runs
      group > 1 ? ceil_div(ceil_div(p.N, std::min<int64_t>(nt, p.N)), group)
                : ceil_div(items, nt) * ceil_div(piece_rows, band);
  const bool bands_repeat = !split && (thread_bands > 1 || chunk < OW);

  // The same per-call preparation as the three unfused ops, hence the same numbers.
  GemmStage es, ps;
  DwStage ds;
  const Q8GemmPrepareFn gemm_prep = bands_repeat ? gemm_prepare_of(gemm) : nullptr;
  if (p.expand)
    es.prepare(expand_pack, expand_bytes, p.Cin, p.Chid, stage_quant(p.x_scale, p.x_zp, p.x_signed, p.e, p.y_signed),
               gemm_signed_x, gemm_prep);
  const Q8Quant qd = p.expand ? stage_quant(p.e.out_scale(), p.e.out_zp(), p.y_signed, p.d, p.y_signed)
                              : stage_quant(p.x_scale, p.x_zp, p.x_signed, p.d, p.y_signed);
  ds.prepare(dw_pack, dw_bytes, p.Chid, p.K, qd);
  ps.prepare(project_pack, project_bytes, p.Chid, p.Cout,
             stage_quant(p.d.out_scale(), p.d.out_zp(), p.y_signed, p.p, p.y_signed), gemm_signed_x, gemm_prep);
  const uint8_t* e_lut = p.expand ? p.e.lut : nullptr;
  if (p.N == 0) return;

  // the residual add (out, b in place) as quant's qadd rounds it
  const Q8AddFn add = q8_add_kernel(active_isa());  // the AVX-512 loop where the level has it
  const AddQuant aq = p.residual ? make_add_quant(p.x_scale, p.x_zp, p.x_signed, p.p.out_scale(), p.p.out_zp(),
                                                  p.y_signed, p.out_scale, p.out_zp, p.y_signed)
                                 : AddQuant{};

  const auto* x = static_cast<const uint8_t*>(x_in);
  auto* out = static_cast<uint8_t*>(out_v);
  const int64_t row_hid = p.W * p.Chid;
  const int64_t sum_bytes = sums ? 4 * rowsum_ints(p, band, chunk) : 0;
  const int64_t buf_bytes = p.expand ? in_rows(p, band) * row_hid : 0;
  const int64_t need = scratch_bytes(p, band, chunk, sums);
  Q8DwconvParams dw_base{1, 0, p.W, p.Chid, p.K, p.K, p.S, p.S, 1, 1, 0, p.PL, 0, OW,
                         nullptr, ds.w, ds.bias_eff.data(), ds.scale.data(), ds.zero.data(), nullptr,
                         qd.x_signed, qd.y_signed, qd.y_zp,
                         static_cast<float>(qd.y_min - qd.y_zp), static_cast<float>(qd.y_max - qd.y_zp)};
  Prepared dw_prep;
  dw_base.prepared = dw_prep.make(bands_repeat ? dw_prepare_of(dwfn) : nullptr, dw_base);  // depends on W, C, not on the band

  if (split) {
    const int64_t hw = p.H * p.W, ohw = OH * OW;
    static thread_local std::vector<uint8_t> shared;  // the calling thread's, read by the team
    uint8_t* hid = aligned_in(shared, (p.expand ? hw * p.Chid : 0) + ohw * p.Chid);  // [H][W][Chid] expanded
    uint8_t* dwo_all = hid + (p.expand ? hw * p.Chid : 0);         // [OH][OW][Chid] depthwised
    // Channels c of n pixels at stride C, in place: a table stage on a thread's share.
    auto lut_cols = [&](const uint8_t* lut, uint8_t* base, int64_t n, int64_t C, int64_t c0, int64_t c1) {
      for (int64_t i = 0; i < n; ++i) lutfn(lut, base + i * C + c0, c1 - c0);
    };
#pragma omp parallel num_threads(nt)
    {
      const int team = omp_get_num_threads(), t = omp_get_thread_num();
      int64_t c0, c1, n0, n1;
      block_share(p.Chid, t, team, c0, c1);
      block_share(p.Cout, t, team, n0, n1);
      auto* rs = reinterpret_cast<int32_t*>(thread_scratch(sums ? 4 * std::max(hw, ohw) : 0));
      for (int64_t n = 0; n < p.N; ++n) {
        const uint8_t* x_n = x + n * hw * p.Cin;
        uint8_t* out_n = out + n * ohw * p.Cout;
        if (c0 < c1) {
          if (p.expand) {
            es.run(gemm, x_n, hw, hid, rs, c0, c1);
            if (e_lut) lut_cols(e_lut, hid, hw, p.Chid, c0, c1);
          }
          Q8DwconvParams q = dw_base;
          q.H = p.H;
          q.PT = p.PT;
          q.OH = OH;
          q.x = p.expand ? hid : x_n;
          q.y = dwo_all;
          dwfn(q, 0, OH, c0, c1);
          if (p.d.lut) lut_cols(p.d.lut, dwo_all, ohw, p.Chid, c0, c1);
        }
#pragma omp barrier
        if (n0 < n1) {
          ps.run(gemm, dwo_all, ohw, out_n, rs, n0, n1);
          if (p.p.lut) lut_cols(p.p.lut, out_n, ohw, p.Cout, n0, n1);
          if (p.residual)
            for (int64_t i = 0; i < ohw; ++i)
              add(aq, x_n + i * p.Cin + n0, out_n + i * p.Cout + n0, out_n + i * p.Cout + n0, n1 - n0);
        }
        if (n + 1 < p.N) {
#pragma omp barrier  // the next image overwrites the shared buffers
        }
      }
    }
    return;
  }

  if (group > 1) {
    // Images [n0, n0 + g) at once: one band per image, so rows [0, H) and [0, OH) of each.
    auto images = [&](int64_t n0, int64_t g) {
      const int64_t in_px = p.expand ? g * p.H * p.W : 0, out_px = g * OH * OW;
      uint8_t* scratch = thread_scratch(group_scratch_bytes(p, g, sums));
      auto* rs_e = reinterpret_cast<int32_t*>(scratch);
      int32_t* rs_p = rs_e + in_px;
      uint8_t* buf = scratch + (sums ? 4 * (in_px + out_px) : 0);
      uint8_t* dwo = buf + in_px * p.Chid;
      const uint8_t* x_n = x + n0 * p.H * p.W * p.Cin;
      uint8_t* out_n = out + n0 * OH * OW * p.Cout;
      if (p.expand) {
        es.run(gemm, x_n, in_px, buf, rs_e);
        if (e_lut) lutfn(e_lut, buf, in_px * p.Chid);
      }
      Q8DwconvParams q = dw_base;
      q.N = g;
      q.H = p.H;
      q.PT = p.PT;
      q.OH = OH;
      q.x = p.expand ? buf : x_n;
      q.y = dwo;
      dwfn(q, 0, g * OH, 0, p.Chid);
      if (p.d.lut) lutfn(p.d.lut, dwo, out_px * p.Chid);
      ps.run(gemm, dwo, out_px, out_n, rs_p);
      if (p.p.lut) lutfn(p.p.lut, out_n, out_px * p.Cout);
      if (p.residual) add(aq, x_n, out_n, out_n, out_px * p.Cout);
    };
    // Each thread an equal run of images (as schedule(static) over single images), in equal groups.
    const int team = static_cast<int>(std::min<int64_t>(nt, p.N));
    auto run_range = [&](int t) {
      const int64_t a = p.N * t / team, b = p.N * (t + 1) / team, groups = ceil_div(b - a, group);
      for (int64_t i = 0; i < groups; ++i) {
        const int64_t n0 = a + (b - a) * i / groups, n1 = a + (b - a) * (i + 1) / groups;
        if (n1 > n0) images(n0, n1 - n0);
      }
    };
    if (team == 1) {
      run_range(0);
      return;
    }
#pragma omp parallel for num_threads(team) schedule(static, 1)
    for (int t = 0; t < team; ++t) run_range(t);
    return;
  }

  auto work = [&](int64_t item) {
    const int64_t n = item / pieces, o_begin = (item % pieces) * piece_rows;
    const int64_t o_end = std::min(OH, o_begin + piece_rows);
    if (o_begin >= o_end) return;
    uint8_t* scratch = thread_scratch(need);
    auto* rs_e = reinterpret_cast<int32_t*>(scratch);                        // expand row sums
    int32_t* rs_p = rs_e + (p.expand ? in_rows(p, band) * p.W : 0);          // project row sums
    uint8_t* buf = scratch + sum_bytes;                                      // expanded rows [have_lo, have_hi)
    uint8_t* dwo = buf + buf_bytes;                                          // depthwise band
    const uint8_t* x_n = x + n * p.H * p.W * p.Cin;
    uint8_t* out_n = out + n * OH * OW * p.Cout;
    int64_t have_lo = 0, have_hi = 0;
    for (int64_t b0 = o_begin; b0 < o_end; b0 += band) {
      const int64_t b1 = std::min(o_end, b0 + band);
      const int64_t ih_lo = std::max<int64_t>(0, b0 * p.S - p.PT);
      const int64_t ih_hi = std::min(p.H, (b1 - 1) * p.S - p.PT + p.K);
      const uint8_t* src = x_n + ih_lo * p.W * p.Cin;  // t == 1: the depthwise reads x itself
      if (p.expand) {
        // Keep the halo rows the previous band expanded (moved to the front); expand the rest.
        int64_t first_new = ih_lo;
        if (ih_lo >= have_lo && ih_lo < have_hi) {
          if (ih_lo > have_lo) std::memmove(buf, buf + (ih_lo - have_lo) * row_hid, (have_hi - ih_lo) * row_hid);
          first_new = have_hi;
        }
        if (first_new < ih_hi) {
          uint8_t* rows = buf + (first_new - ih_lo) * row_hid;
          es.run(gemm, x_n + first_new * p.W * p.Cin, (ih_hi - first_new) * p.W, rows, rs_e);
          if (e_lut) lutfn(e_lut, rows, (ih_hi - first_new) * row_hid);
        }
        have_lo = ih_lo;
        have_hi = ih_hi;
        src = buf;
      }
      // Depthwise (+ table), project (+ table, + residual) output rows [r0, r1), columns
      // [c0, c0 + cols) (one row when cols < OW, so the output pixels are contiguous).
      auto step = [&](int64_t r0, int64_t r1, int64_t c0, int64_t cols) {
        // The rows as a small image of the band's input rows (top padding shifted by the rows
        // skipped; rows past ih_hi are outside the image, so the kernel reads them as padding),
        // the columns as a window of the rows: W stays the row stride and the right edge, the
        // left padding moves by the columns skipped (negative inside the row). A chunk clear of
        // both edges starts x at its first input column instead (left padding 0): then the
        // kernel sees only interior columns and takes its fast paths on all of them.
        const int64_t left = c0 * p.S - p.PL;  // input column of the chunk's first tap
        const bool clear = left >= 0 && left + (cols - 1) * p.S + p.K <= p.W;
        Q8DwconvParams q = dw_base;
        q.H = ih_hi - ih_lo;
        q.PT = p.PT + ih_lo - r0 * p.S;
        q.OH = r1 - r0;
        q.PL = clear ? 0 : -left;
        q.OW = cols;
        q.x = clear ? src + left * p.Chid : src;  // (t == 1: x itself, Cin == Chid)
        q.y = dwo;
        dwfn(q, 0, r1 - r0, 0, p.Chid);
        const int64_t px = (r1 - r0) * cols;
        if (p.d.lut) lutfn(p.d.lut, dwo, px * p.Chid);
        uint8_t* y = out_n + (r0 * OW + c0) * p.Cout;
        ps.run(gemm, dwo, px, y, rs_p);
        if (p.p.lut) lutfn(p.p.lut, y, px * p.Cout);
        if (p.residual) add(aq, x_n + (r0 * p.W + c0) * p.Cin, y, y, px * p.Cout);
      };
      if (chunk >= OW) {
        step(b0, b1, 0, OW);
      } else {
        for (int64_t r = b0; r < b1; ++r)
          for (int64_t c0 = 0; c0 < OW; c0 += chunk) step(r, r + 1, c0, std::min(chunk, OW - c0));
      }
    }
  };
  if (nt == 1 || items == 1) {
    for (int64_t i = 0; i < items; ++i) work(i);
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < items; ++i) work(i);
}

void q8_inverted_residual_run(const Q8InvertedResidualParams& p, const void* x, const uint8_t* expand_pack,
                              int64_t expand_bytes, const uint8_t* dw_pack, int64_t dw_bytes,
                              const uint8_t* project_pack, int64_t project_bytes, void* out, int num_threads) {
  const Q8GemmKernel& gk = gemm_kernel(active_isa());
  q8_inverted_residual_run_with(gk.run, gk.signed_x, dw_kernel(active_isa()).run, p, x, expand_pack, expand_bytes,
                                dw_pack, dw_bytes, project_pack, project_bytes, out, num_threads);
}

}  // namespace mk
