// Every int8 GEMM kernel in the kernel list (and the AVX2 emulation of the VNNI tiling) against
// an independent int64 oracle on the unpacked weights, through the op layer's per-call
// preparation (effective bias, sign flip, row sums). Outputs live between canary zones.
#include <gtest/gtest.h>

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

namespace {

struct Case {
  int64_t M, K, N;
  bool x_signed, w_signed, y_signed;
  int32_t x_zp, w_zp, y_zp;  // w_zp < -1000: per-channel random zero points
  double x_scale, y_scale;
  int32_t y_min, y_max;
  bool bias_big;  // biases near the int32 limits (the true sum still fits)
};

std::string describe(const Case& c) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "M%ld K%ld N%ld x%c(zp %d) w%c(zp %d) y%c(zp %d) sx %g sy %g clamp[%d,%d]%s",
                (long)c.M, (long)c.K, (long)c.N, c.x_signed ? 's' : 'u', c.x_zp, c.w_signed ? 's' : 'u',
                c.w_zp, c.y_signed ? 's' : 'u', c.y_zp, c.x_scale, c.y_scale, c.y_min, c.y_max,
                c.bias_big ? " big-bias" : "");
  return buf;
}

struct Kern {
  const char* name;
  Isa isa;
  Q8GemmFn fn;
  bool signed_x;
};

std::vector<Kern> kernels() {
  std::vector<Kern> out;
  for (const Q8GemmKernel& k : kQ8GemmKernels) out.push_back({k.name, k.isa, k.run, k.signed_x});
#if defined(MK_X86)
  for (const Q8GemmKernel& k : kQ8GemmEmulatedKernels) out.push_back({k.name, k.isa, k.run, k.signed_x});
  // What the op runs at the amx level: AMX behind its size rule (VNNI for small calls).
  const Q8GemmKernel& amx = q8_gemm_kernel(Isa::amx);
  if (amx.isa == Isa::amx) out.push_back({"amx dispatched (size rule)", amx.isa, amx.run, amx.signed_x});
#endif
  return out;
}

constexpr int64_t kCanary = 64;
constexpr uint8_t kCanaryByte = 0xA5;

// with_lut: a random 256-entry activation table fused into the epilogue; expected = the oracle's
// bytes looked up afterwards (what conv followed by a separate table pass gives).
// only: run just the kernels of this level (Isa::count: all).
void check_case(const Case& c, std::mt19937& rng, int threads = 1, bool with_lut = false, Isa only = Isa::count) {
  const int32_t xlo = c.x_signed ? -128 : 0, wlo = c.w_signed ? -128 : 0;
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> x(c.M * c.K), w(c.N * c.K);
  for (auto& v : x) v = static_cast<uint8_t>(byte(rng));
  for (auto& v : w) v = static_cast<uint8_t>(byte(rng));
  std::vector<int32_t> wzp(c.N), bias(c.N);
  std::vector<float> wscale(c.N);
  std::uniform_real_distribution<float> sd(0.5f, 2.f);
  for (int64_t oc = 0; oc < c.N; ++oc) {
    wzp[oc] = c.w_zp < -1000 ? wlo + byte(rng) : c.w_zp;
    wscale[oc] = sd(rng);
  }
  // Oracle sums without bias; then biases (big ones keep the true sum inside int32).
  const std::vector<int64_t> acc = mk_test::q8_oracle_sums(x, c.x_signed, c.x_zp, w, c.w_signed, wzp, c.M, c.K, c.N);
  bias = mk_test::q8_oracle_biases(acc, c.M, c.N, c.bias_big, rng);
  (void)xlo;
  Q8Quant q{c.x_scale, c.x_zp, c.x_signed, c.y_scale, c.y_zp, c.y_signed, c.y_min, c.y_max};
  std::vector<uint8_t> expect(c.M * c.N);
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t oc = 0; oc < c.N; ++oc) {
      const int64_t a = acc[m * c.N + oc] + bias[oc];
      ASSERT_TRUE(a >= INT32_MIN && a <= INT32_MAX) << "test bug: true sum outside int32";
      const float s = static_cast<float>(c.x_scale * double(wscale[oc]) / c.y_scale);
      expect[m * c.N + oc] = mk_test::q8_oracle_requant(a, s, c.y_zp, c.y_min, c.y_max);
    }
  std::vector<uint8_t> table(256);
  for (auto& v : table) v = static_cast<uint8_t>(byte(rng));
  if (with_lut)
    for (auto& v : expect) v = table[v];
  const Q8GemmLayout l = q8_gemm_layout(c.K, c.N);
  std::vector<uint8_t> packed(l.total);
  q8_gemm_pack(w.data(), c.w_signed, wzp.data(), wscale.data(), bias.data(), c.K, c.N, packed.data());

  for (const Kern& k : kernels()) {
    if (!isa_supported(k.isa) || (only != Isa::count && k.isa != only)) continue;
    std::vector<uint8_t> out(c.M * c.N + 2 * kCanary, kCanaryByte);
    q8_gemm_run_with(k.fn, k.signed_x, packed.data(), l.total, x.data(), c.M, c.K, c.N, q,
                     out.data() + kCanary, threads, with_lut ? table.data() : nullptr);
    for (int64_t i = 0; i < kCanary; ++i) {
      ASSERT_EQ(out[i], kCanaryByte) << k.name << " wrote before output, " << describe(c);
      ASSERT_EQ(out[kCanary + c.M * c.N + i], kCanaryByte) << k.name << " wrote past output, " << describe(c);
    }
    for (int64_t i = 0; i < c.M * c.N; ++i)
      ASSERT_EQ(int(out[kCanary + i]), int(expect[i]))
          << k.name << " at m=" << i / c.N << " oc=" << i % c.N << " acc=" << acc[i] + bias[i % c.N] << ", "
          << describe(c) << (with_lut ? " +table" : "") << " threads " << threads;
  }
}

}  // namespace

TEST(Q8Gemm, KernelsCovered) {
  for (const Kern& k : kernels())
    std::printf("kernel %-28s %s\n", k.name, isa_supported(k.isa) ? "tested" : "NOT RUN: this CPU lacks it");
}

TEST(Q8Gemm, OddSizesAllDtypes) {
  std::mt19937 rng(1);
  const int64_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 33, 64, 67};
  int i = 0;
  for (int64_t K : sizes)
    for (int64_t N : sizes) {
      ++i;
      const bool xs = i % 2, ws = (i / 2) % 2, ys = (i / 4) % 2;
      const int64_t M = (i % 5 == 0) ? 1 : (i % 3 == 0 ? 7 : 13);
      const int32_t ylo = ys ? -128 : 0, yhi = ys ? 127 : 255;
      check_case({M, K, N, xs, ws, ys, xs ? -3 : 131, ws ? 0 : 128, ys ? 5 : 120, 0.05, 0.9, ylo, yhi, false}, rng);
    }
}

TEST(Q8Gemm, ExtremeZeroPointsAndClamps) {
  std::mt19937 rng(2);
  for (int32_t xz : {0, 255})
    for (int32_t wz : {0, 255, -2000})  // -2000: random per-channel zero points
      check_case({49, 37, 40, false, false, false, xz, wz, 255 - xz, 0.02, 0.5, 0, 255, false}, rng);
  for (int32_t xz : {-128, 127})
    for (int32_t wz : {-128, 127, 0, -2000})
      check_case({7, 67, 19, true, true, true, xz, wz, xz, 0.01, 0.3, -128, 127, false}, rng);
  // Fused ReLU6-like clamp, uint8 in / int8 out.
  check_case({50, 24, 33, false, true, true, 7, 0, -10, 0.03, 0.02, -10, 90, false}, rng);
}

TEST(Q8Gemm, ScalesAboveAndBelowOneAndBigAccumulators) {
  std::mt19937 rng(3);
  for (double ys : {1e-4, 0.07, 1.0, 40.0, 1e5})
    check_case({9, 96, 24, false, true, false, 128, 0, 128, 0.5, ys, 0, 255, false}, rng);
  // Deep K with extreme values and biases placing the true sum at the int32 limits.
  check_case({5, 1024, 20, false, false, false, 0, 255, 0, 1e-6, 1.0, 0, 255, true}, rng);
  check_case({6, 333, 17, true, true, true, -128, -128, 0, 1e-7, 1.0, -128, 127, true}, rng);
}

TEST(Q8Gemm, MobileNetShapesThreaded) {
  std::mt19937 rng(4);
  const int64_t shapes[][3] = {{3136, 24, 144}, {196, 64, 384}, {49, 160, 960}, {49, 320, 1280}};
  for (const auto& s : shapes)
    check_case({s[0], s[1], s[2], false, true, false, 3, 0, 7, 0.02, 0.1, 0, 255, false}, rng, 2);
}

// The activation table in the epilogue: odd M (AVX2 looks rows up in pairs), N with 8-column
// and ragged tails, K on both AVX2 tilings (< 256 and >= 256), all dtypes, 1-3 threads with both
// splits (M < N: columns, else rows), and the serial small-call path.
TEST(Q8Gemm, ActivationTableInEpilogue) {
  std::mt19937 rng(5);
  const int64_t shapes[][3] = {{1, 7, 5},    {5, 3, 16},   {7, 33, 24},  {13, 64, 40},  {6, 17, 8},
                               {11, 80, 67}, {49, 160, 96}, {196, 80, 120}, {37, 300, 33}, {9, 257, 100},
                               {1, 960, 240}, {200, 24, 72}};
  int i = 0;
  for (const auto& s : shapes)
    for (int threads : {1, 2, 3}) {
      ++i;
      const bool xs = i % 2, ws = (i / 2) % 2, ys = (i / 3) % 2;
      const int32_t ylo = ys ? -128 : 0, yhi = ys ? 127 : 255;
      check_case({s[0], s[1], s[2], xs, ws, ys, xs ? -3 : 131, i % 4 ? 0 : -2000, ys ? 5 : 120, 0.05, 0.9, ylo,
                  yhi, false},
                 rng, threads, true);
    }
  // A narrower output range (fused ReLU6-style clamp) under a table.
  check_case({50, 24, 33, false, true, true, 7, 0, -10, 0.03, 0.02, -10, 90, false}, rng, 2, true);
}

TEST(Q8Gemm, ThreadSplitsMatchOneThread) {
  // Both splits at 2-4 threads, against the oracle: M < N (columns, including blocks that do not
  // share out evenly: rows then) and M >= N (rows), shapes of V3's 14x14 / 7x7 layers.
  std::mt19937 rng(6);
  const int64_t shapes[][3] = {{196, 80, 480}, {49, 160, 960}, {49, 960, 160}, {196, 112, 672},
                               {3, 40, 72},    {784, 40, 120}, {2, 300, 17}};
  for (const auto& s : shapes)
    for (int threads : {2, 3, 4})
      check_case({s[0], s[1], s[2], false, true, false, 3, 0, 7, 0.02, 0.1, 0, 255, false}, rng, threads);
}

// Every AMX tile case: M tails of the 32-row register tile (1..16 rows: one A tile; 17..31: two),
// N tails of the 32-column pair (one or two B tiles, ragged last block, the pack's last block
// ending inside a 64-k step), K on the one-step path (<= 64) and the 2x2 path, K % 64 == 0
// (A tiles straight from the rows for uint8 x) or not (panel), int8 x (panel, sign flip), weight
// zero points (row sums), tables, accumulators at the int32 limits, threads 1 and 2 (column
// splits start at an odd 16-column block).
TEST(Q8Gemm, AmxTilesAndTails) {
  if (!isa_supported(Isa::amx)) GTEST_SKIP() << "no AMX on this CPU (the other kernels run these shapes elsewhere)";
  std::mt19937 rng(7);
  const int64_t Ms[] = {1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 49, 64, 65, 70};
  const int64_t Ks[] = {1, 3, 4, 16, 24, 63, 64, 65, 127, 128, 129, 192, 300};
  const int64_t Ns[] = {1, 15, 16, 17, 31, 32, 33, 48, 64, 70};
  int i = 0;
  for (int64_t M : Ms)
    for (int64_t K : Ks)
      for (int64_t N : Ns) {
        ++i;
        if ((i * 7) % 3 != 0 && M != 32 && M != 33 && K != 64 && K != 65) continue;  // a third, plus the edges
        const bool xs = i % 4 == 1, ws = (i / 2) % 2, ys = (i / 3) % 2;
        const int32_t ylo = ys ? -128 : 0, yhi = ys ? 127 : 255;
        const int32_t wz = i % 5 == 0 ? -2000 : (ws ? 0 : 128);
        check_case({M, K, N, xs, ws, ys, xs ? -3 : 131, wz, ys ? 5 : 120, 0.05, 0.9, ylo, yhi, i % 7 == 0}, rng,
                   1 + i % 2, i % 6 == 0, Isa::amx);
      }
  // Direct A loads over many row blocks and both splits, deep K, limits.
  for (int threads : {1, 2}) {
    check_case({200, 128, 96, false, true, false, 3, 0, 7, 0.02, 0.1, 0, 255, true}, rng, threads, false, Isa::amx);
    check_case({97, 256, 40, true, true, true, -5, 0, 7, 0.02, 0.1, -128, 127, true}, rng, threads, true, Isa::amx);
    check_case({67, 64, 70, false, false, false, 0, -2000, 7, 0.02, 0.1, 0, 255, true}, rng, threads, false, Isa::amx);
  }
}

TEST(Q8Gemm, RejectsForeignPacks) {
  const Q8GemmLayout l = q8_gemm_layout(8, 8);
  std::vector<uint8_t> packed(l.total, 0);
  std::vector<uint8_t> x(8), y(8);
  Q8Quant q{1.0, 0, false, 1.0, 0, false, 0, 255};
  EXPECT_THROW(q8_gemm_run(packed.data(), l.total, x.data(), 1, 8, 8, q, y.data(), 1), std::invalid_argument);
  std::vector<uint8_t> w(64, 1);
  std::vector<int32_t> z(8, 0);
  std::vector<float> s(8, 1.f);
  q8_gemm_pack(w.data(), false, z.data(), s.data(), nullptr, 8, 8, packed.data());
  EXPECT_NO_THROW(q8_gemm_run(packed.data(), l.total, x.data(), 1, 8, 8, q, y.data(), 1));
  EXPECT_THROW(q8_gemm_run(packed.data(), l.total, x.data(), 1, 4, 8, q, y.data(), 1), std::invalid_argument);
  EXPECT_THROW(q8_gemm_run(packed.data(), l.total - 1, x.data(), 1, 8, 8, q, y.data(), 1), std::invalid_argument);
  Q8Quant bad = q;
  bad.x_zp = 256;
  EXPECT_THROW(q8_gemm_run(packed.data(), l.total, x.data(), 1, 8, 8, bad, y.data(), 1), std::invalid_argument);
  z[3] = 300;
  EXPECT_THROW(q8_gemm_pack(w.data(), false, z.data(), s.data(), nullptr, 8, 8, packed.data()), std::invalid_argument);
}
