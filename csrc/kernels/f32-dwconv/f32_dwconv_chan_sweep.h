// 3x3 stride 1 / 2 depthwise on few channels, channel vector outer: part of the kernel body
// f32_dwconv_simd.h (included from it; same internal-linkage rules), used where an ISA sets
// ChanSweep<V>.
//
// With one vector of channels (C <= 16 on AVX-512: the 16-channel layers of MobileNetV3), the
// pixel-block paths (row_fixed, block2_channels) run each block for one vector: every block
// call reloads the 9 weights and redoes its pointer setup for 8 outputs' work. Here the vector
// is the outer loop: its 9 weights and bias stay in registers while it sweeps the call's rows
// (two at a time where they read no padding row) in blocks of BW pixels.
// Not for more channels: one vector's sweep then strides over the other vectors' lines, which
// measured slower on AVX-512 (56x56x48 1.02x, 112x112x32 1.8x the blocks' time).
//
// Each output sums bias, then kernel rows 0..2, each over kernel columns 0..2: the order of
// block_channels / block2_channels, so the results are bit-identical to the other 3x3 paths
// and any split of rows or channels gives the same bits.
#pragma once

namespace mk {
namespace {

// Channel-outer sweeps per ISA: kBW1 / kBW2 output pixels per block at stride 1 / 2 (two rows
// each), on layers of at most kMaxC channels; kMaxC 0 = off. An ISA file specialises this
// before instantiating the body (AVX-512 does: measured there).
template <class V>
struct ChanSweep {
  static constexpr int kBW1 = 0, kBW2 = 0, kMaxC = 0;
};

template <class V>
inline bool use_chan_sweep(const F32DwconvParams& p) {
  const int fi = fixed_index(p);
  return ChanSweep<V>::kMaxC > 0 && p.cout() <= ChanSweep<V>::kMaxC && (fi == 0 || fi == 1) &&
         borders_known_3x3(p, p.SW);
}

// BW outputs of NRO (1 or 2) rows starting at column ow, one channel vector. rows[i]: input
// row i of the block (3 + S * (NRO - 1) rows) at input column ow*S - 1 and the vector's
// channel, nullptr for a padding row (only when NRO == 1). LZ / TZ: the block's first / last
// input column is padding (never loaded, its taps skipped).
template <class V, int S, int BW, int NRO, Activation A, int LZ, int TZ, bool Tail>
MK_ALWAYS_INLINE void chan_sweep_block(const F32DwconvParams& p, const float* const* rows, int64_t C,
                                       const typename V::T* w, typename V::T b, float* out0,
                                       int64_t orow, int64_t cout, int64_t n) {
  using T = typename V::T;
  constexpr int NX = (BW - 1) * S + 3, NR = 3 + S * (NRO - 1);
  T acc[NRO][BW];
  for (int r = 0; r < NRO; ++r)
    for (int j = 0; j < BW; ++j) acc[r][j] = b;
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i) {
    if (NRO == 1 && !rows[i]) continue;
    T x[NX];
    for (int t = 0; t < NX; ++t)
      x[t] = (t < LZ || t >= NX - TZ) ? V::zero() : ld<V, Tail>(rows[i] + t * C, n);
    for (int r = 0; r < NRO; ++r) {
      const int kh = i - r * S;
      if (kh < 0 || kh >= 3) continue;
      for (int kw = 0; kw < 3; ++kw)
        for (int j = 0; j < BW; ++j)
          if (j * S + kw >= LZ && j * S + kw < NX - TZ) acc[r][j] = V::fmadd(x[j * S + kw], w[kh * 3 + kw], acc[r][j]);
    }
  }
  for (int r = 0; r < NRO; ++r)
    for (int j = 0; j < BW; ++j) st<V, A, Tail>(p, out0 + r * orow + j * cout, acc[r][j], n);
}

// chan_sweep_block for a run-time width bw in [1, B].
template <class V, int S, int B, int NRO, Activation A, int LZ, int TZ, bool Tail>
MK_ALWAYS_INLINE void chan_sweep_block_any(int64_t bw, const F32DwconvParams& p, const float* const* rows,
                                           int64_t C, const typename V::T* w, typename V::T b, float* out0,
                                           int64_t orow, int64_t cout, int64_t n) {
  if constexpr (B > 1)
    if (bw < B)
      return chan_sweep_block_any<V, S, B - 1, NRO, A, LZ, TZ, Tail>(bw, p, rows, C, w, b, out0, orow, cout, n);
  chan_sweep_block<V, S, B, NRO, A, LZ, TZ, Tail>(p, rows, C, w, b, out0, orow, cout, n);
}

// One (NRO = 2: two) output row(s) of one channel vector: the row cut as balanced_blocks_3x3.
// in_rows[i]: input row i (nullptr: padding) at column 0 and the vector's channel.
template <class V, int S, int NRO, Activation A, bool Tail>
MK_ALWAYS_INLINE void chan_sweep_row(const F32DwconvParams& p, const float* const* in_rows, const typename V::T* w,
                                     typename V::T b, float* out_row0, int64_t n) {
  constexpr int B = S == 1 ? ChanSweep<V>::kBW1 : ChanSweep<V>::kBW2, NR = 3 + S * (NRO - 1);
  const int64_t C = p.C, cout = p.cout(), orow = p.OW * cout;
  balanced_blocks_3x3<B, S>(p, [&](int64_t bw, int64_t ow, auto lz, auto tz) __attribute__((always_inline)) {
    const float* rows[NR];
    for (int i = 0; i < NR; ++i) rows[i] = in_rows[i] ? in_rows[i] + (ow * S - 1) * C : nullptr;
    chan_sweep_block_any<V, S, B, NRO, A, decltype(lz)::value, decltype(tz)::value, Tail>(
        bw, p, rows, C, w, b, out_row0 + ow * cout, orow, cout, n);
  });
}

// Output rows [row_begin, row_end) of the flattened (N*OH) row space, channels [c0, c1).
template <class V, int S, Activation A>
void chan_sweep_rows(const F32DwconvParams& p, const float* input, const float* pk, float* output,
                     int64_t row_begin, int64_t row_end, int64_t c0, int64_t c1, int64_t cpad) {
  using T = typename V::T;
  const int64_t C = p.C, cout = p.cout(), rs = p.W * C;
  const float* bias = pk + 9 * cpad;
  auto vec = [&](int64_t c, int64_t n, auto tail_tag) __attribute__((always_inline)) {
    constexpr bool Tail = decltype(tail_tag)::value;
    T w[9];
    load_taps_3x3<V>(pk, c, w);
    const T b = V::load(bias + c);
    for (int64_t row = row_begin; row < row_end;) {
      const int64_t nimg = row / p.OH, oh = row % p.OH, ih0 = oh * S - p.PT;
      const float* in_c = input + nimg * p.H * rs + c;
      float* out_row = output + row * p.OW * cout + c;
      if (row + 1 < row_end && oh + 1 < p.OH && ih0 >= 0 && ih0 + S + 3 <= p.H) {
        const float* in_rows[3 + S];
        for (int i = 0; i < 3 + S; ++i) in_rows[i] = in_c + (ih0 + i) * rs;
        chan_sweep_row<V, S, 2, A, Tail>(p, in_rows, w, b, out_row, n);
        row += 2;
        continue;
      }
      const float* in_rows[3];
      for (int i = 0; i < 3; ++i) in_rows[i] = (ih0 + i >= 0 && ih0 + i < p.H) ? in_c + (ih0 + i) * rs : nullptr;
      chan_sweep_row<V, S, 1, A, Tail>(p, in_rows, w, b, out_row, n);
      ++row;
    }
  };
  int64_t c = c0;
  for (; c + V::kWidth <= c1; c += V::kWidth) vec(c, V::kWidth, std::false_type{});
  if (c < c1) vec(c, c1 - c, std::true_type{});
}

}  // namespace
}  // namespace mk
