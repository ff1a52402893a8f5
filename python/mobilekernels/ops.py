"""Typed functional wrappers around ``torch.ops.mobilekernels.*``.

A plain eager call runs the op's CPU implementation directly (no dispatcher, same validation
and result); when an input needs grad, under torch.compile, export or any torch mode the
registered op runs (``_eager``).

Tensors are NCHW-shaped as in torch; a ``channels_last`` input is read in place (it is NHWC in
memory) and results come back ``channels_last``.
"""
from __future__ import annotations

from typing import Optional, Union

import torch

from . import _ops
from ._checks import check_tensor, conv_padding, pair
from ._eager import eager

Padding = Union[int, tuple, str]


def dwconv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
             stride: Union[int, tuple] = 1, padding: Padding = 0, dilation: Union[int, tuple] = 1,
             activation: str = "none", *, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """fp32 depthwise convolution, ``F.conv2d(x, weight, bias, stride, padding, dilation,
    groups=C)`` followed by ``activation`` (``none | relu | relu6 | hardswish``).

    Args:
        x: float32 ``[N, C, H, W]`` (any memory format; channels_last avoids a copy).
        weight: float32 ``[C*m, 1, kh, kw]`` (depth multiplier ``m >= 1``).
        bias: float32 ``[C*m]`` or None.
        padding: int, ``(ph, pw)``, ``(top, bottom, left, right)``, ``'same'`` or ``'valid'``.
        out: optional preallocated result (eager inference only): float32 ``[N, C*m, OH, OW]``
            in dense channels_last memory, not overlapping ``x``; written and returned. Saves
            the new output buffer of every call, which torch places at a different heap address
            from call to call, so the kernel writes memory that is not in cache.
    Returns:
        float32 ``[N, C*m, OH, OW]`` in channels_last memory format (``out`` when given).
    """
    check_tensor("x", x, torch.float32, 4)
    check_tensor("weight", weight, torch.float32, 4)
    s, d = pair("stride", stride, 1), pair("dilation", dilation, 1)
    p = conv_padding(padding, weight.shape[2:], s, d)
    if type(activation) is str and eager((x, weight), (bias,)):  # no dispatcher (see _eager)
        return _ops.dwconv2d_eager(x, weight, bias, s, p, d, activation, out)
    _no_out(out)
    return torch.ops.mobilekernels.dwconv2d(x, weight, bias, list(s), list(p), list(d), activation)


def _no_out(out) -> None:
    if out is not None:
        raise ValueError("out= is for eager inference only: not with autograd (an input requires grad), "
                         "tensor subclasses, torch modes or tracing (torch.compile / export)")


def dwconv2d_pack(weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Pack a depthwise weight (and bias) once for :func:`dwconv2d_packed`."""
    if eager((weight,), (bias,)):
        return _ops.pack_dw(weight, bias)
    return torch.ops.mobilekernels.dwconv2d_pack(weight, bias)


def dwconv2d_packed(x: torch.Tensor, packed: torch.Tensor, out_channels: int, kernel_size,
                    stride=1, padding: Padding = 0, dilation=1, activation: str = "none", *,
                    out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """:func:`dwconv2d` on a weight prepacked by :func:`dwconv2d_pack` (inference only; ``out``
    as there)."""
    k, s, d = pair("kernel_size", kernel_size, 1), pair("stride", stride, 1), pair("dilation", dilation, 1)
    p = conv_padding(padding, k, s, d)
    if type(out_channels) is int and type(activation) is str and eager((x, packed)):
        return _ops.dwconv2d_packed_eager(x, packed, out_channels, k, s, p, d, activation, out)
    _no_out(out)
    return torch.ops.mobilekernels.dwconv2d_packed(x, packed, out_channels, list(k), list(s), list(p),
                                                   list(d), activation)


dwconv2d_kernel_name = _ops.dwconv2d_kernel_name

from .ops_stem import conv2d_stem, conv2d_stem_kernel_name, conv2d_stem_pack, conv2d_stem_packed  # noqa: E402,F401
