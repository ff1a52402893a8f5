// fp32 small-Cin dense convolution (the network stem), the operator level: validation, kernel
// choice for the active ISA, threading over output rows. Torch-free; called by the bindings.
#pragma once
#include <string>

#include "dispatch/isa.h"
#include "kernels/f32-conv/f32_conv_kernels.h"

namespace mk {

// Throws std::invalid_argument naming the first inconsistent field.
void f32_conv_stem_validate(const F32ConvParams& p);
// The kernel the level `level` runs (walks the fallback chain).
const F32ConvKernel& f32_conv_stem_kernel(Isa level);
// "avx2/6x16"-style name of the kernel the active level runs.
std::string f32_conv_stem_kernel_name();
// y (NHWC, n * oh * ow * cout floats) = the conv of x (read through p's strides); `packed` is a
// whole pack of `packed_numel` floats (header checked). num_threads <= 0 means one thread.
void f32_conv_stem_run(const F32ConvParams& p, const float* x, const float* packed,
                       int64_t packed_numel, float* y, int num_threads);

}  // namespace mk
