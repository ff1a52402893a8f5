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
source "$root/tools/ccache_env.sh"  # the Release objects below reuse the pip build's

configure() { cmake -S "$root" -B "$1" -G Ninja -DMK_BUILD_TESTS=ON "${@:2}" >/dev/null; }

# side_by_side LABEL FN CPU...: run `FN CPU` for every CPU at once, each into its own log, then
# print the logs in order; fails if any run failed. An emulated run is one busy thread most of
# the time, so on a 2-core machine running them together takes about half the wall time of
# running them one after another (the x86 and aarch64 suites take minutes each under qemu).
side_by_side() {
  local label=$1 fn=$2 cpu status=0 logs pids=()
  shift 2
  logs="$(mktemp -d)"
  for cpu in "$@"; do
    ("$fn" "$cpu" >"$logs/$cpu.log" 2>&1) &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  for cpu in "$@"; do
    echo "-- $label $cpu"
    cat "$logs/$cpu.log"
  done
  rm -rf "$logs"
  if [ "$status" -ne 0 ]; then echo "== C++ tests: a $label run failed" >&2; return 1; fi
}

# The exhaustive grids left out of the emulated runs that only prove dispatch (qemu x86 Haswell and
# Nehalem, qemu-aarch64 cortex-a72 and neoverse-n1). Each loops over every ISA level the CPU has,
# so it runs natively on every x86 level of this machine (ASan stage) and on every ARM level under
# qemu-aarch64 -cpu max, which runs everything. What the other emulated runs add is that detection
# and dispatch never execute an instruction the emulated CPU lacks: every family keeps tests that
# go through the same op entry points (dwconv, GEMM, blocks, SE blocks, chain, stem, int8 ...).
# Measured under qemu-x86_64 -cpu Haswell on the 2-core Xeon (loaded): these 23 took 1153 s of 1264.
HEAVY_GRIDS=(
  F32Chain.MobileNetV3LikeChainWithSEMatchesLayersOneByOne
  F32ConvStem.AnyKernelStridePaddingDilation
  F32Dwconv.RowBlockWidths F32Dwconv.RowSweepStride1 F32Dwconv.TwoRowBlocks F32Dwconv.TwoRowBlocks5x5
  F32Gemm.MobileNetShapes
  F32InvertedResidual.ChannelTiles F32InvertedResidual.MobileNetV2BlockShapesSmall
  F32InvertedResidual.OddSizesStridesAndExpansions F32InvertedResidual.ThreadsAndBandsOnMobileNetRowCounts
  F32InvertedResidual.ThreadsGiveOneThreadsBits F32InvertedResidual.ThreadsSplitHiddenChannelsOnSmallImages
  F32SEInvertedResidual.MobileNetV3SEBlockShapesSmall F32SEInvertedResidual.OddSizesStridesKernelsGates
  F32SEInvertedResidual.ThreadsSplitHiddenChannelsOnSmallImages
  Q8Gemm.MobileNetShapesThreaded Q8Gemm.ThreadSplitsMatchOneThread
  Q8GemmVnniTiles.EveryK Q8GemmVnniTiles.PanelChunks Q8GemmVnniTiles.SubRangesAndThreads
  Q8GemmVnniTiles.ZeroPointsDtypesClampsTables
  Q8InvertedResidual.ColumnChunksAt28Rows Q8InvertedResidual.ColumnChunksOddWidths
)
DISPATCH_ONLY="--gtest_filter=-$(IFS=:; echo "${HEAVY_GRIDS[*]}")"

echo "== C++ tests: native, AddressSanitizer"
# -O1 -g1 (line tables: ASan reports still name file:line): measured on the 2-core Xeon, the
# heaviest kernel file (f32_dwconv_avx2.cpp, ASan+UBSan) compiles in 155 s against 458 s at
# RelWithDebInfo's -O2 -g, and the ASan build was 900 s of CI's ~41 min; the tests take 35 s.
configure "$out/asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DMK_ASAN=ON
ninja -C "$out/asan" -j "$jobs" mk_tests >/dev/null
ASAN_OPTIONS=detect_leaks=1 "$out/asan/tests/cpp/mk_tests" --gtest_brief=1

echo "== C++ tests: Release under qemu-x86_64 (Haswell, Nehalem) (${SECONDS}s)"
configure "$out/release" -DCMAKE_BUILD_TYPE=Release -DMK_BUILD_BENCH=ON
ninja -C "$out/release" -j "$jobs" >/dev/null
x86_run() { qemu-x86_64 -cpu "$1" "$out/release/tests/cpp/mk_tests" --gtest_brief=1 "$DISPATCH_ONLY" 2>&1 | grep -v "TCG doesn't support"; }
side_by_side "qemu-x86_64 -cpu" x86_run Haswell Nehalem

echo "== C++ tests: aarch64 under qemu-aarch64 (${SECONDS}s)"
configure "$out/aarch64" -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake"
ninja -C "$out/aarch64" -j "$jobs" mk_tests >/dev/null
a64_run() {
  local filter=()
  [ "$1" = max ] || filter=("$DISPATCH_ONLY")  # max (NEON + dotprod + i8mm) runs every test
  QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64 -cpu "$1" "$out/aarch64/tests/cpp/mk_tests" --gtest_brief=1 "${filter[@]}"
}
side_by_side "qemu-aarch64 -cpu" a64_run cortex-a72 neoverse-n1 max
echo "== C++ tests: all configurations passed (${SECONDS}s)"
