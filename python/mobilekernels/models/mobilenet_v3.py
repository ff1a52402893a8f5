"""MobileNetV3 Large / Small (Howard et al. 2019), torchvision-compatible layout and names.

``features`` = ``[stem Conv2dNormActivation(3->16, s2, Hardswish), bnecks ...,
Conv2dNormActivation(->6*C, 1x1, Hardswish)]``, ``avgpool``, ``classifier =
Sequential(Linear, Hardswish, Dropout, Linear)``. BatchNorm uses eps=1e-3,
momentum=0.01. Each bneck is an :class:`InvertedResidual` with ``.block`` (see
:mod:`.blocks`); SE blocks are ``SqueezeExcitation(C, make_divisible(C/4))`` with
a hard-sigmoid gate, at the positions of the paper. ``attention="eca"`` or
``"cbam"`` puts that block at the same positions instead; ``attention=None``
removes them (an ablation). A torchvision state_dict loads with the default "se".
"""
from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple, Optional

import torch
from torch import Tensor, nn

from .attention import SqueezeExcitation, check_attention, make_attention
from .blocks import BlockViews
from .layers import ClassifierHead, Conv2dNormActivation, init_weights, make_divisible
from .weights import resolve_weights

__all__ = ["MobileNetV3", "InvertedResidual", "mobilenet_v3_large", "mobilenet_v3_small",
           "BneckConfig", "v3_setting"]


class InvertedResidual(BlockViews, nn.Module):
    """MobileNetV3 bneck: [1x1 expand] -> dw kxk -> [SE/ECA/CBAM] -> 1x1 project + BN.

    ``activation_layer`` is ``nn.ReLU`` ("RE") or ``nn.Hardswish`` ("HS").
    """

    _body = "block"

    def __init__(self, inp: int, kernel: int, expanded: int, oup: int, stride: int,
                 activation_layer: Callable[..., nn.Module], norm_layer: Callable[..., nn.Module],
                 attention: Optional[nn.Module] = None, dilation: int = 1) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2, got {stride}")
        self.stride = stride
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expanded != inp:
            layers.append(Conv2dNormActivation(inp, expanded, 1, norm_layer=norm_layer,
                                               activation_layer=activation_layer))
        dw_stride = 1 if dilation > 1 else stride
        layers.append(Conv2dNormActivation(expanded, expanded, kernel, dw_stride, groups=expanded,
                                           dilation=dilation, norm_layer=norm_layer,
                                           activation_layer=activation_layer))
        if attention is not None:
            layers.append(attention)
        layers.append(Conv2dNormActivation(expanded, oup, 1, norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self._is_cn = stride > 1

    @property
    def project(self) -> nn.Conv2d:
        return self.block[-1][0]

    @property
    def project_bn(self) -> nn.BatchNorm2d:
        return self.block[-1][1]

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out = out + x
        return out




class BneckConfig(NamedTuple):
    """One bneck row: channels already scaled by ``width_mult``."""
    input_channels: int
    kernel: int
    expanded_channels: int
    out_channels: int
    use_se: bool
    use_hs: bool
    stride: int
    dilation: int


# in, kernel, expanded, out, SE, activation, stride  (paper tables 1 and 2)
_LARGE = [(16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2),
          (24, 3, 72, 24, False, "RE", 1), (24, 5, 72, 40, True, "RE", 2),
          (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
          (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1),
          (80, 3, 184, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
          (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
          (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1),
          (160, 5, 960, 160, True, "HS", 1)]
_SMALL = [(16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2),
          (24, 3, 88, 24, False, "RE", 1), (24, 5, 96, 40, True, "HS", 2),
          (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
          (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1),
          (48, 5, 288, 96, True, "HS", 2), (96, 5, 576, 96, True, "HS", 1),
          (96, 5, 576, 96, True, "HS", 1)]


def v3_setting(arch: str, width_mult: float = 1.0) -> tuple[list[BneckConfig], int]:
    """Bneck rows and classifier hidden width (1280 large / 1024 small) for ``arch``."""
    rows = {"large": (_LARGE, 1280), "small": (_SMALL, 1024)}.get(arch)
    if rows is None:
        raise ValueError(f"unknown MobileNetV3 arch {arch!r}: expected 'large' or 'small'")
    table, last = rows

    def adj(c: int) -> int:
        return make_divisible(c * width_mult, 8)

    cfg = [BneckConfig(adj(i), k, adj(e), adj(o), se, act == "HS", s, 1) for i, k, e, o, se, act, s in table]
    return cfg, adj(last)


class MobileNetV3(ClassifierHead, nn.Module):
    """MobileNetV3 from a list of :class:`BneckConfig` rows."""

    def __init__(self, setting: list[BneckConfig], last_channel: int, num_classes: int = 1000,
                 dropout: float = 0.2, attention: Optional[str] = "se",
                 norm_layer: Optional[Callable[..., nn.Module]] = None) -> None:
        super().__init__()
        attention = check_attention(attention, "mobilenet_v3")
        if not setting:
            raise ValueError("MobileNetV3 needs at least one bneck row")
        norm_layer = norm_layer or partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        self.attention_type = attention
        layers: list[nn.Module] = [Conv2dNormActivation(3, setting[0].input_channels, 3, 2,
                                                        norm_layer=norm_layer,
                                                        activation_layer=nn.Hardswish)]
        for cnf in setting:
            attn = None
            if cnf.use_se and attention == "se":
                attn = SqueezeExcitation(cnf.expanded_channels, make_divisible(cnf.expanded_channels // 4, 8),
                                         scale_activation=nn.Hardsigmoid)
            elif cnf.use_se:
                attn = make_attention(attention, cnf.expanded_channels, where=f"features.{len(layers)}")
            layers.append(InvertedResidual(cnf.input_channels, cnf.kernel, cnf.expanded_channels,
                                           cnf.out_channels, cnf.stride,
                                           nn.Hardswish if cnf.use_hs else nn.ReLU, norm_layer,
                                           attention=attn, dilation=cnf.dilation))
        last_in = setting[-1].out_channels
        layers.append(Conv2dNormActivation(last_in, 6 * last_in, 1, norm_layer=norm_layer,
                                           activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(6 * last_in, last_channel), nn.Hardswish(inplace=True),
                                        nn.Dropout(p=dropout, inplace=True),
                                        nn.Linear(last_channel, num_classes))
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def _build(arch: str, num_classes: int, width_mult: float, attention: Optional[str],
           weights: Optional[str], pretrained: bool, **kwargs) -> MobileNetV3:
    if width_mult <= 0:
        raise ValueError(f"width_mult must be positive, got {width_mult}")
    check_attention(attention, f"mobilenet_v3_{arch}")
    setting, last = v3_setting(arch, width_mult)
    model = MobileNetV3(setting, last, num_classes=num_classes, attention=attention, **kwargs)
    return resolve_weights(model, weights, pretrained)


def mobilenet_v3_large(num_classes: int = 1000, width_mult: float = 1.0, attention: Optional[str] = "se",
                       weights: Optional[str] = None, pretrained: bool = False, **kwargs) -> MobileNetV3:
    """MobileNetV3-Large; 1.0x: 5,483,032 parameters, ~217 M MACs at 224x224."""
    return _build("large", num_classes, width_mult, attention, weights, pretrained, **kwargs)


def mobilenet_v3_small(num_classes: int = 1000, width_mult: float = 1.0, attention: Optional[str] = "se",
                       weights: Optional[str] = None, pretrained: bool = False, **kwargs) -> MobileNetV3:
    """MobileNetV3-Small; 1.0x: 2,542,856 parameters, ~56 M MACs at 224x224."""
    return _build("small", num_classes, width_mult, attention, weights, pretrained, **kwargs)
