"""The replayed quantized network (quant/replay.py) against the step-by-step int8 path, bit for bit,
and its uint8 glue functions (ops/q8_codec_op.h) against the torch expressions they replace."""
from __future__ import annotations

import io
import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mobilekernels as mk
from mobilekernels import _C
from mobilekernels.models import get_model
from mobilekernels.quant import quantize
from mobilekernels.quant.modules import QAvgPool, QBlock, QConv, _mul_gate, qadd
from mobilekernels.quant.observers import dequantize_tensor, quantize_tensor


def _ptr(t):
    return t.data_ptr()


# -- glue functions ---------------------------------------------------------------------------

@pytest.mark.parametrize("scale,zp", [(0.02, 128), (0.0123, 0), (0.5, 255), (1e-3, 37), (3.0, 3)])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "sliced"])
def test_quantize_matches_torch(scale, zp, layout):
    g = torch.Generator().manual_seed(int(scale * 1000) + zp)
    x = torch.randn(3, 5, 11, 13, generator=g) * 200 * scale
    flat = x.view(-1)
    flat[:64] = (torch.arange(64) - 32 + 0.5) * scale  # exact ties of x / scale
    flat[64:70] = torch.tensor([1e30, -1e30, 0.0, -0.0, 255.5 * scale, -0.5 * scale])
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "sliced":
        x = torch.randn(3, 7, 11, 26, generator=g)[:, 1:6, :, ::2] * 100 * scale
    ref = quantize_tensor(x.contiguous(memory_format=torch.channels_last), scale, zp)
    out = torch.empty(x.shape, dtype=torch.uint8, memory_format=torch.channels_last)
    _C.q8_quantize_f32(_ptr(x), *x.shape, *x.stride(), scale, zp, _ptr(out))
    assert torch.equal(out, ref)


@pytest.mark.parametrize("scale,zp", [(0.02, 128), (0.0123, 0), (0.7, 255)])
def test_dequantize_matches_torch(scale, zp):
    q = torch.arange(256, dtype=torch.uint8).repeat(3)
    out = torch.empty(q.shape)
    _C.q8_dequantize_f32(_ptr(q), q.numel(), scale, zp, _ptr(out))
    assert torch.equal(out, dequantize_tensor(q, scale, zp))


@pytest.mark.parametrize("n,c,h,w", [(1, 1280, 7, 7), (3, 17, 5, 3), (2, 8, 1, 1), (1, 33, 28, 28)])
def test_global_avgpool_matches_step(n, c, h, w):
    g = torch.Generator().manual_seed(c)
    q = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g).contiguous(
        memory_format=torch.channels_last)
    q[0, 0] = 7  # a constant channel: exact multiples and ties of the requantization
    step = QAvgPool("pool")
    step.out_scale.fill_(0.0173)
    step.out_zp.fill_(11)
    for s, z in [(0.02, 128), (0.0173, 11), (0.5, 0)]:
        ref, ys, yz = step.forward_int(q, s, z)
        out = torch.empty(n, c, dtype=torch.uint8)
        _C.q8_global_avgpool(_ptr(q), n, h * w, c, s, z, ys, yz, _ptr(out))
        assert torch.equal(out, ref.reshape(n, c))


@pytest.mark.parametrize("sa,za,sb,zb,so,zo", [(0.02, 128, 0.03, 100, 0.04, 120), (0.1, 0, 0.013, 255, 0.05, 7),
                                               (0.5, 3, 0.5, 3, 0.25, 0)])
def test_add_matches_qadd(sa, za, sb, zb, so, zo):
    g = torch.Generator().manual_seed(za + zb)
    a = torch.randint(0, 256, (2, 19, 5, 7), dtype=torch.uint8, generator=g).contiguous(memory_format=torch.channels_last)
    b = torch.randint(0, 256, (2, 19, 5, 7), dtype=torch.uint8, generator=g).contiguous(memory_format=torch.channels_last)
    ref = qadd(a, sa, za, b, sb, zb, so, zo)
    out = torch.empty_like(a)
    _C.q8_add(_ptr(a), sa, za, _ptr(b), sb, zb, so, zo, _ptr(out), a.numel(), False, False, False)
    assert torch.equal(out, ref)
    _C.q8_add(_ptr(a), sa, za, _ptr(b), sb, zb, so, zo, _ptr(b), a.numel(), False, False, False)  # in place on b
    assert torch.equal(b, ref)


@pytest.mark.parametrize("n,c,h,w", [(1, 40, 28, 28), (3, 17, 3, 5), (2, 4100, 2, 1)])
def test_channel_gate_matches_mul_gate(n, c, h, w):
    g = torch.Generator().manual_seed(c)
    x = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g).contiguous(memory_format=torch.channels_last)
    gate = torch.randint(0, 256, (n, c, 1, 1), dtype=torch.uint8, generator=g).contiguous(
        memory_format=torch.channels_last)
    for s, z, gs, gz, ys, yz in [(0.02, 128, 1 / 255, 0, 0.03, 110), (0.1, 3, 0.004, 17, 0.07, 0)]:
        ref = _mul_gate(x, s, z, gate, gs, gz, ys, yz)
        out = torch.empty_like(x)
        _C.q8_mul_channel_gate(_ptr(x), n, h * w, c, s, z, _ptr(gate), gs, gz, ys, yz, _ptr(out))
        assert torch.equal(out, ref)


@pytest.mark.parametrize("shape,k,stride,pads,dil", [
    ((1, 3, 16, 16), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    ((2, 5, 9, 7), (3, 2), (1, 2), (0, 2, 1, 0), (1, 1)),
    ((1, 4, 11, 10), (3, 3), (2, 1), (2, 2, 2, 2), (2, 2)),
    ((3, 1, 1, 1), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
])
def test_im2col_matches_step(shape, k, stride, pads, dil):
    g = torch.Generator().manual_seed(sum(shape))
    q = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g).contiguous(memory_format=torch.channels_last)
    t, b, l, r = pads
    conv = QConv("c", "Conv2d", torch.randn(6, shape[1], *k), None, stride, (0, 0), dil)
    conv.pads = pads
    ref = conv._im2col(q, 93).contiguous(memory_format=torch.channels_last)
    n, c, h, w = shape
    oh, ow = _C.q8_im2col_out_size(h, k[0], stride[0], dil[0], t, b), _C.q8_im2col_out_size(w, k[1], stride[1],
                                                                                            dil[1], l, r)
    assert ref.shape == (n, c * k[0] * k[1], oh, ow)
    out = torch.empty(ref.shape, dtype=torch.uint8, memory_format=torch.channels_last)
    _C.q8_im2col(_ptr(q), n, h, w, c, *k, *stride, *dil, t, b, l, r, 93, _ptr(out))
    assert torch.equal(out, ref)


def test_im2col_bad_geometry_raises():
    with pytest.raises(ValueError, match="larger than the padded input"):
        _C.q8_im2col_out_size(2, 5, 1, 1, 0, 1)
    with pytest.raises(ValueError, match="positive"):
        _C.q8_im2col_out_size(4, 3, 0, 1, 0, 0)


# -- whole networks ---------------------------------------------------------------------------

def _model(name, attention=None, width=0.35, classes=10):
    torch.manual_seed(0)
    m = get_model(name, num_classes=classes, width_mult=width, attention=attention)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


def _quantized(name, attention=None, size=32):
    g = torch.Generator().manual_seed(1)
    return quantize(_model(name, attention), [torch.randn(4, 3, size, size, generator=g) for _ in range(2)],
                    progress=False)


def _stepwise(q, x):
    q.replay = False
    try:
        return q(x)
    finally:
        q.replay = True


def _plan(q):
    return q.__dict__.get("_replay_plan")


CASES = [("mobilenet_v1", None), ("mobilenet_v2", None), ("mobilenet_v2", "eca"), ("mobilenet_v2", "cbam"),
         ("mobilenet_v3_small", "se"), ("mobilenet_v3_large", None)]


@pytest.mark.parametrize("name,attention", CASES)
@pytest.mark.parametrize("batch,threads", [(1, 1), (3, 2)])
def test_replay_equals_stepwise(name, attention, batch, threads, isa):
    q = _quantized(name, attention)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(batch, 3, 32, 32, generator=g) * 1.5
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ref = _stepwise(q, x)
        first = q(x)   # validated step-by-step run that builds the plan
        plan = _plan(q)
        assert plan is not None and plan.calls > 0
        again = q(x)   # the replay
        assert _plan(q) is plan
        x2 = torch.randn(batch, 3, 32, 32, generator=g)
        assert torch.equal(q(x2), _stepwise(q, x2))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(first, ref) and torch.equal(again, ref)


@pytest.mark.parametrize("name,attention", [("mobilenet_v3_small", "se"), ("mobilenet_v2", "eca"),
                                            ("mobilenet_v3_large", None)])
@pytest.mark.parametrize("fuse", [True, False])
def test_attention_and_unfused_blocks_replay_in_cpp(name, attention, fuse):
    """SE / ECA gates and unfused residual blocks (int8 add) are C++ calls too."""
    g = torch.Generator().manual_seed(1)
    q = quantize(_model(name, attention), [torch.randn(4, 3, 32, 32, generator=g)], progress=False,
                 fuse_blocks=fuse)
    x = torch.randn(2, 3, 32, 32)
    ref = _stepwise(q, x)
    q(x)
    assert _plan(q).python_steps == []
    assert torch.equal(q(x), ref)


def test_mobilenet_v2_replays_without_python_steps():
    q = _quantized("mobilenet_v2")
    x = torch.randn(1, 3, 40, 40)
    q(x)
    plan = _plan(q)
    assert plan.python_steps == []
    assert plan.calls == len(q.steps)  # one C++ call per step, flatten needs none, stem im2col one more
    assert torch.equal(q(x), _stepwise(q, x))
    assert f"replayed for input (1, 3, 40, 40): {plan.calls} C++ calls, no Python step" in q.summary()


@pytest.mark.parametrize("make", [lambda x: x.double(), lambda x: x.contiguous(memory_format=torch.channels_last),
                                  lambda x: torch.stack([x, x], -1)[..., 0]], ids=["float64", "channels_last", "strided"])
def test_replay_input_layouts(make):
    q = _quantized("mobilenet_v2")
    x = torch.randn(2, 3, 32, 32)
    ref = _stepwise(q, x)
    q(make(x))
    assert torch.equal(q(make(x)), ref)


def test_plan_rebuilt_on_changes():
    q = _quantized("mobilenet_v3_small", "se")
    x = torch.randn(2, 3, 32, 32)
    q(x)
    p0 = _plan(q)
    assert q(x) is not None and _plan(q) is p0
    # an input shape
    x2 = torch.randn(1, 3, 40, 36)
    assert torch.equal(q(x2), _stepwise(q, x2)) and _plan(q) is not p0
    q(x)
    p1 = _plan(q)
    # a buffer changed in place (an output scale)
    step = next(s for s in q.steps if isinstance(s, QConv))
    step.out_scale.mul_(1.25)
    assert torch.equal(q(x), _stepwise(q, x)) and _plan(q) is not p1
    # a pack replaced by load_state_dict from another calibration
    other = quantize(_model("mobilenet_v3_small", "se"), [torch.rand(4, 3, 32, 32) * 4 - 2], progress=False)
    p2 = _plan(q)
    q.load_state_dict(other.state_dict())
    assert torch.equal(q(x), other(x)) and torch.equal(q(x), _stepwise(q, x)) and _plan(q) is not p2
    # the thread count, a block's fuse flag, the ISA
    p3 = _plan(q)
    old = torch.get_num_threads()
    torch.set_num_threads(1 if old > 1 else 2)
    try:
        assert torch.equal(q(x), _stepwise(q, x)) and _plan(q) is not p3
    finally:
        torch.set_num_threads(old)
    p4 = _plan(q)
    block = next(s for s in q.steps if isinstance(s, QBlock) and s.is_fused())
    block.fuse = False
    assert torch.equal(q(x), _stepwise(q, x)) and _plan(q) is not p4
    block.fuse = True
    p5 = _plan(q)
    with mk.use_isa("scalar"):
        assert torch.equal(q(x), _stepwise(q, x)) and _plan(q) is not p5


def test_replay_off_and_empty_batch():
    q = _quantized("mobilenet_v2")
    q.replay = False
    q(torch.randn(1, 3, 32, 32))
    assert _plan(q) is None
    q.replay = True
    assert q(torch.randn(0, 3, 32, 32)).shape == (0, 10)
    assert _plan(q) is None


def test_pickle_drops_plan():
    q = _quantized("mobilenet_v2")
    x = torch.randn(1, 3, 32, 32)
    y = q(x)
    q(x)
    buf = io.BytesIO()
    torch.save(q, buf)
    buf.seek(0)
    q2 = torch.load(buf, weights_only=False)
    assert _plan(q2) is None
    assert torch.equal(q2(x), y) and torch.equal(q2(x), y)


def test_concurrent_callers():
    q = _quantized("mobilenet_v2")
    xs = [torch.randn(1, 3, 32, 32) for _ in range(4)]
    refs = [_stepwise(q, x) for x in xs]
    q(xs[0])
    errors = []

    def work(i):
        for _ in range(10):
            if not torch.equal(q(xs[i]), refs[i]):
                errors.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_sequential_with_float_fallback_and_luts():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.Hardswish(), nn.Conv2d(8, 8, 3, 1, 1, groups=2),
                      nn.Hardswish(), nn.MaxPool2d(2), nn.Conv2d(8, 12, 1), nn.Sigmoid(), nn.AdaptiveAvgPool2d(1),
                      nn.Flatten(), nn.Linear(12, 5)).eval()
    q = quantize(m, [torch.randn(4, 3, 32, 32) for _ in range(2)], progress=False)
    x = torch.randn(3, 3, 32, 32)
    ref = _stepwise(q, x)
    q(x)
    plan = _plan(q)
    assert plan.python_steps  # the grouped conv and the max pool run in torch between segments
    assert torch.equal(q(x), ref)
    # a network that starts with a float step
    m2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(3, 4, 1), nn.ReLU()).eval()
    q2 = quantize(m2, [torch.randn(2, 3, 8, 8)], progress=False)
    x2 = torch.randn(2, 3, 8, 8)
    ref2 = _stepwise(q2, x2)
    q2(x2)
    assert torch.equal(q2(x2), ref2)
    assert F.mse_loss(ref2, ref2) == 0
