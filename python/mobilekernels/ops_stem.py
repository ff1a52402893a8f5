"""Typed wrappers of the fp32 small-Cin dense convolution (``torch.ops.mobilekernels.conv2d_stem*``),
re-exported by :mod:`mobilekernels.ops`. A plain eager call runs the CPU impl directly (see ``_eager``)."""
from __future__ import annotations

from typing import Optional, Union

import torch

from . import _stemops
from ._checks import check_tensor, conv_padding, pair
from ._eager import eager

Padding = Union[int, tuple, str]


def conv2d_stem(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                stride: Union[int, tuple] = 1, padding: Padding = 0, dilation: Union[int, tuple] = 1,
                activation: str = "none") -> torch.Tensor:
    """fp32 dense convolution, ``F.conv2d(x, weight, bias, stride, padding, dilation)`` (groups 1)
    followed by ``activation`` (``none | relu | relu6 | hardswish``), for few input channels.

    Args:
        x: float32 ``[N, Cin, H, W]``, any strides (NCHW and channels_last are read in place).
        weight: float32 ``[Cout, Cin, kh, kw]``; bias float32 ``[Cout]`` or None.
        padding: int, ``(ph, pw)``, ``(top, bottom, left, right)``, ``'same'`` or ``'valid'``.
    Returns:
        float32 ``[N, Cout, OH, OW]`` in channels_last memory format.
    """
    check_tensor("x", x, torch.float32, 4)
    check_tensor("weight", weight, torch.float32, 4)
    s, d = pair("stride", stride, 1), pair("dilation", dilation, 1)
    p = conv_padding(padding, weight.shape[2:], s, d)
    if type(activation) is str and eager((x, weight), (bias,)):  # no dispatcher (see _eager)
        return _stemops._conv2d_stem_cpu(x, weight, bias, s, p, d, activation)
    return torch.ops.mobilekernels.conv2d_stem(x, weight, bias, list(s), list(p), list(d), activation)


def conv2d_stem_pack(weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Pack a ``[Cout, Cin, kh, kw]`` weight (and bias) once for :func:`conv2d_stem_packed`."""
    if eager((weight,), (bias,)):
        return _stemops.pack_stem(weight, bias)
    return torch.ops.mobilekernels.conv2d_stem_pack(weight, bias)


def conv2d_stem_packed(x: torch.Tensor, packed: torch.Tensor, out_channels: int, kernel_size, stride=1,
                       padding: Padding = 0, dilation=1, activation: str = "none") -> torch.Tensor:
    """:func:`conv2d_stem` on a weight prepacked by :func:`conv2d_stem_pack` (inference only)."""
    k, s, d = pair("kernel_size", kernel_size, 1), pair("stride", stride, 1), pair("dilation", dilation, 1)
    p = conv_padding(padding, k, s, d)
    if type(out_channels) is int and type(activation) is str and eager((x, packed)):
        return _stemops._conv2d_stem_packed_cpu(x, packed, out_channels, k, s, p, d, activation)
    return torch.ops.mobilekernels.conv2d_stem_packed(x, packed, out_channels, list(k), list(s), list(p), list(d),
                                                      activation)


conv2d_stem_kernel_name = _stemops.conv2d_stem_kernel_name
