// fp32 GEMM, avx512 path: the shared kernel body (f32_gemm_simd.h) instantiated with VecF32Avx512,
// 8 rows x 32 columns per register tile; a last strip of 1..8 or 17..24 columns in k-pairs
// (f32_gemm_pairtail_avx512.h). Compiled with the avx512 flags only.
#include "simd/vec_f32_avx512.h"
#include "kernels/f32-gemm/f32_gemm_simd.h"
#include "kernels/f32-gemm/f32_gemm_pairtail_avx512.h"

namespace mk {

void f32_gemm_avx512(const F32GemmParams& p, const float* a, const float* packed, float* c,
                     int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  f32gemm::f32_gemm_simd<VecF32Avx512, 8, 2, f32gemm::PairTailAvx512>(p, a, packed, c, m_begin, m_end,
                                                                     n_begin, n_end);
}

}  // namespace mk
