"""MobileNetV1 (Howard et al. 2017). torchvision has no V1; names follow the V2 style.

``features`` = ``[stem Conv2dNormActivation(3->32, s2, ReLU), 13 x DepthwiseSeparable]``,
``avgpool``, ``classifier = Sequential(Dropout, Linear(1024, num_classes))``.
Each :class:`DepthwiseSeparable` has ``.conv = Sequential(dw, [attention], pw)``;
``attention`` ("se" | "eca" | "cbam") sits after the depthwise conv, as in V2/V3.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from .attention import check_attention, make_attention
from .blocks import DepthwiseSeparable
from .layers import ClassifierHead, Conv2dNormActivation, init_weights, make_divisible
from .weights import resolve_weights

__all__ = ["MobileNetV1", "mobilenet_v1", "V1_SETTING"]

# (output channels, stride) of the 13 depthwise-separable blocks (paper table 1)
V1_SETTING = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
              (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


class MobileNetV1(ClassifierHead, nn.Module):
    """MobileNetV1 with ReLU (paper); ``activation_layer=nn.ReLU6`` gives the Keras variant."""

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2,
                 attention: Optional[str] = None,
                 norm_layer: Optional[Callable[..., nn.Module]] = None,
                 activation_layer: Callable[..., nn.Module] = nn.ReLU) -> None:
        super().__init__()
        attention = check_attention(attention, "mobilenet_v1")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        norm_layer = norm_layer or nn.BatchNorm2d
        self.attention_type = attention
        c_in = make_divisible(32 * width_mult, 8)
        layers: list[nn.Module] = [Conv2dNormActivation(3, c_in, 3, 2, norm_layer=norm_layer,
                                                        activation_layer=activation_layer)]
        for c, s in V1_SETTING:
            c_out = make_divisible(c * width_mult, 8)
            attn = make_attention(attention, c_in, where=f"features.{len(layers)}")
            layers.append(DepthwiseSeparable(c_in, c_out, s, norm_layer, activation_layer, attn))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(c_in, num_classes))
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v1(num_classes: int = 1000, width_mult: float = 1.0, attention: Optional[str] = None,
                 weights: Optional[str] = None, pretrained: bool = False, **kwargs) -> MobileNetV1:
    """MobileNetV1; 1.0x: 4,231,976 parameters, ~569 M MACs at 224x224."""
    model = MobileNetV1(num_classes=num_classes, width_mult=width_mult, attention=attention, **kwargs)
    return resolve_weights(model, weights, pretrained)
