"""The op as torch sees it: opcheck, torch.compile, torch.export, autograd."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mobilekernels as mk
from mobilekernels.nn import DepthwiseConv2d


def _samples():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 7, 9)
    w = torch.randn(8, 1, 3, 3)
    b = torch.randn(8)
    return x, w, b


@pytest.mark.parametrize("act", ["none", "relu6", "hardswish"])
def test_opcheck_dwconv2d(act):
    x, w, b = _samples()
    torch.library.opcheck(torch.ops.mobilekernels.dwconv2d, (x, w, b, [1, 1], [1, 1, 1, 1], [1, 1], act))
    xr, wr, br = x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()
    torch.library.opcheck(torch.ops.mobilekernels.dwconv2d, (xr, wr, br, [2, 1], [1, 0, 2, 1], [1, 2], act))


def test_opcheck_packed():
    x, w, b = _samples()
    torch.library.opcheck(torch.ops.mobilekernels.dwconv2d_pack, (w, b))
    packed = torch.ops.mobilekernels.dwconv2d_pack(w, b)
    torch.library.opcheck(torch.ops.mobilekernels.dwconv2d_packed,
                          (x, packed, 8, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], "relu"))


@pytest.mark.parametrize("act", ["none", "relu", "relu6", "hardswish"])
def test_gradients_match_pytorch(act):
    torch.manual_seed(3)
    x = torch.randn(2, 6, 9, 8, requires_grad=True)
    w = torch.randn(6, 1, 3, 3, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    y = mk.ops.dwconv2d(x, w, b, (2, 1), (1, 2, 1, 0), 1, act)
    g = torch.randn_like(y)
    gx, gw, gb = torch.autograd.grad(y, (x, w, b), g)
    x2, w2, b2 = (t.detach().clone().requires_grad_() for t in (x, w, b))
    z = F.conv2d(F.pad(x2, (1, 0, 1, 2)), w2, b2, (2, 1), 0, 1, 6)
    z = {"none": z, "relu": F.relu(z), "relu6": F.relu6(z), "hardswish": F.hardswish(z)}[act]
    rx, rw, rb = torch.autograd.grad(z, (x2, w2, b2), g)
    for a, r in ((gx, rx), (gw, rw), (gb, rb)):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4)


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = DepthwiseConv2d(8, 8, 3, padding=1, activation="relu6")
        self.pw = torch.nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.pw(mk.ops.dwconv2d(self.dw(x), torch.ones(8, 1, 3, 3) / 9, None, 2, 1))


def test_torch_compile_fullgraph():
    net = _Net().eval()
    x = torch.randn(1, 8, 10, 10)
    with torch.no_grad():
        eager = net(x)
        compiled = torch.compile(net, fullgraph=True, backend="aot_eager")(x)
    torch.testing.assert_close(compiled, eager)


def test_torch_export():
    net = _Net().eval()
    x = torch.randn(1, 8, 10, 10)
    ep = torch.export.export(net, (x,))
    assert any("mobilekernels.dwconv2d" in str(n.target) for n in ep.graph.nodes)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), net(x))
