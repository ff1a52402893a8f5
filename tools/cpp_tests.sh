#!/usr/bin/env bash
# C++ tests of every kernel against the scalar reference, built and run four ways:
#  1. native x86 under AddressSanitizer + UBSan (the ISA paths this CPU has);
#  2. native Release under qemu-x86_64 -cpu Haswell (AVX2, no AVX-512) and -cpu Nehalem (no AVX):
#     proves dispatch never executes an instruction the CPU lacks;
#  3. cross-compiled for aarch64, under qemu-aarch64 -cpu cortex-a72 (NEON), neoverse-n1
#     (+dotprod) and max (+i8mm);
#  4. the google-benchmark microbenchmarks compile (run them with bench/cpp/README).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
out="${MK_CPP_BUILD:-$root/build/cpp}"
jobs="$(nproc)"

configure() { cmake -S "$root" -B "$1" -G Ninja -DMK_BUILD_TESTS=ON "${@:2}" >/dev/null; }

echo "== C++ tests: native, AddressSanitizer"
configure "$out/asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMK_ASAN=ON
ninja -C "$out/asan" -j "$jobs" mk_tests >/dev/null
ASAN_OPTIONS=detect_leaks=1 "$out/asan/tests/cpp/mk_tests" --gtest_brief=1

echo "== C++ tests: Release under qemu-x86_64 (Haswell, Nehalem) (${SECONDS}s)"
configure "$out/release" -DCMAKE_BUILD_TYPE=Release -DMK_BUILD_BENCH=ON
ninja -C "$out/release" -j "$jobs" >/dev/null
for cpu in Haswell Nehalem; do
  echo "-- qemu-x86_64 -cpu $cpu"
  qemu-x86_64 -cpu "$cpu" "$out/release/tests/cpp/mk_tests" --gtest_brief=1 2>&1 | grep -v "TCG doesn't support"
done

echo "== C++ tests: aarch64 under qemu-aarch64 (${SECONDS}s)"
configure "$out/aarch64" -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake"
ninja -C "$out/aarch64" -j "$jobs" mk_tests >/dev/null
for cpu in cortex-a72 neoverse-n1 max; do
  echo "-- qemu-aarch64 -cpu $cpu"
  QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64 -cpu "$cpu" "$out/aarch64/tests/cpp/mk_tests" --gtest_brief=1
done
echo "== C++ tests: all configurations passed (${SECONDS}s)"
