// fp64 helpers shared by the fp32 kernel tests' independent oracles.
#pragma once
#include <cmath>

#include "kernels/common.h"

namespace mktest {

// The fused activations in fp64, written from their definitions (not from the kernels' code).
inline double act_ref(double v, mk::Activation a) {
  switch (a) {
    case mk::Activation::relu: return v > 0 ? v : 0;
    case mk::Activation::relu6: return std::fmin(std::fmax(v, 0.0), 6.0);
    case mk::Activation::hardswish: return v * std::fmin(std::fmax(v + 3, 0.0), 6.0) / 6.0;
    default: return v;
  }
}

}  // namespace mktest
