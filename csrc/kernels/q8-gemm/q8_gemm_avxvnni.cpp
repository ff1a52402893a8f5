// int8 pointwise GEMM, avxvnni path: the shared tiling (q8_gemm_tile.h) over Q8DotAvxVnni.
// Compiled with the avxvnni flags only (cmake/kernels.cmake, by file-name suffix).
#include "simd/vec_q8_avxvnni.h"
#include "kernels/q8-gemm/q8_gemm_tile.h"

namespace mk {

void q8_gemm_avxvnni(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  q8_gemm_tiles<Q8DotAvxVnni>(p, m_begin, m_end, n_begin, n_end);
}

}  // namespace mk
