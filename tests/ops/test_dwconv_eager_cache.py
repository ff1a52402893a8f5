"""mk.ops.dwconv2d's eager path caches the validated geometry per (x shape, weight shape,
arguments) and accepts module Parameters as is: results equal the registered op bit for bit
for every layout and weight, bad inputs after a good call still raise, autograd still works."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import mobilekernels as mk


def op(x, w, b, s, p, act):
    return torch.ops.mobilekernels.dwconv2d(x, w, b, [s, s], [p] * 4, [1, 1], act)


def test_eager_equals_the_op_for_layouts_weights_and_parameters(f32_isa):
    torch.manual_seed(0)
    for c, s in ((5, 1), (19, 2), (32, 1)):
        x = torch.randn(3, c, 9, 7)
        views = [x, x.contiguous(memory_format=torch.channels_last), torch.cat([x, x], 3)[..., :7]]
        for i in range(3):  # new weights of the same shape every time: the pack is never stale
            w, b = torch.randn(c, 1, 3, 3), torch.randn(c)
            for wt, bt in ((w, b), (nn.Parameter(w), nn.Parameter(b)), (w, None)):
                with torch.no_grad():
                    for xv in views:
                        assert torch.equal(mk.ops.dwconv2d(xv, wt, bt, s, 1, activation="relu6"),
                                           op(x, w, None if bt is None else b, s, 1, "relu6"))


def test_bad_inputs_after_a_good_call_raise():
    x, w = torch.randn(1, 4, 6, 6), torch.randn(4, 1, 3, 3)
    with torch.no_grad():
        mk.ops.dwconv2d(x, w, padding=1)
        with pytest.raises(TypeError, match="x must be torch.float32"):
            mk.ops.dwconv2d(x.double(), w, padding=1)
        with pytest.raises(ValueError, match="on the CPU"):
            mk.ops.dwconv2d(x.to("meta"), w, padding=1)
        with pytest.raises(TypeError, match="weight must be torch.float32"):
            mk.ops.dwconv2d(x, w.double(), padding=1)
        with pytest.raises(ValueError, match="bias has 3 elements"):
            mk.ops.dwconv2d(x, w, torch.zeros(3), padding=1)
        with pytest.raises(ValueError, match="activation"):
            mk.ops.dwconv2d(x, w, padding=1, activation="gelu")
        with pytest.raises(ValueError, match="not a positive multiple"):
            mk.ops.dwconv2d(x, torch.randn(6, 1, 3, 3), padding=1)


def test_trainable_parameters_take_the_differentiable_op():
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=4)
    x = torch.randn(2, 4, 6, 6)
    mk.ops.dwconv2d(x, conv.weight, conv.bias, padding=1).sum().backward()
    gw = conv.weight.grad.clone()
    conv.weight.grad = None
    conv(x).sum().backward()
    torch.testing.assert_close(gw, conv.weight.grad, rtol=1e-4, atol=1e-4)
