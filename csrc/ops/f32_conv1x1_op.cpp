#include "ops/f32_conv1x1_op.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>

namespace mk {
namespace {

// A literal, not a std::string: validation runs on every call (malloc + free per message).
void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("conv1x1: ") + what);
}

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
  // Work items: (row chunk, column chunk). Rows first: each thread then streams all of B once
  // per row block. Late layers (7x7 = 49 pixels, 960 channels) have too few row tiles to
  // share, so their columns are split too, in 32-column units (whole two-panel tiles).
  const int64_t row_tiles = ceil_div(p.M, k.mr);
  const int64_t col_units = ceil_div(p.N, 2 * kF32GemmPanel);
  int64_t rsplit = std::min<int64_t>(nt, row_tiles), csplit = 1;
  if (nt > 1 && row_tiles < 4 * nt) {
    csplit = std::min<int64_t>(nt, col_units);
    rsplit = std::min<int64_t>(row_tiles, ceil_div(nt, csplit));
  }
  const int64_t rchunk = ceil_div(row_tiles, rsplit) * k.mr;
  const int64_t cchunk = ceil_div(col_units, csplit) * 2 * kF32GemmPanel;
  const int64_t items = rsplit * csplit;
  auto work = [&](int64_t item) {
    const int64_t r0 = (item / csplit) * rchunk, c0 = (item % csplit) * cchunk;
    const int64_t r1 = std::min(p.M, r0 + rchunk), c1 = std::min(p.N, c0 + cchunk);
    if (r0 < r1 && c0 < c1) k.run(p, input, packed, output, r0, r1, c0, c1);
  };
  if (nt == 1 || items == 1) {
    k.run(p, input, packed, output, 0, p.M, 0, p.N);
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < items; ++i) work(i);
}

}  // namespace mk
