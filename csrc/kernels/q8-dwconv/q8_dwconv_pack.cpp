// Weight packing for the int8 depthwise kernels (baseline ISA).
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/q8-dwconv/q8_dwconv.h"

namespace mk {

Q8DwLayout q8_dwconv_layout(int64_t C, int64_t KH, int64_t KW) {
  Q8DwLayout l;
  l.cpad = round_up(C, kQ8DwChannelBlock);
  l.taps = KH * KW;
  l.scale = kQ8PackHeaderBytes;
  l.bias = l.scale + 4 * l.cpad;
  l.wsum = l.bias + 4 * l.cpad;
  l.weights = l.wsum + 4 * l.cpad;
  l.total = l.weights + 2 * l.taps * l.cpad;
  return l;
}

void q8_dwconv_pack(const void* w, bool w_signed, const int32_t* wzp, const float* w_scale,
                    const int32_t* bias, int64_t C, int64_t KH, int64_t KW, uint8_t* packed) {
  if (C <= 0 || C > (1 << 24) || KH <= 0 || KW <= 0 || KH * KW > (1 << 16))
    throw std::invalid_argument("q8 depthwise pack: C in [1, 2^24] and KH*KW in [1, 65536] required");
  const int32_t lo = w_signed ? -128 : 0, hi = w_signed ? 127 : 255;
  for (int64_t c = 0; c < C; ++c)
    if (wzp[c] < lo || wzp[c] > hi)
      throw std::invalid_argument("q8 depthwise pack: weight zero point " + std::to_string(wzp[c]) +
                                  " of channel " + std::to_string(c) + " is outside the weight dtype");
  const Q8DwLayout l = q8_dwconv_layout(C, KH, KW);
  std::memset(packed, 0, static_cast<size_t>(l.total));
  Q8PackHeader h{};
  h.magic = kQ8PackMagic;
  h.version = kQ8PackVersion;
  h.kind = static_cast<uint16_t>(Q8PackKind::dwconv);
  h.cin = h.cout = static_cast<int32_t>(C);
  h.kh = static_cast<int32_t>(KH);
  h.kw = static_cast<int32_t>(KW);
  h.w_signed = w_signed;
  h.nr = kQ8DwChannelBlock;
  h.kr = 1;
  h.total_bytes = l.total;
  std::memcpy(packed, &h, sizeof h);
  auto* scale = reinterpret_cast<float*>(packed + l.scale);
  auto* b = reinterpret_cast<int32_t*>(packed + l.bias);
  auto* wsum = reinterpret_cast<int32_t*>(packed + l.wsum);
  auto* wt = reinterpret_cast<int16_t*>(packed + l.weights);
  const auto* wu = static_cast<const uint8_t*>(w);
  const auto* ws = static_cast<const int8_t*>(w);
  for (int64_t c = 0; c < C; ++c) {
    int32_t sum = 0;
    for (int64_t t = 0; t < l.taps; ++t) {
      const int32_t raw = w_signed ? ws[c * l.taps + t] : wu[c * l.taps + t];
      const int32_t q = raw - wzp[c];  // in [-255, 255]
      wt[t * l.cpad + c] = static_cast<int16_t>(q);
      sum += q;
    }
    wsum[c] = sum;
    scale[c] = w_scale[c];
    b[c] = bias ? bias[c] : 0;
  }
}

}  // namespace mk
