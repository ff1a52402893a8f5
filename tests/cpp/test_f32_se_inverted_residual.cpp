// The fused fp32 inverted residual with squeeze-excitation at every supported ISA level against
// an fp64 plain-loop evaluation of the unfused block (expand -> depthwise -> mean -> fc1 -> act
// -> fc2 -> gate -> scale -> project -> + x) written here from the torch weight layouts. Odd
// sizes, stride 1 and 2, kernel 3 and 5, t == 1, residuals, both gates, batch 1 and 3, forced
// band heights and 1-3 threads; the output sits between canary zones; bad params throw.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "f32_reference.h"
#include "kernels/f32-dwconv/f32_dwconv.h"
#include "kernels/f32-gemm/f32_gemm.h"
#include "ops/f32_se_inverted_residual_op.h"

using namespace mk;

namespace {

using mktest::act_ref;

struct SEBlock {
  F32SEInvertedResidualParams p;
  // torch layouts: [Chid][Cin], [Chid][K][K], [Cout][Chid], fc1 [Csq][Chid], fc2 [Chid][Csq]
  std::vector<float> x, we, be, wd, bd, wp, bp, w1, b1, w2, b2;
  std::vector<float> pe, pd, pp, p1, p2;  // packs
};

std::vector<float> gemm_pack(const std::vector<float>& w, const std::vector<float>& b, int64_t k,
                             int64_t n) {
  std::vector<float> p(f32_gemm_packed_size(k, n));
  f32_gemm_pack(w.data(), b.data(), k, n, p.data());
  return p;
}

SEBlock make_block(const F32SEInvertedResidualParams& sp, std::mt19937& rng) {
  SEBlock b{};
  b.p = sp;
  const F32InvertedResidualParams& p = sp.ir;
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  auto fill = [&](std::vector<float>& v, int64_t n, float scale) {
    v.resize(n);
    for (float& f : v) f = dist(rng) * scale;
  };
  fill(b.x, p.N * p.H * p.W * p.Cin, 2.f);
  fill(b.we, p.Chid * p.Cin, 2.f / std::sqrt(double(p.Cin)));
  fill(b.be, p.Chid, 1.f);
  fill(b.wd, p.Chid * p.K * p.K, 1.f);
  fill(b.bd, p.Chid, 1.f);
  fill(b.wp, p.Cout * p.Chid, 2.f / std::sqrt(double(p.Chid)));
  fill(b.bp, p.Cout, 1.f);
  fill(b.w1, sp.Csq * p.Chid, 2.f / std::sqrt(double(p.Chid)));
  fill(b.b1, sp.Csq, 1.f);
  fill(b.w2, p.Chid * sp.Csq, 4.f / std::sqrt(double(sp.Csq)));  // gates across (0, 1)
  fill(b.b2, p.Chid, 2.f);
  if (p.expand) b.pe = gemm_pack(b.we, b.be, p.Cin, p.Chid);
  b.pd.resize(f32_dwconv_packed_size(p.Chid, p.K, p.K));
  f32_dwconv_pack(b.wd.data(), b.bd.data(), p.Chid, p.K, p.K, b.pd.data());
  b.pp = gemm_pack(b.wp, b.bp, p.Chid, p.Cout);
  b.p1 = gemm_pack(b.w1, b.b1, p.Chid, sp.Csq);
  b.p2 = gemm_pack(b.w2, b.b2, sp.Csq, p.Chid);
  return b;
}

double gate_ref(double v, SeGate g) {
  if (g == SeGate::sigmoid) return 1.0 / (1.0 + std::exp(-v));
  return std::fmin(std::fmax(v + 3.0, 0.0), 6.0) / 6.0;
}

std::vector<double> reference(const SEBlock& b) {
  const F32InvertedResidualParams& p = b.p.ir;
  const int64_t OH = p.OH(), OW = p.OW(), C = p.Chid, Q = b.p.Csq;
  std::vector<double> e(p.H * p.W * C), d(OH * OW * C), out(p.N * OH * OW * p.Cout);
  for (int64_t n = 0; n < p.N; ++n) {
    const float* xn = b.x.data() + n * p.H * p.W * p.Cin;
    for (int64_t i = 0; i < p.H * p.W; ++i)
      for (int64_t c = 0; c < C; ++c) {
        if (!p.expand) {
          e[i * C + c] = xn[i * p.Cin + c];
          continue;
        }
        double acc = b.be[c];
        for (int64_t k = 0; k < p.Cin; ++k) acc += double(xn[i * p.Cin + k]) * b.we[c * p.Cin + k];
        e[i * C + c] = act_ref(acc, p.act_expand);
      }
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t c = 0; c < C; ++c) {
          double acc = b.bd[c];
          for (int64_t kh = 0; kh < p.K; ++kh)
            for (int64_t kw = 0; kw < p.K; ++kw) {
              const int64_t ih = oh * p.S - p.PT + kh, iw = ow * p.S - p.PL + kw;
              if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
              acc += e[(ih * p.W + iw) * C + c] * b.wd[(c * p.K + kh) * p.K + kw];
            }
          d[(oh * OW + ow) * C + c] = act_ref(acc, p.act_dw);
        }
    // squeeze-excitation
    std::vector<double> mean(C, 0.0), sq(Q), s(C);
    for (int64_t i = 0; i < OH * OW; ++i)
      for (int64_t c = 0; c < C; ++c) mean[c] += d[i * C + c] / double(OH * OW);
    for (int64_t q = 0; q < Q; ++q) {
      double acc = b.b1[q];
      for (int64_t c = 0; c < C; ++c) acc += mean[c] * b.w1[q * C + c];
      sq[q] = act_ref(acc, b.p.act_se);
    }
    for (int64_t c = 0; c < C; ++c) {
      double acc = b.b2[c];
      for (int64_t q = 0; q < Q; ++q) acc += sq[q] * b.w2[c * Q + q];
      s[c] = gate_ref(acc, b.p.gate);
    }
    for (int64_t i = 0; i < OH * OW; ++i)
      for (int64_t o = 0; o < p.Cout; ++o) {
        double acc = b.bp[o];
        for (int64_t c = 0; c < C; ++c) acc += d[i * C + c] * s[c] * b.wp[o * C + c];
        acc = act_ref(acc, p.act_project);
        if (p.residual) acc += xn[i * p.Cin + o];
        out[(n * OH * OW + i) * p.Cout + o] = acc;
      }
  }
  return out;
}

std::string describe(const F32SEInvertedResidualParams& sp) {
  const F32InvertedResidualParams& p = sp.ir;
  char buf[240];
  std::snprintf(buf, sizeof buf,
                "N%ld %ldx%ld %ld->%ld(se %ld)->%ld k%ld s%ld exp%d res%d act(%d,%d,%d,se %d) gate%d band%ld",
                (long)p.N, (long)p.H, (long)p.W, (long)p.Cin, (long)p.Chid, (long)sp.Csq, (long)p.Cout,
                (long)p.K, (long)p.S, (int)p.expand, (int)p.residual, (int)p.act_expand,
                (int)p.act_dw, (int)p.act_project, (int)sp.act_se, (int)sp.gate, (long)p.band_rows);
  return buf;
}

constexpr int64_t kCanary = 64;
constexpr float kCanaryValue = -12345.f;

float* run(const SEBlock& b, const F32SEInvertedResidualParams& p, std::vector<float>& out, int nt) {
  float* o = out.data() + kCanary;
  f32_se_inverted_residual_run(p, b.x.data(), b.pe.data(), b.pe.size(), b.pd.data(), b.pd.size(),
                               b.pp.data(), b.pp.size(), b.p1.data(), b.p1.size(), b.p2.data(),
                               b.p2.size(), o, nt);
  return o;
}

void check(const SEBlock& b, std::initializer_list<int64_t> bands, std::initializer_list<int> threads) {
  const std::vector<double> ref = reference(b);
  const int64_t total = static_cast<int64_t>(ref.size());
  const Isa saved = active_isa();
  for (Isa isa : supported_isas()) {
    set_isa(isa_name(isa));
    for (int64_t band : bands)
      for (int nt : threads) {
        F32SEInvertedResidualParams p = b.p;
        p.ir.band_rows = band;
        std::vector<float> out(total + 2 * kCanary, kCanaryValue);
        const float* o = run(b, p, out, nt);
        const std::string where = std::string(isa_name(isa)) + " threads " + std::to_string(nt) + ", " + describe(p);
        for (int64_t i = 0; i < kCanary; ++i) {
          ASSERT_EQ(out[i], kCanaryValue) << "wrote before the output, " << where;
          ASSERT_EQ(out[kCanary + total + i], kCanaryValue) << "wrote past the output, " << where;
        }
        for (int64_t i = 0; i < total; ++i)
          ASSERT_NEAR(o[i], ref[i], 1e-4 * (1.0 + std::fabs(ref[i]))) << "at " << i << ", " << where;
      }
  }
  set_isa(isa_name(saved));
}

F32SEInvertedResidualParams se_block(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t chid,
                                     int64_t cout, int64_t s, int64_t k, Activation a,
                                     SeGate gate = SeGate::hardsigmoid) {
  const int64_t pad = k / 2;
  const int64_t csq = std::max<int64_t>(1, chid / 4);
  return {{n, h, w, cin, chid, cout, k, s, pad, pad, pad, pad, chid != cin, a, a, Activation::none,
           s == 1 && cin == cout, 0},
          csq, Activation::relu, gate};
}

}  // namespace

TEST(F32SEInvertedResidual, MobileNetV3SEBlockShapesSmall) {
  std::mt19937 rng(31);
  // (Cin, Chid, Cout, stride, k, hardswish) of MobileNetV3-Large's and -Small's SE blocks.
  const int64_t blocks[][6] = {{24, 72, 40, 2, 5, 0},   {40, 120, 40, 1, 5, 0},  {80, 480, 112, 1, 3, 1},
                               {112, 672, 112, 1, 3, 1}, {112, 672, 160, 2, 5, 1}, {160, 960, 160, 1, 5, 1},
                               {16, 16, 16, 2, 3, 0},   {48, 144, 48, 1, 5, 1}};
  int i = 0;
  for (const auto& bl : blocks) {
    const int64_t hw = 3 + 2 * (i++ % 4);  // 3, 5, 7, 9
    const Activation a = bl[5] ? Activation::hardswish : Activation::relu;
    check(make_block(se_block(i % 2 ? 1 : 3, hw, hw + 2, bl[0], bl[1], bl[2], bl[3], bl[4], a), rng),
          {0, 1}, {1, 2});
    if (HasFatalFailure()) return;
  }
}

TEST(F32SEInvertedResidual, OddSizesStridesKernelsGates) {
  std::mt19937 rng(32);
  int i = 0;
  for (int64_t h : {1, 2, 5, 17})
    for (int64_t w : {1, 4, 11})
      for (int64_t s : {1, 2})
        for (int64_t t : {1, 3}) {
          ++i;
          const int64_t cin = 1 + (i * 7) % 19, cout = (i % 3 == 0) ? cin : 1 + (i * 5) % 23;
          const int64_t k = i % 2 ? 3 : 5;
          F32SEInvertedResidualParams p =
              se_block(i % 2 ? 1 : 3, h, w, cin, cin * t, cout, s, k, static_cast<Activation>(i % 4),
                       i % 3 == 1 ? SeGate::sigmoid : SeGate::hardsigmoid);
          p.act_se = static_cast<Activation>((i / 4) % 4);
          p.ir.act_project = static_cast<Activation>((i / 2) % 4);
          check(make_block(p, rng), {0, 1, 2}, {1, 3});
          if (HasFatalFailure()) return;
        }
}

TEST(F32SEInvertedResidual, DeterministicAndRepeatable) {
  std::mt19937 rng(33);
  const SEBlock b = make_block(se_block(3, 13, 9, 24, 72, 24, 1, 5, Activation::hardswish), rng);
  const int64_t total = 3 * 13 * 9 * 24;
  for (int nt : {1, 2}) {
    std::vector<float> a(total + 2 * kCanary), c(total + 2 * kCanary);
    run(b, b.p, a, nt);
    run(b, b.p, c, nt);  // buffers reused: the same bits
    ASSERT_EQ(a, c);
  }
}

TEST(F32SEInvertedResidual, ThreadsSplitHiddenChannelsOnSmallImages) {
  // OH <= 7 with a batch that does not spread over the threads (N = 1, 3 on 2 or 3 threads):
  // pass 1 splits the hidden channels (ragged last panels, t == 1 reading x, stride 2, 3x3 and
  // 5x5, forced bands), pass 3 takes equal pixel ranges; OH 13 and 14 split rows. Against the
  // fp64 reference, and fp32-close to one thread (each channel's sums add in the same order;
  // only the kernels' channel and row ranges differ).
  std::mt19937 rng(34);
  struct S { int64_t n, h, w, cin, chid, cout, s, k; };
  int i = 0;
  for (const S& c : {S{1, 7, 7, 40, 200, 40, 1, 5}, S{3, 14, 14, 24, 100, 32, 1, 3}, S{1, 13, 9, 16, 96, 16, 1, 5},
                     S{3, 14, 11, 32, 120, 48, 2, 5}, S{1, 5, 7, 112, 112, 112, 1, 3}, S{1, 7, 6, 40, 70, 40, 1, 3},
                     S{3, 3, 9, 16, 112, 24, 1, 3}, S{1, 14, 14, 40, 120, 40, 2, 5}}) {
    F32SEInvertedResidualParams p = se_block(c.n, c.h, c.w, c.cin, c.chid, c.cout, c.s, c.k,
                                             i % 2 ? Activation::hardswish : Activation::relu,
                                             i % 3 == 2 ? SeGate::sigmoid : SeGate::hardsigmoid);
    p.ir.act_project = static_cast<Activation>(i++ % 4);
    const SEBlock b = make_block(p, rng);
    check(b, {0, 1, 3}, {2, 3});
    if (HasFatalFailure()) return;
    const int64_t total = p.ir.N * p.ir.OH() * p.ir.OW() * p.ir.Cout;
    const Isa saved = active_isa();
    for (Isa isa : supported_isas()) {
      set_isa(isa_name(isa));
      std::vector<float> one(total + 2 * kCanary), many(total + 2 * kCanary);
      run(b, p, one, 1);
      for (int nt : {2, 3}) {
        run(b, p, many, nt);
        for (int64_t j = 0; j < total; ++j)
          ASSERT_NEAR(many[kCanary + j], one[kCanary + j], 1e-5 * (1.0 + std::fabs(one[kCanary + j])))
              << "at " << j << ", " << isa_name(isa) << " threads " << nt << ", " << describe(p);
      }
    }
    set_isa(isa_name(saved));
  }
}

TEST(F32SEInvertedResidual, ThreadsProjectRowSplitInCappedPixelChunks) {
  // Row-split images (pass 1 takes bands) whose ~4-per-thread pixel chunks would exceed the
  // scale-and-project chunk (kScaleChunkFloats / hidden channels): pass 3 runs more, smaller
  // chunks. A batch of 3 at 14x14 with 672 hidden channels (chunks of 48 pixels instead of 80),
  // and a 9x11 image with 960, on 2 and 3 threads, against fp64 and one thread.
  std::mt19937 rng(35);
  for (const F32SEInvertedResidualParams& p :
       {se_block(3, 14, 14, 32, 672, 32, 1, 3, Activation::hardswish),
        se_block(1, 9, 11, 40, 960, 48, 1, 5, Activation::relu, SeGate::sigmoid)}) {
    const SEBlock b = make_block(p, rng);
    check(b, {0}, {2, 3});
    if (HasFatalFailure()) return;
    const int64_t total = p.ir.N * p.ir.OH() * p.ir.OW() * p.ir.Cout;
    std::vector<float> one(total + 2 * kCanary), many(total + 2 * kCanary);
    run(b, p, one, 1);
    for (int nt : {2, 3}) {
      run(b, p, many, nt);
      for (int64_t j = 0; j < total; ++j)
        ASSERT_EQ(many[kCanary + j], one[kCanary + j]) << "at " << j << ", threads " << nt << ", " << describe(p);
    }
  }
}

TEST(F32SEInvertedResidual, BadParamsAndPacksThrow) {
  std::mt19937 rng(34);
  const SEBlock b = make_block(se_block(1, 5, 5, 8, 24, 8, 1, 3, Activation::relu), rng);
  std::vector<float> out(5 * 5 * 8 + 2 * kCanary);
  auto expect_throw = [&](F32SEInvertedResidualParams p, const char* what) {
    EXPECT_THROW(run(b, p, out, 1), std::invalid_argument) << what;
  };
  F32SEInvertedResidualParams p = b.p;
  p.Csq = 0;
  expect_throw(p, "zero squeeze channels");
  p = b.p;
  p.Csq = b.p.Csq + 1;
  expect_throw(p, "fc packs for another squeeze width");
  p = b.p;
  p.gate = static_cast<SeGate>(7);
  expect_throw(p, "unknown gate");
  p = b.p;
  p.act_se = static_cast<Activation>(9);
  expect_throw(p, "unknown SE activation");
  p = b.p;
  p.ir.S = 2;
  expect_throw(p, "residual with stride 2");
  p = b.p;
  p.ir.Chid = 16;
  expect_throw(p, "packs for another hidden width");
  try {
    p = b.p;
    p.ir.K = 0;
    run(b, p, out, 1);
    FAIL() << "no throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("se_inverted_residual: ", 0), 0u) << e.what();
  }
  // fc1 and fc2 packs swapped
  EXPECT_THROW(f32_se_inverted_residual_run(b.p, b.x.data(), b.pe.data(), b.pe.size(), b.pd.data(),
                                            b.pd.size(), b.pp.data(), b.pp.size(), b.p2.data(),
                                            b.p2.size(), b.p1.data(), b.p1.size(), out.data(), 1),
               std::invalid_argument);
}
