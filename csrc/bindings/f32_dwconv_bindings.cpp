// Bindings of the fp32 depthwise family. Pointers arrive as integers (tensor.data_ptr()).
#include <cstdint>

#include "bindings/bindings.h"
#include "ops/f32_dwconv_op.h"

namespace py = pybind11;

namespace mk::bindings {
namespace {


F32DwconvParams make_params(int64_t n, int64_t h, int64_t w, int64_t c, int64_t m, int64_t kh,
                            int64_t kw, int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt,
                            int64_t pl, int64_t oh, int64_t ow, int act) {
  F32DwconvParams p{n, h, w, c, m, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, static_cast<Activation>(act)};
  f32_dwconv_validate(p);
  return p;
}

}  // namespace

void register_f32_dwconv(py::module_& m) {
  m.def("f32_dwconv_packed_size", &f32_dwconv_packed_size, py::arg("cout"), py::arg("kh"),
        py::arg("kw"));
  m.def(
      "f32_dwconv_pack",
      [](std::uintptr_t weight, std::uintptr_t bias, int64_t cout, int64_t kh, int64_t kw,
         std::uintptr_t packed) {
        py::gil_scoped_release nogil;
        f32_dwconv_pack(ptr<const float>(weight), bias ? ptr<const float>(bias) : nullptr, cout,
                        kh, kw, ptr<float>(packed));
      },
      py::arg("weight"), py::arg("bias"), py::arg("cout"), py::arg("kh"), py::arg("kw"),
      py::arg("packed"));
  m.def(
      "f32_dwconv",
      [](std::uintptr_t input, std::uintptr_t packed, std::uintptr_t output, int64_t n, int64_t h,
         int64_t w, int64_t c, int64_t mult, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
         int64_t dh, int64_t dw, int64_t pt, int64_t pl, int64_t oh, int64_t ow, int act,
         int num_threads, int64_t packed_numel) {
        const F32DwconvParams p = make_params(n, h, w, c, mult, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, act);
        f32_dwconv_check_pack(ptr<const float>(packed), packed_numel, p.cout(), kh, kw);
        py::gil_scoped_release nogil;
        f32_dwconv_run(p, ptr<const float>(input), ptr<const float>(packed), ptr<float>(output),
                       num_threads);
      });
  // A validated call for one input shape: Python's eager path builds it once per shape and then
  // passes only pointers (a 21-argument call converts every int each time: ~1 us).
  py::class_<F32DwconvParams>(m, "F32DwconvCall",
                              "fp32 depthwise call validated for one input shape; run(input, "
                              "packed, packed_numel, output, num_threads) on data_ptr()s")
      .def(py::init(&make_params), py::arg("n"), py::arg("h"), py::arg("w"), py::arg("c"),
           py::arg("m"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("dh"),
           py::arg("dw"), py::arg("pt"), py::arg("pl"), py::arg("oh"), py::arg("ow"),
           py::arg("act"))
      .def("run", [](const F32DwconvParams& p, std::uintptr_t input, std::uintptr_t packed,
                     int64_t packed_numel, std::uintptr_t output, int num_threads) {
        // The pack is checked at every call: a module may hand in a new one (weight changed).
        f32_dwconv_check_pack(ptr<const float>(packed), packed_numel, p.cout(), p.KH, p.KW);
        py::gil_scoped_release nogil;
        f32_dwconv_run(p, ptr<const float>(input), ptr<const float>(packed), ptr<float>(output),
                       num_threads);
      });
  m.def("f32_dwconv_kernel_name",
        [](int64_t n, int64_t h, int64_t w, int64_t c, int64_t mult, int64_t kh, int64_t kw,
           int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pl, int64_t oh,
           int64_t ow, int act) {
          return f32_dwconv_kernel_name(
              make_params(n, h, w, c, mult, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, act));
        });
}

}  // namespace mk::bindings
