// 256-entry byte lookup table applied in place: x[i] = table[x[i]] (an int8 code is looked up
// by its byte, i.e. table[code & 0xFF]). The fused int8 block applies elementwise activations
// that are not clamps (Hardswish, Sigmoid...) this way on its scratch rows, exactly as the
// unfused path's uint8 LUT after the conv's requantization.
#pragma once
#include <cstdint>

namespace mk {

using Q8LutFn = void (*)(const uint8_t* table, uint8_t* x, int64_t n);

void q8_lut_scalar(const uint8_t* table, uint8_t* x, int64_t n);
#if defined(MK_X86)
void q8_lut_avx2(const uint8_t* table, uint8_t* x, int64_t n);
#endif
#if defined(MK_ARM64)
void q8_lut_neon(const uint8_t* table, uint8_t* x, int64_t n);
#endif

}  // namespace mk
