"""The main job's command line runs end to end (small resolution) and writes its outputs."""
from __future__ import annotations

import json
import subprocess
import sys


def test_bench_cli_small(tmp_path):
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    r = subprocess.run([sys.executable, "-m", "mobilekernels", "bench", "--model", "mobilenet_v2", "--threads", "1",
                        "--samples", "1", "--resolution", "64", "--json", str(out_json), "--png", str(out_png)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out_json.read_text())["results"]
    variants = {row["variant"]: row for row in rows}
    assert variants["torch fp32 NCHW"]["speedup"] == 1.0
    assert variants["mobilekernels fp32"]["median_ms"] > 0
    assert "rel err vs torch" in variants["mobilekernels fp32"]["note"]
    assert variants["mobilekernels int8"]["median_ms"] > 0
    assert out_png.stat().st_size > 1000


def test_info_cli():
    r = subprocess.run([sys.executable, "-m", "mobilekernels", "info", "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["active_isa"] in d["supported_isas"] and "dwconv2d 112x112x32 k3x3 s1 d1" in d["kernels"]
