// int8 GEMM dot-product traits for AVX-VNNI (256-bit VPDPBUSD, Alder Lake / Sapphire Rapids).
// Include only from _avxvnni files. Same tile and layout as Q8DotAvx2VnniEmu, which tests it.
#pragma once
#include <immintrin.h>

#include "simd/vec_q8_avx2.h"

namespace mk {
namespace {

// 6 rows x 16 columns = 12 accumulators (VPDPBUSD: 5 cycles latency, 2 per cycle on Golden
// Cove, so 8 left it latency-bound) + 2 weights + 1 broadcast (+ the flip): 15-16 registers.
struct Q8DotAvxVnni : Q8Avx2Dot4Base {
  static constexpr int kMR = 6;
  // As an asm statement with acc tied in and out: with the intrinsic GCC 12 copied every
  // accumulator to another register (and one to the stack) on each k step (objdump).
  // (on a copy: tied to the array element itself, the accumulators went to memory).
  static void dot(Acc& acc, X x, W w) {
    Acc a = acc;
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(a) : "x"(x), "x"(w));
    acc = a;
  }
  static I32 finish(Acc acc) { return acc; }
};

}  // namespace
}  // namespace mk
