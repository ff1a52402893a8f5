// int8 pointwise (1x1) convolution, the operator level: pack check, per-call preparation
// (effective bias, requantization scales, row sums), kernel choice, OpenMP threading.
// Torch-free; the bindings call it on raw pointers.
#pragma once
#include <string>

#include "dispatch/isa.h"
#include "kernels/q8-gemm/q8_gemm.h"
#include "ops/q8_quant_op.h"

namespace mk {

Isa q8_gemm_resolve(Isa level);
struct Q8GemmKernel;
// The kernel the op runs at `level` (at amx: AMX where the call is big enough, else AVX512-VNNI).
const Q8GemmKernel& q8_gemm_kernel(Isa level);
// Name of the kernel the active level runs ("avx2/2x16 vpmaddwd", ...).
std::string q8_gemm_kernel_name();
// y[M][N] = requant(x[M][K] @ packed); throws std::invalid_argument on a bad pack or quant.
// lut: optional 256-entry activation table applied to every output byte in the kernels'
// epilogue (bit-exact with a q8_lut pass over y afterwards).
void q8_gemm_run(const uint8_t* packed, int64_t packed_bytes, const void* x, int64_t M, int64_t K,
                 int64_t N, const Q8Quant& q, void* y, int num_threads, const uint8_t* lut = nullptr);
// Same, on an explicit kernel (tests and benchmarks: every compiled path, emulations too).
void q8_gemm_run_with(Q8GemmFn fn, bool kernel_signed_x, const uint8_t* packed, int64_t packed_bytes,
                      const void* x, int64_t M, int64_t K, int64_t N, const Q8Quant& q, void* y,
                      int num_threads, const uint8_t* lut = nullptr);

}  // namespace mk
