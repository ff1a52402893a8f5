// The extension module mobilekernels._C: dispatch control plus one registration per family.
// No libtorch here: tensors cross as data_ptr() integers, validated in Python first and
// re-validated in C++ (std::invalid_argument -> ValueError).
#include <pybind11/stl.h>

#include "bindings/bindings.h"
#include "dispatch/core_probe.h"
#include "dispatch/cpu_features.h"
#include "dispatch/isa.h"
#include "dispatch/stream_probe.h"

namespace py = pybind11;

namespace mk::bindings {

void register_dispatch(py::module_& m) {
  m.def("cpu_features", &cpu_features_string, "CPU features this machine reports");
  m.def("compiled_isas", [] {
    std::vector<std::string> out;
    for (int i = 0; i < static_cast<int>(Isa::count); ++i)
      if (isa_compiled(static_cast<Isa>(i))) out.emplace_back(isa_name(static_cast<Isa>(i)));
    return out;
  });
  m.def("supported_isas", [] {
    std::vector<std::string> out;
    for (Isa i : supported_isas()) out.emplace_back(isa_name(i));
    return out;
  });
  m.def("best_isa", [] { return std::string(isa_name(best_isa())); });
  m.def("get_isa", [] { return std::string(isa_name(active_isa())); },
        "Active ISA level (first call reads MOBILEKERNELS_ISA)");
  m.def("set_isa", &set_isa, py::arg("name"), "Force an ISA level by name ('auto' = best)");
  m.def("core_probe", [](int threads, double seconds) {
    py::gil_scoped_release nogil;
    return core_probe_gflops(threads, seconds);
  }, py::arg("threads"), py::arg("seconds") = 0.2,
        "Per-thread FMA GFLOP/s with all threads running at once (a benchmark's contention check)");
  m.def("stream_probe", [](std::uintptr_t in, int64_t in_n, std::uintptr_t out, int64_t out_n, int threads) {
    py::gil_scoped_release nogil;
    stream_probe(reinterpret_cast<const float*>(in), in_n, reinterpret_cast<float*>(out), out_n, threads);
  }, py::arg("in_ptr"), py::arg("in_n"), py::arg("out_ptr"), py::arg("out_n"), py::arg("threads"),
        "One streaming pass reading in_n floats and writing out_n floats (a layer's memory floor; "
        "pointers to float32 buffers of those sizes, checked by the caller)");
}

}  // namespace mk::bindings

PYBIND11_MODULE(_C, m) {
  m.doc() = "mobilekernels C++ core (torch-free)";
  mk::bindings::register_dispatch(m);
  mk::bindings::register_f32_dwconv(m);
  mk::bindings::register_f32_pw(m);
  mk::bindings::register_q8(m);
  mk::bindings::register_q8_block(m);
  mk::bindings::register_f32_chain(m);
  mk::bindings::register_f32_se_block(m);
  mk::bindings::register_q8_codec(m);
  mk::bindings::register_f32_conv_stem(m);
}
