// fp32 GEMM, avx2 path: the shared kernel body (f32_gemm_simd.h) instantiated with VecF32Avx2,
// 6 rows x 16 columns per register tile. Compiled with the avx2 flags only.
#include "simd/vec_f32_avx2.h"
#include "kernels/f32-gemm/f32_gemm_simd.h"

namespace mk {

void f32_gemm_avx2(const F32GemmParams& p, const float* a, const float* packed, float* c,
                   int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  f32gemm::f32_gemm_simd<VecF32Avx2, 6, 1>(p, a, packed, c, m_begin, m_end, n_begin, n_end);
}

}  // namespace mk

namespace mk {

// Alternate tile, 3 x 32 (two panels side by side, as the AVX-512 8x32 tile does): not
// dispatched; listed so the tests run the two-panel code path on AVX2 machines and the
// benchmark can compare the tiles.
void f32_gemm_avx2_3x32(const F32GemmParams& p, const float* a, const float* packed, float* c,
                        int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  f32gemm::f32_gemm_simd<VecF32Avx2, 3, 2>(p, a, packed, c, m_begin, m_end, n_begin, n_end);
}

}  // namespace mk
