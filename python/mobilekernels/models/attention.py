"""Attention blocks: squeeze-and-excitation, ECA, CBAM.

All take and return ``(N, C, H, W)`` and gate ``x`` with weights computed from
``x`` itself, i.e. per sample (as in the papers), never learned constants.

* :class:`SqueezeExcitation` (Hu et al. 2018): ``x * gate(fc2(act(fc1(avgpool(x)))))``,
  ``fc1``/``fc2`` are 1x1 convs with bias, names as in torchvision.
* :class:`ECA` (Wang et al. 2020): ``x * sigmoid(conv1d_k(avgpool(x)))`` across channels,
  ``k`` adaptive to ``C`` (odd, ``|log2(C)/2 + 1/2|``), no dimensionality reduction.
* :class:`CBAM` (Woo et al. 2018), "mixed" attention: channel gate
  ``sigmoid(mlp(avgpool(x)) + mlp(maxpool(x)))`` (shared ``fc1``/``fc2``), then a spatial
  gate ``sigmoid(bn(conv7x7([max_c(x), mean_c(x)])))``.

Channel pruning (:mod:`mobilekernels.prune`) calls :meth:`prune_channels` with the
kept channel indices. A pruned channel is treated as an all-zero channel, so a
pruned block computes exactly what the unpruned one computes on inputs whose
removed channels are zero: ECA remembers the original channel positions of its
1-D conv, CBAM the original channel count for its channel mean (and that a zero
took part in its channel max).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from .layers import make_divisible

__all__ = ["SqueezeExcitation", "ECA", "CBAM", "make_attention", "ATTENTION_TYPES"]

ATTENTION_TYPES = ("se", "eca", "cbam")


def _slice_conv_(conv: nn.Conv2d, keep: Tensor, dim: int) -> None:
    w = conv.weight.data.index_select(dim, keep).clone()
    conv.weight = nn.Parameter(w, requires_grad=conv.weight.requires_grad)
    if dim == 0:
        if conv.bias is not None:
            conv.bias = nn.Parameter(conv.bias.data[keep].clone(), requires_grad=conv.bias.requires_grad)
        conv.out_channels = len(keep)
    else:
        conv.in_channels = len(keep)


class SqueezeExcitation(nn.Module):
    """SE block; ``scale_activation`` is ``nn.Sigmoid`` (paper) or ``nn.Hardsigmoid`` (V3)."""

    def __init__(self, input_channels: int, squeeze_channels: int,
                 activation: Callable[..., nn.Module] = nn.ReLU,
                 scale_activation: Callable[..., nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    @property
    def channels(self) -> int:
        return self.fc1.in_channels

    def _scale(self, x: Tensor) -> Tensor:
        s = self.avgpool(x)
        s = self.activation(self.fc1(s))
        return self.scale_activation(self.fc2(s))

    def forward(self, x: Tensor) -> Tensor:
        return self._scale(x) * x

    def prune_channels(self, keep: Tensor) -> None:
        _slice_conv_(self.fc1, keep, 1)
        _slice_conv_(self.fc2, keep, 0)

    def hidden_pairs(self) -> list[tuple[str, str]]:
        """(producer, consumer) submodule names of the internal squeeze channels."""
        return [("fc1", "fc2")]


def eca_kernel_size(channels: int, gamma: float = 2.0, b: float = 1.0) -> int:
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class ECA(nn.Module):
    """Efficient channel attention: 1-D conv (no bias) over the pooled channel vector."""

    def __init__(self, channels: int, kernel_size: Optional[int] = None) -> None:
        super().__init__()
        k = kernel_size or eca_kernel_size(channels)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)
        self.scale_activation = nn.Sigmoid()
        self.num_channels = channels
        # After pruning: original positions of the kept channels (None = all kept).
        self.full_channels: Optional[int] = None
        self.register_buffer("channel_index", None)

    @property
    def channels(self) -> int:
        return self.num_channels

    def forward(self, x: Tensor) -> Tensor:
        y = self.avgpool(x).flatten(1)  # (N, C)
        if self.channel_index is not None:
            full = y.new_zeros(y.shape[0], self.full_channels)
            full[:, self.channel_index] = y
            y = self.conv(full.unsqueeze(1)).squeeze(1)[:, self.channel_index]
        else:
            y = self.conv(y.unsqueeze(1)).squeeze(1)
        return x * self.scale_activation(y)[:, :, None, None]

    def prune_channels(self, keep: Tensor) -> None:
        if self.channel_index is None:
            self.full_channels = self.num_channels
            self.channel_index = keep.clone()
        else:
            self.channel_index = self.channel_index[keep].clone()
        self.num_channels = len(keep)

    def hidden_pairs(self) -> list[tuple[str, str]]:
        return []


class CBAM(nn.Module):
    """Convolutional block attention module: channel gate then spatial gate."""

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7,
                 squeeze_channels: Optional[int] = None) -> None:
        super().__init__()
        hidden = squeeze_channels or make_divisible(channels / reduction, 8)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.activation = nn.ReLU(inplace=True)
        self.spatial_conv = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2, bias=False)
        self.spatial_bn = nn.BatchNorm2d(1)
        self.scale_activation = nn.Sigmoid()
        # After pruning: original channel count (None = never pruned).
        self.full_channels: Optional[int] = None

    @property
    def channels(self) -> int:
        return self.fc1.in_channels

    def _mlp(self, s: Tensor) -> Tensor:
        return self.fc2(self.activation(self.fc1(s)))

    def forward(self, x: Tensor) -> Tensor:
        avg = x.mean((2, 3), keepdim=True)
        mx = x.amax((2, 3), keepdim=True)
        x = x * self.scale_activation(self._mlp(avg) + self._mlp(mx))
        c_max = x.amax(1, keepdim=True)
        if self.full_channels is None:
            c_mean = x.mean(1, keepdim=True)
        else:  # removed channels count as zeros
            c_mean = x.sum(1, keepdim=True) / self.full_channels
            if self.full_channels > x.shape[1]:
                c_max = c_max.clamp_min(0)
        s = self.spatial_bn(self.spatial_conv(torch.cat([c_max, c_mean], 1)))
        return x * self.scale_activation(s)

    def prune_channels(self, keep: Tensor) -> None:
        if self.full_channels is None:
            self.full_channels = self.channels
        _slice_conv_(self.fc1, keep, 1)
        _slice_conv_(self.fc2, keep, 0)

    def hidden_pairs(self) -> list[tuple[str, str]]:
        return [("fc1", "fc2")]


def make_attention(name: Optional[str], channels: int, *, where: str = "") -> Optional[nn.Module]:
    """Build the attention block ``name`` (None, "se", "eca", "cbam") for ``channels``.

    SE uses ``squeeze = make_divisible(C / 4)`` and a sigmoid gate; CBAM reduction 16.
    """
    if name is None:
        return None
    key = name.lower() if isinstance(name, str) else name
    if key == "se":
        return SqueezeExcitation(channels, make_divisible(channels / 4, 8))
    if key == "eca":
        return ECA(channels)
    if key == "cbam":
        return CBAM(channels)
    loc = f" for {where}" if where else ""
    raise ValueError(f"unknown attention {name!r}{loc}: expected None or one of {ATTENTION_TYPES}")


def check_attention(name: Optional[str], model: str) -> Optional[str]:
    """Validate an ``attention=`` argument early; returns the lower-cased name."""
    if name is None:
        return None
    if not isinstance(name, str) or name.lower() not in ATTENTION_TYPES:
        raise ValueError(f"{model}: unknown attention {name!r}; expected None or one of {ATTENTION_TYPES}")
    return name.lower()
