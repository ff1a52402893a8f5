"""bench_dwconv.py's other-library columns: the one-op TFLite (XNNPACK) and ONNX Runtime models
reproduce F.conv2d(padding=1) + relu6, and the bench runs end to end with them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

# (H, W, C, stride): stride 2 on even sizes needs torch's (1, 0) padding, not TFLite SAME's (0, 1)
SHAPES = [(10, 10, 8, 1), (7, 9, 13, 2), (8, 5, 17, 2), (6, 6, 24, 2)]


def _case(h, w, c):
    g = torch.Generator().manual_seed(h * 100 + w * 10 + c)
    return torch.randn(1, c, h, w, generator=g), torch.randn(c, 1, 3, 3, generator=g), torch.randn(c, generator=g)


def _ref(x, weight, bias, stride):
    return F.conv2d(x.double(), weight.double(), bias.double(), stride, 1, 1, x.shape[1]).clamp(0, 6)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("h,w,c,stride", SHAPES)
def test_tflite_model_matches_torch_and_runs_on_xnnpack(h, w, c, stride, threads):
    pytest.importorskip("ai_edge_litert")
    import tflite_dw

    x, weight, bias = _case(h, w, c)
    for xnnpack in (True, False):
        invoke, output, info = tflite_dw.runner(x, weight, bias, stride, threads, xnnpack=xnnpack)
        invoke()
        assert info["xnnpack"] == xnnpack, info
        assert info["pad_op"] == (stride == 2 and (h % 2 == 0 or w % 2 == 0))
        torch.testing.assert_close(output().double(), _ref(x, weight, bias, stride), rtol=0, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("h,w,c,stride", SHAPES)
def test_onnx_model_matches_torch(h, w, c, stride, threads):
    pytest.importorskip("onnxruntime")
    import onnx_dw

    x, weight, bias = _case(h, w, c)
    out = torch.from_numpy(onnx_dw.runner(x, weight, bias, stride, threads)())
    torch.testing.assert_close(out.double(), _ref(x, weight, bias, stride), rtol=0, atol=1e-4)


def test_bench_dwconv_runs_with_all_columns(tmp_path):
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "dw.json"
    r = subprocess.run([sys.executable, str(BENCH / "bench_dwconv.py"), "--threads", "1", "--samples", "1",
                        "--tflite-builtin", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ours vs XNNPACK" in r.stdout and "sum of 17" in r.stdout and "ours / floor" in r.stdout
    rows = json.loads(out.read_text())["results"]
    assert len(rows) == 17
    for row in rows:
        for col in ("ours", "floor", "torch_channels_last", "xnnpack", "ort", "tflite_builtin"):
            assert row[col]["median"] > 0, (col, row)
    assert [row["xnnpack_pad_op"] for row in rows if row["shape"][4] == 2] == [True] * 4
