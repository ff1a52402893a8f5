// int8 pointwise (1x1) convolution as a GEMM, NHWC. Torch-free: raw pointers + a params struct.
//
// Semantics (ONNX QLinearConv, output channel oc, pixel m, input channel k):
//   acc[m][oc] = bias[oc] + sum_k (x[m][k] - x_zp) * (w[oc][k] - w_zp[oc])          (int32)
//   y[m][oc]   = clamp(nearbyint(float(acc) * scale[oc]) + y_zp, y_min, y_max)
// with scale[oc] = float(double(x_scale) * w_scale[oc] / y_scale), round half to even, and
// y_min / y_max inside the output dtype (a fused ReLU / ReLU6 is just a narrower range).
// x is uint8 or int8, w uint8 or int8 with per-channel (or broadcast per-tensor) zero points,
// y uint8 or int8. The accumulator is int32 with two's-complement wrap, so every path equals
// an int64 reference whenever the true sum fits in int32 (intermediate overflow is harmless).
//
// Packed weights: one byte buffer (a plain torch.uint8 tensor in Python) = 64-byte header
// (Q8PackHeader) + per-channel arrays + weight blocks. Weight blocks: output channels in
// blocks of 16, K in groups of 4: block[nb][kg][16 columns][4 k] int8. One 32-bit lane is
// 4 consecutive k of one column, which is what x86 VPDPBUSD (u8 x s8) and ARM SDOT
// (s8 x s8) consume directly; AVX2 and plain NEON widen the same bytes to int16.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace mk {

constexpr uint32_t kQ8PackMagic = 0x38514b4du;  // "MKQ8" little-endian
constexpr uint16_t kQ8PackVersion = 1;
constexpr int64_t kQ8PackHeaderBytes = 64;
enum class Q8PackKind : uint16_t { gemm = 1, dwconv = 2 };

struct Q8PackHeader {  // 64 bytes, little-endian, at offset 0 of every int8 pack
  uint32_t magic;
  uint16_t version;
  uint16_t kind;        // Q8PackKind
  int32_t cin, cout;    // gemm: K, N. dwconv: C, C (depth multiplier expanded by the op)
  int32_t kh, kw;       // 1, 1 for gemm
  uint8_t w_signed;     // weights were int8 (1) or uint8 (0): informational
  uint8_t nr, kr;       // 16, 4 for gemm; 16, 1 for dwconv
  uint8_t has_wzp;      // gemm: some channel keeps a weight zero point (row-sum correction)
  int32_t reserved0;
  int64_t total_bytes;  // size of the whole pack, header included
  int64_t reserved[3];
};
static_assert(sizeof(Q8PackHeader) == kQ8PackHeaderBytes, "header is 64 bytes");

constexpr int64_t kQ8GemmNR = 16;  // output channels per packed block
constexpr int64_t kQ8GemmKR = 4;   // k per 32-bit lane

// Byte offsets inside a gemm pack (Npad = round_up(N, 16), Kpad = round_up(K, 4)):
//   [64, +4*Npad)   float   w_scale[oc]
//   then            int32   bias[oc]          (zero when none)
//   then            int32   colsum[oc]        sum_k q[k][oc]
//   then            int32   wzp[oc]           zero point left in q (0 for most channels)
//   then            int8    blocks [Npad/16][Kpad/4][16][4]
struct Q8GemmLayout {
  int64_t npad, kpad, scale, bias, colsum, wzp, weights, total;
};
Q8GemmLayout q8_gemm_layout(int64_t K, int64_t N);

// Packs w [N][K] (uint8 when w_signed is false, else int8) with per-channel zero points
// wzp[N] and scales w_scale[N]; bias [N] int32 or nullptr. Per channel, q = w - wzp when that
// fits int8 (zero point folded away); otherwise q = w - 128 (uint8) or w (int8) and the rest
// of the zero point stays in wzp[oc] for the kernels' row-sum correction.
// Throws std::invalid_argument on bad sizes or zero points outside the weight dtype.
void q8_gemm_pack(const void* w, bool w_signed, const int32_t* wzp, const float* w_scale,
                  const int32_t* bias, int64_t K, int64_t N, uint8_t* packed);
// Validates a pack against the expected sizes; throws std::invalid_argument naming the problem.
const Q8PackHeader& q8_check_pack(const uint8_t* packed, int64_t bytes, Q8PackKind kind,
                                  int64_t cin, int64_t cout, int64_t kh, int64_t kw);

// What one kernel call sees (built per call by the op layer, ops/q8_gemm_op.cpp).
struct Q8GemmParams {
  int64_t M, K, N;
  const uint8_t* x;       // [M][K] bytes (uint8 or int8)
  const int8_t* w;        // packed blocks
  const int32_t* bias;    // [Npad] effective bias in the kernel's activation domain
  const float* scale;     // [Npad] requantization scale
  const int32_t* wzp;     // [Npad] weight zero points left in q, or nullptr when all zero
  const int32_t* rowsum;  // [M] sum_k x_eff[m][k] (only when wzp != nullptr)
  uint8_t* y;             // [M][N] bytes (uint8 or int8)
  uint32_t x_flip;        // 0 or 0x80808080: XOR that maps input bytes to the kernel's domain
  int32_t y_zp;
  float y_lo, y_hi;       // clamp bounds minus y_zp (integers, exact in fp32)
  // Optional: this kernel's per-call weight preparation done ahead by its Q8GemmPrepareFn for
  // these w, bias, scale, wzp, K, N (nullptr: the kernel prepares per call).
  const void* prepared = nullptr;
  // Optional 256-entry activation table (Hardswish...): each output byte y becomes lut[y] after
  // the requantization, as a separate table pass over the output would (nullptr: none).
  const uint8_t* lut = nullptr;
};

// Computes rows [m_begin, m_end) and output channels [n_begin, n_end); n_begin % 16 == 0.
using Q8GemmFn = void (*)(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin,
                          int64_t n_end);

// Setup/run split for callers that run the same weights on many short row ranges (the fused
// block's bands): returns the bytes of the kernel's prepared weights for p (0: nothing to
// prepare), and fills out (64-byte aligned) when it is not nullptr. Read-only afterwards, so
// threads may share it.
using Q8GemmPrepareFn = int64_t (*)(const Q8GemmParams& p, void* out);

void q8_gemm_scalar(const Q8GemmParams&, int64_t, int64_t, int64_t, int64_t);
#if defined(MK_X86)
void q8_gemm_avx2(const Q8GemmParams&, int64_t, int64_t, int64_t, int64_t);
int64_t q8_gemm_avx2_prepare(const Q8GemmParams&, void*);  // widened weights + epilogue (K < 256)
void q8_gemm_avxvnni(const Q8GemmParams&, int64_t, int64_t, int64_t, int64_t);
void q8_gemm_avx512vnni(const Q8GemmParams&, int64_t, int64_t, int64_t, int64_t);
// AMX-INT8 (see q8_gemm_amx.cpp). Falls back to the AVX512-VNNI kernel when Linux refuses tile
// permission.
void q8_gemm_amx(const Q8GemmParams&, int64_t, int64_t, int64_t, int64_t);
// Test-only: the AVX-VNNI tiling (q8_gemm_tile.h instantiated like q8_gemm_avxvnni) with VPDPBUSD
// emulated in AVX2, so its logic is exercised on CPUs without VNNI. Not dispatched. (The
// avx512vnni kernel has its own tiling, q8_gemm_avx512vnni.cpp, tested where AVX512-VNNI runs.)
void q8_gemm_vnniemu_avx2(const Q8GemmParams&, int64_t, int64_t, int64_t, int64_t);
#endif
#if defined(MK_ARM64)
void q8_gemm_neon(const Q8GemmParams&, int64_t, int64_t, int64_t, int64_t);
void q8_gemm_neondot(const Q8GemmParams&, int64_t, int64_t, int64_t, int64_t);
void q8_gemm_neoni8mm(const Q8GemmParams&, int64_t, int64_t, int64_t, int64_t);
#endif

}  // namespace mk
