"""torch.library registration of the fused int8 inverted-residual block (schema, CPU impl, fake).

``qinverted_residual(x, expand_packed?, dw_packed, project_packed, hidden_channels,
out_channels, kernel, stride, padding[4], x_scale, x_zero_point, scales[3], zero_points[3],
clamps[6], out_dtype, residual, out_scale, out_zero_point, band_rows) -> Tensor``

computes, bit for bit, what these unfused ops compute (semantics in ``_qops``)::

    h = qconv1x1(x, expand_packed, hidden, x_scale, x_zp, scales[0], zero_points[0], out_dtype,
                 clamps[0], clamps[1])                       # skipped when expand_packed is None
    d = qdwconv2d(h, dw_packed, hidden, kernel, stride, padding, 1, scales[0], zero_points[0],
                  scales[1], zero_points[1], out_dtype, clamps[2], clamps[3])
    y = qconv1x1(d, project_packed, out_channels, scales[1], zero_points[1], scales[2],
                 zero_points[2], out_dtype, clamps[4], clamps[5])
    if residual:  # the int8 add of mobilekernels.quant (quant.modules.qadd)
        y = clamp(round_half_even(f32(x - x_zp) * f32(x_scale / out_scale)
                                  + f32(y - zero_points[2]) * f32(scales[2] / out_scale))
                  + out_zero_point, out_dtype range)

without materialising ``h``: bands of output rows with the expanded rows they need in a
per-thread scratch (see csrc/ops/q8_inverted_residual_op.h). ``x`` uint8 or int8 NCHW-shaped
(channels_last read in place); every produced tensor is ``out_dtype`` (uint8 or int8); the
output is channels_last. Without ``expand_packed`` the depthwise reads ``x`` (t == 1; its
``scales[0]`` / ``zero_points[0]`` / ``clamps[0:2]`` are ignored). Activations are clamps in the
quantized range (``qops.output_range``): ReLU and ReLU6 fuse, Hardswish does not (no clamp
expresses it; such blocks run unfused). ``band_rows`` 0 = chosen from the cache budget.
"""
from __future__ import annotations

import torch

from . import _C
from ._checks import ir_geometry, out_size
from ._qops import (NS, _DTYPE_RANGE, _check_packed, _check_qtensor, _packed_bytes_dw, _packed_bytes_pw,
                    check_scale, check_zero_point)

_lib = torch.library.Library(NS, "FRAGMENT")
_lib.define("qinverted_residual(Tensor x, Tensor? expand_packed, Tensor dw_packed, Tensor project_packed, "
            "int hidden_channels, int out_channels, int kernel, int stride, int[4] padding, float x_scale, "
            "int x_zero_point, float[] scales, int[] zero_points, int[] clamps, ScalarType out_dtype, "
            "bool residual, float out_scale, int out_zero_point, int band_rows) -> Tensor")


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
          residual, out_scale, out_zp, band_rows):
    _check_qtensor("x", x)
    expand = epk is not None
    cin = int(x.shape[1]) if x.dim() == 4 else -1
    if expand:  # the expand pack's header says which input width it was made for
        _check_packed(epk, epk.numel() if isinstance(epk, torch.Tensor) else 0, "qconv1x1")
        head = bytes(epk[:16].tolist())
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
    geometry = [n, h, w, cin, chid, cout, kernel, stride, *(int(p) for p in padding)]
    return (n, oh, ow), (geometry, expand, bool(residual), band_rows, x.dtype == torch.int8,
                         out_dtype == torch.int8, sc, zp, cl)


def _qinverted_residual_cpu(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding, x_scale,
                            x_zero_point, scales, zero_points, clamps, out_dtype, residual, out_scale,
                            out_zero_point, band_rows):
    (n, oh, ow), args = _args(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding, x_scale,
                              x_zero_point, scales, zero_points, clamps, out_dtype, residual, out_scale,
                              out_zero_point, band_rows)
    out = torch.empty((n, out_channels, oh, ow), dtype=out_dtype, memory_format=torch.channels_last)
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
                             out_zero_point, band_rows):
    n, _, h, w = x.shape
    oh = out_size(h, kernel, stride, 1, padding[0], padding[1])
    ow = out_size(w, kernel, stride, 1, padding[2], padding[3])
    return x.new_empty((n, out_channels, oh, ow), dtype=out_dtype).contiguous(memory_format=torch.channels_last)


_lib.impl("qinverted_residual", _qinverted_residual_cpu, "CPU")


def info(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding, x_scale, x_zero_point, scales,
         zero_points, clamps, out_dtype=torch.uint8, residual=False, out_scale=1.0, out_zero_point=0, band_rows=0,
         num_threads=None) -> dict:
    """Kernels, band height, per-thread scratch bytes, busy threads and the bytes of the
    expanded tensor the call avoids (only the shape and dtype of ``x`` are read)."""
    _, args = _args(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding, x_scale, x_zero_point,
                    scales, zero_points, clamps, out_dtype, residual, out_scale, out_zero_point, band_rows)
    # Byte 27 of a pack header: some channel keeps a weight zero point (int32 row sums needed).
    row_sums = any(int(p[27]) != 0 for p in (epk, ppk) if p is not None)
    nt = torch.get_num_threads() if num_threads is None else num_threads
    return _C.q8_inverted_residual_info(*args, row_sums, nt)
