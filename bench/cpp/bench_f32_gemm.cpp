// fp32 1x1 GEMM and fused inverted-residual microbenchmarks, one thread:
//   f32_gemm/<tile>/<HxW Cin->Cout>/<act>   every MobileNetV2 1x1 layer (mobilenet_v2_pw.txt)
//   f32_ir/<isa>/<block>                    every MobileNetV2 block (mobilenet_v2_blocks.txt)
//   ./mk_bench --benchmark_filter=f32_gemm --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/f32-dwconv/f32_dwconv.h"
#include "kernels/f32-gemm/f32_gemm_kernels.h"
#include "ops/f32_inverted_residual_op.h"
#include "shapes.h"

namespace {

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<float> gemm_pack(int64_t k, int64_t n, unsigned seed) {
  const std::vector<float> w = random_floats(k * n, seed), b = random_floats(n, seed + 1);
  std::vector<float> packed(mk::f32_gemm_packed_size(k, n));
  mk::f32_gemm_pack(w.data(), b.data(), k, n, packed.data());
  return packed;
}

// 64-byte aligned, as torch allocates activations: with malloc's 16-byte alignment every
// 16-column panel row of C straddles two cache lines.
struct AlignedFloats {
  float* p;
  explicit AlignedFloats(const std::vector<float>& v)
      : p(static_cast<float*>(std::aligned_alloc(64, (v.size() * sizeof(float) + 63) / 64 * 64))) {
    std::copy(v.begin(), v.end(), p);
  }
  ~AlignedFloats() { std::free(p); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
};

void gemm(benchmark::State& state, mk::F32GemmKernel k, std::vector<long> s, mk::Activation act) {
  const int64_t m = s[0] * s[1], kk = s[2], n = s[3];
  const std::vector<float> packed = gemm_pack(kk, n, 1);
  const AlignedFloats a(random_floats(m * kk, 0)), c(std::vector<float>(m * n));
  const mk::F32GemmParams p{m, kk, n, kk, n, act, nullptr, 0};
  for (auto _ : state) {
    k.run(p, a.p, mk::f32_gemm_pack_data(packed.data()), c.p, 0, m, 0, n);
    benchmark::DoNotOptimize(c.p);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * kk * n, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

void block(benchmark::State& state, mk::Isa isa, std::vector<long> s) {
  const long h = s[0], w = s[1], cin = s[2], t = s[3], cout = s[4], st = s[5], chid = cin * t;
  mk::F32InvertedResidualParams p{1, h, w, cin, chid, cout, 3, st, 1, 1, 1, 1, t != 1,
                                  mk::Activation::relu6, mk::Activation::relu6, mk::Activation::none,
                                  st == 1 && cin == cout, 0};
  const std::vector<float> x = random_floats(h * w * cin, 0);
  const std::vector<float> epk = t != 1 ? gemm_pack(cin, chid, 1) : std::vector<float>(1);
  const std::vector<float> dw = random_floats(chid * 9, 3), db = random_floats(chid, 4);
  std::vector<float> dpk(mk::f32_dwconv_packed_size(chid, 3, 3));
  mk::f32_dwconv_pack(dw.data(), db.data(), chid, 3, 3, dpk.data());
  const std::vector<float> ppk = gemm_pack(chid, cout, 5);
  std::vector<float> out(p.OH() * p.OW() * cout);
  const std::string saved = mk::isa_name(mk::active_isa());
  mk::set_isa(mk::isa_name(isa));
  for (auto _ : state) {
    mk::f32_inverted_residual_run(p, x.data(), epk.data(), int64_t(epk.size()), dpk.data(), int64_t(dpk.size()),
                                  ppk.data(), int64_t(ppk.size()), out.data(), 1);
    benchmark::DoNotOptimize(out.data());
  }
  mk::set_isa(saved);
  const double macs = double(h) * w * (t != 1 ? cin * chid : 0) + double(p.OH()) * p.OW() * chid * (9 + cout);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * macs, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

int register_all() {
  for (const mk::F32GemmKernel& k : mk::kF32GemmKernels) {
    if (!mk::isa_supported(k.isa)) continue;
    for (const auto& s : mkbench::read_shapes("mobilenet_v2_pw.txt"))
      for (mk::Activation act : {mk::Activation::none, mk::Activation::relu6}) {
        const std::string name = std::string("f32_gemm/") + k.name + "/" + std::to_string(s[0]) + "x" +
                                 std::to_string(s[1]) + "x" + std::to_string(s[2]) + "->" + std::to_string(s[3]) +
                                 (act == mk::Activation::none ? "/none" : "/relu6");
        benchmark::RegisterBenchmark(name.c_str(), gemm, k, s, act);
      }
  }
  for (mk::Isa isa : {mk::Isa::avx2, mk::Isa::avx512, mk::Isa::neon}) {
    if (!mk::isa_supported(isa)) continue;
    int i = 0;
    for (const auto& s : mkbench::read_shapes("mobilenet_v2_blocks.txt")) {
      const std::string name = std::string("f32_ir/") + mk::isa_name(isa) + "/" + std::to_string(++i) + "/" +
                               std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" + std::to_string(s[2]) + "t" +
                               std::to_string(s[3]) + "->" + std::to_string(s[4]) + "s" + std::to_string(s[5]);
      benchmark::RegisterBenchmark(name.c_str(), block, isa, s);
    }
  }
  return 0;
}

const int registered = register_all();

}  // namespace
