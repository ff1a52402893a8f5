// Weight packing for the fp32 depthwise kernels (ISA-independent, compiled for baseline).
#include <cstring>

#include "kernels/f32-dwconv/f32_dwconv.h"

namespace mk {

int64_t f32_dwconv_packed_size(int64_t cout, int64_t kh, int64_t kw) {
  return (kh * kw + 1) * round_up(cout, kF32DwconvChannelAlign);
}

void f32_dwconv_pack(const float* weight, const float* bias, int64_t cout, int64_t kh, int64_t kw,
                     float* packed) {
  // Tap-major, channel-minor: one tap of 16 consecutive channels is one 64-byte line, the
  // unit every SIMD kernel loads. Padding channels are zero so whole vectors are harmless.
  const int64_t cpad = round_up(cout, kF32DwconvChannelAlign);
  std::memset(packed, 0, sizeof(float) * f32_dwconv_packed_size(cout, kh, kw));
  for (int64_t oc = 0; oc < cout; ++oc)
    for (int64_t t = 0; t < kh * kw; ++t) packed[t * cpad + oc] = weight[oc * kh * kw + t];
  if (bias)
    for (int64_t oc = 0; oc < cout; ++oc) packed[kh * kw * cpad + oc] = bias[oc];
}

}  // namespace mk
