// The uint8 glue of quantized networks (ops/q8_codec_op.h) against plain references written the
// way torch evaluates them: every fp32 operation rounded on its own (volatile), std::nearbyint
// for rounding half to even. Run natively, under ASan and on aarch64 (where an FMA contraction
// would change results), with canary bytes after every output.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "ops/q8_codec_op.h"

using namespace mk;

namespace {

constexpr int64_t kCanary = 32;
constexpr uint8_t kCanaryByte = 0xA5;

uint8_t ref_requant(float v, int32_t zp) {
  float r = std::nearbyint(v) + static_cast<float>(zp);
  if (std::isnan(r) || r < 0.f) r = 0.f;
  if (r > 255.f) r = 255.f;
  return static_cast<uint8_t>(r);
}

std::vector<uint8_t> random_bytes(int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (auto& b : v) b = static_cast<uint8_t>(rng() & 255);
  return v;
}

void expect_canary(const std::vector<uint8_t>& out, int64_t n) {
  for (int64_t i = n; i < n + kCanary; ++i) ASSERT_EQ(out[i], kCanaryByte) << "wrote past the end at " << i;
}

}  // namespace

TEST(Q8Codec, QuantizeNchwAndNhwcWithTies) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 3.f);
  const int64_t N = 2, C = 3, H = 5;
  // W = 29: NCHW rows long enough for the 8-wide loop (NaN, +-1e30 inside it) plus a tail
  for (auto [W, scale] : {std::pair<int64_t, double>{7, 0.02}, {7, 0.5}, {7, 0.0123}, {29, 0.02}, {29, 0.0123}}) {
    const int32_t zp = static_cast<int32_t>(rng() % 256);
    std::vector<float> x(N * C * H * W);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = i < 20 ? static_cast<float>((static_cast<int>(i) - 10 + 0.5) * scale) : nd(rng);
    x[21] = 1e30f;
    x[22] = -1e30f;
    x[23] = std::nanf("");
    for (bool nchw : {true, false}) {
      // strides of the same logical [N, C, H, W] tensor stored NCHW or NHWC
      const int64_t sN = C * H * W, sC = nchw ? H * W : 1, sH = nchw ? W : W * C, sW = nchw ? 1 : C;
      std::vector<uint8_t> out(N * C * H * W + kCanary, kCanaryByte);
      q8_quantize_f32(x.data(), N, C, H, W, sN, sC, sH, sW, scale, zp, out.data());
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t w = 0; w < W; ++w) {
              volatile float q = x[n * sN + c * sC + h * sH + w * sW] / static_cast<float>(scale);
              ASSERT_EQ(out[((n * H + h) * W + w) * C + c], ref_requant(q, zp))
                  << "n" << n << " c" << c << " h" << h << " w" << w << (nchw ? " nchw" : " nhwc");
            }
      expect_canary(out, N * C * H * W);
    }
  }
}

TEST(Q8Codec, Dequantize) {
  std::mt19937 rng(2);
  const int64_t n = 1000;
  auto q = random_bytes(n, rng);
  std::vector<float> y(n + 8, -7.f);
  q8_dequantize_f32(q.data(), n, 0.037, 121, y.data());
  for (int64_t i = 0; i < n; ++i) {
    volatile float d = static_cast<float>(q[i]) - 121.f;
    ASSERT_EQ(y[i], d * 0.037f) << i;
  }
  for (int64_t i = n; i < n + 8; ++i) ASSERT_EQ(y[i], -7.f);
}

TEST(Q8Codec, GlobalAvgpool) {
  std::mt19937 rng(3);
  for (auto [N, HW, C] : {std::tuple<int64_t, int64_t, int64_t>{1, 49, 1280}, {3, 15, 17}, {2, 1, 8}}) {
    auto x = random_bytes(N * HW * C, rng);
    std::vector<uint8_t> out(N * C + kCanary, kCanaryByte);
    const double s = 0.021, ys = 0.013;
    const int32_t z = 97, yz = 5;
    q8_global_avgpool(x.data(), N, HW, C, s, z, ys, yz, out.data());
    const float mult = static_cast<float>(s / (static_cast<double>(HW) * ys));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        int64_t acc = 0;
        for (int64_t i = 0; i < HW; ++i) acc += x[(n * HW + i) * C + c];
        acc -= int64_t{z} * HW;
        volatile float v = static_cast<float>(acc) * mult;
        ASSERT_EQ(out[n * C + c], ref_requant(v, yz)) << "n" << n << " c" << c;
      }
    expect_canary(out, N * C);
  }
}

TEST(Q8Codec, AddRoundsEveryProductLikeTorch) {
  // every (a, b) byte pair, so a fused multiply-add (one rounding less) would show on some pair
  const int64_t n = 65536;
  std::vector<uint8_t> a(n), b(n);
  for (int64_t i = 0; i < n; ++i) a[i] = static_cast<uint8_t>(i & 255), b[i] = static_cast<uint8_t>(i >> 8);
  for (auto [sa, za, sb, zb, so, zo] : {std::tuple<double, int, double, int, double, int>{0.02, 128, 0.03, 100, 0.04, 120},
                                       {0.1, 0, 0.013, 255, 0.05, 7}, {0.5, 3, 0.5, 3, 0.25, 0},
                                       {0.0173, 131, 0.0291, 117, 0.0307, 125}, {0.011, 7, 0.037, 240, 0.023, 99}}) {
    std::vector<uint8_t> out(n + kCanary, kCanaryByte);
    q8_add(a.data(), sa, za, b.data(), sb, zb, so, zo, out.data(), n);
    const float fa = static_cast<float>(sa / so), fb = static_cast<float>(sb / so);
    for (int64_t i = 0; i < n; ++i) {
      volatile float va = (static_cast<float>(a[i]) - static_cast<float>(za)) * fa;
      volatile float vb = (static_cast<float>(b[i]) - static_cast<float>(zb)) * fb;
      volatile float sum = va + vb;
      ASSERT_EQ(out[i], ref_requant(sum, zo)) << i;
    }
    expect_canary(out, n);
    // a ragged length (the SIMD loop's scalar tail) written in place over b, as the fused block does
    std::vector<uint8_t> inplace(b.begin(), b.begin() + (n - 5));
    q8_add(a.data(), sa, za, inplace.data(), sb, zb, so, zo, inplace.data(), n - 5);
    for (int64_t i = 0; i < n - 5; ++i) ASSERT_EQ(inplace[i], out[i]) << "in place, " << i;
  }
}

TEST(Q8Codec, ChannelGate) {
  std::mt19937 rng(5);
  for (auto [N, HW, C] : {std::tuple<int64_t, int64_t, int64_t>{1, 49, 960}, {2, 3, 4100}, {3, 7, 5}}) {
    auto x = random_bytes(N * HW * C, rng), g = random_bytes(N * C, rng);
    std::vector<uint8_t> out(N * HW * C + kCanary, kCanaryByte);
    const double s = 0.02, gs = 1.0 / 255, ys = 0.03;
    const int32_t z = 128, gz = 0, yz = 110;
    q8_mul_channel_gate(x.data(), N, HW, C, s, z, g.data(), gs, gz, ys, yz, out.data());
    const float f = static_cast<float>(s * gs / ys);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t p = 0; p < HW; ++p)
        for (int64_t c = 0; c < C; ++c) {
          volatile float gate = (static_cast<float>(g[n * C + c]) - static_cast<float>(gz)) * f;
          volatile float v = (static_cast<float>(x[(n * HW + p) * C + c]) - static_cast<float>(z)) * gate;
          ASSERT_EQ(out[(n * HW + p) * C + c], ref_requant(v, yz)) << n << "," << p << "," << c;
        }
    expect_canary(out, N * HW * C);
  }
}

TEST(Q8Codec, Im2col) {
  std::mt19937 rng(6);
  struct G { int64_t N, H, W, C, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr; };
  for (const G& g : {G{1, 16, 16, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, G{2, 9, 7, 5, 3, 2, 1, 2, 1, 1, 0, 2, 1, 0},
                     G{1, 11, 10, 4, 3, 3, 2, 1, 2, 2, 2, 2, 2, 2}, G{3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}}) {
    const int64_t OH = q8_im2col_out_size(g.H, g.kh, g.sh, g.dh, g.pt, g.pb);
    const int64_t OW = q8_im2col_out_size(g.W, g.kw, g.sw, g.dw, g.pl, g.pr);
    const int64_t K = g.C * g.kh * g.kw;
    auto x = random_bytes(g.N * g.H * g.W * g.C, rng);
    std::vector<uint8_t> out(g.N * OH * OW * K + kCanary, kCanaryByte);
    q8_im2col(x.data(), g.N, g.H, g.W, g.C, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pb, g.pl, g.pr, 77,
              out.data());
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow)
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t ih = oh * g.sh - g.pt + i * g.dh, iw = ow * g.sw - g.pl + j * g.dw;
                const bool inside = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
                const uint8_t want = inside ? x[((n * g.H + ih) * g.W + iw) * g.C + c] : 77;
                ASSERT_EQ(out[((n * OH + oh) * OW + ow) * K + c * g.kh * g.kw + i * g.kw + j], want);
              }
    expect_canary(out, g.N * OH * OW * K);
  }
  EXPECT_THROW(q8_im2col_out_size(2, 5, 1, 1, 0, 1), std::invalid_argument);
}
