// fp32 depthwise convolution, the operator level: validation, kernel choice, threading.
// Torch-free; the bindings call it on raw pointers.
#pragma once
#include <string>

#include "dispatch/isa.h"
#include "kernels/f32-dwconv/f32_dwconv.h"

namespace mk {

// Throws std::invalid_argument naming the first inconsistent field.
void f32_dwconv_validate(const F32DwconvParams& p);
// The ISA level that will run for the active (or given) level.
Isa f32_dwconv_resolve(Isa level);
// "avx2/3x3s1"-style name of the kernel a shape picks at the active level.
std::string f32_dwconv_kernel_name(const F32DwconvParams& p);
// output = dwconv(input); num_threads <= 0 means one thread.
void f32_dwconv_run(const F32DwconvParams& p, const float* input, const float* packed,
                    float* output, int num_threads);

}  // namespace mk
