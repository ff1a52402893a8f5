// The list of compiled fp32 small-Cin dense conv kernels: feeds the dispatcher, the C++ tests
// and the benchmarks. Adding a kernel = one file + one line here.
#pragma once
#include "dispatch/isa.h"
#include "kernels/f32-conv/f32_conv.h"

namespace mk {

struct F32ConvKernel {
  Isa isa;
  F32ConvFn run;
  const char* name;  // register block: output pixels x output channels
};

inline constexpr F32ConvKernel kF32ConvKernels[] = {
    {Isa::scalar, f32_conv_scalar, "scalar/reference"},
#if defined(MK_X86)
    {Isa::avx2, f32_conv_avx2, "avx2/6x16"},
    {Isa::avx512, f32_conv_avx512, "avx512/12x16"},
#endif
#if defined(MK_ARM64)
    {Isa::neon, f32_conv_neon, "neon/6x16"},
#endif
};

}  // namespace mk
