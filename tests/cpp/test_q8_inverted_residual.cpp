// The fused int8 inverted-residual op against our three unfused int8 ops run in sequence
// (q8_gemm_run -> q8_dwconv_run -> q8_gemm_run) plus an fp32 residual add written here with
// every product and sum rounded separately (volatile: no FMA contraction on aarch64), bit for
// bit, at every supported ISA level and, on x86, on the AVX2 emulation of the VNNI tiling.
// Covers odd sizes, stride 1 and 2, t == 1, residuals, both dtypes, weight zero points (row
// sums), forced band heights (1, 2, auto) and 1-3 threads; the output sits between canaries.
// Stages with a lookup table (Hardswish) are checked against the table applied after the
// unfused op; the table kernels themselves against the scalar loop on every byte.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/q8-dwconv/q8_dwconv.h"
#include "kernels/q8-dwconv/q8_dwconv_kernels.h"
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
  std::snprintf(buf, sizeof buf, "N%ld %ldx%ld %ld->%ld->%ld k%ld s%ld exp%d res%d x%c y%c band%ld", (long)p.N,
                (long)p.H, (long)p.W, (long)p.Cin, (long)p.Chid, (long)p.Cout, (long)p.K, (long)p.S, (int)p.expand,
                (int)p.residual, p.x_signed ? 's' : 'u', p.y_signed ? 's' : 'u', (long)p.band_rows);
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

void check(const Block& b, std::initializer_list<int64_t> bands, std::initializer_list<int> threads) {
  for (const Path& path : paths()) {
    const std::vector<uint8_t> ref = unfused(b, path.gemm, path.signed_x, path.dw, 1);
    const int64_t total = static_cast<int64_t>(ref.size());
    for (int64_t band : bands)
      for (int nt : threads) {
        Q8InvertedResidualParams p = b.p;
        p.band_rows = band;
        std::vector<uint8_t> out(total + 2 * kCanary, kCanaryByte);
        uint8_t* o = out.data() + kCanary;
        q8_inverted_residual_run_with(path.gemm, path.signed_x, path.dw, p, b.x.data(), b.pe.data(), b.pe.size(),
                                      b.pd.data(), b.pd.size(), b.pp.data(), b.pp.size(), o, nt, path.lut);
        const std::string where = path.name + ", threads " + std::to_string(nt) + ", " + describe(p);
        for (int64_t i = 0; i < kCanary; ++i) {
          ASSERT_EQ(out[i], kCanaryByte) << "wrote before the output, " << where;
          ASSERT_EQ(out[kCanary + total + i], kCanaryByte) << "wrote past the output, " << where;
        }
        for (int64_t i = 0; i < total; ++i)
          ASSERT_EQ(int(o[i]), int(ref[i])) << "at " << i << " (pixel " << i / p.Cout << ", channel " << i % p.Cout
                                            << "), " << where;
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
