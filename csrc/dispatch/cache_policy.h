// When an op's output should bypass the caches. Torch-free.
//
// A layer whose input and output together exceed a core's L2 streams both through it: normal
// stores then first read each output line from memory (read for ownership) and evict input
// lines the next rows still need. Non-temporal stores write whole lines straight to memory, so
// the input keeps the L2. Measured on the Xeon (2 MB L2 per core), 1 thread, thread CPU time:
// 56x56x144 depthwise 1.18-1.26x faster, 112x112x96 s2 1.05-1.07x; on layers that fit, streaming
// is 1.5x slower (the next call's output lines would have been L2 hits), so the rule compares one
// thread's share of the bytes with the L2.
#pragma once
#include <cstdint>

namespace mk {

// This CPU's L2 per core in bytes (sysconf; 1 MB when the OS does not say).
int64_t l2_cache_bytes();

enum class NontemporalMode { automatic = 0, always = 1, never = 2 };
// Process-wide switch (tests force each store kind in turn; "auto" is the rule below).
void set_nontemporal_mode(NontemporalMode m);
NontemporalMode nontemporal_mode();

// Whether a pass reading in_bytes and writing out_bytes on `threads` threads should write its
// output with non-temporal stores (the caller also needs vector-aligned whole stores).
bool nontemporal_output_pays(double in_bytes, double out_bytes, int threads);

// Orders this thread's non-temporal stores before what follows (a barrier, a return).
inline void nontemporal_fence() {
#if defined(__x86_64__)
  __builtin_ia32_sfence();
#endif
}

}  // namespace mk
