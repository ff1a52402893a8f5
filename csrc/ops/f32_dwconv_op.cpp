#include "ops/f32_dwconv_op.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "kernels/f32-dwconv/f32_dwconv_kernels.h"
#include "ops/work_ranges.h"

namespace mk {
namespace {

const F32DwconvKernel& kernel_for(Isa level) {
  const Isa isa = f32_dwconv_resolve(level);
  for (const F32DwconvKernel& k : kF32DwconvKernels)
    if (k.isa == isa) return k;
  return kF32DwconvKernels[0];
}

// A literal, not a std::string: validation runs on every call, and building eight strings
// (most past the small-string buffer, so malloc + free each) cost more than a small layer's kernel.
void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("dwconv2d: ") + what);
}

}  // namespace

Isa f32_dwconv_resolve(Isa level) {
  return resolve_isa(level, [](Isa isa) {
    for (const F32DwconvKernel& k : kF32DwconvKernels)
      if (k.isa == isa) return true;
    return false;
  });
}

void f32_dwconv_validate(const F32DwconvParams& p) {
  require(p.N >= 0 && p.H > 0 && p.W > 0 && p.C > 0, "input sizes must be positive");
  require(p.M >= 1, "depth multiplier must be >= 1");
  require(p.KH > 0 && p.KW > 0, "kernel sizes must be positive");
  require(p.SH > 0 && p.SW > 0, "stride must be positive");
  require(p.DH > 0 && p.DW > 0, "dilation must be positive");
  require(p.PT >= 0 && p.PL >= 0, "padding must be non-negative");
  require(static_cast<int>(p.act) >= 0 && static_cast<int>(p.act) <= 3, "unknown activation");
  require(p.OH > 0 && p.OW > 0, "output size must be positive");
  // Every read is bounds-checked against H and W inside the kernels, so any OH/OW is memory
  // safe; the Python layer derives them with torch's formula.

}

std::string f32_dwconv_kernel_name(const F32DwconvParams& p) {
  const F32DwconvKernel& k = kernel_for(active_isa());
  if (p.M > 1 && !k.supports_multiplier) {
    F32DwconvParams q = p;
    q.C = p.C * p.M;
    q.M = 1;
    return std::string(k.variant(q)) + "+expand";
  }
  return k.variant(p);
}

void f32_dwconv_run(const F32DwconvParams& p_in, const float* input, const float* packed,
                    float* output, int num_threads) {
  f32_dwconv_validate(p_in);
  if (p_in.N == 0) return;
  const F32DwconvKernel& k = kernel_for(active_isa());
  F32DwconvParams p = p_in;
  std::vector<float> expanded;
  if (p.M > 1 && !k.supports_multiplier) {
    // Depth multiplier > 1 on a SIMD path: repeat each input channel M times so output
    // channel oc reads expanded channel oc, then run the M == 1 kernel.
    const int64_t pixels = p.N * p.H * p.W, cout = p.cout();
    expanded.resize(static_cast<size_t>(pixels * cout));
    for (int64_t i = 0; i < pixels; ++i)
      for (int64_t oc = 0; oc < cout; ++oc) expanded[i * cout + oc] = input[i * p.C + oc / p.M];
    input = expanded.data();
    p.C = cout;
    p.M = 1;
  }
  const float* data = f32_dwconv_pack_data(packed);
  const int64_t rows = p.N * p.OH, cout = p.cout();
  const int nt = std::max(1, num_threads);
  if (nt == 1) return k.run(p, input, data, output, 0, rows, 0, cout);
  // Work items: (run of rows, channel chunk), about 4 per thread so WorkRanges can move work
  // off a slower core. Enough rows: runs of rows, all channels (the kernels pair rows into
  // two-row blocks within a run; 1-row items never would). Few rows (late layers are 7x7
  // spatial with 576-960 channels): channel chunks over all rows, two per thread, so each chunk
  // runs the two-row blocks down the image (and the AVX-512 kernel's channel groups); A/B at 2
  // threads on this Xeon, 10th-percentile wall time, quiet: 7x7x960 0.83x, 7x7x576 0.84x,
  // 14x14x576 s2 0.86x the time of 1-row items times channel chunks, which remain for few rows
  // with few channels. The same split on 14-row layers measured level or slower (0.94-1.11x).
  int64_t chunk = cout, run_rows = std::max<int64_t>(2, ceil_div(rows, 4 * nt));
  if (rows < 4 * nt && cout >= 2 * nt * 16) {
    run_rows = rows;
    chunk = round_up(ceil_div(cout, 2 * nt), 16);
  } else if (rows < 4 * nt) {
    run_rows = 1;
    const int64_t splits = std::min<int64_t>(ceil_div(4 * nt, rows), ceil_div(cout, 16));
    chunk = round_up(ceil_div(cout, splits), 16);
  } else if (ceil_div(rows, run_rows) % nt != 0) {
    // Runs that do not divide among the threads (28 or 14 rows at 2 threads: 7 runs, 4:3)
    // leave a thread idle for a run: shorter runs that divide, else two channel halves.
    int64_t r = run_rows;
    while (r > 2 && ceil_div(rows, r) % nt != 0) --r;
    if (ceil_div(rows, r) % nt == 0) run_rows = r;
    else if (cout >= 32) chunk = round_up(ceil_div(cout, 2), 16);
  }
  const int64_t nchunks = ceil_div(cout, chunk), nruns = ceil_div(rows, run_rows);
  const int64_t items = nruns * nchunks;
  auto work = [&](int64_t item) {
    const int64_t r0 = (item / nchunks) * run_rows, ci = item % nchunks;
    k.run(p, input, data, output, r0, std::min(rows, r0 + run_rows), ci * chunk,
          std::min(cout, (ci + 1) * chunk));
  };
  if (items == 1) return work(0);
  // The caller's (a thread_local named inside the region would be each worker's own).
  static thread_local WorkRanges ranges_tl;
  WorkRanges& ranges = ranges_tl;
  ranges.init(items, nt);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    for (int64_t i; (i = ranges.next(t)) >= 0;) work(i);
  }
}

}  // namespace mk
