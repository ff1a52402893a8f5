// fp32 GEMM for 1x1 (pointwise) convolution, NHWC. Torch-free: raw pointers + a params struct.
//
//   C[M, N] = act(A[M, K] * B[K, N] + bias[N]) (+ R[M, N] when a residual is given)
//
// For a 1x1 convolution M = pixels (N*H*W), K = input channels, N = output channels: the NHWC
// input is A as is (row stride lda = Cin) and the NHWC output is C (ldc = Cout). A is read in
// place (not packed): every pixel row is read once per panel, from L1/L2.
//
// Packed weights: output channels in panels of kF32GemmPanel (16) columns. Panel j holds
// [16 bias][K rows x 16 weights], columns past N zero, so every ISA loads whole vectors (16 =
// 2 ymm = 1 zmm = 4 q registers) and one pack serves every ISA level (forcing an ISA never
// repacks).
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace mk {

constexpr int64_t kF32GemmPanel = 16;

struct F32GemmParams {
  int64_t M, K, N;
  int64_t lda, ldc;               // row strides of A and C in floats (>= K, >= N)
  Activation act;
  const float* residual;          // nullptr, or R added after the activation
  int64_t ldr;                    // row stride of R
  // The activation's constants {0, 6, 3, 1/6}, read from here by the kernels' epilogue on
  // purpose: a member of the caller's params may alias the output, so the compiler reloads
  // them per tile instead of hoisting them into registers for the whole loop nest (hoisted, they
  // left too few of AVX2's 16 registers and an accumulator spilled inside the k loop).
  float act_consts[4] = {0.f, 6.f, 3.f, 1.f / 6.f};
  // K-slices (the fused block's channel tiles): a GEMM over rows [k0, k0 + K) of a pack made
  // for pack_k rows passes `packed + k0 * kF32GemmPanel` and pack_k (0: the pack has K rows),
  // which sets the panel stride. With `accumulate` the tile starts from C instead of the bias:
  // a sum over K-slices is one call per slice, the first without it (bias), the last with the
  // activation and residual, the others with Activation::none.
  int64_t pack_k = 0;
  bool accumulate = false;
  int64_t pack_rows() const { return pack_k > 0 ? pack_k : K; }
};

// A pack starts with a header of kF32GemmPackHeader floats (magic, version, K, N) so a pack
// made for another shape is refused before any kernel reads it; the panels follow.
constexpr int64_t kF32GemmPackHeader = 16;
// Floats in the pack of a K x N weight (header included).
int64_t f32_gemm_packed_size(int64_t k, int64_t n);
// weight: torch 1x1 conv layout [N (out), K (in)] dense; bias: [N] or nullptr (zero).
void f32_gemm_pack(const float* weight, const float* bias, int64_t k, int64_t n, float* packed);
// Throws std::invalid_argument unless `packed` (numel floats) is a pack of a K x N weight.
void f32_gemm_check_pack(const float* packed, int64_t numel, int64_t k, int64_t n);
// The panels of a pack: what the kernels read.
inline const float* f32_gemm_pack_data(const float* packed) { return packed + kF32GemmPackHeader; }

// A kernel computes rows [m_begin, m_end) and columns [n_begin, n_end) of C; n_begin must be
// a multiple of kF32GemmPanel; `packed` is f32_gemm_pack_data() of a pack. Rows and columns
// outside the range are neither read nor written.
using F32GemmFn = void (*)(const F32GemmParams& p, const float* a, const float* packed, float* c,
                           int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end);

// Per-ISA entry points (the tile each uses is in f32_gemm_kernels.h).
void f32_gemm_scalar(const F32GemmParams&, const float*, const float*, float*, int64_t, int64_t,
                     int64_t, int64_t);
#if defined(MK_X86)
void f32_gemm_avx2(const F32GemmParams&, const float*, const float*, float*, int64_t, int64_t,
                   int64_t, int64_t);
void f32_gemm_avx2_3x32(const F32GemmParams&, const float*, const float*, float*, int64_t,
                        int64_t, int64_t, int64_t);
void f32_gemm_avx512(const F32GemmParams&, const float*, const float*, float*, int64_t, int64_t,
                     int64_t, int64_t);
#endif
#if defined(MK_ARM64)
void f32_gemm_neon(const F32GemmParams&, const float*, const float*, float*, int64_t, int64_t,
                   int64_t, int64_t);
#endif

}  // namespace mk
