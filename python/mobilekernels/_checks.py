"""Input validation shared by every op: runs before any pointer reaches C++."""
from __future__ import annotations

from typing import Sequence

import torch


def check_tensor(name: str, t, dtype: torch.dtype, dim: int | None = None) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        raise TypeError(f"{name} must be {dtype}, got {t.dtype}")
    if not t.is_cpu:  # (a flag read; t.device builds a torch.device object)
        raise ValueError(f"{name} must be on the CPU, got device {t.device}")
    if dim is not None and t.dim() != dim:
        raise ValueError(f"{name} must be {dim}-D, got {t.dim()}-D with shape {tuple(t.shape)}")


_F32 = torch.float32
_empty_strided = torch.empty_strided
_default_dtype = torch.get_default_dtype


def empty_f32(shape, strides) -> torch.Tensor:
    """An uninitialised float32 tensor of the given (precomputed) strides: the eager fast paths'
    output. The dtype keyword costs ~10% of the allocation, so it is left out when float32 is
    the default."""
    return _empty_strided(shape, strides) if _default_dtype() is _F32 else _empty_strided(shape, strides, dtype=_F32)


def empty_cl(shape, dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised channels_last ``[n, c, h, w]`` tensor: ``torch.empty(shape, dtype=dtype,
    memory_format=torch.channels_last)`` with the strides given (cheaper than resolving the format)."""
    n, c, h, w = shape
    return torch.empty_strided(shape, (h * w * c, 1, w * c, c), dtype=dtype)


def pair(name: str, v, minimum: int) -> tuple[int, int]:
    """Normalise an int or a pair of ints, each >= minimum."""
    if type(v) is int and v >= minimum:  # the common case, first
        return v, v
    if isinstance(v, int) and not isinstance(v, bool):
        v = (v, v)
    if (not isinstance(v, (tuple, list)) or len(v) != 2
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in v)):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    if min(v) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {tuple(v)}")
    return int(v[0]), int(v[1])


def conv_padding(padding, kernel: Sequence[int], stride: Sequence[int],
                 dilation: Sequence[int]) -> tuple[int, int, int, int]:
    """torch-style padding (int, (ph, pw), 'same', 'valid') -> (top, bottom, left, right).

    'same' follows torch: total = dilation * (k - 1), the odd extra element goes bottom/right,
    and only stride 1 is allowed. Each side is limited to dilation * (k - 1): more padding
    would produce output rows or columns that see nothing but zeros.
    """
    if type(padding) is int and padding >= 0:  # the common case: no pair to normalise
        pads = (padding,) * 4
    elif isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if tuple(stride) != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions "
                                 f"(stride={tuple(stride)}), as in torch")
            th, tw = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    elif isinstance(padding, (tuple, list)) and len(padding) == 4:
        pads = tuple(padding)
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in pads) or min(pads) < 0:
            raise ValueError(f"padding must be non-negative ints, got {pads}")
    else:
        ph, pw = pair("padding", padding, 0)
        pads = (ph, ph, pw, pw)
    limits = (dilation[0] * (kernel[0] - 1),) * 2 + (dilation[1] * (kernel[1] - 1),) * 2
    if any(p > lim for p, lim in zip(pads, limits)):
        raise ValueError(f"padding {pads} (top, bottom, left, right) is larger than the dilated "
                         f"kernel extent minus one {limits}: such padding only adds all-zero rows")
    return pads


def out_size(size: int, k: int, s: int, d: int, p0: int, p1: int) -> int:
    """Output length of a convolution along one axis (torch's formula)."""
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def check_window(kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                 dilation: Sequence[int]) -> None:
    """Validate a 2-D convolution window: kernel, stride, dilation two ints >= 1, padding four
    ints >= 0 (top, bottom, left, right)."""
    for name, v in (("kernel size", kernel), ("stride", stride), ("dilation", dilation)):
        if len(v) != 2 or min(v) < 1:
            raise ValueError(f"{name} must be two ints >= 1, got {tuple(v)}")
    if len(padding) != 4 or min(padding) < 0:
        raise ValueError(f"padding must be four ints >= 0 (top, bottom, left, right), got {tuple(padding)}")


def window_out(h: int, w: int, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
               dilation: Sequence[int]) -> tuple[int, int]:
    """Output (OH, OW) of a window ``check_window`` accepted on an H x W input; the dilated
    kernel must fit the padded input."""
    kh, kw = kernel
    ext_h, ext_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if h + padding[0] + padding[1] < ext_h or w + padding[2] + padding[3] < ext_w:
        raise ValueError(f"kernel {(kh, kw)} with dilation {tuple(dilation)} (extent {(ext_h, ext_w)}) is "
                         f"larger than the padded input {(h + padding[0] + padding[1], w + padding[2] + padding[3])}")
    return (out_size(h, kh, stride[0], dilation[0], padding[0], padding[1]),
            out_size(w, kw, stride[1], dilation[1], padding[2], padding[3]))


def dw_geometry(x_shape: Sequence[int], cout: int, kernel: Sequence[int], stride: Sequence[int],
                padding: Sequence[int], dilation: Sequence[int]):
    """Validate a depthwise call (fp32 or int8); return (N, C, H, W, M, OH, OW).
    ``padding`` is (top, bottom, left, right)."""
    if len(x_shape) != 4:
        raise ValueError(f"x must be 4-D NCHW, got shape {tuple(x_shape)}")
    n, c, h, w = (int(v) for v in x_shape)
    check_window(kernel, stride, padding, dilation)
    if c == 0 or h == 0 or w == 0:
        raise ValueError(f"x has a zero-size dimension (shape {tuple(x_shape)}); only an empty batch is allowed")
    if cout < 1 or cout % c != 0:
        raise ValueError(f"depthwise weight has {cout} output channels, not a positive multiple of the "
                         f"{c} input channels (groups must equal input channels)")
    oh, ow = window_out(h, w, kernel, stride, padding, dilation)
    return n, c, h, w, cout // c, oh, ow


def x_dims(x_shape, cin: int, who: str, note: str = "") -> tuple:
    """(N, H, W) of a 4-D input with ``cin`` channels and no zero-size dimension but the
    batch; ``who`` (and ``note``) say what expects ``cin`` in the error."""
    if len(x_shape) != 4:
        raise ValueError(f"x must be 4-D [N, Cin, H, W], got shape {tuple(x_shape)}")
    n, c, h, w = (int(v) for v in x_shape)
    if min(c, h, w) == 0:
        raise ValueError(f"x has a zero-size dimension (shape {tuple(x_shape)}); only an empty batch is allowed")
    if c != cin:
        raise ValueError(f"x has {c} channels, {who} expects {cin}{note}")
    return n, h, w


def ir_geometry(x_shape, cin, chid, cout, kernel, stride, padding, residual):
    """Validate a fused inverted-residual call's shapes (fp32 or int8; depthwise padding
    (top, bottom, left, right), each in [0, kernel - 1]); return (N, H, W, OH, OW)."""
    n, h, w = x_dims(x_shape, cin, "the block")
    if chid < 1 or cout < 1:
        raise ValueError(f"hidden_channels and out_channels must be >= 1, got {chid}, {cout}")
    if kernel < 1 or stride < 1:
        raise ValueError(f"kernel and stride must be >= 1, got {kernel}, {stride}")
    if len(padding) != 4 or min(padding) < 0 or max(padding) > kernel - 1:
        raise ValueError(f"padding must be four ints in [0, kernel - 1] (top, bottom, left, right), "
                         f"got {tuple(padding)}")
    if h + padding[0] + padding[1] < kernel or w + padding[2] + padding[3] < kernel:
        raise ValueError(f"depthwise kernel {kernel} is larger than the padded input")
    oh = out_size(h, kernel, stride, 1, padding[0], padding[1])
    ow = out_size(w, kernel, stride, 1, padding[2], padding[3])
    if residual and (stride != 1 or cin != cout or (oh, ow) != (h, w)):
        raise ValueError(f"a residual needs stride 1, in == out channels and same-size output "
                         f"(stride {stride}, {cin} -> {cout} channels, {h}x{w} -> {oh}x{ow})")
    return n, h, w, oh, ow


def enum_code(what: str, name: str, codes: dict) -> int:
    """The C++ code of a named choice (an activation, a gate), or a ValueError listing the names."""
    if name not in codes:
        raise ValueError(f"{what} must be one of {sorted(codes)}, got {name!r}")
    return codes[name]
