// Portable scalar int8 GEMM on the packed format: the "scalar" path, and the definition of the
// requantization every SIMD path must match bit for bit (int32 wrap, fp32 scale, round half to
// even in the default rounding mode, clamp, add zero point).
#include <cmath>

#include "kernels/q8-gemm/q8_gemm.h"
#include "kernels/q8-gemm/q8_requant.h"

namespace mk {

void q8_gemm_scalar(const Q8GemmParams& p, int64_t m_begin, int64_t m_end, int64_t n_begin,
                    int64_t n_end) {
  const int64_t kpad = round_up(p.K, kQ8GemmKR);
  const uint8_t flip = static_cast<uint8_t>(p.x_flip);
  for (int64_t m = m_begin; m < m_end; ++m) {
    const uint8_t* x = p.x + m * p.K;
    for (int64_t oc = n_begin; oc < n_end; ++oc) {
      const int8_t* col = p.w + (oc / kQ8GemmNR) * kpad * kQ8GemmNR + (oc % kQ8GemmNR) * kQ8GemmKR;
      // uint32 arithmetic: two's-complement wrap without signed-overflow UB.
      uint32_t acc = static_cast<uint32_t>(p.bias[oc]);
      for (int64_t k = 0; k < p.K; ++k) {
        const int32_t xv = static_cast<uint8_t>(x[k] ^ flip);  // uint8 domain
        acc += static_cast<uint32_t>(xv * col[(k / kQ8GemmKR) * kQ8GemmNR * kQ8GemmKR + k % kQ8GemmKR]);
      }
      if (p.wzp) acc -= static_cast<uint32_t>(p.rowsum[m]) * static_cast<uint32_t>(p.wzp[oc]);
      const uint8_t v = q8_requant_scalar(static_cast<int32_t>(acc), p.scale[oc], p.y_lo, p.y_hi, p.y_zp);
      p.y[m * p.N + oc] = p.lut ? p.lut[v] : v;
    }
  }
}

}  // namespace mk
