"""fp32 small-Cin dense conv (``conv2d_stem``) against F.conv2d in float64 with every fp32 ISA
path forced, at 1 and 2 threads, over input layouts (NCHW, channels_last, a strided slice),
kernel sizes, strides, paddings, dilations and activations; its errors; the op as torch sees it
(opcheck, autograd, torch.compile, torch.export).

Tolerance: |ours - ref| <= 1e-5 * M (x2.5 for hardswish), M = conv(|x|, |w|) + |b| in float64.
"""
from __future__ import annotations

import itertools
import random

import pytest
import torch
import torch.nn.functional as F

import mobilekernels as mk
from mobilekernels._checks import conv_padding

ACTS = ["none", "relu", "relu6", "hardswish"]
_ACT_FN = {"none": lambda z: z, "relu": F.relu, "relu6": lambda z: z.clamp(0, 6), "hardswish": F.hardswish}


def reference(x, w, b, stride, pads, dilation, act):
    """float64 conv with (top, bottom, left, right) padding, and the magnitude bound."""
    xd = F.pad(x.double(), (pads[2], pads[3], pads[0], pads[1]))
    wd = w.double()
    ref = _ACT_FN[act](F.conv2d(xd, wd, b.double() if b is not None else None, stride, 0, dilation))
    mag = F.conv2d(xd.abs(), wd.abs(), b.double().abs() if b is not None else None, stride, 0, dilation)
    return ref, mag


def check(x, w, b, stride, padding, dilation, act):
    s, d = (stride, stride) if isinstance(stride, int) else stride, (dilation, dilation) if isinstance(dilation, int) else dilation
    pads = conv_padding(padding, w.shape[2:], s, d)
    y = mk.ops.conv2d_stem(x, w, b, stride, padding, dilation, act)
    ref, mag = reference(x, w, b, s, pads, d, act)
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert y.is_contiguous(memory_format=torch.channels_last)
    err = (y.double() - ref).abs()
    bad = err > 1e-5 * (mag + 1e-30) * (2.5 if act == "hardswish" else 1.0)
    assert not bad.any(), f"max err {err.max().item():.3g} at {bad.nonzero()[0].tolist()} of {tuple(y.shape)}"


def layouts(x):
    """NCHW contiguous, channels_last, and a non-contiguous slice of a wider tensor."""
    n, c, h, w = x.shape
    wide = torch.randn(n + 1, c + 2, h + 1, w * 2 + 1)
    sl = wide[1:, 1:c + 1, 1:, ::2][:, :, :h, :w]
    sl.copy_(x)
    return {"nchw": x, "cl": x.contiguous(memory_format=torch.channels_last), "slice": sl}


def _cases(seed: int, count: int):
    """Random but fixed (Cin, Cout, H, W, kernel, stride, padding, dilation) combinations whose
    dilated kernel fits the padded input."""
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        cin = rng.choice([1, 2, 3, 4, 3, 3, 5, 8])
        cout = rng.choice([1, 7, 16, 17, 32, 33])
        h, w = rng.randint(1, 33), rng.randint(1, 33)
        k = rng.choice([(3, 3), (3, 3), (1, 1), (2, 3), (5, 5), (7, 7)])
        s = rng.choice([1, 2, 2, 3])
        d = rng.choice([1, 1, 2])
        p = rng.choice([0, 1, 2, "same"]) if s == 1 else rng.choice([0, 1, 2])
        try:
            pads = conv_padding(p, k, (s, s), (d, d))
        except ValueError:
            continue
        if h + pads[0] + pads[1] < d * (k[0] - 1) + 1 or w + pads[2] + pads[3] < d * (k[1] - 1) + 1:
            continue
        out.append((cin, cout, h, w, k, s, p, d))
    return out


CASES = _cases(0, 40)


@pytest.mark.parametrize("threads", [1, 2])
def test_random_shapes_match_conv2d_fp64(f32_isa, threads):
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(1)
        for i, (cin, cout, h, w, k, s, p, d) in enumerate(CASES):
            n = 3 if i % 4 == 0 else 1
            x = torch.randn(n, cin, h, w)
            wt = torch.randn(cout, cin, *k)
            b = torch.randn(cout) if i % 3 else None
            for j, (name, xl) in enumerate(layouts(x).items()):
                act = ACTS[(i + j) % 4]
                try:
                    check(xl, wt, b, s, p, d, act)
                except AssertionError as e:
                    raise AssertionError(f"{name} cin{cin} cout{cout} {h}x{w} k{k} s{s} p{p} d{d} {act}: {e}") from None
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("cout,act", [(32, "relu6"), (16, "hardswish"), (33, "none")])
@pytest.mark.parametrize("threads", [1, 2])
def test_stem_224(f32_isa, cout, act, threads):
    # The MobileNet stems: 3x3 stride 2 padding 1 on 224x224 RGB (and an odd size).
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(2)
        w, b = torch.randn(cout, 3, 3, 3), torch.randn(cout)
        for hw, n in ((224, 1), (225, 3)):
            for xl in layouts(torch.randn(n, 3, hw, hw)).values():
                check(xl, w, b, 2, 1, 1, act)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("cin", [1, 2, 3, 4])
@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (3, 2, 1), (1, "same", 2), (2, 0, 2)])
def test_small_cin_grid(f32_isa, cin, stride, padding, dilation):
    torch.manual_seed(3)
    for (h, w), cout in itertools.product([(1, 1), (2, 5), (8, 9), (13, 16), (33, 31)], [1, 17, 32]):
        ext = dilation * 2 + 1
        pads = conv_padding(padding, (3, 3), (stride, stride), (dilation, dilation))
        if h + pads[0] + pads[1] < ext or w + pads[2] + pads[3] < ext:
            continue
        check(torch.randn(1, cin, h, w), torch.randn(cout, cin, 3, 3), torch.randn(cout), stride, padding, dilation,
              ACTS[(h + cout) % 4])


def test_packed_matches_unpacked():
    torch.manual_seed(4)
    x, w, b = torch.randn(2, 3, 19, 20), torch.randn(17, 3, 3, 3), torch.randn(17)
    packed = mk.ops.conv2d_stem_pack(w, b)
    y = mk.ops.conv2d_stem(x, w, b, 2, 1, 1, "relu")
    assert torch.equal(mk.ops.conv2d_stem_packed(x, packed, 17, 3, 2, 1, 1, "relu"), y)


def test_empty_batch():
    y = mk.ops.conv2d_stem(torch.randn(0, 3, 8, 8), torch.randn(16, 3, 3, 3), None, 2, 1)
    assert y.shape == (0, 16, 4, 4)


@pytest.mark.parametrize("args,exc,match", [
    ((torch.randn(1, 3, 8, 8).double(), torch.randn(4, 3, 3, 3)), TypeError, "x must be torch.float32"),
    ((torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3).half()), TypeError, "weight must be torch.float32"),
    ((torch.randn(3, 8, 8), torch.randn(4, 3, 3, 3)), ValueError, "x must be 4-D"),
    ((torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3)), ValueError, "weight must be 4-D"),
    ((torch.randn(1, 2, 8, 8), torch.randn(4, 3, 3, 3)), ValueError, "x has 2 channels"),
    ((torch.randn(1, 3, 2, 2), torch.randn(4, 3, 5, 5)), ValueError, "larger than the padded input"),
    ((torch.randn(1, 3, 0, 8), torch.randn(4, 3, 3, 3)), ValueError, "zero-size"),
    ((torch.randn(1, 3, 8, 8), torch.randn(0, 3, 3, 3)), ValueError, "every size > 0"),
])
def test_bad_input(args, exc, match):
    with pytest.raises(exc, match=match):
        mk.ops.conv2d_stem(*args)


def test_bad_bias_activation_padding_pack():
    x, w = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match="bias has 5 elements"):
        mk.ops.conv2d_stem(x, w, torch.randn(5))
    with pytest.raises(ValueError, match="activation must be one of"):
        mk.ops.conv2d_stem(x, w, None, activation="gelu")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        mk.ops.conv2d_stem(x, w, None, 2, "same")
    with pytest.raises(ValueError, match="larger than the dilated kernel extent"):
        mk.ops.conv2d_stem(x, w, None, 1, 3)
    packed = mk.ops.conv2d_stem_pack(w)
    with pytest.raises(ValueError, match="packed for 3 -> 4 channels"):
        mk.ops.conv2d_stem_packed(x, packed, 5, 3)
    with pytest.raises(ValueError, match="not a mobilekernels stem conv pack"):
        mk.ops.conv2d_stem_packed(x, torch.zeros_like(packed), 4, 3)
    with pytest.raises(ValueError, match="packed for 3 -> 4 channels, kernel 3x3"):
        mk.ops.conv2d_stem_packed(x, packed, 4, 5, padding=2)


def test_bad_device_meta():
    with pytest.raises(ValueError, match="must be on the CPU"):
        mk.ops.conv2d_stem(torch.randn(1, 3, 8, 8, device="meta"), torch.randn(4, 3, 3, 3))


# ---------------------------------------------------------------------------------------------
# the op as torch sees it


@pytest.mark.parametrize("act", ["none", "relu6", "hardswish"])
def test_opcheck(act):
    torch.manual_seed(5)
    x, w, b = torch.randn(2, 3, 9, 8), torch.randn(5, 3, 3, 3), torch.randn(5)
    torch.library.opcheck(torch.ops.mobilekernels.conv2d_stem, (x, w, b, [2, 2], [1, 1, 1, 1], [1, 1], act))
    xr, wr, br = x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()
    torch.library.opcheck(torch.ops.mobilekernels.conv2d_stem, (xr, wr, br, [2, 1], [1, 0, 2, 1], [1, 2], act))
    torch.library.opcheck(torch.ops.mobilekernels.conv2d_stem_pack, (w, b))
    packed = torch.ops.mobilekernels.conv2d_stem_pack(w, b)
    torch.library.opcheck(torch.ops.mobilekernels.conv2d_stem_packed,
                          (x, packed, 5, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], act))


@pytest.mark.parametrize("act", ACTS)
def test_gradients_match_pytorch(act):
    torch.manual_seed(6)
    x = torch.randn(2, 3, 9, 8, requires_grad=True)
    w = torch.randn(6, 3, 3, 3, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    y = mk.ops.conv2d_stem(x, w, b, (2, 1), (1, 2, 1, 0), 1, act)
    g = torch.randn_like(y)
    gx, gw, gb = torch.autograd.grad(y, (x, w, b), g)
    x2, w2, b2 = (t.detach().clone().requires_grad_() for t in (x, w, b))
    z = F.conv2d(F.pad(x2, (1, 0, 1, 2)), w2, b2, (2, 1))
    rx, rw, rb = torch.autograd.grad(_ACT_FN[act](z), (x2, w2, b2), g)
    for a, r in ((gx, rx), (gw, rw), (gb, rb)):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4)


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = mk.nn.StemConv2d(3, 8, 3, 2, 1, activation="relu6")
        self.pw = torch.nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.pw(mk.ops.conv2d_stem(self.stem(x), torch.ones(8, 8, 3, 3) / 72, None, 1, 1))


def test_torch_compile_fullgraph():
    net = _Net().eval()
    x = torch.randn(1, 3, 17, 16)
    with torch.no_grad():
        eager = net(x)
        compiled = torch.compile(net, fullgraph=True, backend="aot_eager")(x)
    torch.testing.assert_close(compiled, eager)


def test_torch_export():
    net = _Net().eval()
    x = torch.randn(1, 3, 17, 16)
    ep = torch.export.export(net, (x,))
    assert any("mobilekernels.conv2d_stem" in str(n.target) for n in ep.graph.nodes)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), net(x))
