// int8 pointwise GEMM, avx2 path: the shared tiling (q8_gemm_tile.h) over Q8DotAvx2.
// Compiled with the avx2 flags only (cmake/kernels.cmake, by file-name suffix).
#include "simd/vec_q8_avx2.h"
#include "kernels/q8-gemm/q8_gemm_tile.h"

namespace mk {

void q8_gemm_avx2(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  q8_gemm_tiles<Q8DotAvx2>(p, m_begin, m_end, n_begin, n_end);
}

}  // namespace mk
