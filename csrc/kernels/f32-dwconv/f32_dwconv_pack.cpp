// Weight packing for the fp32 depthwise kernels (ISA-independent, compiled for baseline).
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/f32-dwconv/f32_dwconv.h"

namespace mk {

int64_t f32_dwconv_packed_size(int64_t cout, int64_t kh, int64_t kw) {
  return kF32DwconvPackHeader + (kh * kw + 1) * round_up(cout, kF32DwconvChannelAlign);
}

namespace {
constexpr float kMagic = 4671319.f;  // arbitrary tag, exact in fp32
constexpr float kVersion = 1.f;
}  // namespace

void f32_dwconv_check_pack(const float* packed, int64_t numel, int64_t cout, int64_t kh, int64_t kw) {
  if (numel < kF32DwconvPackHeader || packed[0] != kMagic || packed[1] != kVersion)
    throw std::invalid_argument("dwconv2d: not a mobilekernels depthwise weight pack (make one with dwconv2d_pack)");
  if (packed[2] != float(cout) || packed[3] != float(kh) || packed[4] != float(kw) ||
      numel != f32_dwconv_packed_size(cout, kh, kw))
    throw std::invalid_argument(
        "dwconv2d: weight pack was packed for another shape (cout " + std::to_string(int64_t(packed[2])) +
        ", kernel " + std::to_string(int64_t(packed[3])) + "x" + std::to_string(int64_t(packed[4])) +
        "), expected cout " + std::to_string(cout) + ", kernel " + std::to_string(kh) + "x" +
        std::to_string(kw));
}

void f32_dwconv_pack(const float* weight, const float* bias, int64_t cout, int64_t kh, int64_t kw,
                     float* packed) {
  // One tap of 16 consecutive channels is one 64-byte line, the unit every SIMD kernel loads;
  // a block's taps follow each other. Padding channels are zero so whole vectors are harmless.
  const int64_t cpad = round_up(cout, kF32DwconvChannelAlign);
  std::memset(packed, 0, sizeof(float) * f32_dwconv_packed_size(cout, kh, kw));
  packed[0] = kMagic;
  packed[1] = kVersion;
  packed[2] = float(cout);  // channel counts and kernel sizes < 2^24: exact
  packed[3] = float(kh);
  packed[4] = float(kw);
  packed += kF32DwconvPackHeader;
  for (int64_t oc = 0; oc < cout; ++oc)
    for (int64_t t = 0; t < kh * kw; ++t) packed[f32_dwconv_widx(t, oc, kh * kw)] = weight[oc * kh * kw + t];
  if (bias)
    for (int64_t oc = 0; oc < cout; ++oc) packed[kh * kw * cpad + oc] = bias[oc];
}

}  // namespace mk
