"""int8 depthwise conv (qdwconv2d): bit-exact vs the NumPy int64 reference on every ISA path,
bad input, opcheck / compile / export."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

import mobilekernels as mk
from mobilekernels import qops

sys.path.insert(0, os.path.dirname(__file__))
import q8_reference as ref  # noqa: E402

DT = {"uint8": torch.uint8, "int8": torch.int8}


def _rand(g, shape, dtype):
    lo, hi = ref.RANGE[dtype]
    return torch.randint(lo, hi + 1, shape, generator=g, dtype=torch.int64).to(DT[dtype])


def run_case(g, n, h, w, c, k, stride=1, pad=None, dil=1, mult=1, xd="uint8", wd="int8", yd="uint8",
             x_zp=None, w_zp=0, y_zp=None, x_scale=0.05, y_scale=0.3, activation="none"):
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    dh, dw = (dil, dil) if isinstance(dil, int) else dil
    pads = (dh * (kh - 1) // 2,) * 2 + (dw * (kw - 1) // 2,) * 2 if pad is None else pad
    cout = c * mult
    x = _rand(g, (n, c, h, w), xd).contiguous(memory_format=torch.channels_last)
    wt = _rand(g, (cout, 1, kh, kw), wd)
    lo, hi = ref.RANGE[xd]
    x_zp = (lo + hi + 1) // 2 if x_zp is None else x_zp
    y_zp = (ref.RANGE[yd][0] + ref.RANGE[yd][1] + 1) // 2 if y_zp is None else y_zp
    w_scale = torch.rand(cout, generator=g) + 0.5
    wzp = torch.full((cout,), w_zp, dtype=torch.int32) if isinstance(w_zp, int) else w_zp
    b = torch.randint(-20000, 20000, (cout,), generator=g, dtype=torch.int32)
    packed = qops.qdwconv2d_pack(wt, w_scale, wzp, b)
    y = qops.qdwconv2d(x, packed, cout, (kh, kw), x_scale, x_zp, y_scale, y_zp, (sh, sw), pads, (dh, dw),
                       DT[yd], activation)
    y_min, y_max = qops.output_range(activation, y_scale, y_zp, DT[yd])
    expect = ref.qdwconv2d(x.permute(0, 2, 3, 1).numpy(), wt[:, 0].numpy(), wzp.numpy(), b.numpy(), x_scale,
                           x_zp, w_scale.numpy(), y_scale, y_zp, y_min, y_max, (sh, sw), pads, (dh, dw))
    got = y.permute(0, 2, 3, 1).numpy().astype(np.int64)
    assert y.is_contiguous(memory_format=torch.channels_last) and y.dtype == DT[yd]
    assert got.shape == expect.shape
    bad = np.argwhere(got != expect)
    assert bad.size == 0, (f"[{mk.get_isa()} {qops.kernel_names()['qdwconv2d']}] {len(bad)} mismatches, first at "
                           f"NHWC {tuple(bad[0])}: got {got[tuple(bad[0])]} expected {expect[tuple(bad[0])]}")


@pytest.mark.parametrize("k", [3, 5, 7])
def test_fast_kernel_sizes(isa, k):
    g = torch.Generator().manual_seed(k)
    for i, (c, hw, s) in enumerate([(1, 5, 1), (15, 9, 2), (16, 8, 1), (33, 7, 2), (67, 12, 1)]):
        dts = ["uint8", "int8"]
        run_case(g, 1 + i % 2, hw, hw + 1, c, k, stride=s, xd=dts[i % 2], wd=dts[(i + 1) % 2], yd=dts[i // 2 % 2],
                 activation=["none", "relu", "relu6"][i % 3])


@pytest.mark.parametrize("kw", [
    dict(k=3, dil=2, c=5),                              # dilation
    dict(k=(3, 5), stride=(2, 1), c=17),                # non-square kernel, mixed stride
    dict(k=4, stride=3, pad=(1, 2, 1, 2), c=19),        # even kernel, asymmetric padding
    dict(k=3, mult=3, c=2),                             # depth multiplier
    dict(k=1, c=40, pad=(0, 0, 0, 0)),                  # 1x1
    dict(k=(1, 9), stride=(1, 4), c=9),                 # 1x9
    dict(k=3, pad=(0, 0, 0, 0), c=24),                  # valid
])
def test_generic_shapes(isa, kw):
    g = torch.Generator().manual_seed(7)
    kw = dict(kw)  # the parameter dict is shared by every ISA
    c = kw.pop("c")
    run_case(g, 2, 10, 11, c, **kw)


@pytest.mark.parametrize("xd,x_zp,wd,w_zp", [("uint8", 0, "uint8", 0), ("uint8", 255, "uint8", 255),
                                             ("int8", -128, "int8", 127), ("int8", 127, "int8", -128)])
def test_extreme_zero_points_padding_reads_zero_point(isa, xd, x_zp, wd, w_zp):
    run_case(torch.Generator().manual_seed(3), 1, 6, 6, 20, 3, xd=xd, wd=wd, yd=xd, x_zp=x_zp, w_zp=w_zp, y_zp=x_zp)


@pytest.mark.parametrize("y_scale", [1e-3, 1.0, 50.0])
def test_scales(isa, y_scale):
    run_case(torch.Generator().manual_seed(4), 1, 7, 7, 32, 3, x_scale=0.5, y_scale=y_scale)


def test_mobilenet_layer(isa):
    run_case(torch.Generator().manual_seed(5), 1, 28, 28, 144, 3, stride=2, activation="relu6")


def _good():
    w = torch.randint(-128, 128, (8, 1, 3, 3), dtype=torch.int8)
    return torch.randint(0, 256, (1, 8, 5, 5), dtype=torch.uint8), qops.qdwconv2d_pack(w, 0.5, 0)


def test_bad_input():
    x, packed = _good()
    call = lambda x, p, **kw: qops.qdwconv2d(x, p, kw.get("cout", 8), kw.get("k", 3), 0.1, kw.get("xz", 0),  # noqa: E731
                                              0.1, 0, padding=1)
    assert call(x, packed).shape == (1, 8, 5, 5)
    with pytest.raises(ValueError, match="another shape"):
        call(x, packed, k=5)  # pack made for 3x3
    with pytest.raises(ValueError):
        call(x, packed, cout=12)
    with pytest.raises(ValueError, match="multiple"):
        call(torch.randint(0, 256, (1, 3, 5, 5), dtype=torch.uint8), packed)
    with pytest.raises(ValueError, match="x_zero_point"):
        call(x, packed, xz=300)
    with pytest.raises(ValueError, match="x_zero_point"):
        call(x.to(torch.int8), packed, xz=200)
    with pytest.raises(TypeError):
        call(x.float(), packed)
    with pytest.raises(ValueError, match="pointwise pack"):
        pw = qops.qconv1x1_pack(torch.zeros(8, 8, 1, 1, dtype=torch.int8), 1.0)
        torch.ops.mobilekernels.qdwconv2d(x, torch.cat([pw, torch.zeros(_good()[1].numel() - pw.numel(), dtype=torch.uint8)]),
                                          8, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 0.1, 0, 0.1, 0, torch.uint8, 0, 255)
    with pytest.raises(ValueError, match="larger than"):
        torch.ops.mobilekernels.qdwconv2d(x[:, :, :1, :1], packed, 8, [3, 3], [1, 1], [0, 0, 0, 0], [1, 1],
                                          0.1, 0, 0.1, 0, torch.uint8, 0, 255)
    with pytest.raises(ValueError, match="depthwise weight"):
        qops.qdwconv2d_pack(torch.zeros(8, 2, 3, 3, dtype=torch.int8), 1.0)


def test_opcheck_compile_export():
    x, packed = _good()
    w = torch.randint(-128, 128, (8, 1, 3, 3), dtype=torch.int8)
    torch.library.opcheck(torch.ops.mobilekernels.qdwconv2d_pack.default,
                          (w, torch.ones(8), torch.zeros(1, dtype=torch.int32), None))
    args = (x, packed, 8, [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 0.1, 3, 0.2, 5, torch.uint8, 0, 255)
    torch.library.opcheck(torch.ops.mobilekernels.qdwconv2d.default, args)

    class M(torch.nn.Module):
        def forward(self, x, packed):
            return torch.ops.mobilekernels.qdwconv2d(x, packed, *args[2:])

    eager = M()(x, packed)
    assert torch.equal(torch.compile(M(), fullgraph=True, backend="eager")(x, packed), eager)
    assert torch.equal(torch.export.export(M(), (x, packed)).module()(x, packed), eager)


# Weights within int8 of their zero point take the AVX512-VNNI kernel's own path (vpdpbusd);
# others its int16 fallback. Both, with the C = 32 stride-1 pixel pairs and a 16-channel tail.
@pytest.mark.parametrize("c,hw,s,wd,w_zp", [(32, 23, 1, "int8", 0), (144, 13, 1, "uint8", 128),
                                            (96, 17, 2, "int8", 0), (48, 9, 1, "uint8", 0)])
def test_int8_range_weights_and_fallback(isa, c, hw, s, wd, w_zp):
    run_case(torch.Generator().manual_seed(c), 2, hw, hw + 2, c, 3, stride=s, wd=wd, w_zp=w_zp, activation="relu6")
