// int8 pointwise GEMM microbenchmarks: every compiled kernel this CPU supports (plus the AVX2
// emulation of the VNNI tiling), on every distinct MobileNetV2 1x1 layer
// (bench/shapes/mobilenet_v2_pw.txt), one thread, GOP/s = 2*H*W*Cin*Cout per second. Then a
// grid of small M / K / N (q8_gemm_grid/..., named 1xMxK->N) for the AMX-vs-VNNI choice in
// ops/q8_gemm_op.cpp (tiny M: SE layers, fused-block chunks; tiny K: the first layers).
//   ./mk_bench --benchmark_filter=q8_gemm --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/q8-gemm/q8_gemm_kernels.h"
#include "ops/q8_gemm_op.h"
#include "shapes.h"

namespace {

void run(benchmark::State& state, mk::Q8GemmKernel k, std::vector<long> s) {
  const long M = s[0] * s[1], K = s[2], N = s[3];
  std::mt19937 rng(0);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> x(M * K), w(N * K), y(M * N);
  for (auto& v : x) v = uint8_t(byte(rng));
  for (auto& v : w) v = uint8_t(byte(rng));
  std::vector<int32_t> zp(N, 0), bias(N, 100);
  std::vector<float> scale(N, 0.01f);
  const mk::Q8GemmLayout l = mk::q8_gemm_layout(K, N);
  std::vector<uint8_t> packed(l.total);
  mk::q8_gemm_pack(w.data(), true, zp.data(), scale.data(), bias.data(), K, N, packed.data());
  const mk::Q8Quant q{0.05, 128, false, 0.5, 10, false, 0, 255};
  for (auto _ : state) {
    mk::q8_gemm_run_with(k.run, k.signed_x, packed.data(), l.total, x.data(), M, K, N, q, y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GOP/s"] = benchmark::Counter(2.0 * M * K * N, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::kIs1000);
}

int register_all() {
  std::vector<mk::Q8GemmKernel> kernels(std::begin(mk::kQ8GemmKernels), std::end(mk::kQ8GemmKernels));
#if defined(MK_X86)
  kernels.insert(kernels.end(), std::begin(mk::kQ8GemmEmulatedKernels), std::end(mk::kQ8GemmEmulatedKernels));
#endif
  auto add = [&](const char* prefix, const std::vector<long>& s) {
    for (const mk::Q8GemmKernel& k : kernels) {
      if (!mk::isa_supported(k.isa) || k.isa == mk::Isa::scalar) continue;
      const std::string name = std::string(prefix) + k.name + "/" + std::to_string(s[0]) + "x" +
                               std::to_string(s[1]) + "x" + std::to_string(s[2]) + "->" + std::to_string(s[3]);
      benchmark::RegisterBenchmark(name.c_str(), run, k, s);
    }
  };
  std::set<std::vector<long>> seen;
  for (const auto& s : mkbench::read_shapes("mobilenet_v2_pw.txt"))
    if (seen.insert(s).second) add("q8_gemm/", s);
  for (long M : {1, 4, 8, 14, 16, 32})
    for (long K : {16, 32, 64, 160, 576})
      for (long N : {16, 64, 576}) add("q8_gemm_grid/", {1, M, K, N});
  return 0;
}

const int registered = register_all();

}  // namespace
