"""``DepthwiseConv2d``: a drop-in ``nn.Conv2d(C, C*m, k, groups=C)`` on our fp32 kernel."""
from __future__ import annotations

import torch
from torch import nn

from ._fast_call import FastCallMixin
from ._pack_cache import CachedPackMixin, params_require_grad
from .. import _chain, _ops
from .._checks import conv_padding
from .._eager import _grad_enabled, unobserved

_Tensor = torch.Tensor
# nn.Conv2d attributes the layer's plan (and so its eager result) is built from
_PLAN_SETTINGS = frozenset({"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                            "groups", "padding_mode", "activation"})


class DepthwiseConv2d(FastCallMixin, CachedPackMixin, nn.Conv2d):
    """Depthwise convolution with an optional fused activation.

    Same constructor arguments, parameter names and shapes as ``nn.Conv2d`` with
    ``groups=in_channels`` (weight ``[C*m, 1, kh, kw]``, bias ``[C*m]``), so a torch
    ``state_dict`` loads as is. Extra: ``activation`` in ``none | relu | relu6 | hardswish``.

    Inference (no grad) runs on a weight packed once and reused until the weight or bias
    changes (tracked by tensor version); the pack is derived, never stored in the state_dict.
    With autograd on, the differentiable op runs (forward on our kernel, backward on PyTorch's).
    Output is channels_last.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, kernel_size=3, stride=1,
                 padding=0, dilation=1, groups: int | None = None, bias: bool = True,
                 padding_mode: str = "zeros", activation: str = "none", device=None, dtype=None):
        out_channels = in_channels if out_channels is None else out_channels
        if groups is not None and groups != in_channels:
            raise ValueError(f"DepthwiseConv2d needs groups == in_channels ({in_channels}), got {groups}")
        if padding_mode != "zeros":
            raise ValueError(f"DepthwiseConv2d supports padding_mode='zeros' only, got {padding_mode!r}")
        if out_channels % in_channels != 0:
            raise ValueError(f"out_channels ({out_channels}) must be a multiple of in_channels ({in_channels})")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups=in_channels, bias=bias, padding_mode="zeros", device=device, dtype=dtype)
        self.activation = activation
        self._build_plan()

    def _build_plan(self) -> None:
        """(Re)build the settings the eager path runs on; raises ValueError on invalid ones."""
        if self.activation not in _ops.ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ops.ACTIVATIONS)}, got {self.activation!r}")
        if self.groups != self.in_channels or self.padding_mode != "zeros":
            raise ValueError("DepthwiseConv2d needs groups == in_channels and padding_mode='zeros', got "
                             f"groups={self.groups}, in_channels={self.in_channels}, padding_mode={self.padding_mode!r}")
        pads = conv_padding(self.padding, self.kernel_size, self.stride, self.dilation)
        plan = _ops.DwPlan(self.in_channels, self.out_channels, self.kernel_size, self.stride, pads, self.dilation,
                           self.activation)
        self.__dict__["_pads"], self.__dict__["_plan"] = pads, plan

    def __setattr__(self, name, value):
        if name in _PLAN_SETTINGS and "_plan" in self.__dict__:
            # A setting changed after construction: the plan (and chains using this layer) would
            # be stale. Invalid values are refused and the old one kept.
            old = getattr(self, name)
            super().__setattr__(name, value)
            try:
                self._build_plan()
            except Exception:
                super().__setattr__(name, old)
                raise
        else:
            super().__setattr__(name, value)
        if _chain.invalidates(name):
            _chain.config_changed()

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, activation: str = "none") -> "DepthwiseConv2d":
        """Build from a depthwise ``nn.Conv2d`` (sharing nothing: parameters are copied)."""
        if not isinstance(conv, nn.Conv2d) or conv.groups != conv.in_channels:
            raise ValueError(f"from_conv expects a depthwise nn.Conv2d (groups == in_channels), got {conv}")
        m = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                conv.dilation, bias=conv.bias is not None, padding_mode=conv.padding_mode, activation=activation)
        return m._copy_params_from(conv)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", activation={self.activation}"

    def _make_pack(self, weight, bias) -> torch.Tensor:
        return _ops.pack_dw(weight, bias)

    def _eager_call(self, x):
        # Eager inference, cheapest checks first: the same kernel as the registered op without the
        # dispatcher round trip, on the cached pack. With grad on it is still eager when nothing
        # (x, weight, bias) requires grad. None: take the registered op.
        if type(x) is _Tensor and unobserved() and (
                not _grad_enabled() or not (x.requires_grad or params_require_grad(self))):
            return self._plan.run(x, self._pack_ref())
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._eager_call(x)
        if out is not None:
            return out
        # Traced (fx, compile, export, jit), under a torch mode, a tensor subclass, or autograd:
        # the registered differentiable op on the raw weight, so graphs and modes record it and
        # training works.
        return torch.ops.mobilekernels.dwconv2d(x, self.weight, self.bias, list(self.stride),
                                                list(self._pads), list(self.dilation), self.activation)
