#include "ops/q8_quant_op.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace mk {

void q8_quant_validate(const Q8Quant& q) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("int8 conv: " + what);
  };
  require(std::isfinite(q.x_scale) && q.x_scale > 0, "x_scale must be finite and > 0");
  require(std::isfinite(q.y_scale) && q.y_scale > 0, "y_scale must be finite and > 0");
  const int32_t xlo = q.x_signed ? -128 : 0, xhi = q.x_signed ? 127 : 255;
  const int32_t ylo = q.y_signed ? -128 : 0, yhi = q.y_signed ? 127 : 255;
  require(q.x_zp >= xlo && q.x_zp <= xhi, "x_zero_point " + std::to_string(q.x_zp) + " outside the input dtype");
  require(q.y_zp >= ylo && q.y_zp <= yhi, "y_zero_point " + std::to_string(q.y_zp) + " outside the output dtype");
  require(q.y_min >= ylo && q.y_max <= yhi && q.y_min <= q.y_max,
          "output clamp [" + std::to_string(q.y_min) + ", " + std::to_string(q.y_max) +
              "] must be a non-empty range inside the output dtype");
}

std::vector<float> q8_requant_scales(const Q8Quant& q, const float* w_scale, int64_t n, int64_t npad) {
  std::vector<float> s(static_cast<size_t>(npad), 0.f);
  for (int64_t oc = 0; oc < n; ++oc) {
    s[oc] = static_cast<float>(q.x_scale * static_cast<double>(w_scale[oc]) / q.y_scale);
    if (!std::isfinite(s[oc]) || !(s[oc] > 0.f))
      throw std::invalid_argument("int8 conv: requantization scale x_scale * w_scale[" + std::to_string(oc) +
                                  "] / y_scale is not a finite positive fp32 number");
  }
  return s;
}

Q8Domain q8_domain(const Q8Quant& q, bool kernel_signed_x) {
  if (q.x_signed == kernel_signed_x) return {0u, q.x_zp};
  // x ^ 0x80 maps uint8 v to int8 v - 128 and int8 v to uint8 v + 128.
  return {0x80808080u, kernel_signed_x ? q.x_zp - 128 : q.x_zp + 128};
}

}  // namespace mk
