// A 64-byte aligned run of n elements inside a reused std::vector (grown as needed, kept): the
// fused blocks' per-thread scratch and shared buffers. From malloc's 16-byte alignment every
// full-width AVX-512 access of a scratch row straddled two cache lines.
#pragma once
#include <cstdint>
#include <vector>

namespace mk {

template <class T>
T* aligned_in(std::vector<T>& v, int64_t n) {
  static_assert(64 % sizeof(T) == 0, "element size must divide 64");
  constexpr int64_t kPad = 64 / sizeof(T);
  if (static_cast<int64_t>(v.size()) < n + kPad) v.resize(static_cast<size_t>(n + kPad));
  const uintptr_t a = reinterpret_cast<uintptr_t>(v.data());
  return v.data() + ((64 - a % 64) % 64) / sizeof(T);
}

}  // namespace mk
