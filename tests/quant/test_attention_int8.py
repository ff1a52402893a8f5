"""ECA and CBAM in int8 (``QECA`` / ``QCBAM``): no float fallback, same numbers as the
fake-quantized float reference, pruned blocks (ECA's channel positions, CBAM's channel count)
included."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mobilekernels.models.attention import CBAM, ECA
from mobilekernels.quant import quantize
from mobilekernels.quant.modules import QCBAM, QECA, eca_as_conv1x1
from mobilekernels.quant.observers import dequantize_tensor, quantize_tensor
from mobilekernels.quant.quantize import _plan

C_FULL, C_KEPT = 40, 28


def _attention(kind: str, pruned: bool) -> nn.Module:
    torch.manual_seed(5)
    att = ECA(C_FULL) if kind == "eca" else CBAM(C_FULL)
    with torch.no_grad():
        for p in att.parameters():
            p.uniform_(-1.0, 1.0)
        if kind == "cbam":
            att.spatial_bn.weight.fill_(0.8)  # not ~0: folded weights would underflow their int32 bias
            att.spatial_bn.running_mean.fill_(0.1)
            att.spatial_bn.running_var.fill_(0.8)
    if pruned:
        keep = torch.sort(torch.randperm(C_FULL, generator=torch.Generator().manual_seed(6))[:C_KEPT]).values
        att.prune_channels(keep)
    return att.eval()


def _model(kind: str, pruned: bool) -> nn.Sequential:
    att = _attention(kind, pruned)
    c = C_KEPT if pruned else C_FULL
    torch.manual_seed(7)
    m = nn.Sequential(nn.Conv2d(3, c, 3, 1, 1), nn.BatchNorm2d(c), nn.ReLU(), att, nn.Conv2d(c, 16, 1),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    return m.eval()


def _calib(seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, 16, 16, generator=g) for _ in range(3)]


@pytest.mark.parametrize("pruned", [False, True])
def test_eca_as_banded_conv1x1(pruned):
    eca = _attention("eca", pruned)
    v = torch.randn(3, eca.channels)
    w = eca_as_conv1x1(eca)
    assert w.shape == (eca.channels, eca.channels, 1, 1)
    x = v[:, :, None, None]
    with torch.no_grad():
        eca.scale_activation = nn.Identity()  # ECA(x) = x * conv1d(x) then: the conv is ECA(x) / x
        ref = eca(x) / x
        got = F.conv2d(x, w)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["eca", "cbam"])
@pytest.mark.parametrize("pruned", [False, True])
def test_attention_runs_int8(kind, pruned):
    m = _model(kind, pruned)
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    # the float plan (BN folded, ECA as a banded 1x1 conv, CBAM split) is the model
    steps, _ = _plan(m)
    y = x
    with torch.no_grad():
        for st in steps:
            y = st.forward_float(y, "float")
        torch.testing.assert_close(y.flatten(1), m(x), rtol=1e-4, atol=1e-5)

    q = quantize(m, _calib(), progress=False)
    att = q.steps[1]
    assert isinstance(att, QECA if kind == "eca" else QCBAM)
    text = q.summary()
    assert text.splitlines()[-1].endswith(" 0 float fallbacks (dequantize -> float -> quantize)"), text
    assert ("ECA x * gate" if kind == "eca" else "CBAM x * spatial gate") in text
    step = float(q.steps[-1].out_scale)
    err = (q(x) - q.reference(x)).abs() / step
    assert err.max() <= 2.0 + 1e-3 and err.mean() <= 0.5, (err.max(), err.mean())
    with torch.no_grad():
        f = m(x)
    assert (q(x) - f).abs().max() <= 0.1 * f.abs().max() + 4 * step

    # the attention step alone: int8 codes vs its fake-quant float computation on the same input
    s, z = q.steps[0].out_qparams()
    xq = torch.randint(0, 256, (2, C_KEPT if pruned else C_FULL, 9, 9), generator=torch.Generator().manual_seed(3),
                       dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    yq, ys, yz = att.forward_int(xq, s, z)
    assert yq.dtype == torch.uint8 and yq.shape == xq.shape
    refq = quantize_tensor(att.forward_float(dequantize_tensor(xq, s, z), "fake"), ys, yz)
    diff = (yq.int() - refq.int()).abs()
    # A tie rounded the other way inside moves a gate code by one; x * gate turns that into at most
    # one output step here (ECA). CBAM has two gates in series, the second behind a 7x7 conv and a
    # sigmoid lookup table that can stretch one step to its largest jump: measured up to 3 steps,
    # mean 0.13, on these uniformly random (mostly out-of-calibration) codes.
    tol, mean_tol = (2, 0.05) if kind == "eca" else (4, 0.2)
    assert diff.max() <= tol and diff.float().mean() < mean_tol, (diff.max(), diff.float().mean())


def test_attention_state_dict_roundtrip():
    m = _model("cbam", True)
    q = quantize(m, _calib(), progress=False)
    other = quantize(m, _calib(seed=9), progress=False)
    x = torch.randn(2, 3, 16, 16)
    assert not torch.equal(other(x), q(x))
    other.load_state_dict(q.state_dict())
    torch.testing.assert_close(other(x), q(x), rtol=0, atol=0)
