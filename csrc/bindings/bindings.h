// pybind11 registration entry points, one per kernel family (each in its own file).
#pragma once
#include <pybind11/pybind11.h>

namespace mk::bindings {
void register_dispatch(pybind11::module_& m);
void register_f32_dwconv(pybind11::module_& m);
void register_f32_pw(pybind11::module_& m);
void register_q8(pybind11::module_& m);  // int8 pointwise GEMM + depthwise (q8_bindings.cpp)
}  // namespace mk::bindings
