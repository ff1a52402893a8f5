#include "dispatch/cpu_features.h"

#if defined(MK_ARM64) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif
#if defined(MK_X86)
#include <cpuid.h>
#endif

namespace mk {
namespace {

#if defined(MK_X86)
// XCR0 tells whether the OS saves the wide registers; CPUID alone is not enough.
unsigned long long read_xcr0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(MK_X86)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  const bool fma = (c >> 12) & 1;
  if (!osxsave) return f;
  const unsigned long long xcr0 = read_xcr0();
  const bool ymm_ok = (xcr0 & 0x6) == 0x6;
  const bool zmm_ok = (xcr0 & 0xe6) == 0xe6;
  const bool amx_ok = (xcr0 & 0x60000) == 0x60000;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = ymm_ok && ((b >> 5) & 1);
  f.fma = ymm_ok && fma;
  f.avx512f = zmm_ok && ((b >> 16) & 1);
  f.avx512dq = zmm_ok && ((b >> 17) & 1);
  f.avx512bw = zmm_ok && ((b >> 30) & 1);
  f.avx512vl = zmm_ok && ((b >> 31) & 1);
  f.avx512vnni = zmm_ok && ((c >> 11) & 1);
  f.amx_int8 = amx_ok && ((d >> 25) & 1) && ((d >> 24) & 1);
  unsigned a1, b1, c1, d1;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  f.avxvnni = ymm_ok && ((a1 >> 4) & 1);
#elif defined(MK_ARM64)
  f.neon = true;  // mandatory on AArch64
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP);
  f.neon_dotprod = hw & HWCAP_ASIMDDP;
#ifdef HWCAP2_I8MM
  f.neon_i8mm = getauxval(AT_HWCAP2) & HWCAP2_I8MM;
#endif
#endif
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

std::string cpu_features_string() {
  const CpuFeatures& f = cpu_features();
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512dq, "avx512dq");
  add(f.avx512vnni, "avx512vnni");
  add(f.avxvnni, "avxvnni");
  add(f.amx_int8, "amx-int8");
  add(f.neon, "neon");
  add(f.neon_dotprod, "dotprod");
  add(f.neon_i8mm, "i8mm");
  return s.empty() ? std::string("(baseline only)") : s;
}

}  // namespace mk
