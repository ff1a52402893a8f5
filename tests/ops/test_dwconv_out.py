"""``out=`` of ops.dwconv2d / ops.dwconv2d_packed: the result lands in the caller's buffer (same
values as a new output, the buffer returned), and every unusable buffer is a clear error before
the kernel runs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mobilekernels as mk


def _case(n=2, c=24, h=9, w=11, s=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    return x, torch.randn(c, 1, 3, 3, generator=g), torch.randn(c, generator=g)


def _empty(shape):
    return torch.full(shape, float("nan")).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("s", [1, 2])
def test_out_gets_the_result(f32_isa, s):
    x, w, b = _case(s=s)
    ref = F.conv2d(x.double(), w.double(), b.double(), s, 1, 1, x.shape[1]).clamp(0, 6)
    with torch.inference_mode():
        expect = mk.ops.dwconv2d(x, w, b, s, 1, activation="relu6")
        out = _empty(expect.shape)
        y = mk.ops.dwconv2d(x, w, b, s, 1, activation="relu6", out=out)
        assert y is out
        assert torch.equal(out, expect)
        torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
        packed = mk.ops.dwconv2d_pack(w, b)
        out2 = _empty(expect.shape)
        assert mk.ops.dwconv2d_packed(x, packed, x.shape[1], 3, s, 1, 1, "relu6", out=out2) is out2
        assert torch.equal(out2, expect)


def test_out_reused_across_calls():
    x, w, b = _case()
    out = _empty((2, 24, 9, 11))
    with torch.no_grad():
        for seed in range(3):
            xs = _case(seed=seed)[0]
            mk.ops.dwconv2d(xs, w, b, 1, 1, out=out)
            assert torch.equal(out, mk.ops.dwconv2d(xs, w, b, 1, 1))


def test_empty_batch_out():
    x, w, b = _case(n=0)
    out = torch.empty((0, 24, 9, 11)).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert mk.ops.dwconv2d(x, w, b, 1, 1, out=out) is out


@pytest.mark.parametrize("make,err,match", [
    (lambda: torch.empty(2, 24, 9, 11), ValueError, "channels_last"),              # NCHW strides
    (lambda: _empty((2, 24, 9, 10)), ValueError, "shape"),
    (lambda: _empty((2, 24, 9, 11)).double(), TypeError, "float32"),
    (lambda: _empty((2, 24, 11, 9)).transpose(2, 3), ValueError, "channels_last"),  # right shape, H/W swapped strides
    (lambda: _empty((2, 48, 9, 11))[:, ::2], ValueError, "channels_last"),         # strided view
    (lambda: [0.0], TypeError, "torch.Tensor"),
])
def test_bad_out(make, err, match):
    x, w, b = _case()
    with torch.no_grad(), pytest.raises(err, match=match):
        mk.ops.dwconv2d(x, w, b, 1, 1, out=make())


def test_out_overlapping_x_is_rejected():
    x, w, b = _case()
    with torch.no_grad():
        with pytest.raises(ValueError, match="overlaps"):
            mk.ops.dwconv2d(x, w, b, 1, 1, out=x)  # same shape at stride 1, padding 1
        big = torch.empty(2 * 24 * 9 * 11 + 24)
        xv = big[:2 * 24 * 9 * 11].view(2, 9, 11, 24).permute(0, 3, 1, 2)
        xv.copy_(x)
        ov = big[24:].view(2, 9, 11, 24).permute(0, 3, 1, 2)  # shifted by one pixel
        with pytest.raises(ValueError, match="overlaps"):
            mk.ops.dwconv2d(xv, w, b, 1, 1, out=ov)


def test_out_with_autograd_is_rejected():
    x, w, b = _case()
    out = _empty((2, 24, 9, 11))
    with pytest.raises(ValueError, match="eager inference"):
        mk.ops.dwconv2d(x.requires_grad_(), w, b, 1, 1, out=out)
    with pytest.raises(ValueError, match="requires grad"):
        mk.ops.dwconv2d(x.detach(), w, b, 1, 1, out=out.requires_grad_())
