"""Fused int8 inverted residual (qinverted_residual): bit-exact against our three unfused int8 ops
(qconv1x1 -> qdwconv2d -> qconv1x1) plus quant's int8 residual add, on every ISA path (forced in
turn by the ``isa`` fixture), over MobileNetV2's block shapes at 224 and 160, odd sizes, both
dtypes, weight zero points, forced band heights and thread counts; bad input; opcheck / compile
/ export."""
from __future__ import annotations

import io
import itertools
import random

import pytest
import torch

import mobilekernels as mk
from mobilekernels import qops
from mobilekernels.quant.modules import qadd

DT = {"uint8": torch.uint8, "int8": torch.int8}
RANGE = {torch.uint8: (0, 255), torch.int8: (-128, 127)}
V2_BLOCKS = [  # H W Cin t Cout stride at 224 (bench/shapes/mobilenet_v2_blocks.txt)
    (112, 32, 1, 16, 1), (112, 16, 6, 24, 2), (56, 24, 6, 24, 1), (56, 24, 6, 32, 2), (28, 32, 6, 32, 1),
    (28, 32, 6, 32, 1), (28, 32, 6, 64, 2), (14, 64, 6, 64, 1), (14, 64, 6, 64, 1), (14, 64, 6, 64, 1),
    (14, 64, 6, 96, 1), (14, 96, 6, 96, 1), (14, 96, 6, 96, 1), (14, 96, 6, 160, 2), (7, 160, 6, 160, 1),
    (7, 160, 6, 160, 1), (7, 160, 6, 320, 1)]


def _codes(g, shape, dtype):
    lo, hi = RANGE[dtype]
    return torch.randint(lo, hi + 1, shape, generator=g, dtype=torch.int64).to(dtype)


class Block:
    """Random int8 weights and qparams whose stages keep values spread over the code range."""

    def __init__(self, g, cin, t, cout, k=3, xd=torch.uint8, yd=torch.uint8, wd=torch.int8, wzp=False, chid=None):
        # chid: a hidden width that is not a multiple of cin (MobileNetV3: 80 -> 200), with t != 1
        self.cin, self.chid, self.cout, self.k, self.xd, self.yd = cin, chid or cin * t, cout, k, xd, yd
        chid = self.chid
        lo, hi = RANGE[yd]
        mid = (lo + hi + 1) // 2

        def zp():
            return int(torch.randint(mid - 60, mid + 20, (1,), generator=g))

        # Every stage's output scale lets relu6 span ~128 codes; weight scales put the real
        # accumulator std near 4 (codes deviate ~74 from their zero points), so every stage uses
        # most of its range and the clamps bite sometimes.
        self.x_scale = 0.03
        self.x_zp = int(torch.randint(*RANGE[xd], (1,), generator=g)) // 2 + (64 if xd == torch.uint8 else 0)
        self.qparams = [(0.047 * (0.8 + 0.4 * float(torch.rand(1, generator=g))), zp()) for _ in range(3)]
        self.out_qparams = (0.06, zp())

        def qp(c, in_scale, taps):
            z = torch.randint(-3, 4, (c,), generator=g, dtype=torch.int32) if wzp else torch.zeros(c, dtype=torch.int32)
            if wd == torch.uint8:
                z = z + 128
            s = 4.0 / (in_scale * 74 * 74 * taps ** 0.5) * (torch.rand(c, generator=g) * 0.5 + 0.75)
            return s, z, torch.randint(-2000, 2000, (c,), generator=g, dtype=torch.int32)

        epk, s_in = None, self.x_scale
        if t != 1:
            epk = qops.qconv1x1_pack(_codes(g, (chid, cin, 1, 1), wd), *qp(chid, s_in, cin))
            s_in = self.qparams[0][0]
        dpk = qops.qdwconv2d_pack(_codes(g, (chid, 1, k, k), wd), *qp(chid, s_in, k * k))
        ppk = qops.qconv1x1_pack(_codes(g, (cout, chid, 1, 1), wd), *qp(cout, self.qparams[1][0], chid))
        self.packs = qops.QInvertedResidualPacks(epk, dpk, ppk, chid, cout, k)

    def fused(self, x, stride, acts=("relu6", "relu6", "none"), residual=None, band_rows=0, padding=None):
        return qops.qinverted_residual(x, self.packs, self.x_scale, self.x_zp, self.qparams, stride, padding, acts,
                                       residual, self.out_qparams, self.yd, band_rows)

    def unfused(self, x, stride, acts=("relu6", "relu6", "none"), residual=None, padding=None):
        p = self.packs
        if residual is None:
            residual = stride == 1 and self.cin == self.cout
        s, z = self.x_scale, self.x_zp
        h = x
        if p.expand is not None:
            h = qops.qconv1x1(x, p.expand, self.chid, s, z, *self.qparams[0], self.yd, acts[0])
            s, z = self.qparams[0]
        pad = self.k // 2 if padding is None else padding
        d = qops.qdwconv2d(h, p.dw, self.chid, self.k, s, z, *self.qparams[1], stride, pad, 1, self.yd, acts[1])
        y = qops.qconv1x1(d, p.project, self.cout, *self.qparams[1], *self.qparams[2], self.yd, acts[2])
        if residual:
            y = qadd(x, self.x_scale, self.x_zp, y, *self.qparams[2], *self.out_qparams, self.yd)
        return y


def _assert_same(got, expect, what):
    assert got.dtype == expect.dtype and got.shape == expect.shape, (what, got.shape, expect.shape)
    assert got.is_contiguous(memory_format=torch.channels_last)
    diff = (got.int() - expect.int()).abs()
    if diff.max() > 0:
        bad = (diff > 0).nonzero()
        i = tuple(bad[0].tolist())
        pytest.fail(f"[{mk.get_isa()}] {what}: {len(bad)} of {got.numel()} codes differ, first at (n, c, h, w)={i}: "
                    f"fused {int(got[i])} unfused {int(expect[i])}")
    # The data must exercise the range (a block that outputs a constant would pass trivially).
    assert expect.float().std() > 2, f"{what}: degenerate test data (std {expect.float().std():.2f})"


@pytest.mark.parametrize("res", [224, 160])
def test_mobilenet_v2_blocks(isa, res):
    g = torch.Generator().manual_seed(res)
    for i, (h, cin, t, cout, s) in enumerate(V2_BLOCKS):
        h = h * res // 224
        blk = Block(g, cin, t, cout)
        x = _codes(g, (1, cin, h, h), torch.uint8).contiguous(memory_format=torch.channels_last)
        _assert_same(blk.fused(x, s), blk.unfused(x, s), f"block {i} {h}x{h} {cin}x{t}->{cout} s{s} at {res}")


@pytest.mark.parametrize("n", [1, 3])
def test_small_images_threads(isa, n):
    # V2's 14x14 and 7x7 blocks (plus a ragged hidden width, a table-free t == 1 and kernel 5) on
    # 2 and 3 threads with a batch that does not spread over them: the threads split the hidden
    # channels of the 7-row outputs, the rows of the 14-row ones (C++ test ChannelSplitSmallImages
    # checks that the split is taken).
    g = torch.Generator().manual_seed(40 + n)
    shapes = [(h, cin, t, cout, s, 3, None) for h, cin, t, cout, s in V2_BLOCKS if h <= 14]
    shapes += [(7, 40, 6, 40, 1, 5, 200), (9, 72, 1, 72, 1, 3, None), (13, 24, 6, 40, 2, 5, None)]
    for h, cin, t, cout, s, k, chid in shapes:
        blk = Block(g, cin, t, cout, k, chid=chid)
        x = _codes(g, (n, cin, h, h), torch.uint8).contiguous(memory_format=torch.channels_last)
        expect = blk.unfused(x, s)
        for nt in (2, 3):
            with _threads(nt):
                got = blk.fused(x, s)
            _assert_same(got, expect, f"N{n} {h}x{h} {cin}x{t}->{cout} k{k} s{s} threads {nt}")


@pytest.mark.parametrize("n", [2, 4, 5])
def test_several_images_per_item(isa, n):
    # Small images at batch > 1 run several whole images per work item (C++ SeveralImagesPerItem
    # forces every group size): V2's 7x7 blocks, 14x14 stride 2, and odd small shapes (t == 1,
    # kernel 5, 1x1 images), on 1-3 threads; info reports the images per item.
    g = torch.Generator().manual_seed(70 + n)
    shapes = [(h, cin, t, cout, s, 3) for h, cin, t, cout, s in V2_BLOCKS if h == 7 or s == 2 and h == 14]
    shapes += [(5, 24, 1, 24, 1, 3), (6, 16, 6, 24, 2, 5), (1, 8, 4, 8, 1, 3), (3, 17, 6, 17, 1, 3)]
    grouped = 0
    for h, cin, t, cout, s, k in shapes:
        blk = Block(g, cin, t, cout, k)
        x = _codes(g, (n, cin, h, h), torch.uint8).contiguous(memory_format=torch.channels_last)
        expect = blk.unfused(x, s)
        for nt in (1, 2, 3):
            info = qops.qinverted_residual_info(x, blk.packs, blk.x_scale, blk.x_zp, blk.qparams, s,
                                                out_qparams=blk.out_qparams, num_threads=nt)
            grouped += info["group_images"] > 1
            assert 1 <= info["group_images"] <= n
            with _threads(nt):
                got = blk.fused(x, s)
            _assert_same(got, expect, f"N{n} {h}x{h} {cin}x{t}->{cout} k{k} s{s} threads {nt}")
    assert grouped > 0


def test_info_channel_split_shared_bytes():
    # The small-image channel split (batch 1 on 2 threads) shares one expanded + depthwised image
    # between the threads: reported apart from the per-thread bytes (int32 row sums there).
    g = torch.Generator().manual_seed(80)
    blk = Block(g, 64, 6, 64)
    x = torch.empty((1, 64, 7, 7), dtype=torch.uint8)
    info = qops.qinverted_residual_info(x, blk.packs, blk.x_scale, blk.x_zp, blk.qparams, 1,
                                        out_qparams=blk.out_qparams, num_threads=2)
    assert info["scratch_bytes_shared"] == 2 * 7 * 7 * 384
    assert info["scratch_bytes_per_thread"] == 0  # no weight zero points: no row sums
    info = qops.qinverted_residual_info(x, blk.packs, blk.x_scale, blk.x_zp, blk.qparams, 1,
                                        out_qparams=blk.out_qparams, num_threads=1)
    assert info["scratch_bytes_shared"] == 0 and info["scratch_bytes_per_thread"] > 0
    # 14 output rows split rows (pieces of 7) on 2 threads: nothing shared
    info = qops.qinverted_residual_info(torch.empty((1, 64, 14, 14), dtype=torch.uint8), blk.packs, blk.x_scale,
                                        blk.x_zp, blk.qparams, 1, out_qparams=blk.out_qparams, num_threads=2)
    assert info["scratch_bytes_shared"] == 0


ODD = list(itertools.product([1, 2, 3, 5, 8, 13, 17], [1, 4, 6]))


@pytest.mark.parametrize("size,t", ODD, ids=[f"h{a}-t{b}" for a, b in ODD])
def test_odd_sizes(isa, size, t):
    rnd = random.Random(size * 10 + t)
    g = torch.Generator().manual_seed(size * 10 + t)
    for _ in range(3):
        h, w = size, rnd.randint(1, 17)
        cin = rnd.choice([1, 3, 5, 7, 9, 17, 24, 33])
        s = rnd.choice([1, 2])
        res = rnd.random() < 0.6
        cout = cin if res else rnd.choice([2, 5, 11, 16, 19, 40])
        res = res and s == 1
        n = rnd.choice([1, 3])
        k = rnd.choice([3, 3, 5])
        if h + 2 * (k // 2) < k or w + 2 * (k // 2) < k:
            continue
        xd, yd = rnd.choice([(torch.uint8, torch.uint8), (torch.int8, torch.int8), (torch.uint8, torch.int8),
                             (torch.int8, torch.uint8)])
        acts = rnd.choice([("relu6", "relu6", "none"), ("relu", "relu", "none"), ("none", "none", "relu6")])
        blk = Block(g, cin, t, cout, k, xd, yd, wd=rnd.choice([torch.int8, torch.uint8]), wzp=rnd.random() < 0.4)
        x = _codes(g, (n, cin, h, w), xd)
        if rnd.random() < 0.5:
            x = x.contiguous(memory_format=torch.channels_last)
        expect = blk.unfused(x, s, acts, res)
        for band in (0, 1, 2):
            for nt in (1, 2, 3):
                with _threads(nt):
                    got = blk.fused(x, s, acts, res, band)
                what = (f"N{n} {h}x{w} {cin}x{t}->{cout} k{k} s{s} res{res} {xd}->{yd} acts {acts} band {band} "
                        f"threads {nt}")
                assert got.dtype == expect.dtype and got.shape == expect.shape, what
                assert torch.equal(got, expect), f"[{mk.get_isa()}] {what}: {(got != expect).sum()} codes differ"


class _threads:
    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)


def test_residual_add_rounding_ties(isa):
    """Scales whose ratios are exact halves put many sums exactly on .5: the fused add must
    round them half to even like quant's qadd (torch.round)."""
    g = torch.Generator().manual_seed(5)
    blk = Block(g, 16, 4, 16)
    blk.x_scale = 0.5
    blk.qparams[2] = (0.25, 128)
    blk.out_qparams = (1.0, 128)
    x = _codes(g, (2, 16, 9, 11), torch.uint8)
    _assert_same(blk.fused(x, 1), blk.unfused(x, 1), "ties")


def test_asymmetric_padding_and_t1(isa):
    g = torch.Generator().manual_seed(7)
    blk = Block(g, 8, 1, 8)
    x = _codes(g, (1, 8, 10, 9), torch.uint8)
    for pads in [(0, 2, 1, 0), (2, 0, 0, 2), (0, 0, 0, 0)]:
        for s in (1, 2):
            res = s == 1 and pads in [(0, 0, 0, 0)] and False
            _assert_same(blk.fused(x, s, residual=res, padding=pads), blk.unfused(x, s, residual=res, padding=pads),
                         f"pads {pads} s{s}")


@pytest.mark.parametrize("wzp", [False, True], ids=["no-wzp", "row-sums"])
def test_info_scratch_eighth(wzp):
    """Every V2 block with H >= 28 keeps each thread's scratch within 1/8 of one image's expanded
    tensor, at 1 and 2 threads, batch 1 and 8, with and without weight zero points (int32 row
    sums in the scratch): at 28x28 stride 1 one-row bands alone are 1/7, so the depthwise rows
    run in chunks of output columns there (C++ ScratchBytesAreWhatRuns ties the reported bytes
    to what a call allocates; the chunked rows are bit-exact in test_mobilenet_v2_blocks)."""
    g = torch.Generator().manual_seed(0)
    chunked = []
    for h, cin, t, cout, s in V2_BLOCKS:
        if h < 28:
            continue
        blk = Block(g, cin, t, cout, wzp=wzp)
        assert any(int(p[27]) != 0 for p in (blk.packs.expand, blk.packs.project) if p is not None) == wzp
        for n in (1, 8):
            x = torch.empty((n, cin, h, h), dtype=torch.uint8)
            for nt in (1, 2):
                info = qops.qinverted_residual_info(x, blk.packs, blk.x_scale, blk.x_zp, blk.qparams, s,
                                                    out_qparams=blk.out_qparams, num_threads=nt)
                per_image = info["expanded_bytes"] // n
                assert per_image == h * h * cin * t
                assert info["scratch_bytes_per_thread"] * 8 <= per_image, (h, cin, t, cout, s, n, nt, info)
                assert info["kernel"].startswith("gemm ")
                assert (", chunk " in info["kernel"]) == (info["chunk_cols"] < (h - 1) // s + 1)
        if info["chunk_cols"] < (h - 1) // s + 1:
            chunked.append((h, cin, t, cout, s))
    # one-row bands alone reach 1/8 except at 28x28 stride 1 (and at exactly 1/8 on 28x28
    # stride 2 without row sums)
    assert chunked == [(28, 32, 6, 32, 1)] * 2 + ([(28, 32, 6, 64, 2)] if wzp else []), chunked


@pytest.mark.parametrize("n", [1, 3])
def test_28_row_blocks_in_column_chunks(isa, n):
    """V2's 28x28 blocks, whose rows run in column chunks (1/8 scratch rule), with weight zero
    points and not, on 1-3 threads: equal to the unfused ops."""
    g = torch.Generator().manual_seed(60 + n)
    for cin, t, cout, s in [(32, 6, 32, 1), (32, 6, 64, 2), (24, 4, 24, 1)]:
        for wzp in (False, True):
            blk = Block(g, cin, t, cout, wzp=wzp)
            x = _codes(g, (n, cin, 28, 28), torch.uint8).contiguous(memory_format=torch.channels_last)
            info = qops.qinverted_residual_info(x, blk.packs, blk.x_scale, blk.x_zp, blk.qparams, s,
                                                out_qparams=blk.out_qparams)
            assert info["chunk_cols"] < 28 or (s == 2 and not wzp), info
            expect = blk.unfused(x, s)
            for nt in (1, 2, 3):
                with _threads(nt):
                    got = blk.fused(x, s)
                _assert_same(got, expect, f"N{n} 28x28 {cin}x{t}->{cout} s{s} wzp {wzp} threads {nt}")


def test_empty_batch():
    g = torch.Generator().manual_seed(1)
    blk = Block(g, 8, 4, 8)
    y = blk.fused(torch.zeros((0, 8, 5, 5), dtype=torch.uint8), 1)
    assert y.shape == (0, 8, 5, 5) and y.dtype == torch.uint8


# ---------------------------------------------------------------------------------------------
# bad input: Python errors, never a crash


@pytest.fixture
def blk():
    return Block(torch.Generator().manual_seed(3), 8, 4, 8)


def _x(c=8, dtype=torch.uint8, h=6):
    return torch.zeros((1, c, h, h), dtype=dtype)


@pytest.mark.parametrize("mutate,err,match", [
    (lambda a: a.update(x=_x().float()), TypeError, "uint8 or torch.int8"),
    (lambda a: a.update(x=_x(c=9)), ValueError, "9 channels"),
    (lambda a: a.update(x=torch.zeros((1, 8, 6), dtype=torch.uint8)), ValueError, "4-D"),
    (lambda a: a.update(x=torch.zeros((1, 8, 0, 6), dtype=torch.uint8)), ValueError, "zero-size"),
    (lambda a: a.update(x_scale=0.0), ValueError, "x_scale"),
    (lambda a: a.update(x_scale=float("nan")), ValueError, "x_scale"),
    (lambda a: a.update(x_zero_point=300), ValueError, "x_zero_point"),
    (lambda a: a.update(qparams=[(0.1, 0), (0.1, 0)]), ValueError, "three"),
    (lambda a: a.update(qparams=[(0.1, 0), (-1.0, 0), (0.1, 0)]), ValueError, "scale"),
    (lambda a: a.update(qparams=[(0.1, 0), (0.1, 256), (0.1, 0)]), ValueError, "zero"),
    (lambda a: a.update(activations=("hardswish", "relu6", "none")), ValueError, "lookup table"),
    (lambda a: a.update(activations="relu6"), ValueError, "three names"),
    (lambda a: a.update(residual=True, stride=2), ValueError, "residual needs stride 1"),
    (lambda a: a.update(residual=True, out_qparams=None), ValueError, "out_qparams"),
    (lambda a: a.update(out_qparams=(0.0, 0)), ValueError, "out_scale"),
    (lambda a: a.update(padding=(3, 0, 0, 0)), ValueError, "padding"),
    (lambda a: a.update(band_rows=-1), ValueError, "band_rows"),
    (lambda a: a.update(stride=0), ValueError, "stride"),
    (lambda a: a.update(out_dtype=torch.float32), TypeError, "dtype"),
])
def test_bad_arguments(blk, mutate, err, match):
    args = dict(x=_x(), packs=blk.packs, x_scale=blk.x_scale, x_zero_point=blk.x_zp, qparams=blk.qparams, stride=1,
                padding=None, activations=("relu6", "relu6", "none"), residual=None, out_qparams=blk.out_qparams,
                out_dtype=torch.uint8, band_rows=0)
    mutate(args)
    with pytest.raises(err, match=match):
        qops.qinverted_residual(**args)


def test_bad_packs(blk):
    p = blk.packs
    x = _x()
    other = Block(torch.Generator().manual_seed(4), 8, 2, 8).packs

    def run(packs):
        return qops.qinverted_residual(x, packs, blk.x_scale, blk.x_zp, blk.qparams, out_qparams=blk.out_qparams)

    with pytest.raises(ValueError, match="packed"):
        run(p._replace(expand=other.expand))  # made for 8 -> 16, used as 8 -> 32
    with pytest.raises(ValueError, match="packed"):
        run(p._replace(dw=p.project))  # a pointwise pack where the depthwise one belongs
    with pytest.raises(ValueError):
        run(p._replace(expand=p.project))  # same byte size? different shape: refused either way
    with pytest.raises(ValueError, match="hidden"):
        run(p._replace(expand=None))  # t == 1 needs hidden == Cin
    garbage = torch.zeros_like(p.expand)
    with pytest.raises(ValueError, match="magic"):
        run(p._replace(expand=garbage))  # Python refuses it before reading its header's sizes
    corrupt = p.dw.clone()
    corrupt[0] ^= 0xFF  # bad magic: refused by the C++ header check
    with pytest.raises(ValueError, match="magic"):
        run(p._replace(dw=corrupt))
    with pytest.raises(TypeError):
        run(p._replace(project=p.project.float()))
    with pytest.raises(TypeError, match="QInvertedResidualPacks"):
        qops.qinverted_residual(x, tuple(p), blk.x_scale, blk.x_zp, blk.qparams, out_qparams=blk.out_qparams)


def test_cpp_revalidates(blk):
    """The binding re-checks what Python checked (a direct _C call with a bad clamp)."""
    from mobilekernels import _C
    p = blk.packs
    x = _x().contiguous(memory_format=torch.channels_last)
    out = torch.empty((1, 8, 6, 6), dtype=torch.uint8)
    args = [x.data_ptr(), p.expand.data_ptr(), p.expand.numel(), p.dw.data_ptr(), p.dw.numel(), p.project.data_ptr(),
            p.project.numel(), out.data_ptr(), [1, 6, 6, 8, 32, 8, 3, 1, 1, 1, 1, 1], True, True, 0, False, False,
            [0.1, 0.1, 0.1, 0.1, 0.1], [0, 0, 0, 0, 0], [0, 255, 0, 255, 10, 5], [0, 0, 0], [1.0] * 3, [0, 0, 0], 1]
    with pytest.raises(ValueError, match="clamp"):
        _C.q8_inverted_residual(*args)
    args[10] = True
    args[8] = [1, 6, 6, 8, 32, 8, 3, 2, 1, 1, 1, 1]
    args[-5] = [0, 255, 0, 255, 0, 255]
    with pytest.raises(ValueError, match="residual"):
        _C.q8_inverted_residual(*args)


# ---------------------------------------------------------------------------------------------
# torch integration


def _op_args(blk, x, stride=1):
    from mobilekernels.qops import _block_call_args
    return _block_call_args(x, blk.packs, blk.x_scale, blk.x_zp, blk.qparams, stride, None,
                            ("relu6", "relu6", "none"), None, blk.out_qparams, torch.uint8) + (0,)


@pytest.mark.parametrize("t,stride", [(4, 1), (1, 1), (6, 2)])
def test_opcheck(t, stride):
    g = torch.Generator().manual_seed(t)
    blk = Block(g, 8, t, 8)
    x = _codes(g, (2, 8, 7, 6), torch.uint8)
    torch.library.opcheck(torch.ops.mobilekernels.qinverted_residual.default, _op_args(blk, x, stride))


def test_compile_and_export():
    g = torch.Generator().manual_seed(11)
    blk = Block(g, 16, 6, 16)

    class M(torch.nn.Module):
        def forward(self, x):
            return blk.fused(x, 1)

    x = _codes(g, (1, 16, 9, 9), torch.uint8).contiguous(memory_format=torch.channels_last)
    expect = blk.unfused(x, 1)
    assert torch.equal(torch.compile(M(), fullgraph=True)(x), expect)
    ep = torch.export.export(M(), (x,))
    assert any("qinverted_residual" in str(n.target) for n in ep.graph.nodes)
    assert torch.equal(ep.module()(x), expect)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    buf.seek(0)
    assert torch.equal(torch.export.load(buf).module()(x), expect)


def test_validated_arguments_are_cached_by_type(blk):
    """The block's scalar arguments are validated once per distinct combination (qops caches the
    result): a later call with equal values of a wrong type (1.0 or True for a zero point of 1)
    must still be rejected, and the valid call still runs."""
    qp = [(s, 1) for s, _ in blk.qparams]
    kw = dict(stride=1, residual=True, out_qparams=blk.out_qparams)
    good = qops.qinverted_residual(_x(), blk.packs, blk.x_scale, blk.x_zp, qp, **kw)
    for bad in (1.0, True):
        with pytest.raises(TypeError, match="must be an int"):
            qops.qinverted_residual(_x(), blk.packs, blk.x_scale, blk.x_zp, [qp[0], (qp[1][0], bad), qp[2]], **kw)
    # (a float out zero point reaches the registered op, whose schema rejects it)
    with pytest.raises((TypeError, RuntimeError), match="int"):
        qops.qinverted_residual(_x(), blk.packs, blk.x_scale, blk.x_zp, qp, stride=1, residual=True,
                                out_qparams=(blk.out_qparams[0], float(blk.out_qparams[1])))
    assert torch.equal(qops.qinverted_residual(_x(), blk.packs, blk.x_scale, blk.x_zp, qp, **kw), good)
