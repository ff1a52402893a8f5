// The fp32 small-Cin conv body, written once over a vector-traits type V (VecF32Avx2,
// VecF32Avx512, VecF32Neon). Each ISA file includes this in its own translation unit compiled
// with its own flags; everything has internal linkage (anonymous namespace) so no instantiation
// compiled for one ISA can be picked by the linker for another.
//
// Every tap (ky, kx, ci) of a kernel is one entry of a table {input offset, weight row}: per
// output row the table holds the taps whose input row is inside x (the others contribute 0),
// relative to the pixel's first input column. A register block is P output pixels x one
// 16-channel panel (16 / kWidth vectors): per tap, the panel's weight row is loaded once and
// each pixel's input value broadcast against it (P * 16 / kWidth FMAs). Any kernel size,
// stride, dilation and Cin go through the same loop; the stem (3x3, Cin 3) is 27 taps.
// Pixels whose taps leave x on the left or right run one at a time on their own table of
// in-bounds taps (absolute offsets), so no address outside x is ever formed.
//   AVX2     6 pixels x 16 (12 ymm accumulators + 2 weights + 1 broadcast)
//   AVX-512 12 pixels x 16 (12 zmm accumulators + 1 weight + broadcasts)
//   NEON     6 pixels x 16 (24 q accumulators + 4 weights + 1 broadcast)
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/f32-conv/f32_conv.h"
#include "simd/activation.h"

namespace mk {
namespace {
namespace f32conv {

struct Tap {
  int64_t x;  // input offset in floats (relative to the pixel block's base)
  int64_t w;  // offset of the weight row in the panel (floats), past the bias row
};

template <class V, Activation A, int P, int NV>
inline void store_block(typename V::T (&acc)[P][NV], float* y, int64_t cout, int64_t rem) {
  constexpr int W = V::kWidth;
  if (rem >= NV * W) {
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) V::store(y + p * cout + v * W, activate<V, A>(acc[p][v]));
  } else {
    // The last, partial panel (rem < 16 channels): through a small buffer (rare, so plain).
    // (p unrolled: a runtime index into acc would put the accumulators on the stack)
    float tmp[NV * W];
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) V::store(tmp + v * W, activate<V, A>(acc[p][v]));
      for (int64_t i = 0; i < rem; ++i) y[p * cout + i] = tmp[i];
    }
  }
}

// P output pixels (input columns `step` floats apart from `base`) x every panel.
template <class V, int P>
inline void conv_block(const float* base, int64_t step, const Tap* taps, int64_t ntaps,
                       const float* packed, int64_t pstride, float* y, int64_t cout, Activation act) {
  constexpr int W = V::kWidth;
  constexpr int NV = int(kF32ConvPanel) / W;
  using T = typename V::T;
  for (int64_t c0 = 0; c0 < cout; c0 += kF32ConvPanel) {
    const float* wp = packed + (c0 / kF32ConvPanel) * pstride;
    T acc[P][NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const T b = V::load(wp + v * W);
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) acc[p][v] = b;
    }
    for (int64_t t = 0; t < ntaps; ++t) {
      const float* wt = wp + taps[t].w;
      const float* xt = base + taps[t].x;
      T wv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) wv[v] = V::load(wt + v * W);
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
        const T xv = V::set1(xt[p * step]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[p][v] = V::fmadd(xv, wv[v], acc[p][v]);
      }
    }
    float* yc = y + c0;
    const int64_t rem = cout - c0;
    switch (act) {
      case Activation::relu: store_block<V, Activation::relu, P, NV>(acc, yc, cout, rem); break;
      case Activation::relu6: store_block<V, Activation::relu6, P, NV>(acc, yc, cout, rem); break;
      case Activation::hardswish: store_block<V, Activation::hardswish, P, NV>(acc, yc, cout, rem); break;
      default: store_block<V, Activation::none, P, NV>(acc, yc, cout, rem); break;
    }
  }
}

template <class V, int P>
void conv_rows(const F32ConvParams& p, const float* x, const float* packed, float* y,
               int64_t row_begin, int64_t row_end) {
  const int64_t oh = p.oh(), ow = p.ow(), pstride = (p.taps() + 1) * kF32ConvPanel;
  // Output columns [ox_lo, ox_hi) read only input columns inside x.
  const int64_t ox_lo = std::min(ow, ceil_div(p.pl, p.sw));
  const int64_t last = p.w - 1 + p.pl - (p.kw - 1) * p.dw;  // ox * sw <= last
  const int64_t ox_hi = std::max(ox_lo, last < 0 ? int64_t(0) : std::min(ow, last / p.sw + 1));
  std::vector<Tap> row(p.taps()), edge(p.taps());
  const int64_t step = p.sw * p.xs_w;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / oh, oy = r % oh;
    const float* xn = x + n * p.xs_n;
    float* yr = y + r * ow * p.cout;
    int64_t nrow = 0;
    for (int64_t ky = 0; ky < p.kh; ++ky) {
      const int64_t iy = oy * p.sh - p.pt + ky * p.dh;
      if (iy < 0 || iy >= p.h) continue;
      for (int64_t kx = 0; kx < p.kw; ++kx)
        for (int64_t ci = 0; ci < p.cin; ++ci)
          row[nrow++] = {ci * p.xs_c + iy * p.xs_h + kx * p.dw * p.xs_w,
                         ((ky * p.kw + kx) * p.cin + ci + 1) * kF32ConvPanel};
    }
    auto edge_pixel = [&](int64_t ox) {
      int64_t ne = 0;
      for (int64_t ky = 0; ky < p.kh; ++ky) {
        const int64_t iy = oy * p.sh - p.pt + ky * p.dh;
        if (iy < 0 || iy >= p.h) continue;
        for (int64_t kx = 0; kx < p.kw; ++kx) {
          const int64_t ix = ox * p.sw - p.pl + kx * p.dw;
          if (ix < 0 || ix >= p.w) continue;
          for (int64_t ci = 0; ci < p.cin; ++ci)
            edge[ne++] = {ci * p.xs_c + iy * p.xs_h + ix * p.xs_w,
                          ((ky * p.kw + kx) * p.cin + ci + 1) * kF32ConvPanel};
        }
      }
      conv_block<V, 1>(xn, 0, edge.data(), ne, packed, pstride, yr + ox * p.cout, p.cout, p.act);
    };
    for (int64_t ox = 0; ox < ox_lo; ++ox) edge_pixel(ox);
    int64_t ox = ox_lo;
    for (; ox + P <= ox_hi; ox += P)
      conv_block<V, P>(xn + (ox * p.sw - p.pl) * p.xs_w, step, row.data(), nrow, packed, pstride,
                       yr + ox * p.cout, p.cout, p.act);
    for (; ox < ox_hi; ++ox)
      conv_block<V, 1>(xn + (ox * p.sw - p.pl) * p.xs_w, step, row.data(), nrow, packed, pstride,
                       yr + ox * p.cout, p.cout, p.act);
    for (ox = ox_hi; ox < ow; ++ox) edge_pixel(ox);
  }
}

}  // namespace f32conv
}  // namespace
}  // namespace mk
