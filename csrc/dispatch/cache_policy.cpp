#include "dispatch/cache_policy.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>

namespace mk {
namespace {

std::atomic<int> g_mode{static_cast<int>(NontemporalMode::automatic)};

}  // namespace

int64_t l2_cache_bytes() {
  static const int64_t bytes = [] {
#if defined(_SC_LEVEL2_CACHE_SIZE)
    const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (v > 0) return static_cast<int64_t>(v);
#endif
    return int64_t(1) << 20;
  }();
  return bytes;
}

void set_nontemporal_mode(NontemporalMode m) { g_mode.store(static_cast<int>(m), std::memory_order_relaxed); }

NontemporalMode nontemporal_mode() { return static_cast<NontemporalMode>(g_mode.load(std::memory_order_relaxed)); }

bool nontemporal_output_pays(double in_bytes, double out_bytes, int threads) {
  switch (nontemporal_mode()) {
    case NontemporalMode::always: return true;
    case NontemporalMode::never: return false;
    default: return (in_bytes + out_bytes) / std::max(1, threads) > static_cast<double>(l2_cache_bytes());
  }
}

}  // namespace mk
