// A measurement aid for benchmarks, not a kernel: how much floating-point throughput each
// thread gets while all of them run at once. On a shared VM a vCPU's SMT sibling can be busy
// with another tenant's work, which halves that vCPU's FMA throughput without showing up as
// load or steal time; a benchmark that prints this before and after its run says whether its
// multi-thread figures were taken on whole cores.
#pragma once
#include <vector>

namespace mk {

// Runs a register-only multiply-add loop on `threads` OpenMP threads at once for about
// `seconds`; returns each thread's GFLOP/s (FMA counted as 2 flops). Uses 256-bit FMA where the
// CPU has it (x86 AVX2+FMA), 128-bit NEON FMA on aarch64, plain floats otherwise.
std::vector<double> core_probe_gflops(int threads, double seconds);

}  // namespace mk
