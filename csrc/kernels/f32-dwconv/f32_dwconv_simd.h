// The fp32 depthwise kernel body, written once over a vector-traits type V (VecF32Avx2,
// VecF32Avx512, VecF32Neon). Each ISA file includes this inside its own translation unit
// compiled with its own flags; everything here has internal linkage so no instantiation
// compiled for one ISA can be picked by the linker for another.
//
// Structure: threads own (output row, channel chunk) tiles. Within a row, a block of kBlockW
// output pixels is computed for every channel vector in turn (pixels outer, channels inner),
// so consecutive loads walk contiguous NHWC channels and every cache line fetched is used
// at once. Per kernel row the block loads its kw weights once and the input columns the
// block's pixels share once (stride 1, 3x3, 4 pixels: 3 + 6 loads feed 12 FMAs). Rows outside
// the input are skipped per row; border columns use the same code with zero-filled
// out-of-range columns. Where an ISA sets TwoRowBlockW (AVX2, AVX-512), pairs of output rows that read no
// padding rows run as two-row blocks (block2_channels): the input rows they share are loaded
// once for both, and twice the accumulators hide the FMA latency. Where an ISA sets
// SweepS2BlockW (AVX2), short 3x3 stride-2 rows run as one-row sweep blocks instead
// (block_s2_channels: 7 pixels, the column adjacent outputs share carried in a register).
// Where an ISA sets RowSweepS2OW (AVX2), 3x3 stride-2 rows of medium width run channels outer
// instead (sweep_row_s2_channels: per channel vector, the whole row with its 9 weights in
// registers). Where an ISA sets ChanSweep (AVX-512), 3x3 layers of one channel vector run
// channel-outer over all the call's rows (f32_dwconv_chan_sweep.h); where it sets ChanGroup
// (AVX-512), narrow 3x3 layers run the rows once per group of channels (run_act).
#pragma once
#include <cstdint>
#include <type_traits>

#include "kernels/f32-dwconv/f32_dwconv.h"
#include "simd/activation.h"

namespace mk {
namespace {

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

template <class V, bool Tail>
inline typename V::T ld(const float* p, int64_t n) {
  if constexpr (Tail) return V::load_partial(p, n);
  else return V::load(p);
}

template <class V, Activation A, bool Tail>
inline void st(const F32DwconvParams& p, float* out, typename V::T v, int64_t n) {
  // relu/relu6 keep their constants in registers (measured 6-10% faster than reloading them per
  // store, spills included); hardswish's four constants reload (see F32DwconvParams).
  if constexpr (A == Activation::hardswish) v = activate_from<V, A>(v, p.act_consts);
  else v = activate<V, A>(v);
  if constexpr (Tail) V::store_partial(out, v, n);
  else V::store(out, v);
}

// Row geometry shared by the paths.
struct RowCtx {
  const float* in_n;  // input image n
  float* out_row;     // output row (n, oh)
  int64_t ih0;        // oh * SH - PT
  int64_t kh_lo, kh_hi;
};

// One output pixel, one vector of channels, every tap bounds-checked. Any K, S, D.
template <class V, Activation A, bool Tail>
inline void pixel_checked(const F32DwconvParams& p, const RowCtx& r, const float* pk, int64_t cpad,
                          int64_t ow, int64_t c, int64_t n) {
  typename V::T acc = V::load(pk + p.KH * p.KW * cpad + c);
  const float* wbase = pk + (c >> 4) * p.KH * p.KW * 16 + (c & 15);
  const int64_t iw0 = ow * p.SW - p.PL;
  for (int64_t kh = r.kh_lo; kh < r.kh_hi; ++kh) {
    const float* row = r.in_n + (r.ih0 + kh * p.DH) * p.W * p.C + c;
    for (int64_t kw = 0; kw < p.KW; ++kw) {
      const int64_t iw = iw0 + kw * p.DW;
      if (iw < 0 || iw >= p.W) continue;
      acc = V::fmadd(ld<V, Tail>(row + iw * p.C, n), V::load(wbase + (kh * p.KW + kw) * 16), acc);
    }
  }
  st<V, A, Tail>(p, r.out_row + ow * p.cout() + c, acc, n);
}

// Columns whose taps are all inside the input: [ow_lo, ow_hi).
inline void interior_cols(const F32DwconvParams& p, int64_t& ow_lo, int64_t& ow_hi) {
  ow_lo = imin(p.OW, (p.PL + p.SW - 1) / p.SW);
  ow_hi = imin(p.OW, floor_div(p.W - 1 + p.PL - (p.KW - 1) * p.DW, p.SW) + 1);
  if (ow_hi < ow_lo) ow_hi = ow_lo;
}

#define MK_ALWAYS_INLINE inline __attribute__((always_inline))

// Which specialisation serves a shape; -1 = generic.
inline int fixed_index(const F32DwconvParams& p) {
  if (p.M != 1 || p.DH != 1 || p.DW != 1 || p.KH != p.KW || p.SH != p.SW) return -1;
  const int k = p.KH == 3 ? 0 : p.KH == 5 ? 1 : p.KH == 7 ? 2 : -1;
  const int s = p.SH == 1 ? 0 : p.SH == 2 ? 1 : -1;
  return (k < 0 || s < 0) ? -1 : k * 2 + s;
}

// The 9 taps of a 3x3 kernel for the channel vector at c, from the pack's 16-channel blocks
// ([cout/16][9][16]): the channel-outer sweeps keep them in registers over a whole row or call.
template <class V>
MK_ALWAYS_INLINE void load_taps_3x3(const float* pk, int64_t c, typename V::T (&w)[9]) {
  const float* wk = pk + (c >> 4) * (9 * 16) + (c & 15);
  for (int t = 0; t < 9; ++t) w[t] = V::load(wk + t * 16);
}

// Fixed kernel KHxKW, stride S, dilation 1: BW output pixels starting at column ow, for every
// channel vector of [c0, c1). Row pointers and column validity are computed once per block and
// the channel loop only advances pointers. Checked: some input columns of the block are outside
// [0, W) (left/right border) and read as zero, tested per column at run time. LZ / TZ: the
// block's first LZ / last TZ input columns are known at compile time to be outside: never
// loaded, their taps skipped (the common "same"-padded borders, without Checked's tests).
template <class V, int KH, int KW, int S, int BW, Activation A, bool Checked, int LZ = 0, int TZ = 0>
MK_ALWAYS_INLINE void block_channels(const F32DwconvParams& p, const RowCtx& r, const float* pk,
                                     int64_t cpad, int64_t ow, int64_t c0, int64_t c1) {
  using T = typename V::T;
  constexpr int NX = (BW - 1) * S + KW;
  const int64_t C = p.C, cout = p.cout(), col0 = ow * S - p.PL;
  const float* rows[KH];
  for (int kh = 0; kh < KH; ++kh)
    rows[kh] = (kh >= r.kh_lo && kh < r.kh_hi) ? r.in_n + ((r.ih0 + kh) * p.W + col0) * C : nullptr;
  bool col_ok[NX];
  for (int t = 0; t < NX; ++t) col_ok[t] = !Checked || (col0 + t >= 0 && col0 + t < p.W);
  float* out = r.out_row + ow * cout;
  const float* bias = pk + KH * KW * cpad;

  auto tile = [&](int64_t c, int64_t n, auto tail_tag) __attribute__((always_inline)) {
    constexpr bool Tail = decltype(tail_tag)::value;
    T acc[BW];
    const T b = V::load(bias + c);
    for (int j = 0; j < BW; ++j) acc[j] = b;
    for (int kh = 0; kh < KH; ++kh) {
      if (!rows[kh]) continue;
      const float* row = rows[kh] + c;
      T x[NX];
      for (int t = 0; t < NX; ++t) {
        if (t < LZ || t >= NX - TZ) x[t] = V::zero();  // never read (taps skipped below)
        else if constexpr (Checked) x[t] = col_ok[t] ? ld<V, Tail>(row + t * C, n) : V::zero();
        else x[t] = ld<V, Tail>(row + t * C, n);
      }
      const float* wrow = pk + (c >> 4) * (KH * KW * 16) + (c & 15) + kh * KW * 16;
      for (int kw = 0; kw < KW; ++kw) {
        const T w = V::load(wrow + kw * 16);
        for (int j = 0; j < BW; ++j)
          if (j * S + kw >= LZ && j * S + kw < NX - TZ) acc[j] = V::fmadd(x[j * S + kw], w, acc[j]);
      }
    }
    for (int j = 0; j < BW; ++j) st<V, A, Tail>(p, out + j * cout + c, acc[j], n);
  };
  int64_t c = c0;
  for (; c + V::kWidth <= c1; c += V::kWidth) tile(c, V::kWidth, std::false_type{});
  if (c < c1) tile(c, c1 - c, std::true_type{});
}

// block_channels for a run-time width bw in [1, B].
template <class V, int KH, int KW, int S, int B, Activation A, bool Checked, int LZ = 0, int TZ = 0>
void block_any(int64_t bw, const F32DwconvParams& p, const RowCtx& r, const float* pk, int64_t cpad,
               int64_t ow, int64_t c0, int64_t c1) {
  if constexpr (B > 1)
    if (bw < B) return block_any<V, KH, KW, S, B - 1, A, Checked, LZ, TZ>(bw, p, r, pk, cpad, ow, c0, c1);
  block_channels<V, KH, KW, S, B, A, Checked, LZ, TZ>(p, r, pk, cpad, ow, c0, c1);
}

// 3-wide kernel, left padding 1, at most one column of right padding read: only column -1
// (first block) and column W (last block, when (OW-1)*S + 1 == W) fall outside, so every block,
// borders included, can run at full width with its border columns skipped at compile time.
// (More right padding puts whole taps past W: row_fixed's checked path.)
inline bool borders_known_3x3(const F32DwconvParams& p, int64_t S) {
  return p.PL == 1 && (p.OW - 1) * S + 1 <= p.W;
}

// The same for a KW-wide kernel (3 or 5) with torch's 'same' left padding KW/2 and at most KW/2
// columns of right padding read: a block's columns outside the input are then its first lz
// and last tz, both in [0, KW/2], skipped at compile time (balanced_blocks). For KW 3 this is
// borders_known_3x3.
inline bool borders_known(const F32DwconvParams& p, int64_t S) {
  const int64_t z = p.KW / 2;
  return p.PL == z && (p.OW - 1) * S + p.KW - 1 - p.PL - (p.W - 1) <= z;
}

// Calls f(std::integral_constant<int, v>) for a run-time v in [0, Z].
template <int Z, class F>
MK_ALWAYS_INLINE void with_constant(int64_t v, F&& f) {
  if constexpr (Z > 0)
    if (v < Z) return with_constant<Z - 1>(v, f);
  f(std::integral_constant<int, Z>{});
}

// Cuts a row of OW outputs into the fewest blocks of at most B pixels, of balanced widths, and
// calls f(bw, ow, lz, tz) per block, lz / tz integral constants in [0, Z]: how many of the
// block's first / last input columns are outside the input, under borders_known (Z = KW/2).
template <int B, int S, int Z, class F>
MK_ALWAYS_INLINE void balanced_blocks(const F32DwconvParams& p, F&& f) {
  const int64_t nb = ceil_div(p.OW, B), base = p.OW / nb, wider = p.OW % nb;
  const int64_t s_last = p.W - 1 + p.PL - (p.KW - 1);  // ow * S of the last output with all taps inside
  int64_t ow = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t bw = base + (i < wider ? 1 : 0);
    // Block columns: input columns ow*S - PL .. (ow+bw-1)*S + KW-1 - PL.
    const int64_t lz = imax(0, p.PL - ow * S), tz = imax(0, (ow + bw - 1) * S - s_last);
    with_constant<Z>(lz, [&](auto lzc) __attribute__((always_inline)) {
      with_constant<Z>(tz, [&](auto tzc) __attribute__((always_inline)) { f(bw, ow, lzc, tzc); });
    });
    ow += bw;
  }
}

// balanced_blocks for 3-wide kernels under borders_known_3x3 (lz / tz 0 or 1).
template <int B, int S, class F>
MK_ALWAYS_INLINE void balanced_blocks_3x3(const F32DwconvParams& p, F&& f) {
  balanced_blocks<B, S, 1>(p, f);
}

// The 3x3 stride-2 sweep blocks (block_s2_channels) per ISA: kWidth output pixels per block, used
// on rows of at most kMaxOW outputs; kWidth 0 = off (row_fixed's blocks and the two-row blocks
// serve stride 2). An ISA file specialises this before instantiating the body (only AVX2:
// measured there).
template <class V>
struct SweepS2BlockW {
  static constexpr int kWidth = 0, kMaxOW = 0;
};

// Whether the sweep blocks serve this shape (3x3 stride 2, row_fixed's compile-time borders).
template <class V>
inline bool use_sweep_s2(const F32DwconvParams& p) {
  return SweepS2BlockW<V>::kWidth > 0 && fixed_index(p) == 1 && borders_known_3x3(p, 2) &&
         p.OW <= SweepS2BlockW<V>::kMaxOW;
}

// Makes the compiler hold v in a vector register at this point: without it GCC folds a
// register-carried input column back into each FMA that reads it as a memory operand,
// loading it twice.
template <class T>
MK_ALWAYS_INLINE void keep_in_register(T& v) {
#if defined(__x86_64__) || defined(__i386__)
  asm("" : "+x"(v));
#elif defined(__aarch64__)
  asm("" : "+w"(v));
#else
  (void)v;
#endif
}

// 3x3 stride 2, one output row, BW pixels starting at column ow, for every channel vector of
// [c0, c1), left padding 1 with the borders known at compile time (LZ / TZ as in
// block_channels). Adjacent stride-2 outputs share one input column (output j reads columns
// 2j, 2j+1, 2j+2), so each kernel row is swept along W carrying the shared column in a
// register: 2 loads per output per row instead of 3, and only the 3 weights of that kernel row,
// the carried column and BW accumulators are live, which leaves room for a row of 7 outputs
// in one block (the two-row blocks cut it 3+2+2). Each accumulator sums its taps in the same
// order as block_channels / block2_channels (bias, then kernel rows, then kernel columns):
// bit-identical results.
template <class V, int BW, Activation A, int LZ, int TZ>
MK_ALWAYS_INLINE void block_s2_channels(const F32DwconvParams& p, const RowCtx& r, const float* pk,
                                        int64_t cpad, int64_t ow, int64_t c0, int64_t c1) {
  using T = typename V::T;
  const int64_t C = p.C, cout = p.cout(), col0 = ow * 2 - p.PL;
  const float* rows[3];
  for (int kh = 0; kh < 3; ++kh)
    rows[kh] = (kh >= r.kh_lo && kh < r.kh_hi) ? r.in_n + ((r.ih0 + kh) * p.W + col0) * C : nullptr;
  float* out = r.out_row + ow * cout;
  const float* bias = pk + 9 * cpad;

  auto tile = [&](int64_t c, int64_t n, auto tail_tag) __attribute__((always_inline)) {
    constexpr bool Tail = decltype(tail_tag)::value;
    T acc[BW];
    const T b = V::load(bias + c);
    for (int j = 0; j < BW; ++j) acc[j] = b;
    const float* wk = pk + (c >> 4) * (9 * 16) + (c & 15);
#pragma GCC unroll 3
    for (int kh = 0; kh < 3; ++kh) {
      if (!rows[kh]) continue;
      const float* row = rows[kh] + c;
      const T w0 = V::load(wk + (kh * 3 + 0) * 16), w1 = V::load(wk + (kh * 3 + 1) * 16),
              w2 = V::load(wk + (kh * 3 + 2) * 16);
      T carry = LZ ? V::zero() : ld<V, Tail>(row, n);  // column 2j, shared with output j-1
      keep_in_register(carry);
#pragma GCC unroll 16
      for (int j = 0; j < BW; ++j) {
        if (!(LZ && j == 0)) acc[j] = V::fmadd(carry, w0, acc[j]);
        acc[j] = V::fmadd(ld<V, Tail>(row + (2 * j + 1) * C, n), w1, acc[j]);
        if (!(TZ && j == BW - 1)) {
          carry = ld<V, Tail>(row + (2 * j + 2) * C, n);
          keep_in_register(carry);
          acc[j] = V::fmadd(carry, w2, acc[j]);
        }
      }
    }
    for (int j = 0; j < BW; ++j) st<V, A, Tail>(p, out + j * cout + c, acc[j], n);
  };
  int64_t c = c0;
  for (; c + V::kWidth <= c1; c += V::kWidth) tile(c, V::kWidth, std::false_type{});
  if (c < c1) tile(c, c1 - c, std::true_type{});
}

// block_s2_channels for a run-time width bw in [1, B].
template <class V, int B, Activation A, int LZ, int TZ>
void block_s2_any(int64_t bw, const F32DwconvParams& p, const RowCtx& r, const float* pk, int64_t cpad,
                  int64_t ow, int64_t c0, int64_t c1) {
  if constexpr (B > 1)
    if (bw < B) return block_s2_any<V, B - 1, A, LZ, TZ>(bw, p, r, pk, cpad, ow, c0, c1);
  block_s2_channels<V, B, A, LZ, TZ>(p, r, pk, cpad, ow, c0, c1);
}

// The 3x3 stride-2 row sweeps (row_sweep_s2) per ISA: used on rows of kMinOW..kMaxOW outputs;
// kMaxOW 0 = off. An ISA file specialises this before instantiating the body (only AVX2:
// measured there).
template <class V>
struct RowSweepS2OW {
  static constexpr int kMinOW = 0, kMaxOW = 0;
};

template <class V>
inline bool use_row_sweep_s2(const F32DwconvParams& p) {
  return RowSweepS2OW<V>::kMaxOW > 0 && fixed_index(p) == 1 && borders_known_3x3(p, 2) &&
         p.OW >= RowSweepS2OW<V>::kMinOW && p.OW <= RowSweepS2OW<V>::kMaxOW;
}

// 3x3 stride 2, one output row whose 3 input rows are all inside the input, left padding 1 and
// at most one column of right padding (borders_known_3x3). Channels outer, pixels inner: for
// each channel vector the whole row is swept along W with its 9 weights in registers and, per
// kernel row, the input column adjacent outputs share carried in a register (6 input loads
// per output, no weight loads). The loads of one instruction then walk one long strided
// stream, which on Zen 3 beat the blocks of row_fixed / block2_channels on rows of 16..32
// outputs (see f32_dwconv_avx2.cpp). Same tap order as block_channels: bit-identical results.
template <class V, Activation A>
MK_ALWAYS_INLINE void sweep_row_s2_channels(const F32DwconvParams& p, const RowCtx& r, const float* pk,
                                            int64_t cpad, int64_t c0, int64_t c1) {
  using T = typename V::T;
  const int64_t C = p.C, cout = p.cout(), OW = p.OW;
  const bool tz = (OW - 1) * 2 + 2 > p.W;  // the last output's third column is the right padding
  const float* row0 = r.in_n + r.ih0 * p.W * C;  // input column 0 of kernel row 0
  const int64_t rs = p.W * C;
  const float* bias = pk + 9 * cpad;

  auto tile = [&](int64_t c, int64_t n, auto tail_tag) __attribute__((always_inline)) {
    constexpr bool Tail = decltype(tail_tag)::value;
    T w[9];
    load_taps_3x3<V>(pk, c, w);
    const T b = V::load(bias + c);
    const float* in = row0 + c;
    float* out = r.out_row + c;
    T carry[3] = {V::zero(), V::zero(), V::zero()};  // column 2j - 1 of each kernel row
    // Output j reads columns 2j-1 (carried), 2j, 2j+1 (carried on). LZ: column -1 is padding
    // (j == 0); TZ: column 2j+1 is padding (last output when tz).
    auto step = [&](int64_t j, auto lz_tag, auto tz_tag) __attribute__((always_inline)) {
      constexpr bool LZ = decltype(lz_tag)::value, TZ = decltype(tz_tag)::value;
      T acc = b;
#pragma GCC unroll 3
      for (int kh = 0; kh < 3; ++kh) {
        const float* col = in + kh * rs + 2 * j * C;
        if (!LZ) acc = V::fmadd(carry[kh], w[kh * 3 + 0], acc);
        acc = V::fmadd(ld<V, Tail>(col, n), w[kh * 3 + 1], acc);
        if (!TZ) {
          carry[kh] = ld<V, Tail>(col + C, n);
          keep_in_register(carry[kh]);
          acc = V::fmadd(carry[kh], w[kh * 3 + 2], acc);
        }
      }
      st<V, A, Tail>(p, out + j * cout, acc, n);
    };
    using F = std::false_type;
    using Tr = std::true_type;
    const int64_t jend = tz ? OW - 1 : OW;  // outputs with all 3 columns' right part inside
    if (jend == 0) return step(0, Tr{}, Tr{});
    step(0, Tr{}, F{});
    int64_t j = 1;
    for (; j < jend; ++j) step(j, F{}, F{});
    if (j < OW) step(j, F{}, Tr{});
  };
  int64_t c = c0;
  for (; c + V::kWidth <= c1; c += V::kWidth) tile(c, V::kWidth, std::false_type{});
  if (c < c1) tile(c, c1 - c, std::true_type{});
}

template <class V, int KH, int KW, int S, Activation A>
void row_fixed(const F32DwconvParams& p, const RowCtx& r, const float* pk, int64_t cpad, int64_t c0,
               int64_t c1, int64_t ow_lo, int64_t ow_hi);

// row_fixed for 3x3 stride 2 under use_row_sweep_s2: the sweep on rows reading no padding row.
template <class V, Activation A>
void row_sweep_s2(const F32DwconvParams& p, const RowCtx& r, const float* pk, int64_t cpad, int64_t c0,
                  int64_t c1, int64_t ow_lo, int64_t ow_hi) {
  if (r.kh_lo == 0 && r.kh_hi == 3) return sweep_row_s2_channels<V, A>(p, r, pk, cpad, c0, c1);
  row_fixed<V, 3, 3, 2, A>(p, r, pk, cpad, c0, c1, ow_lo, ow_hi);
}

template <class V, int KH, int KW, int S, Activation A>
void row_fixed(const F32DwconvParams& p, const RowCtx& r, const float* pk, int64_t cpad, int64_t c0,
               int64_t c1, int64_t ow_lo, int64_t ow_hi) {
  // The row is cut into the fewest blocks of at most B pixels, of balanced widths (7 -> 4+3,
  // 14 -> 5+5+4 rather than 6+6+1+1): a block's loaded input columns and weights feed all its
  // pixels, so narrow leftovers cost up to twice as much per pixel. Blocks touching the left or
  // right border read their out-of-range columns as zero (Checked). Stride 1 reuses more of
  // each loaded column, so it takes a wider block where the vector file allows.
  constexpr int B = S == 1 ? V::kBlockWStride1 : V::kBlockW;
  if constexpr (KH == 3 && KW == 3 && S == 2 && SweepS2BlockW<V>::kWidth > 0) {
    if (use_sweep_s2<V>(p)) {
      // One block for the whole row (OW <= kMaxOW <= kWidth): its first column is the left
      // padding; its last is the right padding when (OW-1)*2 + 2 > W-1.
      constexpr int B = SweepS2BlockW<V>::kWidth;
      static_assert(SweepS2BlockW<V>::kMaxOW <= B, "sweep rows are one block");
      if ((p.OW - 1) * 2 + 2 > p.W) block_s2_any<V, B, A, 1, 1>(p.OW, p, r, pk, cpad, 0, c0, c1);
      else block_s2_any<V, B, A, 1, 0>(p.OW, p, r, pk, cpad, 0, c0, c1);
      return;
    }
  }
  // 3- and 5-wide 'same' borders skip their outside columns at compile time (5x5: the same
  // taps as the two-row blocks skip, so a row gives the same bits alone or in a pair).
  if constexpr (KW == 3 || KW == 5) {
    if (borders_known(p, S)) {
      balanced_blocks<B, S, KW / 2>(p, [&](int64_t bw, int64_t ow, auto lz, auto tz) __attribute__((always_inline)) {
        block_any<V, KH, KW, S, B, A, false, decltype(lz)::value, decltype(tz)::value>(bw, p, r, pk, cpad, ow, c0, c1);
      });
      return;
    }
  }
  int64_t ow = 0;
  for (; ow < ow_lo; ++ow) block_channels<V, KH, KW, S, 1, A, true>(p, r, pk, cpad, ow, c0, c1);
  const int64_t n = ow_hi - ow_lo, nb = ceil_div(n, B), base = nb ? n / nb : 0, wider = nb ? n % nb : 0;
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t bw = base + (i < wider ? 1 : 0);
    block_any<V, KH, KW, S, B, A, false>(bw, p, r, pk, cpad, ow, c0, c1);
    ow += bw;
  }
  for (; ow < p.OW; ++ow) block_channels<V, KH, KW, S, 1, A, true>(p, r, pk, cpad, ow, c0, c1);
}

// Two-row block widths per ISA (3x3 stride 1, stride 2; 5x5 stride 1, stride 2); 0 = one row
// at a time. An ISA file specialises this before instantiating the body (AVX2 and AVX-512 do:
// measured there; NEON keeps the one-row blocks until measured on such a CPU). 5x5 widths are
// at most 7 (stride 1) and 4 (stride 2): block2_channels addresses at most 11 input columns.
template <class V>
struct TwoRowBlockW {
  static constexpr int kStride1 = 0, kStride2 = 0, k5Stride1 = 0, k5Stride2 = 0;
};

// Makes the compiler treat a pointer as a new value here (see block2_channels).
template <class P>
MK_ALWAYS_INLINE void opaque_pointer(P& ptr) {
#if defined(__GNUC__)
  asm("" : "+r"(ptr));
#else
  (void)ptr;
#endif
}

// Byte offsets k * step for k in [0, 11) from three registers, in x86 addressing-mode form
// (base + index * {1, 2, 4, 8}): k = 1, 2, 4, 8 scale s1, 3, 6, 9 scale s3, 5 and 10 scale s5,
// 7 = s5 + 2*s1.
struct ScaledOffsets {
  int64_t s1, s3, s5;
  explicit ScaledOffsets(int64_t step) : s1(step), s3(3 * step), s5(5 * step) {}
  MK_ALWAYS_INLINE int64_t at(int k) const {
    switch (k) {
      case 0: return 0;
      case 1: return s1;
      case 2: return s1 * 2;
      case 3: return s3;
      case 4: return s1 * 4;
      case 5: return s5;
      case 6: return s3 * 2;
      case 7: return s5 + s1 * 2;
      case 8: return s1 * 8;
      case 9: return s3 * 3;
      default: return s5 * 2;
    }
  }
};

// Output rows oh and oh+1 of one image whose KH taps all fall inside the input (no padding row):
// their KH+S input rows are loaded once per block, input row i feeding output row 0 with kernel
// row i and output row 1 with kernel row i-S (3x3 stride 1: 4 rows for 2 outputs instead of 6,
// stride 2: 5 instead of 6; 5x5: 6 / 7 instead of 10). 'Same' left padding (KW/2) only, borders
// as in row_fixed's compile-time path (LZ / TZ: the same taps skipped, the same sums in the same
// order as block_channels, so a row gives the same bits alone or in a pair).
// Addressing: one pointer per input row, advanced by one vector per channel step and made
// opaque there, and the block's columns as row pointer + {1,2,3,4,5,6} * C from three
// registers (ScaledOffsets), which x86 folds into the loads' and FMAs' address operands.
// Written naively (row + t * C), GCC kept one induction pointer per (row, column) -- 24 for
// stride 1 -- and spilled them and the vectors (Zen 3: ~2 cycles per output vector in L1).
template <class V, int KH, int KW, int S, int BW, Activation A, int LZ = 0, int TZ = 0>
MK_ALWAYS_INLINE void block2_channels(const F32DwconvParams& p, const float* in_top, float* out_row0,
                                      const float* pk, int64_t cpad, int64_t ow, int64_t c0, int64_t c1) {
  using T = typename V::T;
  constexpr int NX = (BW - 1) * S + KW, NR = KH + S;
  static_assert(NX <= 11 && BW <= 8, "ScaledOffsets covers 11 columns, 8 outputs");
  const int64_t cout = p.cout();
  const ScaledOffsets col(p.C * int64_t(sizeof(float))), ocol(cout * int64_t(sizeof(float)));
  const int64_t row_bytes = p.W * p.C * int64_t(sizeof(float));
  // Column -1 at the left border: never read (LZ).
  const char* rows[NR];
  for (int i = 0; i < NR; ++i)
    rows[i] = reinterpret_cast<const char*>(in_top + (ow * S - p.PL) * p.C + c0) + i * row_bytes;
  char* out0 = reinterpret_cast<char*>(out_row0 + ow * cout + c0);
  char* out1 = out0 + p.OW * cout * int64_t(sizeof(float));
  const float* bias = pk + KH * KW * cpad;

  auto tile = [&](int64_t c, int64_t n, auto tail_tag) __attribute__((always_inline)) {
    constexpr bool Tail = decltype(tail_tag)::value;
    T acc0[BW], acc1[BW];
    const T b = V::load(bias + c);
    for (int j = 0; j < BW; ++j) acc0[j] = acc1[j] = b;
    const float* wk = pk + (c >> 4) * (KH * KW * 16) + (c & 15);
    for (int i = 0; i < NR; ++i) {
      T x[NX];
      for (int t = 0; t < NX; ++t)  // zeros never read
        x[t] = (t < LZ || t >= NX - TZ) ? V::zero()
                                         : ld<V, Tail>(reinterpret_cast<const float*>(rows[i] + col.at(t)), n);
      for (int kw = 0; kw < KW; ++kw) {
        if (i < KH) {
          const T w = V::load(wk + (i * KW + kw) * 16);
          for (int j = 0; j < BW; ++j)
            if (j * S + kw >= LZ && j * S + kw < NX - TZ) acc0[j] = V::fmadd(x[j * S + kw], w, acc0[j]);
        }
        if (i >= S) {
          const T w = V::load(wk + ((i - S) * KW + kw) * 16);
          for (int j = 0; j < BW; ++j)
            if (j * S + kw >= LZ && j * S + kw < NX - TZ) acc1[j] = V::fmadd(x[j * S + kw], w, acc1[j]);
        }
      }
    }
    for (int j = 0; j < BW; ++j) st<V, A, Tail>(p, reinterpret_cast<float*>(out0 + ocol.at(j)), acc0[j], n);
    for (int j = 0; j < BW; ++j) st<V, A, Tail>(p, reinterpret_cast<float*>(out1 + ocol.at(j)), acc1[j], n);
  };
  constexpr int64_t kStep = V::kWidth * int64_t(sizeof(float));
  int64_t c = c0;
  for (; c + V::kWidth <= c1; c += V::kWidth) {
    tile(c, V::kWidth, std::false_type{});
    for (int i = 0; i < NR; ++i) {
      rows[i] += kStep;
      opaque_pointer(rows[i]);
    }
    out0 += kStep;
    out1 += kStep;
  }
  if (c < c1) tile(c, c1 - c, std::true_type{});
}

template <class V, int KH, int KW, int S, int B, Activation A, int LZ = 0, int TZ = 0>
void block2_any(int64_t bw, const F32DwconvParams& p, const float* in_top, float* out_row0,
                const float* pk, int64_t cpad, int64_t ow, int64_t c0, int64_t c1) {
  if constexpr (B > 1)
    if (bw < B) return block2_any<V, KH, KW, S, B - 1, A, LZ, TZ>(bw, p, in_top, out_row0, pk, cpad, ow, c0, c1);
  block2_channels<V, KH, KW, S, B, A, LZ, TZ>(p, in_top, out_row0, pk, cpad, ow, c0, c1);
}

// Output rows oh, oh+1 (out_row0 = row oh) from input rows starting at in_top = row oh*S - PT,
// KxK = 3x3 or 5x5 under borders_known (row_fixed's compile-time borders).
template <class V, int K, int S, Activation A>
void row2_fixed(const F32DwconvParams& p, const float* in_top, float* out_row0, const float* pk,
                int64_t cpad, int64_t c0, int64_t c1) {
  using W = TwoRowBlockW<V>;
  constexpr int B = K == 3 ? (S == 1 ? W::kStride1 : W::kStride2) : (S == 1 ? W::k5Stride1 : W::k5Stride2);
  balanced_blocks<B, S, K / 2>(p, [&](int64_t bw, int64_t ow, auto lz, auto tz) __attribute__((always_inline)) {
    block2_any<V, K, K, S, B, A, decltype(lz)::value, decltype(tz)::value>(bw, p, in_top, out_row0, pk, cpad,
                                                                           ow, c0, c1);
  });
}

// The 3x3 stride-1 row sweeps (sweep_rows_s1_channels) per ISA: used on rows of kMinOW..kMaxOW
// outputs, cut into segments of kSegment outputs; kMaxOW 0 = off. An ISA file specialises this
// before instantiating the body (only AVX2: measured there).
template <class V>
struct RowSweepS1OW {
  static constexpr int kMinOW = 0, kMaxOW = 0, kSegment = 0;
};

// Whether the stride-1 sweeps serve this shape (3x3 stride 1, left padding 1, at most one
// column of right padding read). They change the summation order (below) of every row that
// reads no padding row, whether it runs alone or in a pair: the choice depends on the shape
// only, so any split of the rows (threads, fused-block bands) gives the same bits.
template <class V>
inline bool use_row_sweep_s1(const F32DwconvParams& p) {
  return RowSweepS1OW<V>::kMaxOW > 0 && fixed_index(p) == 0 && borders_known_3x3(p, 1) &&
         p.OW >= RowSweepS1OW<V>::kMinOW && p.OW <= RowSweepS1OW<V>::kMaxOW;
}

// 3x3 stride 1, NR (1 or 2) output rows whose input rows [in_top, in_top + NR + 2) are all
// inside the input, left padding 1, at most one column of right padding (borders_known_3x3).
// Channels outer within segments of kSegment outputs: per channel vector the segment is swept
// along W with the 9 weights in registers; each input column is loaded once (per row) and
// feeds the three outputs that read it, which keep rolling accumulators (output j-1 finishes
// and is stored, j continues, j+1 starts at the bias): NR+2 loads and 9*NR FMAs per column, no
// weight loads, and only 3*NR accumulators live. Summation order per output: bias, then kernel
// column 0 (kernel rows 0, 1, 2), column 1, column 2 -- the same for one and two rows, but not
// block_channels' (rows outer): the path is picked per shape (use_row_sweep_s1). Output lines
// a few columns ahead are prefetched: the stores, not the loads, were what held the sweep back
// on full layers (Zen 3).
template <class V, int NR, Activation A>
MK_ALWAYS_INLINE void sweep_rows_s1_channels(const F32DwconvParams& p, const float* in_top, float* out_row0,
                                             const float* pk, int64_t cpad, int64_t c0, int64_t c1) {
  using T = typename V::T;
  constexpr int kSeg = RowSweepS1OW<V>::kSegment, kPrefetch = 16;
  const int64_t C = p.C, cout = p.cout(), OW = p.OW;
  const int64_t rs = p.W * C, os = p.OW * cout;
  const int64_t jfull = imin(OW, p.W - 1);  // outputs whose right column is inside the input
  const float* bias = pk + 9 * cpad;
  for (int64_t o0 = 0; o0 < OW; o0 += kSeg) {
    const int64_t o1 = imin(OW, o0 + kSeg);
    auto tile = [&](int64_t c, int64_t n, auto tail_tag) __attribute__((always_inline)) {
      constexpr bool Tail = decltype(tail_tag)::value;
      T w[9];
      load_taps_3x3<V>(pk, c, w);
      const float* in = in_top + c;
      float* out = out_row0 + c;
      // acc[r][0]: output j of row r, acc[r][1]: output j+1 (input row k feeds output row r
      // with kernel row k - r).
      T acc[NR][2];
      for (int r = 0; r < NR; ++r) acc[r][0] = acc[r][1] = V::load(bias + c);
      if (o0 > 0)
        for (int k = 0; k < NR + 2; ++k) {
          const T x = ld<V, Tail>(in + k * rs + (o0 - 1) * C, n);
          for (int r = 0; r < NR; ++r)
            if (k - r >= 0 && k - r < 3) acc[r][0] = V::fmadd(x, w[(k - r) * 3 + 0], acc[r][0]);
        }
      for (int k = 0; k < NR + 2; ++k) {
        const T x = ld<V, Tail>(in + k * rs + o0 * C, n);
        for (int r = 0; r < NR; ++r)
          if (k - r >= 0 && k - r < 3) {
            acc[r][0] = V::fmadd(x, w[(k - r) * 3 + 1], acc[r][0]);
            acc[r][1] = V::fmadd(x, w[(k - r) * 3 + 0], acc[r][1]);
          }
      }
      int64_t j = o0;
      for (const int64_t jend = imin(o1, jfull); j < jend; ++j) {
        const float* col = in + (j + 1) * C;
        T next[NR];
        for (int r = 0; r < NR; ++r) next[r] = V::load(bias + c);
#pragma GCC unroll 4
        for (int k = 0; k < NR + 2; ++k) {
          const T x = ld<V, Tail>(col + k * rs, n);
          for (int r = 0; r < NR; ++r)
            if (k - r >= 0 && k - r < 3) {
              acc[r][0] = V::fmadd(x, w[(k - r) * 3 + 2], acc[r][0]);
              acc[r][1] = V::fmadd(x, w[(k - r) * 3 + 1], acc[r][1]);
              next[r] = V::fmadd(x, w[(k - r) * 3 + 0], next[r]);
            }
        }
        for (int r = 0; r < NR; ++r) {
          st<V, A, Tail>(p, out + r * os + j * cout, acc[r][0], n);
          if (j + kPrefetch < OW) __builtin_prefetch(out + r * os + (j + kPrefetch) * cout, 1, 3);
          acc[r][0] = acc[r][1];
          acc[r][1] = next[r];
        }
      }
      if (j < o1)  // the last output (OW == W): its right column is the padding
        for (int r = 0; r < NR; ++r) st<V, A, Tail>(p, out + r * os + j * cout, acc[r][0], n);
    };
    int64_t c = c0;
    for (; c + V::kWidth <= c1; c += V::kWidth) tile(c, V::kWidth, std::false_type{});
    if (c < c1) tile(c, c1 - c, std::true_type{});
  }
}

// Two-row path under use_row_sweep_s1.
template <class V, Activation A>
void rows2_sweep_s1(const F32DwconvParams& p, const float* in_top, float* out_row0, const float* pk,
                    int64_t cpad, int64_t c0, int64_t c1) {
  sweep_rows_s1_channels<V, 2, A>(p, in_top, out_row0, pk, cpad, c0, c1);
}

// One-row path under use_row_sweep_s1: the sweep on rows reading no padding row (the same sums
// as in a pair), row_fixed on the others.
template <class V, Activation A>
void row_sweep_s1(const F32DwconvParams& p, const RowCtx& r, const float* pk, int64_t cpad, int64_t c0,
                  int64_t c1, int64_t ow_lo, int64_t ow_hi) {
  if (r.kh_lo == 0 && r.kh_hi == 3)
    return sweep_rows_s1_channels<V, 1, A>(p, r.in_n + r.ih0 * p.W * p.C, r.out_row, pk, cpad, c0, c1);
  row_fixed<V, 3, 3, 1, A>(p, r, pk, cpad, c0, c1, ow_lo, ow_hi);
}

template <class V, Activation A>
void row_generic(const F32DwconvParams& p, const RowCtx& r, const float* pk, int64_t cpad,
                 int64_t c0, int64_t c1, int64_t, int64_t) {
  for (int64_t ow = 0; ow < p.OW; ++ow) {
    int64_t c = c0;
    for (; c + V::kWidth <= c1; c += V::kWidth) pixel_checked<V, A, false>(p, r, pk, cpad, ow, c, V::kWidth);
    if (c < c1) pixel_checked<V, A, true>(p, r, pk, cpad, ow, c, c1 - c);
  }
}

template <class V, Activation A>
using RowFn = void (*)(const F32DwconvParams&, const RowCtx&, const float*, int64_t, int64_t,
                       int64_t, int64_t, int64_t);

template <class V, Activation A>
RowFn<V, A> pick_row(const F32DwconvParams& p) {
  switch (fixed_index(p)) {
    case 0:
      if constexpr (RowSweepS1OW<V>::kMaxOW > 0)
        if (use_row_sweep_s1<V>(p)) return row_sweep_s1<V, A>;
      return row_fixed<V, 3, 3, 1, A>;
    case 1:
      if constexpr (RowSweepS2OW<V>::kMaxOW > 0)
        if (use_row_sweep_s2<V>(p)) return row_sweep_s2<V, A>;
      return row_fixed<V, 3, 3, 2, A>;
    case 2: return row_fixed<V, 5, 5, 1, A>;
    case 3: return row_fixed<V, 5, 5, 2, A>;
    case 4: return row_fixed<V, 7, 7, 1, A>;
    case 5: return row_fixed<V, 7, 7, 2, A>;
    default: return row_generic<V, A>;
  }
}

template <class V, Activation A>
using Row2Fn = void (*)(const F32DwconvParams&, const float*, float*, const float*, int64_t, int64_t,
                        int64_t);

// The two-row path for a shape, or nullptr: 3x3 / 5x5 stride 1 or 2 with row_fixed's
// compile-time borders (borders_known), on ISAs that set their widths.
template <class V, Activation A>
Row2Fn<V, A> pick_row2(const F32DwconvParams& p) {
  using W = TwoRowBlockW<V>;
  const int fi = fixed_index(p);
  if (fi < 0 || fi > 3 || !borders_known(p, p.SW)) return nullptr;
  if constexpr (W::kStride1 > 0 && W::kStride2 > 0) {
    if (fi == 0) {
      if constexpr (RowSweepS1OW<V>::kMaxOW > 0)
        if (use_row_sweep_s1<V>(p)) return rows2_sweep_s1<V, A>;
      return row2_fixed<V, 3, 1, A>;
    }
    if (fi == 1) return use_sweep_s2<V>(p) || use_row_sweep_s2<V>(p) ? nullptr : row2_fixed<V, 3, 2, A>;
  }
  if constexpr (W::k5Stride1 > 0)
    if (fi == 2) return row2_fixed<V, 5, 1, A>;
  if constexpr (W::k5Stride2 > 0)
    if (fi == 3) return row2_fixed<V, 5, 2, A>;
  return nullptr;
}

}  // namespace
}  // namespace mk

// The channel-outer 3x3 sweeps (ChanSweep) build on the helpers above.
#include "kernels/f32-dwconv/f32_dwconv_chan_sweep.h"

namespace mk {
namespace {

// Channel groups per ISA: for 3x3 stride 1 / 2 where the input is at most kMaxW pixels wide, the rows of a call run
// once per group of round_down(kBytes / W, 16) channels instead of once for all channels, so
// the input rows a row pair shares with the next (2 rows x W pixels x the group's channels)
// are still in L1 when the next pair reads them; 0 = off. An ISA file specialises this before
// instantiating the body (AVX-512 does: measured there).
template <class V>
struct ChanGroup {
  static constexpr int kBytes = 0, kMaxW = 0;
};

template <class V>
inline int64_t chan_group(const F32DwconvParams& p) {
  const int fi = fixed_index(p);
  if (ChanGroup<V>::kBytes == 0 || p.W > ChanGroup<V>::kMaxW || (fi != 0 && fi != 1)) return 0;
  return imax(16, ChanGroup<V>::kBytes / p.W / 16 * 16);
}

// Output rows [row_begin, row_end), channels [c_begin, c_end): row pairs where they read no
// padding row (row2_fn), else one row at a time.
template <class V, Activation A>
void run_rows(const F32DwconvParams& p, const float* input, const float* pk, float* output, int64_t cpad,
              RowFn<V, A> row_fn, Row2Fn<V, A> row2_fn, int64_t row_begin, int64_t row_end, int64_t c_begin,
              int64_t c_end) {
  int64_t ow_lo, ow_hi;
  interior_cols(p, ow_lo, ow_hi);
  for (int64_t row = row_begin; row < row_end;) {
    const int64_t nimg = row / p.OH, oh = row % p.OH;
    RowCtx r;
    r.in_n = input + nimg * p.H * p.W * p.C;
    r.out_row = output + row * p.OW * p.cout();
    r.ih0 = oh * p.SH - p.PT;
    // Rows oh and oh+1 of this image, both inside the range, reading input rows
    // [ih0, ih0 + S + K) all inside the image: one two-row block.
    if (row2_fn && row + 1 < row_end && oh + 1 < p.OH && r.ih0 >= 0 && r.ih0 + p.SH + p.KH <= p.H) {
      row2_fn(p, r.in_n + r.ih0 * p.W * p.C, r.out_row, pk, cpad, c_begin, c_end);
      row += 2;
      continue;
    }
    // kh with 0 <= ih0 + kh*DH < H
    r.kh_lo = imin(p.KH, imax(0, (-r.ih0 + p.DH - 1) / p.DH));
    r.kh_hi = imax(r.kh_lo, imin(p.KH, floor_div(p.H - 1 - r.ih0, p.DH) + 1));
    row_fn(p, r, pk, cpad, c_begin, c_end, ow_lo, ow_hi);
    ++row;
  }
}

template <class V, Activation A>
void run_act(const F32DwconvParams& p, const float* input, const float* pk, float* output,
             int64_t row_begin, int64_t row_end, int64_t c_begin, int64_t c_end) {
  const int64_t cpad = round_up(p.cout(), kF32DwconvChannelAlign);
  if constexpr (ChanSweep<V>::kMaxC > 0)
    if (use_chan_sweep<V>(p)) {
      if (p.SH == 1) return chan_sweep_rows<V, 1, A>(p, input, pk, output, row_begin, row_end, c_begin, c_end, cpad);
      return chan_sweep_rows<V, 2, A>(p, input, pk, output, row_begin, row_end, c_begin, c_end, cpad);
    }
  const RowFn<V, A> row_fn = pick_row<V, A>(p);
  const Row2Fn<V, A> row2_fn = pick_row2<V, A>(p);
  // Groups pay off only where a call runs several row pairs (a pair's rows are then re-read by
  // the next): calls of fewer rows (the op's 1- and 2-row work items, short fused-block bands)
  // run all their channels at once.
  const int64_t group = row_end - row_begin >= 4 ? chan_group<V>(p) : 0;
  if (group == 0) return run_rows<V, A>(p, input, pk, output, cpad, row_fn, row2_fn, row_begin, row_end, c_begin, c_end);
  for (int64_t c = c_begin; c < c_end; c += group)
    run_rows<V, A>(p, input, pk, output, cpad, row_fn, row2_fn, row_begin, row_end, c, imin(c_end, c + group));
}
// relu6 and hardswish clamp their result; the AVX2 and AVX-512 paths compile the clamped
// activations in a second file so the two halves of one ISA build in parallel.
inline bool clamped_activation(Activation a) { return a == Activation::relu6 || a == Activation::hardswish; }

// run_act for B when p.act is B, else for A: the AVX2 and AVX-512 paths instantiate none / relu
// in one file and relu6 / hardswish in another.
template <class V, Activation A, Activation B>
void run_either(const F32DwconvParams& p, const float* input, const float* pk, float* output,
                int64_t row_begin, int64_t row_end, int64_t c_begin, int64_t c_end) {
  if (p.act == B) return run_act<V, B>(p, input, pk, output, row_begin, row_end, c_begin, c_end);
  run_act<V, A>(p, input, pk, output, row_begin, row_end, c_begin, c_end);
}
template <class V>
void f32_dwconv_simd_unclamped(const F32DwconvParams& p, const float* input, const float* pk, float* output,
                               int64_t row_begin, int64_t row_end, int64_t c_begin, int64_t c_end) {
  run_either<V, Activation::none, Activation::relu>(p, input, pk, output, row_begin, row_end, c_begin, c_end);
}
template <class V>
void f32_dwconv_simd_clamped(const F32DwconvParams& p, const float* input, const float* pk, float* output,
                             int64_t row_begin, int64_t row_end, int64_t c_begin, int64_t c_end) {
  run_either<V, Activation::relu6, Activation::hardswish>(p, input, pk, output, row_begin, row_end, c_begin, c_end);
}

// Every activation in one file (NEON).
template <class V>
void f32_dwconv_simd(const F32DwconvParams& p, const float* input, const float* pk, float* output,
                     int64_t row_begin, int64_t row_end, int64_t c_begin, int64_t c_end) {
  if (clamped_activation(p.act))
    return f32_dwconv_simd_clamped<V>(p, input, pk, output, row_begin, row_end, c_begin, c_end);
  f32_dwconv_simd_unclamped<V>(p, input, pk, output, row_begin, row_end, c_begin, c_end);
}

}  // namespace
}  // namespace mk
