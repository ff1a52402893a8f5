// Bindings of the fp32 small-Cin dense conv (the stem). Pointers arrive as integers
// (tensor.data_ptr()); every call re-validates in C++ (std::invalid_argument -> ValueError)
// and releases the GIL around the kernel.
#include <pybind11/stl.h>

#include <array>
#include <cstdint>

#include "bindings/bindings.h"
#include "ops/f32_conv_stem_op.h"

namespace py = pybind11;

namespace mk::bindings {

void register_f32_conv_stem(py::module_& m) {
  m.def("f32_conv_stem_packed_size", &f32_conv_packed_size, py::arg("cin"), py::arg("cout"),
        py::arg("kh"), py::arg("kw"));
  m.def(
      "f32_conv_stem_pack",
      [](std::uintptr_t weight, std::uintptr_t bias, int64_t cin, int64_t cout, int64_t kh, int64_t kw,
         std::uintptr_t packed) {
        py::gil_scoped_release nogil;
        f32_conv_pack(ptr<const float>(weight), bias ? ptr<const float>(bias) : nullptr, cin, cout, kh, kw,
                      ptr<float>(packed));
      },
      py::arg("weight"), py::arg("bias"), py::arg("cin"), py::arg("cout"), py::arg("kh"), py::arg("kw"),
      py::arg("packed"));
  // geometry = (n, cin, h, w, cout, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, act),
  // strides = x's four element strides (NCHW order)
  m.def(
      "f32_conv_stem",
      [](std::uintptr_t x, std::uintptr_t packed, int64_t packed_numel, std::uintptr_t y,
         std::array<int64_t, 16> g, std::array<int64_t, 4> s, int num_threads) {
        const F32ConvParams p{g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12],
                              g[13], g[14], s[0], s[1], s[2], s[3], static_cast<Activation>(g[15])};
        f32_conv_stem_validate(p);
        py::gil_scoped_release nogil;
        f32_conv_stem_run(p, ptr<const float>(x), ptr<const float>(packed), packed_numel, ptr<float>(y),
                          num_threads);
      },
      py::arg("x"), py::arg("packed"), py::arg("packed_numel"), py::arg("y"), py::arg("geometry"),
      py::arg("strides"), py::arg("num_threads"));
  m.def("f32_conv_stem_kernel_name", &f32_conv_stem_kernel_name);
}

}  // namespace mk::bindings
