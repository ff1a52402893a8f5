"""``DepthwiseConv2d``: a drop-in ``nn.Conv2d(C, C*m, k, groups=C)`` on our fp32 kernel."""
from __future__ import annotations

import torch
from torch import nn

from ._pack_cache import CachedPackMixin
from .. import _ops
from .._checks import conv_padding
from .._eager import unobserved


class DepthwiseConv2d(CachedPackMixin, nn.Conv2d):
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
        if activation not in _ops.ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ops.ACTIVATIONS)}, got {activation!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups=in_channels, bias=bias, padding_mode="zeros", device=device, dtype=dtype)
        self.activation = activation
        self._pads = conv_padding(self.padding, self.kernel_size, self.stride, self.dilation)
        self._plan = _ops.DwPlan(in_channels, out_channels, self.kernel_size, self.stride, self._pads,
                                 self.dilation, activation)

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Eager inference first (cheapest checks first): the same kernel as the registered op,
        # without the dispatcher round trip.
        if not torch.is_grad_enabled() and type(x) is torch.Tensor and unobserved():
            return self._plan.run(x, self._pack())
        # Traced (fx, compile, export, jit), under a torch mode, or autograd: the registered
        # differentiable op on the raw weight, so graphs and modes record it and training works.
        if (isinstance(x, torch.fx.Proxy) or not unobserved()
                or self.weight.requires_grad or x.requires_grad):
            return torch.ops.mobilekernels.dwconv2d(x, self.weight, self.bias, list(self.stride),
                                                    list(self._pads), list(self.dilation), self.activation)
        return self._plan.run(x, self._pack())
