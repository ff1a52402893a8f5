// TEMPORARY (A/B only): the previous avx512vnni path, the shared tiling over Q8DotAvx512Vnni.
#include "simd/vec_q8_avx512vnni.h"
#include "kernels/q8-gemm/q8_gemm_tile.h"
namespace mk {
void q8_gemm_old_avx512vnni(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  q8_gemm_tiles<Q8DotAvx512Vnni>(p, m_begin, m_end, n_begin, n_end);
}
}  // namespace mk
