// CPU feature detection (what the machine can execute), independent of what was compiled.
#pragma once
#include <string>

namespace mk {

struct CpuFeatures {
  bool avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avxvnni = false, amx_int8 = false;
  bool neon = false, neon_dotprod = false, neon_i8mm = false;
};

// Detected once, on first call (thread-safe static init).
const CpuFeatures& cpu_features();
std::string cpu_features_string();

}  // namespace mk
