// The fp32 depthwise op with non-temporal output stores (dispatch/cache_policy.h) against the
// same op with normal stores, bit for bit, at every supported ISA level and 1-3 threads: the
// store kind must change where the bytes go, never what they are. Outputs sit between canary
// zones (an out-of-bounds store is caught without AddressSanitizer), and an output that is not
// 64-byte aligned must fall back to normal stores (a misaligned streaming store would fault).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dispatch/cache_policy.h"
#include "dispatch/isa.h"
#include "kernels/f32-dwconv/f32_dwconv.h"
#include "ops/f32_dwconv_op.h"

using namespace mk;

namespace {

constexpr int64_t kCanary = 64;  // floats: one cache line's worth of multiple 16-float vectors
constexpr float kCanaryValue = -12345.f;

struct Case {
  int64_t n, h, w, c, k, s;
};

// Output storage whose first output float sits `misalign` floats past a 64-byte boundary, with
// canaries on both sides.
struct OutBuf {
  std::vector<float> store;
  float* out;
  int64_t size;
  OutBuf(int64_t size, int64_t misalign) : store(size + 2 * kCanary + 32, kCanaryValue), size(size) {
    auto base = reinterpret_cast<uintptr_t>(store.data() + kCanary);
    base = (base + 63) & ~uintptr_t(63);
    out = reinterpret_cast<float*>(base) + misalign;
  }
  bool canaries_intact() const {
    for (const float* p = store.data(); p < out; ++p)
      if (std::memcmp(p, &kCanaryValue, sizeof(float)) != 0) return false;
    for (const float* p = out + size; p < store.data() + store.size(); ++p)
      if (std::memcmp(p, &kCanaryValue, sizeof(float)) != 0) return false;
    return true;
  }
};

std::vector<float> run(const Case& cs, NontemporalMode mode, int threads, int64_t misalign, bool* canaries_ok) {
  const int64_t pad = cs.k / 2;
  F32DwconvParams p{cs.n, cs.h, cs.w, cs.c, 1, cs.k, cs.k, cs.s, cs.s, 1, 1, pad, pad, 0, 0, Activation::relu6};
  p.OH = (cs.h + 2 * pad - cs.k) / cs.s + 1;
  p.OW = (cs.w + 2 * pad - cs.k) / cs.s + 1;
  std::mt19937 rng(static_cast<unsigned>(cs.h * 131 + cs.c * 7 + cs.k));
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> in(cs.n * cs.h * cs.w * cs.c), w(cs.c * cs.k * cs.k), b(cs.c);
  for (auto* v : {&in, &w, &b})
    for (float& x : *v) x = d(rng);
  std::vector<float> packed(f32_dwconv_packed_size(cs.c, cs.k, cs.k));
  f32_dwconv_pack(w.data(), b.data(), cs.c, cs.k, cs.k, packed.data());
  OutBuf o(p.N * p.OH * p.OW * cs.c, misalign);
  set_nontemporal_mode(mode);
  // The path under test is the one taken: streaming exactly when forced on an aligned output
  // with channels a multiple of 16.
  EXPECT_EQ(mode == NontemporalMode::always && misalign == 0 && cs.c % 16 == 0,
            f32_dwconv_streams_output(p, o.out, threads));
  f32_dwconv_run(p, in.data(), packed.data(), o.out, threads);
  set_nontemporal_mode(NontemporalMode::automatic);
  *canaries_ok = o.canaries_intact();
  return std::vector<float>(o.out, o.out + o.size);
}

// Layers that take every depthwise path the op streams from: 3x3 stride 1 and 2 (two-row blocks,
// sweeps, channel groups), 5x5 and 7x7, odd sizes, batch 2, channels 16..96 (multiples of 16:
// streaming needs them) and 24 (not: never streamed, must still be right).
const Case kCases[] = {
    {1, 13, 11, 16, 3, 1}, {1, 17, 9, 32, 3, 2}, {2, 9, 14, 48, 3, 1}, {1, 14, 14, 96, 3, 1},
    {1, 7, 7, 96, 3, 1},   {1, 12, 10, 64, 5, 1}, {1, 15, 13, 32, 5, 2}, {2, 11, 8, 16, 7, 1},
    {1, 16, 16, 48, 7, 2}, {1, 10, 9, 24, 3, 1},  {1, 28, 28, 32, 3, 1}, {1, 28, 28, 96, 3, 2},
};

TEST(F32DwconvNontemporal, SameBitsAsNormalStoresOnEveryIsaAndThreadCount) {
  const Isa before = active_isa();
  for (Isa isa : supported_isas()) {
    set_isa(isa_name(isa));
    for (const Case& cs : kCases)
      for (int threads : {1, 2, 3}) {
        bool ok_normal = false, ok_stream = false;
        const auto normal = run(cs, NontemporalMode::never, threads, 0, &ok_normal);
        const auto streamed = run(cs, NontemporalMode::always, threads, 0, &ok_stream);
        const std::string what = std::string(isa_name(isa)) + " " + std::to_string(cs.h) + "x" +
                                 std::to_string(cs.w) + "x" + std::to_string(cs.c) + " k" + std::to_string(cs.k) +
                                 " s" + std::to_string(cs.s) + " N" + std::to_string(cs.n) + " t" +
                                 std::to_string(threads);
        ASSERT_TRUE(ok_normal && ok_stream) << "write outside the output: " << what;
        ASSERT_EQ(0, std::memcmp(normal.data(), streamed.data(), normal.size() * sizeof(float))) << what;
      }
  }
  set_isa(isa_name(before));
}

TEST(F32DwconvNontemporal, MisalignedOutputFallsBackToNormalStores) {
  // 4 bytes past a line boundary: a streaming store there would fault, so the op must not
  // stream (and still be right).
  for (int threads : {1, 2}) {
    bool ok_aligned = false, ok_shifted = false;
    const Case cs{1, 14, 14, 32, 3, 1};
    const auto aligned = run(cs, NontemporalMode::never, threads, 0, &ok_aligned);
    const auto shifted = run(cs, NontemporalMode::always, threads, 1, &ok_shifted);
    ASSERT_TRUE(ok_aligned && ok_shifted);
    EXPECT_EQ(0, std::memcmp(aligned.data(), shifted.data(), aligned.size() * sizeof(float)));
  }
}

TEST(F32DwconvNontemporal, AutomaticRuleComparesOneThreadsShareWithTheL2) {
  set_nontemporal_mode(NontemporalMode::automatic);
  const double l2 = static_cast<double>(l2_cache_bytes());
  EXPECT_GT(l2, 0);
  EXPECT_FALSE(nontemporal_output_pays(0.4 * l2, 0.4 * l2, 1));
  EXPECT_TRUE(nontemporal_output_pays(0.6 * l2, 0.6 * l2, 1));
  EXPECT_FALSE(nontemporal_output_pays(0.6 * l2, 0.6 * l2, 2));
  EXPECT_TRUE(nontemporal_output_pays(1.2 * l2, 1.2 * l2, 2));
  set_nontemporal_mode(NontemporalMode::always);
  EXPECT_TRUE(nontemporal_output_pays(1, 1, 1));
  set_nontemporal_mode(NontemporalMode::never);
  EXPECT_FALSE(nontemporal_output_pays(1e12, 1e12, 1));
  set_nontemporal_mode(NontemporalMode::automatic);
}

}  // namespace
