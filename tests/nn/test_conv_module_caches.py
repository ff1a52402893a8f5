"""The eager fast paths of DepthwiseConv2d and PointwiseConv2d cache a validated call per input
shape and a weight pack per (data_ptr, version) of weight and bias: these tests change every
thing those caches could wrongly skip (input strides / memory format, weights, settings,
threads, ISA, bad inputs after a good call, copies) and check each result against float64
F.conv2d."""
from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

import mobilekernels as mk
from mobilekernels.nn import DepthwiseConv2d, PointwiseConv2d

ACT = {"none": lambda y: y, "relu": F.relu, "relu6": lambda y: y.clamp(0, 6), "hardswish": F.hardswish}


def make(kind: str, c: int, activation: str = "relu6", stride: int = 1, bias: bool = True, cout: int | None = None):
    if kind == "dw":
        return DepthwiseConv2d(c, cout or c, 3, stride, 1, activation=activation, bias=bias).eval()
    return PointwiseConv2d(c, cout or c + 3, activation=activation, bias=bias).eval()


def check(m, x, y):
    """y == m's convolution of x in float64 (the project's fp32 bound), channels_last output."""
    w = m.weight.detach().double()
    b = None if m.bias is None else m.bias.detach().double()
    z = F.conv2d(x.double(), w, b, m.stride, m.padding, m.dilation, m.groups)
    ref = ACT[m.activation](z)
    bound = F.conv2d(x.double().abs(), w.abs(), None if b is None else b.abs(), m.stride, m.padding, m.dilation,
                     m.groups)
    assert y.dtype == torch.float32 and y.shape == ref.shape
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert ((y.double() - ref).abs() <= 1e-5 * bound + 1e-6).all(), (y.double() - ref).abs().max()


def layouts(x: torch.Tensor):
    """The same values in different memory layouts: NCHW, channels_last, a non-contiguous view
    (every second column of a wider tensor) and a permuted-back NHWC-with-gaps view."""
    n, c, h, w = x.shape
    wide = torch.zeros(n, c, h, 2 * w)
    wide[..., ::2] = x
    padded = torch.zeros(n, h, w, c + 3)
    padded[..., :c] = x.permute(0, 2, 3, 1)
    return {"nchw": x.contiguous(), "channels_last": x.contiguous(memory_format=torch.channels_last),
            "strided": wide[..., ::2], "nhwc_gaps": padded[..., :c].permute(0, 3, 1, 2)}


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_layouts_shapes_batches_share_one_module(f32_isa, kind):
    torch.manual_seed(0)
    for c, stride in ((5, 1), (19, 2), (16, 1), (33, 2)):
        m = make(kind, c, stride=stride)
        with torch.no_grad():
            for n, h, w in ((1, 7, 9), (3, 5, 4), (1, 7, 9)):  # a shape again: served from the cache
                x = torch.randn(n, c, h, w)
                for name, xv in layouts(x).items():  # same shape, other strides: same cached call
                    assert torch.equal(xv, x), name
                    check(m, x, m(xv))


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_weight_changes_reach_the_pack(kind):
    torch.manual_seed(1)
    m = make(kind, 6)
    x = torch.randn(1, 6, 5, 5)
    with torch.no_grad():
        check(m, x, m(x))
        m.weight.mul_(-2.0)  # in place: version bump
        check(m, x, m(x))
        m.bias.add_(1.0)
        check(m, x, m(x))
        m.weight.data = torch.randn_like(m.weight)  # new storage, same Parameter object
        check(m, x, m(x))
        m.weight = nn.Parameter(torch.randn_like(m.weight))  # swapped Parameter
        check(m, x, m(x))
        m.bias = None  # bias removed
        check(m, x, m(x))
        m.bias = nn.Parameter(torch.randn(m.out_channels))  # and added back
        check(m, x, m(x))
        m.load_state_dict(make(kind, 6).state_dict())
        check(m, x, m(x))


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_inference_mode_weights(kind):
    torch.manual_seed(2)
    x = torch.randn(1, 4, 6, 6)
    with torch.inference_mode():  # parameters without a version counter
        m = make(kind, 4)
        check(m, x, m(x))
        check(m, x, m(x))


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_threads_and_isa_switched_between_calls(kind):
    torch.manual_seed(3)
    m = make(kind, 40)
    x = torch.randn(3, 40, 14, 14)
    old = torch.get_num_threads()
    try:
        with torch.no_grad():
            for nt, isa in ((1, "scalar"), (2, "scalar"), (2, "auto"), (1, "auto"), (2, "scalar")):
                torch.set_num_threads(nt)
                with mk.use_isa(isa):
                    check(m, x, m(x))
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_bad_inputs_after_a_good_call_raise(kind):
    m = make(kind, 4)
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        m(x)  # caches the call for this shape
        with pytest.raises(TypeError, match="x must be torch.float32"):
            m(x.double())
        with pytest.raises(TypeError, match="x must be torch.float32"):
            m(x.half())
        with pytest.raises(ValueError, match="on the CPU"):
            m(torch.empty(1, 4, 6, 6, device="meta"))
        with pytest.raises(ValueError, match="channels"):
            m(torch.randn(1, 5, 6, 6))
        with pytest.raises(ValueError, match="4-D"):
            m(x[0])
        with pytest.raises(ValueError, match="zero-size"):
            m(torch.randn(1, 4, 0, 6))
        with pytest.raises((TypeError, RuntimeError)):
            m(x.numpy())
        check(m, x, m(x))  # the good call still works


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_empty_batch(kind):
    m = make(kind, 4)
    with torch.no_grad():
        y = m(torch.randn(0, 4, 6, 6))
    assert y.shape[0] == 0 and y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_copies_have_their_own_caches(kind):
    torch.manual_seed(4)
    m = make(kind, 8, activation="hardswish")
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        y = m(x)
        c = copy.deepcopy(m)
        assert torch.equal(c(x), y)
        c.weight.mul_(3.0)
        check(c, x, c(x))
        assert torch.equal(m(x), y)  # the original's pack is untouched
        buf = io.BytesIO()
        torch.save(m, buf)
        buf.seek(0)
        m2 = torch.load(buf, weights_only=False)
        assert m2._packed is None  # derived state is not pickled
        assert torch.equal(m2(x), y)


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_setting_changes_after_construction(kind):
    torch.manual_seed(5)
    m = make(kind, 6, activation="none")
    x = torch.randn(1, 6, 8, 8)
    with torch.no_grad():
        check(m, x, m(x))
        m.activation = "relu"
        check(m, x, m(x))
        with pytest.raises(ValueError, match="activation"):
            m.activation = "gelu"
            m(x)
        if kind == "dw":
            assert m.activation == "relu"  # refused, the old setting kept
            m.stride = (2, 2)
            check(m, x, m(x))
            m.padding = (0, 0)
            check(m, x, m(x))
            m.dilation = (2, 1)
            check(m, x, m(x))


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_grad_on_with_only_bias_trainable(kind):
    torch.manual_seed(6)
    m = make(kind, 4, activation="none")
    m.weight.requires_grad_(False)
    ref = nn.Conv2d(4, m.out_channels, m.kernel_size, m.stride, m.padding, groups=m.groups)
    ref.load_state_dict(m.state_dict())
    x = torch.randn(2, 4, 6, 6)
    m(x).square().sum().backward()
    ref(x).square().sum().backward()
    torch.testing.assert_close(m.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_grad_on_nothing_trainable_is_eager_and_right(kind):
    m = make(kind, 4).requires_grad_(False)
    x = torch.randn(1, 4, 6, 6)
    y = m(x)
    assert y.grad_fn is None
    check(m, x, y)


class _Scale(nn.Module):
    def forward(self, w):
        return 2.0 * w


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_parametrized_weight(kind):
    torch.manual_seed(7)
    m = make(kind, 5)
    parametrize.register_parametrization(m, "weight", _Scale())
    x = torch.randn(1, 5, 6, 6)
    with torch.no_grad():
        check(m, x, m(x))
        m.parametrizations.weight.original.mul_(-1.0)
        check(m, x, m(x))


class _Sub(torch.Tensor):
    pass


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_tensor_subclass_input_takes_the_registered_op(kind):
    m = make(kind, 4)
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        check(m, x, m(x.as_subclass(_Sub)).as_subclass(torch.Tensor))
