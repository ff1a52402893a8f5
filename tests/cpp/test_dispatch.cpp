// Dispatch: the chosen level is supported, forcing works, and every supported level's
// fallback chain ends at a compiled level. Under qemu -cpu Haswell / Nehalem this also proves
// the default path executes no instruction the CPU lacks (a SIGILL would kill the run).
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "dispatch/core_probe.h"
#include "dispatch/cpu_features.h"
#include "dispatch/isa.h"
#include "kernels/f32-dwconv/f32_dwconv.h"
#include "ops/f32_dwconv_op.h"

using namespace mk;

TEST(Dispatch, ActiveIsSupported) {
  EXPECT_TRUE(isa_supported(active_isa())) << isa_name(active_isa());
  EXPECT_TRUE(isa_supported(best_isa()));
  std::printf("cpu features: %s; best isa: %s\n", cpu_features_string().c_str(),
              isa_name(best_isa()));
}

TEST(Dispatch, UnknownAndUnsupportedNamesThrow) {
  EXPECT_THROW(set_isa("pentium"), std::invalid_argument);
  for (int i = 0; i < static_cast<int>(Isa::count); ++i) {
    const Isa isa = static_cast<Isa>(i);
    if (!isa_supported(isa)) EXPECT_THROW(set_isa(isa_name(isa)), std::invalid_argument) << isa_name(isa);
  }
  set_isa("auto");
  EXPECT_EQ(active_isa(), best_isa());
}

TEST(Dispatch, EverySupportedLevelRunsTheDepthwiseOp) {
  // 1 image 5x5x3, 3x3 kernel of ones, no padding -> each output = sum of 9 inputs.
  F32DwconvParams p{1, 5, 5, 3, 1, 3, 3, 1, 1, 1, 1, 0, 0, 3, 3, Activation::none};
  std::vector<float> in(75, 1.f), w(27, 1.f), packed(f32_dwconv_packed_size(3, 3, 3)), out(27, -1.f);
  f32_dwconv_pack(w.data(), nullptr, 3, 3, 3, packed.data());
  for (Isa isa : supported_isas()) {
    set_isa(isa_name(isa));
    std::fill(out.begin(), out.end(), -1.f);
    f32_dwconv_run(p, in.data(), packed.data(), out.data(), 1);  // op layer: takes the whole pack
    for (float v : out) ASSERT_EQ(v, 9.f) << isa_name(isa);
  }
  set_isa("auto");
}

TEST(CoreProbe, ReportsEveryThreadAndRejectsBadArguments) {
  // The benchmarks' contention check: one positive rate per thread (on qemu too: the NEON loop).
  for (int threads : {1, 2}) {
    const std::vector<double> got = core_probe_gflops(threads, 0.01);
    ASSERT_EQ(got.size(), static_cast<size_t>(threads));
    for (double v : got) EXPECT_GT(v, 0.0);
  }
  EXPECT_THROW(core_probe_gflops(0, 0.1), std::invalid_argument);
  EXPECT_THROW(core_probe_gflops(1, 0.0), std::invalid_argument);
  EXPECT_THROW(core_probe_gflops(1, 11.0), std::invalid_argument);
}
