// Bindings of the fused int8 inverted-residual block (ops/q8_inverted_residual_op.h). Pointers
// arrive as integers (tensor.data_ptr()), validated in Python; the op re-validates shapes,
// quantization and every pack header (std::invalid_argument -> ValueError) before any read.
#include <pybind11/stl.h>

#include <cstdint>
#include <vector>

#include "bindings/bindings.h"
#include "ops/q8_inverted_residual_op.h"

namespace py = pybind11;

namespace mk::bindings {
namespace {

// geometry: n h w cin chid cout k s pt pb pl pr; quant: x_scale, e/d/p scales, out_scale;
// zps: x, e, d, p, out; clamps: e_min e_max d_min d_max p_min p_max; per stage (e, d, p) a
// 256-byte table address (0 = none: the validated tensor's data_ptr) and its output qparams.
Q8InvertedResidualParams params(const std::vector<int64_t>& g, bool expand, bool residual, int64_t band_rows,
                                bool x_signed, bool y_signed, const std::vector<double>& scales,
                                const std::vector<int64_t>& zps, const std::vector<int64_t>& clamps,
                                const std::vector<std::uintptr_t>& luts, const std::vector<double>& lut_scales,
                                const std::vector<int64_t>& lut_zps) {
  if (g.size() != 12 || scales.size() != 5 || zps.size() != 5 || clamps.size() != 6)
    throw std::invalid_argument("qinverted_residual: expected 12 geometry ints, 5 scales, 5 zero points, 6 clamps");
  if (luts.size() != 3 || lut_scales.size() != 3 || lut_zps.size() != 3)
    throw std::invalid_argument("qinverted_residual: expected 3 table addresses, 3 table scales, 3 table zero points");
  auto i32 = [](int64_t v) { return static_cast<int32_t>(v); };
  Q8InvertedResidualParams p{};
  p.N = g[0], p.H = g[1], p.W = g[2], p.Cin = g[3], p.Chid = g[4], p.Cout = g[5];
  p.K = g[6], p.S = g[7], p.PT = g[8], p.PB = g[9], p.PL = g[10], p.PR = g[11];
  p.expand = expand;
  p.residual = residual;
  p.band_rows = band_rows;
  p.x_scale = scales[0];
  p.x_zp = i32(zps[0]);
  p.x_signed = x_signed;
  p.y_signed = y_signed;
  p.e = {scales[1], i32(zps[1]), i32(clamps[0]), i32(clamps[1])};
  p.d = {scales[2], i32(zps[2]), i32(clamps[2]), i32(clamps[3])};
  p.p = {scales[3], i32(zps[3]), i32(clamps[4]), i32(clamps[5])};
  Q8StageQuant* st[3] = {&p.e, &p.d, &p.p};
  for (int i = 0; i < 3; ++i)
    if (luts[i]) *st[i] = {st[i]->scale, st[i]->zp, st[i]->min, st[i]->max, ptr<const uint8_t>(luts[i]),
                           lut_scales[i], i32(lut_zps[i])};
  p.out_scale = scales[4];
  p.out_zp = i32(zps[4]);
  q8_inverted_residual_validate(p);
  return p;
}

}  // namespace

void register_q8_block(py::module_& m) {
  // In place x[i] = table[x[i]] on the active ISA's table kernel (kernels/q8-lut): the uint8
  // lookup-table activations of mobilekernels.quant outside fused blocks. Pointers validated in
  // Python (a 256-byte table, n bytes of x).
  m.def(
      "q8_lut",
      [](std::uintptr_t table, std::uintptr_t x, int64_t n) {
        if (n < 0) throw std::invalid_argument("q8_lut: n must be >= 0");
        py::gil_scoped_release nogil;
        q8_lut_kernel()(ptr<const uint8_t>(table), ptr<uint8_t>(x), n);
      },
      py::arg("table"), py::arg("x"), py::arg("n"));
  m.def(
      "q8_inverted_residual",
      [](std::uintptr_t x, std::uintptr_t epk, int64_t e_bytes, std::uintptr_t dpk, int64_t d_bytes,
         std::uintptr_t ppk, int64_t p_bytes, std::uintptr_t out, const std::vector<int64_t>& geometry, bool expand,
         bool residual, int64_t band_rows, bool x_signed, bool y_signed, const std::vector<double>& scales,
         const std::vector<int64_t>& zps, const std::vector<int64_t>& clamps, const std::vector<std::uintptr_t>& luts,
         const std::vector<double>& lut_scales, const std::vector<int64_t>& lut_zps, int num_threads) {
        const Q8InvertedResidualParams p = params(geometry, expand, residual, band_rows, x_signed, y_signed, scales,
                                                  zps, clamps, luts, lut_scales, lut_zps);
        py::gil_scoped_release nogil;
        q8_inverted_residual_run(p, ptr<const void>(x), expand ? ptr<const uint8_t>(epk) : nullptr,
                                 expand ? e_bytes : 0, ptr<const uint8_t>(dpk), d_bytes, ptr<const uint8_t>(ppk),
                                 p_bytes, ptr<void>(out), num_threads);
      },
      py::arg("x"), py::arg("expand_pack"), py::arg("expand_bytes"), py::arg("dw_pack"), py::arg("dw_bytes"),
      py::arg("project_pack"), py::arg("project_bytes"), py::arg("out"), py::arg("geometry"), py::arg("expand"),
      py::arg("residual"), py::arg("band_rows"), py::arg("x_signed"), py::arg("y_signed"), py::arg("scales"),
      py::arg("zero_points"), py::arg("clamps"), py::arg("luts"), py::arg("lut_scales"), py::arg("lut_zero_points"),
      py::arg("num_threads"));
  m.def(
      "q8_inverted_residual_info",
      [](const std::vector<int64_t>& geometry, bool expand, bool residual, int64_t band_rows, bool x_signed,
         bool y_signed, const std::vector<double>& scales, const std::vector<int64_t>& zps,
         const std::vector<int64_t>& clamps, const std::vector<std::uintptr_t>& luts,
         const std::vector<double>& lut_scales, const std::vector<int64_t>& lut_zps, bool row_sums, int num_threads) {
        const Q8InvertedResidualParams p = params(geometry, expand, residual, band_rows, x_signed, y_signed, scales,
                                                  zps, clamps, luts, lut_scales, lut_zps);
        py::dict d;
        d["kernel"] = q8_inverted_residual_kernel_name(p, row_sums);
        d["band_rows"] = q8_inverted_residual_band_rows(p, row_sums);
        d["chunk_cols"] = q8_inverted_residual_chunk_cols(p, row_sums);
        d["group_images"] = q8_inverted_residual_group_images(p, row_sums, num_threads);
        d["scratch_bytes_per_thread"] = q8_inverted_residual_scratch_bytes(p, row_sums, num_threads);
        d["scratch_bytes_shared"] = q8_inverted_residual_shared_bytes(p, num_threads);
        d["threads"] = q8_inverted_residual_threads(p, num_threads);
        d["expanded_bytes"] = p.N * p.H * p.W * p.Chid;
        return d;
      },
      py::arg("geometry"), py::arg("expand"), py::arg("residual"), py::arg("band_rows"), py::arg("x_signed"),
      py::arg("y_signed"), py::arg("scales"), py::arg("zero_points"), py::arg("clamps"), py::arg("luts"),
      py::arg("lut_scales"), py::arg("lut_zero_points"), py::arg("row_sums"), py::arg("num_threads"));
}

}  // namespace mk::bindings
