// int8 depthwise convolution, the operator level: validation, pack check, per-call preparation
// (effective bias, scales, the x_zp padding row, depth-multiplier expansion), threading.
#pragma once
#include <string>

#include "dispatch/isa.h"
#include "kernels/q8-dwconv/q8_dwconv.h"
#include "ops/q8_quant_op.h"

namespace mk {

struct Q8DwShape {
  int64_t N, H, W, C, M;  // input NHWC, depth multiplier (output channels C*M)
  int64_t KH, KW, SH, SW, DH, DW, PT, PL, OH, OW;
};

void q8_dwconv_validate(const Q8DwShape& s);  // throws std::invalid_argument
Isa q8_dwconv_resolve(Isa level);
std::string q8_dwconv_kernel_name();
// lut: optional 256-entry activation table applied to every output byte in the kernels'
// epilogue (bit-exact with a q8_lut pass over y afterwards).
void q8_dwconv_run(const uint8_t* packed, int64_t packed_bytes, const void* x, const Q8DwShape& s,
                   const Q8Quant& q, void* y, int num_threads, const uint8_t* lut = nullptr);
void q8_dwconv_run_with(Q8DwconvFn fn, const uint8_t* packed, int64_t packed_bytes, const void* x,
                        const Q8DwShape& s, const Q8Quant& q, void* y, int num_threads,
                        const uint8_t* lut = nullptr);

}  // namespace mk
