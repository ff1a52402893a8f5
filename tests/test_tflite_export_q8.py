"""The int8 TFLite export behind the benchmark's "xnnpack int8" column: XNNPACK takes the whole
graph, and it computes what our int8 model computes.

Two checks, on the same exported graph run by XNNPACK (and by TFLite's own int8 kernels):

* layer by layer, in isolation: every step of ours is run on the int8 codes XNNPACK produced
  for that step's input, and its output codes compared with XNNPACK's for that step. Only the
  requantization rounding differs, so each step agrees within ``LAYER_LSB`` (1 code; 2 where the
  export computes an activation differently: Hardswish as ADD + MUL, the SE gate's Hardsigmoid
  folded into its conv). A wrong weight, scale, bias, padding or layout in any one layer fails
  this (see the deliberate-bug tests below).
* end to end: the logits. Rounding differences of one code per layer propagate; measured (V2,
  V3-Large, V3-Small at widths 0.35-1.0, 64-224 px, batch 1-3, 4 inputs each) max 3 output
  codes, V2 0-1. ``LOGIT_LSB`` = 6 gives 2x margin; top-1 must agree wherever ours leads by
  more than twice that (random-init networks often tie their top logits at the clamp).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("ai_edge_litert")

import mobilekernels as mk  # noqa: E402
from mobilekernels import models  # noqa: E402
from mobilekernels._tflite_export import interpreter, undelegated_ops  # noqa: E402
from mobilekernels._tflite_export_q8 import export_q8, runner_q8  # noqa: E402
from mobilekernels.benchmark import _realistic_bn  # noqa: E402
from mobilekernels.quant.modules import QBlock, QConv, QFlatten, QSE, _mul_gate, qadd  # noqa: E402
from mobilekernels.quant.observers import quantize_tensor  # noqa: E402

LAYER_LSB = 1  # plain conv / pool / add / SE multiply
LAYER_LSB_ACT = 2  # a conv followed by Hardswish (ADD + MUL) or by the folded Hardsigmoid
LOGIT_LSB = 6


def _quantized(name: str, width: float, res: int, batch: int):
    torch.manual_seed(0)
    model = _realistic_bn(models.get_model(name, width_mult=width).eval())
    g = torch.Generator().manual_seed(1)
    calib = [torch.randn(batch, 3, res, res, generator=g) for _ in range(4)]
    return mk.quantize(model, calib, progress=False)


def _input(batch: int, res: int, seed: int = 10) -> torch.Tensor:
    return torch.randn(batch, 3, res, res, generator=torch.Generator().manual_seed(seed))


def _codes(a: np.ndarray) -> torch.Tensor:
    """int8 NHWC from TFLite -> our uint8 NCHW-shaped channels_last codes."""
    t = torch.from_numpy(a.astype(np.int16) + 128).to(torch.uint8)
    return t.permute(0, 3, 1, 2) if t.dim() == 4 else t


def _run_all(q, x: torch.Tensor, threads: int, xnnpack: bool = True, hardswish: str = "mul") -> dict:
    """Every int8 activation of the exported graph (by name) after one invoke."""
    it = interpreter(export_q8(q, tuple(x.shape), hardswish, all_outputs=True), threads, xnnpack)
    if xnnpack:
        assert undelegated_ops(it) == []
    it.set_tensor(it.get_input_details()[0]["index"], x.permute(0, 2, 3, 1).contiguous().numpy())
    it.invoke()
    return {d["name"]: _codes(it.get_tensor(d["index"])) for d in it.get_output_details()
            if d["dtype"] == np.int8}


def _layer_errors(q, codes: dict) -> dict:
    """``{step output name: (max |ours - theirs| in codes, tolerance)}``, each step of ours run on
    the codes the export produced for its input."""
    errs = {}

    def cmp(name: str, ours: torch.Tensor, tol: int) -> None:
        theirs = codes[name]
        assert theirs.shape == ours.shape, (name, theirs.shape, ours.shape)
        errs[name] = (int((ours.int() - theirs.int()).abs().max()), tol)

    def one(st, src: str, s: float, z: int):
        q_in = codes[src].contiguous(memory_format=torch.channels_last)
        if isinstance(st, QFlatten):
            return src, s, z
        if isinstance(st, QBlock):
            out = (src, s, z)
            for sub in st.steps:
                out = one(sub, *out)
            if not st.residual:
                return out
            os_, oz = st.out_qparams()
            cmp(st.name + ".add", qadd(q_in, s, z, codes[out[0]], out[1], out[2], os_, oz), LAYER_LSB)
            return st.name + ".add", os_, oz
        if isinstance(st, QSE):
            g = one(st.fc2, *one(st.fc1, *one(st.pool, src, s, z)))
            ys, yz = st.out_qparams()
            cmp(st.name + ".mul", _mul_gate(q_in, s, z, codes[g[0]], g[1], g[2], ys, yz), LAYER_LSB)
            return st.name + ".mul", ys, yz
        y, ys, yz = st.forward_int(q_in, s, z)
        post = isinstance(st, QConv) and st.post is not None
        cmp(st.name, y, LAYER_LSB_ACT if post else LAYER_LSB)
        return st.name, ys, yz

    src, s, z = "input_q", *q.in_qparams()
    for st in q.steps:
        src, s, z = one(st, src, s, z)
    return errs


def _check_layers(q, x, threads, xnnpack=True):
    codes = _run_all(q, x, threads, xnnpack)
    # the graph's quantized input is ours
    ours_in = quantize_tensor(x.contiguous(memory_format=torch.channels_last), *q.in_qparams())
    assert int((codes["input_q"].int() - ours_in.int()).abs().max()) <= 1
    errs = _layer_errors(q, codes)
    assert len(errs) >= 20
    bad = {k: v for k, v in errs.items() if v[0] > v[1]}
    assert not bad, bad
    return errs


def _check_logits(q, x, threads):
    invoke, output, undelegated = runner_q8(q, x, threads)
    assert undelegated == [], undelegated
    invoke()
    got, ref = output(), q(x)
    assert got.shape == ref.shape and got.dtype == torch.float32
    lsb = float(q.steps[-1].out_scale)
    assert (got - ref).abs().max().item() <= LOGIT_LSB * lsb * 1.0001
    top2 = ref.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 2 * LOGIT_LSB * lsb
    assert torch.equal(got.argmax(1)[clear], ref.argmax(1)[clear])


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"])
@pytest.mark.parametrize("res,batch,threads", [(64, 1, 1), (67, 3, 2)])  # 67: odd sizes take SAME, even ones PAD
def test_mobilenets_match_ours(name, res, batch, threads):
    q = _quantized(name, 0.35, res, batch)
    x = _input(batch, res)
    _check_layers(q, x, threads)
    _check_logits(q, x, threads)


def test_tflite_kernels_agree_too():
    """TFLite's own int8 kernels (fixed-point requantization) run the same graph within the same
    per-layer tolerance: the graph, not XNNPACK, carries the semantics."""
    q = _quantized("mobilenet_v3_large", 0.35, 67, 2)
    _check_layers(q, _input(2, 67), 1, xnnpack=False)


def test_mobilenet_v3_large_full_size():
    q = _quantized("mobilenet_v3_large", 1.0, 224, 1)
    x = _input(1, 224)
    _check_layers(q, x, 2)
    _check_logits(q, x, 2)


def test_hardswish_op_form():
    """hardswish="op" keeps TFLite's HARD_SWISH, which the delegate leaves to TFLite's kernels."""
    q = _quantized("mobilenet_v3_small", 0.35, 64, 1)
    x = _input(1, 64)
    invoke, output, undelegated = runner_q8(q, x, 1, hardswish="op")
    assert "HARD_SWISH" in undelegated
    invoke()
    assert (output() - q(x)).abs().max().item() <= LOGIT_LSB * float(q.steps[-1].out_scale) * 1.0001


def _step(q, name):
    return next(m for m in q.modules() if getattr(m, "name", None) == name)


@pytest.mark.parametrize("mutate", ["weight_scale", "bias", "hardsigmoid"])
def test_layer_check_catches_a_wrong_layer(mutate):
    """The tests can fail: one export-side error in one layer (ours runs its packs, unchanged)."""
    q = _quantized("mobilenet_v3_large", 0.35, 64, 1)
    x = _input(1, 64)
    if mutate == "weight_scale":  # per-channel scales on the wrong channels
        st = _step(q, "features.9.block.1.0")  # a depthwise conv
        st.w_scale.copy_(st.w_scale.flip(0))
    elif mutate == "bias":
        st = _step(q, "features.5.block.3.0")  # a project conv
        st.bias[7] += 2 * float(st.out_scale)
    else:  # the SE gate's +3 forgotten: Hardsigmoid = relu6(y) / 6
        st = _step(q, "features.4.block.2.fc2")
        st.bias -= 3.0
    errs = _layer_errors(q, _run_all(q, x, 1))
    bad = {k for k, v in errs.items() if v[0] > v[1]}
    assert st.name in bad


def test_unsupported_is_a_clear_error():
    from mobilekernels.models.attention import CBAM

    seq = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)).eval()
    q = mk.quantize(seq, [torch.randn(1, 3, 8, 8)], progress=False)
    with pytest.raises(NotImplementedError, match="MaxPool2d"):
        export_q8(q, (1, 3, 8, 8))
    seq = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Sigmoid()).eval()
    q = mk.quantize(seq, [torch.randn(1, 3, 8, 8)], progress=False)
    with pytest.raises(NotImplementedError, match="Sigmoid"):
        export_q8(q, (1, 3, 8, 8))
    seq = nn.Sequential(nn.Conv2d(3, 16, 1), CBAM(16)).eval()
    q = mk.quantize(seq, [torch.randn(1, 3, 8, 8)], progress=False)
    with pytest.raises(NotImplementedError, match="CBAM"):
        export_q8(q, (1, 3, 8, 8))
    with pytest.raises(TypeError, match="QuantizedModel"):
        export_q8(seq, (1, 3, 8, 8))
    with pytest.raises(ValueError, match="hardswish"):
        export_q8(q, (1, 3, 8, 8), hardswish="lut")
