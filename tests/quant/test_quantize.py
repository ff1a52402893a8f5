"""mobilekernels.quantize: int8 models against a float reference with fake quantization.

Tolerances come from the quantization step. The int8 path and the fake-quant reference
compute the same thing except for rounding details (int32 bias rounded in units of
``x_scale * w_scale``, the fp32 requantization scale), so one layer's codes differ by at most
one step, on rare ties (test_each_layer_within_one_step). Downstream such a difference is
usually rounded away (V1/V2 here: bit-identical logits) but a Hardswish lookup table can stretch
it to its largest jump, and V3-Large chains 30 of them: measured up to 5 output steps max, 1.1
mean. Bound: <= 8 output steps max, <= 1.5 step mean over the logits.
"""
from __future__ import annotations

import io

import pytest
import torch
from torch import nn

import mobilekernels as mk
from mobilekernels.models import get_model
from mobilekernels.quant import MinMaxObserver, PercentileObserver, QuantizedModel, quantize
from mobilekernels.quant.modules import QBlock, QConv, QFloat
from mobilekernels.quant.observers import dequantize_tensor, quantize_tensor, quantize_weight_per_channel
from mobilekernels.quant.quantize import _plan

# every model, every attention type once (first-call oneDNN set-up per shape dominates the time)
CASES = [("mobilenet_v1", "se"), ("mobilenet_v2", None), ("mobilenet_v2", "eca"), ("mobilenet_v2", "cbam"),
         ("mobilenet_v3_small", "se"), ("mobilenet_v3_large", None)]


def _model(name, attention, seed=0):
    torch.manual_seed(seed)
    m = get_model(name, num_classes=10, width_mult=0.35, attention=attention)
    for mod in m.modules():  # randomized BN statistics: folding must matter
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
    return m.eval()


def _calib(n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, 32, 32, generator=g) for _ in range(n)]


def _convs(steps):
    for st in steps:
        if isinstance(st, QBlock):
            yield from _convs(st.steps)
        elif isinstance(st, QConv):
            yield st


@pytest.mark.parametrize("name,attention", CASES)
def test_matches_fake_quant_reference(name, attention):
    m = _model(name, attention)
    q = quantize(m, _calib(), progress=False)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    y, ref = q(x), q.reference(x)
    assert y.shape == ref.shape == (3, 10) and y.dtype == torch.float32
    step = float(q.steps[-1].out_scale)
    err = (y - ref).abs() / step
    assert err.max() <= 8.0 + 1e-3, err.max()
    assert err.mean() <= 1.5, err.mean()
    # the int8 model stays close to the float model (loose: random weights, 20+ layers)
    with torch.no_grad():
        f = m(x)
    assert (y - f).abs().max() <= 0.15 * f.abs().max() + 8 * step


@pytest.mark.parametrize("name,attention", [("mobilenet_v2", None), ("mobilenet_v3_small", "se")])
def test_each_layer_within_one_step(name, attention):
    """Every conv on our kernels vs its fake-quant float computation on the same uint8 input."""
    q = quantize(_model(name, attention), _calib(), progress=False)
    g = torch.Generator().manual_seed(3)
    for conv in _convs(q.steps):
        if conv.kind == "float":
            continue
        s, z = float(conv.in_scale), int(conv.in_zp)
        xq = torch.randint(0, 256, (2, conv.in_channels, 9, 9), generator=g, dtype=torch.uint8)
        xq = xq.contiguous(memory_format=torch.channels_last)
        yq, ys, yz = conv.forward_int(xq, s, z)
        ref = conv.forward_float(dequantize_tensor(xq, s, z), "fake")
        refq = quantize_tensor(ref, ys, yz)
        diff = (yq.int() - refq.int()).abs()
        # 1 step of the conv output; a Hardswish LUT after it can stretch that to its largest jump
        tol = 1 if conv.post is None else max(1, int((conv.lut[1:].int() - conv.lut[:-1].int()).abs().max()))
        assert diff.max() <= tol, (conv.name, diff.max(), tol)
        assert diff.float().mean() < 0.05, (conv.name, diff.float().mean())


@pytest.mark.parametrize("name,attention", [("mobilenet_v1", "cbam"), ("mobilenet_v3_small", "eca")])
def test_plan_in_float_equals_model(name, attention):
    """BN folding and the walk over the module tree reproduce the float model."""
    m = _model(name, attention)
    steps, flatten = _plan(m)
    x = torch.randn(2, 3, 32, 32)
    y = x
    with torch.no_grad():
        for st in steps:
            y = st.forward_float(y, "float")
        ref = m(x)
    torch.testing.assert_close(y.flatten(1), ref, rtol=1e-4, atol=1e-5)


def test_summary_reports_where_layers_run():
    q = quantize(_model("mobilenet_v3_small", "se"), _calib(1), progress=False)
    text = q.summary()
    assert "qdwconv2d" in text and "qconv1x1" in text and "Hardswish as uint8 LUT" in text
    assert "SqueezeExcitation x * gate" in text and "residual add" in text
    assert "float fallback" not in text.splitlines()[1:-1]  # V3 with SE: int8 end to end
    last = text.splitlines()[-1]
    assert "layers int8 on mobilekernels kernels" in last and last.endswith("0 float fallbacks (dequantize -> float -> quantize)")
    for attention in ("eca", "cbam"):  # int8 too (tests/quant/test_attention_int8.py)
        q = quantize(_model("mobilenet_v2", attention), _calib(1), progress=False)
        assert attention.upper() in q.summary() and "float fallback" not in q.summary().splitlines()[1:-1]


def test_percentile_observer_and_model():
    m = _model("mobilenet_v2", None)
    q = quantize(m, _calib(), observer="percentile", percentile=99.9, progress=False)
    x = torch.randn(2, 3, 32, 32)
    step = float(q.steps[-1].out_scale)
    assert ((q(x) - q.reference(x)).abs() / step).max() <= 4.0 + 1e-3
    obs = PercentileObserver(99.0)
    v = torch.cat([torch.zeros(10000), torch.tensor([1000.0])])
    obs.update(v)
    assert obs.range()[1] < 1.0  # the outlier is clipped
    mm = MinMaxObserver()
    mm.update(v)
    assert mm.range() == (0.0, 1000.0)


def test_weight_quantization_per_channel():
    w = torch.randn(8, 4, 3, 3)
    w[3] = 0
    q, s = quantize_weight_per_channel(w)
    assert q.dtype == torch.int8 and s.shape == (8,)
    assert int(q.abs().max()) == 127 and bool((q[3] == 0).all()) and float(s[3]) == 1.0
    err = (q.float() * s.reshape(-1, 1, 1, 1) - w).abs().amax((1, 2, 3))
    assert bool((err <= s / 2 + 1e-6).all())


def test_empty_calibration_raises():
    with pytest.raises(ValueError, match="calibration_data is empty"):
        quantize(_model("mobilenet_v2", None), [], progress=False)
    with pytest.raises(ValueError, match="calibration_data is empty"):
        quantize(_model("mobilenet_v2", None), iter(()), progress=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="observer"):
        quantize(_model("mobilenet_v2", None), _calib(1), observer="kl", progress=False)
    with pytest.raises(TypeError, match="calibration batches"):
        quantize(_model("mobilenet_v2", None), [torch.randn(3, 32, 32)], progress=False)
    with pytest.raises(ValueError, match="features"):
        quantize(nn.Module(), _calib(1), progress=False)


def test_progress_bar_and_tuples(capsys):
    data = [(x, torch.zeros(4)) for x in _calib(2)]
    q = quantize(_model("mobilenet_v2", None), data, progress=True)
    assert isinstance(q, QuantizedModel)
    assert mk.quantize is quantize and mk.QuantizedModel is QuantizedModel


def test_state_dict_and_pickle_roundtrip():
    m = _model("mobilenet_v3_small", "se")
    q = quantize(m, _calib(), progress=False)
    x = torch.randn(2, 3, 32, 32)
    y = q(x)
    # another calibration gives other scales; loading the state_dict restores ours exactly
    other = quantize(m, _calib(1, seed=7), progress=False)
    assert not torch.equal(other(x), y)
    buf = io.BytesIO()
    torch.save(q.state_dict(), buf)
    buf.seek(0)
    other.load_state_dict(torch.load(buf))
    torch.testing.assert_close(other(x), y, rtol=0, atol=0)
    buf = io.BytesIO()
    torch.save(q, buf)
    buf.seek(0)
    q2 = torch.load(buf, weights_only=False)
    torch.testing.assert_close(q2(x), y, rtol=0, atol=0)


def test_sequential_model_with_fallbacks():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 1, groups=2),
                      nn.Hardswish(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(8, 5)).eval()
    q = quantize(m, _calib(2), progress=False)
    x = torch.randn(2, 3, 32, 32)
    y = q(x)
    assert y.shape == (2, 5)
    assert ((y - q.reference(x)).abs() / float(q.steps[-1].out_scale)).max() <= 4.0 + 1e-3
    assert any(isinstance(s, QFloat) for s in q.steps)  # MaxPool2d
    assert "grouped conv groups=2: float" in q.summary()
