// The fp32 GEMM microkernel and its driver, written once over a vector-traits type V
// (VecF32Avx2, VecF32Avx512, VecF32Neon). Each ISA file includes this in its own translation
// unit compiled with its own flags; everything here has internal linkage (anonymous
// namespace) so no instantiation compiled for one ISA can be picked by the linker for another.
//
// Tile: MR rows x NP panels (NP * 16 columns) of C held in MR * NP * 16 / kWidth accumulator
// registers. Per k: NP * 16 / kWidth vector loads of the packed weights, MR broadcasts of A
// (one scalar per row, straight from the NHWC input: no A packing) and MR * NV FMAs.
//   AVX2     6 x 16 (12 ymm accumulators + 2 weights + 1 broadcast of 16 registers)
//   AVX-512  8 x 32 (16 zmm accumulators + 2 weights: two panels side by side)
//   NEON     6 x 16 (24 q accumulators + 4 weights of 32 registers)
// The epilogue applies the activation, adds the residual and stores (masked past N).
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/f32-gemm/f32_gemm.h"
#include "simd/activation.h"

namespace mk {
namespace {
namespace f32gemm {

// Activation, residual and store of one tile. Inlined (an out-of-line epilogue costs small-K
// GEMMs ~25%: K = 16 ran at 54 instead of 76 GFLOP/s), with the activation constants read
// from p.act_consts at the point of use (see F32GemmParams).
template <class V, int MR, int NV, Activation A, bool Res>
inline void store_tile(const F32GemmParams& p, const typename V::T (&acc)[MR][NV], float* c,
                                  const float* r, int64_t ncols) {
  using T = typename V::T;
  constexpr int W = V::kWidth;
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * p.ldc;
    // Panels are adjacent in column space, so vector v covers columns [v*W, v*W + W).
    for (int v = 0; v < NV; ++v) {
      const int64_t col = int64_t(v) * W, n = ncols - col;
      if (n <= 0) break;
      T y = activate_from<V, A>(acc[i][v], p.act_consts);
      if (n >= W) {
        if constexpr (Res) y = V::add(y, V::load(r + i * p.ldr + col));
        V::store(ci + col, y);
      } else {
        if constexpr (Res) y = V::add(y, V::load_partial(r + i * p.ldr + col, n));
        V::store_partial(ci + col, y, n);
      }
    }
  }
}

// One MR x (NP*16) tile. `pk` points at the first panel (its bias row), panels `pstride`
// floats apart; `ncols` (1..NP*16) columns of C are stored, the rest of the tile is dropped.
template <class V, int MR, int NP, Activation A, bool Res>
inline void tile(const F32GemmParams& p, const float* a, const float* pk, int64_t pstride,
                 float* c, const float* r, int64_t ncols) {
  using T = typename V::T;
  constexpr int W = V::kWidth;
  constexpr int NVP = static_cast<int>(kF32GemmPanel) / W;  // vectors per panel
  constexpr int NV = NVP * NP;
  T acc[MR][NV];
  for (int j = 0; j < NP; ++j)
    for (int v = 0; v < NVP; ++v) {
      const T b = V::load(pk + j * pstride + v * W);
      for (int i = 0; i < MR; ++i) acc[i][j * NVP + v] = b;
    }
  const float* ar[MR];
  for (int i = 0; i < MR; ++i) ar[i] = a + i * p.lda;
  const float* w = pk + kF32GemmPanel;
  for (int64_t k = 0; k < p.K; ++k, w += kF32GemmPanel) {
    T b[NV];
    for (int j = 0; j < NP; ++j)
      for (int v = 0; v < NVP; ++v) b[j * NVP + v] = V::load(w + j * pstride + v * W);
    for (int i = 0; i < MR; ++i) {
      const T x = V::set1(ar[i][k]);
      for (int v = 0; v < NV; ++v) acc[i][v] = V::fmadd(x, b[v], acc[i][v]);
    }
  }
  store_tile<V, MR, NV, A, Res>(p, acc, c, r, ncols);
}

// Remainder rows: pick the tile with exactly `rows` rows (1..MR), resolved at compile time.
template <class V, int MR, int NP, Activation A, bool Res>
inline void tile_rows(int64_t rows, const F32GemmParams& p, const float* a, const float* pk,
                      int64_t pstride, float* c, const float* r, int64_t ncols) {
  if constexpr (MR > 0) {
    if (rows == MR) return tile<V, MR, NP, A, Res>(p, a, pk, pstride, c, r, ncols);
    return tile_rows<V, MR - 1, NP, A, Res>(rows, p, a, pk, pstride, c, r, ncols);
  }
}

// Rows of A per cache block: the block stays in L2 while every panel of B passes over it
// (each panel, K * 64 bytes, stays in L1/L2 across the block's row tiles).
constexpr int64_t kABlockBytes = 128 * 1024;

template <class V, int MR, int NP, Activation A, bool Res>
void gemm(const F32GemmParams& p, const float* a, const float* pk, float* c, int64_t m_begin,
          int64_t m_end, int64_t n_begin, int64_t n_end) {
  const int64_t pstride = (p.K + 1) * kF32GemmPanel;
  const int64_t mc = std::max<int64_t>(MR, kABlockBytes / (4 * std::max<int64_t>(p.K, 1)) / MR * MR);
  for (int64_t mb = m_begin; mb < m_end; mb += mc) {
    const int64_t mbe = std::min(m_end, mb + mc);
    for (int64_t col = n_begin; col < n_end;) {
      const bool two = NP == 2 && n_end - col > kF32GemmPanel;
      const int64_t width = two ? 2 * kF32GemmPanel : kF32GemmPanel;
      const int64_t ncols = std::min(n_end - col, width);
      const float* pkj = pk + (col / kF32GemmPanel) * pstride;
      for (int64_t m = mb; m < mbe; m += MR) {
        const int64_t rows = std::min<int64_t>(MR, mbe - m);
        const float* r = Res ? p.residual + m * p.ldr + col : nullptr;
        const float* am = a + m * p.lda;
        float* cm = c + m * p.ldc + col;
        if constexpr (NP == 2) {
          if (two) {
            tile_rows<V, MR, 2, A, Res>(rows, p, am, pkj, pstride, cm, r, ncols);
            continue;
          }
        }
        tile_rows<V, MR, 1, A, Res>(rows, p, am, pkj, pstride, cm, r, ncols);
      }
      col += width;
    }
  }
}

template <class V, int MR, int NP, Activation A>
void gemm_act(const F32GemmParams& p, const float* a, const float* pk, float* c, int64_t m0,
              int64_t m1, int64_t n0, int64_t n1) {
  if (p.residual) gemm<V, MR, NP, A, true>(p, a, pk, c, m0, m1, n0, n1);
  else gemm<V, MR, NP, A, false>(p, a, pk, c, m0, m1, n0, n1);
}

template <class V, int MR, int NP>
void f32_gemm_simd(const F32GemmParams& p, const float* a, const float* pk, float* c, int64_t m0,
                   int64_t m1, int64_t n0, int64_t n1) {
  switch (p.act) {
    case Activation::relu: return gemm_act<V, MR, NP, Activation::relu>(p, a, pk, c, m0, m1, n0, n1);
    case Activation::relu6: return gemm_act<V, MR, NP, Activation::relu6>(p, a, pk, c, m0, m1, n0, n1);
    case Activation::hardswish: return gemm_act<V, MR, NP, Activation::hardswish>(p, a, pk, c, m0, m1, n0, n1);
    default: return gemm_act<V, MR, NP, Activation::none>(p, a, pk, c, m0, m1, n0, n1);
  }
}

}  // namespace f32gemm
}  // namespace
}  // namespace mk
