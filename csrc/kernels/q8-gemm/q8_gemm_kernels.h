// The list of compiled int8 pointwise GEMM kernels: feeds the dispatcher, the C++ tests and the
// C++ benchmarks. Adding a kernel = one file + one line here.
#pragma once
#include "dispatch/isa.h"
#include "kernels/q8-gemm/q8_gemm.h"

namespace mk {

struct Q8GemmKernel {
  Isa isa;
  Q8GemmFn run;
  bool signed_x;     // activation domain the kernel multiplies in: int8 (ARM) or uint8 (x86)
  const char* name;  // reported by info() / kernel_name
  Q8GemmPrepareFn prepare = nullptr;  // setup/run split, where the kernel has per-call setup
};

inline constexpr Q8GemmKernel kQ8GemmKernels[] = {
    {Isa::scalar, q8_gemm_scalar, false, "scalar/reference"},
#if defined(MK_X86)
    {Isa::avx2, q8_gemm_avx2, false, "avx2/6x16+6x8-vpmaddwd", q8_gemm_avx2_prepare},
    {Isa::avxvnni, q8_gemm_avxvnni, false, "avxvnni/6x16-vpdpbusd"},
    {Isa::avx512vnni, q8_gemm_avx512vnni, false, "avx512vnni/8x48+12x32+16x16-vpdpbusd"},
    // The op runs it only where it pays (q8_gemm_kernel in ops/q8_gemm_op.cpp); tests call it directly.
    {Isa::amx, q8_gemm_amx, false, "amx/32x32-tdpbusd"},
#endif
#if defined(MK_ARM64)
    {Isa::neon, q8_gemm_neon, true, "neon/3x16-smull-sadalp"},
    {Isa::neondot, q8_gemm_neondot, true, "neondot/4x16-sdot"},
    {Isa::neoni8mm, q8_gemm_neoni8mm, true, "neoni8mm/4x16-smmla"},
#endif
};

#if defined(MK_X86)
// Not dispatched: validates the VNNI tiling through an AVX2 emulation of VPDPBUSD (tests only).
inline constexpr Q8GemmKernel kQ8GemmEmulatedKernels[] = {
    {Isa::avx2, q8_gemm_vnniemu_avx2, false, "avx2/vnni-emulated"},
};
#endif

}  // namespace mk
