// The VNNI int8 GEMM kernels (avx512vnni: 8x48 / 12x32 / 16x16 tiles over a transposed row
// panel; avxvnni and its AVX2 emulation: the shared tiling) against an independent int64 oracle,
// on shapes that hit every tile tail: N around multiples of 16 / 32 / 48, M tails of every tile
// height and across the 48-row panel groups and the panel chunk, K = 1..300 (the 64-byte transpose
// steps and the partial 4-k group), weight zero points left in the pack, int8 activations, int8
// outputs with narrow clamps, activation tables, and accumulators at the int32 limits. Kernels
// are also called directly on odd sub-ranges (as the op's thread split and the fused block's
// bands do), with outputs between canaries.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/q8-gemm/q8_gemm.h"
#include "kernels/q8-gemm/q8_gemm_kernels.h"
#include "ops/q8_gemm_op.h"
#include "q8_gemm_oracle.h"

using namespace mk;

#if defined(MK_X86)
namespace {

struct Kern {
  const char* name;
  Isa isa;
  Q8GemmFn fn;
};

// The VNNI-tiled kernels (the scalar reference as a control).
std::vector<Kern> vnni_kernels() {
  std::vector<Kern> out;
  for (const Q8GemmKernel& k : kQ8GemmKernels)
    if (k.isa == Isa::scalar || k.isa == Isa::avxvnni || k.isa == Isa::avx512vnni) out.push_back({k.name, k.isa, k.run});
  for (const Q8GemmKernel& k : kQ8GemmEmulatedKernels) out.push_back({k.name, k.isa, k.run});
  return out;
}

struct Case {
  int64_t M, K, N;
  bool x_signed, w_signed, y_signed;
  int32_t x_zp, w_zp, y_zp;  // w_zp < -1000: random per-channel zero points (some stay in the pack)
  double y_scale;
  int32_t y_min, y_max;
  bool bias_big = false;  // biases put the true sums at the int32 limits
  bool lut = false;
};

std::string describe(const Case& c) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "M%ld K%ld N%ld x%c%d w%c%d y%c%d sy%g [%d,%d]%s%s", (long)c.M, (long)c.K,
                (long)c.N, c.x_signed ? 's' : 'u', c.x_zp, c.w_signed ? 's' : 'u', c.w_zp, c.y_signed ? 's' : 'u',
                c.y_zp, c.y_scale, c.y_min, c.y_max, c.bias_big ? " big" : "", c.lut ? " lut" : "");
  return buf;
}

// Sub-range plan for split_fn: rows cut at odd points, columns at multiples of 16.
Q8GemmFn g_inner = nullptr;
void split_fn(const Q8GemmParams& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t mcut = m0 + (m1 - m0) * 2 / 5, ncut = std::min(n1, n0 + round_up((n1 - n0) / 3, kQ8GemmNR));
  for (auto [a, b] : {std::pair{m0, mcut}, std::pair{mcut, m1}})
    for (auto [c, d] : {std::pair{n0, ncut}, std::pair{ncut, n1}})
      if (a < b && c < d) g_inner(p, a, b, c, d);
}

constexpr int64_t kCanary = 64;
constexpr uint8_t kCanaryByte = 0x5A;

void check(const Case& c, std::mt19937& rng, int threads = 1, bool split = false) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> x(c.M * c.K), w(c.N * c.K), table(256);
  for (auto& v : x) v = static_cast<uint8_t>(byte(rng));
  for (auto& v : w) v = static_cast<uint8_t>(byte(rng));
  for (auto& v : table) v = static_cast<uint8_t>(byte(rng));
  std::vector<int32_t> wzp(c.N), bias(c.N);
  std::vector<float> wscale(c.N);
  std::uniform_real_distribution<float> sd(0.5f, 2.f);
  for (int64_t oc = 0; oc < c.N; ++oc) {
    wzp[oc] = c.w_zp < -1000 ? (c.w_signed ? -128 : 0) + byte(rng) : c.w_zp;
    wscale[oc] = sd(rng);
  }
  const std::vector<int64_t> acc = mk_test::q8_oracle_sums(x, c.x_signed, c.x_zp, w, c.w_signed, wzp, c.M, c.K, c.N);
  bias = mk_test::q8_oracle_biases(acc, c.M, c.N, c.bias_big, rng);
  const double x_scale = 0.05;
  std::vector<uint8_t> expect(c.M * c.N);
  for (int64_t i = 0; i < c.M * c.N; ++i) {
    const int64_t a = acc[i] + bias[i % c.N];
    ASSERT_TRUE(a >= INT32_MIN && a <= INT32_MAX) << "test bug: true sum outside int32";
    const float s = static_cast<float>(x_scale * double(wscale[i % c.N]) / c.y_scale);
    expect[i] = mk_test::q8_oracle_requant(a, s, c.y_zp, c.y_min, c.y_max);
    if (c.lut) expect[i] = table[expect[i]];
  }
  const Q8GemmLayout l = q8_gemm_layout(c.K, c.N);
  std::vector<uint8_t> packed(l.total);
  q8_gemm_pack(w.data(), c.w_signed, wzp.data(), wscale.data(), bias.data(), c.K, c.N, packed.data());
  const Q8Quant q{x_scale, c.x_zp, c.x_signed, c.y_scale, c.y_zp, c.y_signed, c.y_min, c.y_max};
  for (const Kern& k : vnni_kernels()) {
    if (!isa_supported(k.isa)) continue;
    if (split && k.isa == Isa::scalar) continue;
    std::vector<uint8_t> out(c.M * c.N + 2 * kCanary, kCanaryByte);
    g_inner = k.fn;
    q8_gemm_run_with(split ? split_fn : k.fn, false, packed.data(), l.total, x.data(), c.M, c.K, c.N, q,
                     out.data() + kCanary, threads, c.lut ? table.data() : nullptr);
    for (int64_t i = 0; i < kCanary; ++i) {
      ASSERT_EQ(out[i], kCanaryByte) << k.name << " wrote before the output, " << describe(c);
      ASSERT_EQ(out[kCanary + c.M * c.N + i], kCanaryByte) << k.name << " wrote past the output, " << describe(c);
    }
    for (int64_t i = 0; i < c.M * c.N; ++i)
      ASSERT_EQ(int(out[kCanary + i]), int(expect[i]))
          << k.name << " at m=" << i / c.N << " oc=" << i % c.N << ", " << describe(c) << " threads " << threads
          << (split ? " split" : "");
  }
}

}  // namespace

TEST(Q8GemmVnniTiles, KernelsCovered) {
  for (const Kern& k : vnni_kernels())
    std::printf("kernel %-40s %s\n", k.name, isa_supported(k.isa) ? "tested" : "NOT RUN: this CPU lacks it");
}

// Every N from 1 to 100 (tiles of 1, 2 and 3 blocks, 4 blocks as 2 + 2, ragged last vectors) and
// M around the tile heights 8 / 12 / 16 and the 48-row groups.
TEST(Q8GemmVnniTiles, ColumnAndRowTails) {
  std::mt19937 rng(11);
  const int64_t Ms[] = {1, 3, 7, 8, 9, 11, 12, 13, 15, 16, 17, 23, 25, 47, 48, 49, 61, 97};
  int i = 0;
  for (int64_t N = 1; N <= 100; ++N) {
    const int64_t M = Ms[i++ % (sizeof Ms / sizeof Ms[0])];
    check({M, 4 + N % 29, N, false, true, false, 128, 0, 100, 0.5, 0, 255}, rng);
  }
  for (int64_t M : Ms)
    for (int64_t N : {16, 32, 48, 64, 96, 144, 160})
      check({M, 37, N, i % 2 == 1, true, false, 3, 0, 60, 0.7, 0, 255}, rng), ++i;
}

// K = 1..300: the 64-byte transpose steps of the row panel, the masked last step, the partial
// last 4-k group, on full 16-row blocks and leftover rows.
TEST(Q8GemmVnniTiles, EveryK) {
  std::mt19937 rng(12);
  for (int64_t K = 1; K <= 300; ++K) {
    const int64_t M = 16 + K % 37, N = 16 + K % 50;
    const bool xs = K % 3 == 0;
    check({M, K, N, xs, K % 2 == 0, false, xs ? -5 : 200, 0, 17, 2.0 + K * 0.1, 0, 255}, rng);
  }
}

// More rows than one panel chunk (256 KB / kpad, in 48-row groups), with a ragged last chunk.
TEST(Q8GemmVnniTiles, PanelChunks) {
  std::mt19937 rng(13);
  check({1000, 300, 50, false, true, false, 7, 0, 9, 1.5, 0, 255}, rng);
  check({4500, 64, 33, true, true, true, 0, 0, -3, 0.9, -128, 127}, rng);
  check({1000, 300, 50, false, true, false, 7, 0, 9, 1.5, 0, 255, false, true}, rng, 2);
}

// Weight zero points left in the pack (row-sum correction), int8 activations and outputs, narrow
// clamps (fused ReLU6) in both output dtypes, activation tables, scales far from 1.
TEST(Q8GemmVnniTiles, ZeroPointsDtypesClampsTables) {
  std::mt19937 rng(14);
  int i = 0;
  for (bool xs : {false, true})
    for (bool ws : {false, true})
      for (bool ys : {false, true})
        for (bool lut : {false, true}) {
          ++i;
          const int64_t M = 5 + 7 * i, N = 10 + 13 * i, K = 3 + 11 * i;
          const int32_t lo = ys ? -128 : 0, hi = ys ? 127 : 255;
          check({M, K, N, xs, ws, ys, xs ? -7 : 140, -2000, ys ? -20 : 30, 0.3 + i, lo, hi, false, lut}, rng);
          check({M, K, N, xs, ws, ys, xs ? 100 : 3, ws ? 5 : 130, ys ? -20 : 30, 0.05, ys ? -20 : 30, ys ? 70 : 120,
                 false, lut},
                rng);
        }
  for (double ys : {1e-5, 1.0, 1e5}) check({30, 70, 70, false, true, true, 128, 0, 0, ys, -128, 127}, rng);
}

// Biases that put the true sums at the int32 limits (the accumulators start at the bias).
TEST(Q8GemmVnniTiles, AccumulatorsAtInt32Limits) {
  std::mt19937 rng(15);
  check({50, 1024, 50, false, false, false, 0, 255, 0, 1.0, 0, 255, true}, rng);
  check({21, 333, 97, true, true, true, -128, -128, 0, 1.0, -128, 127, true}, rng);
  check({13, 17, 48, false, true, false, 0, 0, 0, 1e-3, 0, 255, true}, rng);
}

// Odd sub-ranges per call (rows cut anywhere, columns at multiples of 16) and the op's thread
// splits, on MobileNet-like shapes and small fused-block bands.
TEST(Q8GemmVnniTiles, SubRangesAndThreads) {
  std::mt19937 rng(16);
  const int64_t shapes[][3] = {{14, 64, 384}, {7, 160, 960}, {28, 24, 144}, {56, 96, 24}, {49, 320, 1280},
                               {196, 16, 96}, {3, 300, 70},  {100, 32, 16}};
  for (const auto& s : shapes)
    for (int threads : {1, 2}) {
      check({s[0], s[1], s[2], false, true, false, 3, 0, 7, 0.4, 0, 255}, rng, threads, true);
      check({s[0], s[1], s[2], true, true, true, -3, -2000, 7, 0.4, -128, 100, false, true}, rng, threads);
    }
}
#endif  // MK_X86
