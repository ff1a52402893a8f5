// Weight packing for the fp32 small-Cin conv kernels (ISA-independent, baseline-compiled).
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/f32-conv/f32_conv.h"

namespace mk {
namespace {
constexpr float kMagic = 4671337.f;  // arbitrary tag, exact in fp32, differs from the others'
constexpr float kVersion = 1.f;
}  // namespace

int64_t f32_conv_packed_size(int64_t cin, int64_t cout, int64_t kh, int64_t kw) {
  return kF32ConvPackHeader + ceil_div(cout, kF32ConvPanel) * (kh * kw * cin + 1) * kF32ConvPanel;
}

void f32_conv_check_pack(const float* packed, int64_t numel, int64_t cin, int64_t cout, int64_t kh,
                         int64_t kw) {
  if (numel < kF32ConvPackHeader || packed[0] != kMagic || packed[1] != kVersion)
    throw std::invalid_argument("conv2d_stem: not a mobilekernels stem conv pack (make one with conv2d_stem_pack)");
  if (packed[2] != float(cin) || packed[3] != float(cout) || packed[4] != float(kh) ||
      packed[5] != float(kw) || numel != f32_conv_packed_size(cin, cout, kh, kw))
    throw std::invalid_argument(
        "conv2d_stem: weight pack was packed for " + std::to_string(int64_t(packed[2])) + " -> " +
        std::to_string(int64_t(packed[3])) + " channels, kernel " + std::to_string(int64_t(packed[4])) +
        "x" + std::to_string(int64_t(packed[5])) + "; expected " + std::to_string(cin) + " -> " +
        std::to_string(cout) + ", " + std::to_string(kh) + "x" + std::to_string(kw));
}

void f32_conv_pack(const float* weight, const float* bias, int64_t cin, int64_t cout, int64_t kh,
                   int64_t kw, float* packed) {
  std::memset(packed, 0, sizeof(float) * f32_conv_packed_size(cin, cout, kh, kw));
  packed[0] = kMagic;
  packed[1] = kVersion;
  packed[2] = float(cin);  // sizes < 2^24: exact
  packed[3] = float(cout);
  packed[4] = float(kh);
  packed[5] = float(kw);
  packed += kF32ConvPackHeader;
  const int64_t taps = kh * kw * cin, pstride = (taps + 1) * kF32ConvPanel;
  for (int64_t co = 0; co < cout; ++co) {
    float* panel = packed + (co / kF32ConvPanel) * pstride + co % kF32ConvPanel;
    if (bias) panel[0] = bias[co];
    for (int64_t ci = 0; ci < cin; ++ci)
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx) {
          const int64_t t = (ky * kw + kx) * cin + ci;
          panel[(t + 1) * kF32ConvPanel] = weight[((co * cin + ci) * kh + ky) * kw + kx];
        }
  }
}

}  // namespace mk
