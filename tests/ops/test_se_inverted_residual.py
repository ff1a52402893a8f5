"""Fused fp32 inverted residual with squeeze-excitation against the unfused block in float64
(every fp32 ISA forced, 1 and 2 threads, batch 1 and 3), its errors, and the op as torch sees it
(opcheck, torch.compile, torch.export).

References: mobilekernels' own MobileNetV3 bneck (``models.mobilenet_v3.InvertedResidual`` with
``SqueezeExcitation(..., scale_activation=Hardsigmoid)``, random BN statistics, float64, eval),
fused through ``nn.InvertedResidual.from_torch``; and a float64 evaluation written here from the
raw weights for the functional op. Tolerance: 1e-4 of the output's largest magnitude, as the
plain fused block's tests; a wrong channel of the SE scale moves outputs by ~1e-2.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mobilekernels as mk
from mobilekernels import ops_block
from mobilekernels.models.attention import SqueezeExcitation
from mobilekernels.models.mobilenet_v3 import InvertedResidual as V3Block

ACT = {"none": lambda z: z, "relu": F.relu, "relu6": lambda z: z.clamp(0, 6), "hardswish": F.hardswish}


def v3_block(cin, k, exp, cout, stride, act, seed, csq=None, gate=torch.nn.Hardsigmoid):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    se = SqueezeExcitation(exp, csq or max(8, exp // 4), scale_activation=gate)
    b = V3Block(cin, k, exp, cout, stride, {"relu": torch.nn.ReLU, "hardswish": torch.nn.Hardswish}[act],
                torch.nn.BatchNorm2d, attention=se)
    for m in b.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(c, generator=g) - 0.5)
    with torch.no_grad():  # SE biases that move the gate across its linear range
        se.fc2.bias.copy_(torch.randn(exp, generator=g) * 2)
    return b.eval()


def assert_close_fp64(y, ref):
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert y.is_contiguous(memory_format=torch.channels_last)
    err = (y.double() - ref).abs().max().item()
    scale = max(1.0, ref.abs().max().item())
    assert err <= 1e-4 * scale, f"max err {err:.3g} (scale {scale:.3g})"


def check_block(cin, k, exp, cout, stride, act, n, h, w, seed, threads=(1, 2), band_rows=(0,)):
    blk = v3_block(cin, k, exp, cout, stride, act, seed)
    fused = mk.nn.InvertedResidual.from_torch(blk)
    assert type(fused) is mk.nn.SEInvertedResidual and fused.residual == blk.use_res_connect
    x = torch.randn(n, cin, h, w, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        ref = blk.double()(x.double())
    saved = torch.get_num_threads()
    try:
        for nt in threads:
            torch.set_num_threads(nt)
            for band in band_rows:
                fused.band_rows = band
                with torch.no_grad():
                    assert_close_fp64(fused(x), ref)
    finally:
        torch.set_num_threads(saved)


# (Cin, k, expanded, Cout, stride, act, H at 224 input) of MobileNetV3-Large's 8 SE blocks.
V3L_SE = [(24, 5, 72, 40, 2, "relu", 56), (40, 5, 120, 40, 1, "relu", 28), (80, 3, 480, 112, 1, "hardswish", 14),
          (112, 3, 672, 112, 1, "hardswish", 14), (112, 5, 672, 160, 2, "hardswish", 14),
          (160, 5, 960, 160, 1, "hardswish", 7)]
# MobileNetV3-Small's, incl. its t == 1 first block (16 -> 16, stride 2, no expand conv).
V3S_SE = [(16, 3, 16, 16, 2, "relu", 112), (40, 5, 240, 40, 1, "hardswish", 14), (48, 5, 144, 48, 1, "hardswish", 14),
          (96, 5, 576, 96, 1, "hardswish", 7)]


@pytest.mark.parametrize("blk", V3L_SE + V3S_SE, ids=lambda b: "{}-{}-{}k{}s{}{}_{}".format(*b))
def test_mobilenet_v3_se_blocks_at_224(f32_isa, blk):
    cin, k, exp, cout, s, act, h = blk
    check_block(cin, k, exp, cout, s, act, 1, h, h, seed=exp + cin)


@pytest.mark.parametrize("blk", V3L_SE + V3S_SE, ids=lambda b: "{}-{}-{}k{}s{}{}_{}".format(*b))
def test_mobilenet_v3_se_blocks_small_batch3(f32_isa, blk):
    cin, k, exp, cout, s, act, _ = blk
    check_block(cin, k, exp, cout, s, act, 3, 7, 5 + cin % 5, seed=exp + 2 * cin)


GRID = [  # (Cin, k, exp, Cout, stride, act, N, H, W): odd sizes 1..17, channels off the vector widths
    (3, 3, 3, 3, 1, "relu", 1, 1, 1), (5, 3, 13, 5, 1, "hardswish", 3, 17, 2), (7, 5, 27, 9, 2, "relu", 1, 17, 17),
    (9, 5, 33, 9, 1, "hardswish", 3, 9, 13), (12, 3, 44, 5, 2, "relu", 3, 2, 1), (17, 5, 17, 17, 1, "hardswish", 1, 1, 16),
    (4, 3, 4, 19, 2, "relu", 1, 11, 5), (19, 5, 19, 19, 1, "relu", 3, 5, 9), (8, 5, 24, 24, 2, "hardswish", 1, 15, 3),
    (13, 3, 61, 13, 1, "hardswish", 1, 16, 7),
]


@pytest.mark.parametrize("case", GRID, ids=lambda c: "x".join(map(str, c)))
def test_odd_shapes_threads_and_bands(f32_isa, case):
    cin, k, exp, cout, s, act, n, h, w = case
    check_block(cin, k, exp, cout, s, act, n, h, w, seed=h * 31 + w, band_rows=(0, 1, 2, 100))


def _unfused_fp64(x, ew, eb, dw, db, pw, pb, f1w, f1b, f2w, f2b, stride, pad, acts, act_se, gate, residual):
    d = lambda t: None if t is None else t.double()  # noqa: E731
    y = x.double()
    if ew is not None:
        y = ACT[acts[0]](F.conv2d(y, d(ew), d(eb)))
    y = F.pad(y, (pad[2], pad[3], pad[0], pad[1]))
    y = ACT[acts[1]](F.conv2d(y, d(dw), d(db), stride, 0, 1, dw.shape[0]))
    s = ACT[act_se](F.conv2d(y.mean((2, 3), keepdim=True), d(f1w), d(f1b)))
    s = F.conv2d(s, d(f2w), d(f2b))
    s = (s + 3).clamp(0, 6) / 6 if gate == "hardsigmoid" else torch.sigmoid(s)
    y = ACT[acts[2]](F.conv2d(y * s, d(pw), d(pb)))
    return y + x.double() if residual else y


def _weights(cin, chid, cout, csq, k, g):
    return (torch.randn(chid, cin, 1, 1, generator=g) / cin ** 0.5, torch.randn(chid, generator=g),
            torch.randn(chid, 1, k, k, generator=g) / k, torch.randn(chid, generator=g),
            torch.randn(cout, chid, 1, 1, generator=g) / chid ** 0.5, torch.randn(cout, generator=g),
            torch.randn(csq, chid, 1, 1, generator=g) / chid ** 0.5, torch.randn(csq, generator=g),
            torch.randn(chid, csq, 1, 1, generator=g) * 2 / csq ** 0.5, torch.randn(chid, generator=g))


@pytest.mark.parametrize("k, stride, pad, acts, act_se, gate", [
    (3, 1, [1, 1, 1, 1], ("hardswish", "hardswish", "none"), "relu", "hardsigmoid"),
    (5, 2, [2, 2, 2, 2], ("relu", "relu", "none"), "relu", "hardsigmoid"),
    (5, 1, [2, 2, 2, 2], ("hardswish", "relu", "relu6"), "hardswish", "sigmoid"),
    (3, 2, [0, 2, 1, 0], ("relu6", "none", "hardswish"), "none", "sigmoid"),
    (7, 1, [3, 3, 3, 3], ("none", "relu6", "relu"), "relu6", "hardsigmoid"),
])
def test_functional_op_gates_and_activations(f32_isa, k, stride, pad, acts, act_se, gate):
    g = torch.Generator().manual_seed(k * 10 + stride)
    cin, chid, csq = 8, 24, 9
    cout = 8 if stride == 1 and pad[0] == pad[1] else 11
    x = torch.randn(2, cin, 10, 9, generator=g)
    w = _weights(cin, chid, cout, csq, k, g)
    residual = cin == cout
    y = ops_block.se_inverted_residual(x, *w, stride, pad, acts, act_se, gate, residual)
    assert_close_fp64(y, _unfused_fp64(x, *w, stride, pad, acts, act_se, gate, residual))
    # no expand conv (t == 1)
    w1 = (None, None, w[2][:cin], w[3][:cin], w[4][:, :cin], w[5], w[6][:, :cin], w[7], w[8][:cin], w[9][:cin])
    y1 = ops_block.se_inverted_residual(x, *w1, stride, pad, acts, act_se, gate, residual)
    assert_close_fp64(y1, _unfused_fp64(x, *w1, stride, pad, acts, act_se, gate, residual))


@pytest.mark.parametrize("shape", [(3, 24, 13, 11), (1, 24, 7, 7), (3, 24, 5, 6)])  # row and channel splits
def test_threads_and_chain_agree_bit_for_bit(shape):
    blk = v3_block(24, 5, 72, 24, 1, "hardswish", 5)
    fused = mk.nn.InvertedResidual.from_torch(blk)
    x = torch.randn(*shape)
    saved = torch.get_num_threads()
    outs = []
    try:
        for nt in (1, 2, 3):
            torch.set_num_threads(nt)
            with torch.no_grad():
                y = fused(x)
                p = fused._pack()
                y_op = torch.ops.mobilekernels.se_inverted_residual_packed(
                    x, *p, 72, 24, fused.squeeze_channels, 5, 1, fused.padding, *fused.activations, "relu",
                    "hardsigmoid", True, 0)
            torch.testing.assert_close(y_op, y, rtol=0, atol=0)
            outs.append(y)
    finally:
        torch.set_num_threads(saved)
    # The SE means add per-row channel sums in row order: no thread count changes a bit.
    for y in outs[1:]:
        torch.testing.assert_close(y, outs[0], rtol=0, atol=0)


def test_info():
    info = ops_block.se_inverted_residual_info((1, 40, 28, 28), 40, 120, 40, 32, kernel=5)
    assert info["buffer_bytes"] == 28 * 28 * 120 * 4
    assert "se hardsigmoid" in info["kernel"] and "dwconv" in info["kernel"]


def _args():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 6, 7, 5, generator=g)
    return (x,) + _weights(6, 18, 6, 5, 3, g)


def _se(x, ew, eb, dw, db, pw, pb, f1w, f1b, f2w, f2b, **kw):
    return ops_block.se_inverted_residual(x, ew, eb, dw, db, pw, pb, f1w, f1b, f2w, f2b, **kw)


def _packed(x, ew, eb, dw, db, pw, pb, f1w, f1b, f2w, f2b, swap=False, csq=5, band_rows=0):
    p = ops_block.inverted_residual_pack(ew, eb, dw, db, pw, pb)
    f1, f2 = ops_block.conv1x1_pack(f1w, f1b), ops_block.conv1x1_pack(f2w, f2b)
    if swap:
        f1, f2 = f2, f1
    return torch.ops.mobilekernels.se_inverted_residual_packed(
        x, p.expand, p.dw, p.project, f1, f2, 18, 6, csq, 3, 1, [1, 1, 1, 1], "hardswish", "hardswish", "none",
        "relu", "hardsigmoid", True, band_rows)


_BAD = [
    (lambda a: _se(a[0].double(), *a[1:]), TypeError, "float32"),
    (lambda a: _se(a[0][:, :5], *a[1:]), ValueError, "reads 6"),
    (lambda a: _se(*a[:7], a[7][:, :9], *a[8:]), ValueError, "fc1_weight reads 9"),
    (lambda a: _se(*a[:9], a[9][:4], a[10][:4]), ValueError, "fc2_weight"),
    (lambda a: _se(*a[:9], a[9][:, :4], a[10]), ValueError, "reads 4"),
    (lambda a: _se(*a[:8], a[8][:2], *a[9:]), ValueError, "bias"),
    (lambda a: _se(*a, gate="relu"), ValueError, "gate"),
    (lambda a: _se(*a, se_activation="gelu"), ValueError, "activation"),
    (lambda a: _se(*a, stride=2, residual=True), ValueError, "residual"),
    (lambda a: _se(a[0][:, :, :0], *a[1:]), ValueError, "zero-size"),
    (lambda a: _se(*a, padding=(3, 3, 1, 1)), ValueError, "padding"),
    (lambda a: _packed(*a, swap=True), ValueError, "packed for"),
    (lambda a: _packed(*a, csq=4), ValueError, "packed for"),
    (lambda a: _packed(*a, csq=0), ValueError, "squeeze"),
    (lambda a: _packed(*a, band_rows=-1), ValueError, "band_rows"),
]


@pytest.mark.parametrize("i", range(len(_BAD)))
def test_bad_inputs_raise_clear_errors(i):
    call, exc, match = _BAD[i]
    with pytest.raises(exc, match=match):
        call(_args())


def test_opcheck():
    x, ew, eb, dw, db, pw, pb, f1w, f1b, f2w, f2b = _args()
    torch.library.opcheck(torch.ops.mobilekernels.se_inverted_residual,
                          (x, ew, eb, dw, db, pw, pb, f1w, f1b, f2w, f2b, 1, [1, 1, 1, 1], "relu", "hardswish", "none",
                           "relu", "hardsigmoid", True))
    torch.library.opcheck(torch.ops.mobilekernels.se_inverted_residual,
                          (x, None, None, dw[:6], db[:6], pw[:, :6], pb, f1w[:, :6], f1b, f2w[:6], f2b[:6], 2,
                           [1, 1, 1, 1], "relu", "relu6", "none", "relu", "sigmoid", False))
    p = ops_block.inverted_residual_pack(ew, eb, dw, db, pw, pb)
    torch.library.opcheck(torch.ops.mobilekernels.se_inverted_residual_packed,
                          (x, p.expand, p.dw, p.project, ops_block.conv1x1_pack(f1w, f1b),
                           ops_block.conv1x1_pack(f2w, f2b), 18, 6, 5, 3, 2, [1, 1, 1, 1], "relu6", "relu6", "none",
                           "relu", "hardsigmoid", False, 1))


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.b1 = mk.nn.InvertedResidual.from_torch(v3_block(6, 3, 24, 6, 1, "hardswish", 1))
        self.b2 = mk.nn.InvertedResidual.from_torch(v3_block(6, 5, 18, 10, 2, "relu", 2))

    def forward(self, x):
        return self.b2(self.b1(x))


def test_torch_compile_and_export():
    net = _Net().eval().requires_grad_(False)
    x = _args()[0]
    with torch.no_grad():
        eager = net(x)
        compiled = torch.compile(net, fullgraph=True, backend="aot_eager")(x)
    torch.testing.assert_close(compiled, eager)
    ep = torch.export.export(net, (x,))
    assert sum("mobilekernels.se_inverted_residual" in str(n.target) for n in ep.graph.nodes) == 2
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), eager)
