"""Inverted-residual and depthwise-separable blocks, introspectable for converters.

Every block exposes the same read-only views (properties over its registered
submodules, so they stay right after pruning and add no state_dict keys):

================  ==============================================================
``expand``        ``Conv2dNormActivation`` 1x1 expansion, or None (``t == 1``)
``depthwise``     ``Conv2dNormActivation`` depthwise kxk (``groups == C``)
``attention``     SE / ECA / CBAM module after the depthwise conv, or None
``project``       the 1x1 projection ``nn.Conv2d`` (no activation after it)
``project_bn``    its ``nn.BatchNorm2d``
``activation``    activation class of expand/depthwise (``nn.ReLU6``, ``nn.ReLU``,
                  ``nn.Hardswish``)
``use_res_connect``  bool, output = block(x) + x
``stride``, ``in_channels``, ``hidden_channels``, ``out_channels``
================  ==============================================================

Layouts (torchvision-compatible names):

* ``InvertedResidual`` (V2): ``.conv = Sequential([expand], dw, [attention], project_conv, project_bn)``
* ``mobilenet_v3.InvertedResidual`` (exported as ``InvertedResidualV3``):
  ``.block = Sequential([expand], dw, [attention], project)`` where ``project`` is a
  ``Conv2dNormActivation`` without activation (``[0]`` conv, ``[1]`` BN).
* ``DepthwiseSeparable`` (V1): ``.conv = Sequential(dw, [attention], pointwise)``; its
  ``project`` is the pointwise conv (followed by BN *and* activation), never residual.
"""
from __future__ import annotations

from typing import Callable, Optional

from torch import Tensor, nn

from .attention import CBAM, ECA, SqueezeExcitation
from .layers import Conv2dNormActivation

__all__ = ["BlockViews", "InvertedResidual", "DepthwiseSeparable"]

_ATTN = (SqueezeExcitation, ECA, CBAM)


class BlockViews:
    """Mixin: locate parts by type within ``self._body`` (no extra registration)."""

    _body: str

    def _parts(self) -> list[nn.Module]:
        return list(getattr(self, self._body))

    def _cnas(self) -> list[Conv2dNormActivation]:
        return [m for m in self._parts() if isinstance(m, Conv2dNormActivation)]

    @property
    def expand(self) -> Optional[Conv2dNormActivation]:
        first = self._parts()[0]
        return None if first.is_depthwise else first

    @property
    def depthwise(self) -> Conv2dNormActivation:
        return next(m for m in self._cnas() if m.is_depthwise)

    @property
    def attention(self) -> Optional[nn.Module]:
        return next((m for m in self._parts() if isinstance(m, _ATTN)), None)

    @property
    def activation(self) -> Optional[type]:
        return self.depthwise.activation

    @property
    def in_channels(self) -> int:
        first = self._parts()[0]
        return first.in_channels

    @property
    def hidden_channels(self) -> int:
        return self.depthwise.out_channels

    @property
    def out_channels(self) -> int:
        return self.project.out_channels


class InvertedResidual(BlockViews, nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6) -> dw kxk (ReLU6) -> [attention] -> 1x1 project + BN."""

    _body = "conv"

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: float,
                 norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
                 attention: Optional[nn.Module] = None,
                 activation_layer: Callable[..., nn.Module] = nn.ReLU6) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2, got {stride}")
        hidden = int(round(inp * expand_ratio))
        self.stride = stride
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden, 1, norm_layer=norm_layer,
                                               activation_layer=activation_layer))
        layers.append(Conv2dNormActivation(hidden, hidden, 3, stride, groups=hidden,
                                           norm_layer=norm_layer, activation_layer=activation_layer))
        if attention is not None:
            layers.append(attention)
        layers += [nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), norm_layer(oup)]
        self.conv = nn.Sequential(*layers)
        self._is_cn = stride > 1

    @property
    def project(self) -> nn.Conv2d:
        return self.conv[-2]

    @property
    def project_bn(self) -> nn.BatchNorm2d:
        return self.conv[-1]

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class DepthwiseSeparable(BlockViews, nn.Module):
    """MobileNetV1 block: dw 3x3 + BN + act -> [attention] -> pw 1x1 + BN + act."""

    _body = "conv"
    use_res_connect = False

    def __init__(self, inp: int, oup: int, stride: int,
                 norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
                 activation_layer: Callable[..., nn.Module] = nn.ReLU,
                 attention: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.stride = stride
        layers: list[nn.Module] = [Conv2dNormActivation(inp, inp, 3, stride, groups=inp,
                                                        norm_layer=norm_layer,
                                                        activation_layer=activation_layer)]
        if attention is not None:
            layers.append(attention)
        layers.append(Conv2dNormActivation(inp, oup, 1, norm_layer=norm_layer,
                                           activation_layer=activation_layer))
        self.conv = nn.Sequential(*layers)

    @property
    def expand(self) -> None:
        return None

    @property
    def project(self) -> nn.Conv2d:
        return self.conv[-1][0]

    @property
    def project_bn(self) -> nn.BatchNorm2d:
        return self.conv[-1][1]

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)
