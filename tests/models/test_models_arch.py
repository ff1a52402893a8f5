"""Architecture checks: published parameter counts and MACs, shapes, options, attention."""
import pytest
import torch
from torch import nn

from mobilekernels.models import (CBAM, ECA, InvertedResidual, InvertedResidualV3, MODELS,
                                  SqueezeExcitation, count_macs, count_params, get_model,
                                  make_divisible, mobilenet_v1, mobilenet_v2, mobilenet_v3_large,
                                  mobilenet_v3_small)

# (exact parameter count, paper figure in millions, MACs at 224x224 in millions (papers))
PUBLISHED = {
    "mobilenet_v1": (4_231_976, 4.23, 569),
    "mobilenet_v2": (3_504_872, 3.50, 300),
    "mobilenet_v3_large": (5_483_032, 5.48, 219),
    "mobilenet_v3_small": (2_542_856, 2.54, 56),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_counts_and_macs(name):
    exact, millions, macs = PUBLISHED[name]
    model = get_model(name)
    n = count_params(model)
    assert n == exact
    assert round(n / 1e6, 2) == millions
    assert abs(count_macs(model) / 1e6 - macs) / macs < 0.02


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("size", [(64, 64), (96, 80)])
def test_any_resolution_and_num_classes(name, size):
    model = get_model(name, num_classes=7, width_mult=0.5).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 3, *size))
    assert y.shape == (2, 7)
    assert torch.isfinite(y).all()


def test_make_divisible():
    assert make_divisible(32 * 0.35) == 16  # would lose > 10% at 8
    assert make_divisible(1280) == 1280
    assert make_divisible(20) == 24 and make_divisible(19) == 24 and make_divisible(11) == 16
    assert make_divisible(3, 8) == 8
    assert make_divisible(100, 16) == 96


@pytest.mark.parametrize("builder", [mobilenet_v1, mobilenet_v2, mobilenet_v3_small, mobilenet_v3_large])
@pytest.mark.parametrize("width", [0.35, 0.75, 1.3])
def test_width_mult_channels_are_multiples_of_8(builder, width):
    model = builder(width_mult=width)
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and m.in_channels != 3 and m.out_channels != 1:
            assert m.out_channels % 8 == 0, name
    ref = builder()
    assert (count_params(model) < count_params(ref)) == (width < 1)


def _count(model, cls):
    return sum(isinstance(m, cls) for m in model.modules())


@pytest.mark.parametrize("attention,cls", [("se", SqueezeExcitation), ("eca", ECA), ("cbam", CBAM)])
def test_attention_option_places_blocks(attention, cls):
    assert _count(mobilenet_v1(attention=attention, width_mult=0.25), cls) == 13
    v2 = mobilenet_v2(attention=attention, width_mult=0.25)
    assert _count(v2, cls) == 17
    for block in v2.features[1:-1]:
        assert isinstance(block.attention, cls)
        assert list(block.conv).index(block.attention) == list(block.conv).index(block.depthwise) + 1
    # V3: at the paper's SE positions only (large 8 of 15 bnecks, small 9 of 11)
    assert _count(mobilenet_v3_large(attention=attention, width_mult=0.5), cls) == 8
    assert _count(mobilenet_v3_small(attention=attention, width_mult=0.5), cls) == 9


def test_v3_has_se_by_design_and_none_removes_it():
    assert _count(mobilenet_v3_small(), SqueezeExcitation) == 9
    se = next(m for m in mobilenet_v3_small().modules() if isinstance(m, SqueezeExcitation))
    assert isinstance(se.scale_activation, nn.Hardsigmoid)
    plain = mobilenet_v3_small(attention=None)
    assert _count(plain, (SqueezeExcitation, ECA, CBAM)) == 0
    assert _count(mobilenet_v2(), (SqueezeExcitation, ECA, CBAM)) == 0


@pytest.mark.parametrize("builder", [mobilenet_v1, mobilenet_v2, mobilenet_v3_small, mobilenet_v3_large])
@pytest.mark.parametrize("bad", ["SEx", "mixed", 3])
def test_unknown_attention_is_a_clear_error(builder, bad):
    with pytest.raises(ValueError, match="unknown attention"):
        builder(attention=bad)


def test_bad_width_and_pretrained():
    with pytest.raises(ValueError, match="width_mult"):
        mobilenet_v2(width_mult=0)
    with pytest.raises(ValueError, match="never downloads"):
        mobilenet_v3_large(pretrained=True)
    with pytest.raises(ValueError, match="unknown model"):
        get_model("resnet50")


def test_block_introspection_v2():
    m = mobilenet_v2()
    b1, b2, b3 = m.features[1], m.features[2], m.features[3]
    assert isinstance(b2, InvertedResidual)
    assert b1.expand is None and b2.expand is not None
    assert b2.expand.out_channels == 96 and b2.expand.conv.kernel_size == (1, 1)
    assert b2.depthwise.is_depthwise and b2.depthwise.conv.stride == (2, 2)
    assert isinstance(b2.project, nn.Conv2d) and b2.project.out_channels == 24
    assert b2.project is b2.conv[2] and b2.project_bn is b2.conv[3]
    assert b2.activation is nn.ReLU6 and b2.attention is None
    assert (b2.use_res_connect, b3.use_res_connect) == (False, True)
    assert (b2.in_channels, b2.hidden_channels, b2.out_channels, b2.stride) == (16, 96, 24, 2)
    assert m.last_channel == 1280


def test_block_introspection_v3_and_v1():
    m = mobilenet_v3_large()
    b = m.features[4]  # 24 -> 72 (k5, SE, ReLU, s2) -> 40
    assert isinstance(b, InvertedResidualV3) and type(b).__name__ == "InvertedResidual"
    assert b.depthwise.conv.kernel_size == (5, 5) and b.activation is nn.ReLU
    assert isinstance(b.attention, SqueezeExcitation)
    assert b.project is b.block[-1][0] and isinstance(b.project_bn, nn.BatchNorm2d)
    assert m.features[7].activation is nn.Hardswish
    v1 = mobilenet_v1()
    blk = v1.features[2]
    assert blk.expand is None and blk.depthwise.is_depthwise and not blk.use_res_connect
    assert (blk.in_channels, blk.out_channels, blk.stride) == (64, 128, 2)


@pytest.mark.parametrize("cls", [SqueezeExcitation, ECA, CBAM])
def test_attention_weights_are_per_sample(cls):
    torch.manual_seed(0)
    block = (cls(32, 8) if cls is SqueezeExcitation else cls(32)).eval()
    x = torch.randn(4, 32, 6, 6)
    with torch.no_grad():
        y = block(x)
        # same result one sample at a time (no batch coupling) ...
        assert torch.allclose(y, torch.cat([block(x[i:i + 1]) for i in range(4)]), atol=1e-6)
        # ... and the gate depends on the sample (it is computed from x, not learned constants)
        gate = y / x
        assert not torch.allclose(gate[0], gate[1], atol=1e-4)
        assert ((gate > 0) & (gate < 1)).all()
    assert y.shape == x.shape


def test_eca_kernel_size_adapts_to_channels():
    assert ECA(64).conv.kernel_size == (3,)
    assert ECA(256).conv.kernel_size == (5,)
    assert ECA(1024).conv.kernel_size == (5,)
    assert ECA(16).conv.kernel_size == (3,)
