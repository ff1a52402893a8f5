// The fused int8 inverted-residual op against our three unfused int8 ops run in sequence
// (q8_gemm_run -> q8_dwconv_run -> q8_gemm_run) plus an fp32 residual add written here with
// every product and sum rounded separately (volatile: no FMA contraction on aarch64), bit for
// bit, at every supported ISA level and, on x86, on the AVX2 emulation of the VNNI tiling.
// Covers odd sizes, stride 1 and 2, t == 1, residuals, both dtypes, weight zero points (row
// sums), forced band heights (1, 2, auto) and 1-3 threads; the output sits between canaries.
// Stages with a lookup table (Hardswish) are checked against the table applied after the
// unfused op; the table kernels themselves against the scalar loop on every byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/q8-dwconv/q8_dwconv.h"
#include "kernels/q8-dwconv/q8_dwconv_kernels.h"
#include "kernels/q8-eltwise/q8_residual_add.h"
#include "kernels/q8-gemm/q8_gemm.h"
#include "kernels/q8-gemm/q8_gemm_kernels.h"
#include "kernels/q8-lut/q8_lut_kernels.h"
#include "ops/q8_dwconv_op.h"
#include "ops/q8_gemm_op.h"
#include "ops/q8_inverted_residual_op.h"

using namespace mk;

namespace {

struct Block {
  Q8InvertedResidualParams p;
  std::vector<uint8_t> x, pe, pd, pp;  // input and packs
  std::vector<uint8_t> luts[3];        // tables of the stages that have one (p.e/d/p.lut point here)
};

// Gives the stages in `mask` (bit 0 expand, 1 depthwise, 2 project) a random 256-entry table
// and output qparams.
void add_luts(Block& b, std::mt19937& rng, int mask) {
  std::uniform_int_distribution<int> byte(0, 255), zp(20, 100);
  Q8StageQuant* st[3] = {&b.p.e, &b.p.d, &b.p.p};
  for (int i = 0; i < 3; ++i) {
    if (!(mask >> i & 1) || (i == 0 && !b.p.expand)) continue;
    b.luts[i].resize(256);
    for (auto& v : b.luts[i]) v = static_cast<uint8_t>(byte(rng));
    st[i]->lut = b.luts[i].data();
    st[i]->lut_scale = st[i]->scale * 0.9;
    st[i]->lut_zp = b.p.y_signed ? zp(rng) - 128 : zp(rng);
  }
}

void apply_lut(const Q8StageQuant& q, std::vector<uint8_t>& v) {
  if (q.lut)
    for (auto& c : v) c = q.lut[c];
}

std::vector<uint8_t> pack_gemm(std::mt19937& rng, int64_t K, int64_t N, double in_scale, bool w_signed, bool wzp) {
  std::uniform_int_distribution<int> byte(0, 255), zp(-3, 3), bias(-2000, 2000);
  std::uniform_real_distribution<float> jitter(0.75f, 1.25f);
  std::vector<uint8_t> w(K * N);
  for (auto& v : w) v = static_cast<uint8_t>(byte(rng));
  std::vector<int32_t> z(N), b(N);
  std::vector<float> s(N);
  for (int64_t i = 0; i < N; ++i) {
    z[i] = (wzp ? zp(rng) : 0) + (w_signed ? 0 : 128);
    b[i] = bias(rng);
    // Real accumulator std ~4 (codes deviate ~74 from their zero points): stages stay spread.
    s[i] = static_cast<float>(4.0 / (in_scale * 74 * 74 * std::sqrt(double(K)))) * jitter(rng);
  }
  std::vector<uint8_t> packed(q8_gemm_layout(K, N).total);
  q8_gemm_pack(w.data(), w_signed, z.data(), s.data(), b.data(), K, N, packed.data());
  return packed;
}

std::vector<uint8_t> pack_dw(std::mt19937& rng, int64_t C, int64_t K, double in_scale, bool w_signed, bool wzp) {
  std::uniform_int_distribution<int> byte(0, 255), zp(-3, 3), bias(-2000, 2000);
  std::uniform_real_distribution<float> jitter(0.75f, 1.25f);
  std::vector<uint8_t> w(C * K * K);
  for (auto& v : w) v = static_cast<uint8_t>(byte(rng));
  std::vector<int32_t> z(C), b(C);
  std::vector<float> s(C);
  for (int64_t i = 0; i < C; ++i) {
    z[i] = (wzp ? zp(rng) : 0) + (w_signed ? 0 : 128);
    b[i] = bias(rng);
    s[i] = static_cast<float>(4.0 / (in_scale * 74 * 74 * K)) * jitter(rng);
  }
  std::vector<uint8_t> packed(q8_dwconv_layout(C, K, K).total);
  q8_dwconv_pack(w.data(), w_signed, z.data(), s.data(), b.data(), C, K, K, packed.data());
  return packed;
}

// relu6-like clamps (as qops.output_range) where `relu6`, else the whole dtype range.
Q8StageQuant stage(std::mt19937& rng, bool y_signed, bool relu6) {
  const int32_t lo = y_signed ? -128 : 0, hi = y_signed ? 127 : 255, mid = (lo + hi + 1) / 2;
  std::uniform_int_distribution<int> zp(mid - 60, mid + 20);
  std::uniform_real_distribution<double> sc(0.8, 1.2);
  Q8StageQuant q{0.047 * sc(rng), zp(rng), lo, hi};
  if (relu6) {
    q.min = q.zp;
    q.max = std::min<int32_t>(hi, q.zp + static_cast<int32_t>(std::nearbyint(6.0 / q.scale)));
  }
  return q;
}

Block make_block(std::mt19937& rng, int64_t n, int64_t h, int64_t w, int64_t cin, int64_t t, int64_t cout,
                 int64_t s, int64_t k, bool residual, bool x_signed, bool y_signed, bool w_signed, bool wzp) {
  Block b{};
  Q8InvertedResidualParams& p = b.p;
  const int64_t pad = k / 2;
  p.N = n, p.H = h, p.W = w, p.Cin = cin, p.Chid = cin * t, p.Cout = cout, p.K = k, p.S = s;
  p.PT = p.PB = p.PL = p.PR = pad;
  p.expand = t != 1;
  p.residual = residual && s == 1 && cin == cout;
  p.band_rows = 0;
  p.x_scale = 0.03;
  p.x_zp = x_signed ? -7 : 131;
  p.x_signed = x_signed;
  p.y_signed = y_signed;
  p.e = stage(rng, y_signed, true);
  p.d = stage(rng, y_signed, true);
  p.p = stage(rng, y_signed, false);
  p.out_scale = 0.06;
  p.out_zp = y_signed ? -5 : 122;
  std::uniform_int_distribution<int> byte(0, 255);
  b.x.resize(n * h * w * cin);
  for (auto& v : b.x) v = static_cast<uint8_t>(byte(rng));
  if (p.expand) b.pe = pack_gemm(rng, cin, p.Chid, p.x_scale, w_signed, wzp);
  b.pd = pack_dw(rng, p.Chid, k, p.expand ? p.e.scale : p.x_scale, w_signed, wzp);
  b.pp = pack_gemm(rng, p.Chid, cout, p.d.scale, w_signed, wzp);
  return b;
}

Q8Quant quant(double xs, int32_t xz, bool xsig, const Q8StageQuant& q, bool ysig) {
  return {xs, xz, xsig, q.scale, q.zp, ysig, q.min, q.max};
}

// The three unfused ops (with the given GEMM / depthwise kernels) and the reference add.
std::vector<uint8_t> unfused(const Block& b, Q8GemmFn gemm, bool gemm_signed_x, Q8DwconvFn dw, int threads) {
  const Q8InvertedResidualParams& p = b.p;
  const int64_t OH = p.OH(), OW = p.OW();
  std::vector<uint8_t> h, d(p.N * OH * OW * p.Chid), y(p.N * OH * OW * p.Cout);
  const void* dw_in = b.x.data();
  Q8Quant qd = quant(p.x_scale, p.x_zp, p.x_signed, p.d, p.y_signed);
  if (p.expand) {
    h.resize(p.N * p.H * p.W * p.Chid);
    q8_gemm_run_with(gemm, gemm_signed_x, b.pe.data(), b.pe.size(), b.x.data(), p.N * p.H * p.W, p.Cin, p.Chid,
                     quant(p.x_scale, p.x_zp, p.x_signed, p.e, p.y_signed), h.data(), threads);
    apply_lut(p.e, h);
    dw_in = h.data();
    qd = quant(p.e.out_scale(), p.e.out_zp(), p.y_signed, p.d, p.y_signed);
  }
  const Q8DwShape s{p.N, p.H, p.W, p.Chid, 1, p.K, p.K, p.S, p.S, 1, 1, p.PT, p.PL, OH, OW};
  q8_dwconv_run_with(dw, b.pd.data(), b.pd.size(), dw_in, s, qd, d.data(), threads);
  apply_lut(p.d, d);
  q8_gemm_run_with(gemm, gemm_signed_x, b.pp.data(), b.pp.size(), d.data(), p.N * OH * OW, p.Chid, p.Cout,
                   quant(p.d.out_scale(), p.d.out_zp(), p.y_signed, p.p, p.y_signed), y.data(), threads);
  apply_lut(p.p, y);
  if (p.residual) {
    const float fa = static_cast<float>(p.x_scale / p.out_scale);
    const float fb = static_cast<float>(p.p.out_scale() / p.out_scale);
    const int32_t lo = p.y_signed ? -128 : 0, hi = p.y_signed ? 127 : 255;
    for (size_t i = 0; i < y.size(); ++i) {
      const int32_t xv = p.x_signed ? int32_t(int8_t(b.x[i])) : int32_t(b.x[i]);
      const int32_t yv = p.y_signed ? int32_t(int8_t(y[i])) : int32_t(y[i]);
      volatile float a = static_cast<float>(xv - p.x_zp) * fa;  // rounded like torch's separate ops
      volatile float c = static_cast<float>(yv - p.p.out_zp()) * fb;
      volatile float sum = a + c;
      const double r = std::nearbyint(double(sum)) + p.out_zp;  // half to even, then clamp
      y[i] = static_cast<uint8_t>(static_cast<int32_t>(std::fmin(std::fmax(r, lo), hi)));
    }
  }
  return y;
}

std::string describe(const Q8InvertedResidualParams& p) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "N%ld %ldx%ld %ld->%ld->%ld k%ld s%ld exp%d res%d x%c y%c band%ld chunk%ld",
                (long)p.N, (long)p.H, (long)p.W, (long)p.Cin, (long)p.Chid, (long)p.Cout, (long)p.K, (long)p.S,
                (int)p.expand, (int)p.residual, p.x_signed ? 's' : 'u', p.y_signed ? 's' : 'u', (long)p.band_rows,
                (long)p.chunk_cols);
  return buf;
}

constexpr int64_t kCanary = 64;
constexpr uint8_t kCanaryByte = 0xA5;

struct Path {
  std::string name;
  Q8GemmFn gemm;
  bool signed_x;
  Q8DwconvFn dw;
  Q8LutFn lut;
};

template <class List>
auto kernel_at(const List& list, Isa level) -> decltype(&list[0]) {
  const Isa isa = resolve_isa(level, [&](Isa i) {
    for (const auto& k : list)
      if (k.isa == i) return true;
    return false;
  });
  for (const auto& k : list)
    if (k.isa == isa) return &k;
  return nullptr;
}

// One (gemm, dw) pair per supported ISA level, the level's own kernels; plus the emulated VNNI.
std::vector<Path> paths() {
  std::vector<Path> out;
  for (Isa isa : supported_isas()) {
    const Isa gi = q8_gemm_resolve(isa), di = q8_dwconv_resolve(isa);
    const Q8GemmKernel* g = nullptr;
    const Q8DwconvKernel* d = nullptr;
    for (const Q8GemmKernel& k : kQ8GemmKernels)
      if (k.isa == gi) g = &k;
    for (const Q8DwconvKernel& k : kQ8DwconvKernels)
      if (k.isa == di) d = &k;
    const Q8LutKernel* l = kernel_at(kQ8LutKernels, isa);
    if (g && d)
      out.push_back({std::string(isa_name(isa)) + ": " + g->name + " + " + d->name + " + lut " + l->name, g->run,
                     g->signed_x, d->run, l->run});
  }
#if defined(MK_X86)
  if (isa_supported(Isa::avx2))
    for (const Q8GemmKernel& k : kQ8GemmEmulatedKernels)
      out.push_back({std::string(k.name) + " + avx2 dw", k.run, k.signed_x, q8_dwconv_avx2, q8_lut_avx2});
#endif
  return out;
}

void check(const Block& b, std::initializer_list<int64_t> bands, std::initializer_list<int> threads,
           const std::vector<int64_t>& chunks = {0}, const std::vector<int64_t>& groups = {0}) {
  for (const Path& path : paths()) {
    const std::vector<uint8_t> ref = unfused(b, path.gemm, path.signed_x, path.dw, 1);
    const int64_t total = static_cast<int64_t>(ref.size());
    for (int64_t band : bands)
      for (int64_t chunk : chunks)
        for (int64_t group : groups)
        for (int nt : threads) {
          Q8InvertedResidualParams p = b.p;
          p.band_rows = band;
          p.chunk_cols = chunk;
          p.group_images = group;
          std::vector<uint8_t> out(total + 2 * kCanary, kCanaryByte);
          uint8_t* o = out.data() + kCanary;
          q8_inverted_residual_run_with(path.gemm, path.signed_x, path.dw, p, b.x.data(), b.pe.data(), b.pe.size(),
                                        b.pd.data(), b.pd.size(), b.pp.data(), b.pp.size(), o, nt, path.lut);
          const std::string where = path.name + ", threads " + std::to_string(nt) + ", " + describe(p) +
                                    " images/item " + std::to_string(q8_inverted_residual_group_images(p, false, nt));
          for (int64_t i = 0; i < kCanary; ++i) {
            ASSERT_EQ(out[i], kCanaryByte) << "wrote before the output, " << where;
            ASSERT_EQ(out[kCanary + total + i], kCanaryByte) << "wrote past the output, " << where;
          }
          for (int64_t i = 0; i < total; ++i)
            ASSERT_EQ(int(o[i]), int(ref[i]))
                << "at " << i << " (pixel " << i / p.Cout << ", channel " << i % p.Cout << "), " << where;
        }
  }
}

}  // namespace

TEST(Q8InvertedResidual, PathsCovered) {
  for (const Path& p : paths()) std::printf("fused int8 block path: %s\n", p.name.c_str());
}

TEST(Q8InvertedResidual, MobileNetV2ShapesReduced) {
  // V2's block kinds (t, channels, stride, residual) on small maps (qemu keeps this cheap).
  std::mt19937 rng(4);
  struct S { int64_t h, cin, t, cout, s; };
  for (const S& s : {S{16, 32, 1, 16, 1}, S{16, 16, 6, 24, 2}, S{14, 24, 6, 24, 1}, S{9, 32, 6, 64, 2},
                     S{7, 64, 6, 64, 1}, S{7, 96, 6, 160, 2}, S{5, 160, 6, 160, 1}})
    check(make_block(rng, 1, s.h, s.h, s.cin, s.t, s.cout, s.s, 3, true, false, false, true, false), {0}, {1, 2});
}

TEST(Q8InvertedResidual, OddSizesDtypesZeroPoints) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> hw(1, 17), pick(0, 1 << 20);
  const int64_t chans[] = {1, 3, 5, 8, 9, 17, 24};
  const int64_t ts[] = {1, 4, 6};
  for (int i = 0; i < 36; ++i) {
    const int r = pick(rng);
    const int64_t h = hw(rng), w = hw(rng), cin = chans[r % 7], t = ts[(r / 7) % 3], s = 1 + (r / 21) % 2;
    const bool res = (r / 42) % 3 != 0;
    const int64_t cout = res ? cin : chans[(r / 126) % 7];
    const int64_t k = (r / 882) % 4 == 0 ? 5 : 3;
    if (h + 2 * (k / 2) < k || w + 2 * (k / 2) < k) continue;
    const bool xs = (r >> 12) & 1, ys = (r >> 13) & 1, ws = (r >> 14) & 1, wzp = (r >> 15) & 1;
    const int64_t n = (r >> 16) & 1 ? 3 : 1;
    check(make_block(rng, n, h, w, cin, t, cout, s, k, res, xs, ys, ws, wzp), {0, 1, 2}, {1, 3});
  }
}

TEST(Q8InvertedResidual, ResidualAddTies) {
  // Exact-half ratios put sums on .5: the add rounds them half to even.
  std::mt19937 rng(2);
  Block b = make_block(rng, 2, 6, 7, 16, 4, 16, 1, 3, true, false, false, true, false);
  b.p.x_scale = 0.5;
  b.p.p.scale = 0.25;
  b.p.out_scale = 1.0;
  check(b, {0}, {1});
}

#if defined(MK_X86)
namespace mk {
void q8_residual_add_avx512(const AddQuant& q, const uint8_t* a, const uint8_t* b, uint8_t* out, int64_t n);
}

TEST(Q8InvertedResidual, Avx512ResidualAddEqualsBaselineLoop) {
  // The fused block's AVX-512 epilogue add against the baseline loop the standalone add runs:
  // every length 0..99 (the 32-byte loop, the masked tail), both dtypes on each side, exact-half
  // ratios (ties) and ratios that clamp, in place on b and out of place; bytes around the output
  // stay untouched.
  if (!isa_supported(Isa::avx512)) GTEST_SKIP() << "no AVX-512";
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255), zp(0, 255);
  const double ratios[][3] = {{0.5, 0.25, 1.0}, {0.03, 0.05, 0.06}, {0.9, 1.7, 0.2}, {0.01, 0.02, 0.5}};
  int checked = 0;
  for (int r = 0; r < 64; ++r) {
    const bool as = r & 1, bs = (r >> 1) & 1, os = (r >> 2) & 1, in_place = (r >> 3) & 1;
    const double* f = ratios[(r >> 4) & 3];
    const int32_t lo = os ? -128 : 0;
    const AddQuant q = make_add_quant(f[0], (as ? -128 : 0) + zp(rng), as, f[1], (bs ? -128 : 0) + zp(rng), bs, f[2],
                                      lo + zp(rng), os);
    for (int64_t n = 0; n < 100; ++n) {
      std::vector<uint8_t> a(n), b(n + 2), want(n + 2), got(n + 2);
      for (auto& v : a) v = uint8_t(byte(rng));
      for (auto& v : b) v = uint8_t(byte(rng));
      want = b;
      got = b;
      residual_add(q, a.data(), b.data() + 1, want.data() + 1, n);
      if (in_place) {
        q8_residual_add_avx512(q, a.data(), got.data() + 1, got.data() + 1, n);
      } else {
        got.assign(n + 2, 0x5A);
        want.front() = want.back() = 0x5A;
        q8_residual_add_avx512(q, a.data(), b.data() + 1, got.data() + 1, n);
      }
      ASSERT_EQ(got, want) << "n " << n << " case " << r;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 6400);
}
#endif

TEST(Q8InvertedResidual, RejectsBadInput) {
  std::mt19937 rng(3);
  Block b = make_block(rng, 1, 6, 6, 8, 4, 8, 1, 3, true, false, false, true, false);
  std::vector<uint8_t> out(6 * 6 * 8);
  auto run = [&](const Q8InvertedResidualParams& p, const std::vector<uint8_t>& pe, const std::vector<uint8_t>& pd) {
    q8_inverted_residual_run(p, b.x.data(), pe.data(), pe.size(), pd.data(), pd.size(), b.pp.data(), b.pp.size(),
                             out.data(), 1);
  };
  Q8InvertedResidualParams p = b.p;
  p.S = 2;  // residual with stride 2
  EXPECT_THROW(run(p, b.pe, b.pd), std::invalid_argument);
  p = b.p;
  p.e.min = 200, p.e.max = 100;  // empty clamp
  EXPECT_THROW(run(p, b.pe, b.pd), std::invalid_argument);
  p = b.p;
  p.out_scale = 0;
  EXPECT_THROW(run(p, b.pe, b.pd), std::invalid_argument);
  p = b.p;
  p.PT = 3;  // padding > K - 1
  EXPECT_THROW(run(p, b.pe, b.pd), std::invalid_argument);
  EXPECT_THROW(run(b.p, b.pd, b.pd), std::invalid_argument);  // depthwise pack as the expand pack
  std::vector<uint8_t> bad = b.pd;
  bad[0] ^= 0xFF;
  EXPECT_THROW(run(b.p, b.pe, bad), std::invalid_argument);  // bad magic
  std::vector<uint8_t> short_pack(b.pd.begin(), b.pd.end() - 16);
  EXPECT_THROW(run(b.p, b.pe, short_pack), std::invalid_argument);
}

TEST(Q8Lut, EveryKernelEqualsTheScalarLoop) {
  // Every byte value, random tables, lengths around the vector widths, between canaries.
  std::mt19937 rng(6);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const Q8LutKernel& k : kQ8LutKernels) {
    if (!isa_supported(k.isa)) continue;
    for (int rep = 0; rep < 8; ++rep) {
      std::vector<uint8_t> table(256);
      for (auto& v : table) v = static_cast<uint8_t>(byte(rng));
      if (rep == 0)
        for (int i = 0; i < 256; ++i) table[i] = static_cast<uint8_t>(255 - i);
      for (int64_t n : {0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 255, 256, 257, 1000}) {
        std::vector<uint8_t> buf(n + 2 * kCanary, kCanaryByte);
        uint8_t* x = buf.data() + kCanary;
        for (int64_t i = 0; i < n; ++i) x[i] = static_cast<uint8_t>(n >= 256 ? (i * 7 + rep) & 255 : byte(rng));
        std::vector<uint8_t> want(x, x + n);
        for (auto& v : want) v = table[v];
        k.run(table.data(), x, n);
        for (int64_t i = 0; i < kCanary; ++i)
          ASSERT_TRUE(buf[i] == kCanaryByte && buf[kCanary + n + i] == kCanaryByte) << k.name << " n " << n;
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(int(x[i]), int(want[i])) << k.name << " n " << n << " at " << i;
      }
    }
  }
}

TEST(Q8InvertedResidual, LutStagesV3ShapesReduced) {
  // MobileNetV3's Hardswish blocks (expand and depthwise tables, hidden widths that are not
  // multiples of the input width) on small maps; plus a table on the project stage.
  std::mt19937 rng(12);
  struct S { int64_t h, cin, t, cout, s, k; int mask; };
  for (const S& s : {S{9, 40, 6, 80, 2, 3, 3}, S{7, 80, 3, 80, 1, 3, 3}, S{7, 112, 6, 160, 2, 5, 3},
                     S{5, 160, 6, 160, 1, 5, 3}, S{8, 16, 1, 16, 2, 3, 2}, S{6, 24, 4, 24, 1, 5, 7}}) {
    Block b = make_block(rng, 1, s.h, s.h, s.cin, s.t, s.cout, s.s, s.k, true, false, false, true, false);
    add_luts(b, rng, s.mask);
    check(b, {0, 1}, {1, 2});
  }
}

TEST(Q8InvertedResidual, LutStagesOddSizesDtypes) {
  std::mt19937 rng(13);
  std::uniform_int_distribution<int> hw(1, 13), pick(0, 1 << 20);
  const int64_t chans[] = {1, 3, 5, 9, 17, 24};
  for (int i = 0; i < 24; ++i) {
    const int r = pick(rng);
    const int64_t h = hw(rng), w = hw(rng), cin = chans[r % 6], t = 1 + (r / 6) % 3 * 2, s = 1 + (r / 18) % 2;
    const bool res = (r / 36) % 2 == 0;
    const int64_t cout = res ? cin : chans[(r / 72) % 6];
    const int64_t k = (r >> 10) & 1 ? 5 : 3;
    if (h + 2 * (k / 2) < k || w + 2 * (k / 2) < k) continue;
    const bool xs = (r >> 12) & 1, ys = (r >> 13) & 1, wzp = (r >> 15) & 1;
    const int64_t n = (r >> 16) & 1 ? 3 : 1;
    Block b = make_block(rng, n, h, w, cin, t, cout, s, k, res, xs, ys, true, wzp);
    add_luts(b, rng, 1 + (r >> 17) % 7);
    check(b, {0, 1, 2}, {1, 2});
  }
}

TEST(Q8InvertedResidual, RejectsBadTableQparams) {
  std::mt19937 rng(3);
  Block b = make_block(rng, 1, 6, 6, 8, 4, 8, 1, 3, true, false, false, true, false);
  add_luts(b, rng, 2);
  std::vector<uint8_t> out(6 * 6 * 8);
  auto run = [&](const Q8InvertedResidualParams& p) {
    q8_inverted_residual_run(p, b.x.data(), b.pe.data(), b.pe.size(), b.pd.data(), b.pd.size(), b.pp.data(),
                             b.pp.size(), out.data(), 1);
  };
  Q8InvertedResidualParams p = b.p;
  p.d.lut_scale = 0;
  EXPECT_THROW(run(p), std::invalid_argument);
  p = b.p;
  p.d.lut_zp = 300;
  EXPECT_THROW(run(p), std::invalid_argument);
  EXPECT_NO_THROW(run(b.p));
}

TEST(Q8InvertedResidual, ChannelSplitSmallImages) {
  // Small images (<= 7 output rows) whose batch does not spread over the threads: the threads
  // split the hidden channels (expand + depthwise per 16-channel share of the whole image, then the projection
  // per share of output channels). Ragged hidden widths (not multiples of 16, odd), t == 1,
  // stride 2, kernel 5, batch 1 and 3, with and without residual, tables, weight zero points
  // (row sums), both dtypes; each against the unfused ops, on 1, 2 and 3 threads.
  std::mt19937 rng(21);
  struct S { int64_t n, h, w, cin, t, cout, s, k; bool res; int luts; bool xs, ys, wzp; };
  for (const S& s : {S{1, 7, 7, 24, 5, 40, 1, 3, true, 0, false, false, false},     // hidden 120: 7.5 blocks
                     S{3, 7, 7, 24, 5, 24, 1, 3, true, 0, false, false, true},      // batch 3, row sums
                     S{1, 7, 5, 100, 1, 100, 1, 3, true, 0, false, false, false},   // t == 1
                     S{1, 13, 13, 16, 6, 56, 2, 3, false, 0, true, true, false},    // stride 2, 13 -> 7
                     S{3, 7, 7, 16, 6, 48, 1, 5, false, 3, false, false, false},    // kernel 5, tables
                     S{1, 7, 9, 13, 7, 35, 1, 3, false, 7, true, false, true},      // odd hidden 91, 7x9
                     S{1, 6, 9, 40, 3, 40, 1, 5, true, 2, false, true, false}}) {
    Block b = make_block(rng, s.n, s.h, s.w, s.cin, s.t, s.cout, s.s, s.k, s.res, s.xs, s.ys, true, s.wzp);
    if (s.luts) add_luts(b, rng, s.luts);
    const bool three = s.n % 3 != 0;  // 3 threads split only when the batch does not spread
    ASSERT_TRUE(q8_inverted_residual_splits_channels(b.p, 2)) << describe(b.p);
    if (three) ASSERT_TRUE(q8_inverted_residual_splits_channels(b.p, 3)) << describe(b.p);
    ASSERT_FALSE(q8_inverted_residual_splits_channels(b.p, 1));
    // Reported bytes: the shared expanded + depthwised image besides each thread's row sums.
    const Q8InvertedResidualParams& p = b.p;
    EXPECT_EQ(q8_inverted_residual_shared_bytes(p, 2), ((p.expand ? p.H * p.W : 0) + p.OH() * p.OW()) * p.Chid);
    EXPECT_EQ(q8_inverted_residual_scratch_bytes(p, s.wzp, 2), s.wzp ? 4 * p.H * p.W : 0);
    EXPECT_EQ(q8_inverted_residual_shared_bytes(p, 1), 0);
    if (three) check(b, {0}, {1, 2, 3});
    else check(b, {0}, {1, 2});
  }
}

TEST(Q8InvertedResidual, ChannelSplitOnlyOnSmallImages) {
  std::mt19937 rng(22);
  const Block small = make_block(rng, 1, 7, 7, 16, 6, 32, 1, 3, true, false, false, true, false);
  EXPECT_TRUE(q8_inverted_residual_splits_channels(small.p, 2));
  Q8InvertedResidualParams p = small.p;
  p.N = 2;  // one image per thread instead
  EXPECT_FALSE(q8_inverted_residual_splits_channels(p, 2));
  p = small.p;
  p.H = p.W = 28;  // the 1/8 scratch rule's sizes keep their bands
  p.S = 2;
  p.residual = false;
  EXPECT_FALSE(q8_inverted_residual_splits_channels(p, 2));
  p = small.p;
  p.H = 8;  // 8 output rows
  EXPECT_FALSE(q8_inverted_residual_splits_channels(p, 2));
  p.H = p.W = 14;  // 14 output rows: row pieces (measured faster on the AVX-512/AMX Xeon)
  EXPECT_FALSE(q8_inverted_residual_splits_channels(p, 2));
}

// The kernels' setup/run split (kernels/q8-gemm/q8_gemm.h Q8GemmPrepareFn, q8-dwconv likewise)
// against the same kernel preparing per call: narrow / wide / ragged column blocks, odd K,
// sub-ranges of columns and channels, weight zero points.
TEST(Q8KernelPrepare, GemmPreparedEqualsPerCall) {
  std::mt19937 rng(31);
  std::uniform_int_distribution<int> byte(0, 255), bias(-5000, 5000);
  std::uniform_real_distribution<float> sc(0.001f, 0.02f);
  for (const Q8GemmKernel& k : kQ8GemmKernels) {
    if (!k.prepare || !isa_supported(k.isa)) continue;
    for (int64_t K : {1, 3, 8, 33, 96, 255, 300})
      for (int64_t N : {1, 8, 9, 16, 24, 40, 57})
        for (bool wzp : {false, true}) {
          const int64_t M = 1 + byte(rng) % 14;
          std::vector<uint8_t> pack = pack_gemm(rng, K, N, 0.03, true, wzp);
          const Q8GemmLayout l = q8_gemm_layout(K, N);
          std::vector<int32_t> b(l.npad), z(l.npad), rs(M);
          std::vector<float> s(l.npad);
          for (int64_t i = 0; i < l.npad; ++i) b[i] = bias(rng), s[i] = sc(rng), z[i] = wzp ? byte(rng) % 7 - 3 : 0;
          std::vector<uint8_t> x(M * K);
          for (auto& v : x) v = static_cast<uint8_t>(byte(rng));
          for (int64_t m = 0; m < M; ++m) rs[m] = bias(rng);
          Q8GemmParams g{};
          g.M = M, g.K = K, g.N = N, g.x = x.data(), g.w = reinterpret_cast<const int8_t*>(pack.data() + l.weights);
          g.bias = b.data(), g.scale = s.data(), g.wzp = wzp ? z.data() : nullptr, g.rowsum = rs.data();
          g.x_flip = 0, g.y_zp = 3, g.y_lo = -3, g.y_hi = 200;
          const int64_t bytes = k.prepare(g, nullptr);
          std::vector<uint8_t> prep_raw(bytes + 64);
          void* prep = prep_raw.data() + (64 - reinterpret_cast<uintptr_t>(prep_raw.data()) % 64) % 64;
          if (bytes > 0) EXPECT_EQ(k.prepare(g, prep), bytes);
          for (int64_t n0 = 0; n0 < N; n0 += 16)
            for (int64_t n1 : {std::min(N, n0 + 5), std::min(N, n0 + 16), N}) {
              std::vector<uint8_t> want(M * N, 0x5A), got(M * N, 0x5A);
              g.y = want.data();
              g.prepared = nullptr;
              k.run(g, 0, M, n0, n1);
              g.y = got.data();
              g.prepared = bytes > 0 ? prep : nullptr;
              k.run(g, 0, M, n0, n1);
              ASSERT_EQ(got, want) << k.name << " K " << K << " N " << N << " M " << M << " cols " << n0 << ".."
                                   << n1 << " wzp " << wzp;
            }
        }
  }
}

// A random uint8 depthwise case on which a kernel runs directly (not through the op): a pack, the
// effective bias and requantization scales, an H x W x C input and its zero-point row; q points
// into them (so a case is neither copied nor moved) and has no output yet.
struct DwKernelCase {
  std::vector<uint8_t> pack, x, zero;
  std::vector<int32_t> bias;
  std::vector<float> scale;
  Q8DwconvParams q{};
  int64_t OH, OW;
  DwKernelCase(std::mt19937& rng, int64_t C, int64_t KS, int64_t S, int64_t H, int64_t W) {
    std::uniform_int_distribution<int> byte(0, 255), b(-5000, 5000);
    std::uniform_real_distribution<float> sc(0.001f, 0.02f);
    const int64_t pad = KS / 2;
    OH = (H + 2 * pad - KS) / S + 1;
    OW = (W + 2 * pad - KS) / S + 1;
    pack = pack_dw(rng, C, KS, 0.03, true, false);
    const Q8DwLayout l = q8_dwconv_layout(C, KS, KS);
    bias.resize(l.cpad);
    scale.resize(l.cpad);
    for (int64_t i = 0; i < l.cpad; ++i) bias[i] = b(rng), scale[i] = sc(rng);
    x.resize(H * W * C);
    zero.assign(C, 77);
    for (auto& v : x) v = static_cast<uint8_t>(byte(rng));
    q = Q8DwconvParams{1, H, W, C, KS, KS, S, S, 1, 1, pad, pad, OH, OW, x.data(),
                       reinterpret_cast<const int16_t*>(pack.data() + l.weights), bias.data(), scale.data(),
                       zero.data(), nullptr, false, false, 5, -5.f, 250.f};
  }
  DwKernelCase(const DwKernelCase&) = delete;
  DwKernelCase& operator=(const DwKernelCase&) = delete;
};

TEST(Q8KernelPrepare, DwconvPreparedEqualsPerCall) {
  std::mt19937 rng(32);
  for (const Q8DwconvKernel& k : kQ8DwconvKernels) {
    if (!k.prepare || !isa_supported(k.isa)) continue;
    for (int64_t C : {1, 15, 16, 17, 40, 72})
      for (int64_t KS : {3, 5})
        for (int64_t S : {1, 2})
          for (int64_t W : {3, 13, 30}) {
            DwKernelCase dc(rng, C, KS, S, 6, W);
            const int64_t OH = dc.OH, OW = dc.OW;
            if (OW < 1) continue;
            Q8DwconvParams& q = dc.q;
            const int64_t bytes = k.prepare(q, nullptr);
            std::vector<uint8_t> prep_raw(bytes + 64);
            void* prep = prep_raw.data() + (64 - reinterpret_cast<uintptr_t>(prep_raw.data()) % 64) % 64;
            if (bytes > 0) EXPECT_EQ(k.prepare(q, prep), bytes);
            for (int64_t c0 = 0; c0 < C; c0 += 16)
              for (int64_t c1 : {std::min(C, c0 + 16), C}) {
                std::vector<uint8_t> want(OH * OW * C, 0x5A), got(OH * OW * C, 0x5A);
                q.y = want.data();
                q.prepared = nullptr;
                k.run(q, 0, OH, c0, c1);
                q.y = got.data();
                q.prepared = bytes > 0 ? prep : nullptr;
                k.run(q, 1, OH, c0, c1);  // two calls, as bands
                k.run(q, 0, 1, c0, c1);
                ASSERT_EQ(got, want) << k.name << " C " << C << " k" << KS << " s" << S << " W " << W << " ch " << c0
                                     << ".." << c1;
              }
          }
  }
}


// Rows made and projected in chunks of output columns (forced chunk_cols; the automatic choice
// takes them only on >= 28-row images, below): widths around the chunk sizes, W = 1 and 2,
// chunk 1, OW - 1, OW and past it, stride 1 and 2, kernel 3 and 5, t 1/4/6, residual, tables,
// weight zero points (row sums per chunk), both dtypes, batch 1 and 3, bands 1 and 2 and
// automatic, 1-3 threads. Heights keep more than 14 output rows so that 2 threads split rows
// (the small-image channel split takes no chunks).
TEST(Q8InvertedResidual, ColumnChunksOddWidths) {
  std::mt19937 rng(41);
  struct S { int64_t n, h, w, cin, t, cout, s, k; bool res; int luts; bool sig, wzp; std::vector<int64_t> chunks; };
  const std::vector<S> cases = {
      {1, 17, 1, 8, 4, 8, 1, 3, true, 0, false, false, {1, 2}},              // W = 1: one column, nothing to chunk
      {3, 16, 2, 5, 6, 7, 1, 3, false, 0, false, true, {1}},                 // W = 2, row sums
      {1, 15, 5, 9, 4, 9, 1, 5, true, 2, true, false, {1, 2, 4}},            // kernel 5: windows past both edges
      {1, 31, 13, 16, 6, 24, 2, 3, false, 0, false, false, {1, 3, 4, 6}},    // stride 2, OW 7
      {3, 17, 12, 24, 6, 24, 1, 3, true, 7, false, true, {5, 11, 12, 13}},   // W a multiple of 12; tables
      {1, 18, 25, 17, 6, 17, 1, 3, true, 0, true, false, {12, 13, 24}},      // 25 = 12 + 12 + 1
      {1, 30, 29, 8, 6, 20, 2, 5, false, 3, false, true, {4, 12, 14}},       // stride 2 kernel 5, OW 15
      {3, 16, 24, 40, 1, 40, 1, 3, true, 4, false, false, {7, 12, 23}},      // t == 1: windows of x itself
  };
  for (const S& s : cases) {
    Block b = make_block(rng, s.n, s.h, s.w, s.cin, s.t, s.cout, s.s, s.k, s.res, s.sig, s.sig, true, s.wzp);
    if (s.luts) add_luts(b, rng, s.luts);
    ASSERT_FALSE(q8_inverted_residual_splits_channels(b.p, 2)) << describe(b.p);
    for (int64_t c : s.chunks) {
      Q8InvertedResidualParams p = b.p;
      p.chunk_cols = c;
      EXPECT_EQ(q8_inverted_residual_chunk_cols(p, s.wzp), std::min(c, p.OW()));
    }
    check(b, {1, 2}, {1, 2, 3}, s.chunks);  // band 1: the automatic choice where chunks are taken
  }
}

// The automatic choice on 28-row images (MobileNetV2 at 224: blocks 5-7 and the same at batch
// 3): column chunks where one-row bands alone exceed 1/8 of the expanded tensor, so the scratch
// meets 1/8 with and without row sums; none at 28x28 stride 2 without row sums (exactly 1/8) or
// with a 5x5 kernel (5 expanded rows already exceed 1/8).
TEST(Q8InvertedResidual, ColumnChunksAt28Rows) {
  std::mt19937 rng(42);
  struct S { int64_t n, cin, t, cout, s, k; int luts; bool wzp, chunked; };
  for (const S& s : {S{1, 32, 6, 32, 1, 3, 0, false, true}, S{3, 32, 6, 32, 1, 3, 0, true, true},
                     S{1, 32, 6, 32, 1, 3, 3, false, true}, S{1, 32, 6, 64, 2, 3, 0, false, false},
                     S{3, 32, 6, 64, 2, 3, 0, true, true}, S{1, 16, 6, 16, 1, 5, 0, false, false}}) {
    Block b = make_block(rng, s.n, 28, 28, s.cin, s.t, s.cout, s.s, s.k, true, false, false, true, s.wzp);
    if (s.luts) add_luts(b, rng, s.luts);
    const int64_t chunk = q8_inverted_residual_chunk_cols(b.p, s.wzp);
    const int64_t scratch = q8_inverted_residual_scratch_bytes(b.p, s.wzp);
    const std::string what = describe(b.p) + " wzp " + std::to_string(s.wzp);
    EXPECT_EQ(chunk < b.p.OW(), s.chunked) << what << " chunk " << chunk;
    if (s.k == 3) EXPECT_LE(scratch * 8, b.p.H * b.p.W * b.p.Chid) << what;
    if (s.chunked) {
      EXPECT_EQ(q8_inverted_residual_band_rows(b.p), 1) << what;
      EXPECT_NE(q8_inverted_residual_kernel_name(b.p, s.wzp).find(", chunk " + std::to_string(chunk)),
                std::string::npos);
    }
    check(b, {0}, {1, 2, 3});
  }
}

// Several whole images per work item (group_images; automatic on small images at batch > 1):
// batch 2-5, odd sizes 1..17, stride 1 and 2, kernel 3 and 5, t 1/4/6, residual, tables,
// weight zero points, both dtypes, forced groups of 1, 2, 3 and 5 images and the automatic
// choice, 1-3 threads (3 images on 2 threads split rows or channels instead: compared too).
TEST(Q8InvertedResidual, SeveralImagesPerItem) {
  std::mt19937 rng(45);
  struct S { int64_t n, h, w, cin, t, cout, s, k; bool res; int luts; bool sig, wzp; };
  const std::vector<S> cases = {
      {2, 7, 7, 16, 6, 16, 1, 3, true, 0, false, false},    // V2's 7x7 blocks, reduced
      {4, 7, 7, 20, 6, 24, 1, 3, false, 0, false, true},    // row sums
      {5, 5, 3, 9, 4, 9, 1, 3, true, 5, true, false},       // tables, int8
      {3, 1, 1, 8, 6, 8, 1, 3, true, 0, false, false},      // 1x1 images
      {4, 9, 11, 12, 6, 17, 2, 3, false, 2, false, true},   // stride 2, odd sizes
      {5, 17, 2, 5, 1, 5, 1, 3, true, 0, true, true},       // t == 1: the depthwise reads x
      {4, 6, 6, 8, 4, 8, 2, 5, false, 7, false, false},     // kernel 5 stride 2
      {2, 13, 5, 24, 6, 24, 1, 5, true, 0, false, true},    // kernel 5
  };
  for (const S& s : cases) {
    Block b = make_block(rng, s.n, s.h, s.w, s.cin, s.t, s.cout, s.s, s.k, s.res, s.sig, s.sig, true, s.wzp);
    if (s.luts) add_luts(b, rng, s.luts);
    check(b, {0}, {1, 2, 3}, {0}, {0, 1, 2, 3, 5});
  }
  // The automatic choice: 7x7 images at batch 8 go 4 per item on 1 and 2 threads (2 on 4 threads:
  // as many images as a thread has), equal groups (6 images per thread: 3 + 3), none on 14x14.
  Block b = make_block(rng, 8, 7, 7, 32, 6, 32, 1, 3, true, false, false, true, false);
  EXPECT_EQ(q8_inverted_residual_group_images(b.p, false, 1), 4);
  EXPECT_EQ(q8_inverted_residual_group_images(b.p, false, 2), 4);
  EXPECT_EQ(q8_inverted_residual_group_images(b.p, false, 4), 2);
  b.p.N = 6;
  EXPECT_EQ(q8_inverted_residual_group_images(b.p, false, 1), 3);
  b.p.N = 1;
  EXPECT_EQ(q8_inverted_residual_group_images(b.p, false, 1), 1);
  b.p.N = 8, b.p.H = b.p.W = 14;
  EXPECT_EQ(q8_inverted_residual_group_images(b.p, false, 1), 1);
}

// What the scratch size reports is what a call uses: on a fresh thread (its reusable scratch
// not grown by earlier calls) one-thread calls allocate exactly that many bytes, so under ASan
// any access past them fails here. Chunked and whole-row shapes, with and without row sums.
TEST(Q8InvertedResidual, ScratchBytesAreWhatRuns) {
  std::mt19937 rng(43);
  struct S { int64_t n, h, cin, t, cout, s; bool wzp; int64_t images; };  // images per work item
  for (const S& s : {S{1, 28, 32, 6, 32, 1, false, 1}, S{1, 28, 32, 6, 32, 1, true, 1}, S{1, 28, 32, 6, 64, 2, true, 1},
                     S{1, 30, 24, 6, 24, 1, true, 1}, S{1, 17, 16, 4, 8, 2, false, 1}, S{1, 112, 32, 1, 16, 1, true, 1},
                     S{4, 7, 32, 6, 32, 1, false, 4}, S{3, 7, 16, 6, 24, 1, true, 3}, S{5, 6, 8, 1, 8, 1, true, 3}}) {
    const Block b = make_block(rng, s.n, s.h, s.h, s.cin, s.t, s.cout, s.s, 3, true, false, false, true, s.wzp);
    EXPECT_EQ(q8_inverted_residual_group_images(b.p, s.wzp, 1), s.images) << describe(b.p);
    // From 28 rows on, 1/8 of the expanded tensor (112x112 t == 1 with row sums: 12-row bands, not 14)
    if (s.h >= 28) EXPECT_LE(q8_inverted_residual_scratch_bytes(b.p, s.wzp) * 8, s.h * s.h * b.p.Chid) << describe(b.p);
    const std::vector<uint8_t> ref = unfused(b, q8_gemm_scalar, false, q8_dwconv_scalar, 1);
    std::vector<uint8_t> out(ref.size());
    std::thread([&] {
      q8_inverted_residual_run(b.p, b.x.data(), b.pe.data(), b.pe.size(), b.pd.data(), b.pd.size(), b.pp.data(),
                               b.pp.size(), out.data(), 1);
    }).join();
    EXPECT_EQ(out, ref) << describe(b.p);
  }
}

// The fused block's column chunks call the depthwise kernels on a window of output columns:
// x at column 0 (W stays the row stride and the right edge), the left padding minus the
// columns skipped (negative inside the row). Every kernel must equal its own whole-row output.
TEST(Q8KernelPrepare, DwconvColumnWindows) {
  std::mt19937 rng(44);
  for (const Q8DwconvKernel& k : kQ8DwconvKernels) {
    if (!isa_supported(k.isa)) continue;
    for (int64_t C : {16, 17, 40})
      for (int64_t KS : {3, 5})
        for (int64_t S : {1, 2})
          for (int64_t W : {7, 13, 30}) {
            DwKernelCase dc(rng, C, KS, S, 5, W);
            const int64_t OH = dc.OH, OW = dc.OW, pad = KS / 2;
            Q8DwconvParams& q = dc.q;
            std::vector<uint8_t> whole(OH * OW * C);
            q.y = whole.data();
            k.run(q, 0, OH, 0, C);
            for (int64_t chunk : {1, 3, 4, 12})
              for (int64_t c0 = 0; c0 < OW; c0 += chunk) {
                const int64_t cols = std::min(chunk, OW - c0);
                std::vector<uint8_t> got(OH * cols * C);
                Q8DwconvParams w = q;
                w.PL = pad - c0 * S;
                w.OW = cols;
                w.y = got.data();
                k.run(w, 0, OH, 0, C);
                for (int64_t r = 0; r < OH; ++r)
                  ASSERT_TRUE(std::equal(got.begin() + r * cols * C, got.begin() + (r + 1) * cols * C,
                                         whole.begin() + (r * OW + c0) * C))
                      << k.name << " C " << C << " k" << KS << " s" << S << " W " << W << " columns " << c0 << "+"
                      << cols << " row " << r;
              }
          }
  }
}
