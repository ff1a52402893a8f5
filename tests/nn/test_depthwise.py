"""DepthwiseConv2d: drop-in for nn.Conv2d(C, C*m, k, groups=C)."""
from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mobilekernels as mk
from mobilekernels.nn import DepthwiseConv2d


def test_state_dict_round_trip_with_torch_conv():
    torch.manual_seed(0)
    ref = nn.Conv2d(12, 24, 5, stride=2, padding=2, dilation=1, groups=12)
    ours = DepthwiseConv2d(12, 24, 5, stride=2, padding=2)
    ours.load_state_dict(ref.state_dict())  # same names, same shapes
    assert set(ours.state_dict()) == {"weight", "bias"}
    x = torch.randn(2, 12, 15, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    back = nn.Conv2d(12, 24, 5, stride=2, padding=2, groups=12)
    back.load_state_dict(ours.state_dict())
    assert torch.equal(back.weight, ref.weight)


@pytest.mark.parametrize("padding", [1, "same", (0, 1)])
def test_from_conv(padding):
    torch.manual_seed(1)
    conv = nn.Conv2d(8, 8, 3, padding=padding, groups=8, bias=False)
    m = DepthwiseConv2d.from_conv(conv, activation="relu6")
    x = torch.randn(1, 8, 9, 7)
    with torch.no_grad():
        torch.testing.assert_close(m(x), F.relu6(conv(x)), rtol=1e-5, atol=1e-5)
    assert m.bias is None and "activation=relu6" in repr(m)


def test_from_conv_rejects_non_depthwise():
    with pytest.raises(ValueError, match="depthwise"):
        DepthwiseConv2d.from_conv(nn.Conv2d(8, 8, 3, groups=2))
    with pytest.raises(ValueError, match="padding_mode"):
        DepthwiseConv2d(4, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="groups == in_channels"):
        DepthwiseConv2d(4, 4, 3, groups=2)


def test_pack_is_reused_and_refreshed_when_weight_changes():
    torch.manual_seed(2)
    m = DepthwiseConv2d(16, 16, 3, padding=1).eval()
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        y1 = m(x)
        packed = m._packed
        m(x)
        assert m._packed is packed  # reused
        m.weight.mul_(2.0)  # in-place update bumps the version
        y2 = m(x)
        assert m._packed is not packed
        m.bias.zero_()
        y3 = m(x)
    ref = F.conv2d(x, m.weight, None, 1, 1, 1, 16)
    torch.testing.assert_close(y3, ref, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(y1, y2)


def test_training_step_updates_and_matches_torch():
    torch.manual_seed(3)
    ours = DepthwiseConv2d(6, 6, 3, padding=1, activation="relu")
    ref = nn.Conv2d(6, 6, 3, padding=1, groups=6)
    ref.load_state_dict(ours.state_dict())
    opt_a = torch.optim.SGD(ours.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(ref.parameters(), lr=0.1)
    x = torch.randn(4, 6, 10, 10)
    for _ in range(3):
        for m, opt, f in ((ours, opt_a, lambda y: y), (ref, opt_b, F.relu)):
            opt.zero_grad()
            f(m(x)).square().mean().backward()
            opt.step()
    torch.testing.assert_close(ours.weight, ref.weight, rtol=1e-4, atol=1e-5)
    with torch.no_grad():  # the pack follows the trained weight
        torch.testing.assert_close(ours(x), F.relu(ref(x)), rtol=1e-4, atol=1e-5)


def test_pickle_whole_module():
    m = DepthwiseConv2d(8, 16, 3, padding=1, activation="hardswish").eval()
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        y = m(x)
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    m2 = torch.load(buf, weights_only=False)
    assert m2._packed is None  # derived, not stored
    with torch.no_grad():
        assert torch.equal(m2(x), y)


def test_module_in_sequential_with_channels_last_flow():
    net = nn.Sequential(DepthwiseConv2d(4, 4, 3, padding=1), DepthwiseConv2d(4, 4, 3, stride=2, padding=1)).eval()
    with torch.no_grad():
        y = net(torch.randn(2, 4, 9, 9))
    assert y.shape == (2, 4, 5, 5) and y.is_contiguous(memory_format=torch.channels_last)
    assert mk.get_isa() in mk._C.supported_isas()


def test_fx_symbolic_trace_records_the_op():
    m = nn.Sequential(DepthwiseConv2d(4, 4, 3, padding=1, activation="relu")).eval()
    gm = torch.fx.symbolic_trace(m)
    assert "mobilekernels.dwconv2d" in gm.code
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), m(x))


def test_module_input_errors():
    m = DepthwiseConv2d(4, 4, 3, padding=1).eval()
    with torch.no_grad():
        with pytest.raises(ValueError, match="x has 5 channels, this layer expects 4"):
            m(torch.randn(1, 5, 6, 6))
        with pytest.raises(TypeError, match="x must be torch.float32"):
            m(torch.randn(1, 4, 6, 6, dtype=torch.float64))
        with pytest.raises(ValueError, match="4-D"):
            m(torch.randn(4, 6, 6))
        with pytest.raises(ValueError, match="zero-size"):
            m(torch.randn(1, 4, 0, 6))
        assert m(torch.randn(0, 4, 6, 6)).shape == (0, 4, 6, 6)
