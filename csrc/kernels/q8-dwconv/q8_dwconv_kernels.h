// The list of compiled int8 depthwise kernels (dispatcher, C++ tests, benchmarks).
#pragma once
#include "dispatch/isa.h"
#include "kernels/q8-dwconv/q8_dwconv.h"

namespace mk {

struct Q8DwconvKernel {
  Isa isa;
  Q8DwconvFn run;
  const char* name;
  Q8DwconvPrepareFn prepare = nullptr;  // setup/run split, where the kernel has per-call setup
};

inline constexpr Q8DwconvKernel kQ8DwconvKernels[] = {
    {Isa::scalar, q8_dwconv_scalar, "scalar/reference"},
#if defined(MK_X86)
    {Isa::avx2, q8_dwconv_avx2, "avx2/16c-vpmaddwd", q8_dwconv_avx2_prepare},
    {Isa::avx512vnni, q8_dwconv_avx512vnni, "avx512vnni/64c-vpdpbusd", q8_dwconv_avx512vnni_prepare},
#endif
#if defined(MK_ARM64)
    {Isa::neon, q8_dwconv_neon, "neon/16c-smlal", q8_dwconv_neon_prepare},
#endif
};

}  // namespace mk
