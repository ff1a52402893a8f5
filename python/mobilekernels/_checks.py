"""Input validation shared by every op: runs before any pointer reaches C++."""
from __future__ import annotations

from typing import Sequence

import torch


def check_tensor(name: str, t, dtype: torch.dtype, dim: int | None = None) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        raise TypeError(f"{name} must be {dtype}, got {t.dtype}")
    if t.device.type != "cpu":
        raise ValueError(f"{name} must be on the CPU, got device {t.device}")
    if dim is not None and t.dim() != dim:
        raise ValueError(f"{name} must be {dim}-D, got {t.dim()}-D with shape {tuple(t.shape)}")


def pair(name: str, v, minimum: int) -> tuple[int, int]:
    """Normalise an int or a pair of ints, each >= minimum."""
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
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if tuple(stride) != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions "
                                 f"(stride={tuple(stride)}), as in torch")
            th, tw = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
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
