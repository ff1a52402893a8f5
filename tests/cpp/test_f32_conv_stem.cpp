// Every fp32 small-Cin conv kernel in the kernel list against an fp64 loop on the torch weight
// layout, over kernel sizes, strides, paddings, dilations, channel counts around the panel and
// vector widths, both input layouts (NCHW, NHWC through the strides) and split row ranges. The
// input is an exactly sized heap buffer (ASan flags any read outside it, e.g. at the padded
// edges) and the output lives between canary zones.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/f32-conv/f32_conv.h"
#include "kernels/f32-conv/f32_conv_kernels.h"
#include "ops/f32_conv_stem_op.h"
#include "f32_reference.h"

using namespace mk;

namespace {

constexpr int64_t kCanary = 64;
constexpr float kCanaryValue = -12345.f;

struct Case {
  int64_t n, cin, h, w, cout, kh, kw, s, pt, pb, pl, pr, d;
  bool nhwc;
  Activation act;
};

std::string describe(const Case& c) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "n%ld cin%ld %ldx%ld cout%ld k%ldx%ld s%ld pad(%ld,%ld,%ld,%ld) d%ld %s act%d",
                (long)c.n, (long)c.cin, (long)c.h, (long)c.w, (long)c.cout, (long)c.kh, (long)c.kw, (long)c.s,
                (long)c.pt, (long)c.pb, (long)c.pl, (long)c.pr, (long)c.d, c.nhwc ? "nhwc" : "nchw", (int)c.act);
  return buf;
}

F32ConvParams params_of(const Case& c) {
  const int64_t sn = c.cin * c.h * c.w;
  return {c.n, c.cin, c.h, c.w, c.cout, c.kh, c.kw, c.s, c.s, c.pt, c.pb, c.pl, c.pr, c.d, c.d,
          sn, c.nhwc ? 1 : c.h * c.w, c.nhwc ? c.w * c.cin : c.w, c.nhwc ? c.cin : 1, c.act};
}

void check(const Case& cs, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-2.f, 2.f);
  const F32ConvParams p = params_of(cs);
  const int64_t oh = p.oh(), ow = p.ow();
  std::vector<float> x(cs.n * cs.cin * cs.h * cs.w), w(cs.cout * cs.cin * cs.kh * cs.kw), b(cs.cout);
  for (auto* v : {&x, &w, &b})
    for (float& e : *v) e = dist(rng);
  std::vector<float> packed(f32_conv_packed_size(cs.cin, cs.cout, cs.kh, cs.kw));
  f32_conv_pack(w.data(), b.data(), cs.cin, cs.cout, cs.kh, cs.kw, packed.data());
  const int64_t total = cs.n * oh * ow * cs.cout;
  std::vector<double> ref(total), mag(total);
  for (int64_t n = 0; n < cs.n; ++n)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t co = 0; co < cs.cout; ++co) {
          double acc = b[co], m = std::fabs(b[co]);
          for (int64_t ci = 0; ci < cs.cin; ++ci)
            for (int64_t ky = 0; ky < cs.kh; ++ky)
              for (int64_t kx = 0; kx < cs.kw; ++kx) {
                const int64_t iy = oy * cs.s - cs.pt + ky * cs.d, ix = ox * cs.s - cs.pl + kx * cs.d;
                if (iy < 0 || iy >= cs.h || ix < 0 || ix >= cs.w) continue;
                const double xv = x[n * p.xs_n + ci * p.xs_c + iy * p.xs_h + ix * p.xs_w];
                const double wv = w[((co * cs.cin + ci) * cs.kh + ky) * cs.kw + kx];
                acc += xv * wv;
                m += std::fabs(xv * wv);
              }
          const int64_t i = ((n * oh + oy) * ow + ox) * cs.cout + co;
          ref[i] = mktest::act_ref(acc, cs.act);
          mag[i] = m;
        }
  const int64_t rows = cs.n * oh, mid = rows / 2;
  for (const F32ConvKernel& k : kF32ConvKernels) {
    if (!isa_supported(k.isa)) continue;  // reported by KernelsCovered
    std::vector<float> out(total + 2 * kCanary, kCanaryValue);
    float* o = out.data() + kCanary;
    // Two row ranges, as two threads of the op would run them.
    k.run(p, x.data(), f32_conv_pack_data(packed.data()), o, 0, mid);
    k.run(p, x.data(), f32_conv_pack_data(packed.data()), o, mid, rows);
    for (int64_t i = 0; i < kCanary; ++i) {
      ASSERT_EQ(out[i], kCanaryValue) << k.name << " wrote before y, " << describe(cs);
      ASSERT_EQ(out[kCanary + total + i], kCanaryValue) << k.name << " wrote past y, " << describe(cs);
    }
    for (int64_t i = 0; i < total; ++i) {
      const double tol = 1e-5 * (mag[i] + 1e-30) * (cs.act == Activation::hardswish ? 2.5 : 1.0);
      ASSERT_NEAR(o[i], ref[i], tol) << k.name << " at " << i << " (channel " << i % cs.cout << "), " << describe(cs);
    }
  }
}

}  // namespace

TEST(F32ConvStem, KernelsCovered) {
  for (const F32ConvKernel& k : kF32ConvKernels)
    std::printf("kernel %-18s %s\n", k.name, isa_supported(k.isa) ? "tested" : "NOT RUN: this CPU lacks it");
}

TEST(F32ConvStem, StemShapes) {
  std::mt19937 rng(21);
  // 3x3 stride 2 padding 1 on RGB: MobileNetV2 (32) / V3 (16) widths, odd sizes, batch 3.
  for (int64_t cout : {16, 32, 33, 7})
    for (int64_t hw : {1, 2, 7, 32, 33})
      for (bool nhwc : {false, true}) {
        check({hw == 7 ? 3 : 1, 3, hw, hw + 1, cout, 3, 3, 2, 1, 1, 1, 1, 1, nhwc,
               static_cast<Activation>((cout + hw) % 4)},
              rng);
        if (HasFatalFailure()) return;
      }
}

TEST(F32ConvStem, AnyKernelStridePaddingDilation) {
  std::mt19937 rng(22);
  std::uniform_int_distribution<int> u(0, 1 << 30);
  int done = 0;
  while (done < 150) {
    const int64_t k = 1 + u(rng) % 5, kw = 1 + u(rng) % 4, s = 1 + u(rng) % 3, d = 1 + u(rng) % 2;
    const int64_t cin = 1 + u(rng) % 5, cout = std::vector<int64_t>{1, 7, 16, 17, 32, 33}[u(rng) % 6];
    const int64_t h = 1 + u(rng) % 20, w = 1 + u(rng) % 20;
    const int64_t lim_h = d * (k - 1), lim_w = d * (kw - 1);
    const int64_t pt = lim_h ? u(rng) % (lim_h + 1) : 0, pb = lim_h ? u(rng) % (lim_h + 1) : 0;
    const int64_t pl = lim_w ? u(rng) % (lim_w + 1) : 0, pr = lim_w ? u(rng) % (lim_w + 1) : 0;
    if (h + pt + pb < lim_h + 1 || w + pl + pr < lim_w + 1) continue;
    check({1 + u(rng) % 2, cin, h, w, cout, k, kw, s, pt, pb, pl, pr, d, u(rng) % 2 == 0,
           static_cast<Activation>(u(rng) % 4)},
          rng);
    if (HasFatalFailure()) return;
    ++done;
  }
}

TEST(F32ConvStem, OpThreadsAndValidation) {
  std::mt19937 rng(23);
  const Case c{2, 3, 30, 29, 32, 3, 3, 2, 1, 1, 1, 1, 1, false, Activation::relu6};
  const F32ConvParams p = params_of(c);
  std::vector<float> x(2 * 3 * 30 * 29), w(32 * 27), b(32);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (auto* v : {&x, &w, &b})
    for (float& e : *v) e = dist(rng);
  std::vector<float> packed(f32_conv_packed_size(3, 32, 3, 3));
  f32_conv_pack(w.data(), b.data(), 3, 32, 3, 3, packed.data());
  const int64_t total = 2 * p.oh() * p.ow() * 32;
  std::vector<float> y1(total), y3(total);
  f32_conv_stem_run(p, x.data(), packed.data(), int64_t(packed.size()), y1.data(), 1);
  f32_conv_stem_run(p, x.data(), packed.data(), int64_t(packed.size()), y3.data(), 3);
  EXPECT_EQ(y1, y3);  // rows are independent: thread count never changes a bit
  F32ConvParams bad = p;
  bad.kh = 40;
  EXPECT_THROW(f32_conv_stem_validate(bad), std::invalid_argument);
  bad = p;
  bad.act = static_cast<Activation>(7);
  EXPECT_THROW(f32_conv_stem_validate(bad), std::invalid_argument);
  bad = p;
  bad.cout = 16;  // the pack is for 32
  EXPECT_THROW(f32_conv_stem_run(bad, x.data(), packed.data(), int64_t(packed.size()), y1.data(), 1),
               std::invalid_argument);
}
