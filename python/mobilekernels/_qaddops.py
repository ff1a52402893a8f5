"""torch.library registration of the int8 residual add (schema, CPU impl, fake impl).

``qadd(a, a_scale, a_zero_point, b, b_scale, b_zero_point, out_scale, out_zero_point, out_dtype)``
on uint8 / int8 codes ``a``, ``b`` of one NCHW shape (channels_last read in place, other
layouts copied), each with its own scale and zero point, returns channels_last ``out_dtype``::

    y = clamp(round_half_even(f32(a - za) * f32(sa / so) + f32(b - zb) * f32(sb / so)) + zo, range)

each product and the sum rounded to fp32: ``mobilekernels.quant.modules.qadd`` bit for bit (and
the add that ``qinverted_residual`` fuses). The C++ kernel (``_C.q8_add``) takes each of a, b and the
output as uint8 or int8 codes.
"""
from __future__ import annotations

import torch

from . import _C
from ._checks import empty_cl
from ._qops import NS, _DTYPE_RANGE, _check_qtensor, check_scale, check_zero_point

_lib = torch.library.Library(NS, "FRAGMENT")
_lib.define("qadd(Tensor a, float a_scale, int a_zero_point, Tensor b, float b_scale, int b_zero_point, "
            "float out_scale, int out_zero_point, ScalarType out_dtype) -> Tensor")

# A scale ratio this large overflows fp32 once multiplied by a code difference (inf - inf = NaN).
_MAX_RATIO = 2.0 ** 100


def _check(a, sa, za, b, sb, zb, so, zo, out_dtype) -> None:
    """Every check before a pointer reaches C++."""
    _check_qtensor("a", a)
    _check_qtensor("b", b)
    if a.dim() != 4:
        raise ValueError(f"a must be 4-D [N, C, H, W], got shape {tuple(a.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if out_dtype not in _DTYPE_RANGE:
        raise TypeError(f"out_dtype must be torch.uint8 or torch.int8, got {out_dtype}")
    sa, sb, so = check_scale("a_scale", sa), check_scale("b_scale", sb), check_scale("out_scale", so)
    check_zero_point("a_zero_point", za, a.dtype)
    check_zero_point("b_zero_point", zb, b.dtype)
    check_zero_point("out_zero_point", zo, out_dtype)
    if max(sa, sb) / so >= _MAX_RATIO:
        raise ValueError(f"input / output scale ratio too large ({sa} and {sb} over {so})")


def _qadd_cpu(a, a_scale, a_zero_point, b, b_scale, b_zero_point, out_scale, out_zero_point, out_dtype):
    _check(a, a_scale, a_zero_point, b, b_scale, b_zero_point, out_scale, out_zero_point, out_dtype)
    out = empty_cl(a.shape, out_dtype)
    if out.numel() == 0:
        return out
    a_signed, b_signed = a.dtype == torch.int8, b.dtype == torch.int8
    a = a.contiguous(memory_format=torch.channels_last)  # no copy when already NHWC
    b = b.contiguous(memory_format=torch.channels_last)
    _C.q8_add(a.data_ptr(), a_scale, a_zero_point, b.data_ptr(), b_scale, b_zero_point, out_scale, out_zero_point,
              out.data_ptr(), out.numel(), a_signed, b_signed, out_dtype == torch.int8)
    return out


@torch.library.register_fake(f"{NS}::qadd")
def _qadd_fake(a, a_scale, a_zero_point, b, b_scale, b_zero_point, out_scale, out_zero_point, out_dtype):
    torch._check(a.dim() == 4 and a.shape == b.shape, lambda: "qadd: a and b must be 4-D of the same shape")
    return a.new_empty(a.shape, dtype=out_dtype).contiguous(memory_format=torch.channels_last)


_lib.impl("qadd", _qadd_cpu, "CPU")
