#include "ops/f32_inverted_residual_op.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kernels/f32-dwconv/f32_dwconv_kernels.h"
#include "kernels/f32-gemm/f32_gemm_kernels.h"
#include "ops/f32_conv1x1_op.h"
#include "ops/f32_dwconv_op.h"
#include "ops/aligned_scratch.h"
#include "ops/ir_bands.h"
#include "ops/work_ranges.h"
#include "kernels/scalar_activation.h"

namespace mk {
namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("inverted_residual: " + what);
}

bool valid_act(Activation a) { return static_cast<int>(a) >= 0 && static_cast<int>(a) <= 3; }

const F32DwconvKernel& dw_kernel(Isa level) {
  const Isa isa = f32_dwconv_resolve(level);
  for (const F32DwconvKernel& k : kF32DwconvKernels)
    if (k.isa == isa) return k;
  return kF32DwconvKernels[0];
}

// Images of at most this many output rows (7x7 in MobileNets) split their hidden channels
// between threads when the batch cannot go one image per thread: splitting rows would expand
// the halo rows twice (two threads: 9 expanded rows instead of 7) and give one thread 4 of 7
// rows. The cost instead: the depthwise output goes through a shared buffer and one barrier
// (run_split). 14-row outputs split rows (two pieces of 7, bands within them): on the Xeon
// (2 threads, batch 1, wall time, same run) MobileNetV2 blocks 7-13 ran at 0.75-0.87x of the
// unfused ops with the channel split and at 1.03-1.18x with row pieces (17-block sum 1.05x ->
// 1.16x of the unfused sequence).
constexpr int64_t kSplitMaxRows = 7;
// The split's shared depthwise output (N images) stays within L2 + L3 reach up to this size;
// larger batches take row pieces instead.
constexpr int64_t kSplitMaxFloats = 1 << 19;  // 2 MB

using irbands::in_rows;
using irbands::pieces_per_image;

// Scratch floats of a band of `band` output rows in channel tiles of `ct`: the expanded rows
// and one tile of the depthwise band. The expanded rows of every tile are kept (halo rows for
// the next band) unless a thread's rows are one band (`one_band`): then the tiles take turns
// in one tile's rows.
int64_t scratch_floats(const F32InvertedResidualParams& p, int64_t band, int64_t ct, bool one_band) {
  return (p.expand ? in_rows(p, band) * p.W * (one_band ? ct : p.Chid) : 0) + band * p.OW() * ct;
}
int64_t scratch_floats(const F32InvertedResidualParams& p, int64_t band, int64_t ct) {
  return scratch_floats(p, band, ct, band >= p.OH());
}

// The channel tile for bands of `band` rows. Automatic: the whole width unless the scratch
// would exceed 1/8 of the expanded tensor on an H >= 28 input (irbands::band_rows then gave
// the smallest band); then the widest tile (a multiple of the GEMM panel) that meets 1/8, if
// any does (a forced taller band may not get there with any tile: then none). Tiles cost a
// pass over the output band per extra tile, so no narrower than needed.
int64_t channel_tile_for(const F32InvertedResidualParams& p, int64_t band) {
  if (!p.expand) return p.Chid;
  if (p.channel_tile > 0) return std::min(p.channel_tile, p.Chid);
  const int64_t expanded = p.H * p.W * p.Chid;
  if (p.H < 28 || scratch_floats(p, band, p.Chid) * 8 <= expanded ||
      scratch_floats(p, band, kF32GemmPanel) * 8 > expanded)  // tiles would not reach 1/8
    return p.Chid;
  int64_t ct = round_up(p.Chid, kF32GemmPanel) - kF32GemmPanel;
  while (ct > kF32GemmPanel && scratch_floats(p, band, ct) * 8 > expanded) ct -= kF32GemmPanel;
  return std::max(ct, kF32GemmPanel);
}

// The depthwise pack of hidden channels [c0, c0 + ct) (c0 a multiple of 16): the kernels find
// the bias after the weights of p.C channels, so a tile needs its own copy.
void dw_tile_pack(const float* dpk, int64_t chid, int64_t taps, int64_t c0, int64_t ct, float* dst) {
  const int64_t tpad = round_up(ct, kF32DwconvChannelAlign);
  std::memcpy(dst, dpk + c0 * taps, sizeof(float) * tpad * taps);
  std::memcpy(dst + tpad * taps, dpk + taps * round_up(chid, kF32DwconvChannelAlign) + c0,
              sizeof(float) * tpad);
}

float* thread_scratch(int64_t floats) {
  // Reused across calls: the fused block's whole point is a small buffer that stays hot.
  static thread_local std::vector<float> buf;
  return aligned_in(buf, floats);
}

// The small-image split (see kSplitMaxRows) in two phases of one parallel region. Phase 1,
// items (image, 32 hidden channels): expand every input row of those channels into the
// thread's scratch (full-width rows, only the item's columns written) and depthwise them into
// the shared buffer d [N][OH][OW][Chid]. One barrier. Phase 2, items (image, 32 output
// columns, chunk of pixels): project d (+ residual). Each output is the full-K sum one thread's
// band walk makes, so the result is bit-identical to one thread (where one thread does not tile
// the hidden channels: never below 28 input rows unless forced), and no partial outputs are
// zeroed or added. Items are fine enough for WorkRanges to even out unequal cores.
void run_split(const F32InvertedResidualParams& p, const float* x, const float* epk,
               const float* dpk, const float* ppk, const F32GemmKernel& gk,
               const F32DwconvKernel& dk, float* out, int nt) {
  const int64_t OH = p.OH(), OW = p.OW(), px = OH * OW, C = p.Chid;
  const int64_t unit = 2 * kF32GemmPanel;  // columns per item: one two-panel GEMM tile
  const int64_t hid_units = ceil_div(C, unit), out_units = ceil_div(p.Cout, unit);
  // Pixel chunks (whole GEMM row tiles): about 8 items per thread over the batch.
  const int64_t tiles_px = ceil_div(px, gk.mr);
  const int64_t chunks = std::min(tiles_px, std::max<int64_t>(1, ceil_div(8 * nt, p.N * out_units)));
  const int64_t chunk_px = ceil_div(tiles_px, chunks) * gk.mr, px_chunks = ceil_div(px, chunk_px);
  static thread_local std::vector<float> d_v;
  float* d = aligned_in(d_v, p.N * px * C);
  static thread_local WorkRanges ranges_tl[2];  // the caller's, shared by the team
  WorkRanges& phase1 = ranges_tl[0];
  WorkRanges& phase2 = ranges_tl[1];
  phase1.init(p.N * hid_units, nt);
  phase2.init(p.N * out_units * px_chunks, nt);
  const F32DwconvParams q{1, p.H, p.W, C, 1, p.K, p.K, p.S, p.S, 1, 1, p.PT, p.PL, OH, OW, p.act_dw};
  const F32GemmParams ge{p.H * p.W, p.Cin, C, p.Cin, C, p.act_expand, nullptr, 0};
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    float* rows = thread_scratch(p.H * p.W * C);
    for (int64_t i; (i = phase1.next(t)) >= 0;) {
      const int64_t n = i / hid_units, c0 = (i % hid_units) * unit, c1 = std::min(C, c0 + unit);
      gk.run(ge, x + n * p.H * p.W * p.Cin, epk, rows, 0, ge.M, c0, c1);
      dk.run(q, rows, dpk, d + n * px * C, 0, OH, c0, c1);
    }
#pragma omp barrier
    for (int64_t i; (i = phase2.next(t)) >= 0;) {
      const int64_t n = i / (out_units * px_chunks), r = i % (out_units * px_chunks);
      const int64_t c0 = (r / px_chunks) * unit, m0 = (r % px_chunks) * chunk_px;
      const float* x_n = x + n * p.H * p.W * p.Cin;
      const F32GemmParams g{px, C, p.Cout, C, p.Cout, p.act_project, p.residual ? x_n : nullptr, p.Cin};
      gk.run(g, d + n * px * C, ppk, out + n * px * p.Cout, m0, std::min(px, m0 + chunk_px), c0,
             std::min(p.Cout, c0 + unit));
    }
  }
}

}  // namespace

void f32_inverted_residual_validate(const F32InvertedResidualParams& p) {
  irbands::validate_geometry(p, require);
  require(valid_act(p.act_expand) && valid_act(p.act_dw) && valid_act(p.act_project),
          "unknown activation");
  require(p.channel_tile >= 0 && p.channel_tile % kF32GemmPanel == 0,
          "channel_tile must be a multiple of 16 (0 = automatic)");
}

int64_t f32_inverted_residual_band_rows(const F32InvertedResidualParams& p) {
  return irbands::band_rows(p, int64_t(sizeof(float)));
}

int64_t f32_inverted_residual_channel_tile(const F32InvertedResidualParams& p) {
  return channel_tile_for(p, f32_inverted_residual_band_rows(p));
}

int64_t f32_inverted_residual_scratch_bytes(const F32InvertedResidualParams& p) {
  const int64_t band = f32_inverted_residual_band_rows(p);
  return scratch_floats(p, band, channel_tile_for(p, band)) * int64_t(sizeof(float));
}

int f32_inverted_residual_threads(const F32InvertedResidualParams& p, int num_threads) {
  const int nt = std::max(1, num_threads);
  return static_cast<int>(std::min<int64_t>(nt, std::max<int64_t>(1, p.N) * pieces_per_image(p, nt)));
}

std::string f32_inverted_residual_kernel_name(const F32InvertedResidualParams& p) {
  f32_inverted_residual_validate(p);
  const int64_t band = f32_inverted_residual_band_rows(p), ct = channel_tile_for(p, band);
  const F32DwconvParams q{1, p.H, p.W, p.Chid, 1, p.K, p.K, p.S, p.S, 1, 1, p.PT, p.PL,
                          p.OH(), p.OW(), p.act_dw};
  return std::string("gemm ") + f32_gemm_kernel(active_isa()).name + " + dwconv " +
         dw_kernel(active_isa()).variant(q) + ", band " + std::to_string(band) +
         (ct < p.Chid ? ", channel tile " + std::to_string(ct) : "");
}

void f32_inverted_residual_run(const F32InvertedResidualParams& p, const float* x,
                               const float* expand_pack, int64_t expand_numel,
                               const float* dw_pack, int64_t dw_numel,
                               const float* project_pack, int64_t project_numel, float* out,
                               int num_threads) {
  f32_inverted_residual_validate(p);
  if (p.expand) f32_gemm_check_pack(expand_pack, expand_numel, p.Cin, p.Chid);
  f32_dwconv_check_pack(dw_pack, dw_numel, p.Chid, p.K, p.K);
  f32_gemm_check_pack(project_pack, project_numel, p.Chid, p.Cout);
  if (p.N == 0) return;

  const F32GemmKernel& gk = f32_gemm_kernel(active_isa());
  const F32DwconvKernel& dk = dw_kernel(active_isa());
  const float* epk = p.expand ? f32_gemm_pack_data(expand_pack) : nullptr;
  const float* dpk = f32_dwconv_pack_data(dw_pack);
  const float* ppk = f32_gemm_pack_data(project_pack);
  const int64_t OH = p.OH(), OW = p.OW();
  const int nt = std::max(1, num_threads);
  // Threads split a small image's hidden channels instead of its rows when the batch does not
  // spread evenly (see kSplitMaxRows); otherwise they take runs of rows.
  const bool split = nt > 1 && p.expand && p.N % nt != 0 && OH <= kSplitMaxRows &&
                     p.Chid >= 2 * kF32GemmPanel * nt &&
                     p.N * OH * OW * p.Chid <= kSplitMaxFloats;
  const int64_t pieces = split ? 1 : pieces_per_image(p, nt), items = p.N * pieces;
  const int64_t piece_rows = ceil_div(OH, pieces);
  const int64_t band_auto = f32_inverted_residual_band_rows(p);
  const int64_t band = irbands::even_band(band_auto, piece_rows);  // equal bands in a piece
  const int64_t ct = channel_tile_for(p, band_auto);
  const int64_t tiles = ceil_div(p.Chid, ct);
  const int64_t rows_in = p.expand ? in_rows(p, band) : 0;  // expanded rows held per tile
  const bool one_band = band >= piece_rows;
  const int64_t need = scratch_floats(p, band, ct, one_band);

  // One depthwise pack per channel tile, made once per call and read by every thread.
  const int64_t taps = p.K * p.K, tpad = round_up(ct, kF32DwconvChannelAlign);
  static thread_local std::vector<float> tile_packs;
  float* tile_pack_data = nullptr;
  if (tiles > 1) {
    tile_pack_data = aligned_in(tile_packs, tiles * tpad * (taps + 1));
    for (int64_t j = 0; j < tiles; ++j)
      dw_tile_pack(dpk, p.Chid, taps, j * ct, std::min(ct, p.Chid - j * ct),
                   tile_pack_data + j * tpad * (taps + 1));
  }
  const int64_t epk_panel = (p.Cin + 1) * kF32GemmPanel;

  // A thread's expanded rows: image `n`, input rows [lo, hi) of every tile (when `valid`).
  struct Held {
    int64_t n = -1, lo = 0, hi = 0;
  };
  // Rows kept from one call of rows_work to the next only where the scratch holds every tile's
  // rows (with one band per piece and several tiles, the tiles take turns in one tile's rows).
  const bool keep_across = !(one_band && tiles > 1);

  // Output rows [o_begin, o_end) of image n over channel tiles [j0, j1), projected into dst_n
  // (an image of the output). from_bias: dst_n starts from the project bias (else it holds a
  // partial sum, zeros at first); finish: the last tile applies the activation and residual.
  // `held`: the expanded rows the thread's scratch holds from its previous call (updated).
  auto rows_work = [&](int64_t n, int64_t o_begin, int64_t o_end, int64_t j0, int64_t j1,
                       float* dst_n, bool from_bias, bool finish, Held& held) {
    float* buf = thread_scratch(need);                   // expanded rows [have_lo, have_hi)
    float* dwo = buf + rows_in * p.W * (one_band ? ct : p.Chid);  // a band's tile, depthwised
    const float* x_n = x + n * p.H * p.W * p.Cin;
    int64_t have_lo = 0, have_hi = 0;
    if (held.n == n && keep_across) have_lo = held.lo, have_hi = held.hi;
    for (int64_t b0 = o_begin; b0 < o_end; b0 += band) {
      const int64_t b1 = std::min(o_end, b0 + band);
      const int64_t ih_lo = std::max<int64_t>(0, b0 * p.S - p.PT);
      const int64_t ih_hi = std::min(p.H, (b1 - 1) * p.S - p.PT + p.K);
      // Keep the halo rows the previous band already expanded (moved to the front of each
      // tile's rows), expand only the new ones.
      const bool keep = ih_lo >= have_lo && ih_lo < have_hi;
      const int64_t first_new = keep ? have_hi : ih_lo;
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t c0 = j * ct, cw = std::min(ct, p.Chid - c0);
        const bool last = finish && j == j1 - 1;
        const float* src = x_n + ih_lo * p.W * p.Cin;  // t == 1: the depthwise reads x itself
        if (p.expand) {
          float* rows = buf + (one_band ? 0 : rows_in * p.W * (c0 - j0 * ct));  // [rows_in][W][cw]
          const int64_t row_floats = p.W * cw;
          if (keep && ih_lo > have_lo)
            std::memmove(rows, rows + (ih_lo - have_lo) * row_floats,
                         sizeof(float) * (have_hi - ih_lo) * row_floats);
          if (first_new < ih_hi) {
            const F32GemmParams g{(ih_hi - first_new) * p.W, p.Cin, cw, p.Cin, cw,
                                  p.act_expand, nullptr, 0};
            gk.run(g, x_n + first_new * p.W * p.Cin, epk + (c0 / kF32GemmPanel) * epk_panel,
                   rows + (first_new - ih_lo) * row_floats, 0, g.M, 0, cw);
          }
          src = rows;
        }
        // The band as a small image of its input rows: top padding shifts by the rows skipped,
        // rows past ih_hi are either outside the image or not needed by this band.
        const F32DwconvParams q{1, ih_hi - ih_lo, p.W, cw, 1, p.K, p.K, p.S, p.S, 1, 1,
                                p.PT + ih_lo - b0 * p.S, p.PL, b1 - b0, OW, p.act_dw};
        dk.run(q, src, tiles > 1 ? tile_pack_data + j * tpad * (taps + 1) : dpk, dwo, 0, b1 - b0,
               0, cw);
        // Project over this tile's K rows, summed in the output band.
        F32GemmParams g{(b1 - b0) * OW, cw, p.Cout, cw, p.Cout,
                        last ? p.act_project : Activation::none,
                        last && p.residual ? x_n + b0 * p.W * p.Cin : nullptr, p.Cin};
        g.pack_k = p.Chid;
        g.accumulate = j > j0 || !from_bias;
        gk.run(g, dwo, ppk + c0 * kF32GemmPanel, dst_n + b0 * OW * p.Cout, 0, g.M, 0, p.Cout);
      }
      have_lo = ih_lo;
      have_hi = ih_hi;
    }
    held = {n, have_lo, have_hi};
  };

  if (split) {
    run_split(p, x, epk, dpk, ppk, gk, dk, out, nt);
    return;
  }

  // Work items: bands of equal pieces of an image (pieces_per_image: one per thread when the
  // batch alone does not spread). A thread walks its pieces' bands in order (keeping the halo
  // rows), then takes single bands from the back of the others' (see WorkRanges).
  const int64_t piece_bands = ceil_div(piece_rows, band);
  auto band_item = [&](int64_t item, Held& held) {
    const int64_t piece = item / piece_bands, n = piece / pieces;
    const int64_t piece_begin = (piece % pieces) * piece_rows;
    const int64_t o_begin = piece_begin + (item % piece_bands) * band;
    const int64_t o_end = std::min({OH, piece_begin + piece_rows, o_begin + band});
    if (o_begin < o_end) rows_work(n, o_begin, o_end, 0, tiles, out + n * OH * OW * p.Cout, true, true, held);
  };
  const int64_t band_items = items * piece_bands;
  if (nt == 1 || items == 1) {
    Held held;
    for (int64_t i = 0; i < band_items; ++i) band_item(i, held);
    return;
  }
  // The caller's (a thread_local named inside the region would be each worker's own).
  static thread_local WorkRanges ranges_tl;
  WorkRanges& ranges = ranges_tl;
  ranges.init(band_items, nt);
#pragma omp parallel num_threads(nt)
  {
    Held held;
    const int t = omp_get_thread_num();
    for (int64_t i; (i = ranges.next(t)) >= 0;) band_item(i, held);
  }
}

}  // namespace mk
