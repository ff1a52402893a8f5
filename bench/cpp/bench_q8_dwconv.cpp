// int8 depthwise microbenchmarks against the fp32 depthwise kernel of the same ISA level, on
// every distinct MobileNetV2 depthwise layer (bench/shapes/mobilenet_v2_dw.txt), one thread,
// bias + ReLU6 (fp32) / full-range clamp (int8), through each family's op layer.
//   ./mk_bench --benchmark_filter=dwconv_pair --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/f32-dwconv/f32_dwconv.h"
#include "kernels/q8-dwconv/q8_dwconv_kernels.h"
#include "ops/f32_dwconv_op.h"
#include "ops/q8_dwconv_op.h"
#include "shapes.h"

namespace {

void run_q8(benchmark::State& state, mk::Q8DwconvKernel k, std::vector<long> s) {
  const long h = s[0], w = s[1], c = s[2], ks = s[3], st = s[4], pad = ks / 2;
  const mk::Q8DwShape sh{1, h, w, c, 1, ks, ks, st, st, 1, 1, pad, pad, (h + 2 * pad - ks) / st + 1,
                         (w + 2 * pad - ks) / st + 1};
  std::mt19937 rng(0);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> x(h * w * c), wt(c * ks * ks), y(sh.OH * sh.OW * c);
  for (auto& v : x) v = uint8_t(byte(rng));
  for (auto& v : wt) v = uint8_t(byte(rng));
  std::vector<int32_t> zp(c, 0), b(c, 10);
  std::vector<float> sc(c, 0.01f);
  const mk::Q8DwLayout l = mk::q8_dwconv_layout(c, ks, ks);
  std::vector<uint8_t> packed(l.total);
  mk::q8_dwconv_pack(wt.data(), true, zp.data(), sc.data(), b.data(), c, ks, ks, packed.data());
  const mk::Q8Quant q{0.05, 128, false, 0.5, 10, false, 0, 255};
  for (auto _ : state) {
    mk::q8_dwconv_run_with(k.run, packed.data(), l.total, x.data(), sh, q, y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GOP/s"] = benchmark::Counter(2.0 * sh.OH * sh.OW * c * ks * ks,
                                               benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void run_f32(benchmark::State& state, std::vector<long> s) {
  const long h = s[0], w = s[1], c = s[2], ks = s[3], st = s[4], pad = ks / 2;
  mk::F32DwconvParams p{1, h, w, c, 1, ks, ks, st, st, 1, 1, pad, pad, 0, 0, mk::Activation::relu6};
  p.OH = (h + 2 * pad - ks) / st + 1;
  p.OW = (w + 2 * pad - ks) / st + 1;
  std::vector<float> x(h * w * c, 0.5f), wt(c * ks * ks, 0.1f), b(c, 0.f), y(p.OH * p.OW * c);
  std::vector<float> packed(mk::f32_dwconv_packed_size(c, ks, ks));
  mk::f32_dwconv_pack(wt.data(), b.data(), c, ks, ks, packed.data());
  for (auto _ : state) {
    mk::f32_dwconv_run(p, x.data(), packed.data(), y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GOP/s"] = benchmark::Counter(2.0 * p.OH * p.OW * c * ks * ks,
                                               benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

int register_all() {
  std::set<std::vector<long>> seen;
  for (const auto& s : mkbench::read_shapes("mobilenet_v2_dw.txt")) {
    if (!seen.insert(s).second) continue;
    const std::string shape = std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" + std::to_string(s[2]) +
                              "/k" + std::to_string(s[3]) + "s" + std::to_string(s[4]);
    for (const mk::Q8DwconvKernel& k : mk::kQ8DwconvKernels) {
      if (!mk::isa_supported(k.isa) || k.isa == mk::Isa::scalar) continue;
      benchmark::RegisterBenchmark(("dwconv_pair/" + shape + "/q8/" + k.name).c_str(), run_q8, k, s);
    }
    benchmark::RegisterBenchmark(("dwconv_pair/" + shape + "/f32/active").c_str(), run_f32, s);
  }
  return 0;
}

const int registered = register_all();

}  // namespace
