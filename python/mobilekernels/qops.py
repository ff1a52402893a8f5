"""Typed wrappers around the int8 ops ``torch.ops.mobilekernels.q*`` (semantics in ``_qops``).

A plain eager call runs the op's CPU implementation directly (no dispatcher, same validation
and result); when an input needs grad, under torch.compile, export or any torch mode the
registered op runs (``_eager``).

Tensors are plain ``torch.uint8`` / ``torch.int8`` with explicit scales and zero points, NCHW
shaped; a ``channels_last`` input is read in place and results come back ``channels_last``.
Rounding: fp32 requantization, round half to even (as XNNPACK, FBGEMM and ONNX Runtime).
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Union

import torch

from . import _qaddops, _qblockops, _qops
from ._checks import conv_padding, pair
from ._eager import eager, remember

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
    if eager((weight, s, z), (bias,)):  # no dispatcher (see _eager)
        return _qops._qconv1x1_pack_cpu(weight, s, z, bias)
    return torch.ops.mobilekernels.qconv1x1_pack(weight, s, z, bias)


def qconv1x1(x: torch.Tensor, packed: torch.Tensor, out_channels: int, x_scale: float, x_zero_point: int,
             y_scale: float, y_zero_point: int, out_dtype: torch.dtype = torch.uint8,
             activation: str = "none") -> torch.Tensor:
    """int8 1x1 convolution: ``x [N, Cin, H, W]`` uint8/int8 -> ``[N, out_channels, H, W]``
    ``out_dtype``, channels_last, with an optional fused ``relu`` / ``relu6``."""
    y_min, y_max = output_range(activation, y_scale, y_zero_point, out_dtype)
    if type(out_channels) is int and type(x_zero_point) is int and eager((x, packed)):
        return _qops.qconv1x1_eager(x, packed, out_channels, float(x_scale), x_zero_point, float(y_scale),
                                    y_zero_point, out_dtype, y_min, y_max)
    return torch.ops.mobilekernels.qconv1x1(x, packed, out_channels, float(x_scale), x_zero_point,
                                            float(y_scale), y_zero_point, out_dtype, y_min, y_max)


def qdwconv2d_pack(weight: torch.Tensor, w_scale: Union[float, torch.Tensor],
                   w_zero_point: Union[int, torch.Tensor] = 0, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Pack a uint8/int8 depthwise weight ``[C*m, 1, kh, kw]`` (see :func:`qconv1x1_pack`)."""
    s, z = _as_tensor_qparams(w_scale, w_zero_point)
    if eager((weight, s, z), (bias,)):
        return _qops._qdwconv2d_pack_cpu(weight, s, z, bias)
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
    if type(out_channels) is int and type(x_zero_point) is int and eager((x, packed)):
        return _qops.qdwconv2d_eager(x, packed, out_channels, k, s, p, d, float(x_scale), x_zero_point,
                                     float(y_scale), y_zero_point, out_dtype, y_min, y_max)
    return torch.ops.mobilekernels.qdwconv2d(x, packed, out_channels, list(k), list(s), list(p), list(d),
                                             float(x_scale), x_zero_point, float(y_scale), y_zero_point,
                                             out_dtype, y_min, y_max)


class QInvertedResidualPacks(NamedTuple):
    """The int8 packs of one block (``expand`` None for t == 1) and the shape facts they encode."""
    expand: Optional[torch.Tensor]
    dw: torch.Tensor
    project: torch.Tensor
    hidden_channels: int
    out_channels: int
    kernel: int


QParams = tuple  # (scale, zero_point)


def _block_key(x, packs, x_scale, x_zero_point, qparams, stride, padding, activations, residual, out_qparams,
               out_dtype):
    """Every input of ``_block_scalars`` as a flat key, with the type of each scalar (``1 == 1.0 ==
    True`` as dict keys, but a zero point of 1.0 or True must reach validation and fail there).
    Raises (TypeError, ValueError, ...) for malformed arguments: those go uncached to validation."""
    (s0, z0), (s1, z1), (s2, z2) = qparams
    oq = () if out_qparams is None else tuple(out_qparams)
    pad = (padding,) if padding is None or type(padding) in (int, str) else tuple(padding)
    vals = (x_scale, x_zero_point, s0, z0, s1, z1, s2, z2, stride, residual, *oq, *pad, *activations)
    return (x.shape[1], packs.expand is None, packs.out_channels, packs.kernel, out_dtype, len(oq), len(pad), vals,
            tuple(map(type, vals)))


_BLOCK_SCALARS: dict = {}


def _block_call_args(x, packs: QInvertedResidualPacks, x_scale, x_zero_point, qparams: Sequence[QParams], stride,
                     padding, activations, residual, out_qparams, out_dtype):
    if not isinstance(packs, QInvertedResidualPacks):
        raise TypeError(f"packs must be a qops.QInvertedResidualPacks, got {type(packs).__name__}")
    # The scalar arguments are validated and normalised once per distinct (typed) combination:
    # it was half of a small block's ~35 us per-call cost. Only a call that validated is stored.
    try:
        key = _block_key(x, packs, x_scale, x_zero_point, qparams, stride, padding, activations, residual,
                         out_qparams, out_dtype)
        tail = _BLOCK_SCALARS.get(key)
    except Exception:  # malformed or unhashable: validation below says what is wrong
        key = tail = None
    if tail is None:
        tail = _block_scalars(x, packs, x_scale, x_zero_point, qparams, stride, padding, activations, residual,
                              out_qparams, out_dtype)
        if key is not None:
            remember(_BLOCK_SCALARS, key, tail)
    return (x, packs.expand, packs.dw, packs.project, packs.hidden_channels, packs.out_channels, *tail)


def _block_scalars(x, packs, x_scale, x_zero_point, qparams, stride, padding, activations, residual, out_qparams,
                   out_dtype) -> tuple:
    """The op's arguments after ``out_channels``, validated (see ``_block_call_args``)."""
    if isinstance(activations, str) or len(activations) != 3:
        raise ValueError(f"activations must be three names (expand, depthwise, project), got {activations!r}")
    if "hardswish" in activations:
        raise ValueError("hardswish is not a clamp in the quantized range: pass it as a lookup table (luts=, "
                         "lut_qparams=; the stage's activation 'none'), as mobilekernels.quant does")
    if len(qparams) != 3 or any(len(q) != 2 for q in qparams):
        raise ValueError("qparams must be three (scale, zero_point) pairs: expand, depthwise, project outputs")
    if residual is None:
        residual = stride == 1 and x.shape[1] == packs.out_channels
    if residual and out_qparams is None:
        raise ValueError("a residual block needs out_qparams=(scale, zero_point) of the sum")
    k = packs.kernel
    pads = list(conv_padding(k // 2 if padding is None else padding, (k, k), (1, 1), (1, 1)))
    clamps = []
    for i, ((s, z), act) in enumerate(zip(qparams, activations)):
        if i == 0 and packs.expand is None:
            clamps += [0, 0]  # unused: no expand conv
        else:
            clamps += list(output_range(act, s, z, out_dtype))
    os_, oz = out_qparams if residual else (1.0, 0)
    # Tuples: the result is shared by every call with the same key.
    return (k, int(stride), tuple(pads), float(x_scale), x_zero_point, tuple(float(q[0]) for q in qparams),
            tuple(q[1] for q in qparams), tuple(clamps), out_dtype, bool(residual), float(os_), oz)


def _lut_args(luts, lut_qparams) -> tuple:
    """(expand_lut, dw_lut, project_lut, lut_scales, lut_zero_points) of the op from three
    optional tables and their three output (scale, zero_point) pairs."""
    if luts is None:
        return (None, None, None, None, None)
    if isinstance(luts, torch.Tensor) or len(luts) != 3:
        raise ValueError("luts must be three optional tables (expand, depthwise, project)")
    if lut_qparams is None or len(lut_qparams) != 3 or any(q is not None and len(q) != 2 for q in lut_qparams):
        raise ValueError("lut_qparams must be three (scale, zero_point) pairs (None where a stage has no table)")
    qp = [q if q is not None else (1.0, 0) for q in lut_qparams]
    return (*luts, [float(q[0]) for q in qp], [q[1] for q in qp])


def qinverted_residual(x: torch.Tensor, packs: QInvertedResidualPacks, x_scale: float, x_zero_point: int,
                       qparams: Sequence[QParams], stride: int = 1, padding=None,
                       activations: Sequence[str] = ("relu6", "relu6", "none"), residual: Optional[bool] = None,
                       out_qparams: Optional[QParams] = None, out_dtype: torch.dtype = torch.uint8,
                       band_rows: int = 0, luts=None, lut_qparams=None) -> torch.Tensor:
    """Fused int8 inverted residual: ``qconv1x1`` expand -> ``qdwconv2d`` k x k stride ``stride``
    -> ``qconv1x1`` project (-> int8 add of ``x`` when ``residual``), bit-exact to those ops in
    sequence, the expanded tensor never materialised.

    Args:
        x: uint8 / int8 ``[N, Cin, H, W]`` with ``x_scale`` / ``x_zero_point``.
        packs: from ``qconv1x1_pack`` / ``qdwconv2d_pack`` (expand None for t == 1).
        qparams: output ``(scale, zero_point)`` of the expand, depthwise and project convs
            (the expand entry is ignored without an expand pack).
        padding: depthwise padding, any torch form (default ``k // 2``).
        activations: ``none | relu | relu6`` per stage, fused as clamps.
        residual: default ``stride == 1 and Cin == Cout``; needs ``out_qparams`` of the sum.
        out_dtype: dtype of every tensor the block produces.
        band_rows: output rows per band (0 = from the cache budget).
        luts: optional ``(expand, depthwise, project)`` 256-entry ``out_dtype`` tables (None per
            stage without one), applied after that stage's requantization to ``qparams[i]``
            (e.g. Hardswish); the stage then outputs ``lut_qparams[i]`` (scale, zero_point).
    """
    lut_args = _lut_args(luts, lut_qparams)
    args = (*_block_call_args(x, packs, x_scale, x_zero_point, qparams, stride, padding, activations, residual,
                              out_qparams, out_dtype), band_rows, *lut_args)
    if _exact_block_ints(*args) and eager((x, packs.dw, packs.project), (packs.expand, *lut_args[:3])):
        return _qblockops.qinverted_residual_eager(*args)
    return torch.ops.mobilekernels.qinverted_residual(*args)


def _exact_block_ints(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding, x_scale,
                      x_zero_point, scales, zero_points, clamps, out_dtype, residual, out_scale, out_zero_point,
                      band_rows, expand_lut, dw_lut, project_lut, lut_scales, lut_zero_points) -> bool:
    """The op's integer arguments (bound by position, as its schema lists them) that are not
    normalised to int by ``_block_call_args`` / ``_lut_args`` are exact ints (see ``_ints``)."""
    return _ints(hidden_channels, out_channels, kernel, x_zero_point, *zero_points, out_zero_point, band_rows,
                 *(lut_zero_points or ()))


def qadd(a: torch.Tensor, a_scale: float, a_zero_point: int, b: torch.Tensor, b_scale: float, b_zero_point: int,
         out_scale: float, out_zero_point: int, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """int8 residual add of codes ``a``, ``b`` (uint8 or int8, same ``[N, C, H, W]`` shape, e.g.
    a block input and a ``qconv1x1`` output): ``(a - a_zp) * a_scale / out_scale + (b - b_zp) *
    b_scale / out_scale`` in fp32, rounded half to even, ``+ out_zero_point``, clamped to ``dtype``
    (uint8 or int8); channels_last. Bit-exact to ``mobilekernels.quant.modules.qadd`` and to the
    add ``qinverted_residual`` fuses."""
    if (type(a_scale) is float and type(b_scale) is float and type(out_scale) is float
            and _ints(a_zero_point, b_zero_point, out_zero_point) and type(dtype) is torch.dtype and eager((a, b))):
        return _qaddops._qadd_cpu(a, a_scale, a_zero_point, b, b_scale, b_zero_point, out_scale, out_zero_point, dtype)
    return torch.ops.mobilekernels.qadd(a, a_scale, a_zero_point, b, b_scale, b_zero_point, out_scale,
                                        out_zero_point, dtype)


def _ints(*values) -> bool:
    """Every value an exact int (what the op schema would convert others to; else the registered
    op runs and converts or rejects them as before)."""
    for v in values:
        if type(v) is not int:
            return False
    return True


def qinverted_residual_info(x: torch.Tensor, packs: QInvertedResidualPacks, x_scale: float, x_zero_point: int,
                            qparams: Sequence[QParams], stride: int = 1, padding=None,
                            activations: Sequence[str] = ("relu6", "relu6", "none"), residual: Optional[bool] = None,
                            out_qparams: Optional[QParams] = None, out_dtype: torch.dtype = torch.uint8,
                            band_rows: int = 0, num_threads: Optional[int] = None, luts=None,
                            lut_qparams=None) -> dict:
    """Kernels, band rows, per-thread scratch bytes, busy threads and expanded-tensor bytes of
    the :func:`qinverted_residual` call with these arguments (nothing runs)."""
    args = _block_call_args(x, packs, x_scale, x_zero_point, qparams, stride, padding, activations, residual,
                            out_qparams, out_dtype)
    return _qblockops.info(*args, band_rows, num_threads, *_lut_args(luts, lut_qparams))


kernel_names = _qops.kernel_names
