#!/usr/bin/env bash
# Set up a fresh Debian machine for mobilekernels: system packages, Python packages, and the
# package itself (built from this checkout). Idempotent: re-running installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
APT_PKGS="g++ ccache cmake ninja-build libgtest-dev libbenchmark-dev g++-aarch64-linux-gnu qemu-user"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup: apt-get install$missing"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PIP="python3 -m pip --disable-pip-version-check -q"
# torch pinned: 2.13.0 is the CPU build on local disk here (a bare 'torch' pulls a CUDA build).
# onnx + onnxruntime (pinned, ~20 MB of wheels, seconds to install): the ONNX Runtime fp32/int8
# rows of `python -m mobilekernels bench` and its CLI test, and the QLinearConv reference tests.
# The bench exports with torch's TorchScript exporter (dynamo=False), so onnxscript is not needed.
# ai-edge-litert (pinned, Google's TFLite runtime, 22 MB wheel; adds only backports.strenum, keeps
# torch/numpy): the XNNPACK column of bench/bench_dwconv.py and its test.
$PIP install "torch==2.13.0" numpy "scikit-build-core>=0.10" "pybind11>=2.12" \
  pytest rich tqdm scikit-learn matplotlib "onnx==1.23.2" "onnxruntime==1.32.0" "ai-edge-litert==2.3.0"
# The package itself: kept when it is already installed editable from this checkout (a developer's
# `pip install -e .`, which rebuilds the C++ on import), else built and installed from here.
if python3 - "$(pwd -P)" <<'PY'
import importlib.metadata as md, json, sys
try:
    d = json.loads(md.distribution("mobilekernels").read_text("direct_url.json") or "{}")
except md.PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if d.get("dir_info", {}).get("editable") and d.get("url") == "file://" + sys.argv[1] else 1)
PY
then
  echo "setup: mobilekernels is installed editable from $(pwd -P); kept"
else
  source tools/ccache_env.sh
  $PIP install --no-build-isolation .
fi
