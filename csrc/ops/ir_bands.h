// Band geometry and shape checks shared by the fused inverted-residual ops (fp32:
// f32_inverted_residual_op.cpp, int8: q8_inverted_residual_op.cpp). Templated on their params
// structs, which both carry N, H, W, Cin, Chid, Cout, K, S, PT/PB/PL/PR, expand, residual,
// band_rows, OH() and OW(); `elem` is the bytes of one activation element (4 for fp32, 1 for
// int8), so the same byte budget holds 4x taller int8 bands.
#pragma once
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <numeric>

namespace mk {
namespace irbands {

// Per-thread scratch target. Zen 3 has 512 KB of L2 per core, Intel client 1.25-2 MB; the
// GEMM weights and the input rows need the rest.
constexpr int64_t kScratchBudgetBytes = 256 * 1024;
constexpr int64_t kMaxScratchBytes = 512 * 1024;
constexpr int64_t kMaxBandRows = 16;

// The shape checks both blocks make before anything else; `require(ok, what)` is the op's own
// (it names the op in the exception).
template <class P, class Require>
void validate_geometry(const P& p, Require&& require) {
  require(p.N >= 0, "batch must be non-negative");
  require(p.H > 0 && p.W > 0, "spatial sizes must be positive");
  require(p.Cin > 0 && p.Chid > 0 && p.Cout > 0, "channel counts must be positive");
  require(p.K >= 1 && p.S >= 1, "depthwise kernel and stride must be >= 1");
  for (int64_t pad : {p.PT, p.PB, p.PL, p.PR})
    require(pad >= 0 && pad <= p.K - 1, "each padding must be in [0, kernel - 1]");
  require(p.H + p.PT + p.PB >= p.K && p.W + p.PL + p.PR >= p.K,
          "depthwise kernel larger than the padded input");
  require(p.expand || p.Chid == p.Cin, "without expansion the hidden width must equal Cin");
  require(!p.residual || (p.S == 1 && p.Cin == p.Cout && p.OH() == p.H && p.OW() == p.W),
          "a residual needs stride 1, Cin == Cout and an output as large as the input");
  require(p.band_rows >= 0, "band_rows must be >= 0 (0 = automatic)");
}

// Expanded input rows a band of `band` output rows reads.
template <class P>
int64_t in_rows(const P& p, int64_t band) {
  return std::min(p.H, (band - 1) * p.S + p.K);
}

// Activation elements of one thread's scratch: expanded input rows + the depthwise band.
template <class P>
int64_t act_elems(const P& p, int64_t band) {
  return (p.expand ? in_rows(p, band) * p.W * p.Chid : 0) + band * p.OW() * p.Chid;
}

// p.band_rows, or the largest band (<= kMaxBandRows, at least one row) whose scratch fits the
// budget. Larger bands give the GEMMs more rows per pass over their weights and copy the halo
// rows less often; smaller ones stay in L2. Every band re-reads both 1x1 weights, so when those
// outweigh the budget (late blocks: 7x7 spatial, 160 -> 960 -> 160 is 1.2 MB in fp32) the
// scratch may grow up to the weight size, capped at kMaxScratchBytes. For H >= 28 the scratch
// also stays within 1/8 of the expanded tensor where any band can; at 28x28 stride 1 even
// one-row bands (3 expanded + 1 depthwise row = 1/7) miss it and take the smallest band (then
// the fp32 block tiles the hidden channels, the int8 block makes its rows in column chunks).
// Measured (fp32, thread CPU time, Zen 3): 7x7x960 takes 640 us with 1-row bands, 517 us with
// one 7-row band; 28x28 and 56x56 vary by < 5% between 1 and 8 rows.
template <class P>
int64_t band_rows(const P& p, int64_t elem) {
  if (p.band_rows > 0) return std::min(p.band_rows, p.OH());
  const int64_t expanded = p.H * p.W * p.Chid;
  const int64_t weight_bytes = ((p.expand ? p.Cin * p.Chid : 0) + p.Chid * p.Cout) * elem;
  const int64_t budget = std::max(kScratchBudgetBytes, std::min(weight_bytes, kMaxScratchBytes));
  const bool eighth = p.H >= 28;
  auto fits = [&](int64_t band) {
    const int64_t e = act_elems(p, band);
    return e * elem <= budget && (!eighth || e * 8 <= expanded);
  };
  int64_t band = 1;
  while (band < std::min(p.OH(), kMaxBandRows) && fits(band + 1)) ++band;
  return band;
}

// The band height for a run of `rows` output rows when bands may be up to `band_max` tall:
// equal bands (7 rows with at most 6 run as 4 + 3, not 6 + 1: a one-row band is a short GEMM
// that re-expands the halo rows for a single output row).
inline int64_t even_band(int64_t band_max, int64_t rows) {
  if (rows <= 1) return 1;
  const int64_t b = std::max<int64_t>(1, std::min(band_max, rows));
  const int64_t bands = (rows + b - 1) / b;
  return (rows + bands - 1) / bands;
}

// Rows of one image each work item covers: one run per thread when the batch alone cannot
// spread evenly (N = 1 or 3 on 2 threads), so N * pieces is a multiple of the thread count.
template <class P>
int64_t pieces_per_image(const P& p, int nt) {
  if (nt <= 1) return 1;
  const int64_t g = std::gcd<int64_t>(std::max<int64_t>(p.N, 1), nt);
  return std::max<int64_t>(1, std::min<int64_t>(p.OH(), nt / g));
}

}  // namespace irbands
}  // namespace mk
