#include "ops/f32_conv1x1_op.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>

#include "ops/work_ranges.h"

namespace mk {
namespace {

// A literal, not a std::string: validation runs on every call (malloc + free per message).
void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("conv1x1: ") + what);
}

// Work items per thread at 2+ threads: enough for WorkRanges to rebalance, few enough that
// each keeps whole register tiles busy.
constexpr int64_t kItemsPerThread = 4;

bool has_dispatched(Isa isa) {
  for (const F32GemmKernel& k : kF32GemmKernels)
    if (k.isa == isa && k.dispatched) return true;
  return false;
}

}  // namespace

Isa f32_gemm_resolve(Isa level) { return resolve_isa(level, has_dispatched); }

const F32GemmKernel& f32_gemm_kernel(Isa level) {
  const Isa isa = f32_gemm_resolve(level);
  for (const F32GemmKernel& k : kF32GemmKernels)
    if (k.isa == isa && k.dispatched) return k;
  return kF32GemmKernels[0];
}

void f32_gemm_validate(const F32GemmParams& p) {
  require(p.M >= 0, "row count (pixels) must be non-negative");
  require(p.K > 0 && p.N > 0, "input and output channels must be positive");
  require(p.lda >= p.K, "input row stride must be >= input channels");
  require(p.ldc >= p.N, "output row stride must be >= output channels");
  require(static_cast<int>(p.act) >= 0 && static_cast<int>(p.act) <= 3, "unknown activation");
  require(!p.residual || p.ldr >= p.N, "residual row stride must be >= output channels");
  require(p.pack_k == 0 && !p.accumulate, "K-slices are for the fused block, not a conv1x1 call");
}

std::string f32_conv1x1_kernel_name() { return f32_gemm_kernel(active_isa()).name; }

void f32_conv1x1_run(const F32GemmParams& p, const float* input, const float* pack,
                     int64_t packed_numel, float* output, int num_threads) {
  f32_gemm_validate(p);
  f32_gemm_check_pack(pack, packed_numel, p.K, p.N);
  if (p.M == 0) return;
  const float* packed = f32_gemm_pack_data(pack);
  const F32GemmKernel& k = f32_gemm_kernel(active_isa());
  const int nt = std::max(1, num_threads);
  if (nt == 1) {
    k.run(p, input, packed, output, 0, p.M, 0, p.N);
    return;
  }
  // Work items: (row chunk, column chunk), about kItemsPerThread per thread so WorkRanges can
  // move work off a slower core. Rows first: each item then streams all of B once per row
  // block. Late layers (7x7 = 49 pixels, 960 channels) have too few row tiles to share, so
  // their columns are split too, in 32-column units (whole two-panel tiles); each item then
  // reads only its columns of B, which at 320 -> 1280 (1.6 MB) does not fit one core's L2.
  const int64_t target = kItemsPerThread * nt;
  const int64_t row_tiles = ceil_div(p.M, k.mr);
  const int64_t col_units = ceil_div(p.N, 2 * kF32GemmPanel);
  int64_t rsplit = std::min<int64_t>(target, row_tiles), csplit = 1;
  if (row_tiles < target) {
    csplit = std::min<int64_t>(ceil_div(target, row_tiles), col_units);
    rsplit = std::min<int64_t>(row_tiles, ceil_div(target, csplit));
  }
  const int64_t rchunk = ceil_div(row_tiles, rsplit) * k.mr;
  const int64_t cchunk = ceil_div(col_units, csplit) * 2 * kF32GemmPanel;
  rsplit = ceil_div(p.M, rchunk);
  csplit = ceil_div(p.N, cchunk);
  const int64_t items = rsplit * csplit;
  if (items == 1) {
    k.run(p, input, packed, output, 0, p.M, 0, p.N);
    return;
  }
  // The caller's (a thread_local named inside the region would be each worker's own).
  static thread_local WorkRanges ranges_tl;
  WorkRanges& ranges = ranges_tl;
  ranges.init(items, nt);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    for (int64_t i; (i = ranges.next(t)) >= 0;) {
      const int64_t r0 = (i / csplit) * rchunk, c0 = (i % csplit) * cchunk;
      k.run(p, input, packed, output, r0, std::min(p.M, r0 + rchunk), c0, std::min(p.N, c0 + cchunk));
    }
  }
}

}  // namespace mk
