// The two elementwise passes of the fused fp32 squeeze-excitation block
// (ops/f32_se_inverted_residual_op.cpp) over NHWC rows: channel sums and the channel scale.
// Plain loops the compiler vectorises, built for the baseline, with the avx2 flags and with the
// avx512 flags (same source, f32_se_body.h), so they run as wide as the GEMM/depthwise do.
#pragma once
#include <cstdint>

namespace mk {

// acc[j] += sum over rows x OW pixels of x[.., j] for j < c (row sums in float into racc [c],
// then added in double); x is [rows][OW] pixels ld floats apart, so a channel slice of wider
// rows (ld > c) is summed in place.
using F32SeSumRowsFn = void (*)(const float* x, int64_t rows, int64_t ow, int64_t c, int64_t ld, float* racc,
                                double* acc);
// d[p][c] *= s[c] for p < pixels, d dense [pixels][C].
using F32SeScaleFn = void (*)(float* d, int64_t pixels, int64_t c, const float* s);

void f32_se_sum_rows_scalar(const float*, int64_t, int64_t, int64_t, int64_t, float*, double*);
void f32_se_scale_scalar(float*, int64_t, int64_t, const float*);
#if defined(MK_X86)
void f32_se_sum_rows_avx2(const float*, int64_t, int64_t, int64_t, int64_t, float*, double*);
void f32_se_scale_avx2(float*, int64_t, int64_t, const float*);
void f32_se_sum_rows_avx512(const float*, int64_t, int64_t, int64_t, int64_t, float*, double*);
void f32_se_scale_avx512(float*, int64_t, int64_t, const float*);
#endif

}  // namespace mk
