// int8 pointwise GEMM, AMX-INT8 path (TDPBUSD: u8 activations x s8 weights into int32 tiles).
//
// Register tile: 32 rows x 32 columns = 2x2 C tiles (tmm0-3), fed per 64-k step by two A tiles
// (tmm4-5: 16 rows x 64 k bytes each) and two B tiles (tmm6-7: 16 k-groups x 16 columns x 4 k).
// Four loads per four TDPBUSD, where a 16x16 C alone costs two loads per product.
//
// Why the shared pack fits unchanged: an AMX B tile is (64/4) rows x 64 bytes, row g holding
// k = 4g..4g+3 of 16 columns, which is exactly 16 consecutive k-groups of one 16-column block of
// the pack (stride 64). K <= 64: the B tiles are configured kpad / 4 rows, one whole block. K > 64:
// only the very last block of the pack can end inside a 64-k step (kpad % 64 != 0); that one step
// is copied, zero padded, once per call. Other blocks' last step reads less than one block into
// the next block, whose bytes meet zero activation bytes (the panel below pads K with zeros).
//
// A tiles come straight from the activation rows (stride K) when nothing has to change: uint8 x
// (no sign flip), K % 64 == 0, 32 full rows. Otherwise the 32 rows are copied once per row block
// into an L1 panel [K/64][32 rows][64 bytes] (flip applied, K zero padded, AVX-512 masked
// copies) and the panel serves every column pair of the caller's range (rows are the outer loop).
//
// C starts as the effective bias (a stride-0 tile load repeats the 16 biases on every row), is
// stored once to an L1 buffer and requantized with the AVX512-VNNI epilogue (same rounding as
// every x86 path). The tile configuration (all eight tiles 16 rows x 64 bytes) is loaded once per
// call; M and N tails are computed on whole tiles and simply not stored (a 1x2, 2x1 or 1x1 tile
// variant skips the tiles that would hold only padding).
//
// When Linux refuses tile permission (arch_prctl), the kernel runs the AVX512-VNNI kernel.
#include <immintrin.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <cstring>
#include <initializer_list>
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

constexpr int kTR = 16;                      // rows of an A / C tile
constexpr int kTK = 64;                      // k bytes of an A tile (16 k-groups of a B tile)
constexpr int kBR = 2 * kTR;                 // rows per register tile
constexpr int kNR = static_cast<int>(kQ8GemmNR);
constexpr int kStepBytes = kTK * kNR;        // one B tile: 1 KB of a packed block

// Where the A tiles of one row block come from: tile 0 of step 0 at a, tile 1 at a + tile1,
// step s at + s * step, rows stride apart.
struct ASrc {
  const uint8_t* a;
  int64_t stride, tile1, step;
};

// The requantization of int32 sums c (rows x ncols, row stride ldc) into y rows m0.., columns
// n0..: + bias, - rowsum * wzp, then the AVX512-VNNI epilogue (same rounding as every x86
// path), then the optional table. Works on a local copy of the parameters: stores through y
// (bytes) may alias anything reachable from a reference, which made GCC reload every field
// after every store.
struct Epilogue {
  Q8GemmParams q;
  explicit Epilogue(const Q8GemmParams& p) : q(p) {}
  void run(const int32_t* c, int64_t ldc, int64_t m0, int64_t rows, int64_t n0, int64_t ncols) const {
    for (int64_t j = 0; j * kNR < ncols; ++j) {
      const int64_t col = n0 + j * kNR, n = ncols - j * kNR;
      const __m512i bias = _mm512_loadu_si512(q.bias + col);
      const __m512i wzp = q.wzp ? _mm512_loadu_si512(q.wzp + col) : _mm512_setzero_si512();
      const float* scale = q.scale + col;
      uint8_t* y = q.y + m0 * q.N + col;
      const int32_t* cj = c + j * kNR;
      auto one = [&](int64_t r, int64_t w) {
        __m512i v = _mm512_add_epi32(_mm512_load_si512(cj + r * ldc), bias);
        if (q.wzp) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_set1_epi32(q.rowsum[m0 + r]), wzp));
        Q8DotAvx512Vnni::store(v, scale, q, y + r * q.N, w);
      };
      if (n >= kNR)
        for (int64_t r = 0; r < rows; ++r) one(r, kNR);  // full width: constant store mask
      else
        for (int64_t r = 0; r < rows; ++r) one(r, n);
    }
    if (q.lut)
      for (int64_t r = 0; r < rows; ++r) {
        uint8_t* y = q.y + (m0 + r) * q.N + n0;
        for (int64_t k = 0; k < ncols; ++k) y[k] = q.lut[y[k]];
      }
  }
};

// K <= 64 (one k step; MobileNets' first layers): per row block the A tiles stay loaded
// (tmm4-5) and every 16-column block is one B tile and two TDPBUSD. C alternates between
// tmm0-1 / B tmm6 and tmm2-3 / B tmm7: a tile is not renamed, so the next block computes in
// the other pair while this pair is stored (store + zero of one pair cost more than its
// products here). c: that pair's 32 x 16 int32 buffer.
// (The tile intrinsics take literal tile numbers, hence one expansion per pair.)
#define MK_AMX_ONE_STEP_BLOCK(C0, C1, B)  \
  do {                                    \
    _tile_zero(C0);                       \
    if (TwoM) _tile_zero(C1);             \
    _tile_loadd(B, b, 64);                \
    _tile_dpbusd(C0, 4, B);               \
    if (TwoM) _tile_dpbusd(C1, 5, B);     \
  } while (0)
#define MK_AMX_ONE_STEP_STORE(C0, C1)                          \
  do {                                                         \
    _tile_stored(C0, c, kNR * 4);                              \
    if (TwoM) _tile_stored(C1, c + kTR * kNR, kNR * 4);        \
  } while (0)
template <int S, bool TwoM>
inline void one_step_block(const int8_t* b) {
  if constexpr (S == 0) MK_AMX_ONE_STEP_BLOCK(0, 1, 6);
  else MK_AMX_ONE_STEP_BLOCK(2, 3, 7);
}
template <int S, bool TwoM>
inline void one_step_store(int32_t* c) {
  if constexpr (S == 0) MK_AMX_ONE_STEP_STORE(0, 1);
  else MK_AMX_ONE_STEP_STORE(2, 3);
}
#undef MK_AMX_ONE_STEP_BLOCK
#undef MK_AMX_ONE_STEP_STORE

template <bool TwoM>
void one_step_rows(const Epilogue& e, const ASrc& a, const int8_t* w, int64_t block_bytes, int64_t m0, int64_t rows,
                   int64_t n_begin, int64_t n_end) {
  alignas(64) int32_t cbuf[2][kBR * kNR];
  _tile_loadd(4, a.a, a.stride);
  if (TwoM) _tile_loadd(5, a.a + a.tile1, a.stride);
  const int64_t nb0 = n_begin / kNR, nb1 = ceil_div(n_end, kNR);
  auto cols = [&](int64_t nb) { return std::min<int64_t>(kNR, n_end - nb * kNR); };
  auto bptr = [&](int64_t nb) { return w + nb * block_bytes; };  // B tiles are configured one block long
  int64_t nb = nb0;
  for (; nb + 1 < nb1; nb += 2) {
    one_step_block<0, TwoM>(bptr(nb));
    if (nb > nb0) e.run(cbuf[1], kNR, m0, rows, (nb - 1) * kNR, cols(nb - 1));
    one_step_store<0, TwoM>(cbuf[0]);
    one_step_block<1, TwoM>(bptr(nb + 1));
    e.run(cbuf[0], kNR, m0, rows, nb * kNR, cols(nb));
    one_step_store<1, TwoM>(cbuf[1]);
  }
  if (nb < nb1) {
    one_step_block<0, TwoM>(bptr(nb));
    if (nb > nb0) e.run(cbuf[1], kNR, m0, rows, (nb - 1) * kNR, cols(nb - 1));
    one_step_store<0, TwoM>(cbuf[0]);
    e.run(cbuf[0], kNR, m0, rows, nb * kNR, cols(nb));
  } else {
    e.run(cbuf[1], kNR, m0, rows, (nb - 1) * kNR, cols(nb - 1));
  }
}

// K > 64: the 2x2 (or smaller) tile product over all k steps, left in tmm0-3. b0/b1: the two
// packed blocks; their last step is read from b0_last/b1_last (a zero-padded copy where the
// block ends inside it).
template <int MT, int NT>
inline void amx_tile(const ASrc& a, const int8_t* b0, const int8_t* b1, const int8_t* b0_last,
                     const int8_t* b1_last, int64_t steps) {
  _tile_zero(0);
  if (NT > 1) _tile_zero(1);
  if (MT > 1) _tile_zero(2);
  if (MT > 1 && NT > 1) _tile_zero(3);
  auto step = [&](const uint8_t* as, const int8_t* p0, const int8_t* p1) {
    _tile_loadd(4, as, a.stride);
    _tile_loadd(6, p0, 64);
    if (MT > 1) _tile_loadd(5, as + a.tile1, a.stride);
    if (NT > 1) _tile_loadd(7, p1, 64);
    _tile_dpbusd(0, 4, 6);
    if (NT > 1) _tile_dpbusd(1, 4, 7);
    if (MT > 1) _tile_dpbusd(2, 5, 6);
    if (MT > 1 && NT > 1) _tile_dpbusd(3, 5, 7);
  };
  for (int64_t s = 0; s + 1 < steps; ++s) step(a.a + s * a.step, b0 + s * kStepBytes, b1 + s * kStepBytes);
  step(a.a + (steps - 1) * a.step, b0_last, b1_last);
}

// tmm0-3 -> c, 32 x 32 int32 (row stride 32 columns); tiles that were not computed are skipped.
inline void store_tiles(bool two_m, bool two_n, int32_t* c) {
  constexpr int64_t ld = 2 * kNR * 4;  // bytes per row of c
  _tile_stored(0, c, ld);
  if (two_n) _tile_stored(1, c + kNR, ld);
  if (two_m) _tile_stored(2, c + kTR * 2 * kNR, ld);
  if (two_m && two_n) _tile_stored(3, c + kTR * 2 * kNR + kNR, ld);
}

// rows x K activations (sign flip applied) -> panel [steps][32][64], K zero padded. Rows past
// `rows` keep what they held: their products are never stored.
inline void build_panel(const Q8GemmParams& p, int64_t m0, int64_t rows, int64_t steps, uint8_t* panel) {
  const __m512i flip = _mm512_set1_epi32(static_cast<int>(p.x_flip));
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* x = p.x + (m0 + r) * p.K;
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t k = s * kTK, n = p.K - k < kTK ? p.K - k : kTK;
      const __mmask64 m = n == kTK ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
      const __m512i v = _mm512_maskz_loadu_epi8(m, x + k);
      // masked-off bytes stay 0 (not 0 ^ flip): padding must meet weights as a zero
      _mm512_store_si512(panel + (s * kBR + r) * kTK, _mm512_maskz_mov_epi8(m, _mm512_xor_si512(v, flip)));
    }
  }
}

}  // namespace

void q8_gemm_amx(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  if (!amx_permission()) return q8_gemm_avx512vnni(p, m_begin, m_end, n_begin, n_end);
  if (m_begin >= m_end || n_begin >= n_end) return;
  const int64_t kpad = round_up(p.K, kQ8GemmKR), steps = ceil_div(kpad, kTK);
  const int64_t block_bytes = kpad * kNR;  // one packed 16-column block
  const int64_t last_block = ceil_div(p.N, kNR) - 1;
  const bool direct = p.x_flip == 0 && p.K % kTK == 0;

  TileConfig cfg{};
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) cfg.rows[t] = kTR, cfg.colsb[t] = 64;
  if (steps == 1) {  // K <= 64: A tiles kpad bytes wide, B tiles kpad / 4 rows = exactly one packed
    for (int t : {4, 5}) cfg.colsb[t] = static_cast<uint16_t>(kpad);  // block (a 1 KB load would run
    for (int t : {6, 7}) cfg.rows[t] = static_cast<uint8_t>(kpad / kQ8GemmKR);  // past the pack's end)
  }
  _tile_loadconfig(&cfg);

  // The pack's last block ends inside its last k step: that step, zero padded (read only when
  // this call's columns reach the last block).
  alignas(64) int8_t btail[kStepBytes];
  const int8_t* last_step = p.w + last_block * block_bytes + (steps - 1) * kStepBytes;
  const int64_t tail_bytes = (kpad - (steps - 1) * kTK) * kNR;
  if (steps > 1 && tail_bytes < kStepBytes && n_end > last_block * kNR) {
    std::memset(btail, 0, sizeof btail);
    std::memcpy(btail, last_step, static_cast<size_t>(tail_bytes));
    last_step = btail;
  }
  auto step_of_last = [&](int64_t nb) {
    return nb == last_block ? last_step : p.w + nb * block_bytes + (steps - 1) * kStepBytes;
  };

  thread_local std::vector<uint8_t> panel_store;
  const size_t panel_bytes = static_cast<size_t>(steps * kBR * kTK + 64);
  if (panel_store.size() < panel_bytes) panel_store.resize(panel_bytes);
  auto* panel = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(panel_store.data()) + 63) & ~uintptr_t(63));
  const Epilogue e(p);
  auto a_of = [&](int64_t m0, int64_t rows) {
    if (direct && rows == kBR) return ASrc{p.x + m0 * p.K, p.K, kTR * p.K, kTK};
    // Rewritten only after the tile loads that read the previous rows (program order).
    build_panel(p, m0, rows, steps, panel);
    return ASrc{panel, kTK, kTR * kTK, kBR * kTK};
  };

  if (steps == 1) {
    for (int64_t m0 = m_begin; m0 < m_end; m0 += kBR) {
      const int64_t rows = m_end - m0 < kBR ? m_end - m0 : kBR;
      const ASrc a = a_of(m0, rows);
      if (rows > kTR) one_step_rows<true>(e, a, p.w, block_bytes, m0, rows, n_begin, n_end);
      else one_step_rows<false>(e, a, p.w, block_bytes, m0, rows, n_begin, n_end);
    }
    _tile_release();
    return;
  }

  // Two C buffers: the epilogue of one register tile runs while the tile unit computes the next
  // (issued first, stored after), so vector requantization and TDPBUSD overlap.
  alignas(64) int32_t cbuf[2][kBR * 2 * kNR];
  struct Pending { int64_t m0, rows, n0, ncols; } pending{};
  bool has_pending = false;
  int buf = 0;
  for (int64_t m0 = m_begin; m0 < m_end; m0 += kBR) {
    const int64_t rows = m_end - m0 < kBR ? m_end - m0 : kBR;
    const ASrc a = a_of(m0, rows);
    for (int64_t n0 = n_begin; n0 < n_end; n0 += 2 * kNR) {
      const int64_t ncols = n_end - n0 < 2 * kNR ? n_end - n0 : 2 * kNR;
      const int64_t nb = n0 / kNR;
      const int8_t* b0 = p.w + nb * block_bytes;
      const bool two_m = rows > kTR, two_n = ncols > kNR;
      const int8_t* b1 = two_n ? b0 + block_bytes : b0;
      const int8_t* l0 = step_of_last(nb);
      const int8_t* l1 = two_n ? step_of_last(nb + 1) : l0;
      if (two_m && two_n) amx_tile<2, 2>(a, b0, b1, l0, l1, steps);
      else if (two_m) amx_tile<2, 1>(a, b0, b1, l0, l1, steps);
      else if (two_n) amx_tile<1, 2>(a, b0, b1, l0, l1, steps);
      else amx_tile<1, 1>(a, b0, b1, l0, l1, steps);
      if (has_pending) e.run(cbuf[buf ^ 1], 2 * kNR, pending.m0, pending.rows, pending.n0, pending.ncols);
      store_tiles(two_m, two_n, cbuf[buf]);
      pending = {m0, rows, n0, ncols};
      has_pending = true;
      buf ^= 1;
    }
  }
  e.run(cbuf[buf ^ 1], 2 * kNR, pending.m0, pending.rows, pending.n0, pending.ncols);
  _tile_release();
}

}  // namespace mk
