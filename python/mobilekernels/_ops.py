"""torch.library registration of the mobilekernels operators (schemas, CPU impls, fake impls,
autograd). The CPU impls call the torch-free extension on ``data_ptr()``s (zero copy for
channels_last inputs) with the GIL released.

Depthwise convolution ops (fp32):
  ``dwconv2d(x, weight, bias, stride, padding, dilation, activation)``: NCHW-shaped float32
      ``x`` in any memory format, ``weight [C*m, 1, kh, kw]``, ``padding`` as
      ``[top, bottom, left, right]``; returns a channels_last tensor. Differentiable.
  ``dwconv2d_pack(weight, bias)``: the packed-weight tensor (1-D float32) the kernel reads.
  ``dwconv2d_packed(x, packed, out_channels, kernel, stride, padding, dilation, activation)``:
      the same convolution on a prepacked weight (inference only).
"""
from __future__ import annotations

from typing import Sequence

import torch

from . import _C
from ._checks import check_tensor, dw_geometry, out_size

NS = "mobilekernels"
ACTIVATIONS = {"none": 0, "relu": 1, "relu6": 2, "hardswish": 3}

# FRAGMENT: each op module of the package adds its own ops to the one namespace.
_lib = torch.library.Library(NS, "FRAGMENT")
_lib.define("dwconv2d(Tensor x, Tensor weight, Tensor? bias, int[2] stride, int[4] padding, "
            "int[2] dilation, str activation) -> Tensor")
_lib.define("dwconv2d_pack(Tensor weight, Tensor? bias) -> Tensor")
_lib.define("dwconv2d_packed(Tensor x, Tensor packed, int out_channels, int[2] kernel, "
            "int[2] stride, int[4] padding, int[2] dilation, str activation) -> Tensor")


# ---------------------------------------------------------------------------------------------
# geometry and validation


def _dw_geometry(x_shape: Sequence[int], cout: int, kernel: Sequence[int], stride: Sequence[int],
                 padding: Sequence[int], dilation: Sequence[int], activation: str):
    """Validate an fp32 depthwise call; return (N, C, H, W, M, OH, OW)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return dw_geometry(x_shape, cout, kernel, stride, padding, dilation)


def _check_weight(weight: torch.Tensor, bias) -> None:
    check_tensor("weight", weight, torch.float32, 4)
    if weight.shape[1] != 1:
        raise ValueError(f"depthwise weight must have shape [C*m, 1, kh, kw], got {tuple(weight.shape)} "
                         "(in_channels / groups must be 1)")
    if weight.shape[0] == 0:
        raise ValueError("weight has zero output channels")
    if bias is not None:
        check_tensor("bias", bias, torch.float32, 1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias has {bias.shape[0]} elements, expected {weight.shape[0]} (output channels)")


def _empty_out(n: int, cout: int, oh: int, ow: int) -> torch.Tensor:
    return torch.empty((n, cout, oh, ow), dtype=torch.float32, memory_format=torch.channels_last)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    # No copy when x is already channels_last (strides checked, not flags).
    return x.contiguous(memory_format=torch.channels_last)


def _run_dw(x, packed, cout, kernel, stride, padding, dilation, activation) -> torch.Tensor:
    n, c, h, w, m, oh, ow = _dw_geometry(x.shape, cout, kernel, stride, padding, dilation, activation)
    out = _empty_out(n, cout, oh, ow)
    if n == 0:
        return out
    x = _nhwc(x)
    _C.f32_dwconv(x.data_ptr(), packed.data_ptr(), out.data_ptr(), n, h, w, c, m, kernel[0], kernel[1],
                  stride[0], stride[1], dilation[0], dilation[1], padding[0], padding[2], oh, ow,
                  ACTIVATIONS[activation], torch.get_num_threads(), packed.numel())
    return out


class DwPlan:
    """Everything about a depthwise call that does not depend on the input: built once by a
    module so its eager forward costs one validation of ``x`` and one C++ call."""

    __slots__ = ("cin", "cout", "kernel", "stride", "padding", "dilation", "activation", "act_code")

    def __init__(self, cin, cout, kernel, stride, padding, dilation, activation):
        self.cin, self.cout = int(cin), int(cout)
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.padding, self.dilation = tuple(padding), tuple(dilation)
        self.activation, self.act_code = activation, ACTIVATIONS[activation]

    def run(self, x: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
        if (type(x) is not torch.Tensor or x.dtype is not torch.float32 or x.device.type != "cpu"
                or x.dim() != 4 or x.shape[1] != self.cin):
            # Slow path only to produce the precise error message.
            check_tensor("x", x, torch.float32, 4)
            if x.shape[1] != self.cin:
                raise ValueError(f"x has {x.shape[1]} channels, this layer expects {self.cin}")
        n, c, h, w = x.shape
        kh, kw = self.kernel
        (sh, sw), (dh, dw), (pt, pb, pl, pr) = self.stride, self.dilation, self.padding
        if h == 0 or w == 0 or h + pt + pb < dh * (kh - 1) + 1 or w + pl + pr < dw * (kw - 1) + 1:
            _dw_geometry(x.shape, self.cout, self.kernel, self.stride, self.padding, self.dilation,
                         self.activation)  # raises the precise error
        oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
        ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
        out = torch.empty((n, self.cout, oh, ow), dtype=torch.float32, memory_format=torch.channels_last)
        if n == 0:
            return out
        x = x.contiguous(memory_format=torch.channels_last)
        _C.f32_dwconv(x.data_ptr(), packed.data_ptr(), out.data_ptr(), n, h, w, c, self.cout // c, kh, kw,
                      sh, sw, dh, dw, pt, pl, oh, ow, self.act_code, torch.get_num_threads(), packed.numel())
        return out


def pack_dw(weight: torch.Tensor, bias) -> torch.Tensor:
    _check_weight(weight, bias)
    cout, _, kh, kw = weight.shape
    packed = torch.empty(_C.f32_dwconv_packed_size(cout, kh, kw), dtype=torch.float32)
    w = weight.detach().contiguous()
    b = bias.detach().contiguous() if bias is not None else None
    _C.f32_dwconv_pack(w.data_ptr(), b.data_ptr() if b is not None else 0, cout, kh, kw, packed.data_ptr())
    return packed


def dwconv2d_kernel_name(x_shape, w_shape, stride, padding, dilation, activation="none") -> str:
    """Name of the kernel the active ISA level runs for this shape (e.g. ``avx2/3x3s1``)."""
    kernel = (w_shape[2], w_shape[3])
    n, c, h, w, m, oh, ow = _dw_geometry(x_shape, w_shape[0], kernel, stride, padding, dilation, activation)
    return _C.f32_dwconv_kernel_name(max(n, 1), h, w, c, m, kernel[0], kernel[1], stride[0], stride[1],
                                     dilation[0], dilation[1], padding[0], padding[2], oh, ow,
                                     ACTIVATIONS[activation])


# ---------------------------------------------------------------------------------------------
# dwconv2d (raw weight)


def _dwconv2d_cpu(x, weight, bias, stride, padding, dilation, activation):
    check_tensor("x", x, torch.float32, 4)
    packed = pack_dw(weight, bias)
    return _run_dw(x, packed, weight.shape[0], weight.shape[2:], stride, padding, dilation, activation)


@torch.library.register_fake(f"{NS}::dwconv2d")
def _dwconv2d_fake(x, weight, bias, stride, padding, dilation, activation):
    n, c, h, w = x.shape
    cout, _, kh, kw = weight.shape
    oh = out_size(h, kh, stride[0], dilation[0], padding[0], padding[1])
    ow = out_size(w, kw, stride[1], dilation[1], padding[2], padding[3])
    return x.new_empty((n, cout, oh, ow)).contiguous(memory_format=torch.channels_last)


def _dw_setup_context(ctx, inputs, output):
    x, weight, bias, stride, padding, dilation, activation = inputs
    ctx.conf = (list(stride), list(padding), list(dilation), activation, bias is not None)
    ctx.save_for_backward(x, weight, bias, output)


def _dw_backward(ctx, grad):
    # Backward runs on PyTorch's own convolution_backward: exact, and traceable by AOT autograd.
    x, weight, bias, out = ctx.saved_tensors
    stride, padding, dilation, activation, has_bias = ctx.conf
    pt, pb, pl, pr = padding
    xp = torch.nn.functional.pad(x, (pl, pr, pt, pb))
    if activation == "relu":
        grad = grad * (out > 0)
    elif activation == "relu6":
        grad = grad * ((out > 0) & (out < 6))
    elif activation == "hardswish":
        z = torch.ops.aten.convolution(xp, weight, bias, stride, [0, 0], dilation, False, [0, 0], x.shape[1])
        grad = torch.ops.aten.hardswish_backward(grad, z)
    gx, gw, gb = torch.ops.aten.convolution_backward(
        grad, xp, weight, [weight.shape[0]] if has_bias else None, stride, [0, 0], dilation, False,
        [0, 0], x.shape[1], [ctx.needs_input_grad[0], ctx.needs_input_grad[1], has_bias and ctx.needs_input_grad[2]])
    if gx is not None:
        gx = gx[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]]
    return gx, gw, gb, None, None, None, None


_lib.impl("dwconv2d", _dwconv2d_cpu, "CPU")
torch.library.register_autograd(f"{NS}::dwconv2d", _dw_backward, setup_context=_dw_setup_context)


# ---------------------------------------------------------------------------------------------
# prepacked path


def _dwconv2d_pack_cpu(weight, bias):
    return pack_dw(weight, bias)


_lib.impl("dwconv2d_pack", _dwconv2d_pack_cpu, "CPU")


@torch.library.register_fake(f"{NS}::dwconv2d_pack")
def _dwconv2d_pack_fake(weight, bias):
    cout, _, kh, kw = weight.shape
    return weight.new_empty((_C.f32_dwconv_packed_size(cout, kh, kw),))


def _dwconv2d_packed_cpu(x, packed, out_channels, kernel, stride, padding, dilation, activation):
    check_tensor("x", x, torch.float32, 4)
    check_tensor("packed", packed, torch.float32, 1)
    if min(kernel) < 1 or out_channels < 1:
        raise ValueError(f"invalid kernel {tuple(kernel)} / out_channels {out_channels}")
    if not packed.is_contiguous():
        raise ValueError("packed weight must be contiguous (use the tensor dwconv2d_pack returned)")
    return _run_dw(x, packed, out_channels, kernel, stride, padding, dilation, activation)


@torch.library.register_fake(f"{NS}::dwconv2d_packed")
def _dwconv2d_packed_fake(x, packed, out_channels, kernel, stride, padding, dilation, activation):
    n, c, h, w = x.shape
    oh = out_size(h, kernel[0], stride[0], dilation[0], padding[0], padding[1])
    ow = out_size(w, kernel[1], stride[1], dilation[1], padding[2], padding[3])
    return x.new_empty((n, out_channels, oh, ow)).contiguous(memory_format=torch.channels_last)


_lib.impl("dwconv2d_packed", _dwconv2d_packed_cpu, "CPU")
