// Every fp32 depthwise kernel in the kernel list against the scalar reference, and the scalar
// reference against an independent fp64 loop written here. Outputs live between canary zones
// so an out-of-bounds write is caught even without AddressSanitizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/f32-dwconv/f32_dwconv.h"
#include "kernels/f32-dwconv/f32_dwconv_kernels.h"
#include "f32_reference.h"

using namespace mk;

namespace {

struct Shape {
  int64_t n, h, w, c, m, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr;
};

F32DwconvParams params_of(const Shape& s, Activation act) {
  F32DwconvParams p{s.n, s.h, s.w, s.c, s.m, s.kh, s.kw, s.sh, s.sw, s.dh, s.dw, s.pt, s.pl, 0, 0, act};
  p.OH = (s.h + s.pt + s.pb - s.dh * (s.kh - 1) - 1) / s.sh + 1;
  p.OW = (s.w + s.pl + s.pr - s.dw * (s.kw - 1) - 1) / s.sw + 1;
  return p;
}

using mktest::act_ref;

// Independent fp64 oracle on the torch weight layout [cout][kh][kw].
std::vector<double> reference(const F32DwconvParams& p, const std::vector<float>& in,
                              const std::vector<float>& w, const std::vector<float>& b) {
  std::vector<double> out(p.N * p.OH * p.OW * p.cout());
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow)
        for (int64_t oc = 0; oc < p.cout(); ++oc) {
          double acc = b[oc];
          for (int64_t kh = 0; kh < p.KH; ++kh)
            for (int64_t kw = 0; kw < p.KW; ++kw) {
              const int64_t ih = oh * p.SH - p.PT + kh * p.DH, iw = ow * p.SW - p.PL + kw * p.DW;
              if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
              acc += double(in[((n * p.H + ih) * p.W + iw) * p.C + oc / p.M]) *
                     w[(oc * p.KH + kh) * p.KW + kw];
            }
          out[((n * p.OH + oh) * p.OW + ow) * p.cout() + oc] = act_ref(acc, p.act);
        }
  return out;
}

constexpr int64_t kCanary = 64;
constexpr float kCanaryValue = -12345.f;

std::string describe(const Shape& s, Activation a) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "N%ld %ldx%ldx%ld m%ld k%ldx%ld s%ldx%ld d%ldx%ld pad(%ld,%ld,%ld,%ld) act%d",
                (long)s.n, (long)s.h, (long)s.w, (long)s.c, (long)s.m, (long)s.kh, (long)s.kw, (long)s.sh,
                (long)s.sw, (long)s.dh, (long)s.dw, (long)s.pt, (long)s.pb, (long)s.pl, (long)s.pr, (int)a);
  return buf;
}

// row_cuts: where the row space is cut into separate kernel calls (besides the default cut at
// rows/2 with its channel split); empty = the default only.
void check_shape(const Shape& s, Activation act, std::mt19937& rng, std::vector<int64_t> row_cuts = {}) {
  const F32DwconvParams p = params_of(s, act);
  std::uniform_real_distribution<float> dist(-2.f, 2.f);
  std::vector<float> in(p.N * p.H * p.W * p.C), w(p.cout() * p.KH * p.KW), b(p.cout());
  for (auto* v : {&in, &w, &b})
    for (float& x : *v) x = dist(rng);
  std::vector<float> packed(f32_dwconv_packed_size(p.cout(), p.KH, p.KW));
  f32_dwconv_pack(w.data(), b.data(), p.cout(), p.KH, p.KW, packed.data());
  const std::vector<double> ref = reference(p, in, w, b);
  const int64_t rows = p.N * p.OH, total = rows * p.OW * p.cout();

  for (const F32DwconvKernel& k : kF32DwconvKernels) {
    if (!isa_supported(k.isa)) continue;  // reported once by the KernelsCovered test
    if (p.M > 1 && !k.supports_multiplier) continue;
    std::vector<float> out(total + 2 * kCanary, kCanaryValue);
    float* o = out.data() + kCanary;
    // Split rows and channels the way the threaded op does: two row ranges, 16-aligned chunks.
    const int64_t rmid = rows / 2, cmid = p.cout() > 16 ? 16 : p.cout();
    if (row_cuts.empty()) {
      k.run(p, in.data(), f32_dwconv_pack_data(packed.data()), o, 0, rmid, 0, cmid);
      k.run(p, in.data(), f32_dwconv_pack_data(packed.data()), o, 0, rmid, cmid, p.cout());
      k.run(p, in.data(), f32_dwconv_pack_data(packed.data()), o, rmid, rows, 0, p.cout());
    } else {
      int64_t r0 = 0;
      row_cuts.push_back(rows);
      for (int64_t cut : row_cuts) {
        const int64_t r1 = std::min(rows, cut);
        if (r1 > r0) k.run(p, in.data(), f32_dwconv_pack_data(packed.data()), o, r0, r1, 0, p.cout());
        r0 = std::max(r0, r1);
      }
    }
    for (int64_t i = 0; i < kCanary; ++i) {
      ASSERT_EQ(out[i], kCanaryValue) << isa_name(k.isa) << " wrote before output, " << describe(s, act);
      ASSERT_EQ(out[kCanary + total + i], kCanaryValue) << isa_name(k.isa) << " wrote past output, " << describe(s, act);
    }
    for (int64_t i = 0; i < total; ++i) {
      // fp32 accumulation of <= 49 products of magnitude <= 4 (+bias): 2e-5 absolute suffices
      // and a single wrong tap (>= ~1e-3 typically) fails it.
      const double tol = 2e-5 * (1.0 + std::fabs(ref[i])) * std::sqrt(double(p.KH * p.KW));
      ASSERT_NEAR(o[i], ref[i], tol) << isa_name(k.isa) << " (" << k.variant(p) << ") at " << i
                                     << ", " << describe(s, act);
    }
  }
}

}  // namespace

TEST(F32Dwconv, KernelsCovered) {
  for (const F32DwconvKernel& k : kF32DwconvKernels)
    std::printf("kernel %-8s %s\n", isa_name(k.isa),
                isa_supported(k.isa) ? "tested" : "NOT RUN: this CPU lacks it");
}

TEST(F32Dwconv, FastPathShapes) {
  std::mt19937 rng(1);
  const int64_t channels[] = {1, 3, 8, 15, 16, 17, 33};
  for (int64_t k : {3, 5, 7})
    for (int64_t s : {1, 2})
      for (int64_t c : channels)
        for (int64_t hw : {1, 2, 5, 9, 14})
          for (int64_t pad : {int64_t(0), k / 2}) {
            if (hw + 2 * pad < k) continue;
            check_shape({1, hw, hw + 3, c, 1, k, k, s, s, 1, 1, pad, pad, pad, pad},
                        static_cast<Activation>((c + hw) % 4), rng);
          }
}

// Every output width 1..20: the fixed paths cut a row into balanced blocks of every width up to
// the ISA's block, with the 3-wide padding-1 borders skipped at compile time (first block,
// and the last when (OW-1)*S + 2 > W, i.e. depending on W's parity at stride 2); padding 0
// and k-1 take the run-time checked borders. Channel counts leave vector tails.
TEST(F32Dwconv, RowBlockWidths) {
  std::mt19937 rng(3);
  for (int64_t k : {3, 5, 7})
    for (int64_t pad : {int64_t(0), k / 2, k - 1})
      for (int64_t s : {1, 2})
        for (int64_t w = 1; w <= 20; ++w)
          for (int64_t h : {1, 4, 7})
            for (int64_t c : {5, 13, 24}) {
              if (w + 2 * pad < k || h + 2 * pad < k) continue;
              check_shape({1 + (w + c) % 2, h, w, c, 1, k, k, s, s, 1, 1, pad, pad, pad, pad},
                          static_cast<Activation>((w + h + c) % 4), rng);
            }
}

// Asymmetric padding around the compile-time borders: left 1 with right 0..3 (right > 1 puts
// whole blocks past column W, which only the run-time checked path may take).
TEST(F32Dwconv, AsymmetricPadding) {
  std::mt19937 rng(4);
  for (int64_t s : {1, 2})
    for (int64_t pr : {0, 1, 2, 3})
      for (int64_t pl : {0, 1, 2})
        for (int64_t w = 1; w <= 14; ++w) {
          if (w + pl + pr < 3) continue;
          check_shape({1, 5, w, 11, 1, 3, 3, s, s, 1, 1, 1, pr, pl, pr}, static_cast<Activation>(w % 4), rng);
        }
}

// Two-row blocks (AVX2: 3x3, stride 1 and 2, left padding 1): output rows pair up only inside
// one image and one kernel call, when neither reads a padding row. Odd and even output heights,
// batch 2 (a pair must not straddle images), calls starting at odd rows and 1-row calls, no
// or asymmetric bottom/right padding, widths across the block widths with channel tails, and
// output heights below the input's (a band of rows, as the fused blocks ask for).
TEST(F32Dwconv, TwoRowBlocks) {
  std::mt19937 rng(5);
  for (int64_t s : {1, 2})
    for (int64_t h = 2; h <= 9; ++h)
      for (int64_t w : {1, 2, 3, 4, 5, 7, 8, 9, 13})
        for (int64_t pb : {-2, -1, 0, 1, 2})  // negative: OH below torch's, rows left unread
          for (int64_t c : {5, 8, 21, 40}) {
            const int64_t pr = (w + c) % 2;
            if (h + 1 + pb < 3 || w + 1 + pr < 3) continue;
            const Shape sh{1 + (h + w) % 2, h, w, c, 1, 3, 3, s, s, 1, 1, 1, pb, 1, pr};
            const Activation act = static_cast<Activation>((h + w + c) % 4);
            check_shape(sh, act, rng, {});
            check_shape(sh, act, rng, {1, 2, 5});     // odd starts, a 1-row call
            check_shape(sh, act, rng, {3, 4, 7, 8});  // 1-row calls between pairs
          }
  // No top padding: every row pair of the band reads real rows (the fused blocks' bands).
  for (int64_t s : {1, 2})
    for (int64_t h : {3, 6, 11})
      check_shape({2, h, 10, 24, 1, 3, 3, s, s, 1, 1, 0, 0, 1, 1}, Activation::relu6, rng, {3});
  // Many channels (the blocks address columns as row + k * C from scaled registers, k up to
  // 6): a vector tail, chunks starting at channel 16, rows wider than one block; whole and
  // partial 16-channel vectors (AVX-512 runs these blocks too: masked tails).
  for (int64_t s : {1, 2})
    for (int64_t c : {203, 96, 16, 33})
      check_shape({1, 6, 17, c, 1, 3, 3, s, s, 1, 1, 1, 1, 1, 1}, Activation::hardswish, rng, {});
}

// 3x3 stride-2 sweep blocks (AVX2: rows of at most 7 outputs, left padding 1): every output
// width 1..8 (8 takes the two-row blocks again) from both input-width parities, so the carried
// column meets the right border (odd W: the last block's last column is padding) or not; one-
// and multi-vector channel counts with and without tails; batch 2; padding 0 (checked path)
// and 1; odd and even heights; row ranges cut at odd rows.
TEST(F32Dwconv, SweepStride2Blocks) {
  std::mt19937 rng(7);
  for (int64_t w = 1; w <= 16; ++w)
    for (int64_t h : {1, 4, 7, 14})
      for (int64_t c : {8, 16, 17, 33})
        for (int64_t pad : {0, 1}) {
          if (w + 2 * pad < 3 || h + 2 * pad < 3) continue;
          const Shape sh{1 + (w + h) % 2, h, w, c, 1, 3, 3, 2, 2, 1, 1, pad, pad, pad, pad};
          const Activation act = static_cast<Activation>((w + c) % 4);
          check_shape(sh, act, rng);
          check_shape(sh, act, rng, {1, 3});
        }
  check_shape({2, 14, 14, 576, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, Activation::relu6, rng);
}

// 3x3 stride-2 row sweeps (AVX2: rows of 16..32 outputs, left padding 1, rows reading no padding
// row): output widths 12..34 (the ends take the blocks again) from both input-width parities,
// so the last output's third column is the right padding (odd W) or not; channel counts of
// one partial vector, one line and several vectors with a tail; batch 2; even and odd heights
// (the top row, and the bottom one for odd H, read padding rows: the blocks); padding 0; row
// ranges cut at odd rows, as the thread split does.
TEST(F32Dwconv, RowSweepStride2) {
  std::mt19937 rng(8);
  for (int64_t ow = 12; ow <= 34; ++ow)
    for (int64_t w : {2 * ow - 1, 2 * ow})
      for (int64_t h : {4, 7})
        for (int64_t c : {5, 16, 33}) {
          const Shape sh{1 + (ow + h) % 2, h, w, c, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1};
          const Activation act = static_cast<Activation>((w + c) % 4);
          check_shape(sh, act, rng, {1, 3});
          if (c == 16) check_shape({1, h, w, c, 1, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0}, act, rng);
        }
  check_shape({2, 56, 56, 144, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, Activation::relu6, rng);
}

// Each kernel's output is the same bit for bit however its rows and channels are split into
// calls (threads and fused-block bands split them): every row alone, row pairs from odd starts,
// and 16-channel chunks, against one call for everything.
void check_split_invariant(const Shape& s, Activation act, std::mt19937& rng) {
  const F32DwconvParams p = params_of(s, act);
  std::uniform_real_distribution<float> dist(-2.f, 2.f);
  std::vector<float> in(p.N * p.H * p.W * p.C), w(p.cout() * p.KH * p.KW), b(p.cout());
  for (auto* v : {&in, &w, &b})
    for (float& x : *v) x = dist(rng);
  std::vector<float> packed(f32_dwconv_packed_size(p.cout(), p.KH, p.KW));
  f32_dwconv_pack(w.data(), b.data(), p.cout(), p.KH, p.KW, packed.data());
  const float* pk = f32_dwconv_pack_data(packed.data());
  const int64_t rows = p.N * p.OH, total = rows * p.OW * p.cout();
  for (const F32DwconvKernel& k : kF32DwconvKernels) {
    if (!isa_supported(k.isa)) continue;
    std::vector<float> whole(total), split(total, kCanaryValue), pairs(total, kCanaryValue);
    k.run(p, in.data(), pk, whole.data(), 0, rows, 0, p.cout());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < p.cout(); c += 16)
        k.run(p, in.data(), pk, split.data(), r, r + 1, c, std::min(p.cout(), c + 16));
    k.run(p, in.data(), pk, pairs.data(), 0, 1, 0, p.cout());
    for (int64_t r = 1; r < rows; r += 2) k.run(p, in.data(), pk, pairs.data(), r, std::min(rows, r + 2), 0, p.cout());
    for (int64_t i = 0; i < total; ++i) {
      ASSERT_EQ(split[i], whole[i]) << isa_name(k.isa) << " 1-row calls differ at " << i << ", " << describe(s, act);
      ASSERT_EQ(pairs[i], whole[i]) << isa_name(k.isa) << " odd-start pairs differ at " << i << ", " << describe(s, act);
    }
  }
}

// 5x5 two-row blocks (AVX2, AVX-512: stride 1 and 2, 'same' left padding 2, at most 2 columns
// of right padding read): pairs of rows reading no padding row, border columns skipped at
// compile time (0..2 on each side, widths 1..14 so a block can hold both borders), the same
// skipped taps in the one-row blocks of the rows reading padding rows. Odd and even heights,
// batch 2, odd starts and 1-row calls, bottom padding below and above torch's, right padding
// 0..3 (3: the run-time checked borders), channel tails; left padding 0, 1, 3 take the checked
// borders. Then the split invariance bit for bit, on the MobileNetV3-Large 5x5 shapes too.
TEST(F32Dwconv, TwoRowBlocks5x5) {
  std::mt19937 rng(9);
  for (int64_t s : {1, 2})
    for (int64_t h = 4; h <= 11; ++h)
      for (int64_t w = 1; w <= 14; ++w)
        for (int64_t pb : {-1, 0, 1, 2, 3})
          for (int64_t c : {5, 16, 21, 40}) {
            const int64_t pr = (w + c + h) % 4;
            if (h + 2 + pb < 5 || w + 2 + pr < 5) continue;
            const Shape sh{1 + (h + w) % 2, h, w, c, 1, 5, 5, s, s, 1, 1, 2, pb, 2, pr};
            const Activation act = static_cast<Activation>((h + w + c) % 4);
            check_shape(sh, act, rng, {});
            if ((w + c) % 3 == 0) check_shape(sh, act, rng, {1, 2, 5});
            if ((w + c) % 3 == 1) check_shape(sh, act, rng, {3, 4, 7, 8});
          }
  for (int64_t s : {1, 2})
    for (int64_t pl : {0, 1, 3})
      for (int64_t w : {3, 6, 9, 14}) check_shape({2, 9, w, 21, 1, 5, 5, s, s, 1, 1, 2, 2, pl, 2}, Activation::relu6, rng);
  // Many channels (columns up to 7 * C from the scaled registers), no top padding (bands).
  for (int64_t s : {1, 2})
    for (int64_t c : {203, 96, 33}) check_shape({1, 9, 17, c, 1, 5, 5, s, s, 1, 1, 0, 2, 2, 2}, Activation::hardswish, rng, {3});
  const Shape split[] = {
      {1, 28, 28, 40, 1, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2},  {1, 28, 28, 24, 1, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2},
      {1, 14, 14, 48, 1, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2},  {1, 7, 7, 40, 1, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2},
      {2, 11, 13, 21, 1, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2}, {2, 13, 9, 21, 1, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2},
  };
  for (const Shape& sh : split) check_split_invariant(sh, Activation::none, rng);
}

// 3x3 stride-1 row sweeps (AVX2: rows of 48..64 outputs, segments of 28, left padding 1): output
// widths around the range's ends and the segment boundaries (47..65: the ends take the blocks
// again), right padding 1 (the last output's right column is padding) and 0; heights where the
// rows pair up or leave a single interior row, the top/bottom padding rows (the blocks); channel
// counts of one partial vector, one vector, a vector and a tail, several; batch 2; row ranges cut
// at odd rows, 1-row calls; every activation. Rows running alone and in pairs, whatever the
// split, must give the same bits (the sweep's summation order differs from the blocks').
TEST(F32Dwconv, RowSweepStride1) {
  std::mt19937 rng(9);
  for (int64_t w : {47, 48, 49, 55, 56, 57, 63, 64, 65})
    for (int64_t pr : {0, 1})
      for (int64_t h : {1, 2, 3, 4, 5, 7})
        for (int64_t c : {1, 7, 8, 9, 16, 17, 33}) {
          const Shape sh{1 + (w + h + c) % 2, h, w, c, 1, 3, 3, 1, 1, 1, 1, 1, pr, 1, pr};
          if (h + 1 + pr < 3) continue;
          const Activation act = static_cast<Activation>((w + h + c) % 4);
          check_shape(sh, act, rng);
          if (h >= 4) check_shape(sh, act, rng, {1, 2, 5});
          if (c == 17 || c == 33) check_split_invariant(sh, act, rng);
        }
  // No top padding (the fused blocks' bands), padding 0 (the checked path).
  check_shape({2, 6, 56, 24, 1, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1}, Activation::relu6, rng, {3});
  check_shape({1, 6, 58, 24, 1, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0}, Activation::relu6, rng);
  check_shape({1, 56, 56, 144, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, Activation::relu6, rng);
  check_split_invariant({1, 9, 56, 144, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, Activation::relu6, rng);
}

// Large images: many full-width blocks per row, channels over several vectors with a tail.
TEST(F32Dwconv, LargeImages) {
  std::mt19937 rng(6);
  for (int64_t s : {1, 2}) {
    check_shape({1, 57, 61, 35, 1, 3, 3, s, s, 1, 1, 1, 1, 1, 1}, Activation::relu6, rng);
    check_shape({1, 40, 112, 32, 1, 3, 3, s, s, 1, 1, 1, 1, 1, 1}, Activation::relu6, rng);
  }
}

TEST(F32Dwconv, GenericShapes) {
  std::mt19937 rng(2);
  const Shape shapes[] = {
      {2, 7, 9, 5, 1, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},    // dilation 2
      {1, 11, 6, 17, 1, 3, 5, 2, 1, 1, 1, 1, 1, 2, 2},  // non-square kernel, mixed stride
      {1, 10, 10, 19, 1, 4, 4, 3, 3, 1, 1, 1, 2, 1, 2}, // even kernel, asymmetric pad, stride 3
      {3, 6, 6, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},    // depth multiplier 3
      {1, 1, 1, 40, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},   // 1x1
      {1, 5, 5, 24, 1, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0},   // kernel == input
      {2, 13, 8, 33, 1, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3},
      {1, 9, 9, 16, 1, 3, 3, 1, 1, 3, 1, 3, 3, 0, 1},   // dilation only in H
      {1, 3, 30, 9, 1, 1, 9, 1, 4, 1, 1, 0, 0, 4, 4},   // 1x9
  };
  for (const Shape& s : shapes)
    for (int a = 0; a < 4; ++a) check_shape(s, static_cast<Activation>(a), rng);
}

TEST(F32Dwconv, MobileNetV2Layers) {
  std::mt19937 rng(3);
  const int64_t layers[][4] = {{56, 56, 32, 1}, {28, 28, 144, 2}, {14, 14, 96, 1}, {7, 7, 160, 1}};
  for (const auto& l : layers)
    check_shape({1, l[0], l[1], l[2], 1, 3, 3, l[3], l[3], 1, 1, 1, 1, 1, 1}, Activation::relu6, rng);
}

// Channel-outer sweeps (AVX-512: 3x3 stride 1 / 2 on at most 16 channels, left padding 1):
// channel counts of one full and partial vectors (masked tails), output widths 1..13 around
// the 4-pixel blocks (both parities of W at stride 2, so the last block's last column is the
// right padding or not), heights where rows pair up or leave single rows, bottom padding 0 / 1
// (-1: OH below torch's), batch 2, row ranges cut at odd rows and into 1-row calls, every
// activation; the same bits however the rows are split. Padding 0 takes the blocks again.
TEST(F32Dwconv, ChanSweep) {
  std::mt19937 rng(10);
  for (int64_t s : {1, 2})
    for (int64_t w = 1; w <= 13; ++w)
      for (int64_t h : {1, 2, 3, 4, 5, 8, 9})
        for (int64_t pb : {-1, 0, 1})
          for (int64_t c : {1, 5, 15, 16}) {
            const int64_t pr = (w + c) % 2;
            if (h + 1 + pb < 3 || w + 1 + pr < 3) continue;
            const Shape sh{1 + (h + w) % 2, h, w, c, 1, 3, 3, s, s, 1, 1, 1, pb, 1, pr};
            const Activation act = static_cast<Activation>((h + w + c + pb) % 4);
            check_shape(sh, act, rng);
            check_shape(sh, act, rng, {1, 2, 5});
            if (pb == 1 && h >= 4) check_split_invariant(sh, act, rng);
          }
  for (int64_t s : {1, 2}) {
    check_shape({1, 112, 112, 16, 1, 3, 3, s, s, 1, 1, 1, 1, 1, 1}, Activation::relu6, rng, {37, 38, 71});
    check_shape({2, 9, 30, 16, 1, 3, 3, s, s, 1, 1, 0, 0, 1, 1}, Activation::relu, rng, {3});  // no top padding
    check_shape({1, 9, 30, 16, 1, 3, 3, s, s, 1, 1, 0, 0, 0, 0}, Activation::none, rng);       // checked path
  }
}

// Channel groups (AVX-512: 3x3 stride 1 / 2 on inputs at most 14 wide, groups of
// round_down(1344 / W, 16) channels: 96 at W 14, 192 at W 7): channel counts of one group,
// one group and a partial vector, several groups with a tail, a last group of one vector;
// widths 14 and below, batch 2, the default 16-channel split (groups then start at channel
// 16), row cuts, and the same bits for 1-row calls in 16-channel chunks and odd-start pairs.
TEST(F32Dwconv, ChanGroups) {
  std::mt19937 rng(11);
  for (int64_t s : {1, 2})
    for (int64_t w : {3, 7, 13, 14, 15})
      for (int64_t c : {96, 101, 208, 400, 577}) {
        const Shape sh{1 + (w + c) % 2, (w * 3 + c) % 11 + 3, w, c, 1, 3, 3, s, s, 1, 1, 1, 1, 1, 1};
        const Activation act = static_cast<Activation>((w + c + s) % 4);
        check_shape(sh, act, rng);
        check_shape(sh, act, rng, {1, 4});
        if (c == 101 || c == 400) check_split_invariant(sh, act, rng);
      }
  check_shape({1, 14, 14, 576, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, Activation::relu6, rng);
  check_shape({1, 7, 7, 960, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, Activation::relu6, rng, {3});
  check_shape({2, 14, 14, 384, 1, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1}, Activation::relu6, rng, {5});  // bands
}
