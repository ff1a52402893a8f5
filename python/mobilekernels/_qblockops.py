"""torch.library registration of the fused int8 inverted-residual block (schema, CPU impl, fake).

``qinverted_residual(x, expand_packed?, dw_packed, project_packed, hidden_channels,
out_channels, kernel, stride, padding[4], x_scale, x_zero_point, scales[3], zero_points[3],
clamps[6], out_dtype, residual, out_scale, out_zero_point, band_rows, expand_lut=None, dw_lut=None,
project_lut=None, lut_scales=None, lut_zero_points=None) -> Tensor``

computes, bit for bit, what these unfused ops compute (semantics in ``_qops``)::

    h = qconv1x1(x, expand_packed, hidden, x_scale, x_zp, scales[0], zero_points[0], out_dtype,
                 clamps[0], clamps[1])                       # skipped when expand_packed is None
    h, hs, hz = expand_lut[h], lut_scales[0], lut_zero_points[0]  # only with expand_lut; else
                                                             # hs, hz = scales[0], zero_points[0]
    d = qdwconv2d(h, dw_packed, hidden, kernel, stride, padding, 1, hs, hz,
                  scales[1], zero_points[1], out_dtype, clamps[2], clamps[3])
    d, ds, dz = dw_lut[d], lut_scales[1], lut_zero_points[1]  # likewise
    y = qconv1x1(d, project_packed, out_channels, ds, dz, scales[2],
                 zero_points[2], out_dtype, clamps[4], clamps[5])
    y, ys, yz = project_lut[y], lut_scales[2], lut_zero_points[2]  # likewise
    if residual:  # the int8 add of mobilekernels.quant (quant.modules.qadd)
        y = clamp(round_half_even(f32(x - x_zp) * f32(x_scale / out_scale)
                                  + f32(y - yz) * f32(ys / out_scale))
                  + out_zero_point, out_dtype range)

without materialising ``h``: bands of output rows with the expanded rows they need in a
per-thread scratch (see csrc/ops/q8_inverted_residual_op.h). ``x`` uint8 or int8 NCHW-shaped
(channels_last read in place); every produced tensor is ``out_dtype`` (uint8 or int8); the
output is channels_last. Without ``expand_packed`` the depthwise reads ``x`` (t == 1; its
``scales[0]`` / ``zero_points[0]`` / ``clamps[0:2]`` are ignored). Activations are clamps in the
quantized range (``qops.output_range``) and/or, per stage, a 256-entry lookup table
(``out_dtype``, indexed by the code's byte: ``lut[code]`` with Python's negative indexing for
int8) applied after the stage's requantization, as ``mobilekernels.quant`` runs Hardswish and
other elementwise activations unfused: ``scales`` / ``zero_points`` / ``clamps`` are then the
table's input and ``lut_scales[i]`` / ``lut_zero_points[i]`` the stage's output qparams.
``band_rows`` 0 = chosen from the cache budget.
"""
from __future__ import annotations

import ctypes

import torch

from . import _C
from ._checks import empty_cl, ir_geometry, out_size
from ._eager import remember
from ._qops import (HEADER_BYTES, NS, _DTYPE_RANGE, _check_packed, _check_qtensor, _packed_bytes_dw, _packed_bytes_pw,
                    check_scale, check_zero_point)

_lib = torch.library.Library(NS, "FRAGMENT")
_lib.define("qinverted_residual(Tensor x, Tensor? expand_packed, Tensor dw_packed, Tensor project_packed, "
            "int hidden_channels, int out_channels, int kernel, int stride, int[4] padding, float x_scale, "
            "int x_zero_point, float[] scales, int[] zero_points, int[] clamps, ScalarType out_dtype, "
            "bool residual, float out_scale, int out_zero_point, int band_rows, Tensor? expand_lut=None, "
            "Tensor? dw_lut=None, Tensor? project_lut=None, float[]? lut_scales=None, "
            "int[]? lut_zero_points=None) -> Tensor")

_STAGES = ("expand", "dw", "project")


def _luts(luts, lut_scales, lut_zps, out_dtype, expand):
    """Validate the optional per-stage tables; returns (addresses, scales, zero points) for C++
    (address 0 = no table). The tensors must outlive the call: they are the caller's."""
    if all(t is None for t in luts):
        return [0, 0, 0], [1.0, 1.0, 1.0], [0, 0, 0]
    if lut_scales is None or lut_zps is None or len(lut_scales) != 3 or len(lut_zps) != 3:
        raise ValueError("lookup tables need lut_scales and lut_zero_points: three each (expand, dw, project; "
                         "the entries of stages without a table are ignored)")
    addr, sc, zp = [], [], []
    for i, (t, stage) in enumerate(zip(luts, _STAGES)):
        if t is None:
            addr.append(0), sc.append(1.0), zp.append(0)
            continue
        if i == 0 and not expand:
            raise ValueError("expand_lut given without an expand pack")
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{stage}_lut must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype != out_dtype:
            raise TypeError(f"{stage}_lut must have the output dtype {out_dtype} (one code per input byte), "
                            f"got {t.dtype}")
        if t.device.type != "cpu" or t.dim() != 1 or t.numel() != 256 or not t.is_contiguous():
            raise ValueError(f"{stage}_lut must be a contiguous 1-D CPU tensor of 256 entries, got shape "
                             f"{tuple(t.shape)} on {t.device}")
        addr.append(t.data_ptr())
        sc.append(check_scale(f"{stage} lut_scale", lut_scales[i]))
        zp.append(check_zero_point(f"{stage} lut_zero_point", lut_zps[i], out_dtype))
    return addr, sc, zp


def _quant(x_dtype, x_scale, x_zp, scales, zps, clamps, out_dtype, residual, out_scale, out_zp, expand):
    """Validate every scale, zero point and clamp (before any pointer reaches C++)."""
    if out_dtype not in _DTYPE_RANGE:
        raise TypeError(f"out_dtype must be torch.uint8 or torch.int8, got {out_dtype}")
    if len(scales) != 3 or len(zps) != 3 or len(clamps) != 6:
        raise ValueError(f"need 3 scales, 3 zero points (expand, depthwise, project) and 6 clamps "
                         f"(min, max per stage); got {len(scales)}, {len(zps)}, {len(clamps)}")
    check_scale("x_scale", x_scale)
    check_zero_point("x_zero_point", x_zp, x_dtype)
    lo, hi = _DTYPE_RANGE[out_dtype]
    for i, stage in enumerate(("expand", "dw", "project")):
        if i == 0 and not expand:
            continue
        check_scale(f"{stage} scale", scales[i])
        check_zero_point(f"{stage} zero point", zps[i], out_dtype)
        mn, mx = clamps[2 * i], clamps[2 * i + 1]
        if not lo <= mn <= mx <= hi:
            raise ValueError(f"{stage} clamp [{mn}, {mx}] must be a non-empty range inside [{lo}, {hi}]")
    if residual:
        check_scale("out_scale", out_scale)
        check_zero_point("out_zero_point", out_zp, out_dtype)


def _args(x, epk, dpk, ppk, chid, cout, kernel, stride, padding, x_scale, x_zp, scales, zps, clamps, out_dtype,
          residual, out_scale, out_zp, band_rows, elut=None, dlut=None, plut=None, lut_scales=None, lut_zps=None):
    _check_qtensor("x", x)
    expand = epk is not None
    cin = int(x.shape[1]) if x.dim() == 4 else -1
    if expand:  # the expand pack's header says which input width it was made for
        _check_packed(epk, epk.numel() if isinstance(epk, torch.Tensor) else 0, "qconv1x1")
        head = _header(epk)
        if head[:4] != b"MKQ8":
            raise ValueError("expand_packed is not a mobilekernels int8 pack (bad magic): make it with "
                             "qops.qconv1x1_pack")
        cin = int.from_bytes(head[8:12], "little", signed=True)
    n, h, w, oh, ow = ir_geometry(x.shape, cin, chid, cout, kernel, stride, list(padding), residual)
    if not expand and chid != cin:
        raise ValueError(f"without an expand pack the hidden width ({chid}) must equal the input channels ({cin})")
    if expand:
        _check_packed(epk, _packed_bytes_pw(cin, chid), "qconv1x1")
    _check_packed(dpk, _packed_bytes_dw(chid, kernel, kernel), "qdwconv2d")
    _check_packed(ppk, _packed_bytes_pw(chid, cout), "qconv1x1")
    _quant(x.dtype, x_scale, x_zp, scales, zps, clamps, out_dtype, residual, out_scale, out_zp, expand)
    if isinstance(band_rows, bool) or not isinstance(band_rows, int) or band_rows < 0:
        raise ValueError(f"band_rows must be an int >= 0 (0 = automatic), got {band_rows!r}")
    sc = [float(x_scale)] + [float(s) if (i or expand) else 1.0 for i, s in enumerate(scales)] + \
         [float(out_scale) if residual else 1.0]
    lo = _DTYPE_RANGE[out_dtype][0]
    zp = [int(x_zp)] + [int(z) if (i or expand) else lo for i, z in enumerate(zps)] + [int(out_zp) if residual else lo]
    cl = [int(c) if (i >= 2 or expand) else lo for i, c in enumerate(clamps)]
    luts = _luts((elut, dlut, plut), lut_scales, lut_zps, out_dtype, expand)
    geometry = [n, h, w, cin, chid, cout, kernel, stride, *(int(p) for p in padding)]
    return (n, oh, ow), (geometry, expand, bool(residual), band_rows, x.dtype == torch.int8,
                         out_dtype == torch.int8, sc, zp, cl, *luts)


def _header(pack: torch.Tensor) -> bytes:
    """The first 16 bytes of a pack (checked: a contiguous CPU uint8 tensor of >= 64 bytes)."""
    return ctypes.string_at(pack.data_ptr(), 16)


def _qinverted_residual_cpu(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding, x_scale,
                            x_zero_point, scales, zero_points, clamps, out_dtype, residual, out_scale,
                            out_zero_point, band_rows, expand_lut=None, dw_lut=None, project_lut=None,
                            lut_scales=None, lut_zero_points=None):
    call = _args(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding, x_scale, x_zero_point,
                 scales, zero_points, clamps, out_dtype, residual, out_scale, out_zero_point, band_rows, expand_lut,
                 dw_lut, project_lut, lut_scales, lut_zero_points)
    return _run(x, epk, dpk, ppk, out_channels, out_dtype, call)


# Validated calls of the functional fast path (qops.qinverted_residual without lookup tables),
# per (x shape and dtype, expand pack header, pack sizes, every scalar argument): everything
# _args reads, so an entry cannot go stale; the tensors' kinds are checked at every call, the
# pack headers again by C++. Bounded (_eager.remember).
_EAGER_CALLS: dict = {}


def _pack_ok(t) -> bool:
    return t.dtype is torch.uint8 and t.is_cpu and t.dim() == 1 and t.numel() >= HEADER_BYTES and t.is_contiguous()


def qinverted_residual_eager(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding, x_scale,
                             x_zero_point, scales, zero_points, clamps, out_dtype, residual, out_scale,
                             out_zero_point, band_rows, expand_lut=None, dw_lut=None, project_lut=None,
                             lut_scales=None, lut_zero_points=None):
    """The CPU impl for plain tensors (see ``_eager``); scalars of exact types (qops normalises
    them). Calls without lookup tables reuse their validated C++ arguments."""
    if (expand_lut is not None or dw_lut is not None or project_lut is not None or not x.is_cpu
            or not _pack_ok(dpk) or not _pack_ok(ppk) or (epk is not None and not _pack_ok(epk))):
        return _qinverted_residual_cpu(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding,
                                       x_scale, x_zero_point, scales, zero_points, clamps, out_dtype, residual,
                                       out_scale, out_zero_point, band_rows, expand_lut, dw_lut, project_lut,
                                       lut_scales, lut_zero_points)
    key = (x.shape, x.dtype, None if epk is None else (_header(epk), epk.numel()), dpk.numel(), ppk.numel(),
           hidden_channels, out_channels, kernel, stride, tuple(padding), x_scale, x_zero_point, tuple(scales),
           tuple(zero_points), tuple(clamps), out_dtype, residual, out_scale, out_zero_point, band_rows)
    call = _EAGER_CALLS.get(key)
    if call is None:
        call = remember(_EAGER_CALLS, key, _args(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride,
                                                 padding, x_scale, x_zero_point, scales, zero_points, clamps,
                                                 out_dtype, residual, out_scale, out_zero_point, band_rows))
    return _run(x, epk, dpk, ppk, out_channels, out_dtype, call)


def _run(x, epk, dpk, ppk, out_channels, out_dtype, call):
    (n, oh, ow), args = call
    out = empty_cl((n, out_channels, oh, ow), out_dtype)
    if n == 0:
        return out
    x = x.contiguous(memory_format=torch.channels_last)  # no copy when already NHWC in memory
    _C.q8_inverted_residual(x.data_ptr(), 0 if epk is None else epk.data_ptr(), 0 if epk is None else epk.numel(),
                            dpk.data_ptr(), dpk.numel(), ppk.data_ptr(), ppk.numel(), out.data_ptr(), *args,
                            torch.get_num_threads())
    return out


@torch.library.register_fake(f"{NS}::qinverted_residual")
def _qinverted_residual_fake(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding, x_scale,
                             x_zero_point, scales, zero_points, clamps, out_dtype, residual, out_scale,
                             out_zero_point, band_rows, expand_lut=None, dw_lut=None, project_lut=None,
                             lut_scales=None, lut_zero_points=None):
    n, _, h, w = x.shape
    oh = out_size(h, kernel, stride, 1, padding[0], padding[1])
    ow = out_size(w, kernel, stride, 1, padding[2], padding[3])
    return x.new_empty((n, out_channels, oh, ow), dtype=out_dtype).contiguous(memory_format=torch.channels_last)


_lib.impl("qinverted_residual", _qinverted_residual_cpu, "CPU")


def info(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding, x_scale, x_zero_point, scales,
         zero_points, clamps, out_dtype=torch.uint8, residual=False, out_scale=1.0, out_zero_point=0, band_rows=0,
         num_threads=None, expand_lut=None, dw_lut=None, project_lut=None, lut_scales=None,
         lut_zero_points=None) -> dict:
    """Kernels, band height, output columns per depthwise + project step (``chunk_cols``: the
    output width unless rows run in column chunks), per-thread scratch bytes, busy threads and
    the bytes of the expanded tensor of the whole batch the call avoids (only the shape and
    dtype of ``x`` are read)."""
    _, args = _args(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding, x_scale, x_zero_point,
                    scales, zero_points, clamps, out_dtype, residual, out_scale, out_zero_point, band_rows,
                    expand_lut, dw_lut, project_lut, lut_scales, lut_zero_points)
    # Byte 27 of a pack header: some channel keeps a weight zero point (int32 row sums needed).
    row_sums = any(int(p[27]) != 0 for p in (epk, ppk) if p is not None)
    nt = torch.get_num_threads() if num_threads is None else num_threads
    return _C.q8_inverted_residual_info(*args, row_sums, nt)
