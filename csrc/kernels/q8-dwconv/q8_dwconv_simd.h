// The int8 depthwise kernel body, written once over a traits type D (csrc/simd/vec_q8dw_*.h).
// Included by each ISA file inside its own translation unit (internal linkage only).
//
// Per output row: build the indirection buffer (OW x taps pointers; padding taps point at
// the row of x_zp bytes), then walk 16-channel blocks and output columns; each pixel runs
// its whole tap loop in registers and requantizes. Tap counts 9, 25 and 49 (3x3, 5x5, 7x7)
// are compile-time so the tap loop is fully unrolled; any other shape takes the runtime-count
// version of the same code. D provides:
//   kPrepPerTap     int16 elements of prepared weights per tap and 16-channel block
//   prepare(const int16_t* w /* tap 0 of this block */, int64_t cpad, int64_t taps, int16_t* out)
//   prepare_bs(const int32_t* bias, const float* scale, int32_t* out_b, float* out_s): the
//       block's 16 biases / scales in the order the accumulators hold channels
//   pixel<TC, Tail, XSigned>(taps_ptrs, ntaps, bias16, scale16, n, prepared, p, out, c)
// and L the ISA's byte-table helper (kernels/q8-lut/q8_lut_<isa>.h: L(table), L.apply(bytes, n)):
// with an activation table (p.lut) each finished output row goes through it while in L1.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "kernels/q8-dwconv/q8_dwconv.h"

namespace mk {
namespace {

// Output pixels [ow, ow_hi) of one row and 16-channel block in 3x3 register blocks of 4 (the
// last 1-3 as one narrower block). rp: the three input rows; o: offset of (column -PL, channel
// c) in a row; y: output row at channel c. Returns ow_hi.
template <class D, int SW, bool XS>
int64_t blocks3x3(const uint8_t* const (&rp)[3], int64_t o, int64_t ow, int64_t ow_hi, const int16_t* wv,
                  const int32_t* bb, const float* sb, const Q8DwconvParams& p, uint8_t* y) {
  const int64_t C = p.C;
  for (; ow + 4 <= ow_hi; ow += 4) {
    const int64_t q = o + ow * SW * C;
    D::template block3x3<4, SW, XS>(rp[0] + q, rp[1] + q, rp[2] + q, C, wv, bb, sb, p, y + ow * C);
  }
  const int64_t q = o + ow * SW * C;
  switch (ow_hi - ow) {
    case 3: D::template block3x3<3, SW, XS>(rp[0] + q, rp[1] + q, rp[2] + q, C, wv, bb, sb, p, y + ow * C); break;
    case 2: D::template block3x3<2, SW, XS>(rp[0] + q, rp[1] + q, rp[2] + q, C, wv, bb, sb, p, y + ow * C); break;
    case 1: D::template block3x3<1, SW, XS>(rp[0] + q, rp[1] + q, rp[2] + q, C, wv, bb, sb, p, y + ow * C); break;
    default: break;
  }
  return ow_hi;
}

// Per-call preparation, for all channel blocks: prepared weights, then bias and scale in the
// accumulators' order, then (3x3 register blocks) a row of x_zp bytes standing in for a padding
// input row. Computed per call unless the caller prepared it ahead (p.prepared).
struct Q8DwPrepLayout {
  int64_t prep_block, bias, scale, zrow, total;
};

template <class D>
Q8DwPrepLayout q8_dw_prep_layout(const Q8DwconvParams& p) {
  const int64_t T = p.KH * p.KW, nblocks = ceil_div(p.C, kQ8DwChannelBlock);
  Q8DwPrepLayout l{};
  l.prep_block = D::prep_size(T);
  l.bias = round_up(2 * l.prep_block * nblocks, 64);
  l.scale = l.bias + round_up(4 * kQ8DwChannelBlock * nblocks, 64);
  l.zrow = l.scale + round_up(4 * kQ8DwChannelBlock * nblocks, 64);
  l.total = l.zrow + (T == 9 && D::kHas3x3s1 ? round_up(p.W * p.C, 64) : 0);
  return l;
}

// Channel blocks [b_begin, b_end) (and the zero row) into a buffer laid out by q8_dw_prep_layout.
template <class D>
void q8_dw_fill_prep(const Q8DwconvParams& p, const Q8DwPrepLayout& l, int64_t b_begin, int64_t b_end,
                     uint8_t* buf) {
  const int64_t T = p.KH * p.KW, cpad = round_up(p.C, kQ8DwChannelBlock);
  auto* prep = reinterpret_cast<int16_t*>(buf);
  auto* bias = reinterpret_cast<int32_t*>(buf + l.bias);
  auto* scale = reinterpret_cast<float*>(buf + l.scale);
  for (int64_t b = b_begin; b < b_end; ++b) {
    const int64_t c = b * kQ8DwChannelBlock;
    D::prepare(p.w + c, cpad, T, prep + b * l.prep_block);
    D::prepare_bs(p.bias + c, p.scale + c, bias + b * kQ8DwChannelBlock, scale + b * kQ8DwChannelBlock);
  }
  if (l.total > l.zrow) std::memset(buf + l.zrow, p.zero[0], static_cast<size_t>(p.W * p.C));
}

template <class D>
int64_t q8_dw_prepare(const Q8DwconvParams& p, void* out) {
  const Q8DwPrepLayout l = q8_dw_prep_layout<D>(p);
  if (out) q8_dw_fill_prep<D>(p, l, 0, ceil_div(p.C, kQ8DwChannelBlock), static_cast<uint8_t*>(out));
  return l.total;
}

template <class D, class L, int TC, bool XS>
void q8_dw_rows(const Q8DwconvParams& p, int64_t row_begin, int64_t row_end, int64_t c_begin,
                int64_t c_end) {
  const int64_t T = p.KH * p.KW;
  const int64_t nblocks = ceil_div(c_end - c_begin, kQ8DwChannelBlock);
  const Q8DwPrepLayout l = q8_dw_prep_layout<D>(p);
  const int64_t b0 = c_begin / kQ8DwChannelBlock;  // block index in the whole-C layout
  // Without p.prepared, only this call's blocks are prepared (into their whole-C places).
  std::unique_ptr<uint8_t[]> own;
  const uint8_t* pb = static_cast<const uint8_t*>(p.prepared);
  if (!pb) {
    own.reset(new uint8_t[static_cast<size_t>(l.total)]);
    q8_dw_fill_prep<D>(p, l, b0, b0 + nblocks, own.get());
    pb = own.get();
  }
  const int64_t prep_block = l.prep_block;
  const int16_t* prep = reinterpret_cast<const int16_t*>(pb) + b0 * prep_block;
  const int32_t* bias = reinterpret_cast<const int32_t*>(pb + l.bias) + b0 * kQ8DwChannelBlock;
  const float* scale = reinterpret_cast<const float*>(pb + l.scale) + b0 * kQ8DwChannelBlock;
  // Per-thread and reused: callers running a row or two per call (the fused block's bands)
  // would otherwise pay two allocations per call.
  thread_local std::vector<const uint8_t*> ind;
  if (ind.size() < static_cast<size_t>(p.OW * T)) ind.resize(static_cast<size_t>(p.OW * T));
  // Tap offsets from a pixel's top-left input position, for columns whose taps are all inside.
  thread_local std::vector<int64_t> off;
  if (off.size() < static_cast<size_t>(T)) off.resize(static_cast<size_t>(T));
  for (int64_t kh = 0; kh < p.KH; ++kh)
    for (int64_t kw = 0; kw < p.KW; ++kw) off[kh * p.KW + kw] = (kh * p.DH * p.W + kw * p.DW) * p.C;
  // Interior columns [ow_lo, ow_hi): every iw in range.
  int64_t ow_lo = (p.PL + p.SW - 1) / p.SW, ow_hi = 0;
  {
    const int64_t last = p.W - 1 + p.PL - (p.KW - 1) * p.DW;  // iw0 + (KW-1)DW <= W-1
    ow_hi = last < 0 ? 0 : last / p.SW + 1;
    if (ow_lo > p.OW) ow_lo = p.OW;
    if (ow_hi > p.OW) ow_hi = p.OW;
    if (ow_hi < ow_lo) ow_hi = ow_lo;
  }
  // 3x3 register blocks: any vertical stride, horizontal stride 1 or 2, no dilation. Stride 2
  // only on wide rows: on 7-wide outputs (14x14x576 s2) the blocks measured 8-12% slower than
  // the per-pixel path, on 56-wide ones (112x112x96 s2) 24% faster.
  const bool fast3x3 = p.KH == 3 && p.KW == 3 && p.DH == 1 && p.DW == 1 &&
                       (p.SW == 1 || (p.SW == 2 && ow_hi - ow_lo >= 12));
  const uint8_t* zrow = l.total > l.zrow ? pb + l.zrow : nullptr;  // x_zp row (padding input rows)
  std::optional<L> lut;
  if (p.lut) lut.emplace(p.lut);
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / p.OH, oh = r % p.OH;
    const uint8_t* img = p.x + n * p.H * p.W * p.C;
    const int64_t ih0 = oh * p.SH - p.PT;
    const bool rows_inside = ih0 >= 0 && ih0 + (p.KH - 1) * p.DH < p.H;
    // Columns the 3x3 register blocks cover (every interior column, padding rows
    // included) never read the indirection buffer: skip filling it there (it cost ~20% of a
    // 112x112x32 layer) when every channel block is full.
    const bool blocked = TC == 9 && D::kHas3x3s1 && fast3x3 && (c_end - c_begin) % kQ8DwChannelBlock == 0;
    const uint8_t* rp[3] = {nullptr, nullptr, nullptr};  // input rows of a 3x3 block (x_zp row if padding)
    if (TC == 9 && D::kHas3x3s1 && fast3x3)
      for (int kh = 0; kh < 3; ++kh) {
        const int64_t ih = ih0 + kh;
        rp[kh] = ih >= 0 && ih < p.H ? img + ih * p.W * p.C : zrow;
      }
    const int64_t skip_lo = ow_lo, skip_hi = blocked ? ow_hi : ow_lo;
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      if (ow == skip_lo && skip_hi > skip_lo) {
        ow = skip_hi - 1;
        continue;
      }
      const uint8_t** t = &ind[ow * T];
      if (rows_inside && ow >= ow_lo && ow < ow_hi) {  // the common case: no bounds checks
        const uint8_t* base = img + (ih0 * p.W + ow * p.SW - p.PL) * p.C;
        for (int64_t i = 0; i < T; ++i) t[i] = base + off[i];
        continue;
      }
      for (int64_t kh = 0; kh < p.KH; ++kh) {
        const int64_t ih = ih0 + kh * p.DH;
        for (int64_t kw = 0; kw < p.KW; ++kw) {
          const int64_t iw = ow * p.SW - p.PL + kw * p.DW;
          const bool inside = ih >= 0 && ih < p.H && iw >= 0 && iw < p.W;
          t[kh * p.KW + kw] = inside ? img + (ih * p.W + iw) * p.C : p.zero;
        }
      }
    }
    uint8_t* out_row = p.y + r * p.OW * p.C;
    for (int64_t b = 0; b < nblocks; ++b) {
      const int64_t c = c_begin + b * kQ8DwChannelBlock;
      const int64_t cn = c_end - c < kQ8DwChannelBlock ? c_end - c : kQ8DwChannelBlock;
      const int16_t* wb = prep + b * prep_block;
      const int32_t* bb = bias + b * kQ8DwChannelBlock;
      const float* sb = scale + b * kQ8DwChannelBlock;
      if (TC == 9 && D::kHas3x3s1 && fast3x3 && cn == kQ8DwChannelBlock) {
        // 3x3: interior columns in register blocks of 4 pixels (the last 1-3 in one narrower
        // block), the padded edge columns per pixel.
        const int64_t o = c - p.PL * p.C;  // column ow * SW - PL, channel c: o + ow * SW * C
        int64_t ow = 0;
        for (; ow < ow_lo; ++ow)
          D::template pixel<TC, false, XS>(&ind[ow * T], T, c, cn, wb, bb, sb, p, out_row + ow * p.C + c);
        const int16_t* wv = wb + D::vert_offset(T);
        if (p.SW == 1) ow = blocks3x3<D, 1, XS>(rp, o, ow, ow_hi, wv, bb, sb, p, out_row + c);
        else ow = blocks3x3<D, 2, XS>(rp, o, ow, ow_hi, wv, bb, sb, p, out_row + c);
        for (; ow < p.OW; ++ow)
          D::template pixel<TC, false, XS>(&ind[ow * T], T, c, cn, wb, bb, sb, p, out_row + ow * p.C + c);
      } else if (cn == kQ8DwChannelBlock) {
        for (int64_t ow = 0; ow < p.OW; ++ow)
          D::template pixel<TC, false, XS>(&ind[ow * T], T, c, cn, wb, bb, sb, p, out_row + ow * p.C + c);
      } else {
        for (int64_t ow = 0; ow < p.OW; ++ow)
          D::template pixel<TC, true, XS>(&ind[ow * T], T, c, cn, wb, bb, sb, p, out_row + ow * p.C + c);
      }
    }
    if (lut) {
      if (c_begin == 0 && c_end == p.C) lut->apply(out_row, p.OW * p.C);  // the whole row at once
      else
        for (int64_t ow = 0; ow < p.OW; ++ow) lut->apply(out_row + ow * p.C + c_begin, c_end - c_begin);
    }
  }
}

template <class D, class L, bool XS>
void q8_dw_taps(const Q8DwconvParams& p, int64_t rb, int64_t re, int64_t cb, int64_t ce) {
  switch (p.KH * p.KW) {
    case 9: return q8_dw_rows<D, L, 9, XS>(p, rb, re, cb, ce);
    case 25: return q8_dw_rows<D, L, 25, XS>(p, rb, re, cb, ce);
    case 49: return q8_dw_rows<D, L, 49, XS>(p, rb, re, cb, ce);
    default: return q8_dw_rows<D, L, 0, XS>(p, rb, re, cb, ce);
  }
}

template <class D, class L>
void q8_dwconv_simd(const Q8DwconvParams& p, int64_t rb, int64_t re, int64_t cb, int64_t ce) {
  if (p.x_signed) q8_dw_taps<D, L, true>(p, rb, re, cb, ce);
  else q8_dw_taps<D, L, false>(p, rb, re, cb, ce);
}

}  // namespace
}  // namespace mk
