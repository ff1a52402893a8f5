// Loop bodies of f32_se.h, included by one .cpp per ISA (compiled with that ISA's flags). In an
// unnamed namespace: each file's copy keeps its own code, never merged with another ISA's by
// the linker (as identical inline functions would be).
#pragma once
#include <cstdint>

namespace mk::f32se {
namespace {

inline void sum_rows(const float* __restrict x, int64_t rows, int64_t ow, int64_t c, int64_t ld,
                     float* __restrict racc, double* __restrict acc) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ow * ld;
    for (int64_t j = 0; j < c; ++j) racc[j] = 0.f;
    for (int64_t w = 0; w < ow; ++w)
      for (int64_t j = 0; j < c; ++j) racc[j] += row[w * ld + j];
    for (int64_t j = 0; j < c; ++j) acc[j] += racc[j];
  }
}

inline void scale(float* __restrict d, int64_t pixels, int64_t c, const float* __restrict s) {
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t j = 0; j < c; ++j) d[p * c + j] *= s[j];
}

}  // namespace
}  // namespace mk::f32se
