// Small torch-free definitions shared by every kernel family (no ISA-specific code here).
#pragma once
#include <cstdint>

namespace mk {

enum class Activation : int { none = 0, relu = 1, relu6 = 2, hardswish = 3 };

inline constexpr int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
inline constexpr int64_t ceil_div(int64_t x, int64_t m) { return (x + m - 1) / m; }

}  // namespace mk
