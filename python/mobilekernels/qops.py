"""Typed wrappers around the int8 ops ``torch.ops.mobilekernels.q*`` (semantics in ``_qops``).

Tensors are plain ``torch.uint8`` / ``torch.int8`` with explicit scales and zero points, NCHW
shaped; a ``channels_last`` input is read in place and results come back ``channels_last``.
Rounding: fp32 requantization, round half to even (as XNNPACK, FBGEMM and ONNX Runtime).
"""
from __future__ import annotations

from typing import Optional, Union

import torch

from . import _qops
from ._checks import conv_padding, pair

Number = Union[int, float]
ACTIVATIONS = ("none", "relu", "relu6")


def output_range(activation: str, y_scale: float, y_zero_point: int,
                 dtype: torch.dtype = torch.uint8) -> tuple[int, int]:
    """``(y_min, y_max)`` of a fused activation expressed in the output's quantized range:
    ReLU clamps at the zero point, ReLU6 also at ``y_zero_point + round(6 / y_scale)``."""
    if dtype not in _qops._DTYPE_RANGE:
        raise TypeError(f"dtype must be torch.uint8 or torch.int8, got {dtype}")
    lo, hi = _qops._DTYPE_RANGE[dtype]
    y_scale = _qops.check_scale("y_scale", y_scale)
    y_zero_point = _qops.check_zero_point("y_zero_point", y_zero_point, dtype)
    if activation == "none":
        return lo, hi
    if activation == "relu":
        return y_zero_point, hi
    if activation == "relu6":
        return y_zero_point, max(y_zero_point, min(hi, y_zero_point + round(6.0 / y_scale)))
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def quantize_bias(bias: torch.Tensor, x_scale: float, w_scale: Union[float, torch.Tensor]) -> torch.Tensor:
    """int32 bias in units of ``x_scale * w_scale[oc]``, rounded half to even."""
    s = torch.as_tensor(w_scale, dtype=torch.float64) * float(x_scale)
    q = torch.round(bias.detach().to(torch.float64) / s)
    if bool((q.abs() > 2**31 - 1).any()):
        raise ValueError("bias does not fit int32 at this input/weight scale")
    return q.to(torch.int32)


def _as_tensor_qparams(w_scale, w_zero_point):
    s = w_scale if isinstance(w_scale, torch.Tensor) else torch.tensor([float(w_scale)], dtype=torch.float32)
    z = w_zero_point if isinstance(w_zero_point, torch.Tensor) else torch.tensor([int(w_zero_point)], dtype=torch.int32)
    return s, z


def qconv1x1_pack(weight: torch.Tensor, w_scale: Union[float, torch.Tensor],
                  w_zero_point: Union[int, torch.Tensor] = 0, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Pack a uint8/int8 ``[Cout, Cin, 1, 1]`` (or ``[Cout, Cin]``) weight with per-channel or
    per-tensor scale / zero point and an optional int32 bias. Returns a 1-D uint8 tensor."""
    if isinstance(weight, torch.Tensor) and weight.dim() == 2:
        weight = weight[:, :, None, None]
    s, z = _as_tensor_qparams(w_scale, w_zero_point)
    return torch.ops.mobilekernels.qconv1x1_pack(weight, s, z, bias)


def qconv1x1(x: torch.Tensor, packed: torch.Tensor, out_channels: int, x_scale: float, x_zero_point: int,
             y_scale: float, y_zero_point: int, out_dtype: torch.dtype = torch.uint8,
             activation: str = "none") -> torch.Tensor:
    """int8 1x1 convolution: ``x [N, Cin, H, W]`` uint8/int8 -> ``[N, out_channels, H, W]``
    ``out_dtype``, channels_last, with an optional fused ``relu`` / ``relu6``."""
    y_min, y_max = output_range(activation, y_scale, y_zero_point, out_dtype)
    return torch.ops.mobilekernels.qconv1x1(x, packed, out_channels, float(x_scale), x_zero_point,
                                            float(y_scale), y_zero_point, out_dtype, y_min, y_max)


def qdwconv2d_pack(weight: torch.Tensor, w_scale: Union[float, torch.Tensor],
                   w_zero_point: Union[int, torch.Tensor] = 0, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Pack a uint8/int8 depthwise weight ``[C*m, 1, kh, kw]`` (see :func:`qconv1x1_pack`)."""
    s, z = _as_tensor_qparams(w_scale, w_zero_point)
    return torch.ops.mobilekernels.qdwconv2d_pack(weight, s, z, bias)


def qdwconv2d(x: torch.Tensor, packed: torch.Tensor, out_channels: int, kernel_size, x_scale: float,
              x_zero_point: int, y_scale: float, y_zero_point: int, stride=1, padding=0, dilation=1,
              out_dtype: torch.dtype = torch.uint8, activation: str = "none") -> torch.Tensor:
    """int8 depthwise convolution (groups = C, depth multiplier ``out_channels // C``); padding
    is an int, a pair, ``(top, bottom, left, right)``, ``'same'`` or ``'valid'`` and reads
    ``x_zero_point``."""
    k, s, d = pair("kernel_size", kernel_size, 1), pair("stride", stride, 1), pair("dilation", dilation, 1)
    p = conv_padding(padding, k, s, d)
    y_min, y_max = output_range(activation, y_scale, y_zero_point, out_dtype)
    return torch.ops.mobilekernels.qdwconv2d(x, packed, out_channels, list(k), list(s), list(p), list(d),
                                             float(x_scale), x_zero_point, float(y_scale), y_zero_point,
                                             out_dtype, y_min, y_max)


kernel_names = _qops.kernel_names
