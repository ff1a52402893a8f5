"""mobilekernels.convert: whole models on our kernels, equal to the original in float64."""
from __future__ import annotations

import io

import pytest
import torch
from torch import nn

import mobilekernels as mk
from mobilekernels.models import mobilenet_v1, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small

MODELS = {"v1": mobilenet_v1, "v2": mobilenet_v2, "v3s": mobilenet_v3_small, "v3l": mobilenet_v3_large}


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics so folding is really tested
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
    return model.eval()


def _check(model: nn.Module, x: torch.Tensor) -> mk.ConvertedModel:
    conv = mk.convert(model)
    with torch.no_grad():
        y = conv(x)
        ref = model.double()(x.double())
    model.float()
    # fp32 through ~50 layers vs fp64: errors relative to the output's scale.
    err = (y.double() - ref).abs().max().item()
    assert err <= 1e-4 * ref.abs().max().item() + 1e-6, err
    return conv


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("attention", [None, "se", "eca", "cbam"])
def test_models_and_attention(name, attention):
    torch.manual_seed(0)
    kwargs = {} if attention is None else {"attention": attention}
    model = _randomize_bn(MODELS[name](num_classes=10, **kwargs))
    conv = _check(model, torch.randn(2, 3, 40, 36))
    s = conv.summary()
    assert "fused blocks" in s
    n_fused = sum(isinstance(m, mk.nn.InvertedResidual) for m in conv.modules())
    n_se = sum(isinstance(m, mk.nn.SEInvertedResidual) for m in conv.modules())
    if attention in (None, "se"):
        assert n_fused == {"v1": 13, "v2": 17, "v3s": 11, "v3l": 15}[name]  # every block fused
    if attention == "se" or (attention is None and name.startswith("v3")):  # V3's default is SE
        # V1/V2: SE on every block; V3: only where the paper puts it
        assert n_se == {"v1": 13, "v2": 17, "v3s": 9, "v3l": 8}[name]
        assert f"({n_se} with squeeze-excitation)" in s
    elif attention is None:
        assert n_se == 0
    assert n_fused + sum(isinstance(m, (mk.nn.DepthwiseConv2d, mk.nn.PointwiseConv2d)) for m in conv.modules()) > 0


def test_torchvision_style_tree():
    # The block layout torchvision uses (Conv2dNormActivation = Sequential(conv, bn, act)).
    def cna(i, o, k, s=1, g=1):
        return nn.Sequential(nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), nn.BatchNorm2d(o), nn.ReLU6())

    class Block(nn.Module):
        def __init__(self, i, o, s, t):
            super().__init__()
            h = i * t
            self.use_res_connect = s == 1 and i == o
            self.conv = nn.Sequential(cna(i, h, 1), cna(h, h, 3, s, h), nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o))

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    torch.manual_seed(1)
    net = _randomize_bn(nn.Sequential(cna(3, 16, 3, 2), Block(16, 16, 1, 6), Block(16, 24, 2, 6), nn.AdaptiveAvgPool2d(1)))
    conv = _check(net, torch.randn(1, 3, 33, 31))
    assert sum(isinstance(m, mk.nn.InvertedResidual) for m in conv.modules()) == 2


def test_state_dict_and_pickle_round_trip():
    torch.manual_seed(2)
    conv = mk.convert(_randomize_bn(mobilenet_v2(num_classes=5)))
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        y = conv(x)
    again = mk.convert(_randomize_bn(mobilenet_v2(num_classes=5), seed=9))
    again.load_state_dict(conv.state_dict())
    buf = io.BytesIO()
    torch.save(conv, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    with torch.no_grad():
        assert torch.equal(again(x), y)
        assert torch.equal(loaded(x), y)


def test_torch_compile_converted_model():
    torch.manual_seed(3)
    conv = mk.convert(_randomize_bn(mobilenet_v3_small(num_classes=4)))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        eager = conv(x)
        compiled = torch.compile(conv, backend="aot_eager")(x)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)


def test_unsupported_layers_stay_and_are_reported():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.BatchNorm2d(8), nn.GELU(),
                        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.Hardswish())
    net = _randomize_bn(net)
    conv = _check(net, torch.randn(2, 3, 9, 9))
    s = conv.summary()
    assert "kept in PyTorch" in s and "DepthwiseConv2d" in s and "PointwiseConv2d" in s
    assert isinstance(conv.model[2], nn.GELU)  # unknown activation stays


def test_convert_rejects_non_modules():
    with pytest.raises(TypeError, match="nn.Module"):
        mk.convert(lambda x: x)


def test_chain_option_swaps_feature_sequentials():
    torch.manual_seed(4)
    model = _randomize_bn(mobilenet_v2(num_classes=3))
    chained, plain = mk.convert(model), mk.convert(model, chain=False)
    assert type(chained.model.features) is mk.nn.ChainedSequential
    assert type(plain.model.features) is nn.Sequential
    assert type(chained.model.classifier) is nn.Sequential  # nothing of ours to chain there
    assert list(chained.state_dict()) == list(plain.state_dict())
    assert "1 chained runs (18 layers)" in chained.summary()
    x = torch.randn(1, 3, 36, 36)
    with torch.no_grad():
        assert torch.equal(chained(x), plain(x))


@pytest.mark.parametrize("name", ["v3l", "v3s"])
def test_mobilenet_v3_with_se_is_one_chain_at_224(name):
    # The default V3 (SE blocks): every bneck fused, SE inside the C++ call, and the whole
    # feature stack after the stem conv one chained run.
    torch.manual_seed(5)
    model = _randomize_bn(MODELS[name](num_classes=10))
    conv = _check(model, torch.randn(1, 3, 224, 224))
    s = conv.summary()
    n_blocks, n_se = {"v3l": (15, 8), "v3s": (11, 9)}[name]
    assert f"{n_blocks} fused blocks ({n_se} with squeeze-excitation)" in s
    assert "1 chained runs" in s and "kept (layers converted)" not in s
    assert conv.model.features.chained_runs() == [[str(i) for i in range(1, n_blocks + 1)] + [f"{n_blocks + 1}.0"]]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_stem_runs_on_stemconv_and_reads_nchw_in_place(name):
    # The 3-channel stem conv (+BN+activation) becomes one StemConv2d; the wrapper then skips its
    # channels_last copy of the input. Every input layout gives the same result as the model.
    from mobilekernels.converter import _first_layer

    torch.manual_seed(6)
    model = _randomize_bn(MODELS[name](num_classes=10))
    conv = mk.convert(model)
    stem = _first_layer(conv.model)
    assert isinstance(stem, mk.nn.StemConv2d) and stem.in_channels == 3
    assert stem.activation != "none"  # BN folded and the activation fused
    assert "StemConv2d" in conv.summary()
    x = torch.randn(2, 3, 40, 37)
    wide = torch.randn(2, 5, 40, 73)[:, 1:4, :, ::2]  # a non-contiguous slice
    wide.copy_(x)
    with torch.no_grad():
        ref = model.double()(x.double())
        model.float()
        for xl in (x, x.contiguous(memory_format=torch.channels_last), wide):
            y = conv(xl)
            assert (y.double() - ref).abs().max().item() <= 1e-4 * ref.abs().max().item() + 1e-6


def test_input_copy_kept_when_first_layer_is_not_a_stem():
    # A first conv on 8 channels stays a PyTorch conv: the wrapper still makes the input channels_last.
    from mobilekernels.converter import _first_layer

    net = _randomize_bn(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 4, 3, stride=2, padding=1), nn.ReLU6()))
    conv = _check(net, torch.randn(2, 8, 9, 9))
    assert not isinstance(_first_layer(conv.model), mk.nn.StemConv2d)
    assert isinstance(conv.model[3], nn.Conv2d) and not isinstance(conv.model[3], mk.nn.StemConv2d)  # 8 > 4 channels
