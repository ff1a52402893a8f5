"""bench/bench_pw.py runs end to end: ours, torch channels_last and (installed by tools/setup.sh)
XNNPACK on every MobileNetV2 1x1 layer, each XNNPACK output checked against ours first."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_bench_pw_runs_with_xnnpack(tmp_path):
    pytest.importorskip("ai_edge_litert")
    out = tmp_path / "pw.json"
    r = subprocess.run([sys.executable, str(BENCH / "bench_pw.py"), "--threads", "1", "--samples", "1",
                        "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ours vs XNNPACK" in r.stdout
    rows = json.loads(out.read_text())["results"]
    assert len(rows) == 34
    for row in rows:
        for col in ("ours", "torch_channels_last", "xnnpack"):
            assert row[col]["median"] > 0, (col, row)
