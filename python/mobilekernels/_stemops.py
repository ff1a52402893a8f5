"""torch.library registration of the fp32 small-Cin dense convolution (the network stem:
``Conv2d(3, 32, 3, stride 2, padding 1)`` and the like): schemas, CPU impls, fake impls,
autograd. The input is read in place through its strides (NCHW contiguous, channels_last or a
slice: no layout copy); the output is channels_last.

  ``conv2d_stem(x [N, Cin, H, W], weight [Cout, Cin, kh, kw], bias?, stride[2], padding[4],
      dilation[2], activation)``: differentiable (backward: PyTorch's convolution_backward).
  ``conv2d_stem_pack(weight, bias?)``: the 1-D float32 pack the kernels read (self-describing).
  ``conv2d_stem_packed(x, packed, out_channels, kernel_size[2], stride[2], padding[4],
      dilation[2], activation)``: inference on a prepacked weight.

Padding is (top, bottom, left, right). Any groups=1 conv is computed correctly; the kernels
are built for few input channels (each output pixel reads kh * kw * Cin scalars).
"""
from __future__ import annotations

import torch

from . import _C
from ._checks import check_tensor, check_window, empty_cl, enum_code, out_size, window_out, x_dims
from ._ops import ACTIVATIONS, NS

_lib = torch.library.Library(NS, "FRAGMENT")
_lib.define("conv2d_stem(Tensor x, Tensor weight, Tensor? bias, int[2] stride, int[4] padding, int[2] dilation, "
            "str activation) -> Tensor")
_lib.define("conv2d_stem_pack(Tensor weight, Tensor? bias) -> Tensor")
_lib.define("conv2d_stem_packed(Tensor x, Tensor packed, int out_channels, int[2] kernel_size, int[2] stride, "
            "int[4] padding, int[2] dilation, str activation) -> Tensor")


def _check_weight(weight, bias, in_channels: int | None = None) -> None:
    check_tensor("weight", weight, torch.float32, 4)
    if min(weight.shape) == 0:
        raise ValueError(f"weight must have shape [Cout, Cin, kh, kw] with every size > 0, got {tuple(weight.shape)}")
    if in_channels is not None and weight.shape[1] != in_channels:
        raise ValueError(f"x has {in_channels} channels, the weight expects {weight.shape[1]} (groups must be 1)")
    if bias is not None:
        check_tensor("bias", bias, torch.float32, 1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias has {bias.shape[0]} elements, expected {weight.shape[0]}")


def geometry(x_shape, cin: int, cout: int, kernel, stride, padding, dilation, activation: str) -> tuple:
    """Validate a call; return the C++ geometry tuple (n, cin, h, w, cout, kh, kw, sh, sw,
    pt, pb, pl, pr, dh, dw, act) and the output shape."""
    n, h, w = x_dims(x_shape, cin, "the weight", " (groups must be 1)")
    if cout < 1:
        raise ValueError(f"out_channels must be >= 1, got {cout}")
    act = enum_code("activation", activation, ACTIVATIONS)
    check_window(kernel, stride, padding, dilation)
    oh, ow = window_out(h, w, kernel, stride, padding, dilation)
    (kh, kw), (sh, sw), (dh, dw), (pt, pb, pl, pr) = kernel, stride, dilation, padding
    return (n, cin, h, w, cout, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, act), (n, cout, oh, ow)


def pack_stem(weight: torch.Tensor, bias) -> torch.Tensor:
    """The pack of a ``[Cout, Cin, kh, kw]`` weight (and bias)."""
    _check_weight(weight, bias)
    cout, cin, kh, kw = weight.shape
    packed = torch.empty(_C.f32_conv_stem_packed_size(cin, cout, kh, kw), dtype=torch.float32)
    w = weight.contiguous()
    b = bias.contiguous() if bias is not None else None
    _C.f32_conv_stem_pack(w.data_ptr(), b.data_ptr() if b is not None else 0, cin, cout, kh, kw, packed.data_ptr())
    return packed


def conv2d_stem_kernel_name() -> str:
    """Name of the register block the active ISA level runs (e.g. ``avx2/6x16``)."""
    return _C.f32_conv_stem_kernel_name()


def launch(x: torch.Tensor, packed: torch.Tensor, geom: tuple, out_shape) -> torch.Tensor:
    """Run a validated call (``geometry``) on x as it is laid out; the pack's header is checked by C++."""
    out = empty_cl(out_shape, torch.float32)
    if out_shape[0] == 0:
        return out
    _C.f32_conv_stem(x.data_ptr(), packed.data_ptr(), packed.numel(), out.data_ptr(), geom, x.stride(),
                     torch.get_num_threads())
    return out


def _check_x(x) -> None:
    check_tensor("x", x, torch.float32, 4)


def _conv2d_stem_cpu(x, weight, bias, stride, padding, dilation, activation):
    _check_x(x)
    _check_weight(weight, bias, x.shape[1])
    geom, shape = geometry(x.shape, weight.shape[1], weight.shape[0], weight.shape[2:], stride, padding, dilation,
                           activation)
    return launch(x, pack_stem(weight, bias), geom, shape)


def _out_like(x, cout, kernel, stride, padding, dilation):
    n, _, h, w = x.shape
    oh = out_size(h, kernel[0], stride[0], dilation[0], padding[0], padding[1])
    ow = out_size(w, kernel[1], stride[1], dilation[1], padding[2], padding[3])
    return x.new_empty((n, cout, oh, ow)).contiguous(memory_format=torch.channels_last)


@torch.library.register_fake(f"{NS}::conv2d_stem")
def _conv2d_stem_fake(x, weight, bias, stride, padding, dilation, activation):
    return _out_like(x, weight.shape[0], weight.shape[2:], stride, padding, dilation)


def _setup_context(ctx, inputs, output):
    x, weight, bias, stride, padding, dilation, activation = inputs
    ctx.conf = (list(stride), list(padding), list(dilation), activation, bias is not None)
    ctx.save_for_backward(x, weight, bias, output)


def _backward(ctx, grad):
    # PyTorch's convolution_backward on x padded explicitly (padding may be asymmetric, which
    # aten.convolution cannot express): exact, and traceable by AOT autograd.
    x, weight, bias, out = ctx.saved_tensors
    stride, (pt, pb, pl, pr), dilation, activation, has_bias = ctx.conf
    xp = torch.ops.aten.constant_pad_nd(x, [pl, pr, pt, pb], 0.0) if (pt or pb or pl or pr) else x
    if activation == "relu":
        grad = grad * (out > 0)
    elif activation == "relu6":
        grad = grad * ((out > 0) & (out < 6))
    elif activation == "hardswish":
        z = torch.ops.aten.convolution(xp, weight, bias, stride, [0, 0], dilation, False, [0, 0], 1)
        grad = torch.ops.aten.hardswish_backward(grad, z)
    gx, gw, gb = torch.ops.aten.convolution_backward(
        grad, xp, weight, [weight.shape[0]] if has_bias else None, stride, [0, 0], dilation, False, [0, 0], 1,
        [ctx.needs_input_grad[0], ctx.needs_input_grad[1], has_bias and ctx.needs_input_grad[2]])
    if gx is not None and xp is not x:
        gx = gx[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]]
    return gx, gw, gb, None, None, None, None


_lib.impl("conv2d_stem", _conv2d_stem_cpu, "CPU")
torch.library.register_autograd(f"{NS}::conv2d_stem", _backward, setup_context=_setup_context)
_lib.impl("conv2d_stem_pack", pack_stem, "CPU")


@torch.library.register_fake(f"{NS}::conv2d_stem_pack")
def _conv2d_stem_pack_fake(weight, bias):
    cout, cin, kh, kw = weight.shape
    return weight.new_empty((_C.f32_conv_stem_packed_size(cin, cout, kh, kw),))


def _conv2d_stem_packed_cpu(x, packed, out_channels, kernel_size, stride, padding, dilation, activation):
    _check_x(x)
    check_tensor("packed", packed, torch.float32, 1)
    if not packed.is_contiguous():
        raise ValueError("packed must be contiguous (use the tensor the pack op returned)")
    geom, shape = geometry(x.shape, x.shape[1], out_channels, kernel_size, stride, padding, dilation, activation)
    return launch(x, packed, geom, shape)


@torch.library.register_fake(f"{NS}::conv2d_stem_packed")
def _conv2d_stem_packed_fake(x, packed, out_channels, kernel_size, stride, padding, dilation, activation):
    return _out_like(x, out_channels, kernel_size, stride, padding, dilation)


_lib.impl("conv2d_stem_packed", _conv2d_stem_packed_cpu, "CPU")
