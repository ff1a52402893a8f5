// The list of compiled fp32 GEMM (1x1 conv) kernels: feeds the dispatcher, the C++ tests and
// the benchmarks. Adding a kernel = one file + one line here.
#pragma once
#include "dispatch/isa.h"
#include "kernels/f32-gemm/f32_gemm.h"

namespace mk {

struct F32GemmKernel {
  Isa isa;
  F32GemmFn run;
  const char* name;  // register tile, rows x columns
  int mr;            // rows per tile: the op splits rows across threads in multiples of it
  bool dispatched;   // false: an alternate tile, run by the tests and benchmarks only
};

inline constexpr F32GemmKernel kF32GemmKernels[] = {
    {Isa::scalar, f32_gemm_scalar, "scalar/reference", 1, true},
#if defined(MK_X86)
    {Isa::avx2, f32_gemm_avx2, "avx2/6x16", 6, true},
    {Isa::avx2, f32_gemm_avx2_3x32, "avx2/3x32", 3, false},
    {Isa::avx512, f32_gemm_avx512, "avx512/8x32", 8, true},
#endif
#if defined(MK_ARM64)
    {Isa::neon, f32_gemm_neon, "neon/6x16", 6, true},
#endif
};

}  // namespace mk
