// Binding of the fp32 layer chain (ops/f32_chain_op.h): built step by step from Python with
// pack pointers as integers (data_ptr()), validated in C++ at build time
// (std::invalid_argument -> ValueError), run with the GIL released.
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <tuple>

#include "bindings/bindings.h"
#include "ops/f32_chain_op.h"

namespace py = pybind11;

namespace mk::bindings {
namespace {

Activation act_of(int a) { return static_cast<Activation>(a); }

std::tuple<int64_t, int64_t, int64_t, int64_t> as_tuple(const F32ChainShape& s) {
  return {s.N, s.H, s.W, s.C};
}

}  // namespace

void register_f32_chain(py::module_& m) {
  py::class_<F32Chain>(m, "F32Chain",
                       "fp32 layers (fused blocks, 1x1, depthwise) run in one call on an NHWC "
                       "input of a fixed shape, with preplanned intermediate buffers")
      .def(py::init([](int64_t n, int64_t h, int64_t w, int64_t c) {
             return std::make_unique<F32Chain>(F32ChainShape{n, h, w, c});
           }),
           py::arg("n"), py::arg("h"), py::arg("w"), py::arg("c"))
      .def(
          "add_inverted_residual",
          [](F32Chain& ch, int64_t cin, int64_t chid, int64_t cout, int64_t k, int64_t s,
             int64_t pt, int64_t pb, int64_t pl, int64_t pr, bool expand, int act_e, int act_d,
             int act_p, bool residual, int64_t band_rows, std::uintptr_t expand_pack,
             int64_t expand_numel, std::uintptr_t dw_pack, int64_t dw_numel,
             std::uintptr_t project_pack, int64_t project_numel) {
            const F32InvertedResidualParams p{0, 0, 0, cin, chid, cout, k, s, pt, pb, pl, pr,
                                              expand, act_of(act_e), act_of(act_d), act_of(act_p),
                                              residual, band_rows};
            ch.add_inverted_residual(p, ptr<const float>(expand_pack), expand_numel,
                                     ptr<const float>(dw_pack), dw_numel,
                                     ptr<const float>(project_pack), project_numel);
          },
          py::arg("cin"), py::arg("chid"), py::arg("cout"), py::arg("k"), py::arg("s"),
          py::arg("pt"), py::arg("pb"), py::arg("pl"), py::arg("pr"), py::arg("expand"),
          py::arg("act_expand"), py::arg("act_dw"), py::arg("act_project"), py::arg("residual"),
          py::arg("band_rows"), py::arg("expand_pack"), py::arg("expand_numel"),
          py::arg("dw_pack"), py::arg("dw_numel"), py::arg("project_pack"),
          py::arg("project_numel"))
      .def(
          "add_se_inverted_residual",
          [](F32Chain& ch, int64_t cin, int64_t chid, int64_t cout, int64_t csq, int64_t k,
             int64_t s, int64_t pt, int64_t pb, int64_t pl, int64_t pr, bool expand, int act_e,
             int act_d, int act_p, int act_se, int gate, bool residual, int64_t band_rows,
             std::uintptr_t expand_pack, int64_t expand_numel, std::uintptr_t dw_pack,
             int64_t dw_numel, std::uintptr_t project_pack, int64_t project_numel,
             std::uintptr_t fc1_pack, int64_t fc1_numel, std::uintptr_t fc2_pack,
             int64_t fc2_numel) {
            const F32SEInvertedResidualParams p{
                {0, 0, 0, cin, chid, cout, k, s, pt, pb, pl, pr, expand, act_of(act_e),
                 act_of(act_d), act_of(act_p), residual, band_rows},
                csq, act_of(act_se), static_cast<SeGate>(gate)};
            ch.add_se_inverted_residual(p, ptr<const float>(expand_pack), expand_numel,
                                        ptr<const float>(dw_pack), dw_numel,
                                        ptr<const float>(project_pack), project_numel,
                                        ptr<const float>(fc1_pack), fc1_numel,
                                        ptr<const float>(fc2_pack), fc2_numel);
          },
          py::arg("cin"), py::arg("chid"), py::arg("cout"), py::arg("csq"), py::arg("k"),
          py::arg("s"), py::arg("pt"), py::arg("pb"), py::arg("pl"), py::arg("pr"),
          py::arg("expand"), py::arg("act_expand"), py::arg("act_dw"), py::arg("act_project"),
          py::arg("act_se"), py::arg("gate"), py::arg("residual"), py::arg("band_rows"),
          py::arg("expand_pack"), py::arg("expand_numel"), py::arg("dw_pack"),
          py::arg("dw_numel"), py::arg("project_pack"), py::arg("project_numel"),
          py::arg("fc1_pack"), py::arg("fc1_numel"), py::arg("fc2_pack"), py::arg("fc2_numel"))
      .def(
          "add_conv1x1",
          [](F32Chain& ch, int64_t cout, int act, std::uintptr_t pack, int64_t numel) {
            ch.add_conv1x1(cout, act_of(act), ptr<const float>(pack), numel);
          },
          py::arg("cout"), py::arg("act"), py::arg("pack"), py::arg("numel"))
      .def(
          "add_dwconv",
          [](F32Chain& ch, int64_t cout, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
             int64_t dh, int64_t dw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int act,
             std::uintptr_t pack, int64_t numel) {
            ch.add_dwconv(cout, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, act_of(act),
                          ptr<const float>(pack), numel);
          },
          py::arg("cout"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"),
          py::arg("dh"), py::arg("dw"), py::arg("pt"), py::arg("pb"), py::arg("pl"),
          py::arg("pr"), py::arg("act"), py::arg("pack"), py::arg("numel"))
      .def(
          "run",
          [](F32Chain& ch, std::uintptr_t x, std::uintptr_t out, int num_threads) {
            py::gil_scoped_release nogil;
            ch.run(ptr<const float>(x), ptr<float>(out), num_threads);
          },
          py::arg("x"), py::arg("out"), py::arg("num_threads"),
          "x: dense NHWC input_shape; out: dense NHWC output_shape")
      .def_property_readonly("input_shape", [](const F32Chain& ch) { return as_tuple(ch.input_shape()); })
      .def_property_readonly("output_shape",
                             [](const F32Chain& ch) { return as_tuple(ch.output_shape()); })
      .def_property_readonly("buffer_floats", &F32Chain::buffer_floats,
                             "floats in each of the two intermediate buffers")
      .def("__len__", &F32Chain::size)
      .def("describe", &F32Chain::describe, "one line per step with the kernels that run");
}

}  // namespace mk::bindings
