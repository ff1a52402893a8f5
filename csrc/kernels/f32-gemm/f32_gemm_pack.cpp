// Weight packing for the fp32 GEMM kernels (ISA-independent, compiled for the baseline).
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/f32-gemm/f32_gemm.h"

namespace mk {
namespace {
constexpr float kMagic = 4671320.f;  // arbitrary tag, exact in fp32, differs from dwconv's
constexpr float kVersion = 1.f;
}  // namespace

int64_t f32_gemm_packed_size(int64_t k, int64_t n) {
  return kF32GemmPackHeader + ceil_div(n, kF32GemmPanel) * (k + 1) * kF32GemmPanel;
}

void f32_gemm_check_pack(const float* packed, int64_t numel, int64_t k, int64_t n) {
  if (numel < kF32GemmPackHeader || packed[0] != kMagic || packed[1] != kVersion)
    throw std::invalid_argument("conv1x1: not a mobilekernels 1x1 weight pack (make one with conv1x1_pack)");
  if (packed[2] != float(k) || packed[3] != float(n) || numel != f32_gemm_packed_size(k, n))
    throw std::invalid_argument("conv1x1: weight pack was packed for " + std::to_string(int64_t(packed[2])) +
                                " -> " + std::to_string(int64_t(packed[3])) + " channels, expected " +
                                std::to_string(k) + " -> " + std::to_string(n));
}

void f32_gemm_pack(const float* weight, const float* bias, int64_t k, int64_t n, float* packed) {
  std::memset(packed, 0, sizeof(float) * f32_gemm_packed_size(k, n));
  packed[0] = kMagic;
  packed[1] = kVersion;
  packed[2] = float(k);  // channel counts < 2^24: exact
  packed[3] = float(n);
  packed += kF32GemmPackHeader;
  // Panel-major, then k, then 16 columns: the microkernel walks one panel front to back with
  // unit stride, one 64-byte line per k. Columns past n stay zero so whole vectors are harmless.
  const int64_t pstride = (k + 1) * kF32GemmPanel;
  for (int64_t col = 0; col < n; ++col) {
    float* panel = packed + (col / kF32GemmPanel) * pstride + col % kF32GemmPanel;
    if (bias) panel[0] = bias[col];
    for (int64_t kk = 0; kk < k; ++kk) panel[(kk + 1) * kF32GemmPanel] = weight[col * k + kk];
  }
}

}  // namespace mk
