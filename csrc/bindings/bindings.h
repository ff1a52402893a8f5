// pybind11 registration entry points, one per kernel family (each in its own file).
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>

namespace mk::bindings {

// Tensors cross the boundary as data_ptr() integers.
template <class T>
T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

void register_dispatch(pybind11::module_& m);
void register_f32_dwconv(pybind11::module_& m);
void register_f32_pw(pybind11::module_& m);
void register_q8(pybind11::module_& m);  // int8 pointwise GEMM + depthwise (q8_bindings.cpp)
void register_q8_block(pybind11::module_& m);  // fused int8 inverted residual (q8_block_bindings.cpp)
void register_f32_chain(pybind11::module_& m);  // fp32 layer chain (f32_chain_bindings.cpp)
void register_f32_se_block(pybind11::module_& m);  // fused fp32 SE block (f32_se_block_bindings.cpp)
void register_q8_codec(pybind11::module_& m);  // uint8 glue steps of quantized networks (q8_codec_bindings.cpp)
void register_f32_conv_stem(pybind11::module_& m);  // fp32 small-Cin dense conv, the stem (f32_conv_stem_bindings.cpp)
}  // namespace mk::bindings
