"""nn.StemConv2d: drop-in for nn.Conv2d(groups=1) with few input channels."""
from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mobilekernels as mk
from mobilekernels.nn import StemConv2d

_ACT = {"none": lambda z: z, "relu": F.relu, "relu6": F.relu6, "hardswish": F.hardswish}


@pytest.mark.parametrize("act", sorted(_ACT))
@pytest.mark.parametrize("cfg", [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(5, 3), padding="same"),
                                 dict(kernel_size=3, stride=3, dilation=2, padding=(2, 0))])
def test_matches_torch_conv(f32_isa, act, cfg):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 17, **cfg)
    m = StemConv2d.from_conv(conv, activation=act).eval()
    assert list(m.state_dict()) == list(conv.state_dict())
    for x in (torch.randn(3, 3, 21, 20), torch.randn(1, 3, 16, 15).contiguous(memory_format=torch.channels_last)):
        with torch.no_grad():
            y, ref = m(x), _ACT[act](conv(x))
        assert y.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)


def test_state_dict_loads_and_pack_follows_weight():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
    m = StemConv2d(3, 32, 3, 2, 1, bias=False, activation="relu6").eval()
    m.load_state_dict(conv.state_dict())
    x = torch.randn(1, 3, 30, 30)
    with torch.no_grad():
        torch.testing.assert_close(m(x), F.relu6(conv(x)))
        m.weight.mul_(2)  # the cached pack must be rebuilt
        torch.testing.assert_close(m(x), F.relu6(conv(x) * 2), rtol=1e-5, atol=1e-5)
        m.activation = "none"  # a setting change drops the cached call
        torch.testing.assert_close(m(x), conv(x) * 2, rtol=1e-5, atol=1e-5)


def test_training_gradients_match_torch():
    torch.manual_seed(2)
    conv = nn.Conv2d(3, 8, 3, 2, 1)
    m = StemConv2d.from_conv(conv, activation="hardswish")
    x = torch.randn(2, 3, 11, 12, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    m(x).square().sum().backward()
    F.hardswish(conv(x2)).square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(m.weight.grad, conv.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(m.bias.grad, conv.bias.grad, rtol=1e-4, atol=1e-4)


def test_pickle_round_trip():
    m = StemConv2d(3, 16, 3, 2, 1, activation="relu").eval()
    x = torch.randn(1, 3, 12, 12)
    with torch.no_grad():
        y = m(x)
        buf = io.BytesIO()
        torch.save(m, buf)
        buf.seek(0)
        assert torch.equal(torch.load(buf, weights_only=False)(x), y)


def test_bad_construction_and_input():
    with pytest.raises(ValueError, match="groups 1"):
        StemConv2d(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode='zeros'"):
        StemConv2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="activation must be one of"):
        StemConv2d(3, 4, 3, activation="gelu")
    with pytest.raises(ValueError, match="larger than the dilated kernel"):
        StemConv2d(3, 4, 3, padding=3)
    with pytest.raises(TypeError, match="nn.Conv2d"):
        StemConv2d.from_conv(nn.Linear(3, 4))
    m = StemConv2d(3, 4, 3).eval()
    with torch.no_grad():
        with pytest.raises(ValueError, match="x has 2 channels"):
            m(torch.randn(1, 2, 8, 8))
        with pytest.raises(TypeError, match="float32"):
            m(torch.randn(1, 3, 8, 8).double())
        with pytest.raises(ValueError, match="larger than the padded input"):
            m(torch.randn(1, 3, 2, 8))
        assert m(torch.randn(0, 3, 8, 8)).shape == (0, 4, 6, 6)
