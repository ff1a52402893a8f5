"""Shared benchmark plumbing: shape files and interleaved timing with median/min/max."""
from __future__ import annotations

import os
from pathlib import Path

from mobilekernels._timing import compare, core_check, core_check_line  # noqa: F401  (re-exported for the bench scripts)

SHAPES_DIR = Path(__file__).resolve().parent / "shapes"


def read_shapes(name: str) -> list[tuple[int, ...]]:
    """Rows of ints from bench/shapes/<name>.txt ('#' starts a comment)."""
    rows = []
    for line in (SHAPES_DIR / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            rows.append(tuple(int(v) for v in line.split()))
    return rows


def machine_line() -> str:
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    # The core check (see mobilekernels._timing.core_check): whether every core was whole.
    return (f"cpu: {cpu} ({os.cpu_count()} cores, load {load:.2f}); torch {torch.__version__}; "
            + core_check_line(core_check()))
