// Quantization parameters shared by the int8 ops (pointwise GEMM, depthwise) and the per-call
// preparation both need: requantization scales and the activation-domain shift.
#pragma once
#include <cstdint>
#include <vector>

namespace mk {

struct Q8Quant {
  double x_scale;
  int32_t x_zp;
  bool x_signed;  // int8 (true) or uint8 input
  double y_scale;
  int32_t y_zp;
  bool y_signed;
  int32_t y_min, y_max;  // output clamp in the output dtype (fused ReLU / ReLU6 narrows it)
};

// Throws std::invalid_argument: scales <= 0 or non-finite, zero points or clamp bounds outside
// their dtype, y_min > y_max.
void q8_quant_validate(const Q8Quant& q);

// scale[oc] = float(x_scale * w_scale[oc] / y_scale) for oc < n, 0 up to npad; throws if a
// combined scale is not finite and positive (e.g. overflow of a huge ratio).
std::vector<float> q8_requant_scales(const Q8Quant& q, const float* w_scale, int64_t n, int64_t npad);

// A kernel multiplies in the uint8 (x86) or int8 (ARM) domain: the XOR that maps input bytes
// into it (0 or 0x80 in each byte) and the input zero point in that domain.
struct Q8Domain {
  uint32_t flip;
  int32_t x_zp;
};
Q8Domain q8_domain(const Q8Quant& q, bool kernel_signed_x);

}  // namespace mk
