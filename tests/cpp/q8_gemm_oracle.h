// The int64 oracle shared by the int8 GEMM tests: exact sums on the unpacked operands, biases
// (small, or putting the true sums at the int32 limits), and the reference requantization of
// one sum (round half to even in double, independent of the kernels' fp32 clamp-then-round).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace mk_test {

// acc[m * N + oc] = sum_k (x[m, k] - x_zp) * (w[oc, k] - wzp[oc]); bytes read as int8 where signed.
inline std::vector<int64_t> q8_oracle_sums(const std::vector<uint8_t>& x, bool x_signed, int32_t x_zp,
                                           const std::vector<uint8_t>& w, bool w_signed,
                                           const std::vector<int32_t>& wzp, int64_t M, int64_t K, int64_t N) {
  auto xv = [&](int64_t i) -> int64_t { return x_signed ? int8_t(x[i]) : x[i]; };
  auto wv = [&](int64_t i) -> int64_t { return w_signed ? int8_t(w[i]) : w[i]; };
  std::vector<int64_t> acc(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t oc = 0; oc < N; ++oc) {
      int64_t s = 0;
      for (int64_t k = 0; k < K; ++k) s += (xv(m * K + k) - x_zp) * (wv(oc * K + k) - wzp[oc]);
      acc[m * N + oc] = s;
    }
  return acc;
}

// Small random biases, or (big) per channel INT32_MAX - (largest sum) on odd channels and
// INT32_MIN - (smallest sum) on even ones: the true sums touch the int32 limits and still fit.
inline std::vector<int32_t> q8_oracle_biases(const std::vector<int64_t>& acc, int64_t M, int64_t N, bool big,
                                             std::mt19937& rng) {
  std::vector<int32_t> bias(N);
  std::uniform_int_distribution<int32_t> small(-5000, 5000);
  for (int64_t oc = 0; oc < N; ++oc) {
    if (!big) {
      bias[oc] = small(rng);
      continue;
    }
    int64_t mx = 0, mn = 0;
    for (int64_t m = 0; m < M; ++m) mx = std::max(mx, acc[m * N + oc]), mn = std::min(mn, acc[m * N + oc]);
    bias[oc] = (oc % 2) ? static_cast<int32_t>(INT32_MAX - mx) : static_cast<int32_t>(INT32_MIN - mn);
  }
  return bias;
}

// The output byte of one true sum `a` (inside int32) at requantization scale s.
inline uint8_t q8_oracle_requant(int64_t a, float s, int32_t y_zp, int32_t y_min, int32_t y_max) {
  const float f = static_cast<float>(static_cast<int32_t>(a)) * s;
  const double r = std::nearbyint(double(f));
  const double v = std::fmin(std::fmax(r + y_zp, y_min), y_max);
  return static_cast<uint8_t>(static_cast<int32_t>(v));
}

}  // namespace mk_test
