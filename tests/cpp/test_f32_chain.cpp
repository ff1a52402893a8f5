// The fp32 layer chain at every supported ISA level: a chain of fused blocks (with and without
// squeeze-excitation), 1x1 and depthwise layers must give bit for bit what the same op-level run functions give when run
// one by one (it calls them), for 1-3 threads, batch 0/1/3, repeated runs (buffers reused),
// with the output between canaries and the input untouched; and every inconsistency is an
// std::invalid_argument when the step is added, leaving the chain usable.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/f32-dwconv/f32_dwconv.h"
#include "kernels/f32-gemm/f32_gemm.h"
#include "ops/f32_chain_op.h"
#include "ops/f32_conv1x1_op.h"
#include "ops/f32_dwconv_op.h"
#include "ops/f32_inverted_residual_op.h"
#include "ops/f32_se_inverted_residual_op.h"

using namespace mk;

namespace {

std::vector<float> random_vec(int64_t n, std::mt19937& rng, float scale) {
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = dist(rng) * scale;
  return v;
}

std::vector<float> gemm_pack(int64_t k, int64_t n, std::mt19937& rng) {
  const std::vector<float> w = random_vec(n * k, rng, 1.5f / std::sqrt(float(k)));
  const std::vector<float> b = random_vec(n, rng, 0.5f);
  std::vector<float> p(f32_gemm_packed_size(k, n));
  f32_gemm_pack(w.data(), b.data(), k, n, p.data());
  return p;
}

std::vector<float> dw_pack(int64_t c, int64_t k, std::mt19937& rng) {
  const std::vector<float> w = random_vec(c * k * k, rng, 0.5f);
  const std::vector<float> b = random_vec(c, rng, 0.5f);
  std::vector<float> p(f32_dwconv_packed_size(c, k, k));
  f32_dwconv_pack(w.data(), b.data(), c, k, k, p.data());
  return p;
}

// One step in two forms: added to a chain, and run alone into a fresh vector.
struct Layer {
  enum Kind { ir, pw, dw, se } kind;
  F32InvertedResidualParams ir_p{};  // N, H, W filled per input
  F32SEInvertedResidualParams se_p{};  // se: ir_p is unused, se_p.ir holds the block
  int64_t cout = 0, k = 3, s = 1, d = 1, pad = 1;
  Activation act = Activation::none;
  std::vector<float> p0, p1, p2, p3, p4;

  void add_to(F32Chain& ch) const {
    switch (kind) {
      case ir:
        ch.add_inverted_residual(ir_p, p0.data(), p0.size(), p1.data(), p1.size(), p2.data(), p2.size());
        break;
      case se:
        ch.add_se_inverted_residual(se_p, p0.data(), p0.size(), p1.data(), p1.size(), p2.data(), p2.size(),
                                    p3.data(), p3.size(), p4.data(), p4.size());
        break;
      case pw: ch.add_conv1x1(cout, act, p0.data(), p0.size()); break;
      case dw: ch.add_dwconv(cout, k, k, s, s, d, d, pad, pad, pad, pad, act, p0.data(), p0.size()); break;
    }
  }
  // x: NHWC `in`; returns the output and sets `in` to its shape.
  std::vector<float> run_alone(const std::vector<float>& x, F32ChainShape& in, int nt) const {
    std::vector<float> out;
    switch (kind) {
      case ir: {
        F32InvertedResidualParams p = ir_p;
        p.N = in.N, p.H = in.H, p.W = in.W;
        in = {in.N, p.OH(), p.OW(), p.Cout};
        out.resize(in.numel());
        f32_inverted_residual_run(p, x.data(), p0.data(), p0.size(), p1.data(), p1.size(), p2.data(),
                                  p2.size(), out.data(), nt);
        break;
      }
      case se: {
        F32SEInvertedResidualParams p = se_p;
        p.ir.N = in.N, p.ir.H = in.H, p.ir.W = in.W;
        in = {in.N, p.ir.OH(), p.ir.OW(), p.ir.Cout};
        out.resize(in.numel());
        f32_se_inverted_residual_run(p, x.data(), p0.data(), p0.size(), p1.data(), p1.size(), p2.data(),
                                     p2.size(), p3.data(), p3.size(), p4.data(), p4.size(), out.data(), nt);
        break;
      }
      case pw: {
        const F32GemmParams g{in.N * in.H * in.W, in.C, cout, in.C, cout, act, nullptr, 0};
        in.C = cout;
        out.resize(in.numel());
        f32_conv1x1_run(g, x.data(), p0.data(), p0.size(), out.data(), nt);
        break;
      }
      case dw: {
        const int64_t ext = d * (k - 1) + 1;
        const F32DwconvParams q{in.N, in.H, in.W, in.C, cout / in.C, k, k, s, s, d, d, pad, pad,
                                (in.H + 2 * pad - ext) / s + 1, (in.W + 2 * pad - ext) / s + 1, act};
        in = {in.N, q.OH, q.OW, cout};
        out.resize(in.numel());
        f32_dwconv_run(q, x.data(), p0.data(), out.data(), nt);
        break;
      }
    }
    return out;
  }
};

Layer ir_layer(int64_t cin, int64_t t, int64_t cout, int64_t s, int64_t k, Activation a, std::mt19937& rng) {
  Layer l;
  l.kind = Layer::ir;
  const int64_t chid = cin * t, pad = k / 2;
  l.ir_p = {0, 0, 0, cin, chid, cout, k, s, pad, pad, pad, pad, t != 1, a, a, Activation::none,
            s == 1 && cin == cout, 0};
  if (t != 1) l.p0 = gemm_pack(cin, chid, rng);
  l.p1 = dw_pack(chid, k, rng);
  l.p2 = gemm_pack(chid, cout, rng);
  return l;
}

Layer se_layer(int64_t cin, int64_t chid, int64_t cout, int64_t s, int64_t k, Activation a, std::mt19937& rng) {
  Layer l = ir_layer(cin, 1, cout, s, k, a, rng);  // the packs of a t == 1 block ...
  l.kind = Layer::se;
  const int64_t pad = k / 2, csq = std::max<int64_t>(1, chid / 4);
  l.se_p = {{0, 0, 0, cin, chid, cout, k, s, pad, pad, pad, pad, chid != cin, a, a, Activation::none,
             s == 1 && cin == cout, 0},
            csq, Activation::relu, SeGate::hardsigmoid};
  if (chid != cin) l.p0 = gemm_pack(cin, chid, rng);  // ... made for the hidden width
  l.p1 = dw_pack(chid, k, rng);
  l.p2 = gemm_pack(chid, cout, rng);
  l.p3 = gemm_pack(chid, csq, rng);
  l.p4 = gemm_pack(csq, chid, rng);
  return l;
}

Layer pw_layer(int64_t cin, int64_t cout, Activation a, std::mt19937& rng) {
  Layer l;
  l.kind = Layer::pw;
  l.cout = cout;
  l.act = a;
  l.p0 = gemm_pack(cin, cout, rng);
  return l;
}

Layer dw_layer(int64_t c, int64_t mult, int64_t k, int64_t s, int64_t d, Activation a, std::mt19937& rng) {
  Layer l;
  l.kind = Layer::dw;
  l.cout = c * mult;
  l.k = k, l.s = s, l.d = d, l.pad = d * (k / 2);
  l.act = a;
  l.p0 = dw_pack(c * mult, k, rng);
  return l;
}

constexpr int64_t kCanary = 64;
constexpr float kCanaryValue = -12345.f;

void check_chain(const std::vector<Layer>& layers, F32ChainShape in, std::mt19937& rng) {
  const std::vector<float> x = random_vec(in.numel(), rng, 2.f);
  const std::vector<float> x_copy = x;
  const Isa saved = active_isa();
  for (Isa isa : supported_isas()) {
    set_isa(isa_name(isa));
    F32Chain chain(in);
    for (const Layer& l : layers) l.add_to(chain);
    ASSERT_EQ(chain.size(), static_cast<int64_t>(layers.size()));
    for (int nt : {1, 2, 3}) {
      F32ChainShape shape = in;
      std::vector<float> ref = x;
      for (const Layer& l : layers) ref = l.run_alone(ref, shape, nt);
      const F32ChainShape out_shape = chain.output_shape();
      ASSERT_EQ(out_shape.N, shape.N);
      ASSERT_EQ(out_shape.H, shape.H);
      ASSERT_EQ(out_shape.W, shape.W);
      ASSERT_EQ(out_shape.C, shape.C);
      const int64_t total = shape.numel();
      for (int rep = 0; rep < 2; ++rep) {  // the second run reuses the planned buffers
        std::vector<float> out(total + 2 * kCanary, kCanaryValue);
        chain.run(x.data(), out.data() + kCanary, nt);
        const std::string where = std::string(isa_name(isa)) + " threads " + std::to_string(nt) +
                                  " run " + std::to_string(rep) + "\n" + chain.describe();
        for (int64_t i = 0; i < kCanary; ++i) {
          ASSERT_EQ(out[i], kCanaryValue) << "wrote before the output, " << where;
          ASSERT_EQ(out[kCanary + total + i], kCanaryValue) << "wrote past the output, " << where;
        }
        if (total > 0)
          ASSERT_EQ(0, std::memcmp(out.data() + kCanary, ref.data(), sizeof(float) * total))
              << "chain differs from the layers run one by one, " << where;
        ASSERT_EQ(x, x_copy) << "the chain wrote its input, " << where;
      }
    }
  }
  set_isa(isa_name(saved));
}

}  // namespace

TEST(F32Chain, MobileNetV2LikeChainMatchesLayersOneByOne) {
  std::mt19937 rng(31);
  const Activation r6 = Activation::relu6;
  std::vector<Layer> layers;
  layers.push_back(ir_layer(16, 1, 8, 1, 3, r6, rng));   // t == 1
  layers.push_back(ir_layer(8, 6, 12, 2, 3, r6, rng));   // stride 2
  layers.push_back(ir_layer(12, 6, 12, 1, 3, r6, rng));  // residual
  layers.push_back(ir_layer(12, 4, 20, 2, 5, Activation::hardswish, rng));
  layers.push_back(ir_layer(20, 6, 20, 1, 3, r6, rng));  // residual after a smaller map
  layers.push_back(pw_layer(20, 40, r6, rng));           // the last 1x1
  for (int64_t n : {1, 3}) {
    check_chain(layers, {n, 13, 10, 16}, rng);
    if (HasFatalFailure()) return;
  }
}

TEST(F32Chain, MobileNetV3LikeChainWithSEMatchesLayersOneByOne) {
  std::mt19937 rng(35);
  const Activation hs = Activation::hardswish, re = Activation::relu;
  std::vector<Layer> layers;
  layers.push_back(se_layer(16, 16, 16, 2, 3, re, rng));   // t == 1 with SE (V3-Small's first)
  layers.push_back(ir_layer(16, 4, 24, 2, 3, re, rng));    // a plain block between
  layers.push_back(se_layer(24, 72, 40, 2, 5, re, rng));   // stride 2, k5
  layers.push_back(se_layer(40, 120, 40, 1, 5, re, rng));  // residual
  layers.push_back(se_layer(40, 240, 48, 1, 3, hs, rng));
  layers.push_back(pw_layer(48, 96, hs, rng));
  for (int64_t n : {1, 3}) {
    check_chain(layers, {n, 29, 23, 16}, rng);
    if (HasFatalFailure()) return;
  }
  // an SE step with the wrong fc pack is refused at build time
  F32Chain chain({1, 8, 8, 16});
  Layer bad = se_layer(16, 32, 16, 1, 3, re, rng);
  std::swap(bad.p3, bad.p4);
  EXPECT_THROW(bad.add_to(chain), std::invalid_argument);
  EXPECT_EQ(chain.size(), 0);
}

TEST(F32Chain, DepthwiseAndPointwiseLayers) {
  std::mt19937 rng(32);
  std::vector<Layer> layers;
  layers.push_back(pw_layer(5, 24, Activation::relu, rng));
  layers.push_back(dw_layer(24, 1, 3, 2, 1, Activation::relu6, rng));
  layers.push_back(dw_layer(24, 2, 5, 1, 2, Activation::hardswish, rng));  // multiplier, dilation
  layers.push_back(pw_layer(48, 7, Activation::none, rng));
  layers.push_back(dw_layer(7, 1, 3, 1, 1, Activation::none, rng));         // odd channel count
  check_chain(layers, {2, 17, 9, 5}, rng);
  if (HasFatalFailure()) return;
  // one step, no intermediate buffer; and an empty batch
  check_chain({pw_layer(5, 3, Activation::none, rng)}, {1, 4, 4, 5}, rng);
  if (HasFatalFailure()) return;
  check_chain(layers, {0, 17, 9, 5}, rng);
}

TEST(F32Chain, BuffersHoldTheLargestIntermediate) {
  std::mt19937 rng(33);
  F32Chain chain({2, 8, 8, 4});
  pw_layer(4, 32, Activation::none, rng).add_to(chain);   // 2*8*8*32 = 4096
  EXPECT_EQ(chain.buffer_floats(), 0);                     // the only step writes the output
  Layer d = dw_layer(32, 1, 3, 2, 1, Activation::none, rng);
  d.add_to(chain);                                         // -> 2*4*4*32 = 1024
  Layer p = pw_layer(32, 8, Activation::none, rng);
  p.add_to(chain);
  EXPECT_EQ(chain.buffer_floats(), 4096);
}

TEST(F32Chain, BuildRejectsInconsistentSteps) {
  std::mt19937 rng(34);
  const Layer pw16 = pw_layer(16, 16, Activation::none, rng);
  F32Chain chain({1, 6, 6, 16});
  pw16.add_to(chain);
  auto expect_rejected = [&](auto add, const char* what) {
    try {
      add();
      ADD_FAILURE() << "accepted: " << what;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("chain step 1"), std::string::npos) << e.what();
    }
  };
  const Layer pw8 = pw_layer(8, 16, Activation::none, rng);  // packed for 8 input channels
  expect_rejected([&] { pw8.add_to(chain); }, "1x1 pack for other channels");
  expect_rejected([&] { chain.add_conv1x1(16, Activation::none, nullptr, 0); }, "missing pack");
  expect_rejected([&] { chain.add_conv1x1(16, static_cast<Activation>(9), pw16.p0.data(), pw16.p0.size()); },
                  "unknown activation");
  const Layer ir8 = ir_layer(8, 6, 8, 1, 3, Activation::relu6, rng);
  expect_rejected([&] { ir8.add_to(chain); }, "block for 8 channels after 16");
  Layer ir_badpad = ir_layer(16, 6, 16, 1, 3, Activation::relu6, rng);
  ir_badpad.ir_p.PT = 3;
  expect_rejected([&] { ir_badpad.add_to(chain); }, "padding > K - 1");
  Layer ir_swapped = ir_layer(16, 6, 16, 1, 3, Activation::relu6, rng);
  std::swap(ir_swapped.p0, ir_swapped.p1);  // a depthwise pack where the expand pack belongs
  expect_rejected([&] { ir_swapped.add_to(chain); }, "swapped packs");
  const Layer dw9 = dw_layer(16, 1, 9, 1, 1, Activation::none, rng);
  Layer dw_big = dw9;
  dw_big.pad = 0;  // 9x9 kernel on a 6x6 map without padding
  expect_rejected([&] { dw_big.add_to(chain); }, "kernel larger than the input");
  expect_rejected([&] { chain.add_dwconv(24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, Activation::none, dw9.p0.data(),
                                         dw9.p0.size()); },
                  "24 channels from 16 is not a multiplier");
  expect_rejected([&] { chain.add_dwconv(16, 3, 3, 0, 1, 1, 1, 1, 1, 1, 1, Activation::none, dw9.p0.data(),
                                         dw9.p0.size()); },
                  "stride 0");
  expect_rejected([&] { chain.add_dwconv(16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, Activation::none, dw9.p0.data(),
                                         dw9.p0.size()); },
                  "9x9 pack used as 3x3");
  // Every rejection left the chain as it was: one step, still runnable.
  ASSERT_EQ(chain.size(), 1);
  const F32ChainShape out = chain.output_shape();
  EXPECT_EQ(out.C, 16);
  std::vector<float> x(6 * 6 * 16, 1.f), y(6 * 6 * 16), ref(6 * 6 * 16);
  chain.run(x.data(), y.data(), 1);
  const F32GemmParams g{36, 16, 16, 16, 16, Activation::none, nullptr, 0};
  f32_conv1x1_run(g, x.data(), pw16.p0.data(), pw16.p0.size(), ref.data(), 1);
  EXPECT_EQ(y, ref);
}

TEST(F32Chain, RejectsBadInputShapeAndEmptyRun) {
  EXPECT_THROW(F32Chain({1, 0, 4, 4}), std::invalid_argument);
  EXPECT_THROW(F32Chain({-1, 4, 4, 4}), std::invalid_argument);
  F32Chain empty({1, 4, 4, 4});
  float x[64] = {}, out[64];
  EXPECT_THROW(empty.run(x, out, 1), std::invalid_argument);
}
