"""int8 pointwise conv (qconv1x1): bit-exact vs the NumPy int64 reference on every ISA path
(forced in turn by the ``isa`` fixture), bad input, opcheck / compile / export."""
from __future__ import annotations

import io
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


def run_case(g, n, h, w, cin, cout, xd="uint8", wd="int8", yd="uint8", x_zp=None, w_zp=0, y_zp=None,
             x_scale=0.05, y_scale=0.4, per_channel=True, activation="none", big_bias=False, bias=True):
    x = _rand(g, (n, cin, h, w), xd).contiguous(memory_format=torch.channels_last)
    wt = _rand(g, (cout, cin, 1, 1), wd)
    lo, hi = ref.RANGE[xd]
    x_zp = (lo + hi + 1) // 2 if x_zp is None else x_zp
    y_zp = (ref.RANGE[yd][0] + ref.RANGE[yd][1] + 1) // 2 if y_zp is None else y_zp
    w_scale = (torch.rand(cout, generator=g) + 0.5) if per_channel else torch.tensor([0.7])
    wzp = torch.full((cout,), w_zp, dtype=torch.int32) if isinstance(w_zp, int) else w_zp
    xs = x.permute(0, 2, 3, 1).reshape(-1, cin).numpy().astype(np.int64)
    wn = wt.reshape(cout, cin).numpy().astype(np.int64)
    acc = (xs - x_zp) @ (wn - wzp.numpy().reshape(-1, 1)).T
    if big_bias:  # push the true sum to the int32 limits (intermediate sums may overflow)
        b = np.where(np.arange(cout) % 2 == 1, 2**31 - 1 - np.maximum(acc.max(0), 0), -2**31 - np.minimum(acc.min(0), 0))
        b = torch.from_numpy(b.astype(np.int32))
    elif bias:
        b = torch.randint(-3000, 3000, (cout,), generator=g, dtype=torch.int32)
    else:
        b = None
    packed = qops.qconv1x1_pack(wt, w_scale, wzp, b)
    y = qops.qconv1x1(x, packed, cout, x_scale, x_zp, y_scale, y_zp, DT[yd], activation)
    y_min, y_max = qops.output_range(activation, y_scale, y_zp, DT[yd])
    expect = ref.qconv1x1(xs, wn, wzp.numpy(), np.zeros(cout) if b is None else b.numpy(), x_scale, x_zp,
                          w_scale.expand(cout).numpy(), y_scale, y_zp, y_min, y_max)
    got = y.permute(0, 2, 3, 1).reshape(-1, cout).numpy().astype(np.int64)
    assert y.dtype == DT[yd] and y.shape == (n, cout, h, w)
    assert y.is_contiguous(memory_format=torch.channels_last)
    bad = np.argwhere(got != expect)
    assert bad.size == 0, (f"[{mk.get_isa()} {qops.kernel_names()['qconv1x1']}] {len(bad)} mismatches, first at "
                           f"(pixel, oc)={tuple(bad[0])}: got {got[tuple(bad[0])]} expected {expect[tuple(bad[0])]}")


SIZES = [1, 3, 4, 8, 15, 16, 17, 31, 33, 63, 67]


def test_odd_sizes_every_dtype(isa):
    g = torch.Generator().manual_seed(1)
    dts = ["uint8", "int8"]
    for i, cin in enumerate(SIZES):
        for j, cout in enumerate(SIZES[(i % 3)::3]):
            hw = (1, 1) if (i + j) % 3 == 0 else ((1, 7) if (i + j) % 3 == 1 else (7, 7))
            run_case(g, 1, *hw, cin, cout, xd=dts[i % 2], wd=dts[j % 2], yd=dts[(i + j) % 2])


@pytest.mark.parametrize("hw,cin,cout", [((56, 56), 24, 144), ((14, 14), 384, 64), ((7, 7), 160, 960),
                                         ((7, 7), 320, 1280)])
def test_mobilenet_shapes(isa, hw, cin, cout):
    run_case(torch.Generator().manual_seed(cin), 1, *hw, cin, cout, activation="relu6")


@pytest.mark.parametrize("xd,x_zp,w_zp", [("uint8", 0, 0), ("uint8", 255, 255), ("int8", -128, -128),
                                          ("int8", 127, 127), ("uint8", 255, 0), ("int8", -128, 0)])
def test_extreme_zero_points(isa, xd, x_zp, w_zp):
    g = torch.Generator().manual_seed(2)
    wd = "uint8" if w_zp == 255 else "int8"
    run_case(g, 2, 3, 5, 37, 45, xd=xd, wd=wd, yd=xd, x_zp=x_zp, w_zp=w_zp, y_zp=x_zp, per_channel=False)


def test_per_channel_weight_zero_points(isa):
    g = torch.Generator().manual_seed(3)
    wzp = torch.randint(0, 256, (40,), generator=g, dtype=torch.int32)
    run_case(g, 1, 7, 7, 29, 40, xd="int8", wd="uint8", yd="int8", w_zp=wzp)


@pytest.mark.parametrize("y_scale", [1e-4, 0.03, 1.0, 25.0, 3e4])
def test_scales_above_and_below_one(isa, y_scale):
    run_case(torch.Generator().manual_seed(4), 1, 4, 4, 48, 24, x_scale=0.5, y_scale=y_scale)


def test_accumulators_near_int32_limits(isa):
    g = torch.Generator().manual_seed(5)
    run_case(g, 1, 2, 3, 1024, 20, xd="uint8", wd="uint8", x_zp=0, w_zp=255, x_scale=1e-6, y_scale=1.0,
             big_bias=True)
    run_case(g, 1, 1, 6, 333, 17, xd="int8", wd="int8", x_zp=-128, w_zp=-128, x_scale=1e-7, y_scale=1.0,
             big_bias=True)


@pytest.mark.parametrize("activation", ["relu", "relu6"])
def test_fused_activation_no_bias(isa, activation):
    run_case(torch.Generator().manual_seed(6), 1, 5, 5, 20, 30, activation=activation, bias=False, y_scale=0.02)


# ---------------------------------------------------------------------------------------------
# bad input: clear Python errors, never a crash


def _good():
    w = torch.randint(-128, 128, (8, 4, 1, 1), dtype=torch.int8)
    packed = qops.qconv1x1_pack(w, torch.ones(8), 0)
    x = torch.randint(0, 256, (1, 4, 3, 3), dtype=torch.uint8)
    return x, packed


@pytest.mark.parametrize("change,err", [
    (dict(x_scale=0.0), ValueError), (dict(x_scale=float("nan")), ValueError), (dict(y_scale=-1.0), ValueError),
    (dict(y_scale=float("inf")), ValueError), (dict(x_zero_point=256), ValueError), (dict(x_zero_point=-1), ValueError),
    (dict(y_zero_point=300), ValueError), (dict(out_dtype=torch.float32), TypeError),
    (dict(out_channels=9), ValueError), (dict(out_channels=0), ValueError),
    (dict(y_min=10, y_max=5), ValueError), (dict(x_scale=1e30, y_scale=1e-30), ValueError),
])
def test_bad_arguments(change, err):
    x, packed = _good()
    args = dict(x=x, packed=packed, out_channels=8, x_scale=0.1, x_zero_point=0, y_scale=0.1, y_zero_point=0,
                out_dtype=torch.uint8, y_min=0, y_max=255)
    args.update(change)
    with pytest.raises(err):
        torch.ops.mobilekernels.qconv1x1(**args)


def test_bad_tensors_and_packs():
    x, packed = _good()
    call = lambda x, p, cout=8: qops.qconv1x1(x, p, cout, 0.1, 0, 0.1, 0)  # noqa: E731
    with pytest.raises(TypeError, match="uint8 or torch.int8"):
        call(x.float(), packed)
    with pytest.raises(ValueError, match="4-D"):
        call(x[0], packed)
    with pytest.raises(ValueError, match="another shape"):
        call(torch.randint(0, 256, (1, 5, 3, 3), dtype=torch.uint8), packed)  # channel mismatch
    with pytest.raises(TypeError):
        call(x, packed.float())  # unpacked / wrong dtype
    with pytest.raises(ValueError):
        call(x, torch.zeros(10, dtype=torch.uint8))  # too small for a header
    foreign = torch.zeros_like(packed)
    with pytest.raises(ValueError, match="magic"):
        call(x, foreign)
    corrupt = packed.clone()
    corrupt[8] ^= 1  # Cin field
    with pytest.raises(ValueError, match="made for"):
        call(x, corrupt)
    dw = qops.qdwconv2d_pack(torch.zeros(8, 1, 1, 1, dtype=torch.int8), 1.0)
    with pytest.raises(ValueError):
        call(x, dw)  # depthwise pack in the pointwise op
    with pytest.raises(ValueError, match="w_zero_point"):
        qops.qconv1x1_pack(torch.zeros(8, 4, 1, 1, dtype=torch.uint8), 1.0, 256)
    with pytest.raises(ValueError, match="w_scale"):
        qops.qconv1x1_pack(torch.zeros(8, 4, 1, 1, dtype=torch.int8), torch.tensor([1.0, 0.0] * 4))
    with pytest.raises(ValueError, match="Cout, Cin, 1, 1"):
        qops.qconv1x1_pack(torch.zeros(8, 4, 3, 3, dtype=torch.int8), 1.0)
    with pytest.raises(ValueError, match="bias"):
        qops.qconv1x1_pack(torch.zeros(8, 4, 1, 1, dtype=torch.int8), 1.0, 0, torch.zeros(7, dtype=torch.int32))


def test_noncontiguous_input_and_state_dict_roundtrip():
    x, packed = _good()
    buf = io.BytesIO()
    torch.save({"packed": packed}, buf)
    buf.seek(0)
    loaded = torch.load(buf)["packed"]
    y0 = qops.qconv1x1(x, packed, 8, 0.1, 3, 0.2, 5)
    y1 = qops.qconv1x1(x.contiguous(), loaded, 8, 0.1, 3, 0.2, 5)  # NCHW input: copied to NHWC
    y2 = qops.qconv1x1(x.contiguous(memory_format=torch.channels_last), loaded, 8, 0.1, 3, 0.2, 5)
    assert torch.equal(y0, y1) and torch.equal(y0, y2)


# ---------------------------------------------------------------------------------------------
# torch integration


def test_opcheck():
    x, packed = _good()
    w = torch.randint(-128, 128, (8, 4, 1, 1), dtype=torch.int8)
    torch.library.opcheck(torch.ops.mobilekernels.qconv1x1_pack.default, (w, torch.ones(8), torch.zeros(8, dtype=torch.int32), None))
    torch.library.opcheck(torch.ops.mobilekernels.qconv1x1.default,
                          (x, packed, 8, 0.1, 3, 0.2, 5, torch.uint8, 0, 255))


def test_compile_and_export():
    x, packed = _good()

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("packed", packed)

        def forward(self, x):
            return torch.ops.mobilekernels.qconv1x1(x, self.packed, 8, 0.1, 3, 0.2, 5, torch.uint8, 5, 255)

    m = M()
    eager = m(x)
    compiled = torch.compile(m, fullgraph=True, backend="eager")(x)
    assert torch.equal(eager, compiled)
    ep = torch.export.export(m, (x,))
    assert torch.equal(ep.module()(x), eager)
