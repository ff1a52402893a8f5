#include "ops/f32_inverted_residual_op.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kernels/f32-dwconv/f32_dwconv_kernels.h"
#include "kernels/f32-gemm/f32_gemm_kernels.h"
#include "ops/f32_conv1x1_op.h"
#include "ops/f32_dwconv_op.h"
#include "ops/ir_bands.h"

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

using irbands::in_rows;
using irbands::pieces_per_image;

// Scratch floats a band of `band` output rows needs.
int64_t scratch_floats(const F32InvertedResidualParams& p, int64_t band) { return irbands::act_elems(p, band); }

float* thread_scratch(int64_t floats) {
  // Reused across calls: the fused block's whole point is a small buffer that stays hot.
  static thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < floats) buf.resize(static_cast<size_t>(floats));
  return buf.data();
}

}  // namespace

void f32_inverted_residual_validate(const F32InvertedResidualParams& p) {
  require(p.N >= 0, "batch must be non-negative");
  require(p.H > 0 && p.W > 0, "spatial sizes must be positive");
  require(p.Cin > 0 && p.Chid > 0 && p.Cout > 0, "channel counts must be positive");
  require(p.K >= 1 && p.S >= 1, "depthwise kernel and stride must be >= 1");
  for (int64_t pad : {p.PT, p.PB, p.PL, p.PR})
    require(pad >= 0 && pad <= p.K - 1, "each padding must be in [0, kernel - 1]");
  require(p.H + p.PT + p.PB >= p.K && p.W + p.PL + p.PR >= p.K,
          "depthwise kernel larger than the padded input");
  require(p.expand || p.Chid == p.Cin, "without expansion the hidden width must equal Cin");
  require(valid_act(p.act_expand) && valid_act(p.act_dw) && valid_act(p.act_project),
          "unknown activation");
  require(!p.residual || (p.S == 1 && p.Cin == p.Cout && p.OH() == p.H && p.OW() == p.W),
          "a residual needs stride 1, Cin == Cout and an output as large as the input");
  require(p.band_rows >= 0, "band_rows must be >= 0 (0 = automatic)");
}

int64_t f32_inverted_residual_band_rows(const F32InvertedResidualParams& p) {
  return irbands::band_rows(p, int64_t(sizeof(float)));
}

int64_t f32_inverted_residual_scratch_bytes(const F32InvertedResidualParams& p) {
  return scratch_floats(p, f32_inverted_residual_band_rows(p)) * int64_t(sizeof(float));
}

int f32_inverted_residual_threads(const F32InvertedResidualParams& p, int num_threads) {
  const int nt = std::max(1, num_threads);
  return static_cast<int>(std::min<int64_t>(nt, std::max<int64_t>(1, p.N) * pieces_per_image(p, nt)));
}

std::string f32_inverted_residual_kernel_name(const F32InvertedResidualParams& p) {
  f32_inverted_residual_validate(p);
  const int64_t band = f32_inverted_residual_band_rows(p);
  const F32DwconvParams q{1, p.H, p.W, p.Chid, 1, p.K, p.K, p.S, p.S, 1, 1, p.PT, p.PL,
                          p.OH(), p.OW(), p.act_dw};
  return std::string("gemm ") + f32_gemm_kernel(active_isa()).name + " + dwconv " +
         dw_kernel(active_isa()).variant(q) + ", band " + std::to_string(band);
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
  const int64_t OH = p.OH(), OW = p.OW(), row_hid = p.W * p.Chid;
  const int nt = std::max(1, num_threads);
  const int64_t pieces = pieces_per_image(p, nt), items = p.N * pieces;
  const int64_t piece_rows = ceil_div(OH, pieces);
  const int64_t band = std::min(f32_inverted_residual_band_rows(p), piece_rows);
  const int64_t buf_floats = p.expand ? in_rows(p, band) * row_hid : 0;
  const int64_t need = scratch_floats(p, band);

  auto work = [&](int64_t item) {
    const int64_t n = item / pieces, o_begin = (item % pieces) * piece_rows;
    const int64_t o_end = std::min(OH, o_begin + piece_rows);
    if (o_begin >= o_end) return;
    float* buf = thread_scratch(need);  // expanded rows [have_lo, have_hi)
    float* dwo = buf + buf_floats;      // depthwise output of the band
    const float* x_n = x + n * p.H * p.W * p.Cin;
    float* out_n = out + n * OH * OW * p.Cout;
    int64_t have_lo = 0, have_hi = 0;
    for (int64_t b0 = o_begin; b0 < o_end; b0 += band) {
      const int64_t b1 = std::min(o_end, b0 + band);
      const int64_t ih_lo = std::max<int64_t>(0, b0 * p.S - p.PT);
      const int64_t ih_hi = std::min(p.H, (b1 - 1) * p.S - p.PT + p.K);
      const float* src = x_n + ih_lo * p.W * p.Cin;  // t == 1: the depthwise reads x itself
      if (p.expand) {
        // Keep the halo rows the previous band already expanded (moved to the front), expand
        // only the new ones.
        int64_t first_new = ih_lo;
        if (ih_lo >= have_lo && ih_lo < have_hi) {
          if (ih_lo > have_lo)
            std::memmove(buf, buf + (ih_lo - have_lo) * row_hid,
                         sizeof(float) * (have_hi - ih_lo) * row_hid);
          first_new = have_hi;
        }
        if (first_new < ih_hi) {
          const F32GemmParams g{(ih_hi - first_new) * p.W, p.Cin, p.Chid, p.Cin, p.Chid,
                                p.act_expand, nullptr, 0};
          gk.run(g, x_n + first_new * p.W * p.Cin, epk, buf + (first_new - ih_lo) * row_hid, 0,
                 g.M, 0, p.Chid);
        }
        have_lo = ih_lo;
        have_hi = ih_hi;
        src = buf;
      }
      // The band as a small image of its input rows: top padding shifts by the rows skipped,
      // rows past ih_hi are either outside the image or not needed by this band.
      const F32DwconvParams q{1, ih_hi - ih_lo, p.W, p.Chid, 1, p.K, p.K, p.S, p.S, 1, 1,
                              p.PT + ih_lo - b0 * p.S, p.PL, b1 - b0, OW, p.act_dw};
      dk.run(q, src, dpk, dwo, 0, b1 - b0, 0, p.Chid);
      const F32GemmParams g{(b1 - b0) * OW, p.Chid, p.Cout, p.Chid, p.Cout, p.act_project,
                            p.residual ? x_n + b0 * p.W * p.Cin : nullptr, p.Cin};
      gk.run(g, dwo, ppk, out_n + b0 * OW * p.Cout, 0, g.M, 0, p.Cout);
    }
  };
  if (nt == 1 || items == 1) {
    for (int64_t i = 0; i < items; ++i) work(i);
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < items; ++i) work(i);
}

}  // namespace mk
