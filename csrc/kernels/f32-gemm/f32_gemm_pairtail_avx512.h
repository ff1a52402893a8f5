// AVX-512 last strip of 1..8 or 17..24 columns (N = 24, 40, 72, 120, 184, 200 in MobileNets),
// with k-pairs: one zmm holds 8 columns x 2 consecutive k (lane 2j: column j at even k, lane
// 2j + 1: at odd k), the weights interleaved per k-pair by one permute shared by the tile's
// rows and A read as a 64-bit broadcast of (a[k], a[k+1]). 8 columns then cost half an FMA per
// row and k instead of a whole zmm FMA with 8 of its 16 lanes wasted: a 24-column strip takes 3
// FMAs per row and k-pair (16 columns as usual + 8 paired) instead of 4, an 8-column strip 1
// instead of 2. At the end the two lanes of each column are added (even k sum + odd k sum) and
// the activation / residual / store are those of every tile. Summation order: each column sums
// its even and odd k separately, then adds the two (within the tests' fp32 tolerance, not the
// scalar reference's bits; the same on every thread count).
//
// Included by f32_gemm_avx512.cpp only (AVX-512 flags), after f32_gemm_simd.h: it specialises
// PairTail for VecF32Avx512, which the shared gemm() driver asks for a last strip.
#pragma once
#include <immintrin.h>

#include <cstring>

#include "kernels/f32-gemm/f32_gemm_simd.h"
#include "simd/vec_f32_avx512.h"

namespace mk {
namespace {
namespace f32gemm {

struct PairTailAvx512 {
  using V = VecF32Avx512;
  // Rows per tile: with 16 columns as well, 12 x (16 + 8) takes 24 accumulators of 32 zmm; the
  // 8-column-only strip takes 16 rows (16 accumulators).
  static constexpr int kRowsWide = 12, kRowsNarrow = 16;

  static __m512 pair_broadcast(const float* a) {  // (a[0], a[1]) in every lane pair
    double d;
    std::memcpy(&d, a, sizeof d);
    return _mm512_castpd_ps(_mm512_set1_pd(d));
  }
  // Lanes 2j <- x[j] (j < 8), odd lanes zero: a bias / C / last odd-k weight row in pair form.
  static __m512 spread(__m512 x) {
    const __m512i idx = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    return _mm512_maskz_permutexvar_ps(0x5555, idx, x);
  }
  // Lane j <- pair sum lanes 2j + 2j+1 (j < 8); the upper lanes are not stored.
  static __m512 fold(__m512 x) {
    const __m512 s = _mm512_add_ps(x, _mm512_permute_ps(x, 0xB1));  // swap within lane pairs
    const __m512i even = _mm512_set_epi32(14, 12, 10, 8, 6, 4, 2, 0, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutexvar_ps(even, s);
  }

  // One MR-row tile: `Main` adds the 16 columns of panel pk in the usual form; the paired 8
  // columns are the first 8 of panel pt. ncols: columns stored (Main: 17..24, else 1..8).
  template <int MR, bool Main, Activation A, bool Res, bool Acc>
  static void tile(const F32GemmParams& p, const float* a, const float* pk, const float* pt,
                   float* c, const float* r, int64_t ncols) {
    constexpr int off = Main ? 16 : 0;
    const int64_t nt = ncols - off;  // paired columns stored, 1..8
    const int64_t lda = p.lda, ldc = p.ldc, K = p.K;
    __m512 am[Main ? MR : 1], at[MR];
    for (int i = 0; i < MR; ++i) {
      if constexpr (Acc) {
        if constexpr (Main) am[i] = V::load(c + i * ldc);
        at[i] = spread(V::load_partial(c + i * ldc + off, nt));
      } else {
        if constexpr (Main) am[i] = V::load(pk);
        at[i] = spread(V::load(pt));
      }
    }
    const __m512i il = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const float* wm = pk + kF32GemmPanel;
    const float* wt = pt + kF32GemmPanel;
    int64_t k = 0;
    for (; k + 1 < K; k += 2) {
      const __m512 t = _mm512_permutex2var_ps(V::load(wt + k * kF32GemmPanel), il,
                                              V::load(wt + (k + 1) * kF32GemmPanel));
      __m512 b0, b1;
      if constexpr (Main) b0 = V::load(wm + k * kF32GemmPanel), b1 = V::load(wm + (k + 1) * kF32GemmPanel);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const float* ai = a + i * lda + k;
        if constexpr (Main) {
          am[i] = V::fmadd(V::set1(ai[0]), b0, am[i]);
          am[i] = V::fmadd(V::set1(ai[1]), b1, am[i]);
        }
        at[i] = V::fmadd(pair_broadcast(ai), t, at[i]);
      }
    }
    if (k < K) {  // odd K: the last k alone, its weights in the even lanes
      const __m512 t = spread(V::load(wt + k * kF32GemmPanel));
      __m512 b0;
      if constexpr (Main) b0 = V::load(wm + k * kF32GemmPanel);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m512 x = V::set1(a[i * lda + k]);
        if constexpr (Main) am[i] = V::fmadd(x, b0, am[i]);
        at[i] = V::fmadd(x, t, at[i]);
      }
    }
    const TileAct<V, A> act(p.act_consts);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      if constexpr (Main) {
        __m512 y = act(am[i]);
        if constexpr (Res) y = V::add(y, V::load(r + i * p.ldr));
        V::store(c + i * ldc, y);
      }
      __m512 y = act(fold(at[i]));
      if constexpr (Res) y = V::add(y, V::load_partial(r + i * p.ldr + off, nt));
      V::store_partial(c + i * ldc + off, y, nt);
    }
  }

  template <int MR, bool Main, Activation A, bool Res, bool Acc>
  static void tile_rows(int64_t rows, const F32GemmParams& p, const float* a, const float* pk,
                        const float* pt, float* c, const float* r, int64_t ncols) {
    if constexpr (MR > 0) {
      if (rows == MR) return tile<MR, Main, A, Res, Acc>(p, a, pk, pt, c, r, ncols);
      return tile_rows<MR - 1, Main, A, Res, Acc>(rows, p, a, pk, pt, c, r, ncols);
    }
  }

  // Whether a last strip of `left` columns takes this path.
  static bool takes(int64_t left) { return left <= 8 || (left > 16 && left <= 24); }

  // Rows [mb, mbe) of the last strip (columns [col, col + left)), pkj its first panel.
  template <Activation A, bool Res, bool Acc>
  static void strip(const F32GemmParams& p, const float* a, const float* pkj, int64_t pstride,
                    float* c, int64_t mb, int64_t mbe, int64_t col, int64_t left) {
    const bool wide = left > 16;
    constexpr int MW = kRowsWide, MN = kRowsNarrow;
    const int mr = wide ? MW : MN;
    for (int64_t m = mb; m < mbe; m += mr) {
      const int64_t rows = std::min<int64_t>(mr, mbe - m);
      const float* r = Res ? p.residual + m * p.ldr + col : nullptr;
      float* cm = c + m * p.ldc + col;
      if (wide) tile_rows<MW, true, A, Res, Acc>(rows, p, a + m * p.lda, pkj, pkj + pstride, cm, r, left);
      else tile_rows<MN, false, A, Res, Acc>(rows, p, a + m * p.lda, pkj, pkj, cm, r, left);
    }
  }
};

}  // namespace f32gemm
}  // namespace
}  // namespace mk
