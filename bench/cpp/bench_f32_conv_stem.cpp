// fp32 stem convolution microbenchmarks, one thread, every kernel in the list:
//   f32_conv_stem/<kernel>/<HxW Cin->Cout>/<nchw|nhwc>   MobileNetV2 (32) and V3 (16) stems,
//   3x3 stride 2 padding 1 + ReLU6, input read in place in either layout.
//   ./mk_bench --benchmark_filter=f32_conv_stem --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/f32-conv/f32_conv_kernels.h"

namespace {

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// 64-byte aligned, as torch allocates tensors.
float* aligned_copy(const std::vector<float>& v) {
  float* p = static_cast<float*>(std::aligned_alloc(64, (v.size() * sizeof(float) + 63) / 64 * 64));
  std::copy(v.begin(), v.end(), p);
  return p;
}

void stem(benchmark::State& state, mk::F32ConvKernel k, long hw, long cin, long cout, bool nhwc) {
  const mk::F32ConvParams p{1, cin, hw, hw, cout, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1,
                            cin * hw * hw, nhwc ? 1 : hw * hw, nhwc ? hw * cin : hw, nhwc ? cin : 1,
                            mk::Activation::relu6};
  const std::vector<float> w = random_floats(cout * cin * 9, 1), b = random_floats(cout, 2);
  std::vector<float> packed(mk::f32_conv_packed_size(cin, cout, 3, 3));
  mk::f32_conv_pack(w.data(), b.data(), cin, cout, 3, 3, packed.data());
  float* x = aligned_copy(random_floats(cin * hw * hw, 0));
  float* y = aligned_copy(std::vector<float>(p.oh() * p.ow() * cout));
  for (auto _ : state) {
    k.run(p, x, mk::f32_conv_pack_data(packed.data()), y, 0, p.oh());
    benchmark::DoNotOptimize(y);
  }
  std::free(x);
  std::free(y);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * p.oh() * p.ow() * cout * cin * 9,
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

int register_all() {
  for (const mk::F32ConvKernel& k : mk::kF32ConvKernels) {
    if (!mk::isa_supported(k.isa)) continue;
    for (long cout : {32L, 16L})
      for (bool nhwc : {false, true}) {
        const std::string name = std::string("f32_conv_stem/") + k.name + "/224x224x3->" + std::to_string(cout) +
                                 (nhwc ? "/nhwc" : "/nchw");
        benchmark::RegisterBenchmark(name.c_str(), stem, k, 224L, 3L, cout, nhwc);
      }
  }
  return 0;
}

const int registered = register_all();

}  // namespace
