"""Clear errors for bad input, and attention blocks pruned on their own."""
import copy

import pytest
import torch
from torch import nn

from mobilekernels.models import CBAM, ECA, SqueezeExcitation, mobilenet_v2
from mobilekernels.prune import (ChannelPruner, UnsupportedLayerError, iterative_prune,
                                 magnitude_prune, prune_channels)

X = torch.randn(2, 3, 32, 32)


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5, float("nan"), "half"])
def test_ratio_outside_unit_interval(ratio):
    model = mobilenet_v2(width_mult=0.25, num_classes=4)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune_channels(model, ratio, example_input=X)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        magnitude_prune(model, ratio)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        iterative_prune(model, ratio, 2)


def test_bad_options():
    pr = ChannelPruner(mobilenet_v2(width_mult=0.25, num_classes=4), X)
    with pytest.raises(ValueError, match="importance"):
        pr.plan(0.5, importance="taylor")
    with pytest.raises(ValueError, match="scope"):
        pr.plan(0.5, scope="model")
    with pytest.raises(ValueError, match="round_to"):
        pr.plan(0.5, round_to=0)
    name = pr.groups[0].name
    with pytest.raises(ValueError, match=f"ratio for group '{name}'"):
        pr.plan(0.5, ratios={name: 1.0})
    with pytest.raises(ValueError, match="invalid kept indices"):
        pr.apply({name: torch.tensor([0, 0, 1])})


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3)
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(16, 16, 3, groups=4))
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        return self.head(self.body(self.stem(x)).mean((2, 3)))


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 8, 1), nn.Conv2d(3, 8, 1)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.head(torch.cat([self.a(x), self.b(x)], 1))


class WithGroupNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.norm = nn.GroupNorm(2, 8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        return self.head(self.norm(self.conv(x)))


class FlattenMap(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=8)
        self.fc = nn.Linear(8 * 4 * 4, 2)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


@pytest.mark.parametrize("model,layer", [
    (Grouped(), "'body.1'"),
    (Concat(), "cat"),
    (WithGroupNorm(), "'norm' \\(GroupNorm\\)"),
    (FlattenMap(), "flatten"),
])
def test_unsupported_layers_are_named(model, layer):
    with pytest.raises(UnsupportedLayerError, match=layer):
        prune_channels(model, 0.5, example_input=X)


def test_masked_model_must_be_baked_first():
    model = mobilenet_v2(width_mult=0.25, num_classes=4)
    magnitude_prune(model, 0.5)
    with pytest.raises(UnsupportedLayerError, match="bake"):
        prune_channels(model, 0.5, example_input=X)


@pytest.mark.parametrize("make", [lambda c: SqueezeExcitation(c, 8), ECA, CBAM])
def test_attention_prune_channels_equals_zeroed_channels(make):
    """A pruned block computes what the full block computes with those channels zeroed,
    including CBAM's channel mean/max on negative inputs and ECA's channel neighbours;
    pruning twice composes."""
    torch.manual_seed(0)
    block = make(32).double().eval()
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn_like(p) * 0.2)  # small: keep the sigmoid gates unsaturated
    full = copy.deepcopy(block)
    x = -torch.rand(3, 32, 5, 5, dtype=torch.float64) - 0.1  # all negative: channel max < 0
    removed = [0, 3, 4, 17, 30]
    keep = torch.tensor(sorted(set(range(32)) - set(removed)))
    keep2 = torch.arange(0, len(keep), 2)
    with torch.no_grad():
        block.prune_channels(keep)
        x0 = x.clone()
        x0[:, removed] = 0
        assert torch.allclose(block(x[:, keep]), full(x0)[:, keep], atol=1e-12)
        block.prune_channels(keep2)
        x0[:, keep[1::2]] = 0
        kept = keep[keep2]
        assert torch.allclose(block(x[:, kept]), full(x0)[:, kept], atol=1e-12)
        assert block(x[:, kept]).shape == (3, 14, 5, 5)
