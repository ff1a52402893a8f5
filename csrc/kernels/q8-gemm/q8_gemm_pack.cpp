// Weight packing for the int8 pointwise GEMM and the shared pack-header check (baseline ISA).
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/q8-gemm/q8_gemm.h"

namespace mk {

Q8GemmLayout q8_gemm_layout(int64_t K, int64_t N) {
  Q8GemmLayout l;
  l.npad = round_up(N, kQ8GemmNR);
  l.kpad = round_up(K, kQ8GemmKR);
  l.scale = kQ8PackHeaderBytes;
  l.bias = l.scale + 4 * l.npad;
  l.colsum = l.bias + 4 * l.npad;
  l.wzp = l.colsum + 4 * l.npad;
  l.weights = l.wzp + 4 * l.npad;
  l.total = l.weights + l.npad * l.kpad;
  return l;
}

void q8_gemm_pack(const void* w, bool w_signed, const int32_t* wzp, const float* w_scale,
                  const int32_t* bias, int64_t K, int64_t N, uint8_t* packed) {
  if (K <= 0 || N <= 0 || K > (1 << 20) || N > (1 << 24))
    throw std::invalid_argument("q8 pack: Cin must be in [1, 2^20] and Cout in [1, 2^24]");
  const int32_t lo = w_signed ? -128 : 0, hi = w_signed ? 127 : 255;
  for (int64_t oc = 0; oc < N; ++oc)
    if (wzp[oc] < lo || wzp[oc] > hi)
      throw std::invalid_argument("q8 pack: weight zero point " + std::to_string(wzp[oc]) +
                                  " of channel " + std::to_string(oc) + " is outside the weight dtype");
  const Q8GemmLayout l = q8_gemm_layout(K, N);
  std::memset(packed, 0, static_cast<size_t>(l.total));
  Q8PackHeader h{};
  h.magic = kQ8PackMagic;
  h.version = kQ8PackVersion;
  h.kind = static_cast<uint16_t>(Q8PackKind::gemm);
  h.cin = static_cast<int32_t>(K);
  h.cout = static_cast<int32_t>(N);
  h.kh = h.kw = 1;
  h.w_signed = w_signed;
  h.nr = kQ8GemmNR;
  h.kr = kQ8GemmKR;
  auto* scale = reinterpret_cast<float*>(packed + l.scale);
  auto* b = reinterpret_cast<int32_t*>(packed + l.bias);
  auto* colsum = reinterpret_cast<int32_t*>(packed + l.colsum);
  auto* zres = reinterpret_cast<int32_t*>(packed + l.wzp);
  auto* blocks = reinterpret_cast<int8_t*>(packed + l.weights);
  const auto* wu = static_cast<const uint8_t*>(w);
  const auto* ws = static_cast<const int8_t*>(w);
  for (int64_t oc = 0; oc < N; ++oc) {
    auto raw = [&](int64_t k) -> int32_t { return w_signed ? ws[oc * K + k] : wu[oc * K + k]; };
    // Fold the zero point into q when every w - wzp of this channel fits int8 (always true
    // for symmetric int8 weights and for uint8 weights with zero point 128).
    bool fits = true;
    for (int64_t k = 0; k < K && fits; ++k) {
      const int32_t d = raw(k) - wzp[oc];
      fits = d >= -128 && d <= 127;
    }
    const int32_t shift = fits ? wzp[oc] : (w_signed ? 0 : 128);
    zres[oc] = wzp[oc] - shift;
    h.has_wzp |= zres[oc] != 0;
    int32_t sum = 0;
    int8_t* col = blocks + (oc / kQ8GemmNR) * l.kpad * kQ8GemmNR + (oc % kQ8GemmNR) * kQ8GemmKR;
    for (int64_t k = 0; k < K; ++k) {
      const int32_t q = raw(k) - shift;
      sum += q;
      col[(k / kQ8GemmKR) * kQ8GemmNR * kQ8GemmKR + k % kQ8GemmKR] = static_cast<int8_t>(q);
    }
    colsum[oc] = sum;
    scale[oc] = w_scale[oc];
    b[oc] = bias ? bias[oc] : 0;
  }
  h.total_bytes = l.total;
  std::memcpy(packed, &h, sizeof h);
}

const Q8PackHeader& q8_check_pack(const uint8_t* packed, int64_t bytes, Q8PackKind kind,
                                  int64_t cin, int64_t cout, int64_t kh, int64_t kw) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("packed weight: " + what); };
  if (bytes < kQ8PackHeaderBytes) fail("too small to hold a header (not an int8 pack)");
  const auto& h = *reinterpret_cast<const Q8PackHeader*>(packed);
  if (h.magic != kQ8PackMagic) fail("bad magic (not a mobilekernels int8 pack)");
  if (h.version != kQ8PackVersion) fail("unsupported pack version " + std::to_string(h.version));
  if (h.kind != static_cast<uint16_t>(kind))
    fail(kind == Q8PackKind::gemm ? "is a depthwise pack, expected a pointwise one"
                                  : "is a pointwise pack, expected a depthwise one");
  if (h.cin != cin || h.cout != cout || h.kh != kh || h.kw != kw)
    fail("made for Cin=" + std::to_string(h.cin) + " Cout=" + std::to_string(h.cout) + " kernel " +
         std::to_string(h.kh) + "x" + std::to_string(h.kw) + ", used with Cin=" + std::to_string(cin) +
         " Cout=" + std::to_string(cout) + " kernel " + std::to_string(kh) + "x" + std::to_string(kw));
  if (h.total_bytes != bytes) fail("size " + std::to_string(bytes) + " does not match its header");
  return h;
}

}  // namespace mk
