// Bindings of the int8 families (pointwise GEMM, depthwise). Pointers arrive as integers
// (tensor.data_ptr()), already validated in Python; the op layer re-validates sizes, zero
// points and the pack header (std::invalid_argument -> ValueError) before touching data.
#include <cstdint>

#include "bindings/bindings.h"
#include "kernels/q8-dwconv/q8_dwconv.h"
#include "kernels/q8-gemm/q8_gemm.h"
#include "ops/q8_dwconv_op.h"
#include "ops/q8_gemm_op.h"

namespace py = pybind11;

namespace mk::bindings {
namespace {


Q8Quant quant(double xs, int32_t xz, bool x_signed, double ys, int32_t yz, bool y_signed, int32_t ymin,
              int32_t ymax) {
  Q8Quant q{xs, xz, x_signed, ys, yz, y_signed, ymin, ymax};
  q8_quant_validate(q);
  return q;
}

}  // namespace

void register_q8(py::module_& m) {
  m.def("q8_gemm_packed_size", [](int64_t K, int64_t N) { return q8_gemm_layout(K, N).total; });
  m.def("q8_dwconv_packed_size", [](int64_t C, int64_t kh, int64_t kw) { return q8_dwconv_layout(C, kh, kw).total; });
  m.def("q8_gemm_pack", [](std::uintptr_t w, bool w_signed, std::uintptr_t wzp, std::uintptr_t wscale,
                           std::uintptr_t bias, int64_t K, int64_t N, std::uintptr_t out) {
    py::gil_scoped_release nogil;
    q8_gemm_pack(ptr<const void>(w), w_signed, ptr<const int32_t>(wzp), ptr<const float>(wscale),
                 bias ? ptr<const int32_t>(bias) : nullptr, K, N, ptr<uint8_t>(out));
  });
  m.def("q8_dwconv_pack", [](std::uintptr_t w, bool w_signed, std::uintptr_t wzp, std::uintptr_t wscale,
                             std::uintptr_t bias, int64_t C, int64_t kh, int64_t kw, std::uintptr_t out) {
    py::gil_scoped_release nogil;
    q8_dwconv_pack(ptr<const void>(w), w_signed, ptr<const int32_t>(wzp), ptr<const float>(wscale),
                   bias ? ptr<const int32_t>(bias) : nullptr, C, kh, kw, ptr<uint8_t>(out));
  });
  // lut: address of a 256-byte activation table applied in the epilogue (0: none). Like every
  // pointer here it is not checked: callers pass a contiguous uint8 tensor of 256 elements.
  m.def(
      "q8_gemm",
      [](std::uintptr_t packed, int64_t packed_bytes, std::uintptr_t x, int64_t M, int64_t K, int64_t N, double xs,
         int32_t xz, bool x_signed, double ys, int32_t yz, bool y_signed, int32_t ymin, int32_t ymax, std::uintptr_t y,
         int num_threads, std::uintptr_t lut) {
        const Q8Quant q = quant(xs, xz, x_signed, ys, yz, y_signed, ymin, ymax);
        py::gil_scoped_release nogil;
        q8_gemm_run(ptr<const uint8_t>(packed), packed_bytes, ptr<const void>(x), M, K, N, q, ptr<void>(y),
                    num_threads, lut ? ptr<const uint8_t>(lut) : nullptr);
      },
      py::arg("packed"), py::arg("packed_bytes"), py::arg("x"), py::arg("M"), py::arg("K"), py::arg("N"),
      py::arg("x_scale"), py::arg("x_zp"), py::arg("x_signed"), py::arg("y_scale"), py::arg("y_zp"),
      py::arg("y_signed"), py::arg("y_min"), py::arg("y_max"), py::arg("y"), py::arg("num_threads"),
      py::arg("lut") = 0);
  m.def(
      "q8_dwconv",
      [](std::uintptr_t packed, int64_t packed_bytes, std::uintptr_t x, int64_t n, int64_t h, int64_t w, int64_t c,
         int64_t mult, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pl,
         int64_t oh, int64_t ow, double xs, int32_t xz, bool x_signed, double ys, int32_t yz, bool y_signed,
         int32_t ymin, int32_t ymax, std::uintptr_t y, int num_threads, std::uintptr_t lut) {
        const Q8Quant q = quant(xs, xz, x_signed, ys, yz, y_signed, ymin, ymax);
        const Q8DwShape s{n, h, w, c, mult, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow};
        q8_dwconv_validate(s);
        py::gil_scoped_release nogil;
        q8_dwconv_run(ptr<const uint8_t>(packed), packed_bytes, ptr<const void>(x), s, q, ptr<void>(y), num_threads,
                      lut ? ptr<const uint8_t>(lut) : nullptr);
      },
      py::arg("packed"), py::arg("packed_bytes"), py::arg("x"), py::arg("n"), py::arg("h"), py::arg("w"),
      py::arg("c"), py::arg("mult"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("dh"),
      py::arg("dw"), py::arg("pt"), py::arg("pl"), py::arg("oh"), py::arg("ow"), py::arg("x_scale"), py::arg("x_zp"),
      py::arg("x_signed"), py::arg("y_scale"), py::arg("y_zp"), py::arg("y_signed"), py::arg("y_min"),
      py::arg("y_max"), py::arg("y"), py::arg("num_threads"), py::arg("lut") = 0);
  m.def("q8_gemm_kernel_name", &q8_gemm_kernel_name, "int8 pointwise kernel of the active ISA level");
  m.def("q8_dwconv_kernel_name", &q8_dwconv_kernel_name, "int8 depthwise kernel of the active ISA level");
}

}  // namespace mk::bindings
