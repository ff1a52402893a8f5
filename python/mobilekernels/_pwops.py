"""torch.library registration of the fp32 pointwise ops and the fused inverted-residual block
(schemas, CPU impls, fake impls, autograd for conv1x1). CPU impls call the torch-free
extension on ``data_ptr()``s with the GIL released; a channels_last input is read in place.

1x1 convolution (fp32), ``x [N, Cin, H, W] -> [N, Cout, H, W]`` channels_last:
  ``conv1x1(x, weight [Cout, Cin, 1, 1], bias?, activation)``: differentiable.
  ``conv1x1_pack(weight, bias?)``: the 1-D float32 pack the kernels read (self-describing).
  ``conv1x1_packed(x, packed, out_channels, activation)``: inference on a prepacked weight.

Fused inverted residual (fp32, inference), expand 1x1 -> depthwise kxk -> project 1x1 (+ x):
  ``inverted_residual(x, expand_weight?, expand_bias?, dw_weight, dw_bias?, project_weight,
      project_bias?, stride, padding[4], act_expand, act_dw, act_project, residual)``
  ``inverted_residual_packed(x, expand_packed?, dw_packed, project_packed, hidden_channels,
      out_channels, kernel, stride, padding[4], act_expand, act_dw, act_project, residual,
      band_rows)``: on packs from ``conv1x1_pack`` / ``dwconv2d_pack``; ``band_rows`` 0 = auto.
  No expand weight = the t == 1 block (hidden == in channels). Padding is (top, bottom, left,
  right) of the depthwise conv.
"""
from __future__ import annotations

import torch

from . import _C
from ._checks import check_tensor
from ._checks import empty_cl, enum_code, ir_geometry, out_size
from ._eager import remember
from ._ops import ACTIVATIONS, NS, _nhwc, pack_dw

_lib = torch.library.Library(NS, "FRAGMENT")
_lib.define("conv1x1(Tensor x, Tensor weight, Tensor? bias, str activation) -> Tensor")
_lib.define("conv1x1_pack(Tensor weight, Tensor? bias) -> Tensor")
_lib.define("conv1x1_packed(Tensor x, Tensor packed, int out_channels, str activation) -> Tensor")
_lib.define("inverted_residual(Tensor x, Tensor? expand_weight, Tensor? expand_bias, Tensor dw_weight, "
            "Tensor? dw_bias, Tensor project_weight, Tensor? project_bias, int stride, int[4] padding, "
            "str act_expand, str act_dw, str act_project, bool residual) -> Tensor")
_lib.define("inverted_residual_packed(Tensor x, Tensor? expand_packed, Tensor dw_packed, "
            "Tensor project_packed, int hidden_channels, int out_channels, int kernel, int stride, "
            "int[4] padding, str act_expand, str act_dw, str act_project, bool residual, "
            "int band_rows) -> Tensor")


def _act(name: str) -> int:
    return enum_code("activation", name, ACTIVATIONS)


def _check_x(x, channels: int | None = None) -> None:
    check_tensor("x", x, torch.float32, 4)
    if min(x.shape[1:]) == 0:
        raise ValueError(f"x has a zero-size dimension (shape {tuple(x.shape)}); only an empty batch is allowed")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"x has {x.shape[1]} channels, the weight expects {channels}")


def _check_pw_weight(name: str, weight, bias, in_channels: int | None = None) -> None:
    check_tensor(name, weight, torch.float32, 4)
    if tuple(weight.shape[2:]) != (1, 1) or min(weight.shape[:2]) == 0:
        raise ValueError(f"{name} must have shape [Cout, Cin, 1, 1] with Cout, Cin > 0, got {tuple(weight.shape)}")
    if in_channels is not None and weight.shape[1] != in_channels:
        raise ValueError(f"{name} reads {weight.shape[1]} channels, expected {in_channels}")
    if bias is not None:
        check_tensor(f"{name} bias", bias, torch.float32, 1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"{name} bias has {bias.shape[0]} elements, expected {weight.shape[0]}")


def _check_packed(name: str, packed) -> None:
    check_tensor(name, packed, torch.float32, 1)
    if not packed.is_contiguous():
        raise ValueError(f"{name} must be contiguous (use the tensor the pack op returned)")


def pack_pw(weight: torch.Tensor, bias) -> torch.Tensor:
    """The GEMM pack of a ``[Cout, Cin, 1, 1]`` weight (and bias)."""
    _check_pw_weight("weight", weight, bias)
    cout, cin = weight.shape[:2]
    packed = torch.empty(_C.f32_gemm_packed_size(cin, cout), dtype=torch.float32)
    # (no detach(): only the bytes are read, and contiguous() returns the tensor itself when it is)
    w = weight.contiguous()
    b = bias.contiguous() if bias is not None else None
    _C.f32_gemm_pack(w.data_ptr(), b.data_ptr() if b is not None else 0, cin, cout, packed.data_ptr())
    return packed


def conv1x1_kernel_name() -> str:
    """Name of the GEMM tile the active ISA level runs (e.g. ``avx2/6x16``)."""
    return _C.f32_conv1x1_kernel_name()


# ---------------------------------------------------------------------------------------------
# conv1x1


def _run_pw(x, packed, cout: int, activation: str) -> torch.Tensor:
    n, cin, h, w = x.shape
    act = _act(activation)
    out = empty_cl((n, cout, h, w), torch.float32)
    if n == 0:
        return out
    x = _nhwc(x)
    # The C++ side checks the pack header against (cin, cout) before any kernel reads it.
    _C.f32_conv1x1(x.data_ptr(), packed.data_ptr(), packed.numel(), out.data_ptr(), n * h * w, cin, cout,
                   act, torch.get_num_threads())
    return out


def _conv1x1_cpu(x, weight, bias, activation):
    _check_x(x)
    _check_pw_weight("weight", weight, bias, x.shape[1])
    _act(activation)
    return _run_pw(x, pack_pw(weight, bias), weight.shape[0], activation)


@torch.library.register_fake(f"{NS}::conv1x1")
def _conv1x1_fake(x, weight, bias, activation):
    n, _, h, w = x.shape
    return x.new_empty((n, weight.shape[0], h, w)).contiguous(memory_format=torch.channels_last)


def _pw_setup_context(ctx, inputs, output):
    x, weight, bias, activation = inputs
    ctx.conf = (activation, bias is not None)
    ctx.save_for_backward(x, weight, bias, output)


def _pw_backward(ctx, grad):
    # PyTorch's convolution_backward: exact, and traceable by AOT autograd.
    x, weight, bias, out = ctx.saved_tensors
    activation, has_bias = ctx.conf
    if activation == "relu":
        grad = grad * (out > 0)
    elif activation == "relu6":
        grad = grad * ((out > 0) & (out < 6))
    elif activation == "hardswish":
        z = torch.ops.aten.convolution(x, weight, bias, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)
        grad = torch.ops.aten.hardswish_backward(grad, z)
    gx, gw, gb = torch.ops.aten.convolution_backward(
        grad, x, weight, [weight.shape[0]] if has_bias else None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
        [ctx.needs_input_grad[0], ctx.needs_input_grad[1], has_bias and ctx.needs_input_grad[2]])
    return gx, gw, gb, None


_lib.impl("conv1x1", _conv1x1_cpu, "CPU")
torch.library.register_autograd(f"{NS}::conv1x1", _pw_backward, setup_context=_pw_setup_context)
_lib.impl("conv1x1_pack", pack_pw, "CPU")


@torch.library.register_fake(f"{NS}::conv1x1_pack")
def _conv1x1_pack_fake(weight, bias):
    cout, cin = weight.shape[:2]
    return weight.new_empty((_C.f32_gemm_packed_size(cin, cout),))


def _check_pw_packed(x, packed, out_channels) -> None:
    _check_x(x)
    _check_packed("packed", packed)
    if out_channels < 1:
        raise ValueError(f"out_channels must be >= 1, got {out_channels}")


def _conv1x1_packed_cpu(x, packed, out_channels, activation):
    _check_pw_packed(x, packed, out_channels)
    return _run_pw(x, packed, out_channels, activation)


@torch.library.register_fake(f"{NS}::conv1x1_packed")
def _conv1x1_packed_fake(x, packed, out_channels, activation):
    n, _, h, w = x.shape
    return x.new_empty((n, out_channels, h, w)).contiguous(memory_format=torch.channels_last)


_lib.impl("conv1x1_packed", _conv1x1_packed_cpu, "CPU")


# ---------------------------------------------------------------------------------------------
# inverted residual


def _ir_geometry(x_shape, cin, chid, cout, kernel, stride, padding, acts, residual):
    """Validate a fused block call (shapes as the int8 block, plus the activations); return
    (N, H, W, OH, OW)."""
    for a in acts:
        _act(a)
    return ir_geometry(x_shape, cin, chid, cout, kernel, stride, padding, residual)


def _ir_call(x_shape, cin, chid, cout, kernel, stride, padding, acts, residual, band_rows, expand):
    """Validate a fused block call; return ((OH, OW), the C++ arguments n .. band_rows)."""
    n, h, w, oh, ow = _ir_geometry(x_shape, cin, chid, cout, kernel, stride, padding, acts, residual)
    if band_rows < 0:
        raise ValueError(f"band_rows must be >= 0 (0 = automatic), got {band_rows}")
    return (oh, ow), (n, h, w, cin, chid, cout, kernel, stride, *padding, expand, *(ACTIVATIONS[a] for a in acts),
                      residual, band_rows)


def _ir_args(x_shape, cin, chid, cout, kernel, stride, padding, acts, residual, band_rows, expand):
    return _ir_call(x_shape, cin, chid, cout, kernel, stride, padding, acts, residual, band_rows, expand)[1]


def inverted_residual_info(x_shape, in_channels, hidden_channels, out_channels, kernel=3, stride=1,
                           padding=None, acts=("relu6", "relu6", "none"), residual=None, band_rows=0,
                           num_threads=None, expand=None) -> dict:
    """Kernels, band height, per-thread scratch bytes and busy threads of a fused call
    (``expand`` defaults to ``hidden_channels != in_channels``)."""
    padding = [kernel // 2] * 4 if padding is None else list(padding)
    if residual is None:
        residual = stride == 1 and in_channels == out_channels
    args = _ir_args(x_shape, in_channels, hidden_channels, out_channels, kernel, stride, padding, acts,
                    residual, band_rows, hidden_channels != in_channels if expand is None else expand)
    nt = torch.get_num_threads() if num_threads is None else num_threads
    return _C.f32_inverted_residual_info(*args, nt)


def _run_ir(x, epk, dpk, ppk, chid, cout, kernel, stride, padding, acts, residual, band_rows):
    return _launch_ir(x, epk, dpk, ppk, _ir_x_call(x, epk, chid, cout, kernel, stride, padding, acts, residual,
                                                   band_rows))


def _ir_x_call(x, epk, chid, cout, kernel, stride, padding, acts, residual, band_rows):
    """Check x against a block call; return (output shape, C++ arguments)."""
    _check_x(x)
    cin = x.shape[1]
    expand = epk is not None
    if not expand and chid != cin:
        raise ValueError(f"without an expand conv the hidden width ({chid}) must equal the input channels ({cin})")
    (oh, ow), args = _ir_call(x.shape, cin, chid, cout, kernel, stride, padding, acts, residual, band_rows, expand)
    return (args[0], cout, oh, ow), args


def _launch_ir(x, epk, dpk, ppk, call):
    shape, args = call
    out = empty_cl(shape, torch.float32)
    if shape[0] == 0:
        return out
    expand = epk is not None
    x = _nhwc(x)
    _C.f32_inverted_residual(x.data_ptr(), epk.data_ptr() if expand else 0, epk.numel() if expand else 0,
                             dpk.data_ptr(), dpk.numel(), ppk.data_ptr(), ppk.numel(), out.data_ptr(), *args,
                             torch.get_num_threads())
    return out


def _ir_weights(x, ew, eb, dw, db, pw, pb):
    _check_x(x)
    cin = x.shape[1]
    if ew is not None:
        _check_pw_weight("expand_weight", ew, eb, cin)
        chid = ew.shape[0]
    else:
        if eb is not None:
            raise ValueError("expand_bias given without expand_weight")
        chid = cin
    check_tensor("dw_weight", dw, torch.float32, 4)
    if dw.shape[0] != chid or dw.shape[1] != 1 or dw.shape[2] != dw.shape[3]:
        raise ValueError(f"dw_weight must have shape [{chid}, 1, k, k] (hidden channels, square kernel), "
                         f"got {tuple(dw.shape)}")
    _check_pw_weight("project_weight", pw, pb, chid)
    return chid


def _inverted_residual_cpu(x, ew, eb, dw, db, pw, pb, stride, padding, act_expand, act_dw, act_project,
                           residual):
    chid = _ir_weights(x, ew, eb, dw, db, pw, pb)
    epk = pack_pw(ew, eb) if ew is not None else None
    return _run_ir(x, epk, pack_dw(dw, db), pack_pw(pw, pb), chid, pw.shape[0], dw.shape[2], stride,
                   list(padding), (act_expand, act_dw, act_project), residual, 0)


def _ir_out_shape(x, kernel, stride, padding, cout):
    n, _, h, w = x.shape
    oh = out_size(h, kernel, stride, 1, padding[0], padding[1])
    ow = out_size(w, kernel, stride, 1, padding[2], padding[3])
    return x.new_empty((n, cout, oh, ow)).contiguous(memory_format=torch.channels_last)


@torch.library.register_fake(f"{NS}::inverted_residual")
def _inverted_residual_fake(x, ew, eb, dw, db, pw, pb, stride, padding, act_expand, act_dw, act_project,
                            residual):
    return _ir_out_shape(x, dw.shape[2], stride, padding, pw.shape[0])


_lib.impl("inverted_residual", _inverted_residual_cpu, "CPU")


def _check_ir_packs(epk, dpk, ppk, hidden_channels, out_channels) -> None:
    for name, t in (("expand_packed", epk), ("dw_packed", dpk), ("project_packed", ppk)):
        if t is not None:
            _check_packed(name, t)
    if hidden_channels < 1 or out_channels < 1:
        raise ValueError(f"hidden_channels and out_channels must be >= 1, got {hidden_channels}, {out_channels}")


def _inverted_residual_packed_cpu(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding,
                                  act_expand, act_dw, act_project, residual, band_rows):
    _check_ir_packs(epk, dpk, ppk, hidden_channels, out_channels)
    return _run_ir(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, list(padding),
                   (act_expand, act_dw, act_project), residual, band_rows)


def _f32_pack_ok(t) -> bool:
    return t.dtype is torch.float32 and t.is_cpu and t.dim() == 1 and t.is_contiguous()


def inverted_residual_packed_eager(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding,
                                   act_expand, act_dw, act_project, residual, band_rows):
    """The CPU impl for plain tensors and exactly typed scalars (see ``_eager`` and ops_block),
    reusing the validated C++ arguments per (x shape, arguments): the key holds everything the
    geometry checks read, the tensors' kinds are checked at every call (the packs' headers by C++)."""
    key = (x.shape, epk is None, hidden_channels, out_channels, kernel, stride, tuple(padding), act_expand, act_dw,
           act_project, residual, band_rows)
    call = _EAGER_IR_CALLS.get(key)
    if (call is None or x.dtype is not torch.float32 or not x.is_cpu or not _f32_pack_ok(dpk)
            or not _f32_pack_ok(ppk) or (epk is not None and not _f32_pack_ok(epk))):
        _check_ir_packs(epk, dpk, ppk, hidden_channels, out_channels)  # the precise errors
        call = _ir_x_call(x, epk, hidden_channels, out_channels, kernel, stride, list(padding),
                          (act_expand, act_dw, act_project), residual, band_rows)
        remember(_EAGER_IR_CALLS, key, call)
    return _launch_ir(x, epk, dpk, ppk, call)


def conv1x1_packed_eager(x, packed, out_channels: int, activation: str) -> torch.Tensor:
    """The ``conv1x1_packed`` CPU impl for plain tensors (see ``_eager``): the checks of x's shape
    run once per (x shape, arguments) key, the tensors' kinds every call; the pack's header is
    checked by C++."""
    key = (x.shape, out_channels, activation)
    if key not in _EAGER_PW_CALLS or x.dtype is not torch.float32 or not x.is_cpu or not _f32_pack_ok(packed):
        _check_pw_packed(x, packed, out_channels)  # the precise errors, in the impl's order
        remember(_EAGER_PW_CALLS, key, True)
    return _run_pw(x, packed, out_channels, activation)


# Validated calls of the functional fast paths, bounded (see _eager.remember).
_EAGER_IR_CALLS: dict = {}
_EAGER_PW_CALLS: dict = {}


@torch.library.register_fake(f"{NS}::inverted_residual_packed")
def _inverted_residual_packed_fake(x, epk, dpk, ppk, hidden_channels, out_channels, kernel, stride, padding,
                                   act_expand, act_dw, act_project, residual, band_rows):
    return _ir_out_shape(x, kernel, stride, padding, out_channels)


_lib.impl("inverted_residual_packed", _inverted_residual_packed_cpu, "CPU")
