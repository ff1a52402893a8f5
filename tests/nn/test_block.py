"""Modules: ``PointwiseConv2d`` as a drop-in ``nn.Conv2d(1x1)`` and ``InvertedResidual.from_torch``
on torchvision-style, mobilekernels V2 and V3 (no attention) blocks, with BN folding, pack
caching, the autograd fallback, state_dict and a whole converted MobileNetV2 feature stack."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

import mobilekernels as mk
from mobilekernels.models import mobilenet_v3
from mobilekernels.models.blocks import InvertedResidual as MkV2Block
from mobilekernels.models.mobilenet_v2 import mobilenet_v2


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


class TorchvisionStyleBlock(nn.Module):
    """torchvision.models.mobilenetv2.InvertedResidual's layout, written out with plain modules."""

    def __init__(self, inp, oup, stride, t):
        super().__init__()
        hid = inp * t
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if t != 1:
            layers.append(nn.Sequential(nn.Conv2d(inp, hid, 1, bias=False), nn.BatchNorm2d(hid), nn.ReLU6(True)))
        layers += [nn.Sequential(nn.Conv2d(hid, hid, 3, stride, 1, groups=hid, bias=False), nn.BatchNorm2d(hid),
                                 nn.ReLU6(True)),
                   nn.Conv2d(hid, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def assert_matches(fused, block, x, tol=1e-4):
    with torch.no_grad():
        ref = copy.deepcopy(block).double()(x.double())
        y = fused(x)
    err = (y.double() - ref).abs().max().item()
    assert err <= tol * max(1.0, ref.abs().max().item()), f"max err {err:.3g}"


@pytest.mark.parametrize("inp, oup, stride, t", [(16, 16, 1, 6), (16, 24, 2, 6), (32, 16, 1, 1), (8, 8, 2, 1)])
def test_from_torchvision_style_block(inp, oup, stride, t):
    block = randomize_bn(TorchvisionStyleBlock(inp, oup, stride, t), seed=inp + t)
    fused = mk.nn.InvertedResidual.from_torch(block)
    assert fused.residual == block.use_res_connect and fused.activations[1] == "relu6"
    assert (fused.expand_weight is None) == (t == 1)
    assert_matches(fused, block, torch.randn(2, inp, 9, 11))


def test_from_mobilenet_v3_block_hardswish_and_relu():
    for act in (nn.Hardswish, nn.ReLU):
        block = randomize_bn(mobilenet_v3.InvertedResidual(16, 5, 48, 16, 1, act, nn.BatchNorm2d), seed=3)
        fused = mk.nn.InvertedResidual.from_torch(block)
        assert fused.kernel_size == 5 and fused.residual
        assert fused.activations == ({nn.Hardswish: "hardswish", nn.ReLU: "relu"}[act],) * 2 + ("none",)
        assert_matches(fused, block, torch.randn(1, 16, 10, 7))


def test_attention_blocks_are_refused():
    # SE fuses (SEInvertedResidual, tests/nn/test_se_block.py); ECA and CBAM do not.
    for attention in ("eca", "cbam"):
        block = mobilenet_v2(attention=attention).features[3]
        with pytest.raises(ValueError, match="not fused"):
            mk.nn.InvertedResidual.from_torch(block)
    assert type(mk.nn.InvertedResidual.from_torch(mobilenet_v2(attention="se").features[3])) is mk.nn.SEInvertedResidual
    with pytest.raises(ValueError, match="Sequential"):
        mk.nn.InvertedResidual.from_torch(nn.Conv2d(3, 3, 1))


def test_whole_mobilenet_v2_features_converted():
    model = randomize_bn(mobilenet_v2(), seed=1)
    torch.manual_seed(0)
    feats = model.features
    fused = nn.Sequential(feats[0], *[mk.nn.InvertedResidual.from_torch(b) if isinstance(b, MkV2Block) else b
                                      for b in feats[1:]])
    assert sum(isinstance(m, mk.nn.InvertedResidual) for m in fused) == 17
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        ref, y = feats(x), fused(x)
    err = (y - ref).abs().max().item()
    assert err <= 1e-3 * max(1.0, ref.abs().max().item()), f"max err {err:.3g}"  # fp32 vs fp32 through 17 blocks


def test_pack_cache_follows_weight_changes_and_autograd_falls_back():
    block = randomize_bn(MkV2Block(8, 8, 1, 4), seed=2)
    fused = mk.nn.InvertedResidual.from_torch(block)
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        y0 = fused(x)
        assert fused(x).equal(y0)  # cached packs
        fused.project_bias.add_(1.0)  # in-place change bumps the version: repacked
        torch.testing.assert_close(fused(x), y0 + 1.0)
    # grad mode with trainable parameters: the unfused differentiable ops run
    y = fused(x)
    y.sum().backward()
    assert fused.dw_weight.grad is not None and fused.expand_weight.grad is not None
    with torch.no_grad():
        torch.testing.assert_close(y.detach(), fused(x), rtol=1e-5, atol=1e-5)


def test_state_dict_pickle_and_deepcopy():
    fused = mk.nn.InvertedResidual.from_torch(randomize_bn(MkV2Block(8, 16, 2, 6), seed=4))
    x = torch.randn(1, 8, 7, 7)
    with torch.no_grad():
        y = fused(x)
        other = mk.nn.InvertedResidual(8, 48, 16, stride=2)
        other.load_state_dict(fused.state_dict())
        assert other(x).equal(y)
        assert pickle.loads(pickle.dumps(fused))(x).equal(y)
        assert copy.deepcopy(fused)(x).equal(y)
    assert not any("pack" in k for k in fused.state_dict())


def test_pointwise_from_conv_and_state_dict():
    torch.manual_seed(0)
    conv = nn.Conv2d(13, 21, 1)
    pw = mk.nn.PointwiseConv2d.from_conv(conv, activation="relu6")
    x = torch.randn(2, 13, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(pw(x), torch.nn.functional.relu6(conv(x)), rtol=1e-5, atol=1e-5)
        other = mk.nn.Conv1x1(13, 21, activation="relu6")
        other.load_state_dict(conv.state_dict())
        assert other(x).equal(pw(x))
    y = pw(x.requires_grad_())
    y.sum().backward()
    assert pw.weight.grad.shape == conv.weight.shape and x.grad is not None


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3), dict(stride=2), dict(groups=13), dict(padding=1),
                                    dict(activation="gelu")])
def test_pointwise_rejects_non_1x1(kwargs):
    with pytest.raises(ValueError):
        mk.nn.PointwiseConv2d(13, 13, **kwargs)
    with pytest.raises(ValueError):
        mk.nn.PointwiseConv2d.from_conv(nn.Conv2d(13, 13, **{k: v for k, v in kwargs.items() if k != "activation"},
                                                  **({"kernel_size": 1} if "kernel_size" not in kwargs else {})),
                                        activation=kwargs.get("activation", "none"))
