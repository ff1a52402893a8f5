"""mk.quantize runs qualifying inverted-residual / depthwise-separable blocks as one fused
qinverted_residual call: same int8 codes as the layers one by one (fuse_blocks=False), shown in
summary(), rebuilt after load_state_dict; Hardswish (a lookup table after the requantization)
runs inside the fused block; blocks with attention stay unfused."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import mobilekernels as mk
from mobilekernels.models import get_model
from mobilekernels.quant.modules import QBlock


def _model(name, attention=None, seed=0):
    torch.manual_seed(seed)
    m = get_model(name, num_classes=10, width_mult=0.35, attention=attention)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


def _calib(seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, 32, 32, generator=g) for _ in range(2)]


def _blocks(q):
    return [m for m in q.modules() if isinstance(m, QBlock)]


@pytest.mark.parametrize("name,attention,fused_blocks", [
    ("mobilenet_v2", None, 17), ("mobilenet_v1", None, 13), ("mobilenet_v3_large", None, 15),
    ("mobilenet_v3_small", None, 11), ("mobilenet_v3_large", "se", 7), ("mobilenet_v3_small", "se", 2)])
def test_fused_equals_unfused(name, attention, fused_blocks):
    m, calib = _model(name, attention), _calib()
    q = mk.quantize(m, calib, progress=False)
    q_ref = mk.quantize(m, calib, progress=False, fuse_blocks=False)
    assert sum(b.is_fused() for b in _blocks(q)) == fused_blocks
    assert not any(b.is_fused() for b in _blocks(q_ref))
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert torch.equal(q(x), q_ref(x))
    threads = torch.get_num_threads()
    # Block by block on the integer codes too (the logits could hide a difference).
    for b in _blocks(q):
        if b.is_fused():
            s, z = float(b.steps[0].in_scale), int(b.steps[0].in_zp)
            for n, h, w in ((2, 9, 7), (1, 1, 1), (3, 17, 4)):
                codes = torch.randint(0, 256, (n, b.steps[0].in_channels, h, w), dtype=torch.uint8)
                for nt in (1, 2):
                    torch.set_num_threads(nt)
                    try:
                        got, want = b.forward_int(codes, s, z), b._unfused_int(codes, s, z)
                    finally:
                        torch.set_num_threads(threads)
                    assert torch.equal(got[0], want[0]) and got[1:] == want[1:]
    text = q.summary()
    assert f"({fused_blocks} inverted-residual blocks fused into qinverted_residual)" in text.splitlines()[-1]
    assert "fused qinverted_residual: qdwconv2d" in text
    assert "(0 inverted-residual blocks fused" in q_ref.summary()


def test_attention_blocks_stay_unfused_and_state_dict_reload():
    q = mk.quantize(_model("mobilenet_v2", "eca"), _calib(), progress=False)
    assert not any(b.is_fused() for b in _blocks(q))  # ECA sits inside the body
    m, calib = _model("mobilenet_v2"), _calib()
    q = mk.quantize(m, calib, progress=False)
    x = torch.randn(2, 3, 32, 32)
    y = q(x)
    q2 = mk.quantize(_model("mobilenet_v2", seed=5), _calib(seed=7), progress=False)
    assert not torch.equal(q2(x), y)
    q2.load_state_dict(q.state_dict())  # new packs: the fused blocks must be rebuilt from them
    assert torch.equal(q2(x), y)


def test_quantize_and_convert_under_inference_mode():
    # Packs made under inference_mode are inference tensors (no version counter): the fused
    # block's cache key must not read one (it raised on the first forward).
    m, calib = _model("mobilenet_v2"), _calib()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    want = mk.quantize(m, calib, progress=False)(x)
    with torch.inference_mode():
        q = mk.quantize(m, calib, progress=False)
        assert sum(b.is_fused() for b in _blocks(q)) == 17
        assert torch.equal(q(x), want)
        f = mk.convert(m)
        assert torch.allclose(f(x), m(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name,attention", [("mobilenet_v2", None), ("mobilenet_v3_large", None),
                                            ("mobilenet_v1", "cbam"), ("mobilenet_v2", "eca")])
def test_cached_int8_calls_equal_the_registered_ops(name, attention, monkeypatch):
    """QConv steps and fused blocks reuse validated C++ arguments after their first call: the
    results equal the registered ops' path, and a state_dict from another quantized model (new
    packs and qparams) is picked up after the cache was filled."""
    from mobilekernels.nn import QuantizedInvertedResidual
    from mobilekernels.quant.modules import QConv

    m, calib = _model(name, attention), _calib()
    q = mk.quantize(m, calib, progress=False)
    other = mk.quantize(_model(name, attention, seed=5), _calib(seed=6), progress=False)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        first, cached, want_other = q(x), q(x), other(x)
    assert any(c._calls for c in q.modules() if isinstance(c, QConv))
    # the registered ops' path: conv, then the table as its own pass (_run_int8 says it did not apply it)
    monkeypatch.setattr(QConv, "_run_int8",
                        lambda self, x_, s, z, ys, yz, lut=None: (self._run_op(x_, s, z, ys, yz), False))
    monkeypatch.setattr(QuantizedInvertedResidual, "forward_codes", QuantizedInvertedResidual._forward_codes_op)
    with torch.inference_mode():
        via_ops = q(x)
    monkeypatch.undo()
    assert torch.equal(first, cached) and torch.equal(cached, via_ops)
    q.load_state_dict(other.state_dict())
    with torch.inference_mode():
        assert torch.equal(q(x), want_other)


def test_hardswish_blocks_fuse_with_their_tables():
    """V3's Hardswish blocks run fused with the tables of their QConv steps; a changed table
    changes the fused result (the tables are really read), and summary() says so."""
    m, calib = _model("mobilenet_v3_large"), _calib()
    q = mk.quantize(m, calib, progress=False)
    hs = [b for b in _blocks(q) if b.is_fused() and any(st.post is not None for st in b.steps)]
    assert len(hs) == 9
    b = hs[0]
    s, z = float(b.steps[0].in_scale), int(b.steps[0].in_zp)
    codes = torch.randint(0, 256, (1, b.steps[0].in_channels, 8, 8), dtype=torch.uint8)
    before = b.forward_int(codes, s, z)[0]
    lut_step = next(st for st in b.steps if st.post is not None)
    lut_step.lut.copy_(255 - lut_step.lut)  # in place: the cached call must see the new table
    after, want = b.forward_int(codes, s, z)[0], b._unfused_int(codes, s, z)[0]
    assert not torch.equal(before, after) and torch.equal(after, want)
    assert "Hardswish as uint8 LUT" in q.summary() and "fused qinverted_residual: qconv1x1, Hardswish" in q.summary()
