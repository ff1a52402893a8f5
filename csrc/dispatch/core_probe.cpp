#include "dispatch/core_probe.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "dispatch/cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace mk {
namespace {

// 12 independent accumulator chains: enough to cover the FMA latency (4-5 cycles) at 2 FMAs per
// cycle, so the loop measures throughput, not latency. Returns flops done (the sum is consumed
// so the loop is not optimized away).
constexpr int kChains = 12;

#if defined(__x86_64__) || defined(_M_X64)
__attribute__((target("avx2,fma"))) double fma_loop_avx2(long iters, float* sink) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.0001f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
  *sink = _mm256_cvtss_f32(s);
  return 2.0 * 8 * kChains * static_cast<double>(iters);
}
#elif defined(__aarch64__)
double fma_loop_neon(long iters, float* sink) {
  float32x4_t acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = vdupq_n_f32(0.001f * static_cast<float>(i));
  const float32x4_t a = vdupq_n_f32(0.999f), b = vdupq_n_f32(0.0001f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = vfmaq_f32(b, acc[i], a);
  float32x4_t s = acc[0];
  for (int i = 1; i < kChains; ++i) s = vaddq_f32(s, acc[i]);
  *sink = vgetq_lane_f32(s, 0);
  return 2.0 * 4 * kChains * static_cast<double>(iters);
}
#endif

double fma_loop_plain(long iters, float* sink) {
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = 0.001f * static_cast<float>(i);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * 0.999f + 0.0001f;
  float s = 0;
  for (float v : acc) s += v;
  *sink = s;
  return 2.0 * kChains * static_cast<double>(iters);
}

double fma_loop(long iters, float* sink) {
#if defined(__x86_64__) || defined(_M_X64)
  if (cpu_features().avx2 && cpu_features().fma) return fma_loop_avx2(iters, sink);
#elif defined(__aarch64__)
  return fma_loop_neon(iters, sink);
#endif
  return fma_loop_plain(iters, sink);
}

}  // namespace

std::vector<double> core_probe_gflops(int threads, double seconds) {
  if (threads < 1 || threads > 1024) throw std::invalid_argument("core_probe: threads must be in 1..1024");
  if (!(seconds > 0 && seconds <= 10)) throw std::invalid_argument("core_probe: seconds must be in (0, 10]");
  using clock = std::chrono::steady_clock;
  // Calibrate the iteration count on one short run so every thread runs about `seconds`.
  // The loops' results go to volatile sinks: a result nobody reads lets the compiler drop the
  // inlined calibration loop (it did: the probe then ran ~1000x longer than asked).
  volatile float sink = 0;
  float calib = 0;
  auto t0 = clock::now();
  fma_loop(200000, &calib);
  const double dt = std::chrono::duration<double>(clock::now() - t0).count();
  sink = calib;
  const long iters = std::max(1000L, static_cast<long>(200000 * seconds / std::max(dt, 1e-6)));
  std::vector<double> out(static_cast<size_t>(threads), 0.0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
#pragma omp barrier
    auto s = clock::now();
    float r = 0;
    const double f = fma_loop(iters, &r);
    const double d = std::chrono::duration<double>(clock::now() - s).count();
    out[static_cast<size_t>(t)] = f / d / 1e9;
#pragma omp critical
    sink = sink + r;
  }
  return out;
}

}  // namespace mk
