// The list of compiled stem kernels (input quantization rows, im2col rows): dispatcher, C++ tests.
#pragma once
#include "dispatch/isa.h"
#include "kernels/q8-stem/q8_stem.h"

namespace mk {

struct Q8StemKernel {
  Isa isa;
  Q8QuantizeRowFn quantize_row;
  Q8Im2colRowFn im2col_row;
  const char* name;
};

inline constexpr Q8StemKernel kQ8StemKernels[] = {
    {Isa::scalar, q8_quantize_row_scalar, q8_im2col_row_scalar, "scalar"},
#if defined(MK_X86)
    {Isa::avx2, q8_quantize_row_avx2, q8_im2col_row_avx2, "avx2"},
#endif
#if defined(MK_ARM64)
    {Isa::neon, q8_quantize_row_neon, q8_im2col_row_neon, "neon"},
#endif
};

}  // namespace mk
