// int8 pointwise GEMM, AMX-INT8 path (TDPBUSD on 16x64-byte tiles). UNTESTED: written on an
// AVX2-only machine (qemu cannot emulate AMX). The C++ tests run it against the int64 oracle
// on the first machine that has AMX; until then the dispatcher only picks it when
// MOBILEKERNELS_Q8_AMX=1 (see ops/q8_gemm_op.cpp), and if the kernel cannot get tile
// permission from Linux it runs the AVX512-VNNI kernel instead.
//
// Why the shared pack fits: an AMX B tile is (K/4) rows x 64 bytes, row r holding k = 4r..4r+3
// of 16 columns, which is exactly one 16-column block of the pack (groups of 4 k, stride 64).
// A tile = 16 activation rows x 64 k, copied into a panel (sign flip applied, zero padded to a
// multiple of 64 k) so tile loads never read past the input. C tile = 16 x 16 int32, stored to
// a buffer and requantized with the AVX512-VNNI epilogue.
#include <immintrin.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <cstring>
#include <vector>

#include "kernels/q8-gemm/q8_gemm.h"
#include "simd/vec_q8_avx512vnni.h"

namespace mk {
namespace {

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

bool amx_permission() {
  static const bool ok = [] {
#if defined(__linux__) && defined(SYS_arch_prctl)
    constexpr int kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
  }();
  return ok;
}

}  // namespace

void q8_gemm_amx(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  if (!amx_permission()) return q8_gemm_avx512vnni(p, m_begin, m_end, n_begin, n_end);
  constexpr int kRows = 16, kKc = 64;  // tile: 16 rows x 64 k bytes
  const int64_t kpad = round_up(p.K, kQ8GemmKR), groups = kpad / kQ8GemmKR;
  const int64_t kp64 = round_up(p.K, kKc), chunks = kp64 / kKc;
  TileConfig cfg{};
  cfg.palette_id = 1;
  for (int t = 0; t < 3; ++t) cfg.rows[t] = kRows, cfg.colsb[t] = 64;  // tmm0 = C, tmm1 = A, tmm2 = B
  _tile_loadconfig(&cfg);
  std::vector<uint8_t> panel(static_cast<size_t>(kRows * kp64));
  alignas(64) int8_t btail[kRows * 64];
  alignas(64) int32_t cbuf[kRows * 16];
  const uint8_t flip = static_cast<uint8_t>(p.x_flip);
  for (int64_t m0 = m_begin; m0 < m_end; m0 += kRows) {
    const int64_t rows = m_end - m0 < kRows ? m_end - m0 : kRows;
    std::memset(panel.data(), 0, panel.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < p.K; ++k) panel[r * kp64 + k] = p.x[(m0 + r) * p.K + k] ^ flip;
    for (int64_t n0 = n_begin; n0 < n_end; n0 += kQ8GemmNR) {
      const int64_t ncols = n_end - n0 < kQ8GemmNR ? n_end - n0 : kQ8GemmNR;
      const int8_t* block = p.w + (n0 / kQ8GemmNR) * kpad * kQ8GemmNR;
      _tile_zero(0);
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t g0 = c * kRows;  // first k-group of the chunk
        const int8_t* b = block + g0 * 64;
        if (g0 + kRows > groups) {  // last chunk: copy the remaining groups, zero the rest
          std::memset(btail, 0, sizeof btail);
          std::memcpy(btail, b, static_cast<size_t>((groups - g0) * 64));
          b = btail;
        }
        _tile_loadd(1, panel.data() + c * kKc, static_cast<int>(kp64));
        _tile_loadd(2, b, 64);
        _tile_dpbusd(0, 1, 2);
      }
      _tile_stored(0, cbuf, 64);
      for (int64_t r = 0; r < rows; ++r) {
        __m512i v = _mm512_add_epi32(_mm512_load_si512(cbuf + r * 16), _mm512_loadu_si512(p.bias + n0));
        if (p.wzp)
          v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_set1_epi32(p.rowsum[m0 + r]), _mm512_loadu_si512(p.wzp + n0)));
        uint8_t* y = p.y + (m0 + r) * p.N + n0;
        Q8DotAvx512Vnni::store(v, p.scale + n0, p, y, ncols);
        if (p.lut)
          for (int64_t k = 0; k < ncols; ++k) y[k] = p.lut[y[k]];
      }
    }
  }
  _tile_release();
}

}  // namespace mk
