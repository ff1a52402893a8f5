// Scalar fused activation for the portable reference kernels (baseline-compiled files only).
#pragma once
#include "kernels/common.h"

namespace mk {
namespace {

inline float activate_scalar(float v, Activation act) {
  switch (act) {
    case Activation::relu: return v > 0.f ? v : 0.f;
    case Activation::relu6: return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
    case Activation::hardswish: {
      float t = v + 3.f;
      t = t < 0.f ? 0.f : (t > 6.f ? 6.f : t);
      return v * t * (1.f / 6.f);
    }
    default: return v;
  }
}

}  // namespace
}  // namespace mk
