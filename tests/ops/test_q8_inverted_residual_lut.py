"""Fused int8 inverted residual with lookup-table stages (Hardswish and any elementwise
activation as a 256-entry table after a stage's requantization): bit-exact against the unfused
ops with the table applied in between (what mobilekernels.quant runs unfused), on every ISA path,
over MobileNetV3-Large / -Small block shapes at 224 and odd sizes, both dtypes, forced bands and
thread counts; bad tables; opcheck / compile / export with tables."""
from __future__ import annotations

import itertools
import os
import random
import sys

import pytest
import torch

import mobilekernels as mk
from mobilekernels import qops
from mobilekernels.quant.modules import qadd

sys.path.insert(0, os.path.dirname(__file__))
from test_q8_inverted_residual import RANGE, Block, _assert_same, _codes, _threads  # noqa: E402

# H Cin Chid Cout k stride at 224, every bneck row of V3-Large and V3-Small (tables 1 and 2)
V3_BLOCKS = [(112, 16, 16, 16, 3, 1), (112, 16, 64, 24, 3, 2), (56, 24, 72, 24, 3, 1), (56, 24, 72, 40, 5, 2),
             (28, 40, 120, 40, 5, 1), (28, 40, 240, 80, 3, 2), (14, 80, 200, 80, 3, 1), (14, 80, 184, 80, 3, 1),
             (14, 80, 480, 112, 3, 1), (14, 112, 672, 112, 3, 1), (14, 112, 672, 160, 5, 2),
             (7, 160, 960, 160, 5, 1),
             (112, 16, 16, 16, 3, 2), (56, 16, 72, 24, 3, 2), (28, 24, 88, 24, 3, 1), (28, 24, 96, 40, 5, 2),
             (14, 40, 240, 40, 5, 1), (14, 40, 120, 48, 5, 1), (14, 48, 144, 48, 5, 1), (14, 48, 288, 96, 5, 2),
             (7, 96, 576, 96, 5, 1)]


class LutBlock(Block):
    """Block whose chosen stages end in a table: ``qparams[i]`` is then the table's input and
    ``lut_qparams[i]`` the stage's output (the next stage is fed those)."""

    def __init__(self, g, cin, chid, cout, k=3, xd=torch.uint8, yd=torch.uint8, stages=(0, 1), hardswish=True,
                 **kw):
        super().__init__(g, cin, 1 if chid == cin else 2, cout, k, xd, yd, chid=chid, **kw)
        lo, hi = RANGE[yd]
        self.luts, self.lut_qparams = [None] * 3, [None] * 3
        for i in stages:
            if i == 0 and self.packs.expand is None:
                continue
            s_out, z_out = self.qparams[i][0] * (0.7 + 0.6 * float(torch.rand(1, generator=g))), \
                int(torch.randint(lo + 20, lo + 100, (1,), generator=g))
            if hardswish:  # hardswish of the dequantized code, requantized (as quant's _lut_for)
                codes = torch.arange(lo, hi + 1)
                xf = (codes - self.qparams[i][1]).double() * self.qparams[i][0]
                v = torch.round(torch.nn.functional.hardswish(xf) / s_out) + z_out
                t = v.clamp(lo, hi).to(yd)
                t = torch.cat([t[-lo:], t[:-lo]]) if lo else t  # index by the code's byte
            else:  # any table
                t = _codes(g, (256,), yd)
            self.luts[i], self.lut_qparams[i] = t.contiguous(), (s_out, z_out)

    def fused(self, x, stride, acts=("none", "none", "none"), residual=None, band_rows=0, padding=None):
        return qops.qinverted_residual(x, self.packs, self.x_scale, self.x_zp, self.qparams, stride, padding, acts,
                                       residual, self.out_qparams, self.yd, band_rows, self.luts, self.lut_qparams)

    def _lut(self, i, h, s, z):
        if self.luts[i] is None:
            return h, s, z
        return self.luts[i][h.long() & 0xFF].contiguous(memory_format=torch.channels_last), *self.lut_qparams[i]

    def unfused(self, x, stride, acts=("none", "none", "none"), residual=None, padding=None):
        p = self.packs
        if residual is None:
            residual = stride == 1 and self.cin == self.cout
        s, z = self.x_scale, self.x_zp
        h = x
        if p.expand is not None:
            h = qops.qconv1x1(x, p.expand, self.chid, s, z, *self.qparams[0], self.yd, acts[0])
            h, s, z = self._lut(0, h, *self.qparams[0])
        pad = self.k // 2 if padding is None else padding
        d = qops.qdwconv2d(h, p.dw, self.chid, self.k, s, z, *self.qparams[1], stride, pad, 1, self.yd, acts[1])
        d, s, z = self._lut(1, d, *self.qparams[1])
        y = qops.qconv1x1(d, p.project, self.cout, s, z, *self.qparams[2], self.yd, acts[2])
        y, s, z = self._lut(2, y, *self.qparams[2])
        if residual:
            y = qadd(x, self.x_scale, self.x_zp, y, s, z, *self.out_qparams, self.yd)
        return y


def test_v3_blocks_hardswish(isa):
    g = torch.Generator().manual_seed(3)
    for i, (h, cin, chid, cout, k, s) in enumerate(V3_BLOCKS):
        blk = LutBlock(g, cin, chid, cout, k)
        x = _codes(g, (1, cin, h, h), torch.uint8).contiguous(memory_format=torch.channels_last)
        _assert_same(blk.fused(x, s), blk.unfused(x, s), f"V3 block {i} {h}x{h} {cin}->{chid}->{cout} k{k} s{s}")


ODD = list(itertools.product([1, 2, 3, 5, 8, 13, 17], [1, 3, 6]))


@pytest.mark.parametrize("size,t", ODD, ids=[f"h{a}-t{b}" for a, b in ODD])
def test_odd_sizes(isa, size, t):
    rnd = random.Random(size * 100 + t)
    g = torch.Generator().manual_seed(size * 100 + t)
    for _ in range(3):
        h, w = size, rnd.randint(1, 17)
        cin = rnd.choice([1, 3, 5, 7, 9, 17, 24, 33])
        s = rnd.choice([1, 2])
        res = rnd.random() < 0.6
        cout = cin if res else rnd.choice([2, 5, 11, 16, 19, 40])
        res = res and s == 1
        n = rnd.choice([1, 3])
        k = rnd.choice([3, 5])
        if h + 2 * (k // 2) < k or w + 2 * (k // 2) < k:
            continue
        xd, yd = rnd.choice([(torch.uint8, torch.uint8), (torch.int8, torch.int8), (torch.uint8, torch.int8)])
        stages = rnd.choice([(0, 1), (0,), (1,), (2,), (0, 1, 2)])
        acts = rnd.choice([("none", "none", "none"), ("relu", "relu6", "none"), ("none", "relu", "relu6")])
        blk = LutBlock(g, cin, cin * t, cout, k, xd, yd, stages, hardswish=rnd.random() < 0.5,
                       wzp=rnd.random() < 0.4)
        x = _codes(g, (n, cin, h, w), xd)
        expect = blk.unfused(x, s, acts, res)
        for band in (0, 1, 2):
            for nt in (1, 2):
                with _threads(nt):
                    got = blk.fused(x, s, acts, res, band)
                what = (f"N{n} {h}x{w} {cin}x{t}->{cout} k{k} s{s} res{res} {xd}->{yd} acts {acts} luts {stages} "
                        f"band {band} threads {nt}")
                assert got.dtype == expect.dtype and got.shape == expect.shape, what
                assert torch.equal(got, expect), f"[{mk.get_isa()}] {what}: {(got != expect).sum()} codes differ"


def test_a_wrong_table_is_caught():
    """The comparison can fail: one changed table entry that the data hits shows up."""
    g = torch.Generator().manual_seed(9)
    blk = LutBlock(g, 8, 32, 8, stages=(1,))
    x = _codes(g, (1, 8, 9, 9), torch.uint8)
    expect = blk.unfused(x, 1)
    blk.luts[1] = blk.luts[1].clone()
    blk.luts[1] += 1
    assert not torch.equal(blk.fused(x, 1), expect)


def test_info_names_the_table_kernel():
    g = torch.Generator().manual_seed(2)
    blk = LutBlock(g, 8, 32, 8)
    x = torch.empty((1, 8, 14, 14), dtype=torch.uint8)
    info = qops.qinverted_residual_info(x, blk.packs, blk.x_scale, blk.x_zp, blk.qparams, 1,
                                        out_qparams=blk.out_qparams, luts=blk.luts, lut_qparams=blk.lut_qparams)
    assert " + lut " in info["kernel"]


# ---------------------------------------------------------------------------------------------
# bad tables: Python errors, never a crash


@pytest.mark.parametrize("mutate,err,match", [
    (lambda b: b.luts.__setitem__(1, torch.zeros(255, dtype=torch.uint8)), ValueError, "256 entries"),
    (lambda b: b.luts.__setitem__(1, torch.zeros(512, dtype=torch.uint8)[::2]), ValueError, "contiguous"),
    (lambda b: b.luts.__setitem__(1, torch.zeros(2, 128, dtype=torch.uint8)), ValueError, "1-D"),
    (lambda b: b.luts.__setitem__(1, torch.zeros(256, dtype=torch.int32)), TypeError, "dtype"),
    (lambda b: b.luts.__setitem__(1, torch.zeros(256, dtype=torch.int8)), TypeError, "dtype"),
    (lambda b: b.luts.__setitem__(1, [0] * 256), (TypeError, RuntimeError), "Tensor"),  # torch refuses it
    (lambda b: b.lut_qparams.__setitem__(1, (0.0, 3)), ValueError, "lut_scale"),
    (lambda b: b.lut_qparams.__setitem__(1, (0.1, 300)), ValueError, "lut_zero_point"),
    (lambda b: setattr(b, "lut_qparams", None), ValueError, "lut_qparams"),
])
def test_bad_tables(mutate, err, match):
    blk = LutBlock(torch.Generator().manual_seed(3), 8, 32, 8)
    mutate(blk)
    with pytest.raises(err, match=match):
        blk.fused(torch.zeros((1, 8, 6, 6), dtype=torch.uint8), 1)


def test_expand_table_without_expand_pack():
    blk = LutBlock(torch.Generator().manual_seed(3), 8, 8, 8, stages=(1,))
    blk.luts[0], blk.lut_qparams[0] = torch.zeros(256, dtype=torch.uint8), (0.1, 0)
    with pytest.raises(ValueError, match="without an expand pack"):
        blk.fused(torch.zeros((1, 8, 6, 6), dtype=torch.uint8), 1)


def test_cpp_revalidates_table_qparams():
    from mobilekernels import _C
    blk = LutBlock(torch.Generator().manual_seed(3), 8, 32, 8)
    p = blk.packs
    x = torch.zeros((1, 8, 6, 6), dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    out = torch.empty((1, 8, 6, 6), dtype=torch.uint8)
    args = [x.data_ptr(), p.expand.data_ptr(), p.expand.numel(), p.dw.data_ptr(), p.dw.numel(), p.project.data_ptr(),
            p.project.numel(), out.data_ptr(), [1, 6, 6, 8, 32, 8, 3, 1, 1, 1, 1, 1], True, False, 0, False, False,
            [0.1] * 5, [0] * 5, [0, 255] * 3, [0, blk.luts[1].data_ptr(), 0], [1.0, -1.0, 1.0], [0, 0, 0], 1]
    with pytest.raises(ValueError, match="table scale"):
        _C.q8_inverted_residual(*args)
    args[-3], args[-2] = [1.0, 0.1, 1.0], [0, 256, 0]
    with pytest.raises(ValueError, match="table zero point"):
        _C.q8_inverted_residual(*args)
    args[-3] = [1.0, 0.1]
    with pytest.raises(ValueError, match="3 table"):
        _C.q8_inverted_residual(*args)


# ---------------------------------------------------------------------------------------------
# torch integration


def _op_args(blk, x, stride=1):
    from mobilekernels.qops import _block_call_args, _lut_args
    return _block_call_args(x, blk.packs, blk.x_scale, blk.x_zp, blk.qparams, stride, None,
                            ("none", "none", "none"), None, blk.out_qparams, blk.yd) + \
        (0,) + _lut_args(blk.luts, blk.lut_qparams)


@pytest.mark.parametrize("t,stride,stages", [(4, 1, (0, 1)), (1, 1, (1, 2)), (6, 2, (0, 1, 2))])
def test_opcheck(t, stride, stages):
    g = torch.Generator().manual_seed(t)
    blk = LutBlock(g, 8, 8 * t, 8, stages=stages)
    x = _codes(g, (2, 8, 7, 6), torch.uint8)
    torch.library.opcheck(torch.ops.mobilekernels.qinverted_residual.default, _op_args(blk, x, stride))


def test_compile_and_export():
    g = torch.Generator().manual_seed(11)
    blk = LutBlock(g, 16, 96, 16)

    class M(torch.nn.Module):
        def forward(self, x):
            return blk.fused(x, 1)

    x = _codes(g, (1, 16, 9, 9), torch.uint8).contiguous(memory_format=torch.channels_last)
    expect = blk.unfused(x, 1)
    assert torch.equal(torch.compile(M(), fullgraph=True)(x), expect)
    ep = torch.export.export(M(), (x,))
    assert torch.equal(ep.module()(x), expect)
