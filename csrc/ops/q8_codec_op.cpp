#include "ops/q8_codec_op.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "dispatch/isa.h"
#include "kernels/q8-eltwise/q8_requant8.h"
#include "kernels/q8-eltwise/q8_residual_add.h"
#include "kernels/q8-stem/q8_stem_kernels.h"

namespace mk {
namespace {

// round half to even of a float, as torch.round (nearbyint in the default rounding mode).
// Adding and subtracting 1.5 * 2^23 leaves no fraction bits, so the FPU's round-to-nearest-even
// does the rounding; exact for |v| < 2^22, and callers clamp to a far smaller range first.
// Written out (not nearbyintf) so the scalar loops and tails stay cheap.
inline float round_half_even(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}

// clamp(v, lo, hi) that maps NaN to lo (torch would give an unspecified byte for NaN).
inline float clamp_f(float v, float lo, float hi) {
  return v > lo ? (v < hi ? v : hi) : lo;
}

// clamp(round(v) + zp, 0, 255) as a byte; v pre-clamped so round_half_even stays exact.
inline uint8_t requant_byte(float v, float zp) {
  return static_cast<uint8_t>(clamp_f(round_half_even(clamp_f(v, -512.f, 512.f)) + zp, 0.f, 255.f));
}

// y[i] = requant_byte(x[i] / s, zp) for n contiguous floats (x / s rounded as torch divides).
void quantize_dense(const float* x, int64_t n, float s, float zp, uint8_t* y) {
  int64_t i = 0;
#if defined(__SSE2__) || defined(__ARM_NEON)
  const Requant8 rq(-zp, 255.f - zp, static_cast<int32_t>(zp), false);
#endif
#if defined(__SSE2__)
  const __m128 sv = _mm_set1_ps(s);
  for (; i + 8 <= n; i += 8)
    rq.store(_mm_div_ps(_mm_loadu_ps(x + i), sv), _mm_div_ps(_mm_loadu_ps(x + i + 4), sv), y + i);
#elif defined(__ARM_NEON)
  const float32x4_t sv = vdupq_n_f32(s);
  for (; i + 8 <= n; i += 8) rq.store(vdivq_f32(vld1q_f32(x + i), sv), vdivq_f32(vld1q_f32(x + i + 4), sv), y + i);
#endif
  for (; i < n; ++i) y[i] = requant_byte(x[i] / s, zp);
}

// po[c] = requant_byte((x[c] - z) * gate[c], yz) for c < n (po may alias px).
void gate_row(const uint8_t* px, const float* gate, int64_t n, int32_t z, float yz, uint8_t* po) {
  int64_t c = 0;
#if defined(__SSE2__) || defined(__ARM_NEON)
  const Requant8 rq(-yz, 255.f - yz, static_cast<int32_t>(yz), false);
#endif
#if defined(__SSE2__)
  const __m128i zv = _mm_set1_epi32(z);
  for (; c + 8 <= n; c += 8) {
    __m128i x0, x1;
    widen8(px + c, 0, x0, x1);
    rq.store(_mm_mul_ps(_mm_cvtepi32_ps(_mm_sub_epi32(x0, zv)), _mm_loadu_ps(gate + c)),
             _mm_mul_ps(_mm_cvtepi32_ps(_mm_sub_epi32(x1, zv)), _mm_loadu_ps(gate + c + 4)), po + c);
  }
#elif defined(__ARM_NEON)
  const int32x4_t zv = vdupq_n_s32(z);
  for (; c + 8 <= n; c += 8) {
    int32x4_t x0, x1;
    widen8(px + c, 0, x0, x1);
    rq.store(vmulq_f32(vcvtq_f32_s32(vsubq_s32(x0, zv)), vld1q_f32(gate + c)),
             vmulq_f32(vcvtq_f32_s32(vsubq_s32(x1, zv)), vld1q_f32(gate + c + 4)), po + c);
  }
#endif
  const float fz = static_cast<float>(z);
  for (; c < n; ++c) po[c] = requant_byte((static_cast<float>(px[c]) - fz) * gate[c], yz);
}

// Threads for a streaming pass over `bytes` bytes: one below ~64 KB (a fork/join costs more than
// the pass), else up to nt.
int pass_threads(int nt, int64_t bytes) {
  return bytes < (int64_t{1} << 16) ? 1 : std::max(1, nt);
}

}  // namespace

const Q8StemKernel& q8_stem_kernel() { return kernel_for(kQ8StemKernels, active_isa()); }

void q8_quantize_f32(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t sN, int64_t sC,
                     int64_t sH, int64_t sW, double scale, int32_t zp, uint8_t* y, int num_threads) {
  const float s = static_cast<float>(scale);
  const float z = static_cast<float>(zp);
  // x / s in fp32 as torch divides (|x / s| >= 512 saturates either way).
  if (sC == 1 && sW == C && sH == W * C && sN == H * W * C) {  // dense NHWC: one flat loop (in pieces)
    const int64_t total = N * H * W * C;
    const int nt = pass_threads(num_threads, total * 4);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
      const int64_t T = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t piece = (total + T - 1) / T;
      const int64_t b = std::min(total, t * piece), e = std::min(total, b + piece);
      quantize_dense(x + b, e - b, s, z, y + b);
    }
    return;
  }
  if (sW == 1) {
    // NCHW rows: each row's channels read contiguously, interleaved into NHWC (stem kernels)
    const Q8QuantizeRowFn row = q8_stem_kernel().quantize_row;
    const int64_t rows = N * H;
    const int nt = pass_threads(num_threads, rows * W * C * 4);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / H, h = r % H;
      row(x + n * sN + h * sH, C, W, sC, s, zp, y + r * W * C);
    }
    return;
  }
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t w = 0; w < W; ++w) {
        const float* px = x + n * sN + h * sH + w * sW;
        uint8_t* py = y + ((n * H + h) * W + w) * C;
        for (int64_t c = 0; c < C; ++c) py[c] = requant_byte(px[c * sC] / s, z);
      }
}

void q8_dequantize_f32(const uint8_t* q, int64_t n, double scale, int32_t zp, float* y) {
  const float s = static_cast<float>(scale);
  const float z = static_cast<float>(zp);
  for (int64_t i = 0; i < n; ++i) y[i] = (static_cast<float>(q[i]) - z) * s;
}

namespace {

// sums[c - c0] += x[p * C + c] over pixels p < HW, channels c0 <= c < c1 (int32: exact).
void channel_sums(const uint8_t* x, int64_t HW, int64_t C, int64_t c0, int64_t c1, int32_t* sums) {
  int64_t c = c0;
#if defined(__SSE2__)
  // 16 channels at a time in 16-bit lanes, flushed every 256 pixels (256 * 255 < 2^16)
  const __m128i zero = _mm_setzero_si128();
  for (; c + 16 <= c1; c += 16) {
    __m128i s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    for (int64_t p0 = 0; p0 < HW; p0 += 256) {
      const int64_t pe = std::min(HW, p0 + 256);
      __m128i a0 = zero, a1 = zero;
      for (int64_t p = p0; p < pe; ++p) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + p * C + c));
        a0 = _mm_add_epi16(a0, _mm_unpacklo_epi8(v, zero));
        a1 = _mm_add_epi16(a1, _mm_unpackhi_epi8(v, zero));
      }
      s0 = _mm_add_epi32(s0, _mm_unpacklo_epi16(a0, zero));
      s1 = _mm_add_epi32(s1, _mm_unpackhi_epi16(a0, zero));
      s2 = _mm_add_epi32(s2, _mm_unpacklo_epi16(a1, zero));
      s3 = _mm_add_epi32(s3, _mm_unpackhi_epi16(a1, zero));
    }
    int32_t* o = sums + (c - c0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o), s0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 4), s1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 8), s2);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 12), s3);
  }
#endif
  if (c < c1) {  // the remaining channels, pixel by pixel (rows read in order)
    for (int64_t k = c; k < c1; ++k) sums[k - c0] = 0;
    for (int64_t p = 0; p < HW; ++p)
      for (int64_t k = c; k < c1; ++k) sums[k - c0] += x[p * C + k];
  }
}

}  // namespace

void q8_global_avgpool(const uint8_t* x, int64_t N, int64_t HW, int64_t C, double scale, int32_t zp,
                       double y_scale, int32_t y_zp, uint8_t* y, int num_threads) {
  if (HW > (int64_t{1} << 23)) throw std::invalid_argument("q8_global_avgpool: H*W too large for int32 sums");
  const float mult = static_cast<float>(scale / (static_cast<double>(HW) * y_scale));
  const float yz = static_cast<float>(y_zp);
  // work items: (image, 64-channel range), so 2 threads split even one image's channels
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (C + kChunk - 1) / kChunk, items = N * chunks;
  const int nt = pass_threads(num_threads, N * HW * C);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t n = it / chunks, c0 = (it % chunks) * kChunk, c1 = std::min(C, c0 + kChunk);
    int32_t sums[kChunk];
    channel_sums(x + n * HW * C, HW, C, c0, c1, sums);
    for (int64_t c = c0; c < c1; ++c) {
      const int32_t acc = sums[c - c0] - zp * static_cast<int32_t>(HW);
      // float(acc) rounds as torch's acc.float() does (|acc| may exceed 2^24)
      y[n * C + c] = requant_byte(static_cast<float>(acc) * mult, yz);
    }
  }
}

#if defined(MK_X86)
void q8_residual_add_avx512(const AddQuant& q, const uint8_t* a, const uint8_t* b, uint8_t* out, int64_t n);
#endif

Q8AddFn q8_add_kernel(Isa level) {
#if defined(MK_X86)
  if (resolve_isa(level, [](Isa i) { return i == Isa::avx512; }) == Isa::avx512) return q8_residual_add_avx512;
#endif
  (void)level;
  return residual_add;
}

void q8_add(const uint8_t* a, double sa, int32_t za, const uint8_t* b, double sb, int32_t zb, double so,
            int32_t zo, uint8_t* out, int64_t n, bool a_signed, bool b_signed, bool out_signed) {
  q8_add_kernel(active_isa())(make_add_quant(sa, za, a_signed, sb, zb, b_signed, so, zo, out_signed), a, b, out, n);
}

void q8_mul_channel_gate(const uint8_t* x, int64_t N, int64_t HW, int64_t C, double s, int32_t z,
                         const uint8_t* g, double gs, int32_t gz, double ys, int32_t yz, uint8_t* out,
                         int num_threads) {
  const float f = static_cast<float>(s * gs / ys);
  const float fgz = static_cast<float>(gz), fyz = static_cast<float>(yz);
  const int nt = pass_threads(num_threads, N * HW * C);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c0 = 0; c0 < C; c0 += 4096) {  // gate factors of a channel chunk, then every pixel
      const int64_t cn = C - c0 < 4096 ? C - c0 : 4096;
      float gate[4096];
      for (int64_t c = 0; c < cn; ++c) gate[c] = (static_cast<float>(g[n * C + c0 + c]) - fgz) * f;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
      for (int64_t p = 0; p < HW; ++p)
        gate_row(x + (n * HW + p) * C + c0, gate, cn, z, fyz, out + (n * HW + p) * C + c0);
    }
  }
}

int64_t q8_im2col_out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1) {
  if (in <= 0 || k <= 0 || s <= 0 || d <= 0 || p0 < 0 || p1 < 0)
    throw std::invalid_argument("q8_im2col: sizes, stride and dilation must be positive, padding >= 0");
  const int64_t span = d * (k - 1) + 1;
  if (in + p0 + p1 < span)
    throw std::invalid_argument("q8_im2col: kernel (" + std::to_string(span) + " with dilation) larger than the "
                                "padded input (" + std::to_string(in + p0 + p1) + ")");
  return (in + p0 + p1 - span) / s + 1;
}

void q8_im2col(const uint8_t* x, int64_t N, int64_t H, int64_t W, int64_t C, int64_t kh, int64_t kw,
               int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
               uint8_t pad_value, uint8_t* y, int num_threads) {
  const int64_t OH = q8_im2col_out_size(H, kh, sh, dh, pt, pb);
  const int64_t OW = q8_im2col_out_size(W, kw, sw, dw, pl, pr);
  const Q8Im2colParams p{N, H, W, C, kh, kw, sh, sw, dh, dw, pt, pl, OH, OW, pad_value};
  const Q8Im2colRowFn row = q8_stem_kernel().im2col_row;
  const int64_t rows = N * OH, row_bytes = OW * p.K();
  const int nt = pass_threads(num_threads, rows * row_bytes);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t r = 0; r < rows; ++r) row(p, x, r / OH, r % OH, y + r * row_bytes);
}

}  // namespace mk
