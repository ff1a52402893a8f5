// Binding of the fused fp32 inverted residual with squeeze-excitation
// (ops/f32_se_inverted_residual_op.h). Pointers arrive as integers (tensor.data_ptr()); every
// call re-validates in C++ (std::invalid_argument -> ValueError) and releases the GIL.
#include <pybind11/stl.h>

#include <cstdint>

#include "bindings/bindings.h"
#include "ops/f32_se_inverted_residual_op.h"

namespace py = pybind11;

namespace mk::bindings {
namespace {

Activation act_of(int a) { return static_cast<Activation>(a); }

F32SEInvertedResidualParams se_params(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t chid,
                                      int64_t cout, int64_t csq, int64_t k, int64_t s, int64_t pt,
                                      int64_t pb, int64_t pl, int64_t pr, bool expand, int act_e,
                                      int act_d, int act_p, int act_se, int gate, bool residual,
                                      int64_t band_rows) {
  const F32SEInvertedResidualParams p{
      {n, h, w, cin, chid, cout, k, s, pt, pb, pl, pr, expand, act_of(act_e), act_of(act_d),
       act_of(act_p), residual, band_rows},
      csq, act_of(act_se), static_cast<SeGate>(gate)};
  f32_se_inverted_residual_validate(p);
  return p;
}

#define MK_SE_ARGS                                                                            \
  py::arg("n"), py::arg("h"), py::arg("w"), py::arg("cin"), py::arg("chid"), py::arg("cout"),  \
      py::arg("csq"), py::arg("k"), py::arg("s"), py::arg("pt"), py::arg("pb"), py::arg("pl"), \
      py::arg("pr"), py::arg("expand"), py::arg("act_expand"), py::arg("act_dw"),             \
      py::arg("act_project"), py::arg("act_se"), py::arg("gate"), py::arg("residual"),        \
      py::arg("band_rows")

}  // namespace

void register_f32_se_block(py::module_& m) {
  m.def(
      "f32_se_inverted_residual",
      [](std::uintptr_t x, std::uintptr_t expand_pack, int64_t expand_numel, std::uintptr_t dw_pack,
         int64_t dw_numel, std::uintptr_t project_pack, int64_t project_numel,
         std::uintptr_t fc1_pack, int64_t fc1_numel, std::uintptr_t fc2_pack, int64_t fc2_numel,
         std::uintptr_t out, int64_t n, int64_t h, int64_t w, int64_t cin, int64_t chid,
         int64_t cout, int64_t csq, int64_t k, int64_t s, int64_t pt, int64_t pb, int64_t pl,
         int64_t pr, bool expand, int act_e, int act_d, int act_p, int act_se, int gate,
         bool residual, int64_t band_rows, int num_threads) {
        const F32SEInvertedResidualParams p =
            se_params(n, h, w, cin, chid, cout, csq, k, s, pt, pb, pl, pr, expand, act_e, act_d,
                      act_p, act_se, gate, residual, band_rows);
        py::gil_scoped_release nogil;
        f32_se_inverted_residual_run(p, ptr<const float>(x), ptr<const float>(expand_pack),
                                     expand_numel, ptr<const float>(dw_pack), dw_numel,
                                     ptr<const float>(project_pack), project_numel,
                                     ptr<const float>(fc1_pack), fc1_numel,
                                     ptr<const float>(fc2_pack), fc2_numel, ptr<float>(out),
                                     num_threads);
      },
      py::arg("x"), py::arg("expand_pack"), py::arg("expand_numel"), py::arg("dw_pack"),
      py::arg("dw_numel"), py::arg("project_pack"), py::arg("project_numel"), py::arg("fc1_pack"),
      py::arg("fc1_numel"), py::arg("fc2_pack"), py::arg("fc2_numel"), py::arg("out"), MK_SE_ARGS,
      py::arg("num_threads"));
  m.def(
      "f32_se_inverted_residual_info",
      [](int64_t n, int64_t h, int64_t w, int64_t cin, int64_t chid, int64_t cout, int64_t csq,
         int64_t k, int64_t s, int64_t pt, int64_t pb, int64_t pl, int64_t pr, bool expand,
         int act_e, int act_d, int act_p, int act_se, int gate, bool residual,
         int64_t band_rows) {
        const F32SEInvertedResidualParams p =
            se_params(n, h, w, cin, chid, cout, csq, k, s, pt, pb, pl, pr, expand, act_e, act_d,
                      act_p, act_se, gate, residual, band_rows);
        py::dict d;
        d["kernel"] = f32_se_inverted_residual_kernel_name(p);
        d["buffer_bytes"] = f32_se_inverted_residual_buffer_bytes(p);
        return d;
      },
      MK_SE_ARGS, "Kernel names and the depthwise-output buffer bytes of a fused SE-block call");
}

}  // namespace mk::bindings
