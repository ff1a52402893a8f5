// Portable scalar fp32 GEMM on the packed weights: the "scalar" path and the reference the
// SIMD kernels are tested against (the tests also check it against an fp64 loop on the
// unpacked torch layout).
#include "kernels/f32-gemm/f32_gemm.h"
#include "kernels/scalar_activation.h"

namespace mk {
void f32_gemm_scalar(const F32GemmParams& p, const float* a, const float* packed, float* c,
                     int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  const int64_t pstride = (p.pack_rows() + 1) * kF32GemmPanel;
  for (int64_t m = m_begin; m < m_end; ++m) {
    const float* arow = a + m * p.lda;
    for (int64_t col = n_begin; col < n_end; ++col) {
      const float* panel = packed + (col / kF32GemmPanel) * pstride + col % kF32GemmPanel;
      float acc = p.accumulate ? c[m * p.ldc + col] : panel[0];
      for (int64_t k = 0; k < p.K; ++k) acc += arow[k] * panel[(k + 1) * kF32GemmPanel];
      float v = activate_scalar(acc, p.act);
      if (p.residual) v += p.residual[m * p.ldr + col];
      c[m * p.ldc + col] = v;
    }
  }
}

}  // namespace mk
