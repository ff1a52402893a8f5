#!/usr/bin/env bash
# Set up a fresh Debian machine for mobilekernels: system packages, Python packages, and the
# package itself (built from this checkout). Idempotent: re-running installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
APT_PKGS="g++ cmake ninja-build libgtest-dev libbenchmark-dev g++-aarch64-linux-gnu qemu-user"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup: apt-get install$missing"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PIP="python3 -m pip --disable-pip-version-check -q"
# torch pinned: 2.13.0 is the CPU build on local disk here (a bare 'torch' pulls a CUDA build).
$PIP install "torch==2.13.0" numpy "scikit-build-core>=0.10" "pybind11>=2.12" \
  pytest rich tqdm scikit-learn matplotlib onnx
$PIP install --no-build-isolation .
