// int8 MobileNetV3-Large's 14x14 / 7x7 layers (the ones whose Hardswish the quantized model
// applies as a table), through the op layer with the dispatched kernels, at 1 and 2 threads:
//   conv+lut   the conv, then the table kernel over its output (two calls, as before the fusion)
//   fused      the conv with the table in its epilogue (one call)
//   plain      the conv alone (no activation)
//   ./mk_bench --benchmark_filter=q8_v3 --benchmark_min_time=0.2
// CPU time is the process's (every thread): with OMP_WAIT_POLICY=passive (idle threads sleep
// instead of spinning) it is the work the call did, redundant per-thread preparation included,
// which stays meaningful when wall time only measures the neighbours on a shared machine.
// Built with -DMK_BENCH_OLD_API against a tree whose ops take no table, it registers only
// conv+lut and plain: the same binary source then A/Bs the threading of an older build.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/q8-lut/q8_lut_kernels.h"
#include "ops/q8_dwconv_op.h"
#include "ops/q8_gemm_op.h"

namespace {

enum class Mode { conv_lut, fused, plain };

mk::Q8LutFn lut_kernel() {
  mk::Q8LutFn fn = mk::q8_lut_scalar;
  for (const mk::Q8LutKernel& k : mk::kQ8LutKernels)
    if (mk::isa_supported(k.isa)) fn = k.run;  // the list runs from scalar up
  return fn;
}

std::vector<uint8_t> random_bytes(size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = uint8_t(byte(rng));
  return v;
}

void gemm(benchmark::State& state, long M, long K, long N, int nt, Mode mode) {
  std::mt19937 rng(0);
  const std::vector<uint8_t> x = random_bytes(M * K, rng), w = random_bytes(N * K, rng), table = random_bytes(256, rng);
  std::vector<uint8_t> y(M * N);
  std::vector<int32_t> zp(N, 0), bias(N, 100);
  std::vector<float> scale(N, 0.01f);
  const mk::Q8GemmLayout l = mk::q8_gemm_layout(K, N);
  std::vector<uint8_t> packed(l.total);
  mk::q8_gemm_pack(w.data(), true, zp.data(), scale.data(), bias.data(), K, N, packed.data());
  const mk::Q8Quant q{0.05, 128, false, 0.5, 10, false, 0, 255};
  const mk::Q8LutFn lut = lut_kernel();
  for (auto _ : state) {
#ifndef MK_BENCH_OLD_API
    if (mode == Mode::fused) {
      mk::q8_gemm_run(packed.data(), l.total, x.data(), M, K, N, q, y.data(), nt, table.data());
      continue;
    }
#endif
    mk::q8_gemm_run(packed.data(), l.total, x.data(), M, K, N, q, y.data(), nt);
    if (mode == Mode::conv_lut) lut(table.data(), y.data(), M * N);
    benchmark::DoNotOptimize(y.data());
  }
}

void dwconv(benchmark::State& state, long H, long C, long k, long s, int nt, Mode mode) {
  std::mt19937 rng(0);
  const long pad = k / 2, OH = (H + 2 * pad - k) / s + 1;
  const mk::Q8DwShape sh{1, H, H, C, 1, k, k, s, s, 1, 1, pad, pad, OH, OH};
  const std::vector<uint8_t> x = random_bytes(H * H * C, rng), w = random_bytes(C * k * k, rng),
                             table = random_bytes(256, rng);
  std::vector<uint8_t> y(OH * OH * C);
  std::vector<int32_t> zp(C, 0), bias(C, 100);
  std::vector<float> scale(C, 0.01f);
  const mk::Q8DwLayout l = mk::q8_dwconv_layout(C, k, k);
  std::vector<uint8_t> packed(l.total);
  mk::q8_dwconv_pack(w.data(), true, zp.data(), scale.data(), bias.data(), C, k, k, packed.data());
  const mk::Q8Quant q{0.05, 128, false, 0.5, 10, false, 0, 255};
  const mk::Q8LutFn lut = lut_kernel();
  for (auto _ : state) {
#ifndef MK_BENCH_OLD_API
    if (mode == Mode::fused) {
      mk::q8_dwconv_run(packed.data(), l.total, x.data(), sh, q, y.data(), nt, table.data());
      continue;
    }
#endif
    mk::q8_dwconv_run(packed.data(), l.total, x.data(), sh, q, y.data(), nt);
    if (mode == Mode::conv_lut) lut(table.data(), y.data(), OH * OH * C);
    benchmark::DoNotOptimize(y.data());
  }
}

int register_all() {
  const char* names[] = {"conv+lut", "fused", "plain"};
  std::vector<Mode> modes = {Mode::conv_lut, Mode::plain};
#ifndef MK_BENCH_OLD_API
  modes.insert(modes.begin() + 1, Mode::fused);
#endif
  // M, K, N of V3-Large's expand (Hardswish) and project 1x1 layers at 14x14 / 7x7 and the stem.
  const long gemms[][3] = {{12544, 27, 16}, {196, 80, 480}, {196, 112, 672}, {49, 160, 960}, {196, 480, 112},
                           {49, 960, 160}, {1, 480, 120}};
  // H, C, kernel, stride of its depthwise layers there.
  const long dws[][4] = {{14, 480, 3, 1}, {14, 672, 3, 1}, {14, 672, 5, 2}, {7, 960, 5, 1}, {28, 240, 3, 2}};
  for (int nt : {1, 2})
    for (Mode m : modes) {
      const std::string suffix = std::string("/") + names[int(m)] + "/" + std::to_string(nt) + "T";
      for (const auto& g : gemms)
        benchmark::RegisterBenchmark(("q8_v3/gemm/" + std::to_string(g[0]) + "x" + std::to_string(g[1]) + "->" +
                                      std::to_string(g[2]) + suffix).c_str(),
                                     gemm, g[0], g[1], g[2], nt, m)
            ->UseRealTime()
            ->MeasureProcessCPUTime();
      for (const auto& d : dws)
        benchmark::RegisterBenchmark(("q8_v3/dw/" + std::to_string(d[0]) + "x" + std::to_string(d[0]) + "x" +
                                      std::to_string(d[1]) + "k" + std::to_string(d[2]) + "s" + std::to_string(d[3]) +
                                      suffix).c_str(),
                                     dwconv, d[0], d[1], d[2], d[3], nt, m)
            ->UseRealTime()
            ->MeasureProcessCPUTime();
    }
  return 0;
}

const int registered = register_all();

}  // namespace
