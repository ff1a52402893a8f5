"""``StemConv2d``: a drop-in ``nn.Conv2d(groups=1)`` for few input channels (the network stem,
``Conv2d(3, 32, 3, stride=2, padding=1)``) on our fp32 small-Cin kernel, reading the input in
whatever layout it comes (NCHW included: no channels_last copy in front)."""
from __future__ import annotations

import torch
from torch import nn

from ._fast_call import FastCallMixin
from ._pack_cache import CachedPackMixin, params_require_grad, remember_call
from .. import _chain, _ops, _stemops
from .._checks import conv_padding
from .._eager import _grad_enabled, unobserved

_Tensor = torch.Tensor
_F32 = torch.float32


class StemConv2d(FastCallMixin, CachedPackMixin, nn.Conv2d):
    """Dense (groups 1) convolution with an optional fused activation, for few input channels.

    Same constructor arguments, parameter names and shapes as ``nn.Conv2d`` (weight
    ``[Cout, Cin, kh, kw]``, bias ``[Cout]``), so a torch ``state_dict`` loads as is. Extra:
    ``activation`` in ``none | relu | relu6 | hardswish``. Any kernel size, stride, dilation and
    zero padding (``'same'`` / ``'valid'`` / ints / ``(top, bottom, left, right)`` limited to the
    dilated kernel extent minus one) are computed; the kernel is built for Cin <= 4.

    Inference runs on a weight packed once (rebuilt when weight or bias change); the input is
    read through its strides (NCHW or channels_last, no copy); the output is channels_last.
    With autograd on, traced or under a torch mode, the differentiable registered op runs
    (forward ours, backward PyTorch's).
    """

    _calls = None  # input shape -> (C++ geometry, output shape); see _eager

    def __init__(self, in_channels: int, out_channels: int, kernel_size=3, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", activation: str = "none",
                 device=None, dtype=None):
        if groups != 1:
            raise ValueError(f"StemConv2d needs groups 1, got {groups}")
        if padding_mode != "zeros":
            raise ValueError(f"StemConv2d supports padding_mode='zeros' only, got {padding_mode!r}")
        if activation not in _ops.ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ops.ACTIVATIONS)}, got {activation!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 1, bias=bias,
                         padding_mode="zeros", device=device, dtype=dtype)
        self.activation = activation
        self._pads  # validates the padding now

    @property
    def _pads(self) -> tuple:
        return conv_padding(self.padding, self.kernel_size, self.stride, self.dilation)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, activation: str = "none") -> "StemConv2d":
        """Build from an ungrouped zero-padded ``nn.Conv2d`` (parameters copied)."""
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"from_conv expects an nn.Conv2d, got {type(conv).__name__}")
        if conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError(f"from_conv expects an ungrouped zero-padded conv, got {conv}")
        m = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                bias=conv.bias is not None, activation=activation)
        return m._copy_params_from(conv)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", activation={self.activation}"

    def _make_pack(self, weight, bias) -> torch.Tensor:
        return _stemops.pack_stem(weight, bias)

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if _chain.invalidates(name):  # a setting changed: cached calls are stale
            self.__dict__["_calls"] = None
            _chain.config_changed()

    def _prepare(self, x: torch.Tensor) -> tuple:
        """Validate x for this layer (the precise errors); cache and return its call."""
        _stemops._check_x(x)
        call = _stemops.geometry(x.shape, self.in_channels, self.out_channels, self.kernel_size, self.stride,
                                 self._pads, self.dilation, self.activation)
        return remember_call(self, x.shape, call)

    def _eager(self, x: torch.Tensor) -> torch.Tensor:
        calls = self._calls
        call = None if calls is None else calls.get(x.shape)
        if call is None or x.dtype is not _F32 or not x.is_cpu:
            call = self._prepare(x)
        return _stemops.launch(x, self._pack_ref()[1], *call)

    def _eager_call(self, x):
        if type(x) is _Tensor and unobserved() and (
                not _grad_enabled() or not (x.requires_grad or params_require_grad(self))):
            return self._eager(x)
        return None  # take the registered op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._eager_call(x)
        if out is not None:
            return out
        return torch.ops.mobilekernels.conv2d_stem(x, self.weight, self.bias, list(self.stride), list(self._pads),
                                                   list(self.dilation), self.activation)

    def __getstate__(self):
        state = super().__getstate__().copy()
        state["_calls"] = None  # derived
        return state
