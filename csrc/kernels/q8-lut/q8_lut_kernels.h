// The list of compiled byte-LUT kernels (dispatcher, C++ tests).
#pragma once
#include "dispatch/isa.h"
#include "kernels/q8-lut/q8_lut.h"

namespace mk {

struct Q8LutKernel {
  Isa isa;
  Q8LutFn run;
  const char* name;
};

inline constexpr Q8LutKernel kQ8LutKernels[] = {
    {Isa::scalar, q8_lut_scalar, "scalar"},
#if defined(MK_X86)
    {Isa::avx2, q8_lut_avx2, "avx2/16x-vpshufb"},
#endif
#if defined(MK_ARM64)
    {Isa::neon, q8_lut_neon, "neon/4x-tbl4"},
#endif
};

}  // namespace mk
