// fp32 depthwise microbenchmarks: every compiled kernel this CPU supports, on every MobileNetV2
// depthwise layer (bench/shapes/mobilenet_v2_dw.txt), MobileNetV3's two 16-channel 3x3
// layers and MobileNetV3-Large's 5x5 layers, one thread, with GFLOP/s and GB/s.
//   ./mk_bench --benchmark_filter=f32_dwconv --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <new>
#include <random>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/f32-dwconv/f32_dwconv_kernels.h"
#include "shapes.h"

namespace {

// 64-byte aligned like torch's CPU allocator: std::vector's 16-byte alignment splits every
// other 32-byte load across cache lines, which the kernels never see from torch tensors.
template <class T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  bool operator==(const Aligned64&) const { return true; }
  bool operator!=(const Aligned64&) const { return false; }
};
using Floats = std::vector<float, Aligned64<float>>;

void run(benchmark::State& state, mk::F32DwconvKernel k, std::vector<long> s) {
  const long h = s[0], w = s[1], c = s[2], ks = s[3], st = s[4], pad = ks / 2;
  mk::F32DwconvParams p{1, h, w, c, 1, ks, ks, st, st, 1, 1, pad, pad, 0, 0, mk::Activation::relu6};
  p.OH = (h + 2 * pad - ks) / st + 1;
  p.OW = (w + 2 * pad - ks) / st + 1;
  Floats in(h * w * c), wt(c * ks * ks), b(c), out(p.OH * p.OW * c);
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> d(-1, 1);
  for (auto* v : {&in, &wt, &b})
    for (float& x : *v) x = d(rng);
  Floats packed(mk::f32_dwconv_packed_size(c, ks, ks));
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
    // The 17 MobileNetV2 layers, plus MobileNetV3's 16-channel 3x3 layers (large: 112x112 s1;
    // small: 112x112 s2), where AVX-512 runs the channel-outer sweep.
    std::vector<std::vector<long>> shapes = mkbench::read_shapes("mobilenet_v2_dw.txt");
    shapes.push_back({112, 112, 16, 3, 1});
    shapes.push_back({112, 112, 16, 3, 2});
    // MobileNetV3-Large's 5x5 layers (padding 2): 56x56x72 s2, 28x28x120 s1, 14x14x672 s2,
    // 7x7x960 s1, and 28x28x72 s2 (the 72-channel layer at a 112x112 input).
    for (const std::vector<long>& s : {std::vector<long>{56, 56, 72, 5, 2}, {28, 28, 120, 5, 1}, {14, 14, 672, 5, 2},
                                       {7, 7, 960, 5, 1}, {28, 28, 72, 5, 2}})
      shapes.push_back(s);
    for (const auto& s : shapes) {
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
