// Bindings of the fp32 pointwise (1x1 conv / GEMM) family and the fused inverted-residual
// block. Pointers arrive as integers (tensor.data_ptr()); every call re-validates in C++
// (std::invalid_argument -> ValueError) and releases the GIL around the kernels.
#include <cstdint>

#include "bindings/bindings.h"
#include "ops/f32_conv1x1_op.h"
#include "ops/f32_inverted_residual_op.h"

namespace py = pybind11;

namespace mk::bindings {
namespace {


Activation act_of(int a) { return static_cast<Activation>(a); }

F32InvertedResidualParams ir_params(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t chid,
                                    int64_t cout, int64_t k, int64_t s, int64_t pt, int64_t pb,
                                    int64_t pl, int64_t pr, bool expand, int act_e, int act_d,
                                    int act_p, bool residual, int64_t band_rows) {
  F32InvertedResidualParams p{n, h, w, cin, chid, cout, k, s, pt, pb, pl, pr, expand,
                              act_of(act_e), act_of(act_d), act_of(act_p), residual, band_rows};
  f32_inverted_residual_validate(p);
  return p;
}

#define MK_IR_ARGS                                                                         \
  py::arg("n"), py::arg("h"), py::arg("w"), py::arg("cin"), py::arg("chid"), py::arg("cout"), \
      py::arg("k"), py::arg("s"), py::arg("pt"), py::arg("pb"), py::arg("pl"), py::arg("pr"),  \
      py::arg("expand"), py::arg("act_expand"), py::arg("act_dw"), py::arg("act_project"),   \
      py::arg("residual"), py::arg("band_rows")

}  // namespace

void register_f32_pw(py::module_& m) {
  m.def("f32_gemm_packed_size", &f32_gemm_packed_size, py::arg("k"), py::arg("n"));
  m.def(
      "f32_gemm_pack",
      [](std::uintptr_t weight, std::uintptr_t bias, int64_t k, int64_t n, std::uintptr_t packed) {
        py::gil_scoped_release nogil;
        f32_gemm_pack(ptr<const float>(weight), bias ? ptr<const float>(bias) : nullptr, k, n,
                      ptr<float>(packed));
      },
      py::arg("weight"), py::arg("bias"), py::arg("k"), py::arg("n"), py::arg("packed"));
  m.def(
      "f32_conv1x1",
      [](std::uintptr_t input, std::uintptr_t packed, int64_t packed_numel, std::uintptr_t output,
         int64_t m, int64_t k, int64_t n, int act, int num_threads) {
        const F32GemmParams p{m, k, n, k, n, act_of(act), nullptr, 0};
        f32_gemm_validate(p);
        py::gil_scoped_release nogil;
        f32_conv1x1_run(p, ptr<const float>(input), ptr<const float>(packed), packed_numel,
                        ptr<float>(output), num_threads);
      },
      py::arg("input"), py::arg("packed"), py::arg("packed_numel"), py::arg("output"), py::arg("m"),
      py::arg("k"), py::arg("n"), py::arg("act"), py::arg("num_threads"));
  m.def("f32_conv1x1_kernel_name", &f32_conv1x1_kernel_name);

  m.def(
      "f32_inverted_residual",
      [](std::uintptr_t x, std::uintptr_t expand_pack, int64_t expand_numel, std::uintptr_t dw_pack,
         int64_t dw_numel, std::uintptr_t project_pack, int64_t project_numel, std::uintptr_t out,
         int64_t n, int64_t h, int64_t w, int64_t cin, int64_t chid, int64_t cout, int64_t k,
         int64_t s, int64_t pt, int64_t pb, int64_t pl, int64_t pr, bool expand, int act_e,
         int act_d, int act_p, bool residual, int64_t band_rows, int num_threads) {
        const F32InvertedResidualParams p =
            ir_params(n, h, w, cin, chid, cout, k, s, pt, pb, pl, pr, expand, act_e, act_d, act_p,
                      residual, band_rows);
        py::gil_scoped_release nogil;
        f32_inverted_residual_run(p, ptr<const float>(x), ptr<const float>(expand_pack), expand_numel,
                                  ptr<const float>(dw_pack), dw_numel,
                                  ptr<const float>(project_pack), project_numel, ptr<float>(out),
                                  num_threads);
      },
      py::arg("x"), py::arg("expand_pack"), py::arg("expand_numel"), py::arg("dw_pack"),
      py::arg("dw_numel"), py::arg("project_pack"), py::arg("project_numel"), py::arg("out"),
      MK_IR_ARGS, py::arg("num_threads"));
  m.def(
      "f32_inverted_residual_info",
      [](int64_t n, int64_t h, int64_t w, int64_t cin, int64_t chid, int64_t cout, int64_t k,
         int64_t s, int64_t pt, int64_t pb, int64_t pl, int64_t pr, bool expand, int act_e,
         int act_d, int act_p, bool residual, int64_t band_rows, int num_threads) {
        const F32InvertedResidualParams p =
            ir_params(n, h, w, cin, chid, cout, k, s, pt, pb, pl, pr, expand, act_e, act_d, act_p,
                      residual, band_rows);
        py::dict d;
        d["kernel"] = f32_inverted_residual_kernel_name(p);
        d["band_rows"] = f32_inverted_residual_band_rows(p);
        d["channel_tile"] = f32_inverted_residual_channel_tile(p);
        d["scratch_bytes_per_thread"] = f32_inverted_residual_scratch_bytes(p);
        d["threads"] = f32_inverted_residual_threads(p, num_threads);
        return d;
      },
      MK_IR_ARGS, py::arg("num_threads"),
      "Kernel names, band height, channel tile, per-thread scratch bytes and busy threads of a fused call");
}

}  // namespace mk::bindings
