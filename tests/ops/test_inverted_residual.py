"""Fused fp32 inverted-residual op against the unfused PyTorch block in float64 (every fp32 ISA
path forced), its errors, and the op as torch sees it (opcheck, torch.compile, torch.export).

The reference is mobilekernels' own torchvision-compatible ``models.blocks.InvertedResidual``
with random BatchNorm statistics, run in eval mode in float64; the fused op gets the BN-folded
fp32 weights (``nn.InvertedResidual.from_torch``). Tolerance: 1e-4 of the output's largest
magnitude (fp32 sums of up to 960 terms through three stages); a wrong tap or channel moves
outputs by ~1e-1.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mobilekernels as mk
from mobilekernels import ops_block
from mobilekernels.models.blocks import InvertedResidual as TorchBlock


def torch_block(cin, cout, stride, t, seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    b = TorchBlock(cin, cout, stride, t)
    for m in b.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(c, generator=g) - 0.5)
    return b.eval()


def assert_close_fp64(y, ref):
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert y.is_contiguous(memory_format=torch.channels_last)
    err = (y.double() - ref).abs().max().item()
    scale = max(1.0, ref.abs().max().item())
    assert err <= 1e-4 * scale, f"max err {err:.3g} (scale {scale:.3g})"


def check_block(cin, cout, stride, t, n, h, w, seed, band_rows=(0,)):
    blk = torch_block(cin, cout, stride, t, seed)
    fused = mk.nn.InvertedResidual.from_torch(blk)
    assert fused.residual == blk.use_res_connect
    x = torch.randn(n, cin, h, w, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        ref = blk.double()(x.double())
        for band in band_rows:
            fused.band_rows = band
            assert_close_fp64(fused(x.contiguous(memory_format=torch.channels_last)), ref)


# (Cin, Cout, stride, t) of MobileNetV2's 17 blocks (width 1.0), deduplicated.
MNV2 = [(32, 16, 1, 1), (16, 24, 2, 6), (24, 24, 1, 6), (24, 32, 2, 6), (32, 32, 1, 6), (32, 64, 2, 6),
        (64, 64, 1, 6), (64, 96, 1, 6), (96, 96, 1, 6), (96, 160, 2, 6), (160, 160, 1, 6), (160, 320, 1, 6)]


@pytest.mark.parametrize("blk", MNV2, ids=lambda b: "{}-{}s{}t{}".format(*b))
def test_mobilenet_v2_blocks_small(f32_isa, blk):
    # 224-input sizes divided down to 5..9 pixels (odd, non-square), batch 1 and 3.
    cin, cout, s, t = blk
    check_block(cin, cout, s, t, 1 + 2 * (cin % 2 == 0 and s == 1), 7, 5 + (cin % 5), cin + cout)


GRID = [  # (Cin, Cout, stride, t, N, H, W): odd sizes 1..17, channels off the vector widths
    (3, 3, 1, 1, 1, 1, 1), (5, 5, 1, 4, 3, 17, 2), (7, 9, 2, 6, 1, 17, 17), (9, 9, 1, 6, 3, 9, 13),
    (12, 5, 2, 4, 3, 2, 1), (17, 17, 1, 4, 1, 1, 16), (4, 19, 2, 1, 1, 11, 5), (19, 19, 1, 1, 3, 5, 9),
    (8, 24, 2, 6, 1, 15, 3), (13, 13, 1, 6, 1, 16, 7),
]


@pytest.mark.parametrize("case", GRID, ids=lambda c: "x".join(map(str, c)))
def test_odd_shapes_and_band_heights(f32_isa, case):
    cin, cout, s, t, n, h, w = case
    check_block(cin, cout, s, t, n, h, w, seed=h * 31 + w, band_rows=(0, 1, 2, 100))


def _unfused_fp64(x, ew, eb, dw, db, pw, pb, stride, pad, acts, residual):
    act = {"none": lambda z: z, "relu": F.relu, "relu6": lambda z: z.clamp(0, 6), "hardswish": F.hardswish}
    d = lambda t: None if t is None else t.double()  # noqa: E731
    y = x.double()
    if ew is not None:
        y = act[acts[0]](F.conv2d(y, d(ew), d(eb)))
    y = F.pad(y, (pad[2], pad[3], pad[0], pad[1]))
    y = act[acts[1]](F.conv2d(y, d(dw), d(db), stride, 0, 1, dw.shape[0]))
    y = act[acts[2]](F.conv2d(y, d(pw), d(pb)))
    return y + x.double() if residual else y


@pytest.mark.parametrize("k, stride, pad, acts", [
    (3, 1, [1, 1, 1, 1], ("hardswish", "hardswish", "none")),
    (5, 2, [2, 2, 2, 2], ("relu", "hardswish", "none")),
    (5, 1, [2, 2, 2, 2], ("hardswish", "relu", "relu6")),
    (3, 2, [0, 2, 1, 0], ("relu6", "none", "hardswish")),
    (7, 1, [3, 3, 3, 3], ("none", "relu6", "relu")),
])
def test_kernel_sizes_padding_activations(f32_isa, k, stride, pad, acts):
    g = torch.Generator().manual_seed(k * 10 + stride)
    cin, chid, cout = 8, 24, 8 if stride == 1 and pad[0] == pad[1] else 11
    x = torch.randn(2, cin, 10, 9, generator=g)
    ew, eb = torch.randn(chid, cin, 1, 1, generator=g) / 3, torch.randn(chid, generator=g)
    dw, db = torch.randn(chid, 1, k, k, generator=g) / k, torch.randn(chid, generator=g)
    pw, pb = torch.randn(cout, chid, 1, 1, generator=g) / 5, torch.randn(cout, generator=g)
    residual = cin == cout
    y = ops_block.inverted_residual(x, ew, eb, dw, db, pw, pb, stride, pad, acts, residual)
    assert_close_fp64(y, _unfused_fp64(x, ew, eb, dw, db, pw, pb, stride, pad, acts, residual))
    packs = ops_block.inverted_residual_pack(ew, eb, dw, db, pw, pb)
    for band in (1, 3):
        torch.testing.assert_close(ops_block.inverted_residual_packed(x, packs, stride, pad, acts, residual, band), y,
                                   rtol=0, atol=0)  # bands change the work split, never the sums


@pytest.mark.parametrize("n, h, w", [(3, 17, 11), (2, 13, 11), (1, 13, 11), (3, 7, 7), (1, 7, 7)])
def test_threads_give_one_threads_bits(n, h, w):
    # Threads splitting rows (or images) leave every sum as one thread computes it. On a small
    # image (<= 7 output rows) with a batch that does not spread over the threads, they split
    # the hidden channels of the expand + depthwise, then the project's output columns: the same
    # full-width sums again. So 1, 2 and 3 threads give identical bits.
    blk = torch_block(24, 24, 1, 6, 5)
    fused = mk.nn.InvertedResidual.from_torch(blk)
    x = torch.randn(n, 24, h, w)
    prev = torch.get_num_threads()
    try:
        outs = []
        for nt in (1, 2, 3, 2):
            torch.set_num_threads(nt)
            with torch.no_grad():
                outs.append(fused(x))
    finally:
        torch.set_num_threads(prev)
    for y in outs[1:]:
        torch.testing.assert_close(y, outs[0], rtol=0, atol=0)
    with torch.no_grad():
        assert_close_fp64(outs[0], blk.double()(x.double()))


def test_scratch_is_a_fraction_of_the_expanded_tensor():
    info = ops_block.inverted_residual_info((1, 24, 56, 56), 24, 144, 24)
    expanded = 56 * 56 * 144 * 4
    assert 0 < info["scratch_bytes_per_thread"] * 8 <= expanded
    assert info["band_rows"] >= 1 and "gemm" in info["kernel"] and "dwconv" in info["kernel"]


# MobileNetV2 at 224, (H, W, Cin, t, Cout, stride) of the blocks with H >= 28.
V2_224_LARGE = [(112, 112, 32, 1, 16, 1), (112, 112, 16, 6, 24, 2), (56, 56, 24, 6, 24, 1), (56, 56, 24, 6, 32, 2),
                (28, 28, 32, 6, 32, 1), (28, 28, 32, 6, 64, 2)]


def test_scratch_at_most_an_eighth_on_large_blocks():
    for h, w, cin, t, cout, s in V2_224_LARGE:  # per thread (each thread holds its own)
        info = ops_block.inverted_residual_info((1, cin, h, w), cin, cin * t, cout, stride=s, num_threads=1)
        assert info["scratch_bytes_per_thread"] * 8 <= h * w * cin * t * 4, (h, cin, t, info)
    # 28x28 stride 1: one-row bands alone need 1/7, so the depthwise/project run in channel tiles.
    info = ops_block.inverted_residual_info((1, 32, 28, 28), 32, 192, 32)
    assert info["channel_tile"] < 192 and "channel tile" in info["kernel"]


@pytest.mark.parametrize("blk", [(32, 32, 1, 6), (32, 64, 2, 6), (24, 24, 1, 6)], ids=lambda b: "{}-{}s{}t{}".format(*b))
def test_mobilenet_v2_28x28_blocks_full_size(f32_isa, blk):
    # The channel-tiled path the automatic choice takes at 28x28 stride 1 (and its neighbours),
    # batch 1 and 3, a forced one-row band and a band too tall for any tile.
    cin, cout, s, t = blk
    check_block(cin, cout, s, t, 3 if s == 1 else 1, 28, 28, seed=cin + s, band_rows=(0, 1, 5))


def _args():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 6, 7, 5, generator=g)
    ew, eb = torch.randn(18, 6, 1, 1, generator=g), torch.randn(18, generator=g)
    dw, db = torch.randn(18, 1, 3, 3, generator=g), torch.randn(18, generator=g)
    pw, pb = torch.randn(6, 18, 1, 1, generator=g), torch.randn(6, generator=g)
    return x, ew, eb, dw, db, pw, pb


_BAD = [
    (lambda x, ew, eb, dw, db, pw, pb: ops_block.inverted_residual(x.double(), ew, eb, dw, db, pw, pb), TypeError, "float32"),
    (lambda x, ew, eb, dw, db, pw, pb: ops_block.inverted_residual(x[:, :5], ew, eb, dw, db, pw, pb), ValueError, "reads 6"),
    (lambda x, ew, eb, dw, db, pw, pb: ops_block.inverted_residual(x, ew, eb, dw[:9], db[:9], pw, pb), ValueError, "dw_weight"),
    (lambda x, ew, eb, dw, db, pw, pb: ops_block.inverted_residual(x, ew, eb, dw, db, pw[:, :9], pb), ValueError, "reads 9"),
    (lambda x, ew, eb, dw, db, pw, pb: ops_block.inverted_residual(x, ew, eb[:3], dw, db, pw, pb), ValueError, "bias"),
    (lambda x, ew, eb, dw, db, pw, pb: ops_block.inverted_residual(x, ew, eb, dw, db, pw, pb, 2, residual=True), ValueError, "residual"),
    (lambda x, ew, eb, dw, db, pw, pb: ops_block.inverted_residual(x, None, None, dw, db, pw, pb), ValueError, "channels"),
    (lambda x, ew, eb, dw, db, pw, pb: ops_block.inverted_residual(x, ew, eb, dw, db, pw, pb, activations=("relu",)), ValueError, "three"),
    (lambda x, ew, eb, dw, db, pw, pb: ops_block.inverted_residual(x, ew, eb, dw, db, pw, pb, activations=("relu", "gelu", "none")), ValueError, "activation"),
    (lambda x, ew, eb, dw, db, pw, pb: ops_block.inverted_residual(x, ew, eb, dw, db, pw, pb, padding=(3, 3, 1, 1)), ValueError, "padding"),
    (lambda x, ew, eb, dw, db, pw, pb: ops_block.inverted_residual(x[:, :, :0], ew, eb, dw, db, pw, pb), ValueError, "zero-size"),
    # packs swapped or for another shape: refused by the C++ pack-header checks
    (lambda x, ew, eb, dw, db, pw, pb: torch.ops.mobilekernels.inverted_residual_packed(
        x, ops_block.conv1x1_pack(pw, pb), ops_block.inverted_residual_pack(ew, eb, dw, db, pw, pb).dw,
        ops_block.conv1x1_pack(pw, pb), 18, 6, 3, 1, [1, 1, 1, 1], "relu6", "relu6", "none", True, 0),
     ValueError, "packed for"),
    (lambda x, ew, eb, dw, db, pw, pb: torch.ops.mobilekernels.inverted_residual_packed(
        x, ops_block.conv1x1_pack(ew, eb), ops_block.conv1x1_pack(ew, eb), ops_block.conv1x1_pack(pw, pb),
        18, 6, 3, 1, [1, 1, 1, 1], "relu6", "relu6", "none", True, 0), ValueError, "depthwise weight pack"),
    (lambda x, ew, eb, dw, db, pw, pb: torch.ops.mobilekernels.inverted_residual_packed(
        x, None, *ops_block.inverted_residual_pack(ew, eb, dw, db, pw, pb)[1:3], 18, 6, 3, 1, [1, 1, 1, 1],
        "relu6", "relu6", "none", True, 0), ValueError, "hidden width"),
    (lambda x, ew, eb, dw, db, pw, pb: ops_block.inverted_residual_packed(
        x, ops_block.inverted_residual_pack(ew, eb, dw, db, pw, pb), band_rows=-1), ValueError, "band_rows"),
]


@pytest.mark.parametrize("i", range(len(_BAD)))
def test_bad_inputs_raise_clear_errors(i):
    call, exc, match = _BAD[i]
    with pytest.raises(exc, match=match):
        call(*_args())


def test_opcheck():
    x, ew, eb, dw, db, pw, pb = _args()
    torch.library.opcheck(torch.ops.mobilekernels.inverted_residual,
                          (x, ew, eb, dw, db, pw, pb, 1, [1, 1, 1, 1], "relu6", "hardswish", "none", True))
    torch.library.opcheck(torch.ops.mobilekernels.inverted_residual,
                          (x, None, None, dw[:6], db[:6], pw[:, :6], pb, 2, [1, 1, 1, 1], "relu", "relu6", "none", False))
    p = ops_block.inverted_residual_pack(ew, eb, dw, db, pw, pb)
    torch.library.opcheck(torch.ops.mobilekernels.inverted_residual_packed,
                          (x, p.expand, p.dw, p.project, 18, 6, 3, 2, [1, 1, 1, 1], "relu6", "relu6", "none", False, 1))


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.b1 = mk.nn.InvertedResidual.from_torch(torch_block(6, 6, 1, 4, 1))
        self.b2 = mk.nn.InvertedResidual.from_torch(torch_block(6, 10, 2, 6, 2))

    def forward(self, x):
        return self.b2(self.b1(x))


def test_torch_compile_and_export():
    net = _Net().eval().requires_grad_(False)
    x = _args()[0]
    with torch.no_grad():
        eager = net(x)
        compiled = torch.compile(net, fullgraph=True, backend="aot_eager")(x)
    torch.testing.assert_close(compiled, eager)
    ep = torch.export.export(net, (x,))
    assert sum("mobilekernels.inverted_residual" in str(n.target) for n in ep.graph.nodes) == 2
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), eager)
