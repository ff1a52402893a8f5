// int8 pointwise GEMM, neon path: the shared tiling (q8_gemm_tile.h) over Q8DotNeon.
// Compiled with the neon flags only (cmake/kernels.cmake, by file-name suffix).
#include "simd/vec_q8_neon.h"
#include "kernels/q8-gemm/q8_gemm_tile.h"

namespace mk {

void q8_gemm_neon(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  q8_gemm_tiles<Q8DotNeon>(p, m_begin, m_end, n_begin, n_end);
}

}  // namespace mk
