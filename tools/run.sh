#!/usr/bin/env bash
# The README's two commands:
#   bash tools/run.sh bench   set up, then run the main benchmark (ours vs PyTorch); extra
#                             arguments go to `python -m mobilekernels bench`
#   bash tools/run.sh test    set up, then run every test (C++ native+ASan, qemu x86 levels,
#                             aarch64 NEON under qemu, then the Python suite)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-test}"
shift || true
bash tools/setup.sh

case "$what" in
  bench)
    # The main job: whole models vs PyTorch (table, JSON, PNG), then the depthwise layer table.
    python3 -m mobilekernels bench "$@"
    python3 bench/bench_dwconv.py
    ;;
  test)
    bash tools/cpp_tests.sh
    # Run from a temp dir against the installed wheel, not the source tree.
    (cd "$(mktemp -d)" && python3 -m pytest -q -p no:cacheprovider "$OLDPWD/tests" "$@")
    ;;
  *)
    echo "usage: bash tools/run.sh bench|test [args]" >&2
    exit 2
    ;;
esac
