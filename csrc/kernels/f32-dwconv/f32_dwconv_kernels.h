// The list of compiled fp32 depthwise kernels: feeds the dispatcher, the C++ tests and the
// C++ benchmarks. Adding a kernel = one file + one line here (+ one line in cmake/kernels.cmake).
#pragma once
#include "dispatch/isa.h"
#include "kernels/f32-dwconv/f32_dwconv.h"

namespace mk {

struct F32DwconvKernel {
  Isa isa;
  F32DwconvFn run;
  F32DwconvVariantFn variant;
  bool supports_multiplier;  // handles M > 1 itself
};

inline constexpr F32DwconvKernel kF32DwconvKernels[] = {
    {Isa::scalar, f32_dwconv_scalar, f32_dwconv_scalar_variant, true},
#if defined(MK_X86)
    {Isa::avx2, f32_dwconv_avx2, f32_dwconv_avx2_variant, false},
    {Isa::avx512, f32_dwconv_avx512, f32_dwconv_avx512_variant, false},
#endif
#if defined(MK_ARM64)
    {Isa::neon, f32_dwconv_neon, f32_dwconv_neon_variant, false},
#endif
};

}  // namespace mk
