"""The main job's command line runs end to end (small resolution) and writes its outputs."""
from __future__ import annotations

import json
import subprocess
import sys

import torch

from mobilekernels.benchmark import _peak_of, memory_supported


def test_bench_cli_small(tmp_path):
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    r = subprocess.run([sys.executable, "-m", "mobilekernels", "bench", "--model", "mobilenet_v2", "--threads", "1",
                        "--samples", "1", "--resolution", "64", "--json", str(out_json), "--png", str(out_png)],
                       capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out_json.read_text())["results"]
    variants = {row["variant"]: row for row in rows}
    assert variants["torch fp32 NCHW"]["speedup"] == 1.0
    assert variants["mobilekernels fp32"]["median_ms"] > 0
    assert "rel err vs torch" in variants["mobilekernels fp32"]["note"]
    assert variants["mobilekernels int8"]["median_ms"] > 0
    assert "vs fake-quant" in variants["mobilekernels int8"]["note"]
    # ONNX Runtime (installed by tools/setup.sh): fp32 checked against torch, int8 against fp32
    assert variants["onnxruntime fp32"]["median_ms"] > 0, variants["onnxruntime fp32"]["note"]
    assert "rel err vs torch" in variants["onnxruntime fp32"]["note"]
    assert variants["onnxruntime int8"]["median_ms"] > 0, variants["onnxruntime int8"]["note"]
    assert "QDQ" in variants["onnxruntime int8"]["note"] and "top-1" in variants["onnxruntime int8"]["note"]
    # XNNPACK through LiteRT (installed by tools/setup.sh): checked against torch, whole graph delegated
    assert variants["xnnpack fp32"]["median_ms"] > 0, variants["xnnpack fp32"]["note"]
    assert "rel err vs torch" in variants["xnnpack fp32"]["note"]
    assert "not delegated" not in variants["xnnpack fp32"]["note"]
    assert "xnnpack fp32: LiteRT" in r.stdout
    # XNNPACK int8: our int8 model exported with its scales, whole graph delegated, a few codes from ours
    assert variants["xnnpack int8"]["median_ms"] > 0, variants["xnnpack int8"]["note"]
    assert "vs ours int8" in variants["xnnpack int8"]["note"] and "top-1" in variants["xnnpack int8"]["note"]
    assert "not delegated" not in variants["xnnpack int8"]["note"]
    assert "xnnpack int8: the same" in r.stdout
    # peak memory of every timed variant, from its own process
    for row in rows:
        assert "memory_error" not in row, row
        assert row["peak_first_mb"] >= row["peak_mb"] - 1.0 >= -1.0, row
    # a float forward at 64x64 holds several activations of 16x32x32 floats (64 KB) at once
    assert variants["torch fp32 NCHW"]["peak_mb"] > 0.1
    assert "peak MB" in r.stdout
    assert out_png.stat().st_size > 1000


def test_peak_memory_counts_reused_allocations():
    """The warm-allocation trap: glibc keeps freed blocks below its (adaptive) mmap threshold,
    so a repeated forward would seem to take no memory. Each measurement must see the full
    20 MB again."""
    assert memory_supported()

    def fwd():
        t = torch.empty(5 << 20)  # 20 MB of float32
        t.fill_(1.0)
        return float(t[-1])

    peaks = [_peak_of(fwd) for _ in range(4)]
    assert all(18.0 < p < 40.0 for p in peaks), peaks


def test_info_cli():
    r = subprocess.run([sys.executable, "-m", "mobilekernels", "info", "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["active_isa"] in d["supported_isas"] and "dwconv2d 112x112x32 k3x3 s1 d1" in d["kernels"]


def test_unfused_variants(tmp_path):
    """--unfused adds our models with every block run as separate layers: same outputs as fused."""
    from mobilekernels.benchmark import UNFUSED_VARIANTS, Setup, build_variant

    with torch.no_grad():
        st = Setup("mobilenet_v2", 1, 64, tmp_path)
        out = {}
        for label in ("mobilekernels fp32", "mobilekernels int8") + UNFUSED_VARIANTS:
            fn, note = build_variant(label, st, 1)
            assert fn is not None, note
            out[label] = fn()
    torch.testing.assert_close(out["mobilekernels fp32 unfused"], out["mobilekernels fp32"], rtol=1e-4, atol=1e-4)
    assert torch.equal(out["mobilekernels int8 unfused"], out["mobilekernels int8"])  # fused is bit-exact
