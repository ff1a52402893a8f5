"""The TFLite exporter behind the benchmark's XNNPACK column: LiteRT's output matches PyTorch at
float64 within fp32 rounding, and XNNPACK takes the whole graph."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("ai_edge_litert")

from mobilekernels import models  # noqa: E402
from mobilekernels._tflite_export import export, runner  # noqa: E402
from mobilekernels.benchmark import _realistic_bn  # noqa: E402

RTOL = 1e-4  # max |error| / max |reference|, reference = the same model in float64


def _check(model: nn.Module, x: torch.Tensor, threads: int = 1, rtol: float = RTOL) -> None:
    invoke, output, undelegated = runner(model, x, threads)
    assert undelegated == [], undelegated
    invoke()
    with torch.no_grad():
        ref = model.double()(x.double())
        model.float()
    got = output().double()
    assert got.shape == ref.shape
    err = ((got - ref).abs().max() / ref.abs().max()).item()
    assert err < rtol, err


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"])
@pytest.mark.parametrize("res,batch,threads", [(64, 1, 1), (67, 2, 2)])  # 67: odd sizes take SAME, even ones PAD
def test_mobilenets_match_torch(name, res, batch, threads):
    torch.manual_seed(0)
    model = _realistic_bn(models.get_model(name, width_mult=0.35).eval())
    _check(model, torch.randn(batch, 3, res, res), threads)


def test_mobilenet_v2_full_size():
    torch.manual_seed(0)
    model = _realistic_bn(models.get_model("mobilenet_v2").eval())
    _check(model, torch.randn(1, 3, 224, 224), 2)


class _Mixed(nn.Module):
    """Every mapping that the MobileNets do not reach: functional forms, activations and a
    Hardsigmoid not after a conv, dilation, a conv without bias, stride-2 on even and odd maps."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(5, 12, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(12)
        self.dw = nn.Conv2d(12, 12, 5, padding=4, dilation=2, groups=12)
        self.dw2 = nn.Conv2d(12, 12, 3, stride=2, padding=1, groups=12)
        self.pw = nn.Conv2d(12, 7, 1)
        self.act = nn.Hardtanh(0.0, 6.0)
        self.hsig = nn.Hardsigmoid()
        self.fc = nn.Linear(7, 3)

    def forward(self, x):
        y = self.bn1(self.c1(x))
        y = torch.add(F.relu(y), self.act(self.dw(y)))  # the BN output has two users: no fused act
        y = F.hardswish(self.dw2(y))
        y = self.pw(y)
        y = y * self.hsig(y * y)
        y = F.adaptive_avg_pool2d(y, 1)
        return self.fc(y.flatten(1))


@pytest.mark.parametrize("res", [16, 17])
def test_mixed_ops(res):
    torch.manual_seed(0)
    m = _realistic_bn(_Mixed()).eval()
    _check(m, torch.randn(2, 5, res, res) * 3)


def test_unsupported_is_a_clear_error():
    grouped = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1, groups=2)).eval()
    with pytest.raises(NotImplementedError, match="grouped conv"):
        export(grouped, (1, 4, 8, 8))
    with pytest.raises(NotImplementedError, match="cannot map"):
        export(nn.Sequential(nn.Sigmoid()).eval(), (1, 4, 8, 8))
    with pytest.raises(ValueError, match="eval"):
        export(nn.Sequential(nn.Conv2d(4, 8, 1)).train(), (1, 4, 8, 8))


def test_undelegated_is_reported():
    """Without the default delegate (TFLite's own kernels) the check names the ops."""
    m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU6()).eval()
    _, _, undelegated = runner(m, torch.randn(1, 3, 8, 8), 1, xnnpack=False)
    assert undelegated == ["CONV_2D"]
