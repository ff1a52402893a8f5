"""Shared building blocks: channel rounding, conv-BN-activation, weight init.

``Conv2dNormActivation`` reproduces torchvision's layout exactly: an
``nn.Sequential`` of ``[Conv2d, BatchNorm2d, activation]`` (indices 0, 1, 2;
the activation is omitted when ``activation_layer=None``), so state_dict keys
are ``<name>.0.weight``, ``<name>.1.running_mean`` ... as in torchvision.
"""
from __future__ import annotations

from typing import Callable, Optional

from torch import nn

__all__ = ["make_divisible", "Conv2dNormActivation", "init_weights", "ACTIVATIONS"]

# Activation module types a converter may need to recognise (elementwise, f(0) = 0).
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU)


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (MobileNet rule).

    The result is at least ``min_value`` (default ``divisor``) and never more
    than 10% below ``value``: if rounding down loses more than 10% it adds one
    ``divisor``. Used for every channel count, so ``width_mult`` always gives
    multiples of 8.
    """
    if divisor <= 0:
        raise ValueError(f"divisor must be positive, got {divisor}")
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


class Conv2dNormActivation(nn.Sequential):
    """``Conv2d -> BatchNorm2d -> activation`` with "same" padding.

    Indices: ``[0]`` conv (bias only when ``norm_layer`` is None), ``[1]`` norm,
    ``[2]`` activation (absent when ``activation_layer`` is None).
    ``groups == in_channels == out_channels`` makes it depthwise.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        norm_layer: Optional[Callable[..., nn.Module]] = nn.BatchNorm2d,
        activation_layer: Optional[Callable[..., nn.Module]] = nn.ReLU,
        dilation: int = 1,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                      dilation=dilation, groups=groups, bias=norm_layer is None)
        ]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            try:
                layers.append(activation_layer(inplace=True))
            except TypeError:  # activations without an ``inplace`` argument
                layers.append(activation_layer())
        super().__init__(*layers)

    # Properties (not attributes) so they stay right after channel pruning.
    @property
    def conv(self) -> nn.Conv2d:
        return self[0]

    @property
    def in_channels(self) -> int:
        return self[0].in_channels

    @property
    def out_channels(self) -> int:
        return self[0].out_channels

    @property
    def activation(self) -> Optional[type]:
        """Activation class (e.g. ``nn.ReLU6``) or None."""
        for m in list(self)[1:]:
            if not isinstance(m, nn.modules.batchnorm._BatchNorm):
                return type(m)
        return None

    @property
    def is_depthwise(self) -> bool:
        c = self[0]
        return c.groups > 1 and c.groups == c.in_channels == c.out_channels


class ClassifierHead:
    """``last_channel`` and ``num_classes`` of a MobileNet, read off the last Linear of its
    ``classifier`` (so they stay true after pruning or swapping the head)."""

    @property
    def last_channel(self) -> int:
        return self.classifier[-1].in_features

    @property
    def num_classes(self) -> int:
        return self.classifier[-1].out_features


def init_weights(model: nn.Module) -> None:
    """torchvision's MobileNet init: Kaiming-normal (fan_out) convs, BN = (1, 0),
    Linear ~ N(0, 0.01), zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
