"""torch.library registration of the int8 operators (schemas, CPU impls, fake impls).

Semantics (ONNX QLinearConv, NHWC in memory): for output channel ``oc``

    acc = bias_q[oc] + sum (x - x_zero_point) * (w[oc] - w_zero_point[oc])     (int32, wraps)
    y   = clamp(round_half_even(float32(acc) * s[oc]) + y_zero_point, y_min, y_max)
    s[oc] = float32(x_scale * w_scale[oc] / y_scale)      (computed in float64, rounded once)

``x`` is uint8 or int8 with a per-tensor scale and zero point; weights uint8 or int8 with
per-channel (or one broadcast) scales and zero points; ``bias_q`` int32 in units of
``x_scale * w_scale[oc]``; ``y`` uint8 or int8. ``[y_min, y_max]`` is a fused clamp in the
output dtype (ReLU / ReLU6 in the output range; see ``qops.output_range``). Zero padding of the
depthwise op reads ``x_zero_point`` (real zero). Every ISA path is bit-exact to this.

Ops:
  ``qconv1x1_pack(weight, w_scale, w_zero_point, bias) -> uint8 pack``  weight ``[Cout, Cin, 1, 1]``
  ``qconv1x1(x, packed, out_channels, x_scale, x_zero_point, y_scale, y_zero_point, out_dtype,
  y_min, y_max)``  x ``[N, Cin, H, W]`` (channels_last avoids a copy) -> ``[N, Cout, H, W]`` channels_last
  ``qdwconv2d_pack(weight, w_scale, w_zero_point, bias)``  weight ``[C*m, 1, kh, kw]``
  ``qdwconv2d(x, packed, out_channels, kernel, stride, padding, dilation, x_scale, ...)``
  with ``padding`` as ``[top, bottom, left, right]``.

Paths (forced with ``mobilekernels.set_isa``): scalar, avx2 (exact VPMADDWD), avxvnni /
avx512vnni (VPDPBUSD), amx (TDPBUSD tiles; calls under 4 rows or 2^17 multiply-adds, or
under 32 rows at K <= 64, run avx512vnni), neon, neondot (SDOT), neoni8mm (SMMLA).
``qops.kernel_names()`` tells which kernel runs.

The pack is a plain 1-D uint8 tensor (64-byte header: magic ``MKQ8``, version, kind, Cin, Cout,
kernel; then scales, bias, weight sums, weights), so it travels in a ``state_dict`` and is
checked on every call: a foreign tensor or a pack for another shape is a ``ValueError``.
"""
from __future__ import annotations

import math


import torch

from . import _C
from ._checks import check_tensor, dw_geometry, empty_cl, out_size
from ._eager import remember

NS = "mobilekernels"
HEADER_BYTES = 64
_DTYPE_RANGE = {torch.uint8: (0, 255), torch.int8: (-128, 127)}

_lib = torch.library.Library(NS, "FRAGMENT")
_lib.define("qconv1x1_pack(Tensor weight, Tensor w_scale, Tensor w_zero_point, Tensor? bias) -> Tensor")
_lib.define("qconv1x1(Tensor x, Tensor packed, int out_channels, float x_scale, int x_zero_point, "
            "float y_scale, int y_zero_point, ScalarType out_dtype, int y_min, int y_max) -> Tensor")
_lib.define("qdwconv2d_pack(Tensor weight, Tensor w_scale, Tensor w_zero_point, Tensor? bias) -> Tensor")
_lib.define("qdwconv2d(Tensor x, Tensor packed, int out_channels, int[2] kernel, int[2] stride, "
            "int[4] padding, int[2] dilation, float x_scale, int x_zero_point, float y_scale, "
            "int y_zero_point, ScalarType out_dtype, int y_min, int y_max) -> Tensor")


# ---------------------------------------------------------------------------------------------
# validation (everything here runs before a pointer reaches C++)


def _check_qtensor(name: str, t) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in _DTYPE_RANGE:
        raise TypeError(f"{name} must be torch.uint8 or torch.int8 (use .int_repr() for quantized "
                        f"tensors), got {t.dtype}")
    if t.device.type != "cpu":
        raise ValueError(f"{name} must be on the CPU, got device {t.device}")


def check_scale(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {v}")
    return v


def check_zero_point(name: str, v, dtype: torch.dtype) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    lo, hi = _DTYPE_RANGE[dtype]
    if not lo <= v <= hi:
        raise ValueError(f"{name} {v} is outside the range [{lo}, {hi}] of {dtype}")
    return int(v)


def _check_quant(x, x_scale, x_zp, y_scale, y_zp, out_dtype, y_min, y_max) -> None:
    check_scale("x_scale", x_scale)
    check_scale("y_scale", y_scale)
    check_zero_point("x_zero_point", x_zp, x.dtype)
    if out_dtype not in _DTYPE_RANGE:
        raise TypeError(f"out_dtype must be torch.uint8 or torch.int8, got {out_dtype}")
    check_zero_point("y_zero_point", y_zp, out_dtype)
    lo, hi = _DTYPE_RANGE[out_dtype]
    if not (isinstance(y_min, int) and isinstance(y_max, int) and lo <= y_min <= y_max <= hi):
        raise ValueError(f"[y_min, y_max] = [{y_min}, {y_max}] must be a non-empty range inside [{lo}, {hi}]")


def _check_packed(packed, expected_bytes: int, what: str) -> None:
    check_tensor("packed", packed, torch.uint8, 1)
    if packed.numel() < HEADER_BYTES or not packed.is_contiguous():
        raise ValueError("packed must be a contiguous uint8 pack made by "
                         f"mobilekernels.qops.{what}_pack (got {packed.numel()} bytes)")
    if packed.numel() != expected_bytes:
        raise ValueError(f"packed weight has {packed.numel()} bytes, expected {expected_bytes}: it was "
                         f"packed for another shape (or is not a {what} pack)")


def _weight_qparams(weight, w_scale, w_zero_point, bias, cout: int):
    """Normalise per-channel (or broadcast per-tensor) qparams; returns contiguous tensors."""
    _check_qtensor("weight", weight)
    check_tensor("w_scale", w_scale, torch.float32)
    if not isinstance(w_zero_point, torch.Tensor) or w_zero_point.dtype not in (
            torch.int32, torch.int64, torch.uint8, torch.int8):
        raise TypeError("w_zero_point must be an integer tensor")
    if w_scale.numel() not in (1, cout) or w_zero_point.numel() not in (1, cout):
        raise ValueError(f"w_scale / w_zero_point must have 1 or {cout} (output channels) elements, "
                         f"got {w_scale.numel()} / {w_zero_point.numel()}")
    scale = w_scale.detach().reshape(-1).expand(cout).contiguous()
    if not bool(torch.isfinite(scale).all()) or not bool((scale > 0).all()):
        raise ValueError("w_scale must be finite and > 0")
    lo, hi = _DTYPE_RANGE[weight.dtype]
    zp = w_zero_point.detach().reshape(-1).to(torch.int64).expand(cout)
    if bool((zp < lo).any()) or bool((zp > hi).any()):
        raise ValueError(f"w_zero_point must lie in [{lo}, {hi}] for {weight.dtype} weights")
    zp = zp.to(torch.int32).contiguous()
    if bias is not None:
        check_tensor("bias", bias, torch.int32, 1)
        if bias.numel() != cout:
            raise ValueError(f"bias has {bias.numel()} elements, expected {cout} (output channels); "
                             "quantize a float bias with qops.quantize_bias")
        bias = bias.detach().contiguous()
    return scale, zp, bias


def _packed_bytes_pw(cin: int, cout: int) -> int:
    npad, kpad = -(-cout // 16) * 16, -(-cin // 4) * 4
    return HEADER_BYTES + 16 * npad + npad * kpad


def _packed_bytes_dw(c: int, kh: int, kw: int) -> int:
    cpad = -(-c // 16) * 16
    return HEADER_BYTES + 12 * cpad + 2 * kh * kw * cpad


# ---------------------------------------------------------------------------------------------
# pointwise


def _qconv1x1_pack_cpu(weight, w_scale, w_zero_point, bias):
    _check_qtensor("weight", weight)
    if weight.dim() != 4 or weight.shape[2:] != (1, 1):
        raise ValueError(f"pointwise weight must be [Cout, Cin, 1, 1], got {tuple(weight.shape)}")
    cout, cin = int(weight.shape[0]), int(weight.shape[1])
    if cout == 0 or cin == 0:
        raise ValueError(f"weight has a zero-size dimension: {tuple(weight.shape)}")
    scale, zp, b = _weight_qparams(weight, w_scale, w_zero_point, bias, cout)
    w = weight.detach().contiguous()
    out = torch.empty(_packed_bytes_pw(cin, cout), dtype=torch.uint8)
    _C.q8_gemm_pack(w.data_ptr(), weight.dtype == torch.int8, zp.data_ptr(), scale.data_ptr(),
                    0 if b is None else b.data_ptr(), cin, cout, out.data_ptr())
    return out


@torch.library.register_fake(f"{NS}::qconv1x1_pack")
def _qconv1x1_pack_fake(weight, w_scale, w_zero_point, bias):
    return weight.new_empty((_packed_bytes_pw(weight.shape[1], weight.shape[0]),), dtype=torch.uint8)


def _qconv1x1_call(x, packed, out_channels, x_scale, x_zero_point, y_scale, y_zero_point, out_dtype, y_min, y_max):
    """Every check of a qconv1x1 call; return (output shape, the C++ arguments between the
    input and the output pointers)."""
    _check_qtensor("x", x)
    if x.dim() != 4:
        raise ValueError(f"x must be 4-D [N, Cin, H, W], got shape {tuple(x.shape)}")
    n, cin, h, w = (int(v) for v in x.shape)
    if cin == 0 or out_channels < 1:
        raise ValueError(f"need Cin >= 1 and out_channels >= 1, got {cin} and {out_channels}")
    _check_quant(x, x_scale, x_zero_point, y_scale, y_zero_point, out_dtype, y_min, y_max)
    _check_packed(packed, _packed_bytes_pw(cin, out_channels), "qconv1x1")
    return (n, out_channels, h, w), (n * h * w, cin, out_channels, x_scale, x_zero_point, x.dtype == torch.int8,
                                     y_scale, y_zero_point, out_dtype == torch.int8, y_min, y_max)


def _run_q(kernel, x, packed, out_dtype, call):
    shape, args = call
    out = empty_cl(shape, out_dtype)
    if out.numel() == 0:
        return out
    x = x.contiguous(memory_format=torch.channels_last)  # no copy if already NHWC in memory
    kernel(packed.data_ptr(), packed.numel(), x.data_ptr(), *args, out.data_ptr(), torch.get_num_threads())
    return out


def _qconv1x1_cpu(x, packed, out_channels, x_scale, x_zero_point, y_scale, y_zero_point, out_dtype,
                  y_min, y_max):
    call = _qconv1x1_call(x, packed, out_channels, x_scale, x_zero_point, y_scale, y_zero_point, out_dtype, y_min,
                          y_max)
    return _run_q(_C.q8_gemm, x, packed, out_dtype, call)


# Validated calls of the functional fast paths (qops.qconv1x1 / qdwconv2d), per (op, x shape and
# dtype, pack size, every scalar argument): everything the checks read, so an entry cannot go
# stale; the tensors' kinds are checked at every call, the pack header again by C++.
_EAGER_CALLS: dict = {}


def _eager_ok(x, packed) -> bool:
    return (x.is_cpu and packed.dtype is torch.uint8 and packed.is_cpu and packed.dim() == 1
            and packed.is_contiguous())


def qconv1x1_eager(x, packed, out_channels, x_scale, x_zero_point, y_scale, y_zero_point, out_dtype, y_min, y_max):
    """The qconv1x1 CPU impl for plain tensors and exactly typed scalars (see ``_eager``, qops)."""
    key = ("pw", x.shape, x.dtype, packed.numel(), out_channels, x_scale, x_zero_point, y_scale, y_zero_point,
           out_dtype, y_min, y_max)
    call = _EAGER_CALLS.get(key)
    if call is None or not _eager_ok(x, packed):
        call = remember(_EAGER_CALLS, key, _qconv1x1_call(x, packed, out_channels, x_scale, x_zero_point, y_scale,
                                                          y_zero_point, out_dtype, y_min, y_max))
    return _run_q(_C.q8_gemm, x, packed, out_dtype, call)


@torch.library.register_fake(f"{NS}::qconv1x1")
def _qconv1x1_fake(x, packed, out_channels, x_scale, x_zero_point, y_scale, y_zero_point, out_dtype,
                   y_min, y_max):
    n, _, h, w = x.shape
    return x.new_empty((n, out_channels, h, w), dtype=out_dtype).contiguous(memory_format=torch.channels_last)


_lib.impl("qconv1x1_pack", _qconv1x1_pack_cpu, "CPU")
_lib.impl("qconv1x1", _qconv1x1_cpu, "CPU")


# ---------------------------------------------------------------------------------------------
# depthwise


def _qdwconv2d_pack_cpu(weight, w_scale, w_zero_point, bias):
    _check_qtensor("weight", weight)
    if weight.dim() != 4 or weight.shape[1] != 1:
        raise ValueError(f"depthwise weight must be [C*m, 1, kh, kw], got {tuple(weight.shape)}")
    c, _, kh, kw = (int(v) for v in weight.shape)
    if c == 0 or kh == 0 or kw == 0:
        raise ValueError(f"weight has a zero-size dimension: {tuple(weight.shape)}")
    scale, zp, b = _weight_qparams(weight, w_scale, w_zero_point, bias, c)
    w = weight.detach().contiguous()
    out = torch.empty(_packed_bytes_dw(c, kh, kw), dtype=torch.uint8)
    _C.q8_dwconv_pack(w.data_ptr(), weight.dtype == torch.int8, zp.data_ptr(), scale.data_ptr(),
                      0 if b is None else b.data_ptr(), c, kh, kw, out.data_ptr())
    return out


@torch.library.register_fake(f"{NS}::qdwconv2d_pack")
def _qdwconv2d_pack_fake(weight, w_scale, w_zero_point, bias):
    c, _, kh, kw = weight.shape
    return weight.new_empty((_packed_bytes_dw(c, kh, kw),), dtype=torch.uint8)


def _qdwconv2d_call(x, packed, out_channels, kernel, stride, padding, dilation, x_scale, x_zero_point, y_scale,
                    y_zero_point, out_dtype, y_min, y_max):
    """Every check of a qdwconv2d call; (output shape, C++ arguments) as :func:`_qconv1x1_call`."""
    _check_qtensor("x", x)
    n, c, h, w, m, oh, ow = dw_geometry(x.shape, out_channels, kernel, stride, padding, dilation)
    _check_quant(x, x_scale, x_zero_point, y_scale, y_zero_point, out_dtype, y_min, y_max)
    _check_packed(packed, _packed_bytes_dw(out_channels, kernel[0], kernel[1]), "qdwconv2d")
    return (n, out_channels, oh, ow), (n, h, w, c, m, kernel[0], kernel[1], stride[0], stride[1], dilation[0],
                                       dilation[1], padding[0], padding[2], oh, ow, x_scale, x_zero_point,
                                       x.dtype == torch.int8, y_scale, y_zero_point, out_dtype == torch.int8, y_min,
                                       y_max)


def _qdwconv2d_cpu(x, packed, out_channels, kernel, stride, padding, dilation, x_scale, x_zero_point,
                   y_scale, y_zero_point, out_dtype, y_min, y_max):
    call = _qdwconv2d_call(x, packed, out_channels, kernel, stride, padding, dilation, x_scale, x_zero_point, y_scale,
                           y_zero_point, out_dtype, y_min, y_max)
    return _run_q(_C.q8_dwconv, x, packed, out_dtype, call)


def qdwconv2d_eager(x, packed, out_channels, kernel, stride, padding, dilation, x_scale, x_zero_point, y_scale,
                    y_zero_point, out_dtype, y_min, y_max):
    """The qdwconv2d CPU impl for plain tensors and exactly typed scalars (normalised tuples)."""
    key = ("dw", x.shape, x.dtype, packed.numel(), out_channels, kernel, stride, padding, dilation, x_scale,
           x_zero_point, y_scale, y_zero_point, out_dtype, y_min, y_max)
    call = _EAGER_CALLS.get(key)
    if call is None or not _eager_ok(x, packed):
        call = remember(_EAGER_CALLS, key, _qdwconv2d_call(x, packed, out_channels, kernel, stride, padding,
                                                           dilation, x_scale, x_zero_point, y_scale, y_zero_point,
                                                           out_dtype, y_min, y_max))
    return _run_q(_C.q8_dwconv, x, packed, out_dtype, call)


@torch.library.register_fake(f"{NS}::qdwconv2d")
def _qdwconv2d_fake(x, packed, out_channels, kernel, stride, padding, dilation, x_scale, x_zero_point,
                    y_scale, y_zero_point, out_dtype, y_min, y_max):
    n, _, h, w = x.shape
    oh = out_size(h, kernel[0], stride[0], dilation[0], padding[0], padding[1])
    ow = out_size(w, kernel[1], stride[1], dilation[1], padding[2], padding[3])
    return x.new_empty((n, out_channels, oh, ow), dtype=out_dtype).contiguous(memory_format=torch.channels_last)


_lib.impl("qdwconv2d_pack", _qdwconv2d_pack_cpu, "CPU")
_lib.impl("qdwconv2d", _qdwconv2d_cpu, "CPU")


def kernel_names() -> dict:
    """The int8 kernels the active ISA level runs."""
    return {"qconv1x1": _C.q8_gemm_kernel_name(), "qdwconv2d": _C.q8_dwconv_kernel_name()}
