// Every compiled stem kernel (kernels/q8-stem: input quantization rows, im2col rows) against
// plain references (std::nearbyint rounds half to even; the gather written out), canary bytes
// after every row; inputs sized exactly so ASan sees any read past them. Plus the threaded
// op-level passes (q8_codec_op.h) at 2 threads against 1.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/q8-stem/q8_stem_kernels.h"
#include "ops/q8_codec_op.h"

using namespace mk;

namespace {

constexpr int64_t kCanary = 32;
constexpr uint8_t kCanaryByte = 0xA5;

uint8_t ref_quantize(float x, float s, int32_t zp) {
  volatile float q = x / s;  // rounded to fp32 on its own, as torch divides
  float r = std::nearbyint(q) + static_cast<float>(zp);
  if (std::isnan(r) || r < 0.f) r = 0.f;
  if (r > 255.f) r = 255.f;
  return static_cast<uint8_t>(r);
}

std::vector<uint8_t> random_bytes(int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (auto& b : v) b = static_cast<uint8_t>(rng() & 255);
  return v;
}

}  // namespace

TEST(Q8Stem, QuantizeRowEveryKernel) {
  for (const Q8StemKernel& k : kQ8StemKernels) {
    if (!isa_supported(k.isa)) continue;
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.f, 3.f);
    for (int64_t C : {1, 3, 4, 5})
      for (int64_t W : {1, 7, 8, 29, 64}) {
        const float s = 0.0173f;
        const int32_t zp = static_cast<int32_t>(rng() % 256);
        const int64_t sC = W + 3;  // channel rows apart, as in a sliced NCHW tensor
        std::vector<float> x(static_cast<size_t>(sC * (C - 1) + W));
        for (size_t i = 0; i < x.size(); ++i) x[i] = i < 16 ? (static_cast<float>(i) - 8.f + 0.5f) * s : nd(rng);
        if (x.size() > 20) {
          x[17] = 1e30f;
          x[18] = -1e30f;
          x[19] = std::nanf("");
          x[20] = -0.f;
        }
        std::vector<uint8_t> out(W * C + kCanary, kCanaryByte);
        k.quantize_row(x.data(), C, W, sC, s, zp, out.data());
        for (int64_t w = 0; w < W; ++w)
          for (int64_t c = 0; c < C; ++c)
            ASSERT_EQ(out[w * C + c], ref_quantize(x[c * sC + w], s, zp))
                << k.name << " C=" << C << " W=" << W << " w=" << w << " c=" << c;
        for (int64_t i = W * C; i < W * C + kCanary; ++i) ASSERT_EQ(out[i], kCanaryByte) << k.name;
      }
  }
}

TEST(Q8Stem, Im2colRowEveryKernel) {
  struct G { int64_t N, H, W, C, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr; };
  const G geoms[] = {
      {1, 32, 32, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},   // the stem (K = 27, 16-byte loads)
      {2, 13, 11, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   // stride 1, the last row ends the buffer
      {1, 15, 19, 2, 3, 3, 2, 1, 2, 1, 0, 2, 1, 0},   // K = 18, row dilation
      {1, 12, 9, 4, 2, 3, 1, 2, 1, 1, 1, 0, 2, 1},    // K = 24, C = 4
      {1, 30, 30, 1, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2},   // K = 25
      {1, 13, 11, 3, 3, 3, 2, 2, 1, 2, 1, 1, 1, 1},   // column dilation: scalar gather
      {1, 6, 6, 8, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},     // K = 8: scalar gather
      {1, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},     // rows shorter than one load
  };
  for (const Q8StemKernel& k : kQ8StemKernels) {
    if (!isa_supported(k.isa)) continue;
    std::mt19937 rng(7);
    for (const G& g : geoms) {
      const int64_t OH = q8_im2col_out_size(g.H, g.kh, g.sh, g.dh, g.pt, g.pb);
      const int64_t OW = q8_im2col_out_size(g.W, g.kw, g.sw, g.dw, g.pl, g.pr);
      const Q8Im2colParams p{g.N, g.H, g.W, g.C, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, OH, OW, 77};
      const int64_t K = p.K();
      const auto x = random_bytes(g.N * g.H * g.W * g.C, rng);
      for (int64_t n = 0; n < g.N; ++n)
        for (int64_t oh = 0; oh < OH; ++oh) {
          std::vector<uint8_t> out(OW * K + kCanary, kCanaryByte);
          k.im2col_row(p, x.data(), n, oh, out.data());
          for (int64_t ow = 0; ow < OW; ++ow)
            for (int64_t c = 0; c < g.C; ++c)
              for (int64_t i = 0; i < g.kh; ++i)
                for (int64_t j = 0; j < g.kw; ++j) {
                  const int64_t ih = oh * g.sh - g.pt + i * g.dh, iw = ow * g.sw - g.pl + j * g.dw;
                  const bool inside = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
                  const uint8_t want = inside ? x[((n * g.H + ih) * g.W + iw) * g.C + c] : 77;
                  ASSERT_EQ(out[ow * K + c * g.kh * g.kw + i * g.kw + j], want)
                      << k.name << " K=" << K << " n=" << n << " oh=" << oh << " ow=" << ow;
                }
          for (int64_t i = OW * K; i < OW * K + kCanary; ++i) ASSERT_EQ(out[i], kCanaryByte) << k.name;
        }
    }
  }
}

// The op-level passes split rows / channel ranges / pixels between threads above 64 KB: two
// threads give the bytes one thread gives (each is checked against its reference at one thread
// in test_q8_codec.cpp).
TEST(Q8Stem, ThreadedPassesEqualOneThread) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.f, 2.f);
  const int64_t N = 2, C = 3, H = 67, W = 93;
  std::vector<float> x(N * C * H * W);
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> q1(x.size()), q2(x.size());
  for (bool nchw : {true, false}) {
    const int64_t sN = C * H * W, sC = nchw ? H * W : 1, sH = nchw ? W : W * C, sW = nchw ? 1 : C;
    q8_quantize_f32(x.data(), N, C, H, W, sN, sC, sH, sW, 0.02, 117, q1.data(), 1);
    q8_quantize_f32(x.data(), N, C, H, W, sN, sC, sH, sW, 0.02, 117, q2.data(), 2);
    ASSERT_EQ(q1, q2);
  }
  const int64_t OH = q8_im2col_out_size(H, 3, 2, 1, 1, 1), OW = q8_im2col_out_size(W, 3, 2, 1, 1, 1);
  std::vector<uint8_t> c1(N * OH * OW * 27), c2(c1.size());
  q8_im2col(q1.data(), N, H, W, C, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 117, c1.data(), 1);
  q8_im2col(q1.data(), N, H, W, C, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 117, c2.data(), 2);
  ASSERT_EQ(c1, c2);
  const int64_t HW = 29 * 31, CC = 150;
  const auto a = random_bytes(N * HW * CC, rng);
  const auto g = random_bytes(N * CC, rng);
  std::vector<uint8_t> p1(N * CC), p2(N * CC), m1(a.size()), m2(a.size());
  q8_global_avgpool(a.data(), N, HW, CC, 0.03, 120, 0.02, 7, p1.data(), 1);
  q8_global_avgpool(a.data(), N, HW, CC, 0.03, 120, 0.02, 7, p2.data(), 2);
  ASSERT_EQ(p1, p2);
  q8_mul_channel_gate(a.data(), N, HW, CC, 0.03, 120, g.data(), 1 / 255., 0, 0.04, 100, m1.data(), 1);
  q8_mul_channel_gate(a.data(), N, HW, CC, 0.03, 120, g.data(), 1 / 255., 0, 0.04, 100, m2.data(), 2);
  ASSERT_EQ(m1, m2);
}
