// int8 pointwise GEMM, avx2 (test-only VNNI emulation) path: the shared tiling (q8_gemm_tile.h) over Q8DotAvx2VnniEmu.
// Compiled with the avx2 flags only (cmake/kernels.cmake, by file-name suffix).
#include "simd/vec_q8_avx2.h"
#include "kernels/q8-gemm/q8_gemm_tile.h"

namespace mk {
namespace {
// The AVX-VNNI kernel's tile (Q8DotAvxVnni: 6 rows x 16 columns), so the tiling it runs is the one
// tested here.
struct Q8DotAvx2VnniEmu6 : Q8DotAvx2VnniEmu {
  static constexpr int kMR = 6;
};
}  // namespace

void q8_gemm_vnniemu_avx2(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  q8_gemm_tiles<Q8DotAvx2VnniEmu6>(p, m_begin, m_end, n_begin, n_end);
}

}  // namespace mk
