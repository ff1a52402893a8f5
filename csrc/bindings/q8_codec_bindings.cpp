// Bindings of the uint8 glue steps of a quantized network (ops/q8_codec_op.h). Pointers arrive
// as integers; sizes are validated in Python (quant/replay.py) before a plan calls these.
#include <cstdint>

#include "bindings/bindings.h"
#include "ops/q8_codec_op.h"

namespace py = pybind11;

namespace mk::bindings {

void register_q8_codec(py::module_& m) {
  m.def("q8_quantize_f32", [](std::uintptr_t x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t sN, int64_t sC,
                              int64_t sH, int64_t sW, double scale, int32_t zp, std::uintptr_t y, int nt) {
    py::gil_scoped_release nogil;
    q8_quantize_f32(ptr<const float>(x), N, C, H, W, sN, sC, sH, sW, scale, zp, ptr<uint8_t>(y), nt);
  }, py::arg("x"), py::arg("N"), py::arg("C"), py::arg("H"), py::arg("W"), py::arg("sN"), py::arg("sC"), py::arg("sH"),
     py::arg("sW"), py::arg("scale"), py::arg("zp"), py::arg("y"), py::arg("num_threads") = 1);
  m.def("q8_dequantize_f32", [](std::uintptr_t q, int64_t n, double scale, int32_t zp, std::uintptr_t y) {
    py::gil_scoped_release nogil;
    q8_dequantize_f32(ptr<const uint8_t>(q), n, scale, zp, ptr<float>(y));
  });
  m.def("q8_global_avgpool", [](std::uintptr_t x, int64_t N, int64_t HW, int64_t C, double scale, int32_t zp,
                                double y_scale, int32_t y_zp, std::uintptr_t y, int nt) {
    py::gil_scoped_release nogil;
    q8_global_avgpool(ptr<const uint8_t>(x), N, HW, C, scale, zp, y_scale, y_zp, ptr<uint8_t>(y), nt);
  }, py::arg("x"), py::arg("N"), py::arg("HW"), py::arg("C"), py::arg("scale"), py::arg("zp"), py::arg("y_scale"),
     py::arg("y_zp"), py::arg("y"), py::arg("num_threads") = 1);
  m.def("q8_add", [](std::uintptr_t a, double sa, int32_t za, std::uintptr_t b, double sb, int32_t zb, double so,
                     int32_t zo, std::uintptr_t out, int64_t n, bool a_signed, bool b_signed, bool out_signed) {
    py::gil_scoped_release nogil;
    q8_add(ptr<const uint8_t>(a), sa, za, ptr<const uint8_t>(b), sb, zb, so, zo, ptr<uint8_t>(out), n, a_signed,
           b_signed, out_signed);
  });
  m.def("q8_mul_channel_gate", [](std::uintptr_t x, int64_t N, int64_t HW, int64_t C, double s, int32_t z,
                                  std::uintptr_t g, double gs, int32_t gz, double ys, int32_t yz, std::uintptr_t out,
                                  int nt) {
    py::gil_scoped_release nogil;
    q8_mul_channel_gate(ptr<const uint8_t>(x), N, HW, C, s, z, ptr<const uint8_t>(g), gs, gz, ys, yz,
                        ptr<uint8_t>(out), nt);
  }, py::arg("x"), py::arg("N"), py::arg("HW"), py::arg("C"), py::arg("s"), py::arg("z"), py::arg("g"), py::arg("gs"),
     py::arg("gz"), py::arg("ys"), py::arg("yz"), py::arg("out"), py::arg("num_threads") = 1);
  m.def("q8_im2col_out_size", &q8_im2col_out_size);
  m.def("q8_im2col", [](std::uintptr_t x, int64_t N, int64_t H, int64_t W, int64_t C, int64_t kh, int64_t kw,
                        int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pb, int64_t pl,
                        int64_t pr, int pad_value, std::uintptr_t y, int nt) {
    if (pad_value < 0 || pad_value > 255) throw py::value_error("q8_im2col: pad_value must be a byte");
    py::gil_scoped_release nogil;
    q8_im2col(ptr<const uint8_t>(x), N, H, W, C, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr,
              static_cast<uint8_t>(pad_value), ptr<uint8_t>(y), nt);
  }, py::arg("x"), py::arg("N"), py::arg("H"), py::arg("W"), py::arg("C"), py::arg("kh"), py::arg("kw"), py::arg("sh"),
     py::arg("sw"), py::arg("dh"), py::arg("dw"), py::arg("pt"), py::arg("pb"), py::arg("pl"), py::arg("pr"),
     py::arg("pad_value"), py::arg("y"), py::arg("num_threads") = 1);
}

}  // namespace mk::bindings
