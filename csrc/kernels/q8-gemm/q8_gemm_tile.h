// The int8 GEMM tiling, written once over a dot-product traits type D (csrc/simd/vec_q8_*.h):
// AVX2 (vpmaddwd on int16), AVX-VNNI / AVX512-VNNI (vpdpbusd), NEON (smull + sadalp), NEON
// dotprod (sdot), and the AVX2 emulation of vpdpbusd used to test the VNNI tiling here.
// Each ISA file includes this inside its own translation unit compiled with its own flags;
// everything has internal linkage (anonymous namespace), so no instantiation compiled for one
// ISA can be picked by the linker for another.
//
// D provides:
//   kCols            int32 lanes per vector = output channels per accumulator
//   kMR              rows (pixels) per register tile
//   kVecs            column vectors per register tile (kCols * kVecs divides 16)
//   Acc, W, X, I32   accumulator, weight operand, broadcast activation operand, int32 vector
//   zero(), load_w(const int8_t* 4*kCols bytes), flip_vec(uint32 XOR), bcast_x(const uint8_t*
//   4 activation bytes, X flip) -> the 4 bytes XOR flip in every lane (widened as D needs),
//   dot(Acc&, X, W), finish(Acc) -> I32 (one lane per column), load_i32, set1_i32, add_i32,
//   sub_i32, mullo_i32, store(I32 acc, const float* scale, const Q8GemmParams&, uint8_t* y, n)
//
// Structure: the caller's column range is walked in packed blocks of 16 output channels (the
// block's weights, K*16 bytes, stay in L1/L2 while rows stream); inside, MR x 16 register
// tiles run the whole K loop, 4 k at a time, and requantize straight from registers.
//
// Traits with kWideX (AVX2) read activations from a per-thread panel of MR rows widened to
// int16 once (sign flip applied, K zero-padded to a multiple of 4): the inner loop then
// broadcasts 4 activations with one load (no shuffle), and the row panel is reused by every
// column block, so rows are the outer loop for them.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/q8-gemm/q8_gemm.h"

namespace mk {
namespace {

// Activation table over a stored tile (L1-hot), per byte: these paths serve long K, where the
// GEMM itself dominates. Out of line and after the epilogue: inside the epilogue's loops, its
// runtime trip count kept GCC from unrolling them, and the accumulators went to the stack
// (1.5x slower K >= 256 layers, measured).
__attribute__((noinline)) void q8_lut_tile(const uint8_t* lut, uint8_t* y, int64_t rows, int64_t cols, int64_t ld) {
  for (int64_t i = 0; i < rows; ++i, y += ld)
    for (int64_t k = 0; k < cols; ++k) y[k] = lut[y[k]];
}

template <class D, int MR, bool Flip>
inline void q8_gemm_tile(const Q8GemmParams& p, int64_t m0, int64_t n0, int64_t ncols, const int16_t* panel) {
  constexpr int V = D::kVecs;  // column vectors per tile (kCols * V <= 16, inside one block)
  const int64_t kpad = round_up(p.K, kQ8GemmKR);
  const int8_t* w = p.w + (n0 / kQ8GemmNR) * kpad * kQ8GemmNR + (n0 % kQ8GemmNR) * kQ8GemmKR;
  const uint8_t* xr[MR];
  for (int i = 0; i < MR; ++i) xr[i] = p.x + (m0 + i) * p.K;

  typename D::Acc acc[MR][V];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < V; ++j) acc[i][j] = D::zero();

  if constexpr (D::kWideX) {
    for (int64_t k = 0; k < kpad; k += kQ8GemmKR, w += kQ8GemmNR * kQ8GemmKR) {
      typename D::W wv[V];
      for (int j = 0; j < V; ++j) wv[j] = D::load_w(w + j * D::kCols * kQ8GemmKR);
      for (int i = 0; i < MR; ++i) {
        const typename D::X xb = D::bcast_wide(panel + i * kpad + k);
        for (int j = 0; j < V; ++j) D::dot(acc[i][j], xb, wv[j]);
      }
    }
  } else {
  const typename D::X flip = D::flip_vec(p.x_flip);
  auto step = [&](const int8_t* wk, const uint8_t* const (&xp)[MR]) {
    typename D::W wv[V];
    for (int j = 0; j < V; ++j) wv[j] = D::load_w(wk + j * D::kCols * kQ8GemmKR);
    for (int i = 0; i < MR; ++i) {
      const typename D::X xb = D::template bcast_x<Flip>(xp[i], flip);  // 4 bytes, all lanes
      for (int j = 0; j < V; ++j) D::dot(acc[i][j], xb, wv[j]);
    }
  };
  const int64_t kfull = p.K / kQ8GemmKR * kQ8GemmKR;
  for (int64_t k = 0; k < kfull; k += kQ8GemmKR, w += kQ8GemmNR * kQ8GemmKR) {
    const uint8_t* xp[MR];
    for (int i = 0; i < MR; ++i) xp[i] = xr[i] + k;
    step(w, xp);
  }
  if (kfull < p.K) {
    // Last partial group: read only the valid bytes (the packed weights there are zero, so
    // whatever the padding lanes hold after the flip contributes nothing).
    uint8_t tail[MR][4] = {};
    const uint8_t* xp[MR];
    for (int i = 0; i < MR; ++i) {
      std::memcpy(tail[i], xr[i] + kfull, static_cast<size_t>(p.K - kfull));
      xp[i] = tail[i];
    }
    step(w, xp);
  }
  }  // kWideX

  for (int j = 0; j < V; ++j) {
    const int64_t c = n0 + j * D::kCols;
    const int64_t n = ncols - j * D::kCols;
    if (n <= 0) break;
    const typename D::I32 bias = D::load_i32(p.bias + c);
    for (int i = 0; i < MR; ++i) {
      typename D::I32 v = D::add_i32(D::finish(acc[i][j]), bias);
      if (p.wzp) v = D::sub_i32(v, D::mullo_i32(D::set1_i32(p.rowsum[m0 + i]), D::load_i32(p.wzp + c)));
      D::store(v, p.scale + c, p, p.y + (m0 + i) * p.N + c, n < D::kCols ? n : D::kCols);
    }
  }
  if (p.lut) q8_lut_tile(p.lut, p.y + m0 * p.N + n0, MR, ncols, p.N);
}

// Rows left over after the MR tiles: one instantiation per count 1..MR-1.
template <class D, int R, bool Flip>
inline void q8_gemm_rest(const Q8GemmParams& p, int64_t m0, int64_t rows, int64_t n0, int64_t ncols,
                         const int16_t* panel) {
  if constexpr (R > 0) {
    if (rows == R) q8_gemm_tile<D, R, Flip>(p, m0, n0, ncols, panel);
    else q8_gemm_rest<D, R - 1, Flip>(p, m0, rows, n0, ncols, panel);
  }
}

// rows x K activations -> int16 (after the domain flip), K zero-padded to kpad.
template <bool Flip>
inline void q8_widen_rows(const Q8GemmParams& p, int64_t m0, int64_t rows, int64_t kpad, int16_t* out) {
  const uint8_t f = Flip ? 0x80 : 0x00;
  for (int64_t i = 0; i < rows; ++i) {
    const uint8_t* x = p.x + (m0 + i) * p.K;
    int16_t* o = out + i * kpad;
    for (int64_t k = 0; k < p.K; ++k) o[k] = static_cast<uint8_t>(x[k] ^ f);
    for (int64_t k = p.K; k < kpad; ++k) o[k] = 0;
  }
}

template <class D, bool Flip>
void q8_gemm_tiles_flip(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin,
                        int64_t n_end) {
  constexpr int64_t kTileN = D::kCols * D::kVecs;
  static_assert(kQ8GemmNR % kTileN == 0, "a tile lies inside one packed 16-column block");
  if constexpr (D::kWideX) {
    const int64_t kpad = round_up(p.K, kQ8GemmKR);
    thread_local std::vector<int16_t> panel;
    if (static_cast<int64_t>(panel.size()) < D::kMR * kpad) panel.resize(static_cast<size_t>(D::kMR * kpad));
    for (int64_t m = m_begin; m < m_end; m += D::kMR) {
      const int64_t rows = m_end - m < D::kMR ? m_end - m : D::kMR;
      q8_widen_rows<Flip>(p, m, rows, kpad, panel.data());
      for (int64_t n0 = n_begin; n0 < n_end; n0 += kTileN) {
        const int64_t ncols = n_end - n0 < kTileN ? n_end - n0 : kTileN;
        if (rows == D::kMR) q8_gemm_tile<D, D::kMR, Flip>(p, m, n0, ncols, panel.data());
        else q8_gemm_rest<D, D::kMR - 1, Flip>(p, m, rows, n0, ncols, panel.data());
      }
    }
    return;
  }
  for (int64_t n0 = n_begin; n0 < n_end; n0 += kTileN) {
    const int64_t ncols = n_end - n0 < kTileN ? n_end - n0 : kTileN;
    int64_t m = m_begin;
    for (; m + D::kMR <= m_end; m += D::kMR) q8_gemm_tile<D, D::kMR, Flip>(p, m, n0, ncols, nullptr);
    if (m < m_end) q8_gemm_rest<D, D::kMR - 1, Flip>(p, m, m_end - m, n0, ncols, nullptr);
  }
}

// The sign flip (int8 input on x86, uint8 on ARM) is a compile-time choice: no XOR in the
// inner loop of the common case, one register less.
template <class D>
void q8_gemm_tiles(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin,
                   int64_t n_end) {
  if (p.x_flip) q8_gemm_tiles_flip<D, true>(p, m_begin, m_end, n_begin, n_end);
  else q8_gemm_tiles_flip<D, false>(p, m_begin, m_end, n_begin, n_end);
}

}  // namespace
}  // namespace mk
