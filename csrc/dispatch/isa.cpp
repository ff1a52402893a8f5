#include "dispatch/isa.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "dispatch/cpu_features.h"

namespace mk {
namespace {

constexpr const char* kNames[] = {"scalar",     "avx2", "avxvnni", "avx512",  "avx512vnni",
                                  "amx",        "neon", "neondot", "neoni8mm"};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<int>(Isa::count), "names");

std::atomic<int> g_active{-1};
std::mutex g_init_mutex;

}  // namespace

const char* isa_name(Isa isa) { return kNames[static_cast<int>(isa)]; }

Isa isa_from_name(const std::string& name) {
  if (name == "auto") return best_isa();
  for (int i = 0; i < static_cast<int>(Isa::count); ++i)
    if (name == kNames[i]) return static_cast<Isa>(i);
  std::string known = "auto";
  for (const char* n : kNames) known += std::string(", ") + n;
  throw std::invalid_argument("unknown ISA '" + name + "' (known: " + known + ")");
}

Isa isa_fallback(Isa isa) {
  switch (isa) {
    case Isa::avx2: return Isa::scalar;
    case Isa::avxvnni: return Isa::avx2;
    case Isa::avx512: return Isa::avx2;
    case Isa::avx512vnni: return Isa::avx512;
    case Isa::amx: return Isa::avx512vnni;
    case Isa::neon: return Isa::scalar;
    case Isa::neondot: return Isa::neon;
    case Isa::neoni8mm: return Isa::neondot;
    default: return Isa::scalar;
  }
}

bool isa_compiled(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
#if defined(MK_X86)
    case Isa::avx2:
    case Isa::avxvnni:
    case Isa::avx512:
    case Isa::avx512vnni:
    case Isa::amx: return true;
#endif
#if defined(MK_ARM64)
    case Isa::neon:
    case Isa::neondot:
    case Isa::neoni8mm: return true;
#endif
    default: return false;
  }
}

bool isa_supported(Isa isa) {
  if (!isa_compiled(isa)) return false;
  const CpuFeatures& f = cpu_features();
  const bool avx512 = f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx2 && f.fma;
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return f.avx2 && f.fma;
    case Isa::avxvnni: return f.avx2 && f.fma && f.avxvnni;
    case Isa::avx512: return avx512;
    case Isa::avx512vnni: return avx512 && f.avx512vnni;
    case Isa::amx: return avx512 && f.avx512vnni && f.amx_int8;
    case Isa::neon: return f.neon;
    case Isa::neondot: return f.neon && f.neon_dotprod;
    case Isa::neoni8mm: return f.neon && f.neon_dotprod && f.neon_i8mm;
    default: return false;
  }
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (int i = 0; i < static_cast<int>(Isa::count); ++i)
    if (isa_supported(static_cast<Isa>(i))) out.push_back(static_cast<Isa>(i));
  return out;
}

Isa best_isa() {
  // Preference order, best first.
  static const Isa order[] = {Isa::amx,     Isa::avx512vnni, Isa::avx512, Isa::avxvnni, Isa::avx2,
                              Isa::neoni8mm, Isa::neondot,   Isa::neon,   Isa::scalar};
  for (Isa isa : order)
    if (isa_supported(isa)) return isa;
  return Isa::scalar;
}

static Isa checked(const std::string& name) {
  const Isa isa = isa_from_name(name);
  if (!isa_supported(isa))
    throw std::invalid_argument(std::string("ISA '") + name +
                                "' is not supported on this CPU/build (supported: " +
                                [] {
                                  std::string s;
                                  for (Isa i : supported_isas())
                                    s += (s.empty() ? "" : ", ") + std::string(isa_name(i));
                                  return s;
                                }() +
                                ")");
  return isa;
}

Isa active_isa() {
  int v = g_active.load(std::memory_order_acquire);
  if (v >= 0) return static_cast<Isa>(v);
  std::lock_guard<std::mutex> lock(g_init_mutex);
  v = g_active.load(std::memory_order_relaxed);
  if (v >= 0) return static_cast<Isa>(v);
  const char* env = std::getenv("MOBILEKERNELS_ISA");
  const Isa isa = (env && *env) ? checked(env) : best_isa();
  g_active.store(static_cast<int>(isa), std::memory_order_release);
  return isa;
}

void set_isa(const std::string& name) {
  const Isa isa = checked(name);
  g_active.store(static_cast<int>(isa), std::memory_order_release);
}

}  // namespace mk
