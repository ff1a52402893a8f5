"""MobileNetV2 (Sandler et al. 2018), torchvision-compatible layout and names.

``features`` = ``[stem Conv2dNormActivation(3->32, s2, ReLU6), 17 x InvertedResidual,
Conv2dNormActivation(->1280, 1x1, ReLU6)]``, then global average pooling and
``classifier = Sequential(Dropout, Linear)``. A torchvision ``mobilenet_v2``
state_dict loads with ``strict=True`` when ``attention=None`` (the default).
Input ``(N, 3, H, W)``, any ``H, W >= 32`` is fine; output ``(N, num_classes)``.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from .attention import check_attention, make_attention
from .blocks import InvertedResidual
from .layers import ClassifierHead, Conv2dNormActivation, init_weights, make_divisible
from .weights import resolve_weights

__all__ = ["MobileNetV2", "mobilenet_v2", "V2_SETTING"]

# t (expansion), c (output channels), n (repeats), s (first stride)
V2_SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
              [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]


class MobileNetV2(ClassifierHead, nn.Module):
    """MobileNetV2. ``attention`` ("se" | "eca" | "cbam") goes after each block's
    depthwise conv (``block.conv[2]``); the stem and last conv have none."""

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, round_nearest: int = 8,
                 dropout: float = 0.2, attention: Optional[str] = None,
                 norm_layer: Optional[Callable[..., nn.Module]] = None,
                 inverted_residual_setting: Optional[list] = None) -> None:
        super().__init__()
        attention = check_attention(attention, "mobilenet_v2")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        norm_layer = norm_layer or nn.BatchNorm2d
        setting = inverted_residual_setting or V2_SETTING
        if any(len(row) != 4 for row in setting):
            raise ValueError("inverted_residual_setting rows must be [t, c, n, s]")
        self.attention_type = attention
        input_channel = make_divisible(32 * width_mult, round_nearest)
        last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [Conv2dNormActivation(3, input_channel, stride=2, norm_layer=norm_layer,
                                                          activation_layer=nn.ReLU6)]
        for t, c, n, s in setting:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                hidden = int(round(input_channel * t))
                attn = make_attention(attention, hidden, where=f"features.{len(features)}")
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t,
                                                 norm_layer=norm_layer, attention=attn))
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, last_channel, 1, norm_layer=norm_layer,
                                             activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(last_channel, num_classes))
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


def mobilenet_v2(num_classes: int = 1000, width_mult: float = 1.0, attention: Optional[str] = None,
                 weights: Optional[str] = None, pretrained: bool = False, **kwargs) -> MobileNetV2:
    """MobileNetV2; 1.0x: 3,504,872 parameters, ~300 M MACs at 224x224.

    ``weights``: path of a local state_dict (torchvision's loads as is)."""
    model = MobileNetV2(num_classes=num_classes, width_mult=width_mult, attention=attention, **kwargs)
    return resolve_weights(model, weights, pretrained)
