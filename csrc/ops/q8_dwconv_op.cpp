#include "ops/q8_dwconv_op.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "kernels/q8-dwconv/q8_dwconv_kernels.h"

namespace mk {
namespace {

const Q8DwconvKernel& kernel_for(Isa level) {
  const Isa isa = q8_dwconv_resolve(level);
  for (const Q8DwconvKernel& k : kQ8DwconvKernels)
    if (k.isa == isa) return k;
  return kQ8DwconvKernels[0];
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("qdwconv2d: " + what);
}

}  // namespace

Isa q8_dwconv_resolve(Isa level) {
  return resolve_isa(level, [](Isa isa) {
    for (const Q8DwconvKernel& k : kQ8DwconvKernels)
      if (k.isa == isa) return true;
    return false;
  });
}

std::string q8_dwconv_kernel_name() { return kernel_for(active_isa()).name; }

void q8_dwconv_validate(const Q8DwShape& s) {
  require(s.N >= 0 && s.H > 0 && s.W > 0 && s.C > 0, "input sizes must be positive");
  require(s.M >= 1, "depth multiplier must be >= 1");
  require(s.KH > 0 && s.KW > 0 && s.SH > 0 && s.SW > 0 && s.DH > 0 && s.DW > 0,
          "kernel, stride and dilation must be positive");
  require(s.PT >= 0 && s.PL >= 0, "padding must be non-negative");
  require(s.OH > 0 && s.OW > 0, "output size must be positive");
  // Reads are bounds-checked (indirection / scalar), so any OH, OW is memory safe.
}

void q8_dwconv_run_with(Q8DwconvFn fn, const uint8_t* packed, int64_t packed_bytes, const void* x_in,
                        const Q8DwShape& s, const Q8Quant& q, void* y, int num_threads, const uint8_t* lut) {
  q8_dwconv_validate(s);
  const int64_t C = s.C * s.M;
  q8_check_pack(packed, packed_bytes, Q8PackKind::dwconv, C, C, s.KH, s.KW);
  q8_quant_validate(q);
  if (s.N == 0) return;
  const Q8DwLayout l = q8_dwconv_layout(C, s.KH, s.KW);
  require(packed_bytes == l.total, "packed weight size does not match its shape");
  const auto* wsum = reinterpret_cast<const int32_t*>(packed + l.wsum);
  const auto* bias = reinterpret_cast<const int32_t*>(packed + l.bias);
  const std::vector<float> scale = q8_requant_scales(q, reinterpret_cast<const float*>(packed + l.scale), C, l.cpad);
  std::vector<int32_t> bias_eff(static_cast<size_t>(l.cpad), 0);
  for (int64_t c = 0; c < C; ++c)  // padding taps read x_zp, so this cancels them exactly
    bias_eff[c] = static_cast<int32_t>(static_cast<uint32_t>(int64_t(bias[c]) - int64_t(q.x_zp) * wsum[c]));
  std::vector<uint8_t> zero(static_cast<size_t>(C), static_cast<uint8_t>(q.x_zp));

  const auto* x = static_cast<const uint8_t*>(x_in);
  std::vector<uint8_t> expanded;
  if (s.M > 1) {  // output channel oc reads input channel oc / M: repeat channels (rare, correct)
    const int64_t pixels = s.N * s.H * s.W;
    expanded.resize(static_cast<size_t>(pixels * C));
    for (int64_t i = 0; i < pixels; ++i)
      for (int64_t oc = 0; oc < C; ++oc) expanded[i * C + oc] = x[i * s.C + oc / s.M];
    x = expanded.data();
  }
  Q8DwconvParams p{s.N, s.H, s.W, C, s.KH, s.KW, s.SH, s.SW, s.DH, s.DW, s.PT, s.PL, s.OH, s.OW,
                   x, reinterpret_cast<const int16_t*>(packed + l.weights), bias_eff.data(), scale.data(),
                   zero.data(), static_cast<uint8_t*>(y), q.x_signed, q.y_signed, q.y_zp,
                   static_cast<float>(q.y_min - q.y_zp), static_cast<float>(q.y_max - q.y_zp)};
  p.lut = lut;
  const int64_t rows = s.N * s.OH, nblocks = ceil_div(C, kQ8DwChannelBlock);
  const int nt = static_cast<int>(std::min<int64_t>(std::max(1, num_threads), std::max(rows, nblocks)));
  constexpr int64_t kSerialMacs = int64_t(1) << 17;  // below this a parallel region costs more
  if (nt == 1 || rows * s.OW * C * s.KH * s.KW < kSerialMacs) return fn(p, 0, rows, 0, C);
  // One kernel call per thread: each call prepares the weights of its channel blocks and the
  // zero row, so the old 4 items per thread (one output row each on 14x14) prepared 14 times.
  // Rows or 16-channel blocks, whichever shares out more evenly (7 rows of 7x7x960: channels).
  const int64_t row_load = ceil_div(rows, nt) * nt * nblocks, col_load = ceil_div(nblocks, nt) * nt * rows;
  const bool by_cols = col_load < row_load;
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    if (by_cols) {
      const int64_t b0 = nblocks * t / T, b1 = nblocks * (t + 1) / T;
      if (b0 < b1) fn(p, 0, rows, b0 * kQ8DwChannelBlock, std::min(C, b1 * kQ8DwChannelBlock));
    } else {
      const int64_t r0 = rows * t / T, r1 = rows * (t + 1) / T;
      if (r0 < r1) fn(p, r0, r1, 0, C);
    }
  }
}

void q8_dwconv_run(const uint8_t* packed, int64_t packed_bytes, const void* x, const Q8DwShape& s,
                   const Q8Quant& q, void* y, int num_threads, const uint8_t* lut) {
  q8_dwconv_run_with(kernel_for(active_isa()).run, packed, packed_bytes, x, s, q, y, num_threads, lut);
}

}  // namespace mk
