// Scalar requantization shared by the scalar int8 kernels (baseline ISA only; SIMD paths have
// their own vector versions in csrc/simd/vec_q8_*.h and must agree bit for bit).
#pragma once
#include <cmath>
#include <cstdint>

namespace mk {
namespace {

// int32 accumulator -> output byte. Clamping in fp32 to integer bounds before rounding is the
// same as clamping after rounding, and keeps huge values (scale >= 1) away from the
// float->int conversion's overflow. nearbyintf rounds half to even in the default mode.
inline uint8_t q8_requant_scalar(int32_t acc, float scale, float lo, float hi, int32_t zp) {
  float v = static_cast<float>(acc) * scale;
  v = v < lo ? lo : (v > hi ? hi : v);
  return static_cast<uint8_t>(static_cast<int32_t>(std::nearbyintf(v)) + zp);
}

}  // namespace
}  // namespace mk
