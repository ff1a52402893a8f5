"""The eager inference paths of InvertedResidual and PointwiseConv2d (direct _C calls, validated
once per input shape): same bits as the registered ops, settings changes seen, clear errors."""
from __future__ import annotations

import pytest
import torch

import mobilekernels as mk


def _block(**kw):
    torch.manual_seed(5)
    b = mk.nn.InvertedResidual(8, 32, 8, **kw)
    with torch.no_grad():
        for p in b.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return b


def _packed_op(b, x):
    epk, dpk, ppk = b._pack()
    return torch.ops.mobilekernels.inverted_residual_packed(
        x, epk, dpk, ppk, b.hidden_channels, b.out_channels, b.kernel_size, b.stride, b.padding,
        *b.activations, b.residual, b.band_rows)


def test_block_eager_path_equals_the_op(f32_isa):
    b = _block()
    for shape in [(1, 8, 9, 7), (3, 8, 5, 5), (1, 8, 9, 7)]:
        x = torch.randn(shape)
        with torch.no_grad():
            assert torch.equal(b(x), _packed_op(b, x))
    assert set(b._calls) == {(1, 8, 9, 7), (3, 8, 5, 5)}  # validated once per shape


def test_block_eager_path_sees_setting_and_weight_changes():
    b = _block()
    x = torch.randn(1, 8, 9, 7)
    with torch.no_grad():
        y = b(x)
        b.activations = ("relu", "relu", "relu")
        y2 = b(x)
        assert not torch.equal(y2, y) and torch.equal(y2, _packed_op(b, x))
        b.project_bias.add_(1.0)  # in place: repacked
        assert torch.equal(b(x), _packed_op(b, x)) and not torch.equal(b(x), y2)
        b.residual = False
        assert torch.equal(b(x), _packed_op(b, x))


def test_block_grad_on_without_trainable_parameters_uses_the_fused_path():
    b = _block().requires_grad_(False)
    x = torch.randn(1, 8, 6, 6)
    y = b(x)  # grad mode on, nothing requires grad
    assert not y.requires_grad
    with torch.no_grad():
        assert torch.equal(y, _packed_op(b, x))


def test_block_eager_errors():
    b = _block(stride=2)
    with torch.no_grad():
        with pytest.raises(ValueError, match="channels"):
            b(torch.randn(1, 5, 8, 8))
        with pytest.raises(TypeError, match="float32"):
            b(torch.randn(1, 8, 8, 8, dtype=torch.float64))
        with pytest.raises(ValueError, match="4-D"):
            b(torch.randn(8, 8, 8))
        with pytest.raises(ValueError, match="zero-size"):
            b(torch.randn(1, 8, 0, 8))
        assert b(torch.randn(0, 8, 8, 8)).shape == (0, 8, 4, 4)


def test_pointwise_eager_path_equals_the_op(f32_isa):
    torch.manual_seed(6)
    pw = mk.nn.PointwiseConv2d(13, 21, activation="hardswish")
    for shape in [(2, 13, 5, 4), (1, 13, 1, 1)]:
        x = torch.randn(shape)
        with torch.no_grad():
            assert torch.equal(pw(x), torch.ops.mobilekernels.conv1x1_packed(x, pw._pack(), 21, "hardswish"))
    with torch.no_grad():
        x = torch.randn(2, 13, 5, 4)
        pw.activation = "relu"
        assert torch.equal(pw(x), torch.ops.mobilekernels.conv1x1_packed(x, pw._pack(), 21, "relu"))
        with pytest.raises(ValueError, match="channels"):
            pw(torch.randn(1, 12, 3, 3))
        with pytest.raises(TypeError, match="float32"):
            pw(torch.randn(1, 13, 3, 3).half())
        assert pw(torch.randn(0, 13, 3, 3)).shape == (0, 21, 3, 3)
        pw.activation = "gelu"
        with pytest.raises(ValueError, match="activation"):
            pw(x)
