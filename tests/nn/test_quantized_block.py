"""QuantizedInvertedResidual: built from our QuantizedConv2d pieces, from mk.quantize's QConv
steps and from a torch.ao-quantized torchvision-style block; bit-exact against the same pieces
run one after another (+ quant's int8 add); state_dict round trip; refusals."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.ao.nn.intrinsic.quantized import ConvReLU2d
from torch.ao.nn.quantized import Conv2d as TorchQConv2d
from torch.ao.nn.quantized import QFunctional

import mobilekernels as mk
from mobilekernels.nn import QuantizedConv2d, QuantizedInvertedResidual
from mobilekernels.quant.modules import qadd


def torch_qconv(cls, cin, cout, k, stride, groups, g, scale, zp):
    m = cls(cin, cout, k, stride=stride, padding=k // 2, groups=groups)
    wf = torch.randn(cout, cin // groups, k, k, generator=g) * (0.6 / (cin // groups * k * k) ** 0.5)
    ws = wf.abs().amax(dim=(1, 2, 3)) / 127
    m.set_weight_bias(torch.quantize_per_channel(wf, ws, torch.zeros(cout, dtype=torch.int64), 0, torch.qint8),
                      torch.randn(cout, generator=g) * 0.2)
    m.scale, m.zero_point = scale, zp
    return m


class TorchQBlock(nn.Module):
    """What torch.ao convert makes of torchvision's quantizable block (Conv-BN-ReLU fused)."""

    def __init__(self, cin, t, cout, stride, g):
        super().__init__()
        chid = cin * t
        layers = []
        if t != 1:
            layers.append(nn.Sequential(torch_qconv(ConvReLU2d, cin, chid, 1, 1, 1, g, 0.03, 0), nn.Identity()))
        layers.append(nn.Sequential(torch_qconv(ConvReLU2d, chid, chid, 3, stride, chid, g, 0.03, 0), nn.Identity()))
        layers.append(torch_qconv(TorchQConv2d, chid, cout, 1, 1, 1, g, 0.04, 128))
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and cin == cout
        self.skip_add = QFunctional()
        self.skip_add.scale, self.skip_add.zero_point = 0.05, 125


def unfused(block: TorchQBlock, x: torch.Tensor) -> torch.Tensor:
    """Our QuantizedConv2d pieces in sequence, then quant's add."""
    y = x
    for m in block.conv.modules():
        if isinstance(m, TorchQConv2d):
            y = QuantizedConv2d.from_torch(m)(y)
    if block.use_res_connect:
        a = qadd(x.int_repr(), x.q_scale(), x.q_zero_point(), y.int_repr(), y.q_scale(), y.q_zero_point(),
                 block.skip_add.scale, block.skip_add.zero_point)
        y = torch._make_per_tensor_quantized_tensor(a, block.skip_add.scale, block.skip_add.zero_point)
    return y


def qin(n, c, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.quantize_per_tensor(torch.randn(n, c, h, w, generator=g) * 2, 0.04, 100,
                                     torch.quint8).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("cin,t,cout,stride", [(16, 6, 16, 1), (16, 6, 24, 2), (32, 1, 16, 1), (8, 4, 8, 1)])
def test_from_torch_matches_unfused_pieces(cin, t, cout, stride):
    g = torch.Generator().manual_seed(cin + t + stride)
    block = TorchQBlock(cin, t, cout, stride, g)
    x = qin(2, cin, 11, 10, cin)
    m = QuantizedInvertedResidual.from_torch(block, x.q_scale(), x.q_zero_point())
    got, expect = m(x), unfused(block, x)
    assert got.dtype == torch.quint8 and got.q_scale() == expect.q_scale()
    assert got.q_zero_point() == expect.q_zero_point()
    assert torch.equal(got.int_repr(), expect.int_repr())
    assert expect.int_repr().float().std() > 2  # not a constant output
    # Torch's own quantized block agrees within a couple of steps (its add rounds differently,
    # its AVX2 engine may saturate int16 pair sums).
    with torch.no_grad():
        t_out = x
        for mm in block.conv.modules():
            if isinstance(mm, TorchQConv2d):
                t_out = mm(t_out)
        if block.use_res_connect:
            t_out = block.skip_add.add(x, t_out)
    assert (t_out.int_repr().int() - got.int_repr().int()).abs().float().mean() < 0.5


def test_state_dict_round_trip_and_info():
    g = torch.Generator().manual_seed(3)
    block = TorchQBlock(16, 6, 16, 1, g)
    x = qin(1, 16, 9, 9, 1)
    m = QuantizedInvertedResidual.from_torch(block, x.q_scale(), x.q_zero_point())
    m2 = QuantizedInvertedResidual(16, 96, 16)
    m2.load_state_dict(m.state_dict())
    assert torch.equal(m2(x).int_repr(), m(x).int_repr())
    info = m.info((1, 16, 56, 56), num_threads=1)
    assert info["scratch_bytes_per_thread"] * 8 <= info["expanded_bytes"] and info["kernel"].startswith("gemm")


def test_refusals():
    g = torch.Generator().manual_seed(5)
    block = TorchQBlock(8, 4, 8, 1, g)
    x = qin(1, 8, 6, 6, 2)
    m = QuantizedInvertedResidual.from_torch(block, x.q_scale(), x.q_zero_point())
    with pytest.raises(ValueError, match="input scale"):
        m(torch.quantize_per_tensor(x.dequantize(), 0.05, 100, torch.quint8))
    with pytest.raises(TypeError, match="quint8"):
        m(x.dequantize())
    with pytest.raises(ValueError, match="Hardswish"):
        QuantizedInvertedResidual(8, 32, 8, activations=("hardswish", "relu6", "none"))
    with pytest.raises(RuntimeError, match="no weights"):
        QuantizedInvertedResidual(8, 32, 8).forward_codes(x.int_repr(), x.q_scale(), x.q_zero_point())
    with pytest.raises(TypeError, match="torchvision-style"):
        QuantizedInvertedResidual.from_torch(nn.Conv2d(3, 3, 1), 0.1, 0)
    del block.skip_add
    with pytest.raises(ValueError, match="skip_add"):
        QuantizedInvertedResidual.from_torch(block, x.q_scale(), x.q_zero_point())


def test_from_quantize_steps():
    """From the QConv steps mk.quantize made for a MobileNetV2 block: equals the step's own
    unfused int8 forward."""
    from mobilekernels.models.blocks import InvertedResidual as Block
    from mobilekernels.quant.modules import QBlock, QConv

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU6(), Block(16, 16, 1, 6), Block(16, 24, 2, 6))
    for mod in net.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2)
    calib = [torch.randn(2, 3, 12, 12) for _ in range(3)]
    qm = mk.quantize(net, calib, progress=False)
    steps = [s for s in qm.steps if isinstance(s, QBlock)]
    assert steps
    x = torch.randn(1, 3, 12, 12)
    s, z = qm.in_qparams()
    from mobilekernels.quant.observers import quantize_tensor
    q = quantize_tensor(x.contiguous(memory_format=torch.channels_last), s, z)
    q, s, z = qm.steps[0].forward_int(q, s, z)
    for st in qm.steps[1:]:
        if isinstance(st, QBlock):
            convs = [c for c in st.steps if isinstance(c, QConv)]
            e, d, p = ([None] + convs) if len(convs) == 2 else convs
            fused = QuantizedInvertedResidual.from_qconvs(e, d, p, s, z, st.residual,
                                                          st.out_qparams() if st.residual else None)
            want, ws, wz = st._unfused_int(q, s, z) if hasattr(st, "_unfused_int") else st.forward_int(q, s, z)
            got = fused.forward_codes(q, s, z)
            assert torch.equal(got, want) and fused.output_qparams() == (ws, wz)
            q, s, z = want, ws, wz
        else:
            q, s, z = st.forward_int(q, s, z)


def test_eager_call_cache_matches_op_and_follows_weight_changes():
    """The eager path (cached validated C++ call) equals the registered op's path on every
    shape it sees, and a state_dict load / pack change after the first call is picked up."""
    a = QuantizedInvertedResidual.from_torch(TorchQBlock(16, 6, 16, 1, torch.Generator().manual_seed(7)), 0.04, 100)
    b = QuantizedInvertedResidual.from_torch(TorchQBlock(16, 6, 16, 1, torch.Generator().manual_seed(8)), 0.04, 100)
    for shape in [(1, 16, 9, 9), (2, 16, 5, 11), (1, 16, 9, 9)]:
        codes = qin(*shape, 4).int_repr()
        got = a.forward_codes(codes, 0.04, 100)
        assert torch.equal(got, a._forward_codes_op(codes, 0.04, 100))
    x = qin(1, 16, 9, 9, 5)
    before, other = a(x).int_repr(), b(x).int_repr()
    assert not torch.equal(before, other)
    a.load_state_dict(b.state_dict())
    assert torch.equal(a(x).int_repr(), other)
    with torch.no_grad():
        a.project_packed.copy_(QuantizedInvertedResidual.from_torch(
            TorchQBlock(16, 6, 16, 1, torch.Generator().manual_seed(7)), 0.04, 100).project_packed)
    assert not torch.equal(a(x).int_repr(), other)  # in-place pack change seen (version bump)
    assert torch.equal(torch.load(_saved(a), weights_only=False)(x).int_repr(), a(x).int_repr())


def _saved(m):
    import io
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    return buf


def test_from_quantize_steps_with_hardswish_tables():
    """From the QConv steps of MobileNetV3 Hardswish blocks (tables after the expand and
    depthwise requantization): equals the steps' unfused int8 forward, through the cached call
    and the registered op; state_dict round trip carries the tables; a state_dict saved before
    tables existed (no ``luts`` keys) still loads."""
    from mobilekernels.models import get_model
    from mobilekernels.quant.modules import QBlock

    torch.manual_seed(1)
    net = get_model("mobilenet_v3_small", num_classes=10, width_mult=0.5, attention=None).eval()
    qm = mk.quantize(net, [torch.randn(2, 3, 40, 40) for _ in range(2)], progress=False)
    blocks = [st for st in qm.modules() if isinstance(st, QBlock) and any(c.post is not None for c in st.steps)]
    assert blocks
    for st in blocks:
        e, d, p = st.fusable_convs()
        s, z = float(st.steps[0].in_scale), int(st.steps[0].in_zp)
        fused = QuantizedInvertedResidual.from_qconvs(e, d, p, s, z, st.residual,
                                                      st.out_qparams() if st.residual else None)
        assert fused.lut_qparams[:, 0].sum() >= 2
        q = torch.randint(0, 256, (2, fused.in_channels, 7, 5), dtype=torch.uint8)
        want, ws, wz = st._unfused_int(q, s, z)
        assert torch.equal(fused.forward_codes(q, s, z), want) and fused.output_qparams() == (ws, wz)
        assert torch.equal(fused._forward_codes_op(q, s, z), want)
        assert " + lut " in fused.info((1, fused.in_channels, 14, 14), num_threads=1)["kernel"]
        m2 = QuantizedInvertedResidual(fused.in_channels, fused.hidden_channels, fused.out_channels,
                                       fused.kernel_size, fused.stride, fused.pads, fused.activations, fused.residual)
        m2.load_state_dict(fused.state_dict())
        assert torch.equal(m2.forward_codes(q, s, z), want)
    old = {k: v for k, v in fused.state_dict().items() if "lut" not in k}
    m3 = QuantizedInvertedResidual(fused.in_channels, fused.hidden_channels, fused.out_channels,
                                   fused.kernel_size, fused.stride, fused.pads, fused.activations, fused.residual)
    m3.load_state_dict(old)
    assert not m3.lut_qparams[:, 0].any()
