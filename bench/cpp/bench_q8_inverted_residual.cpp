// The fused int8 inverted-residual block against its own kernels run standalone on the whole
// tensors, per MobileNetV2 block (bench/shapes/mobilenet_v2_blocks.txt, batch 1, one thread,
// active ISA level): where fused costs more than expand + dw + project, that is fusion overhead
// (per-band setup, halo copies, small-band GEMMs).
//   q8_block/<i>/fused            the whole block (residual add included where the block has one)
//   q8_block/<i>/fused_no_add     the same without the residual add (compare with the kernels)
//   q8_block/<i>/kernels          q8_gemm expand -> q8_dwconv -> q8_gemm project, one call each
//   q8_block/<i>/fused_2t         the whole block on 2 threads (wall time; run on 2 quiet cores,
//                                 e.g. taskset -c 0,1; cpu_time there is both threads' sum)
//   q8_block/<i>/fused_2t_cpu     the same timed as the busier thread's CPU time per call (the
//                                 critical path without the waits); run with
//                                 OMP_WAIT_POLICY=passive so that waiting threads sleep instead
//                                 of spinning. For a loaded machine, where wall time at 2 threads
//                                 mostly measures the other processes.
//   q8_block_b32/<i>/fused        batch 32, one thread, automatic images per work item
//   q8_block_b32/<i>/fused_g<k>   the same with k images per item forced (g1: one image per item)
//   q8_block_b32/<i>/kernels      the three kernels over the whole batch
//   ./mk_bench --benchmark_filter=q8_block --benchmark_min_time=0.2
// The 1-thread entries are timed in process CPU time, which other work on a shared machine
// disturbs less than wall time.
#include <benchmark/benchmark.h>
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ops/q8_dwconv_op.h"
#include "ops/q8_gemm_op.h"
#include "ops/q8_inverted_residual_op.h"
#include "shapes.h"

namespace {

std::vector<uint8_t> pack_gemm(std::mt19937& rng, int64_t K, int64_t N, double in_scale) {
  std::uniform_int_distribution<int> byte(0, 255), bias(-2000, 2000);
  std::vector<uint8_t> w(K * N);
  for (auto& v : w) v = uint8_t(byte(rng));
  std::vector<int32_t> z(N, 0), b(N);
  std::vector<float> s(N);
  for (int64_t i = 0; i < N; ++i) {
    b[i] = bias(rng);
    s[i] = float(4.0 / (in_scale * 74 * 74 * std::sqrt(double(K))));  // outputs spread over the range
  }
  std::vector<uint8_t> packed(mk::q8_gemm_layout(K, N).total);
  mk::q8_gemm_pack(w.data(), true, z.data(), s.data(), b.data(), K, N, packed.data());
  return packed;
}

std::vector<uint8_t> pack_dw(std::mt19937& rng, int64_t C, int64_t K, double in_scale) {
  std::uniform_int_distribution<int> byte(0, 255), bias(-2000, 2000);
  std::vector<uint8_t> w(C * K * K);
  for (auto& v : w) v = uint8_t(byte(rng));
  std::vector<int32_t> z(C, 0), b(C);
  std::vector<float> s(C);
  for (int64_t i = 0; i < C; ++i) {
    b[i] = bias(rng);
    s[i] = float(4.0 / (in_scale * 74 * 74 * K));
  }
  std::vector<uint8_t> packed(mk::q8_dwconv_layout(C, K, K).total);
  mk::q8_dwconv_pack(w.data(), true, z.data(), s.data(), b.data(), C, K, K, packed.data());
  return packed;
}

mk::Q8StageQuant relu6_stage(double scale, int32_t zp) {
  return {scale, zp, zp, std::min<int32_t>(255, zp + static_cast<int32_t>(std::nearbyint(6.0 / scale)))};
}

// One V2 block: uint8 activations, int8 weights, relu6 clamps (as bench/bench_blocks.py --dtype int8).
struct Block {
  mk::Q8InvertedResidualParams p{};
  std::vector<uint8_t> x, pe, pd, pp, hid, dwo, y;

  explicit Block(const std::vector<long>& s, long n = 1) {
    const long h = s[0], w = s[1], cin = s[2], t = s[3], cout = s[4], st = s[5];
    std::mt19937 rng(0);
    p.N = n, p.H = h, p.W = w, p.Cin = cin, p.Chid = cin * t, p.Cout = cout, p.K = 3, p.S = st;
    p.PT = p.PB = p.PL = p.PR = 1;
    p.expand = t != 1;
    p.residual = st == 1 && cin == cout;
    p.x_scale = 0.03, p.x_zp = 110;
    p.e = relu6_stage(0.047, 90);
    p.d = relu6_stage(0.047, 95);
    p.p = {0.05, 128, 0, 255};
    p.out_scale = 0.06, p.out_zp = 125;
    std::uniform_int_distribution<int> byte(0, 255);
    x.resize(n * h * w * cin);
    for (auto& v : x) v = uint8_t(byte(rng));
    if (p.expand) pe = pack_gemm(rng, cin, p.Chid, p.x_scale);
    pd = pack_dw(rng, p.Chid, 3, p.expand ? p.e.scale : p.x_scale);
    pp = pack_gemm(rng, p.Chid, cout, p.d.scale);
    hid.resize(n * h * w * p.Chid);
    dwo.resize(n * p.OH() * p.OW() * p.Chid);
    y.resize(n * p.OH() * p.OW() * cout);
  }

  void fused(const mk::Q8InvertedResidualParams& q, int threads = 1) {
    mk::q8_inverted_residual_run(q, x.data(), pe.data(), pe.size(), pd.data(), pd.size(), pp.data(), pp.size(),
                                 y.data(), threads);
  }

  void kernels() {
    const uint8_t* dw_in = x.data();
    mk::Q8Quant qd{p.x_scale, p.x_zp, false, p.d.scale, p.d.zp, false, p.d.min, p.d.max};
    if (p.expand) {
      mk::q8_gemm_run(pe.data(), pe.size(), x.data(), p.N * p.H * p.W, p.Cin, p.Chid,
                      {p.x_scale, p.x_zp, false, p.e.scale, p.e.zp, false, p.e.min, p.e.max}, hid.data(), 1);
      dw_in = hid.data();
      qd.x_scale = p.e.scale, qd.x_zp = p.e.zp;
    }
    const mk::Q8DwShape ds{p.N, p.H, p.W, p.Chid, 1, 3, 3, p.S, p.S, 1, 1, 1, 1, p.OH(), p.OW()};
    mk::q8_dwconv_run(pd.data(), pd.size(), dw_in, ds, qd, dwo.data(), 1);
    mk::q8_gemm_run(pp.data(), pp.size(), dwo.data(), p.N * p.OH() * p.OW(), p.Chid, p.Cout,
                    {p.d.scale, p.d.zp, false, p.p.scale, p.p.zp, false, p.p.min, p.p.max}, y.data(), 1);
  }
};

double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// The busier thread's CPU time of one 2-thread call: each thread of the (reused) OpenMP team
// reads its own CPU clock in a parallel region before and after the call.
void run_thread_cpu(benchmark::State& state, std::shared_ptr<Block> b) {
  for (auto _ : state) {
    double t0[2] = {0, 0}, t1[2] = {0, 0};
#pragma omp parallel num_threads(2)
    t0[omp_get_thread_num() & 1] = thread_cpu_seconds();
    b->fused(b->p, 2);
#pragma omp parallel num_threads(2)
    t1[omp_get_thread_num() & 1] = thread_cpu_seconds();
    state.SetIterationTime(std::max(t1[0] - t0[0], t1[1] - t0[1]));
    benchmark::DoNotOptimize(b->y.data());
  }
}

void run(benchmark::State& state, std::shared_ptr<Block> b, int mode) {
  mk::Q8InvertedResidualParams q = b->p;
  if (mode == 1) q.residual = false;
  for (auto _ : state) {
    if (mode == 2) b->kernels();
    else b->fused(q, mode == 3 ? 2 : 1);
    benchmark::DoNotOptimize(b->y.data());
  }
  state.counters["band"] = static_cast<double>(mk::q8_inverted_residual_band_rows(b->p));
}

void run_group(benchmark::State& state, std::shared_ptr<Block> b, int group) {
  mk::Q8InvertedResidualParams q = b->p;
  q.group_images = group;
  for (auto _ : state) {
    b->fused(q, 1);
    benchmark::DoNotOptimize(b->y.data());
  }
  state.counters["images"] = static_cast<double>(mk::q8_inverted_residual_group_images(q, false, 1));
}

int register_all() {
  int i = 0;
  for (const auto& s : mkbench::read_shapes("mobilenet_v2_blocks.txt")) {
    auto b = std::make_shared<Block>(s);
    const std::string base = "q8_block/" + std::to_string(++i) + "/";
    const char* modes[] = {"fused", "fused_no_add", "kernels", "fused_2t"};
    for (int m = 0; m < 3; ++m)
      benchmark::RegisterBenchmark((base + modes[m]).c_str(), run, b, m)->MeasureProcessCPUTime();
    benchmark::RegisterBenchmark((base + modes[3]).c_str(), run, b, 3)->MeasureProcessCPUTime()->UseRealTime();
    benchmark::RegisterBenchmark((base + "fused_2t_cpu").c_str(), run_thread_cpu, b)->UseManualTime();
  }
  // Batch 32 (one thread): the automatic images per work item against one image per item
  // (group_images 1) and the kernels over the whole batch; g2..g4 force the group size.
  i = 0;
  for (const auto& s : mkbench::read_shapes("mobilenet_v2_blocks.txt")) {
    auto b = std::make_shared<Block>(s, 32);
    const std::string base = "q8_block_b32/" + std::to_string(++i) + "/";
    benchmark::RegisterBenchmark((base + "fused").c_str(), run_group, b, 0)->MeasureProcessCPUTime();
    for (int g = 1; g <= 4; ++g)
      benchmark::RegisterBenchmark((base + "fused_g" + std::to_string(g)).c_str(), run_group, b, g)
          ->MeasureProcessCPUTime();
    benchmark::RegisterBenchmark((base + "kernels").c_str(), run, b, 2)->MeasureProcessCPUTime();
  }
  return 0;
}

const int registered = register_all();

}  // namespace
