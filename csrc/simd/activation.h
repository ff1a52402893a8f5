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

// The same with the constants {0, 6, 3, 1/6} loaded from `k` at the point of use, for kernel
// bodies whose register tiles leave no room for constants kept live across their loops.
template <class V, Activation A>
inline typename V::T activate_from(typename V::T v, const float* k) {
  if constexpr (A == Activation::relu) {
    return V::max(v, V::set1(k[0]));
  } else if constexpr (A == Activation::relu6) {
    return V::min(V::max(v, V::set1(k[0])), V::set1(k[1]));
  } else if constexpr (A == Activation::hardswish) {
    const typename V::T t = V::min(V::max(V::add(v, V::set1(k[2])), V::set1(k[0])), V::set1(k[1]));
    return V::mul(V::mul(v, t), V::set1(k[3]));
  } else {
    return v;
  }
}

}  // namespace
}  // namespace mk
