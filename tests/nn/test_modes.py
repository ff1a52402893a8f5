"""The modules' eager fast paths step aside for anything that observes ops: under a
TorchDispatchMode (what FlopCounterMode, make_fx and non-strict export build on) or a
TorchFunctionMode, a converted or quantized model's forward records the ``mobilekernels::*``
ops and gives the same result as the fast path."""
from __future__ import annotations

import pytest
import torch

import mobilekernels as mk
from mobilekernels.models import get_model
from mobilekernels.quant import quantize
from recording_modes import RecordFunctions, RecordOps, mk_ops as _ours


def _single_modules():
    torch.manual_seed(0)
    dw = mk.nn.DepthwiseConv2d.from_conv(torch.nn.Conv2d(8, 8, 3, 1, 1, groups=8), activation="relu6")
    pw = mk.nn.PointwiseConv2d.from_conv(torch.nn.Conv2d(8, 12, 1), activation="relu")
    block = get_model("mobilenet_v2", width_mult=0.35, num_classes=10).features[2]
    return {"dw": (dw, 8), "pw": (pw, 8), "block": (mk.nn.InvertedResidual.from_torch(block.eval()), 8)}


@pytest.mark.parametrize("name", ["dw", "pw", "block"])
def test_module_under_dispatch_mode_records_the_op(name):
    m, cin = _single_modules()[name]
    x = torch.randn(2, cin, 9, 7).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = m(x)
        with RecordOps() as rec:
            got = m(x)
    assert _ours(rec.names), rec.names
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_converted_model_under_modes_records_the_ops():
    torch.manual_seed(0)
    model = mk.convert(get_model("mobilenet_v2", width_mult=0.35, num_classes=10).eval())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
        for mode in (RecordOps, RecordFunctions):
            with mode() as rec:
                got = model(x)
            assert _ours(rec.names), (mode.__name__, rec.names[:20])
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_quantized_model_under_dispatch_mode_records_the_ops():
    g = torch.Generator().manual_seed(0)
    model = get_model("mobilenet_v2", width_mult=0.35, num_classes=10).eval()
    q = quantize(model, [torch.randn(4, 3, 32, 32, generator=g)], progress=False)
    x = torch.randn(2, 3, 32, 32, generator=g)
    want = q(x)  # the replay
    with RecordOps() as rec:
        got = q(x)
    names = _ours(rec.names)
    assert any("qinverted_residual" in n for n in names), names
    assert torch.equal(got, want)
