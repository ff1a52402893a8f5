"""``PointwiseConv2d`` (alias ``Conv1x1``): a drop-in ``nn.Conv2d(Cin, Cout, 1)`` on our fp32 GEMM."""
from __future__ import annotations

import torch
from torch import nn

from ._fast_call import FastCallMixin
from ._pack_cache import CachedPackMixin, params_require_grad, remember_call
from .. import _C, _chain, _ops, _pwops
from .._checks import empty_f32
from .._eager import _grad_enabled, unobserved

_Tensor = torch.Tensor
_F32 = torch.float32
_CHANNELS_LAST = torch.channels_last
_num_threads = torch.get_num_threads
_conv1x1 = _C.f32_conv1x1


class PointwiseConv2d(FastCallMixin, CachedPackMixin, nn.Conv2d):
    """1x1 convolution (stride 1, no padding, groups 1) with an optional fused activation.

    Same parameter names and shapes as ``nn.Conv2d(in_channels, out_channels, 1)`` (weight
    ``[Cout, Cin, 1, 1]``, bias ``[Cout]``), so a torch ``state_dict`` loads as is. Extra:
    ``activation`` in ``none | relu | relu6 | hardswish``.

    Inference (no grad) runs on a weight packed once and reused until the weight or bias
    changes (tracked by tensor version); the pack is derived, never stored in the state_dict.
    With autograd on, the differentiable op runs (forward ours, backward PyTorch's).
    Output is channels_last. Eager inference calls the C++ op directly (no ``torch.ops``
    dispatcher), with the call validated once per input shape.
    """

    _calls = None  # input shape -> (output shape, its strides, pixels, activation code); see _eager

    def __init__(self, in_channels: int, out_channels: int, kernel_size=1, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 activation: str = "none", device=None, dtype=None):
        for name, v in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
            if v not in (1, (1, 1), [1, 1]):
                raise ValueError(f"PointwiseConv2d needs {name} 1, got {v!r}")
        if padding not in (0, (0, 0), [0, 0], "valid"):
            raise ValueError(f"PointwiseConv2d needs padding 0, got {padding!r}")
        if groups != 1:
            raise ValueError(f"PointwiseConv2d needs groups 1, got {groups} (use DepthwiseConv2d for depthwise)")
        if activation not in _ops.ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ops.ACTIVATIONS)}, got {activation!r}")
        super().__init__(in_channels, out_channels, 1, 1, 0, 1, 1, bias=bias, padding_mode=padding_mode,
                         device=device, dtype=dtype)
        self.activation = activation

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, activation: str = "none") -> "PointwiseConv2d":
        """Build from a 1x1, stride-1, unpadded, ungrouped ``nn.Conv2d`` (parameters copied)."""
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"from_conv expects an nn.Conv2d, got {type(conv).__name__}")
        if (tuple(conv.kernel_size) != (1, 1) or tuple(conv.stride) != (1, 1) or conv.groups != 1
                or tuple(conv.dilation) != (1, 1) or conv.padding not in ((0, 0), "valid")):
            raise ValueError(f"from_conv expects a 1x1 stride-1 unpadded ungrouped conv, got {conv}")
        m = cls(conv.in_channels, conv.out_channels, bias=conv.bias is not None, activation=activation)
        return m._copy_params_from(conv)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", activation={self.activation}"

    def _make_pack(self, weight, bias) -> torch.Tensor:
        return _pwops.pack_pw(weight, bias)

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if _chain.invalidates(name):  # a setting or weight changed: cached calls and chains are stale
            self.__dict__["_calls"] = None
            _chain.config_changed()

    def _prepare(self, x: torch.Tensor) -> tuple:
        """Validate x for this layer (the precise errors); cache and return its call."""
        _pwops._check_x(x, self.in_channels)
        n, _, h, w = x.shape
        cout = self.out_channels
        return remember_call(self, x.shape, ((n, cout, h, w), (h * w * cout, 1, w * cout, cout), n * h * w,
                                             _pwops._act(self.activation)))

    def _eager(self, x: torch.Tensor) -> torch.Tensor:
        """``conv1x1_packed`` without the dispatcher: the same C++ call. ``x`` is exactly a
        ``torch.Tensor`` (the caller checks)."""
        # A shape in the cache has passed _prepare (4-D, this layer's channels, no zero size);
        # dtype and device are not part of the shape, so they are checked on every call.
        calls = self._calls
        call = None if calls is None else calls.get(x.shape)
        if call is None or x.dtype is not _F32 or not x.is_cpu:
            call = self._prepare(x)
        shape, strides, m, act = call
        pack = self._pack_ref()
        out = empty_f32(shape, strides)
        if m:
            x = x.contiguous(memory_format=_CHANNELS_LAST)  # no copy when x is NHWC in memory
            # The C++ side checks the pack header against (in, out) channels.
            _conv1x1(x.data_ptr(), pack[2], pack[3], out.data_ptr(), m, self.in_channels, self.out_channels, act,
                     _num_threads())
        return out

    def _eager_call(self, x):
        # Eager inference, cheapest checks first; with grad on still eager when nothing (x,
        # weight, bias) requires grad. None: take the registered op.
        if type(x) is _Tensor and unobserved() and (
                not _grad_enabled() or not (x.requires_grad or params_require_grad(self))):
            return self._eager(x)
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._eager_call(x)
        if out is not None:
            return out
        # traced, under a torch mode, a tensor subclass, or autograd: the registered op on the raw weight
        return torch.ops.mobilekernels.conv1x1(x, self.weight, self.bias, self.activation)

    def __getstate__(self):
        state = super().__getstate__().copy()
        state["_calls"] = None  # derived
        return state


Conv1x1 = PointwiseConv2d
