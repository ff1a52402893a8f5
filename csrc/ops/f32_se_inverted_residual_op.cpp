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

// The avx2 build of the row passes wherever the GEMM runs a SIMD x86 kernel (avx2 or avx512).
SeRowFns se_row_fns() {
#if defined(MK_X86)
  if (f32_gemm_resolve(active_isa()) != Isa::scalar) return {f32_se_sum_rows_avx2, f32_se_scale_avx2};
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
  // spread over them (see kSplitMaxRows); otherwise threads take runs of rows.
  const bool split = nt > 1 && p.N % nt != 0 && OH <= kSplitMaxRows && C >= 2 * kF32GemmPanel * nt;
  const int64_t pieces = split ? 1 : irbands::pieces_per_image(p, nt), items = p.N * pieces;
  const int64_t piece_rows = ceil_div(OH, pieces);
  const int64_t band = irbands::even_band(irbands::band_rows(p, int64_t(sizeof(float))), piece_rows);
  const int64_t scratch = p.expand ? irbands::in_rows(p, band) * row_hid : 0;

  // Owned by the calling thread; the workers write disjoint rows (or channels) of it.
  static thread_local std::vector<float> dbuf_v, se_v;
  static thread_local std::vector<double> sums_v;
  float* dbuf = grow(dbuf_v, p.N * img);
  if (static_cast<int64_t>(sums_v.size()) < items * C) sums_v.resize(static_cast<size_t>(items * C));
  double* sums = sums_v.data();
  // pooled [N][C], squeezed [N][Csq], scale [N][C]
  float* pooled = grow(se_v, p.N * (2 * C + sp.Csq));
  float* squeezed = pooled + p.N * C;
  float* scale = squeezed + p.N * sp.Csq;

  // Pass 1: expand + depthwise of output rows [o_begin, o_end) of image n, hidden channels
  // [c0, c1) (c0 a multiple of 16), into dbuf; acc [C] gets the channel sums of those rows.
  auto pass1 = [&](int64_t n, int64_t o_begin, int64_t o_end, int64_t c0, int64_t c1, double* acc) {
    std::fill(acc + c0, acc + c1, 0.0);
    if (o_begin >= o_end || c0 >= c1) return;
    static thread_local std::vector<float> buf_v;
    static thread_local std::vector<float> racc_v;
    float* buf = grow(buf_v, scratch);  // expanded rows [have_lo, have_hi), C wide
    float* racc = grow(racc_v, C);      // one output row's channel sums
    const float* x_n = x + n * p.H * p.W * p.Cin;
    float* d_n = dbuf + n * img;
    int64_t have_lo = 0, have_hi = 0;
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
      // Channel sums of the band's channels [c0, c1) while it is in L1 (the channel-split pass 1
      // owns a column slice): float per row, double across rows.
      rf.sum_rows(dst + c0, b1 - b0, OW, c1 - c0, C, racc, acc + c0);
    }
  };

  // Pass 3: scale pixels [m0, m1) of the batch (dbuf, out and x are all [N*OH*OW] pixel rows)
  // by their image's SE gate, project (+ residual).
  const int64_t chunk_px = std::max<int64_t>(1, kScaleChunkFloats / C);
  auto pass3 = [&](int64_t m0, int64_t m1) {
    for (int64_t r0 = m0; r0 < m1;) {
      const int64_t n = r0 / (OH * OW);
      const int64_t r1 = std::min({m1, r0 + chunk_px, (n + 1) * OH * OW});  // one image per chunk
      float* d = dbuf + r0 * C;
      rf.scale(d, r1 - r0, C, scale + n * C);
      const F32GemmParams g{r1 - r0, C, p.Cout, C, p.Cout, p.act_project,
                            p.residual ? x + r0 * p.Cin : nullptr, p.Cin};
      gk.run(g, d, ppk, out + r0 * p.Cout, 0, g.M, 0, p.Cout);
      r0 = r1;
    }
  };

  const int64_t pixels = p.N * OH * OW;
  auto pass1_item = [&](int64_t i) {  // rows of piece i % pieces of image i / pieces, all channels
    const int64_t n = i / pieces, o_begin = (i % pieces) * piece_rows;
    pass1(n, o_begin, std::min(OH, o_begin + piece_rows), 0, C, sums + i * C);
  };
  if (nt == 1 || (items == 1 && !split)) {
    for (int64_t i = 0; i < items; ++i) pass1_item(i);
  } else if (split) {
    // Thread t expands and depthwises its share of the 16-channel panels over every row of
    // every image: no halo rows twice, equal work on 7 or 14 rows.
#pragma omp parallel num_threads(nt)
    {
      const int team = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t panels = ceil_div(C, kF32GemmPanel);
      const int64_t c0 = std::min(C, panels * t / team * kF32GemmPanel);
      const int64_t c1 = std::min(C, panels * (t + 1) / team * kF32GemmPanel);
      for (int64_t n = 0; n < p.N; ++n) pass1(n, 0, OH, c0, c1, sums + n * C);
    }
  } else {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < items; ++i) pass1_item(i);
  }

  // Pass 2: SE on the means (tiny: N x Chid x Csq twice), in the calling thread.
  const double inv = 1.0 / double(OH * OW);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      double t = 0.0;
      for (int64_t k = 0; k < pieces; ++k) t += sums[(n * pieces + k) * C + c];
      pooled[n * C + c] = static_cast<float>(t * inv);
    }
  const F32GemmParams g1{p.N, C, sp.Csq, C, sp.Csq, sp.act_se, nullptr, 0};
  gk.run(g1, pooled, f32_gemm_pack_data(fc1_pack), squeezed, 0, p.N, 0, sp.Csq);
  const F32GemmParams g2{p.N, sp.Csq, C, sp.Csq, C, Activation::none, nullptr, 0};
  gk.run(g2, squeezed, f32_gemm_pack_data(fc2_pack), scale, 0, p.N, 0, C);
  for (int64_t i = 0; i < p.N * C; ++i) scale[i] = gate_of(scale[i], sp.gate);

  // Pass 3 in equal pixel ranges (rows of 7 do not split evenly; pixels nearly do).
  const int busy = static_cast<int>(std::min<int64_t>(nt, ceil_div(pixels, 6)));
  if (busy <= 1) {
    pass3(0, pixels);
  } else {
#pragma omp parallel num_threads(busy)
    {
      const int team = omp_get_num_threads(), t = omp_get_thread_num();
      pass3(pixels * t / team, pixels * (t + 1) / team);
    }
  }
}

}  // namespace mk
