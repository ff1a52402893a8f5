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
// A last strip of 17..24 columns runs as a 4 x 24 tile on AVX2/NEON (see gemm).
// The epilogue applies the activation, adds the residual and stores (masked past N).
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/f32-gemm/f32_gemm.h"

namespace mk {
namespace {
namespace f32gemm {

// The activation with its constants loaded once per tile, after the k loop (the weight and
// broadcast registers are free by then); hoisted above the loop nest they would take registers
// the accumulators need (see F32GemmParams::act_consts).
template <class V, Activation A>
struct TileAct {
  using T = typename V::T;
  T lo, hi, three, sixth;
  explicit TileAct(const float* k) {
    if constexpr (A != Activation::none) lo = V::set1(k[0]);
    if constexpr (A == Activation::relu6 || A == Activation::hardswish) hi = V::set1(k[1]);
    if constexpr (A == Activation::hardswish) three = V::set1(k[2]), sixth = V::set1(k[3]);
  }
  T operator()(T v) const {
    if constexpr (A == Activation::relu) return V::max(v, lo);
    else if constexpr (A == Activation::relu6) return V::min(V::max(v, lo), hi);
    else if constexpr (A == Activation::hardswish)
      return V::mul(V::mul(v, V::min(V::max(V::add(v, three), lo), hi)), sixth);
    else return v;
  }
};

// Activation, residual and store of one tile, inlined (an out-of-line epilogue cost small-K
// GEMMs ~25%). Every loop over the tile is fully unrolled with no early exit, so each acc[i][v]
// has a constant index and the accumulators stay in registers: with a data-dependent `break`
// GCC kept the whole tile in a stack array, stored it after the k loop and reloaded it here
// (~60 cycles per tile: K = 16 ran at 63 GFLOP/s, 81 without). Whole tiles (every column but
// the last strip's) take the branch-free path.
template <class V, int MR, int NV, Activation A, bool Res>
inline void store_tile(const F32GemmParams& p, const typename V::T (&acc)[MR][NV], float* c,
                       const float* r, int64_t ncols) {
  using T = typename V::T;
  constexpr int W = V::kWidth;
  const TileAct<V, A> act(p.act_consts);
  const int64_t ldc = p.ldc, ldr = p.ldr;
  if (ncols >= NV * W) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        T y = act(acc[i][v]);
        if constexpr (Res) y = V::add(y, V::load(r + i * ldr + v * W));
        V::store(c + i * ldc + v * W, y);
      }
    return;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    // Panels are adjacent in column space, so vector v covers columns [v*W, v*W + W).
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      const int64_t n = ncols - int64_t(v) * W;
      if (n <= 0) continue;
      T y = act(acc[i][v]);
      if (n >= W) {
        if constexpr (Res) y = V::add(y, V::load(r + i * ldr + v * W));
        V::store(c + i * ldc + v * W, y);
      } else {
        if constexpr (Res) y = V::add(y, V::load_partial(r + i * ldr + v * W, n));
        V::store_partial(c + i * ldc + v * W, y, n);
      }
    }
}

// One MR x (NV vectors) tile. `pk` points at the first panel (its bias row), panels `pstride`
// floats apart; vector v lives in panel v / NVP, so NV may span panels, including 1.5 of them
// (see gemm). `ncols` (1..NV*W) columns of C are stored, the rest of the tile is dropped.
template <class V, int MR, int NV, Activation A, bool Res, bool Acc>
inline void tile(const F32GemmParams& p, const float* a, const float* pk, int64_t pstride,
                 float* c, const float* r, int64_t ncols) {
  using T = typename V::T;
  constexpr int W = V::kWidth;
  constexpr int NVP = static_cast<int>(kF32GemmPanel) / W;  // vectors per panel
  T acc[MR][NV];
  if constexpr (Acc) {  // a later K-slice: continue from C (only its ncols columns exist)
    const bool whole = ncols >= NV * W;  // unrolled, as in store_tile, to keep acc in registers
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        const int64_t n = ncols - int64_t(v) * W;
        acc[i][v] = whole || n >= W ? V::load(c + i * p.ldc + v * W)
                                    : n > 0 ? V::load_partial(c + i * p.ldc + v * W, n) : V::zero();
      }
  } else {
    for (int v = 0; v < NV; ++v) {
      const T b = V::load(pk + (v / NVP) * pstride + (v % NVP) * W);
      for (int i = 0; i < MR; ++i) acc[i][v] = b;
    }
  }
  const float* ar[MR];
  for (int i = 0; i < MR; ++i) ar[i] = a + i * p.lda;
  const float* w = pk + kF32GemmPanel;
  for (int64_t k = 0; k < p.K; ++k, w += kF32GemmPanel) {
    T b[NV];
    for (int v = 0; v < NV; ++v) b[v] = V::load(w + (v / NVP) * pstride + (v % NVP) * W);
    for (int i = 0; i < MR; ++i) {
      const T x = V::set1(ar[i][k]);
      for (int v = 0; v < NV; ++v) acc[i][v] = V::fmadd(x, b[v], acc[i][v]);
    }
  }
  store_tile<V, MR, NV, A, Res>(p, acc, c, r, ncols);
}

// Remainder rows: pick the tile with exactly `rows` rows (1..MR), resolved at compile time.
template <class V, int MR, int NV, Activation A, bool Res, bool Acc>
inline void tile_rows(int64_t rows, const F32GemmParams& p, const float* a, const float* pk,
                      int64_t pstride, float* c, const float* r, int64_t ncols) {
  if constexpr (MR > 0) {
    if (rows == MR) return tile<V, MR, NV, A, Res, Acc>(p, a, pk, pstride, c, r, ncols);
    return tile_rows<V, MR - 1, NV, A, Res, Acc>(rows, p, a, pk, pstride, c, r, ncols);
  }
}

// Rows [mb, mbe) of one column strip with an MR x NV tile.
template <class V, int MR, int NV, Activation A, bool Res, bool Acc>
inline void strip(const F32GemmParams& p, const float* a, const float* pkj, int64_t pstride,
                  float* c, int64_t mb, int64_t mbe, int64_t col, int64_t ncols) {
  for (int64_t m = mb; m < mbe; m += MR) {
    const int64_t rows = std::min<int64_t>(MR, mbe - m);
    const float* r = Res ? p.residual + m * p.ldr + col : nullptr;
    tile_rows<V, MR, NV, A, Res, Acc>(rows, p, a + m * p.lda, pkj, pstride, c + m * p.ldc + col, r, ncols);
  }
}

// Rows of A per cache block: the block stays in L2 while every panel of B passes over it
// (each panel, K * 64 bytes, stays in L1/L2 across the block's row tiles).
constexpr int64_t kABlockBytes = 128 * 1024;

// No special last strip (see f32_gemm_pairtail_avx512.h for the one AVX-512 uses).
struct NoPairTail {
  static bool takes(int64_t) { return false; }
  template <Activation A, bool Res, bool Acc>
  static void strip(const F32GemmParams&, const float*, const float*, int64_t, float*, int64_t,
                    int64_t, int64_t, int64_t) {}
};

template <class V, int MR, int NP, class Tail, Activation A, bool Res, bool Acc>
void gemm(const F32GemmParams& p, const float* a, const float* pk, float* c, int64_t m_begin,
          int64_t m_end, int64_t n_begin, int64_t n_end) {
  constexpr int NVP = static_cast<int>(kF32GemmPanel) / V::kWidth;
  // A last strip of 17..24 columns (N = 24, 40, 72, 120, ... in MobileNets) as one tile of
  // 1.5 panels with 2/3 of the rows: the same register count as MR x 16, instead of a full
  // panel followed by a half-empty one that wastes a third of the FMAs. Needs an even number of
  // vectors per panel (AVX2: 4 x 24, NEON: 4 x 24; not AVX-512, whose panel is one vector).
  constexpr bool kWide = NP == 1 && NVP % 2 == 0 && MR % 3 == 0;
  const int64_t pstride = (p.pack_rows() + 1) * kF32GemmPanel;
  const int64_t mc = std::max<int64_t>(MR, kABlockBytes / (4 * std::max<int64_t>(p.K, 1)) / MR * MR);
  for (int64_t mb = m_begin; mb < m_end; mb += mc) {
    const int64_t mbe = std::min(m_end, mb + mc);
    for (int64_t col = n_begin; col < n_end;) {
      const int64_t left = n_end - col;
      const float* pkj = pk + (col / kF32GemmPanel) * pstride;
      if (Tail::takes(left)) {
        Tail::template strip<A, Res, Acc>(p, a, pkj, pstride, c, mb, mbe, col, left);
        break;
      }
      if constexpr (kWide) {
        if (left > kF32GemmPanel && 2 * left <= 3 * kF32GemmPanel) {
          strip<V, MR * 2 / 3, NVP * 3 / 2, A, Res, Acc>(p, a, pkj, pstride, c, mb, mbe, col, left);
          break;
        }
      }
      if constexpr (NP == 2) {
        if (left > kF32GemmPanel) {
          strip<V, MR, 2 * NVP, A, Res, Acc>(p, a, pkj, pstride, c, mb, mbe, col, std::min<int64_t>(left, 2 * kF32GemmPanel));
          col += 2 * kF32GemmPanel;
          continue;
        }
      }
      strip<V, MR, NVP, A, Res, Acc>(p, a, pkj, pstride, c, mb, mbe, col, std::min<int64_t>(left, kF32GemmPanel));
      col += kF32GemmPanel;
    }
  }
}

template <class V, int MR, int NP, class Tail, Activation A>
void gemm_act(const F32GemmParams& p, const float* a, const float* pk, float* c, int64_t m0,
              int64_t m1, int64_t n0, int64_t n1) {
  // Accumulating K-slices (the fused block's channel tiles) as their own instantiations, so
  // the ordinary tiles keep their exact code.
  if (p.accumulate) {
    if (p.residual) gemm<V, MR, NP, Tail, A, true, true>(p, a, pk, c, m0, m1, n0, n1);
    else gemm<V, MR, NP, Tail, A, false, true>(p, a, pk, c, m0, m1, n0, n1);
  } else if (p.residual) {
    gemm<V, MR, NP, Tail, A, true, false>(p, a, pk, c, m0, m1, n0, n1);
  } else {
    gemm<V, MR, NP, Tail, A, false, false>(p, a, pk, c, m0, m1, n0, n1);
  }
}

template <class V, int MR, int NP, class Tail = NoPairTail>
void f32_gemm_simd(const F32GemmParams& p, const float* a, const float* pk, float* c, int64_t m0,
                   int64_t m1, int64_t n0, int64_t n1) {
  switch (p.act) {
    case Activation::relu: return gemm_act<V, MR, NP, Tail, Activation::relu>(p, a, pk, c, m0, m1, n0, n1);
    case Activation::relu6: return gemm_act<V, MR, NP, Tail, Activation::relu6>(p, a, pk, c, m0, m1, n0, n1);
    case Activation::hardswish: return gemm_act<V, MR, NP, Tail, Activation::hardswish>(p, a, pk, c, m0, m1, n0, n1);
    default: return gemm_act<V, MR, NP, Tail, Activation::none>(p, a, pk, c, m0, m1, n0, n1);
  }
}

}  // namespace f32gemm
}  // namespace
}  // namespace mk
