// The fused inverted-residual op at every supported ISA level against an fp64 evaluation of
// the unfused block (expand -> depthwise -> project -> + x) written here from the torch weight
// layouts. Covers odd sizes, stride 1 and 2, t == 1 (no expand), residuals, every activation,
// batch > 1, forced band heights (1 row, 2 rows, automatic), forced channel tiles (ragged last
// tiles included) and 1-3 threads. The output sits between canary zones.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/f32-dwconv/f32_dwconv.h"
#include "kernels/f32-gemm/f32_gemm.h"
#include "ops/f32_inverted_residual_op.h"
#include "ops/ir_bands.h"
#include "f32_reference.h"

using namespace mk;

namespace {

using mktest::act_ref;

struct Block {
  F32InvertedResidualParams p;
  std::vector<float> x, we, be, wd, bd, wp, bp;  // torch layouts: [Chid][Cin], [Chid][K][K], [Cout][Chid]
  std::vector<float> pe, pd, pp;                 // packs
};

Block make_block(const F32InvertedResidualParams& p, std::mt19937& rng) {
  Block b{p, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  auto fill = [&](std::vector<float>& v, int64_t n, float scale) {
    v.resize(n);
    for (float& f : v) f = dist(rng) * scale;
  };
  fill(b.x, p.N * p.H * p.W * p.Cin, 2.f);
  // Scales keep every stage's values in the range where relu6 / hardswish clip sometimes.
  fill(b.we, p.Chid * p.Cin, 2.f / std::sqrt(double(p.Cin)));
  fill(b.be, p.Chid, 1.f);
  fill(b.wd, p.Chid * p.K * p.K, 1.f);
  fill(b.bd, p.Chid, 1.f);
  fill(b.wp, p.Cout * p.Chid, 2.f / std::sqrt(double(p.Chid)));
  fill(b.bp, p.Cout, 1.f);
  if (p.expand) {
    b.pe.resize(f32_gemm_packed_size(p.Cin, p.Chid));
    f32_gemm_pack(b.we.data(), b.be.data(), p.Cin, p.Chid, b.pe.data());
  }
  b.pd.resize(f32_dwconv_packed_size(p.Chid, p.K, p.K));
  f32_dwconv_pack(b.wd.data(), b.bd.data(), p.Chid, p.K, p.K, b.pd.data());
  b.pp.resize(f32_gemm_packed_size(p.Chid, p.Cout));
  f32_gemm_pack(b.wp.data(), b.bp.data(), p.Chid, p.Cout, b.pp.data());
  return b;
}

std::vector<double> reference(const Block& b) {
  const F32InvertedResidualParams& p = b.p;
  const int64_t OH = p.OH(), OW = p.OW();
  std::vector<double> e(p.H * p.W * p.Chid), d(OH * OW * p.Chid), out(p.N * OH * OW * p.Cout);
  for (int64_t n = 0; n < p.N; ++n) {
    const float* xn = b.x.data() + n * p.H * p.W * p.Cin;
    for (int64_t i = 0; i < p.H * p.W; ++i)
      for (int64_t c = 0; c < p.Chid; ++c) {
        if (!p.expand) { e[i * p.Chid + c] = xn[i * p.Cin + c]; continue; }
        double acc = b.be[c];
        for (int64_t k = 0; k < p.Cin; ++k) acc += double(xn[i * p.Cin + k]) * b.we[c * p.Cin + k];
        e[i * p.Chid + c] = act_ref(acc, p.act_expand);
      }
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t c = 0; c < p.Chid; ++c) {
          double acc = b.bd[c];
          for (int64_t kh = 0; kh < p.K; ++kh)
            for (int64_t kw = 0; kw < p.K; ++kw) {
              const int64_t ih = oh * p.S - p.PT + kh, iw = ow * p.S - p.PL + kw;
              if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
              acc += e[(ih * p.W + iw) * p.Chid + c] * b.wd[(c * p.K + kh) * p.K + kw];
            }
          d[(oh * OW + ow) * p.Chid + c] = act_ref(acc, p.act_dw);
        }
    for (int64_t i = 0; i < OH * OW; ++i)
      for (int64_t o = 0; o < p.Cout; ++o) {
        double acc = b.bp[o];
        for (int64_t c = 0; c < p.Chid; ++c) acc += d[i * p.Chid + c] * b.wp[o * p.Chid + c];
        acc = act_ref(acc, p.act_project);
        if (p.residual) acc += xn[i * p.Cin + o];
        out[(n * OH * OW + i) * p.Cout + o] = acc;
      }
  }
  return out;
}

std::string describe(const F32InvertedResidualParams& p) {
  char buf[240];
  std::snprintf(buf, sizeof buf, "N%ld %ldx%ld %ld->%ld->%ld k%ld s%ld pad(%ld,%ld,%ld,%ld) exp%d res%d act(%d,%d,%d) band%ld tile%ld",
                (long)p.N, (long)p.H, (long)p.W, (long)p.Cin, (long)p.Chid, (long)p.Cout, (long)p.K, (long)p.S,
                (long)p.PT, (long)p.PB, (long)p.PL, (long)p.PR, (int)p.expand, (int)p.residual,
                (int)p.act_expand, (int)p.act_dw, (int)p.act_project, (long)p.band_rows,
                (long)p.channel_tile);
  return buf;
}

constexpr int64_t kCanary = 64;
constexpr float kCanaryValue = -12345.f;

// Runs `b` at every supported level with each band height, channel tile and thread count given.
void check(const Block& b, std::initializer_list<int64_t> bands, std::initializer_list<int> threads,
           std::initializer_list<int64_t> tiles = {0}) {
  const std::vector<double> ref = reference(b);
  const int64_t total = static_cast<int64_t>(ref.size());
  const Isa saved = active_isa();
  for (Isa isa : supported_isas()) {
    set_isa(isa_name(isa));
    for (int64_t band : bands)
      for (int64_t tile : tiles)
      for (int nt : threads) {
        F32InvertedResidualParams p = b.p;
        p.band_rows = band;
        p.channel_tile = tile;
        std::vector<float> out(total + 2 * kCanary, kCanaryValue);
        float* o = out.data() + kCanary;
        f32_inverted_residual_run(p, b.x.data(), b.pe.data(), b.pe.size(), b.pd.data(), b.pd.size(),
                                  b.pp.data(), b.pp.size(), o, nt);
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

F32InvertedResidualParams block(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t t, int64_t cout,
                                int64_t s, Activation a = Activation::relu6, int64_t k = 3) {
  const int64_t pad = k / 2;
  return {n, h, w, cin, cin * t, cout, k, s, pad, pad, pad, pad, t != 1, a, a, Activation::none,
          s == 1 && cin == cout, 0};
}

}  // namespace

TEST(F32InvertedResidual, MobileNetV2BlockShapesSmall) {
  std::mt19937 rng(21);
  // (Cin, t, Cout, stride) of MobileNetV2's 17 blocks, distinct ones, at small odd sizes.
  const int64_t blocks[][4] = {{32, 1, 16, 1}, {16, 6, 24, 2}, {24, 6, 24, 1}, {24, 6, 32, 2},
                               {32, 6, 32, 1}, {32, 6, 64, 2}, {64, 6, 64, 1}, {64, 6, 96, 1},
                               {96, 6, 96, 1}, {96, 6, 160, 2}, {160, 6, 160, 1}, {160, 6, 320, 1}};
  int i = 0;
  for (const auto& bl : blocks) {
    const int64_t hw = 3 + 2 * (i++ % 4);  // 3, 5, 7, 9
    check(make_block(block(1, hw, hw + 2, bl[0], bl[1], bl[2], bl[3]), rng), {0, 1}, {1, 2});
    if (HasFatalFailure()) return;
  }
}

TEST(F32InvertedResidual, OddSizesStridesAndExpansions) {
  std::mt19937 rng(22);
  int i = 0;
  for (int64_t h : {1, 2, 5, 8, 17})
    for (int64_t w : {1, 4, 11})
      for (int64_t s : {1, 2})
        for (int64_t t : {1, 4, 6}) {
          ++i;
          const int64_t cin = 1 + (i * 7) % 19, cout = (i % 3 == 0) ? cin : 1 + (i * 5) % 23;
          check(make_block(block(i % 2 ? 1 : 3, h, w, cin, t, cout, s, static_cast<Activation>(i % 4)), rng),
                {0, 1, 2}, {1, 3});
          if (HasFatalFailure()) return;
        }
}

TEST(F32InvertedResidual, KernelSizesPaddingAndActivations) {
  std::mt19937 rng(23);
  for (int64_t k : {1, 3, 5, 7})
    for (int64_t s : {1, 2}) {
      F32InvertedResidualParams p = block(2, 9, 10, 8, 4, 8, s, Activation::hardswish, k);
      p.act_dw = Activation::relu;
      p.act_project = Activation::relu6;  // MobileNetV3 style: any activation per stage
      check(make_block(p, rng), {0, 3}, {1, 2});
      if (k > 1) {  // asymmetric padding (bottom/right smaller)
        p.PB = 0;
        p.PR = k - 1;
        p.residual = false;
        check(make_block(p, rng), {1, 0}, {2});
      }
      if (HasFatalFailure()) return;
    }
}

TEST(F32InvertedResidual, ChannelTiles) {
  std::mt19937 rng(25);
  // Tiles of 16..48 over hidden widths that are and are not multiples of them (ragged last
  // tiles, a last tile narrower than a vector), with halo rows kept across bands (stride 1 and
  // 2, bands of 1, 2, 3 rows), residual and not, every activation in the project stage.
  int i = 0;
  for (const auto& s : {std::array<int64_t, 6>{9, 7, 8, 6, 8, 1}, {10, 5, 5, 7, 9, 2}, {6, 11, 13, 4, 13, 1},
                        {5, 4, 3, 6, 7, 2}, {8, 8, 16, 6, 16, 1}, {4, 9, 17, 3, 5, 1}}) {
    F32InvertedResidualParams p = block(1 + i % 3, s[0], s[1], s[2], s[3], s[4], s[5], static_cast<Activation>(i % 4));
    p.act_project = static_cast<Activation>((i + 1) % 4);
    ++i;
    check(make_block(p, rng), {1, 2, 3}, {1, 2}, {16, 32, 48});
    if (HasFatalFailure()) return;
  }
  // A MobileNetV2 28x28 stride-1 block, where the automatic choice tiles (192 = 2 x 96).
  const F32InvertedResidualParams b5 = block(1, 28, 28, 32, 6, 32, 1);
  EXPECT_LT(f32_inverted_residual_channel_tile(b5), b5.Chid);
  check(make_block(b5, rng), {0}, {1, 2}, {0, 64});
}

TEST(F32InvertedResidual, ThreadsSplitHiddenChannelsOnSmallImages) {
  // OH <= 7, a batch that does not spread over the threads (N = 1, 3): threads expand and
  // depthwise 32 hidden channels per item, then project (output columns, pixels) items. Ragged
  // hidden widths, every project activation, residual and not, stride 1 and 2, forced bands
  // and tiles (which then apply to one thread only), 2 and 3 threads.
  std::mt19937 rng(26);
  int i = 0;
  for (const auto& s : {std::array<int64_t, 6>{7, 7, 16, 6, 16, 1}, {14, 13, 12, 6, 20, 2}, {7, 5, 25, 4, 25, 1},
                        {9, 14, 20, 5, 20, 1}, {3, 3, 11, 6, 7, 1}}) {
    F32InvertedResidualParams p = block(i % 2 ? 3 : 1, s[0], s[1], s[2], s[3], s[4], s[5], Activation::relu6);
    p.act_project = static_cast<Activation>(i % 4);
    if (i == 4) p.act_project = Activation::hardswish;
    ++i;
    check(make_block(p, rng), {0, 2}, {2, 3}, {0, 16, 48});
    if (HasFatalFailure()) return;
  }
}

TEST(F32InvertedResidual, ThreadsAndBandsOnMobileNetRowCounts) {
  // The row counts of MobileNet maps (7, 14, 28) and odd ones around them (13, 15), batch 1 and
  // 3, 2 and 3 threads: row splits into pieces (13, 14, 15, 28 rows), channel splits (7 rows),
  // automatic and forced bands.
  std::mt19937 rng(27);
  struct S { int64_t n, h, w, cin, t, cout, s; };
  for (const S& c : {S{1, 14, 14, 16, 6, 16, 1}, S{3, 14, 14, 16, 6, 24, 1}, S{1, 7, 7, 24, 6, 24, 1},
                     S{3, 7, 7, 24, 4, 40, 1}, S{1, 13, 13, 16, 5, 16, 1}, S{1, 15, 9, 8, 6, 8, 1},
                     S{3, 15, 6, 8, 3, 12, 1}, S{1, 28, 28, 8, 6, 8, 1}, S{3, 27, 10, 8, 6, 16, 2},
                     S{1, 14, 14, 8, 2, 8, 1}}) {
    check(make_block(block(c.n, c.h, c.w, c.cin, c.t, c.cout, c.s), rng), {0, 5}, {2, 3});
    if (HasFatalFailure()) return;
  }
}

TEST(F32InvertedResidual, ThreadsGiveOneThreadsBits) {
  // Every split (row pieces with bands taken from others' backs, the small-image two-phase
  // split) leaves each output the sum one thread computes, at every level: bit-identical to one
  // thread, except where one thread tiles the hidden channels (H >= 28) and the split projects
  // the full width at once. Repeated runs: which thread takes which band varies from run to run.
  std::mt19937 rng(28);
  struct S { int64_t n, h, w, cin, t, cout, s, k; };
  const Isa saved = active_isa();
  for (const S& c : {S{1, 7, 7, 24, 6, 24, 1, 3}, S{3, 7, 7, 24, 4, 40, 1, 5}, S{1, 14, 14, 16, 6, 16, 1, 3},
                     S{1, 14, 13, 20, 5, 36, 2, 3}, S{3, 13, 11, 16, 6, 16, 1, 3}, S{1, 29, 17, 8, 6, 8, 1, 3},
                     S{2, 15, 9, 8, 6, 12, 2, 5}, S{1, 56, 12, 8, 1, 16, 1, 3}, S{1, 9, 9, 40, 6, 40, 1, 3}}) {
    const Block b = make_block(block(c.n, c.h, c.w, c.cin, c.t, c.cout, c.s, Activation::relu6, c.k), rng);
    const int64_t total = b.p.N * b.p.OH() * b.p.OW() * b.p.Cout;
    for (Isa isa : supported_isas()) {
      set_isa(isa_name(isa));
      std::vector<float> one(total), many(total);
      auto run = [&](std::vector<float>& o, int nt) {
        f32_inverted_residual_run(b.p, b.x.data(), b.pe.data(), b.pe.size(), b.pd.data(), b.pd.size(),
                                  b.pp.data(), b.pp.size(), o.data(), nt);
      };
      run(one, 1);
      for (int rep = 0; rep < 3; ++rep)
        for (int nt : {2, 3, 4}) {
          std::fill(many.begin(), many.end(), 0.f);
          run(many, nt);
          for (int64_t i = 0; i < total; ++i)
            ASSERT_EQ(many[i], one[i]) << "at " << i << ", " << isa_name(isa) << " threads " << nt << ", "
                                       << describe(b.p);
        }
    }
  }
  set_isa(isa_name(saved));
}

TEST(F32InvertedResidual, EvenBands) {
  // Equal bands within a run: 14 rows with up to 5 -> 5, 5, 4; 7 with up to 6 -> 4 + 3.
  EXPECT_EQ(irbands::even_band(5, 14), 5);
  EXPECT_EQ(irbands::even_band(6, 7), 4);
  EXPECT_EQ(irbands::even_band(4, 14), 4);
  EXPECT_EQ(irbands::even_band(16, 7), 7);
  EXPECT_EQ(irbands::even_band(1, 7), 1);
  EXPECT_EQ(irbands::even_band(3, 1), 1);
  EXPECT_EQ(irbands::even_band(0, 5), 1);
  EXPECT_EQ(irbands::even_band(13, 28), 10);  // 10, 10, 8
}

TEST(F32InvertedResidual, ScratchIsSmallerThanTheExpandedTensor) {
  // MobileNetV2 at 224: every block with H >= 28 (blocks 1-7) stays within 1/8.
  const F32InvertedResidualParams b2 = block(1, 112, 112, 16, 6, 24, 2);
  const F32InvertedResidualParams b4 = block(1, 56, 56, 24, 6, 24, 1);
  for (const auto& p : {block(1, 112, 112, 32, 1, 16, 1), b2, b4, block(1, 56, 56, 24, 6, 32, 2),
                        block(1, 28, 28, 32, 6, 32, 1), block(1, 28, 28, 32, 6, 64, 2)}) {
    const int64_t expanded = p.H * p.W * p.Chid * int64_t(sizeof(float));
    EXPECT_LE(f32_inverted_residual_scratch_bytes(p) * 8, expanded) << describe(p);
    EXPECT_GE(f32_inverted_residual_band_rows(p), 1);
  }
  // A forced band: (band - 1) * S + K expanded rows plus `band` depthwise rows.
  F32InvertedResidualParams p = b4;
  p.band_rows = 2;
  EXPECT_EQ(f32_inverted_residual_scratch_bytes(p), (4 + 2) * 56 * 144 * int64_t(sizeof(float)));
}

TEST(F32InvertedResidual, ValidationRejectsBadParams) {
  std::mt19937 rng(24);
  Block b = make_block(block(1, 6, 6, 8, 4, 8, 1), rng);
  float out[1024];
  auto run = [&](const F32InvertedResidualParams& p) {
    f32_inverted_residual_run(p, b.x.data(), b.pe.data(), b.pe.size(), b.pd.data(), b.pd.size(), b.pp.data(),
                              b.pp.size(), out, 1);
  };
  auto bad = [&](auto mutate) {
    F32InvertedResidualParams p = b.p;
    mutate(p);
    EXPECT_THROW(run(p), std::invalid_argument) << describe(p);
  };
  bad([](auto& p) { p.S = 2; });              // residual with stride 2
  bad([](auto& p) { p.PT = 3; });             // padding > K - 1
  bad([](auto& p) { p.expand = false; });     // Chid != Cin without expand
  bad([](auto& p) { p.Cout = 9; p.residual = false; });  // project pack is 32 -> 8
  bad([](auto& p) { p.Chid = 16; });          // expand / dw packs are for 32
  bad([](auto& p) { p.act_dw = static_cast<Activation>(7); });
  bad([](auto& p) { p.band_rows = -1; });
  bad([](auto& p) { p.channel_tile = -16; });
  bad([](auto& p) { p.channel_tile = 24; });  // not a multiple of 16
  bad([](auto& p) { p.H = 0; });
  EXPECT_THROW(f32_inverted_residual_run(b.p, b.x.data(), b.pd.data(), b.pd.size(), b.pd.data(), b.pd.size(),
                                         b.pp.data(), b.pp.size(), out, 1),
               std::invalid_argument);  // a depthwise pack where the expand pack belongs
}
