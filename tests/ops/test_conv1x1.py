"""fp32 1x1 conv op against F.conv2d in float64 (every fp32 ISA path forced), its errors, and
the op as torch sees it (opcheck, autograd, torch.compile, torch.export).

Tolerance: |ours - ref| <= 1e-5 * M (x2.5 for hardswish), M = conv(|x|, |w|) + |b| in float64:
a bound on fp32 accumulation whatever the cancellation, which one wrong term breaks.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mobilekernels as mk  # noqa: F401  (registers the ops)
from mobilekernels import ops_block

ACTS = ["none", "relu", "relu6", "hardswish"]
_ACT_FN = {"none": lambda z: z, "relu": F.relu, "relu6": lambda z: z.clamp(0, 6), "hardswish": F.hardswish}


def check(x, w, b, act):
    y = ops_block.conv1x1(x, w, b, act)
    xd, wd = x.double(), w.double()
    ref = _ACT_FN[act](F.conv2d(xd, wd, b.double() if b is not None else None))
    mag = F.conv2d(xd.abs(), wd.abs(), b.double().abs() if b is not None else None)
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert y.is_contiguous(memory_format=torch.channels_last)
    err = (y.double() - ref).abs()
    bound = 1e-5 * (mag + 1e-30) * (2.5 if act == "hardswish" else 1.0)
    bad = err > bound
    assert not bad.any(), f"max err {err.max().item():.3g} at {bad.nonzero()[0].tolist()}"


# (N, Cin, Cout, H, W): odd channel counts across and around every vector/panel width, H*W = 1.
SHAPES = [(1, 1, 1, 1, 1), (1, 3, 67, 1, 1), (3, 67, 5, 2, 3), (2, 16, 16, 5, 5), (1, 17, 33, 7, 1),
          (1, 24, 144, 6, 6), (2, 33, 49, 3, 7), (1, 8, 31, 13, 1), (1, 65, 66, 4, 4), (3, 7, 17, 1, 11)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_conv2d_fp64(f32_isa, shape):
    n, cin, cout, h, w = shape
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(n, cin, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    wt = torch.randn(cout, cin, 1, 1, generator=g)
    b = torch.randn(cout, generator=g)
    for i, act in enumerate(ACTS):
        check(x if i % 2 else x.contiguous(), wt, b if i != 2 else None, act)  # NCHW input copied


def test_packed_equals_raw_and_threads(f32_isa):
    torch.manual_seed(1)
    x, w, b = torch.randn(2, 40, 7, 7), torch.randn(96, 40, 1, 1), torch.randn(96)
    packed = ops_block.conv1x1_pack(w, b)
    y = ops_block.conv1x1(x, w, b, "relu6")
    torch.testing.assert_close(ops_block.conv1x1_packed(x, packed, 96, "relu6"), y, rtol=0, atol=0)
    prev = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1 = ops_block.conv1x1_packed(x, packed, 96, "relu6")
    finally:
        torch.set_num_threads(prev)
    torch.testing.assert_close(y1, y, rtol=0, atol=0)  # same kernel, same sums per element


def test_empty_batch():
    y = ops_block.conv1x1(torch.randn(0, 4, 3, 3), torch.randn(5, 4, 1, 1))
    assert y.shape == (0, 5, 3, 3)


def test_kernel_name_follows_isa(f32_isa):
    assert ops_block.conv1x1_kernel_name().split("/")[0] == f32_isa


@pytest.mark.parametrize("call, exc, match", [
    (lambda: ops_block.conv1x1(torch.randn(1, 4, 3, 3).double(), torch.randn(5, 4, 1, 1)), TypeError, "float32"),
    (lambda: ops_block.conv1x1(torch.randn(4, 3, 3), torch.randn(5, 4, 1, 1)), ValueError, "4-D"),
    (lambda: ops_block.conv1x1(torch.randn(1, 4, 3, 3), torch.randn(5, 3, 1, 1)), ValueError, "4"),
    (lambda: ops_block.conv1x1(torch.randn(1, 4, 3, 3), torch.randn(5, 4, 3, 3)), ValueError, "1, 1"),
    (lambda: ops_block.conv1x1(torch.randn(1, 4, 3, 3), torch.randn(5, 4, 1, 1), torch.randn(4)), ValueError, "bias"),
    (lambda: ops_block.conv1x1(torch.randn(1, 4, 3, 3), torch.randn(5, 4, 1, 1), None, "gelu"), ValueError, "activation"),
    (lambda: ops_block.conv1x1(torch.randn(1, 4, 0, 3), torch.randn(5, 4, 1, 1)), ValueError, "zero-size"),
    (lambda: ops_block.conv1x1(torch.randn(1, 0, 3, 3), torch.randn(5, 0, 1, 1)), ValueError, "zero-size"),
    # a pack of another shape, and a tensor that is no pack: refused by the C++ header check
    (lambda: ops_block.conv1x1_packed(torch.randn(1, 4, 3, 3), ops_block.conv1x1_pack(torch.randn(5, 3, 1, 1)), 5),
     ValueError, "packed for"),
    (lambda: ops_block.conv1x1_packed(torch.randn(1, 4, 3, 3), ops_block.conv1x1_pack(torch.randn(5, 4, 1, 1)), 6),
     ValueError, "packed for"),
    (lambda: ops_block.conv1x1_packed(torch.randn(1, 4, 3, 3), torch.zeros(10000), 5), ValueError, "not a mobilekernels"),
    (lambda: ops_block.conv1x1_packed(torch.randn(1, 4, 3, 3), ops_block.conv1x1_pack(torch.randn(5, 4, 1, 1))[::2], 5),
     ValueError, "contiguous"),
])
def test_bad_inputs_raise_clear_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def _samples():
    torch.manual_seed(0)
    return torch.randn(2, 9, 5, 6), torch.randn(13, 9, 1, 1), torch.randn(13)


def test_opcheck():
    x, w, b = _samples()
    torch.library.opcheck(torch.ops.mobilekernels.conv1x1, (x, w, b, "relu6"))
    torch.library.opcheck(torch.ops.mobilekernels.conv1x1,
                          (x.clone().requires_grad_(), w.clone().requires_grad_(), None, "hardswish"))
    torch.library.opcheck(torch.ops.mobilekernels.conv1x1_pack, (w, b))
    packed = torch.ops.mobilekernels.conv1x1_pack(w, b)
    torch.library.opcheck(torch.ops.mobilekernels.conv1x1_packed, (x, packed, 13, "none"))


@pytest.mark.parametrize("act", ACTS)
def test_gradients_match_pytorch(act):
    x, w, b = (t.requires_grad_() for t in _samples())
    y = ops_block.conv1x1(x, w, b, act)
    g = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, w, b), g)
    x2, w2, b2 = (t.detach().clone().requires_grad_() for t in (x, w, b))
    want = torch.autograd.grad(_ACT_FN[act](F.conv2d(x2, w2, b2)), (x2, w2, b2), g)
    for a, r in zip(got, want):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4)


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pw = mk.nn.PointwiseConv2d(9, 13, activation="relu6")
        self.w2 = torch.nn.Parameter(torch.randn(4, 13, 1, 1))

    def forward(self, x):
        return ops_block.conv1x1(self.pw(x), self.w2, None, "hardswish")


def test_torch_compile_and_export():
    net = _Net().eval()
    x = _samples()[0]
    with torch.no_grad():
        eager = net(x)
        compiled = torch.compile(net, fullgraph=True, backend="aot_eager")(x)
    torch.testing.assert_close(compiled, eager)
    ep = torch.export.export(net, (x,))
    assert any("mobilekernels.conv1x1" in str(n.target) for n in ep.graph.nodes)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), eager)
