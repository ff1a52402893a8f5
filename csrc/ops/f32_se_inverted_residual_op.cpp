#include "ops/f32_se_inverted_residual_op.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kernels/f32-dwconv/f32_dwconv_kernels.h"
#include "kernels/f32-gemm/f32_gemm_kernels.h"
#include "kernels/f32-se/f32_se.h"
#include "ops/f32_conv1x1_op.h"
#include "ops/f32_dwconv_op.h"
#include "ops/ir_bands.h"
#include "ops/work_ranges.h"

namespace mk {
namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("se_inverted_residual: " + what);
}

bool valid_act(Activation a) { return static_cast<int>(a) >= 0 && static_cast<int>(a) <= 3; }
bool valid_gate(SeGate g) { return g == SeGate::hardsigmoid || g == SeGate::sigmoid; }

const F32DwconvKernel& dw_kernel(Isa level) {
  const Isa isa = f32_dwconv_resolve(level);
  for (const F32DwconvKernel& k : kF32DwconvKernels)
    if (k.isa == isa) return k;
  return kF32DwconvKernels[0];
}

struct SeRowFns {
  F32SeSumRowsFn sum_rows;
  F32SeScaleFn scale;
};

// The row passes built for the GEMM's x86 level (avx512 or avx2), else the baseline build.
SeRowFns se_row_fns() {
#if defined(MK_X86)
  const Isa g = f32_gemm_resolve(active_isa());
  if (g == Isa::avx512) return {f32_se_sum_rows_avx512, f32_se_scale_avx512};
  if (g != Isa::scalar) return {f32_se_sum_rows_avx2, f32_se_scale_avx2};
#endif
  return {f32_se_sum_rows_scalar, f32_se_scale_scalar};
}

// Floats of A per project GEMM call in pass 3: the scaled rows are still in L2 when the GEMM
// reads them (the GEMM's own A block is 128 KB).
constexpr int64_t kScaleChunkFloats = 32 * 1024;

// Grown once, reused across calls (no allocation per call after the first at a shape).
float* grow(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// Images of at most this many output rows split pass 1 by hidden channels when the batch does
// not spread over the threads: a row split of 7 rows gives one thread 4, and each run expands
// its halo rows again (7x7 at 5x5 on 2 threads: 11 expanded rows for 7). At 14 rows the row
// split is even and the channel split measured slower (V3-Large 14x14 k3 blocks +15-20% at 2
// threads: pass 3 then reads half of each pixel's hidden channels from the other core's cache).
constexpr int64_t kSplitMaxRows = 7;

float gate_of(float v, SeGate g) {
  if (g == SeGate::sigmoid) return 1.f / (1.f + std::exp(-v));
  return std::min(std::max(v + 3.f, 0.f), 6.f) / 6.f;  // torch's hardsigmoid, division included
}

}  // namespace

void f32_se_inverted_residual_validate(const F32SEInvertedResidualParams& p) {
  try {
    f32_inverted_residual_validate(p.ir);
  } catch (const std::invalid_argument& e) {
    // Same checks as the plain block, under this op's name.
    const std::string what = e.what();
    const std::string prefix = "inverted_residual: ";
    throw std::invalid_argument("se_inverted_residual: " +
                                (what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what));
  }
  require(p.Csq > 0, "squeeze channels must be positive");
  require(valid_act(p.act_se), "unknown SE activation");
  require(valid_gate(p.gate), "unknown SE gate (0 = hardsigmoid, 1 = sigmoid)");
}

int64_t f32_se_inverted_residual_buffer_bytes(const F32SEInvertedResidualParams& p) {
  return p.ir.N * p.ir.OH() * p.ir.OW() * p.ir.Chid * int64_t(sizeof(float));
}

std::string f32_se_inverted_residual_kernel_name(const F32SEInvertedResidualParams& p) {
  f32_se_inverted_residual_validate(p);
  const F32InvertedResidualParams& q = p.ir;
  const F32DwconvParams d{1, q.H, q.W, q.Chid, 1, q.K, q.K, q.S, q.S, 1, 1, q.PT, q.PL,
                          q.OH(), q.OW(), q.act_dw};
  return std::string("gemm ") + f32_gemm_kernel(active_isa()).name + " + dwconv " +
         dw_kernel(active_isa()).variant(d) + " + se " +
         (p.gate == SeGate::sigmoid ? "sigmoid" : "hardsigmoid") + ", band " +
         std::to_string(irbands::band_rows(q, int64_t(sizeof(float))));
}

void f32_se_inverted_residual_run(const F32SEInvertedResidualParams& sp, const float* x,
                                  const float* expand_pack, int64_t expand_numel,
                                  const float* dw_pack, int64_t dw_numel,
                                  const float* project_pack, int64_t project_numel,
                                  const float* fc1_pack, int64_t fc1_numel,
                                  const float* fc2_pack, int64_t fc2_numel, float* out,
                                  int num_threads) {
  f32_se_inverted_residual_validate(sp);
  const F32InvertedResidualParams& p = sp.ir;
  if (p.expand) f32_gemm_check_pack(expand_pack, expand_numel, p.Cin, p.Chid);
  f32_dwconv_check_pack(dw_pack, dw_numel, p.Chid, p.K, p.K);
  f32_gemm_check_pack(project_pack, project_numel, p.Chid, p.Cout);
  f32_gemm_check_pack(fc1_pack, fc1_numel, p.Chid, sp.Csq);
  f32_gemm_check_pack(fc2_pack, fc2_numel, sp.Csq, p.Chid);
  if (p.N == 0) return;

  const F32GemmKernel& gk = f32_gemm_kernel(active_isa());
  const F32DwconvKernel& dk = dw_kernel(active_isa());
  const SeRowFns rf = se_row_fns();
  const float* epk = p.expand ? f32_gemm_pack_data(expand_pack) : nullptr;
  const float* dpk = f32_dwconv_pack_data(dw_pack);
  const float* ppk = f32_gemm_pack_data(project_pack);
  const int64_t OH = p.OH(), OW = p.OW(), C = p.Chid, row_hid = p.W * C;
  const int64_t img = OH * OW * C;  // floats of one image's depthwise output
  const int nt = std::max(1, num_threads);
  // Pass 1 splits a small image's hidden channels between the threads when the batch does not
  // spread over them (see kSplitMaxRows); otherwise threads take bands of runs of rows.
  const bool split = nt > 1 && p.N % nt != 0 && OH <= kSplitMaxRows && C >= 2 * kF32GemmPanel * nt;
  const int64_t pieces = split ? 1 : irbands::pieces_per_image(p, nt);
  const int64_t piece_rows = ceil_div(OH, pieces);
  const int64_t band = irbands::even_band(irbands::band_rows(p, int64_t(sizeof(float))), piece_rows);
  const int64_t piece_bands = ceil_div(piece_rows, band);
  const int64_t unit = 2 * kF32GemmPanel, units = ceil_div(C, unit);  // split: 32 channels an item
  const int64_t items1 = split ? p.N * units : p.N * pieces * piece_bands;
  const int64_t scratch = p.expand ? (split ? p.H : irbands::in_rows(p, band)) * row_hid : 0;

  // Owned by the calling thread; the workers write disjoint rows (or channels) of it.
  static thread_local std::vector<float> dbuf_v, se_v;
  static thread_local std::vector<double> sums_v;
  float* dbuf = grow(dbuf_v, p.N * img);
  // Channel sums of every output row [N][OH][C], added in row order in pass 2: the pooled
  // means do not depend on how the rows or channels were split.
  if (static_cast<int64_t>(sums_v.size()) < p.N * OH * C) sums_v.resize(static_cast<size_t>(p.N * OH * C));
  double* sums = sums_v.data();
  // pooled [N][C], squeezed [N][Csq], scale [N][C]
  float* pooled = grow(se_v, p.N * (2 * C + sp.Csq));
  float* squeezed = pooled + p.N * C;
  float* scale = squeezed + p.N * sp.Csq;

  // A thread's expanded rows: image n, input rows [lo, hi), all C channels wide.
  struct Held {
    int64_t n = -1, lo = 0, hi = 0;
  };
  // Pass 1: expand + depthwise of output rows [o_begin, o_end) of image n, hidden channels
  // [c0, c1) (c0 a multiple of 16), into dbuf, and the rows' channel sums into `sums`.
  auto pass1 = [&](int64_t n, int64_t o_begin, int64_t o_end, int64_t c0, int64_t c1, Held& held) {
    static thread_local std::vector<float> buf_v;
    static thread_local std::vector<float> racc_v;
    float* buf = grow(buf_v, scratch);  // expanded rows [have_lo, have_hi), C wide
    float* racc = grow(racc_v, C);      // one output row's channel sums
    const float* x_n = x + n * p.H * p.W * p.Cin;
    float* d_n = dbuf + n * img;
    int64_t have_lo = 0, have_hi = 0;
    if (held.n == n) have_lo = held.lo, have_hi = held.hi;
    for (int64_t b0 = o_begin; b0 < o_end; b0 += band) {
      const int64_t b1 = std::min(o_end, b0 + band);
      const int64_t ih_lo = std::max<int64_t>(0, b0 * p.S - p.PT);
      const int64_t ih_hi = std::min(p.H, (b1 - 1) * p.S - p.PT + p.K);
      const float* src = x_n + ih_lo * p.W * p.Cin;  // t == 1: the depthwise reads x itself
      if (p.expand) {
        // The plain block's band walk: keep the halo rows already expanded, expand the rest.
        int64_t first_new = ih_lo;
        if (ih_lo >= have_lo && ih_lo < have_hi) {
          if (ih_lo > have_lo)
            std::memmove(buf, buf + (ih_lo - have_lo) * row_hid,
                         sizeof(float) * (have_hi - ih_lo) * row_hid);
          first_new = have_hi;
        }
        if (first_new < ih_hi) {
          const F32GemmParams g{(ih_hi - first_new) * p.W, p.Cin, C, p.Cin, C, p.act_expand,
                                nullptr, 0};
          gk.run(g, x_n + first_new * p.W * p.Cin, epk, buf + (first_new - ih_lo) * row_hid, 0,
                 g.M, c0, c1);
        }
        have_lo = ih_lo;
        have_hi = ih_hi;
        src = buf;
      }
      const F32DwconvParams q{1, ih_hi - ih_lo, p.W, C, 1, p.K, p.K, p.S, p.S, 1, 1,
                              p.PT + ih_lo - b0 * p.S, p.PL, b1 - b0, OW, p.act_dw};
      float* dst = d_n + b0 * OW * C;
      dk.run(q, src, dpk, dst, 0, b1 - b0, c0, c1);
      // Channel sums of each row's channels [c0, c1) while the band is in L1 (float over a
      // row's pixels, exact in its zeroed double slot).
      for (int64_t r = b0; r < b1; ++r) {
        double* acc = sums + (n * OH + r) * C;
        std::fill(acc + c0, acc + c1, 0.0);
        rf.sum_rows(dst + (r - b0) * OW * C + c0, 1, OW, c1 - c0, C, racc, acc + c0);
      }
    }
    held = {n, have_lo, have_hi};
  };
  auto pass1_item = [&](int64_t i, Held& held) {
    if (split) {  // 32 hidden channels of image i / units over every row: no halo rows twice
      const int64_t n = i / units, c0 = (i % units) * unit;
      held.n = -1;  // the scratch rows hold other channels
      pass1(n, 0, OH, c0, std::min(C, c0 + unit), held);
      held.n = -1;
      return;
    }
    const int64_t piece = i / piece_bands, n = piece / pieces;
    const int64_t piece_begin = (piece % pieces) * piece_rows;
    const int64_t o_begin = piece_begin + (i % piece_bands) * band;
    const int64_t o_end = std::min({OH, piece_begin + piece_rows, o_begin + band});
    if (o_begin < o_end) pass1(n, o_begin, o_end, 0, C, held);
  };

  // Pass 2: SE on the means (tiny: N x Chid x Csq twice), one thread.
  auto pass2 = [&] {
    const double inv = 1.0 / double(OH * OW);
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        double t = 0.0;
        for (int64_t r = 0; r < OH; ++r) t += sums[(n * OH + r) * C + c];
        pooled[n * C + c] = static_cast<float>(t * inv);
      }
    const F32GemmParams g1{p.N, C, sp.Csq, C, sp.Csq, sp.act_se, nullptr, 0};
    gk.run(g1, pooled, f32_gemm_pack_data(fc1_pack), squeezed, 0, p.N, 0, sp.Csq);
    const F32GemmParams g2{p.N, sp.Csq, C, sp.Csq, C, Activation::none, nullptr, 0};
    gk.run(g2, squeezed, f32_gemm_pack_data(fc2_pack), scale, 0, p.N, 0, C);
    for (int64_t i = 0; i < p.N * C; ++i) scale[i] = gate_of(scale[i], sp.gate);
  };

  // Pass 3: scale pixels [m0, m1) of the batch (dbuf, out and x are all [N*OH*OW] pixel rows)
  // by their image's SE gate; project pixels [m0, m1) to output columns [c0, c1) (+ residual).
  const int64_t pixels = p.N * OH * OW;
  auto scale_rows = [&](int64_t m0, int64_t m1) {
    for (int64_t r0 = m0; r0 < m1;) {
      const int64_t n = r0 / (OH * OW), r1 = std::min(m1, (n + 1) * OH * OW);
      rf.scale(dbuf + r0 * C, r1 - r0, C, scale + n * C);
      r0 = r1;
    }
  };
  auto project = [&](int64_t m0, int64_t m1, int64_t c0, int64_t c1) {
    const F32GemmParams g{m1 - m0, C, p.Cout, C, p.Cout, p.act_project,
                          p.residual ? x + m0 * p.Cin : nullptr, p.Cin};
    gk.run(g, dbuf + m0 * C, ppk, out + m0 * p.Cout, 0, g.M, c0, c1);
  };
  // Scale a chunk of at most chunk_px pixels and project it to every output column while it is
  // still in L2 (the GEMM's own A block is 128 KB).
  const int64_t chunk_px = std::max<int64_t>(1, kScaleChunkFloats / C);
  auto scale_project = [&](int64_t m0, int64_t m1) {
    scale_rows(m0, m1);
    project(m0, m1, 0, p.Cout);
  };

  if (nt == 1 || pixels <= gk.mr) {
    Held held;
    for (int64_t i = 0; i < items1; ++i) pass1_item(i, held);
    pass2();
    for (int64_t m0 = 0; m0 < pixels; m0 += chunk_px) scale_project(m0, std::min(pixels, m0 + chunk_px));
    return;
  }
  // One parallel region: pass 1 items; pass 2 in one thread (the barrier after `single`); then
  // pass 3 in one of two splits, about 4 items per thread:
  // - pass 1 split rows (bands): the one-thread path's scale_project over pixel chunks (~4 per
  //   thread, at most chunk_px) as work items. A thread's own items are the pixels its pass-1
  //   bands wrote, so it reads its depthwise rows from its own cache, and it scales each chunk
  //   right before projecting it (no barrier between the two). In-process A/B at 2 threads on the Xeon
  //   (2 MB L2 per core), MobileNetV3-Large's SE blocks, bit-identical outputs: 56x56 0.88x,
  //   28x28 0.82-0.88x, 14x14 0.81-0.90x the time of the column split below; the whole model
  //   0.94-0.98x (batch 1), 0.94x (batch 2).
  // - pass 1 split hidden channels (small images): every pixel's channels were written by both
  //   threads, so no pixel split reads only local rows. The scale in pixel items, a barrier, then
  //   the project in items of (32 output columns, pixel chunk), column-major so a thread's own
  //   items reuse its columns of the project weights (7x7: 960 x 160 = 614 KB, more than a Zen 3
  //   core's L2). (The pixel split measured level there: 0.96-1.01x.)
  // The caller's (a thread_local named inside the region would be each worker's own).
  static thread_local WorkRanges ranges_tl[3];
  WorkRanges& ranges1 = ranges_tl[0];
  WorkRanges& ranges_scale = ranges_tl[1];
  WorkRanges& ranges3 = ranges_tl[2];
  ranges1.init(items1, nt);
  const int64_t unit_cols = 2 * kF32GemmPanel, col_units = ceil_div(p.Cout, unit_cols);
  const int64_t row_tiles = ceil_div(pixels, gk.mr);
  // Pixel chunks: per column unit when the project is split by columns, else ~4 per thread and
  // at most chunk_px (whole GEMM row tiles; the cap: same bits, batch 1 level, V3-Large's SE
  // blocks at batch 8 0.98x summed at 2 threads, 14x14 0.92-0.99x).
  const int64_t px_chunks = std::min(row_tiles, split ? ceil_div(4 * nt, col_units) : int64_t(4) * nt);
  int64_t px_item = ceil_div(row_tiles, px_chunks) * gk.mr;
  if (!split) px_item = std::min(px_item, std::max<int64_t>(gk.mr, chunk_px / gk.mr * gk.mr));
  const int64_t px_items = ceil_div(pixels, px_item);
  const int64_t scale_item = ceil_div(pixels, 4 * nt);
  if (split) ranges_scale.init(ceil_div(pixels, scale_item), nt);
  ranges3.init(split ? col_units * px_items : px_items, nt);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    Held held;
    for (int64_t i; (i = ranges1.next(t)) >= 0;) pass1_item(i, held);
#pragma omp barrier
#pragma omp single
    pass2();
    if (!split) {
      for (int64_t i; (i = ranges3.next(t)) >= 0;)
        scale_project(i * px_item, std::min(pixels, (i + 1) * px_item));
    } else {
      for (int64_t i; (i = ranges_scale.next(t)) >= 0;)
        scale_rows(i * scale_item, std::min(pixels, (i + 1) * scale_item));
#pragma omp barrier
      for (int64_t i; (i = ranges3.next(t)) >= 0;) {
        const int64_t c0 = (i / px_items) * unit_cols, m0 = (i % px_items) * px_item;
        project(m0, std::min(pixels, m0 + px_item), c0, std::min(p.Cout, c0 + unit_cols));
      }
    }
  }
}

}  // namespace mk
