// Every int8 depthwise kernel against an independent int64 oracle on the unpacked weights
// (padding taps skipped: they contribute (x_zp - x_zp) * w = 0), through the op layer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/q8-dwconv/q8_dwconv.h"
#include "kernels/q8-dwconv/q8_dwconv_kernels.h"
#include "ops/q8_dwconv_op.h"

using namespace mk;

namespace {

struct Geo {
  int64_t n, h, w, c, m, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr;
};

struct Quant {
  bool xs, ws, ys;
  int32_t xz, wz, yz;  // wz < -1000: random per-channel zero points
  double sx, sy;
  // Weights within int8 of their zero point (w - w_zp in [-128, 127]: the VNNI path's condition;
  // symmetric int8 or uint8 around 128, what quantize() makes). Otherwise any byte.
  bool fit = false;
};

std::string describe(const Geo& g, const Quant& q) {
  char buf[300];
  std::snprintf(buf, sizeof buf,
                "N%ld %ldx%ldx%ld m%ld k%ldx%ld s%ldx%ld d%ldx%ld pad(%ld,%ld,%ld,%ld) x%c%d w%c%d y%c%d sx%g sy%g",
                (long)g.n, (long)g.h, (long)g.w, (long)g.c, (long)g.m, (long)g.kh, (long)g.kw, (long)g.sh,
                (long)g.sw, (long)g.dh, (long)g.dw, (long)g.pt, (long)g.pb, (long)g.pl, (long)g.pr,
                q.xs ? 's' : 'u', q.xz, q.ws ? 's' : 'u', q.wz, q.ys ? 's' : 'u', q.yz, q.sx, q.sy);
  return buf;
}

constexpr int64_t kCanary = 64;
constexpr uint8_t kCanaryByte = 0x5A;

// with_lut: a random 256-entry activation table fused into the epilogue; expected = the oracle's
// bytes looked up afterwards (what conv followed by a separate table pass gives).
void check(const Geo& g, const Quant& qt, std::mt19937& rng, int threads = 1, bool with_lut = false) {
  Q8DwShape s{g.n, g.h, g.w, g.c, g.m, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, 0, 0};
  s.OH = (g.h + g.pt + g.pb - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  s.OW = (g.w + g.pl + g.pr - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  const int64_t C = g.c * g.m, T = g.kh * g.kw;
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> x(g.n * g.h * g.w * g.c), w(C * T);
  for (auto& v : x) v = uint8_t(byte(rng));
  std::vector<int32_t> wzp(C), bias(C);
  std::vector<float> wscale(C);
  std::uniform_int_distribution<int32_t> bd(-20000, 20000);
  std::uniform_real_distribution<float> sd(0.5f, 2.f);
  for (int64_t c = 0; c < C; ++c) {
    wzp[c] = qt.wz < -1000 ? (qt.ws ? -128 : 0) + byte(rng) : qt.wz;
    bias[c] = bd(rng);
    wscale[c] = sd(rng);
  }
  for (int64_t i = 0; i < C * T; ++i) {
    if (!qt.fit) {
      w[i] = uint8_t(byte(rng));
      continue;
    }
    const int32_t lo = qt.ws ? -128 : 0, hi = qt.ws ? 127 : 255;
    const int32_t v = std::min(hi, std::max(lo, wzp[i / T] + byte(rng) - 128));
    w[i] = uint8_t(v);
  }
  auto xv = [&](int64_t i) -> int64_t { return qt.xs ? int8_t(x[i]) : x[i]; };
  auto wv = [&](int64_t i) -> int64_t { return qt.ws ? int8_t(w[i]) : w[i]; };
  const int32_t ylo = qt.ys ? -128 : 0, yhi = qt.ys ? 127 : 255;
  const int64_t total = g.n * s.OH * s.OW * C;
  std::vector<uint8_t> expect(total);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oh = 0; oh < s.OH; ++oh)
      for (int64_t ow = 0; ow < s.OW; ++ow)
        for (int64_t oc = 0; oc < C; ++oc) {
          int64_t acc = bias[oc];
          for (int64_t kh = 0; kh < g.kh; ++kh)
            for (int64_t kw = 0; kw < g.kw; ++kw) {
              const int64_t ih = oh * g.sh - g.pt + kh * g.dh, iw = ow * g.sw - g.pl + kw * g.dw;
              if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
              acc += (xv(((n * g.h + ih) * g.w + iw) * g.c + oc / g.m) - qt.xz) * (wv(oc * T + kh * g.kw + kw) - wzp[oc]);
            }
          const float sc = static_cast<float>(qt.sx * double(wscale[oc]) / qt.sy);
          const double r = std::nearbyint(double(static_cast<float>(acc) * sc));
          expect[((n * s.OH + oh) * s.OW + ow) * C + oc] =
              uint8_t(int32_t(std::fmin(std::fmax(r + qt.yz, ylo), yhi)));
        }
  std::vector<uint8_t> table(256);
  for (auto& v : table) v = uint8_t(byte(rng));
  if (with_lut)
    for (auto& v : expect) v = table[v];
  const Q8DwLayout l = q8_dwconv_layout(C, g.kh, g.kw);
  std::vector<uint8_t> packed(l.total);
  q8_dwconv_pack(w.data(), qt.ws, wzp.data(), wscale.data(), bias.data(), C, g.kh, g.kw, packed.data());
  const Q8Quant q{qt.sx, qt.xz, qt.xs, qt.sy, qt.yz, qt.ys, ylo, yhi};
  for (const Q8DwconvKernel& k : kQ8DwconvKernels) {
    if (!isa_supported(k.isa)) continue;
    std::vector<uint8_t> out(total + 2 * kCanary, kCanaryByte);
    q8_dwconv_run_with(k.run, packed.data(), l.total, x.data(), s, q, out.data() + kCanary, threads,
                       with_lut ? table.data() : nullptr);
    for (int64_t i = 0; i < kCanary; ++i) {
      ASSERT_EQ(out[i], kCanaryByte) << k.name << " wrote before output, " << describe(g, qt);
      ASSERT_EQ(out[kCanary + total + i], kCanaryByte) << k.name << " wrote past output, " << describe(g, qt);
    }
    for (int64_t i = 0; i < total; ++i)
      ASSERT_EQ(int(out[kCanary + i]), int(expect[i])) << k.name << " at " << i << " (channel " << i % C << "), "
                                                       << describe(g, qt) << (with_lut ? " +table" : "")
                                                       << " threads " << threads;
  }
}

}  // namespace

TEST(Q8Dwconv, KernelsCovered) {
  for (const Q8DwconvKernel& k : kQ8DwconvKernels)
    std::printf("kernel %-20s %s\n", k.name, isa_supported(k.isa) ? "tested" : "NOT RUN: this CPU lacks it");
}

TEST(Q8Dwconv, FastPathShapes) {
  std::mt19937 rng(1);
  int i = 0;
  for (int64_t k : {3, 5, 7})
    for (int64_t s : {1, 2})
      for (int64_t c : {1, 15, 16, 33})
        for (int64_t hw : {1, 5, 9})
          for (int64_t pad : {int64_t(0), k / 2}) {
            if (hw + 2 * pad < k) continue;
            ++i;
            const Quant q{bool(i % 2), bool(i / 2 % 2), bool(i / 4 % 2), i % 2 ? -128 : 255, i / 2 % 2 ? 0 : 128,
                          i / 4 % 2 ? 3 : 100, 0.02, 0.05};
            check({1, hw, hw + 2, c, 1, k, k, s, s, 1, 1, pad, pad, pad, pad}, q, rng);
          }
}

TEST(Q8Dwconv, GenericShapesAndZeroPoints) {
  std::mt19937 rng(2);
  const Geo geos[] = {
      {2, 7, 9, 5, 1, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},     // dilation 2
      {1, 11, 6, 17, 1, 3, 5, 2, 1, 1, 1, 1, 1, 2, 2},   // non-square kernel, mixed stride
      {1, 10, 10, 19, 1, 4, 4, 3, 3, 1, 1, 1, 2, 1, 2},  // even kernel, asymmetric pad
      {3, 6, 6, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},     // depth multiplier 3
      {1, 1, 1, 40, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},    // 1x1
      {1, 3, 30, 9, 1, 1, 9, 1, 4, 1, 1, 0, 0, 4, 4},    // 1x9
      {1, 12, 12, 24, 1, 11, 11, 1, 1, 1, 1, 5, 5, 5, 5},  // 121 taps
  };
  const Quant quants[] = {{false, true, false, 0, 0, 0, 0.1, 0.9}, {false, false, false, 255, 255, 255, 0.01, 0.01},
                          {true, true, true, 127, -2000, -128, 0.3, 0.05}, {true, false, false, -128, -2000, 0, 2.0, 3.0},
                          {false, true, true, 77, 0, 127, 1.0, 1e-3}};
  for (const Geo& g : geos)
    for (const Quant& q : quants) check(g, q, rng);
}

TEST(Q8Dwconv, MobileNetLayersThreaded) {
  std::mt19937 rng(3);
  const int64_t layers[][4] = {{56, 56, 32, 1}, {28, 28, 144, 2}, {7, 7, 160, 1}};
  for (const auto& l : layers)
    check({1, l[0], l[1], l[2], 1, 3, 3, l[3], l[3], 1, 1, 1, 1, 1, 1}, {false, true, false, 3, 0, 7, 0.02, 0.03}, rng, 2);
}

// The 3x3 register blocks (AVX2): rows wide enough for blocks of 4 plus a narrower remainder,
// stride 1 and 2 across (stride 2 takes the blocks only on wide rows) and down, padding rows
// read through the x_zp row, asymmetric padding, a channel tail block, two images, threads.
TEST(Q8Dwconv, RegisterBlocks3x3) {
  std::mt19937 rng(4);
  const int64_t pads[][4] = {{1, 1, 1, 1}, {0, 0, 0, 0}, {0, 2, 1, 0}, {2, 0, 0, 1}};
  const Quant quants[] = {{false, true, false, 3, 0, 7, 0.02, 0.03}, {true, true, true, -128, -2000, 5, 0.3, 0.05},
                          {false, false, true, 255, 200, -128, 2.0, 3.0}, {true, false, false, 127, 255, 255, 1.0, 1e-3}};
  int i = 0;
  for (int64_t w : {26, 37})
    for (int64_t h : {4, 7})
      for (int64_t sh : {1, 2})
        for (int64_t sw : {1, 2})
          for (const auto& pd : pads)
            for (int64_t c : {16, 33}) {
              const Geo g{2, h, w, c, 1, 3, 3, sh, sw, 1, 1, pd[0], pd[1], pd[2], pd[3]};
              check(g, quants[i % 4], rng, 1 + i % 2);
              ++i;
            }
}

// The activation table in the epilogue: every kernel size path (3x3 register blocks and per
// pixel, 5x5, 7x7, generic), channel counts below / between vector widths, whole-row and
// channel-split lookups (threads), batch 3.
TEST(Q8Dwconv, ActivationTableInEpilogue) {
  std::mt19937 rng(5);
  const Geo geos[] = {
      {1, 14, 14, 48, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  {3, 9, 11, 33, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
      {1, 7, 7, 96, 1, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2},    {1, 5, 6, 7, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
      {2, 9, 9, 17, 1, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3},    {1, 10, 10, 19, 1, 4, 4, 3, 3, 1, 1, 1, 2, 1, 2},
      {1, 26, 26, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  {1, 3, 3, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
      // Big enough to run threaded (small calls run on one thread): rows / channel-block splits,
      // a ragged last block (200 = 12 x 16 + 8).
      {1, 14, 14, 480, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 7, 7, 200, 1, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2},
      {3, 7, 7, 104, 1, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2},
  };
  const Quant quants[] = {{false, true, false, 3, 0, 7, 0.02, 0.03}, {true, true, true, -128, -2000, 5, 0.3, 0.05}};
  int i = 0;
  for (const Geo& g : geos)
    for (int threads : {1, 2, 3}) check(g, quants[i++ % 2], rng, threads, true);
}

TEST(Q8Dwconv, ThreadSplitsMatchOneThread) {
  // Rows or channel blocks per thread (whichever shares out more evenly), V3's 14x14 / 7x7 layers.
  std::mt19937 rng(6);
  const int64_t layers[][5] = {{14, 14, 480, 3, 1}, {7, 7, 960, 5, 1}, {14, 14, 672, 5, 2}, {5, 5, 40, 3, 1}};
  for (const auto& l : layers)
    for (int threads : {2, 3, 4})
      check({1, l[0], l[1], l[2], 1, l[3], l[3], l[4], l[4], 1, 1, l[3] / 2, l[3] / 2, l[3] / 2, l[3] / 2},
            {false, true, false, 3, 0, 7, 0.02, 0.03}, rng, threads);
}

// Weights within int8 of their zero point: the AVX512-VNNI kernel's own path (other weights
// send it to the int16 kernel). Channels around the 16 / 64-channel blocks (tails, quads past
// the end), 3x3 register blocks at strides 1 / 2 / 3, padding (asymmetric, larger than the
// kernel's reach), dilation, 5x5 / 7x7 / odd kernels on the per-pixel path, every zero point
// corner, signed and unsigned activations, batch > 1, threads (channel and row splits), table.
TEST(Q8Dwconv, Int8RangeWeights) {
  std::mt19937 rng(7);
  const Quant quants[] = {{false, true, false, 3, 0, 7, 0.02, 0.03, true},
                          {true, true, true, -128, -2000, 5, 0.3, 0.05, true},
                          {false, false, true, 255, 128, -128, 2.0, 3.0, true},
                          {true, false, false, 127, -2000, 255, 1.0, 1e-3, true},
                          {false, true, false, 0, 127, 0, 0.05, 0.02, true},
                          {true, true, false, 0, -128, 128, 0.05, 0.02, true}};
  int i = 0;
  for (int64_t c : {1, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 67, 96, 144}) {
    for (int64_t s : {1, 2, 3})
      for (const auto& hw : {std::pair<int64_t, int64_t>{1, 1}, {5, 17}, {9, 12}, {17, 3}}) {
        const int64_t pt = i % 3, pb = (i / 3) % 2, pl = (i / 2) % 3, pr = i % 2;
        if (hw.first + pt + pb < 3 || hw.second + pl + pr < 3) continue;
        check({1 + i % 2, hw.first, hw.second, c, 1, 3, 3, s, s == 3 ? 1 : s, 1, 1, pt, pb, pl, pr},
              quants[i % 6], rng, 1 + i % 3, i % 4 == 0);
        ++i;
      }
    for (int64_t k : {5, 7}) {
      check({2, 11, 13, c, 1, k, k, 1, 1, 1, 1, k / 2, k / 2, k / 2, k / 2}, quants[i % 6], rng, 1 + i % 2);
      check({1, 12, 9, c, 1, k, k, 2, 2, 1, 1, k / 2, 0, 1, k / 2}, quants[(i + 1) % 6], rng, 1, true);
      ++i;
    }
  }
  const Geo geos[] = {
      {2, 7, 9, 65, 1, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},      // dilation 2
      {1, 11, 6, 70, 1, 3, 5, 2, 1, 1, 1, 1, 1, 2, 2},     // non-square kernel, mixed stride
      {1, 10, 10, 19, 1, 4, 4, 3, 3, 1, 1, 1, 2, 1, 2},    // even kernel, asymmetric pad
      {3, 6, 6, 22, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},      // depth multiplier 3
      {1, 1, 1, 130, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},     // 1x1
      {1, 3, 30, 9, 1, 1, 9, 1, 4, 1, 1, 0, 0, 4, 4},      // 1x9
      {1, 12, 12, 80, 1, 11, 11, 1, 1, 1, 1, 5, 5, 5, 5},  // 121 taps
      {1, 6, 40, 64, 1, 3, 3, 1, 1, 1, 1, 4, 4, 5, 5},     // padding wider than the kernel
      {1, 17, 17, 192, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},   // 3 full blocks, stride 2
  };
  for (const Geo& g : geos)
    for (int t : {1, 2}) check(g, quants[i++ % 6], rng, t, t == 2);
}
