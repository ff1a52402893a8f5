"""``SEInvertedResidual``: blocks with squeeze-excitation fused by ``InvertedResidual.from_torch``
(torchvision-style layout, mobilekernels V3 / V2+SE / V1+SE), BN folding, pack caching, the
autograd fallback, setting changes, state_dict / pickle, and what is refused."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

import mobilekernels as mk
from mobilekernels.models import mobilenet_v1, mobilenet_v2, mobilenet_v3_small



def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(c, generator=g) - 0.5)
    return model.eval()


def assert_matches(fused, block, x, tol=1e-4):
    """fp32 fused vs the torch block in float64."""
    with torch.no_grad():
        ref = copy.deepcopy(block).double()(x.double())
        y = fused(x)
    err = (y.double() - ref).abs().max().item()
    assert err <= tol * max(1.0, ref.abs().max().item()), f"max err {err:.3g}"


class SqueezeExcitation(nn.Module):
    """torchvision.ops.misc.SqueezeExcitation's layout, written out with plain modules."""

    def __init__(self, c, s, gate=nn.Hardsigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(c, s, 1), nn.Conv2d(s, c, 1)
        self.activation, self.scale_activation = nn.ReLU(), gate()

    def forward(self, x):
        return self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x))))) * x


def cna(i, o, k, s=1, g=1, act=nn.Hardswish):
    layers = [nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), nn.BatchNorm2d(o)]
    return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)


class TorchvisionV3Block(nn.Module):
    """torchvision.models.mobilenetv3.InvertedResidual's layout (``.block``, ``use_res_connect``)."""

    def __init__(self, i, k, e, o, s, act=nn.Hardswish, gate=nn.Hardsigmoid, se_at=2):
        super().__init__()
        self.use_res_connect = s == 1 and i == o
        layers = ([cna(i, e, 1, act=act)] if e != i else []) + [cna(e, e, k, s, e, act=act), cna(e, o, 1, act=None)]
        layers.insert(len(layers) - 1 if se_at == 2 else se_at, SqueezeExcitation(e, max(8, e // 4), gate))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x) if self.use_res_connect else self.block(x)


def _block(*args, seed=0, **kw):
    torch.manual_seed(seed)
    b = randomize_bn(TorchvisionV3Block(*args, **kw), seed)
    with torch.no_grad():
        for m in b.modules():
            if isinstance(m, SqueezeExcitation):
                m.fc2.bias.normal_(0, 2)  # gates across hardsigmoid's whole range
    return b


@pytest.mark.parametrize("i, k, e, o, s, act, gate", [
    (16, 3, 64, 16, 1, nn.Hardswish, nn.Hardsigmoid), (16, 5, 72, 24, 2, nn.ReLU, nn.Hardsigmoid),
    (24, 3, 24, 24, 1, nn.ReLU, nn.Sigmoid), (11, 5, 11, 13, 2, nn.Hardswish, nn.Sigmoid)])
def test_from_torchvision_style_v3_block(f32_isa, i, k, e, o, s, act, gate):
    block = _block(i, k, e, o, s, act, gate, seed=e + k)
    fused = mk.nn.InvertedResidual.from_torch(block)
    assert type(fused) is mk.nn.SEInvertedResidual and fused.residual == block.use_res_connect
    assert fused.gate == {nn.Hardsigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid"}[gate] and fused.se_activation == "relu"
    assert (fused.expand_weight is None) == (e == i) and fused.squeeze_channels == max(8, e // 4)
    for n, h, w in ((1, 9, 7), (3, 1, 1), (3, 17, 4)):
        assert_matches(fused, block, torch.randn(n, i, h, w))


@pytest.mark.parametrize("model, n_se", [(mobilenet_v2, 17), (mobilenet_v1, 13), (mobilenet_v3_small, 9)])
def test_mobilekernels_blocks_with_se(model, n_se):
    # V2 / V1 with SE use the paper's sigmoid gate; V1's "project" is pointwise + BN + ReLU.
    torch.manual_seed(1)
    net = randomize_bn(model(num_classes=4, attention="se"), seed=3)
    blocks = [b for b in net.features if type(b).__name__ in ("InvertedResidual", "DepthwiseSeparable")]
    fused = [mk.nn.InvertedResidual.from_torch(b) for b in blocks]
    assert sum(type(f) is mk.nn.SEInvertedResidual for f in fused) == n_se
    x = torch.randn(2, blocks[0].in_channels, 9, 8)
    for f, b in zip(fused, blocks):
        assert_matches(f, b, x)
        with torch.no_grad():
            x = b(x)


def test_se_in_another_place_or_other_layouts_are_refused():
    with pytest.raises(ValueError, match="between the depthwise and the project"):
        mk.nn.InvertedResidual.from_torch(_block(8, 3, 16, 8, 1, se_at=1))  # after the expand conv
    with pytest.raises(ValueError, match="no SqueezeExcitation"):
        mk.nn.SEInvertedResidual.from_torch(randomize_bn(mobilenet_v2(num_classes=2)).features[2])
    block = _block(8, 3, 16, 8, 1)
    block.block[2].avgpool = nn.AdaptiveMaxPool2d(1)  # not an SE we compute: refused as unsupported
    with pytest.raises(ValueError, match="not fused"):
        mk.nn.InvertedResidual.from_torch(block)
    block = _block(8, 3, 16, 8, 1)
    block.block[2].scale_activation = nn.Tanh()
    with pytest.raises(ValueError, match="not fused"):
        mk.nn.InvertedResidual.from_torch(block)
    with pytest.raises(ValueError, match="gate"):
        mk.nn.SEInvertedResidual(8, 16, 8, 4, gate="tanh")
    with pytest.raises(ValueError, match="squeeze"):
        mk.nn.SEInvertedResidual(8, 16, 8, 0)


def test_pack_cache_settings_and_autograd_fallback():
    block = _block(8, 3, 32, 8, 1, seed=2)
    fused = mk.nn.InvertedResidual.from_torch(block)
    x = torch.randn(2, 8, 6, 5)
    with torch.no_grad():
        y0 = fused(x)
        assert fused(x).equal(y0)
        fused.fc2_bias.add_(10.0)  # in place: repacked; hardsigmoid saturates at 1
        y1 = fused(x)
        assert not y1.equal(y0)
        block.block[2].fc2.bias.data.add_(10.0)
        assert_matches(fused, block, x)
        fused.gate = "sigmoid"  # a setting: the cached call is rebuilt
        assert not fused(x).equal(y1)
        fused.gate = "hardsigmoid"
        assert fused(x).equal(y1)
    y = fused(x)  # grad on, trainable parameters: the unfused differentiable path
    y.sum().backward()
    assert fused.fc1_weight.grad is not None and fused.fc2_bias.grad is not None and fused.dw_weight.grad is not None
    with torch.no_grad():
        torch.testing.assert_close(y.detach(), fused(x), rtol=1e-5, atol=1e-5)
    # grad on but nothing requires it, and a tensor subclass input: the registered packed op
    fused.requires_grad_(False)
    with torch.no_grad():
        ref = fused(x)
    torch.testing.assert_close(fused(x), ref, rtol=0, atol=0)
    torch.testing.assert_close(fused(nn.Parameter(x, requires_grad=False)), ref, rtol=0, atol=0)


def test_state_dict_pickle_deepcopy_and_info():
    fused = mk.nn.InvertedResidual.from_torch(_block(8, 5, 24, 16, 2, seed=4))
    x = torch.randn(1, 8, 7, 7)
    with torch.no_grad():
        y = fused(x)
        other = mk.nn.SEInvertedResidual(8, 24, 16, 8, kernel_size=5, stride=2)
        other.load_state_dict(fused.state_dict())
        assert other(x).equal(y)
        assert pickle.loads(pickle.dumps(fused))(x).equal(y)
        assert copy.deepcopy(fused)(x).equal(y)
    assert not any("pack" in k for k in fused.state_dict())
    assert {"fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"} <= set(fused.state_dict())
    info = fused.scratch_info((1, 8, 7, 7))
    assert info["buffer_bytes"] == 4 * 4 * 24 * 4 and "se hardsigmoid" in info["kernel"]
    assert "se=8 relu/hardsigmoid" in repr(fused)


def test_bad_input_errors():
    fused = mk.nn.InvertedResidual.from_torch(_block(8, 3, 16, 8, 1))
    with torch.no_grad():
        with pytest.raises(ValueError, match="channels"):
            fused(torch.randn(1, 7, 5, 5))
        with pytest.raises(TypeError, match="float32"):
            fused(torch.randn(1, 8, 5, 5, dtype=torch.float64))
        with pytest.raises(ValueError, match="4-D|rank|dim"):
            fused(torch.randn(8, 5, 5))
        with pytest.raises(ValueError, match="zero-size"):
            fused(torch.randn(1, 8, 0, 5))
        assert fused(torch.randn(0, 8, 5, 5)).shape == (0, 8, 5, 5)
