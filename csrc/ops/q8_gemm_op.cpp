#include "ops/q8_gemm_op.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/q8-gemm/q8_gemm_kernels.h"

namespace mk {
namespace {

// AMX where it pays. Per call (per thread's range), AMX has a fixed cost the VNNI kernel does not
// (tile configuration ~80 ns, a 32-row register tile whose rows past M are computed for nothing,
// tile store + reload of every C tile), so small calls lose. Measured against avx512vnni here
// (Xeon with AMX, 1 thread, bench/cpp/bench_q8_gemm.cpp q8_gemm_grid, thread CPU time):
// M = 1 always loses (0.4-0.8x, up to 0.8x at K = N = 576), M = 4..32 loses below ~2^17
// multiply-adds (M x K x N = 16x64x64: 1.0x, 32x32x64: 0.87x, 32x160x16: 0.76x) and wins above
// (32x64x64: 1.2x, 4x576x576: 1.1x, 16x160x576: 2x); every MobileNetV2 1x1 layer at batch 1
// (M >= 49, >= 2^19 multiply-adds) runs 1.3-5x faster on AMX. Under 32 rows with K <= 64 AMX
// loses even above 2^17: the one row block is partly empty and each C tile gets a single 64-k
// step, so its tile store and requantizing reload are not amortised. Measured on the fused int8
// block's per-row expand calls (28 x 32 x 192, V2 blocks 5 and 6; thread CPU time, in-process
// A/B): ~9% faster on those blocks with VNNI; calls of K > 64 (14 x 192 x 32) or up to 63 rows
// (56 x 32 x 192) were 2-3% slower on VNNI, so they stay on AMX.
#if defined(MK_X86)
bool amx_pays(int64_t M, int64_t K, int64_t N) {
  return M >= 4 && M * K * N >= (int64_t(1) << 17) && (M >= 32 || K > 64);
}

void q8_gemm_amx_where_it_pays(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin,
                               int64_t n_end) {
  if (amx_pays(m_end - m_begin, p.K, n_end - n_begin)) q8_gemm_amx(p, m_begin, m_end, n_begin, n_end);
  else q8_gemm_avx512vnni(p, m_begin, m_end, n_begin, n_end);
}
// What the amx level runs (the op and the fused int8 block): the table's AMX kernel (which the
// tests and benchmarks call directly) behind the size rule above.
constexpr Q8GemmKernel kAmxWherePays{Isa::amx, q8_gemm_amx_where_it_pays, false,
                                     "amx/32x32-tdpbusd (avx512vnni tiles for calls under 4 rows or 2^17 MACs, or under 32 rows at K <= 64)"};
#endif

}  // namespace

const Q8GemmKernel& q8_gemm_kernel(Isa level) {
  const Isa isa = q8_gemm_resolve(level);
#if defined(MK_X86)
  if (isa == Isa::amx) return kAmxWherePays;
#endif
  for (const Q8GemmKernel& k : kQ8GemmKernels)
    if (k.isa == isa) return k;
  return kQ8GemmKernels[0];
}

// One kernel call per thread. Kernels prepare per call (AVX2 widens the activations of its rows
// and the weights of every 16-column block it touches; the quad tiling re-reads both per tile),
// so finer work items repeat that work: the old 4 items per thread widened a 14x14 layer's
// weights 8 times at 2 threads. A column split widens all M x K activations in every thread and
// each weight once; a row split the reverse: columns when M < N (the 14x14 and 7x7 layers),
// unless the 16-column blocks do not share out evenly.
static void q8_gemm_parallel(Q8GemmFn fn, const Q8GemmParams& p, int nt) {
  const int64_t nblocks = ceil_div(p.N, kQ8GemmNR);
  const int64_t per = ceil_div(nblocks, nt);
  const bool by_cols = p.M < p.N && per * nt <= nblocks + nblocks / 8;
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    if (by_cols) {
      const int64_t b0 = nblocks * t / T, b1 = nblocks * (t + 1) / T;
      if (b0 < b1) fn(p, 0, p.M, b0 * kQ8GemmNR, std::min(p.N, b1 * kQ8GemmNR));
    } else {
      const int64_t m0 = p.M * t / T, m1 = p.M * (t + 1) / T;
      if (m0 < m1) fn(p, m0, m1, 0, p.N);
    }
  }
}

Isa q8_gemm_resolve(Isa level) {
  return resolve_isa(level, [](Isa isa) {
    for (const Q8GemmKernel& k : kQ8GemmKernels)
      if (k.isa == isa) return true;
    return false;
  });
}

std::string q8_gemm_kernel_name() { return q8_gemm_kernel(active_isa()).name; }

void q8_gemm_run_with(Q8GemmFn fn, bool kernel_signed_x, const uint8_t* packed, int64_t packed_bytes,
                      const void* x, int64_t M, int64_t K, int64_t N, const Q8Quant& q, void* y,
                      int num_threads, const uint8_t* lut) {
  if (M < 0) throw std::invalid_argument("int8 conv: negative number of pixels");
  const Q8PackHeader& h = q8_check_pack(packed, packed_bytes, Q8PackKind::gemm, K, N, 1, 1);
  q8_quant_validate(q);
  if (M == 0) return;
  const Q8GemmLayout l = q8_gemm_layout(K, N);
  const auto* colsum = reinterpret_cast<const int32_t*>(packed + l.colsum);
  const auto* bias = reinterpret_cast<const int32_t*>(packed + l.bias);
  const auto* wzp = reinterpret_cast<const int32_t*>(packed + l.wzp);
  const std::vector<float> scale =
      q8_requant_scales(q, reinterpret_cast<const float*>(packed + l.scale), N, l.npad);
  const Q8Domain d = q8_domain(q, kernel_signed_x);

  // sum_k (x - xz)(q - z) + b = sum x q + [b - xz colsum + K xz z] - z rowsum(x): the bracket
  // is per channel (computed here, int64 then wrapped like the kernels' int32 accumulators);
  // the row term exists only for channels whose zero point could not be folded into q.
  std::vector<int32_t> bias_eff(static_cast<size_t>(l.npad), 0);
  for (int64_t oc = 0; oc < N; ++oc) {
    const int64_t v = int64_t(bias[oc]) - int64_t(d.x_zp) * colsum[oc] + K * int64_t(d.x_zp) * wzp[oc];
    bias_eff[oc] = static_cast<int32_t>(static_cast<uint32_t>(v));
  }
  std::vector<int32_t> wzp_pad, rowsum;
  const auto* xb = static_cast<const uint8_t*>(x);
  if (h.has_wzp) {
    wzp_pad.assign(wzp, wzp + l.npad);
    rowsum.resize(static_cast<size_t>(M));
    const uint8_t f = static_cast<uint8_t>(d.flip);
#pragma omp parallel for num_threads(std::max(1, num_threads)) schedule(static) if (M * K > (1 << 16))
    for (int64_t m = 0; m < M; ++m) {
      int32_t s = 0;
      for (int64_t k = 0; k < K; ++k) {
        const uint8_t v = xb[m * K + k] ^ f;
        s += kernel_signed_x ? int32_t(int8_t(v)) : int32_t(v);
      }
      rowsum[m] = s;
    }
  }

  Q8GemmParams p;
  p.M = M;
  p.K = K;
  p.N = N;
  p.x = xb;
  p.w = reinterpret_cast<const int8_t*>(packed + l.weights);
  p.bias = bias_eff.data();
  p.scale = scale.data();
  p.wzp = h.has_wzp ? wzp_pad.data() : nullptr;
  p.rowsum = h.has_wzp ? rowsum.data() : nullptr;
  p.y = static_cast<uint8_t*>(y);
  p.x_flip = d.flip;
  p.y_zp = q.y_zp;
  p.y_lo = static_cast<float>(q.y_min - q.y_zp);
  p.y_hi = static_cast<float>(q.y_max - q.y_zp);
  p.lut = lut;

  const int nt = static_cast<int>(std::min<int64_t>(std::max(1, num_threads), std::max<int64_t>(M, ceil_div(N, kQ8GemmNR))));
  // Calls this small (the SE blocks' M = 1 layers) take longer in a parallel region than alone.
  constexpr int64_t kSerialMacs = int64_t(1) << 17;
  if (nt == 1 || M * K * N < kSerialMacs) return fn(p, 0, M, 0, N);
  q8_gemm_parallel(fn, p, nt);
}

void q8_gemm_run(const uint8_t* packed, int64_t packed_bytes, const void* x, int64_t M, int64_t K,
                 int64_t N, const Q8Quant& q, void* y, int num_threads, const uint8_t* lut) {
  const Q8GemmKernel& k = q8_gemm_kernel(active_isa());
  q8_gemm_run_with(k.run, k.signed_x, packed, packed_bytes, x, M, K, N, q, y, num_threads, lut);
}

}  // namespace mk
