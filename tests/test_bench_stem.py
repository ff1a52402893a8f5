"""bench/bench_stem.py runs end to end (small input, one sample): ours on NCHW and channels_last
against torch, every output checked against torch first."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_bench_stem_runs():
    r = subprocess.run([sys.executable, str(BENCH / "bench_stem.py"), "--samples", "1", "--size", "33"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for want in ("mobilenet_v2 stem 3->32", "mobilenet_v3 stem 3->16", "ours_nchw", "torch_channels_last / ours_nchw"):
        assert want in r.stdout
