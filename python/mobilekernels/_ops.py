"""torch.library registration of the mobilekernels operators (schemas, CPU impls, fake impls,
autograd). The CPU impls call the torch-free extension on ``data_ptr()``s (zero copy for
channels_last inputs) with the GIL released.

Depthwise convolution ops (fp32):
  ``dwconv2d(x, weight, bias, stride, padding, dilation, activation)``: NCHW-shaped float32
      ``x`` in any memory format, ``weight [C*m, 1, kh, kw]``, ``padding`` as
      ``[top, bottom, left, right]``; returns a channels_last tensor. Differentiable.
  ``dwconv2d_pack(weight, bias)``: the packed-weight tensor (1-D float32) the kernel reads.
  ``dwconv2d_packed(x, packed, out_channels, kernel, stride, padding, dilation, activation)``:
      the same convolution on a prepacked weight (inference only).
"""
from __future__ import annotations

from typing import Sequence

import torch

from . import _C
from ._checks import check_tensor, dw_geometry, empty_cl, empty_f32, out_size
from ._eager import remember

NS = "mobilekernels"
ACTIVATIONS = {"none": 0, "relu": 1, "relu6": 2, "hardswish": 3}

# FRAGMENT: each op module of the package adds its own ops to the one namespace.
_lib = torch.library.Library(NS, "FRAGMENT")
_lib.define("dwconv2d(Tensor x, Tensor weight, Tensor? bias, int[2] stride, int[4] padding, "
            "int[2] dilation, str activation) -> Tensor")
_lib.define("dwconv2d_pack(Tensor weight, Tensor? bias) -> Tensor")
_lib.define("dwconv2d_packed(Tensor x, Tensor packed, int out_channels, int[2] kernel, "
            "int[2] stride, int[4] padding, int[2] dilation, str activation) -> Tensor")


# ---------------------------------------------------------------------------------------------
# geometry and validation


def _dw_geometry(x_shape: Sequence[int], cout: int, kernel: Sequence[int], stride: Sequence[int],
                 padding: Sequence[int], dilation: Sequence[int], activation: str):
    """Validate an fp32 depthwise call; return (N, C, H, W, M, OH, OW)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return dw_geometry(x_shape, cout, kernel, stride, padding, dilation)


def _check_weight(weight: torch.Tensor, bias) -> None:
    check_tensor("weight", weight, torch.float32, 4)
    if weight.shape[1] != 1:
        raise ValueError(f"depthwise weight must have shape [C*m, 1, kh, kw], got {tuple(weight.shape)} "
                         "(in_channels / groups must be 1)")
    if weight.shape[0] == 0:
        raise ValueError("weight has zero output channels")
    if bias is not None:
        check_tensor("bias", bias, torch.float32, 1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias has {bias.shape[0]} elements, expected {weight.shape[0]} (output channels)")


def _empty_out(n: int, cout: int, oh: int, ow: int) -> torch.Tensor:
    return empty_cl((n, cout, oh, ow), torch.float32)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    # No copy when x is already channels_last (strides checked, not flags).
    return x.contiguous(memory_format=torch.channels_last)


def _run_dw(x, packed, cout, kernel, stride, padding, dilation, activation) -> torch.Tensor:
    n, c, h, w, m, oh, ow = _dw_geometry(x.shape, cout, kernel, stride, padding, dilation, activation)
    out = _empty_out(n, cout, oh, ow)
    if n == 0:
        return out
    x = _nhwc(x)
    _C.f32_dwconv(x.data_ptr(), packed.data_ptr(), out.data_ptr(), n, h, w, c, m, kernel[0], kernel[1],
                  stride[0], stride[1], dilation[0], dilation[1], padding[0], padding[2], oh, ow,
                  ACTIVATIONS[activation], torch.get_num_threads(), packed.numel())
    return out


def _dw_call(x_shape, cout, kernel, stride, padding, dilation, activation):
    """Validate a depthwise call's geometry; return (output shape, its channels_last strides, the
    validated ``_C.F32DwconvCall`` or None for an empty batch)."""
    n, c, h, w, m, oh, ow = _dw_geometry(x_shape, cout, kernel, stride, padding, dilation, activation)
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    # channels_last strides of the [n, cout, oh, ow] output (what torch.empty(memory_format=
    # torch.channels_last) gives, without its format resolution cost)
    strides = (oh * ow * cout, 1, ow * cout, cout)
    cpp = None if n == 0 else _C.F32DwconvCall(n, h, w, c, m, kh, kw, sh, sw, dh, dw, padding[0], padding[2], oh,
                                                ow, ACTIVATIONS[activation])
    return (n, cout, oh, ow), strides, cpp


# Cached calls per plan: bounded, since a module fed ever-new input sizes would grow it without end.
_MAX_PLAN_CALLS = 64


class DwPlan:
    """Everything about a depthwise call that does not depend on the input: built once by a
    module. Per input shape it validates once and keeps the validated C++ call
    (``_C.F32DwconvCall``) and the output geometry, so a repeated eager forward costs a dict
    lookup, two checks of x, one allocation and one 5-argument C++ call."""

    __slots__ = ("cin", "cout", "kernel", "stride", "padding", "dilation", "activation", "act_code",
                 "_calls")

    def __init__(self, cin, cout, kernel, stride, padding, dilation, activation):
        self.cin, self.cout = int(cin), int(cout)
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.padding, self.dilation = tuple(padding), tuple(dilation)
        self.activation, self.act_code = activation, ACTIVATIONS[activation]
        self._calls = {}

    # The cached C++ calls are derived (and not picklable): dropped on pickle / deepcopy.
    def __getstate__(self):
        return {k: getattr(self, k) for k in self.__slots__ if k != "_calls"}

    def __setstate__(self, state):
        for k, v in state.items():
            setattr(self, k, v)
        self._calls = {}

    def _prepare(self, x: torch.Tensor):
        """Validate x for this layer (the precise errors) and build the call for its shape."""
        check_tensor("x", x, torch.float32, 4)
        if x.shape[1] != self.cin:
            raise ValueError(f"x has {x.shape[1]} channels, this layer expects {self.cin}")
        if len(self._calls) >= _MAX_PLAN_CALLS:
            self._calls = {}
        call = self._calls[x.shape] = _dw_call(x.shape, self.cout, self.kernel, self.stride, self.padding,
                                               self.dilation, self.activation)
        return call

    def run(self, x: torch.Tensor, pack: tuple) -> torch.Tensor:
        """The layer on ``x``, exactly a ``torch.Tensor`` (the caller checks its type), with
        ``pack`` a module's ``_pack_ref()`` (``(key, tensor, data_ptr, numel)``)."""
        # A shape in the cache has passed _prepare (so: 4-D, this layer's channels and geometry);
        # dtype and device are not part of the shape, so they are checked on every call.
        call = self._calls.get(x.shape)
        if call is None or x.dtype is not _F32 or not x.is_cpu:
            call = self._prepare(x)
        return _run_call(call, x, pack[2], pack[3])


_F32 = torch.float32
_CHANNELS_LAST = torch.channels_last
_num_threads = torch.get_num_threads


def _run_call(call, x: torch.Tensor, packed_ptr: int, packed_numel: int, out=None) -> torch.Tensor:
    """Run a validated depthwise call (``_dw_call``'s (shape, strides, C++ call)) on a pack given
    by pointer and size (its header is checked by C++) into a new channels_last output, or into
    ``out`` (checked here)."""
    shape, strides, cpp = call
    x = x.contiguous(memory_format=_CHANNELS_LAST)  # no copy when x is NHWC in memory
    if out is None:
        out = empty_f32(shape, strides)
    else:
        _check_out(out, shape, strides, x)
    if cpp is not None:  # None: empty batch
        cpp.run(x.data_ptr(), packed_ptr, packed_numel, out.data_ptr(), _num_threads())
    return out


def _check_out(out, shape, strides, x) -> None:
    """``out=`` of the eager ops: float32 CPU, exactly the output's shape in dense channels_last
    memory, not written through autograd, and not overlapping the input the kernel reads."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"out must be a torch.Tensor, got {type(out).__name__}")
    if out.dtype is not _F32 or not out.is_cpu:
        raise TypeError(f"out must be a float32 CPU tensor, got {out.dtype} on {out.device}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {tuple(shape)}")
    if out.numel() and tuple(out.stride()) != tuple(strides):
        raise ValueError(f"out must be dense channels_last (strides {tuple(strides)}), got strides "
                         f"{tuple(out.stride())}: make it with torch.empty(..., memory_format=torch.channels_last)")
    if out.requires_grad and torch.is_grad_enabled():
        raise ValueError("out requires grad: out= writes outside autograd (use torch.no_grad / inference_mode)")
    if out.numel() and x.numel():
        a, b = x.data_ptr(), out.data_ptr()
        if a < b + out.numel() * 4 and b < a + x.numel() * 4:
            raise ValueError("out overlaps x: the kernel reads x while it writes out")


def pack_dw(weight: torch.Tensor, bias) -> torch.Tensor:
    _check_weight(weight, bias)
    cout, _, kh, kw = weight.shape
    packed = torch.empty(_C.f32_dwconv_packed_size(cout, kh, kw), dtype=torch.float32)
    # (no detach(): only the bytes are read, and contiguous() returns the tensor itself when it is)
    w = weight.contiguous()
    b = bias.contiguous() if bias is not None else None
    _C.f32_dwconv_pack(w.data_ptr(), b.data_ptr() if b is not None else 0, cout, kh, kw, packed.data_ptr())
    return packed


def dwconv2d_kernel_name(x_shape, w_shape, stride, padding, dilation, activation="none") -> str:
    """Name of the kernel the active ISA level runs for this shape (e.g. ``avx2/3x3s1``)."""
    kernel = (w_shape[2], w_shape[3])
    n, c, h, w, m, oh, ow = _dw_geometry(x_shape, w_shape[0], kernel, stride, padding, dilation, activation)
    return _C.f32_dwconv_kernel_name(max(n, 1), h, w, c, m, kernel[0], kernel[1], stride[0], stride[1],
                                     dilation[0], dilation[1], padding[0], padding[2], oh, ow,
                                     ACTIVATIONS[activation])


# ---------------------------------------------------------------------------------------------
# dwconv2d (raw weight)


def _dwconv2d_cpu(x, weight, bias, stride, padding, dilation, activation):
    check_tensor("x", x, torch.float32, 4)
    packed = pack_dw(weight, bias)
    return _run_dw(x, packed, weight.shape[0], weight.shape[2:], stride, padding, dilation, activation)


# Validated geometry of the functional raw-weight fast path (ops.dwconv2d), per (x shape, weight
# shape, arguments): everything _dw_call reads is in the key. Bounded (_eager.remember).
_EAGER_RAW_CALLS: dict = {}


def dwconv2d_eager(x, weight, bias, stride: tuple, padding: tuple, dilation: tuple, activation: str, out=None):
    """What the ``dwconv2d`` CPU impl computes, without the dispatcher (see ``_eager``): the
    weight is packed (and checked) at every call, x's geometry checked once per key, its dtype
    and device at every call."""
    key = (x.shape, weight.shape, stride, padding, dilation, activation)
    call = _EAGER_RAW_CALLS.get(key)
    packed = pack_dw(weight, bias)
    if call is None or x.dtype is not _F32 or not x.is_cpu:
        check_tensor("x", x, torch.float32, 4)
        call = remember(_EAGER_RAW_CALLS, key, _dw_call(x.shape, weight.shape[0], tuple(weight.shape[2:]), stride,
                                                        padding, dilation, activation))
    return _run_call(call, x, packed.data_ptr(), packed.numel(), out)


@torch.library.register_fake(f"{NS}::dwconv2d")
def _dwconv2d_fake(x, weight, bias, stride, padding, dilation, activation):
    n, c, h, w = x.shape
    cout, _, kh, kw = weight.shape
    oh = out_size(h, kh, stride[0], dilation[0], padding[0], padding[1])
    ow = out_size(w, kw, stride[1], dilation[1], padding[2], padding[3])
    return x.new_empty((n, cout, oh, ow)).contiguous(memory_format=torch.channels_last)


def _dw_setup_context(ctx, inputs, output):
    x, weight, bias, stride, padding, dilation, activation = inputs
    ctx.conf = (list(stride), list(padding), list(dilation), activation, bias is not None)
    ctx.save_for_backward(x, weight, bias, output)


def _dw_backward(ctx, grad):
    # Backward runs on PyTorch's own convolution_backward: exact, and traceable by AOT autograd.
    x, weight, bias, out = ctx.saved_tensors
    stride, padding, dilation, activation, has_bias = ctx.conf
    pt, pb, pl, pr = padding
    xp = torch.nn.functional.pad(x, (pl, pr, pt, pb))
    if activation == "relu":
        grad = grad * (out > 0)
    elif activation == "relu6":
        grad = grad * ((out > 0) & (out < 6))
    elif activation == "hardswish":
        z = torch.ops.aten.convolution(xp, weight, bias, stride, [0, 0], dilation, False, [0, 0], x.shape[1])
        grad = torch.ops.aten.hardswish_backward(grad, z)
    gx, gw, gb = torch.ops.aten.convolution_backward(
        grad, xp, weight, [weight.shape[0]] if has_bias else None, stride, [0, 0], dilation, False,
        [0, 0], x.shape[1], [ctx.needs_input_grad[0], ctx.needs_input_grad[1], has_bias and ctx.needs_input_grad[2]])
    if gx is not None:
        gx = gx[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]]
    return gx, gw, gb, None, None, None, None


_lib.impl("dwconv2d", _dwconv2d_cpu, "CPU")
torch.library.register_autograd(f"{NS}::dwconv2d", _dw_backward, setup_context=_dw_setup_context)


# ---------------------------------------------------------------------------------------------
# prepacked path


def _dwconv2d_pack_cpu(weight, bias):
    return pack_dw(weight, bias)


_lib.impl("dwconv2d_pack", _dwconv2d_pack_cpu, "CPU")


@torch.library.register_fake(f"{NS}::dwconv2d_pack")
def _dwconv2d_pack_fake(weight, bias):
    cout, _, kh, kw = weight.shape
    return weight.new_empty((_C.f32_dwconv_packed_size(cout, kh, kw),))


def _check_packed_call(x, packed, out_channels, kernel) -> None:
    check_tensor("x", x, torch.float32, 4)
    check_tensor("packed", packed, torch.float32, 1)
    if min(kernel) < 1 or out_channels < 1:
        raise ValueError(f"invalid kernel {tuple(kernel)} / out_channels {out_channels}")
    if not packed.is_contiguous():
        raise ValueError("packed weight must be contiguous (use the tensor dwconv2d_pack returned)")


def _dwconv2d_packed_cpu(x, packed, out_channels, kernel, stride, padding, dilation, activation):
    _check_packed_call(x, packed, out_channels, kernel)
    return _run_dw(x, packed, out_channels, kernel, stride, padding, dilation, activation)


# Validated calls of the functional fast path (ops.dwconv2d_packed), per (x shape, arguments).
# The key holds everything the geometry checks read, so an entry cannot go stale; the tensors'
# own properties are checked at every call, the pack's size by C++. Bounded (_eager.remember).
_EAGER_CALLS: dict = {}


def dwconv2d_packed_eager(x, packed, out_channels: int, kernel: tuple, stride: tuple, padding: tuple,
                          dilation: tuple, activation: str, out=None) -> torch.Tensor:
    """What the ``dwconv2d_packed`` CPU impl computes, without the dispatcher (plain tensors, see
    ``_eager``); ``kernel`` .. ``dilation`` normalised tuples."""
    key = (x.shape, out_channels, kernel, stride, padding, dilation, activation)
    call = _EAGER_CALLS.get(key)
    if (call is None or x.dtype is not torch.float32 or not x.is_cpu or packed.dtype is not torch.float32
            or not packed.is_cpu or packed.dim() != 1 or not packed.is_contiguous()):
        _check_packed_call(x, packed, out_channels, kernel)  # the precise errors
        call = remember(_EAGER_CALLS, key, _dw_call(x.shape, out_channels, kernel, stride, padding, dilation,
                                                    activation))
    return _run_call(call, x, packed.data_ptr(), packed.numel(), out)


@torch.library.register_fake(f"{NS}::dwconv2d_packed")
def _dwconv2d_packed_fake(x, packed, out_channels, kernel, stride, padding, dilation, activation):
    n, c, h, w = x.shape
    oh = out_size(h, kernel[0], stride[0], dilation[0], padding[0], padding[1])
    ow = out_size(w, kernel[1], stride[1], dilation[1], padding[2], padding[3])
    return x.new_empty((n, out_channels, oh, ow)).contiguous(memory_format=torch.channels_last)


_lib.impl("dwconv2d_packed", _dwconv2d_packed_cpu, "CPU")
