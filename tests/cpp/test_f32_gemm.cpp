// Every fp32 GEMM kernel in the kernel list (dispatched and alternate tiles) against an fp64
// loop on the unpacked torch weight layout, over odd sizes, row/column strides, residuals and
// split ranges. C lives between canary zones and its stride padding is checked too, so an
// out-of-range write is caught even without AddressSanitizer.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/isa.h"
#include "kernels/f32-gemm/f32_gemm.h"
#include "kernels/f32-gemm/f32_gemm_kernels.h"
#include "ops/f32_conv1x1_op.h"
#include "f32_reference.h"

using namespace mk;

namespace {

using mktest::act_ref;

constexpr int64_t kCanary = 64;
constexpr float kCanaryValue = -12345.f;

struct Case {
  int64_t m, k, n, lda_pad, ldc_pad;
  bool residual;
  Activation act;
};

std::string describe(const Case& c) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "M%ld K%ld N%ld lda+%ld ldc+%ld res%d act%d", (long)c.m, (long)c.k,
                (long)c.n, (long)c.lda_pad, (long)c.ldc_pad, (int)c.residual, (int)c.act);
  return buf;
}

void check(const Case& cs, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-2.f, 2.f);
  const int64_t lda = cs.k + cs.lda_pad, ldc = cs.n + cs.ldc_pad, ldr = cs.n + 3;
  std::vector<float> a(cs.m * lda), w(cs.n * cs.k), b(cs.n), r(cs.m * ldr);
  for (auto* v : {&a, &w, &b, &r})
    for (float& x : *v) x = dist(rng);
  std::vector<float> packed(f32_gemm_packed_size(cs.k, cs.n));
  f32_gemm_pack(w.data(), b.data(), cs.k, cs.n, packed.data());
  std::vector<double> ref(cs.m * cs.n);
  for (int64_t i = 0; i < cs.m; ++i)
    for (int64_t j = 0; j < cs.n; ++j) {
      double acc = b[j];
      for (int64_t q = 0; q < cs.k; ++q) acc += double(a[i * lda + q]) * w[j * cs.k + q];
      ref[i * cs.n + j] = act_ref(acc, cs.act) + (cs.residual ? r[i * ldr + j] : 0.0);
    }
  const F32GemmParams p{cs.m, cs.k, cs.n, lda, ldc, cs.act, cs.residual ? r.data() : nullptr, ldr};
  const int64_t total = cs.m * ldc;
  for (const F32GemmKernel& k : kF32GemmKernels) {
    if (!isa_supported(k.isa)) continue;  // reported by KernelsCovered
    std::vector<float> out(total + 2 * kCanary, kCanaryValue);
    float* o = out.data() + kCanary;
    // Split the way the threaded op does: two row ranges, a column split at a panel boundary.
    const int64_t mmid = cs.m / 2, nmid = cs.n > 16 ? 16 : cs.n;
    const float* pk = f32_gemm_pack_data(packed.data());
    k.run(p, a.data(), pk, o, 0, mmid, 0, nmid);
    k.run(p, a.data(), pk, o, 0, mmid, nmid, cs.n);
    k.run(p, a.data(), pk, o, mmid, cs.m, 0, cs.n);
    for (int64_t i = 0; i < kCanary; ++i) {
      ASSERT_EQ(out[i], kCanaryValue) << k.name << " wrote before C, " << describe(cs);
      ASSERT_EQ(out[kCanary + total + i], kCanaryValue) << k.name << " wrote past C, " << describe(cs);
    }
    for (int64_t i = 0; i < cs.m; ++i) {
      for (int64_t j = cs.n; j < ldc; ++j)
        ASSERT_EQ(o[i * ldc + j], kCanaryValue) << k.name << " wrote into row padding, " << describe(cs);
      for (int64_t j = 0; j < cs.n; ++j) {
        // fp32 sums of K products of magnitude <= 4: the error grows like sqrt(K); a wrong or
        // missing term (>= ~1e-3) fails it.
        const double e = ref[i * cs.n + j];
        const double tol = 3e-6 * (1.0 + std::fabs(e)) * (4.0 + std::sqrt(double(cs.k)) * 4.0);
        ASSERT_NEAR(o[i * ldc + j], e, tol) << k.name << " at row " << i << " col " << j << ", " << describe(cs);
      }
    }
  }
}

}  // namespace

TEST(F32Gemm, KernelsCovered) {
  for (const F32GemmKernel& k : kF32GemmKernels)
    std::printf("kernel %-18s %s\n", k.name, isa_supported(k.isa) ? "tested" : "NOT RUN: this CPU lacks it");
}

TEST(F32Gemm, OddSizesEveryActivation) {
  std::mt19937 rng(11);
  const int64_t ms[] = {1, 2, 5, 7, 13, 25};
  const int64_t ks[] = {1, 3, 8, 17, 40};
  // 17, 24, 40, 56: a last strip of 17..24 columns (the 1.5-panel tile on AVX2/NEON).
  const int64_t ns[] = {1, 7, 16, 17, 24, 33, 40, 48, 56, 67};
  int i = 0;
  for (int64_t m : ms)
    for (int64_t k : ks)
      for (int64_t n : ns) {
        ++i;
        const Case c{m, k, n, i % 3, (i / 3) % 2 * 5, i % 5 == 0, static_cast<Activation>(i % 4)};
        check(c, rng);
        if (HasFatalFailure()) return;
      }
}

TEST(F32Gemm, MobileNetShapes) {
  std::mt19937 rng(12);
  // (pixels, Cin, Cout): expand, project with residual, the 960-wide late layers.
  const Case cases[] = {
      {112, 16, 96, 0, 0, false, Activation::relu6},  {56, 144, 24, 0, 0, true, Activation::none},
      {49, 160, 960, 0, 0, false, Activation::relu6}, {49, 960, 160, 0, 0, true, Activation::none},
      {98, 32, 192, 0, 0, false, Activation::hardswish},
  };
  for (const Case& c : cases) {
    check(c, rng);
    if (HasFatalFailure()) return;
  }
}

// The fused block's channel tiles: C = sum over K-slices [k0, k1) of A[:, k0:k1] * B[k0:k1, :],
// one call per slice on `packed + k0 * 16` with pack_k = K, the first from the bias, the rest
// accumulating from C, the last with the activation and residual. Slices of 16 and ragged ones.
TEST(F32Gemm, KSlicesAccumulateInC) {
  std::mt19937 rng(14);
  std::uniform_real_distribution<float> dist(-2.f, 2.f);
  const int64_t shapes[][4] = {{13, 40, 24, 16}, {7, 33, 17, 16}, {25, 96, 67, 32}, {6, 17, 40, 16}, {11, 64, 33, 48}};
  for (const auto& s : shapes) {
    const int64_t m = s[0], k = s[1], n = s[2], slice = s[3], ldc = n + 5, ldr = n + 3;
    std::vector<float> a(m * k), w(n * k), b(n), r(m * ldr);
    for (auto* v : {&a, &w, &b, &r})
      for (float& x : *v) x = dist(rng);
    std::vector<float> packed(f32_gemm_packed_size(k, n));
    f32_gemm_pack(w.data(), b.data(), k, n, packed.data());
    for (const F32GemmKernel& kern : kF32GemmKernels) {
      if (!isa_supported(kern.isa)) continue;
      std::vector<float> out(m * ldc + 2 * kCanary, kCanaryValue);
      float* o = out.data() + kCanary;
      for (int64_t k0 = 0; k0 < k; k0 += slice) {
        const int64_t kw = std::min(slice, k - k0);
        const bool last = k0 + slice >= k;
        F32GemmParams p{m, kw, n, k, ldc, last ? Activation::relu6 : Activation::none,
                        last ? r.data() : nullptr, ldr};
        p.pack_k = k;
        p.accumulate = k0 > 0;
        const float* pk = f32_gemm_pack_data(packed.data()) + k0 * kF32GemmPanel;
        kern.run(p, a.data() + k0, pk, o, 0, m / 2, 0, n);
        kern.run(p, a.data() + k0, pk, o, m / 2, m, 0, n);
      }
      const std::string where = std::string(kern.name) + " M" + std::to_string(m) + " K" + std::to_string(k) +
                                " N" + std::to_string(n) + " slice " + std::to_string(slice);
      for (int64_t i = 0; i < kCanary; ++i) {
        ASSERT_EQ(out[i], kCanaryValue) << "wrote before C, " << where;
        ASSERT_EQ(out[kCanary + m * ldc + i], kCanaryValue) << "wrote past C, " << where;
      }
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(o[i * ldc + j], kCanaryValue) << "row padding, " << where;
        for (int64_t j = 0; j < n; ++j) {
          double acc = b[j];
          for (int64_t q = 0; q < k; ++q) acc += double(a[i * k + q]) * w[j * k + q];
          const double e = act_ref(acc, Activation::relu6) + r[i * ldr + j];
          ASSERT_NEAR(o[i * ldc + j], e, 3e-6 * (1.0 + std::fabs(e)) * (4.0 + std::sqrt(double(k)) * 4.0))
              << "at row " << i << " col " << j << ", " << where;
        }
      }
    }
  }
}

TEST(F32Gemm, ThreadedOpMatchesSingleThread) {
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (const auto& s : {std::array<int64_t, 3>{49, 160, 960}, {3, 24, 144}, {200, 16, 24}}) {
    const int64_t m = s[0], k = s[1], n = s[2];
    std::vector<float> a(m * k), w(n * k), b(n);
    for (auto* v : {&a, &w, &b})
      for (float& x : *v) x = dist(rng);
    std::vector<float> packed(f32_gemm_packed_size(k, n)), o1(m * n), o2(m * n);
    f32_gemm_pack(w.data(), b.data(), k, n, packed.data());
    const F32GemmParams p{m, k, n, k, n, Activation::relu, nullptr, 0};
    f32_conv1x1_run(p, a.data(), packed.data(), packed.size(), o1.data(), 1);
    f32_conv1x1_run(p, a.data(), packed.data(), packed.size(), o2.data(), 3);
    EXPECT_EQ(o1, o2) << "M" << m << " K" << k << " N" << n;  // same kernel, same sums: exact
  }
}

TEST(F32Gemm, ValidationRejectsBadParams) {
  float dummy = 0.f;
  std::vector<float> w(64, 0.f), packed(f32_gemm_packed_size(8, 8));
  f32_gemm_pack(w.data(), nullptr, 8, 8, packed.data());
  const F32GemmParams good{4, 8, 8, 8, 8, Activation::none, nullptr, 0};
  auto bad = [&](F32GemmParams p) {
    EXPECT_THROW(f32_conv1x1_run(p, &dummy, packed.data(), packed.size(), &dummy, 1), std::invalid_argument);
  };
  F32GemmParams p = good; p.K = 0; bad(p);
  p = good; p.N = -1; bad(p);
  p = good; p.lda = 7; bad(p);
  p = good; p.ldc = 7; bad(p);
  p = good; p.M = -1; bad(p);
  p = good; p.act = static_cast<Activation>(9); bad(p);
  p = good; p.residual = &dummy; p.ldr = 2; bad(p);
  p = good; p.pack_k = 16; bad(p);  // K-slices are the fused block's, not the op's
  p = good; p.accumulate = true; bad(p);
  // A pack of another shape, a truncated pack, and something that is no pack at all.
  p = good; p.K = 7; p.lda = 7; bad(p);
  EXPECT_THROW(f32_conv1x1_run(good, &dummy, packed.data(), packed.size() - 1, &dummy, 1), std::invalid_argument);
  EXPECT_THROW(f32_conv1x1_run(good, &dummy, w.data(), w.size(), &dummy, 1), std::invalid_argument);
}
