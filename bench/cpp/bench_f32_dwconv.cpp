// fp32 depthwise microbenchmarks: every compiled kernel this CPU supports, on every MobileNetV2
// depthwise layer (bench/shapes/mobilenet_v2_dw.txt), one thread, with GFLOP/s and GB/s.
//   ./mk_bench --benchmark_filter=f32_dwconv --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/f32-dwconv/f32_dwconv_kernels.h"
#include "shapes.h"

namespace {

void run(benchmark::State& state, mk::F32DwconvKernel k, std::vector<long> s) {
  const long h = s[0], w = s[1], c = s[2], ks = s[3], st = s[4], pad = ks / 2;
  mk::F32DwconvParams p{1, h, w, c, 1, ks, ks, st, st, 1, 1, pad, pad, 0, 0, mk::Activation::relu6};
  p.OH = (h + 2 * pad - ks) / st + 1;
  p.OW = (w + 2 * pad - ks) / st + 1;
  std::vector<float> in(h * w * c), wt(c * ks * ks), b(c), out(p.OH * p.OW * c);
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> d(-1, 1);
  for (auto* v : {&in, &wt, &b})
    for (float& x : *v) x = d(rng);
  std::vector<float> packed(mk::f32_dwconv_packed_size(c, ks, ks));
  mk::f32_dwconv_pack(wt.data(), b.data(), c, ks, ks, packed.data());
  const float* data = mk::f32_dwconv_pack_data(packed.data());
  for (auto _ : state) {
    k.run(p, in.data(), data, out.data(), 0, p.OH, 0, c);
    benchmark::DoNotOptimize(out.data());
  }
  const double flops = 2.0 * p.OH * p.OW * c * ks * ks;
  const double bytes = 4.0 * (in.size() + out.size() + packed.size());
  state.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

int register_all() {
  for (const mk::F32DwconvKernel& k : mk::kF32DwconvKernels) {
    if (!mk::isa_supported(k.isa)) continue;
    for (const auto& s : mkbench::read_shapes("mobilenet_v2_dw.txt")) {
      const std::string name = std::string("f32_dwconv/") + mk::isa_name(k.isa) + "/" + std::to_string(s[0]) + "x" +
                               std::to_string(s[1]) + "x" + std::to_string(s[2]) + "/k" + std::to_string(s[3]) +
                               "s" + std::to_string(s[4]);
      benchmark::RegisterBenchmark(name.c_str(), run, k, s);
    }
  }
  return 0;
}

const int registered = register_all();

}  // namespace
