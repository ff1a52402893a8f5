// fp32 pointwise (1x1) convolution = GEMM, the operator level: validation, kernel choice,
// threading. Torch-free; the bindings and the fused inverted-residual op call it.
#pragma once
#include <string>

#include "dispatch/isa.h"
#include "kernels/f32-gemm/f32_gemm_kernels.h"

namespace mk {

// Throws std::invalid_argument naming the first inconsistent field.
void f32_gemm_validate(const F32GemmParams& p);
// The ISA level whose GEMM kernel runs for `level` (walks the fallback chain).
Isa f32_gemm_resolve(Isa level);
// The dispatched GEMM kernel for `level`.
const F32GemmKernel& f32_gemm_kernel(Isa level);
// "avx2/6x16"-style name of the kernel the active level runs.
std::string f32_conv1x1_kernel_name();
// C = act(A * B + bias) (+ residual), all rows and columns; `packed` is a whole pack of
// `packed_numel` floats (header checked). num_threads <= 0 means one thread.
void f32_conv1x1_run(const F32GemmParams& p, const float* input, const float* packed,
                     int64_t packed_numel, float* output, int num_threads);

}  // namespace mk
