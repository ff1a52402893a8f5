// Fused activation on a vector-traits type V (VecF32Avx2 / VecF32Avx512 / VecF32Neon): one
// definition for every fp32 kernel body. Internal linkage: each ISA file gets its own copy.
#pragma once
#include "kernels/common.h"

namespace mk {
namespace {

template <class V, Activation A>
inline typename V::T activate(typename V::T v) {
  if constexpr (A == Activation::relu) {
    return V::max(v, V::zero());
  } else if constexpr (A == Activation::relu6) {
    return V::min(V::max(v, V::zero()), V::set1(6.f));
  } else if constexpr (A == Activation::hardswish) {
    const typename V::T t = V::min(V::max(V::add(v, V::set1(3.f)), V::zero()), V::set1(6.f));
    return V::mul(V::mul(v, t), V::set1(1.f / 6.f));
  } else {
    return v;
  }
}

}  // namespace
}  // namespace mk
