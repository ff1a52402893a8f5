"""The AMX level really runs AMX: qconv1x1 and the fused int8 block name the AMX kernel, and its
results are bit-exact with the NumPy int64 reference (and with the avx512vnni level) over tile
tails, both activation dtypes, weight zero points, accumulators at the int32 limits and 1 and 2
threads. Skipped on CPUs without AMX (the C++ tests then skip it too)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

import mobilekernels as mk
from mobilekernels import _C, qops

sys.path.insert(0, os.path.dirname(__file__))
import q8_reference as ref  # noqa: E402

pytestmark = pytest.mark.skipif("amx" not in _C.supported_isas(), reason="this CPU lacks AMX")
DT = {"uint8": torch.uint8, "int8": torch.int8}
AMX_NAME = "amx/32x32-tdpbusd"


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    old = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(old)


def _rand(g, shape, dtype):
    lo, hi = ref.RANGE[dtype]
    return torch.randint(lo, hi + 1, shape, generator=g, dtype=torch.int64).to(DT[dtype])


def _case(g, hw, cin, cout, xd, wzp, big_bias):
    x = _rand(g, (1, cin, *hw), xd).contiguous(memory_format=torch.channels_last)
    wt = _rand(g, (cout, cin, 1, 1), "int8")
    x_zp = -3 if xd == "int8" else 131
    zp = (torch.randint(-128, 128, (cout,), generator=g, dtype=torch.int32) if wzp
          else torch.zeros(cout, dtype=torch.int32))
    w_scale = torch.rand(cout, generator=g) + 0.5
    xs = x.permute(0, 2, 3, 1).reshape(-1, cin).numpy().astype(np.int64)
    wn = wt.reshape(cout, cin).numpy().astype(np.int64)
    acc = (xs - x_zp) @ (wn - zp.numpy().reshape(-1, 1)).T
    if big_bias:  # true sums at the int32 limits
        b = np.where(np.arange(cout) % 2 == 1, 2**31 - 1 - np.maximum(acc.max(0), 0), -2**31 - np.minimum(acc.min(0), 0))
    else:
        b = torch.randint(-3000, 3000, (cout,), generator=g, dtype=torch.int32).numpy()
    bias = torch.from_numpy(b.astype(np.int32))
    packed = qops.qconv1x1_pack(wt, w_scale, zp, bias)
    x_scale, y_scale, y_zp = 0.05, 1e-6 if big_bias else 0.9, 120
    expect = ref.qconv1x1(xs, wn, zp.numpy(), b, x_scale, x_zp, w_scale.numpy(), y_scale, y_zp, 0, 255)

    def run():
        y = qops.qconv1x1(x, packed, cout, x_scale, x_zp, y_scale, y_zp, torch.uint8, "none")
        return y.permute(0, 2, 3, 1).reshape(-1, cout).numpy().astype(np.int64)
    return run, expect


def test_amx_level_names_amx():
    with mk.use_isa("amx"):
        assert qops.kernel_names()["qconv1x1"].startswith(AMX_NAME)
    with mk.use_isa("avx512vnni"):
        assert qops.kernel_names()["qconv1x1"].startswith("avx512vnni/")


# (H, W), Cin, Cout: every M / N / K tail of the 32x32 register tile above the size rule (AMX
# runs), K <= 64 (one k step) and K > 64 (2x2 tiles), K % 64 == 0 (A tiles straight from the
# rows) or not, plus small calls the rule sends to avx512vnni.
SHAPES = [((7, 7), 160, 960), ((14, 14), 64, 384), ((1, 33), 65, 70), ((5, 13), 128, 48), ((3, 17), 300, 33),
          ((56, 2), 24, 144), ((7, 9), 16, 17), ((1, 70), 192, 31), ((2, 2), 8, 8), ((1, 1), 576, 576)]


@pytest.mark.parametrize("xd,wzp,big", [("uint8", False, False), ("int8", True, False), ("uint8", True, True),
                                        ("int8", False, True)])
def test_amx_matches_reference(threads, xd, wzp, big):
    g = torch.Generator().manual_seed(17 + threads)
    with mk.use_isa("amx"):
        for hw, cin, cout in SHAPES:
            run, expect = _case(g, hw, cin, cout, xd, wzp, big)
            got = run()
            bad = np.argwhere(got != expect)
            assert bad.size == 0, (f"{hw} {cin}->{cout} {xd} wzp={wzp} big={big} threads={threads}: {len(bad)} "
                                   f"mismatches, first at {tuple(bad[0])}: {got[tuple(bad[0])]} vs {expect[tuple(bad[0])]}")


def test_amx_equals_vnni_on_mobilenet_v2_layers(threads):
    g = torch.Generator().manual_seed(5)
    for hw, cin, cout in [((56, 56), 24, 144), ((28, 28), 32, 192), ((14, 14), 384, 64), ((7, 7), 320, 1280),
                          ((112, 112), 16, 96), ((56, 56), 144, 24)]:
        run, expect = _case(g, hw, cin, cout, "uint8", False, False)
        with mk.use_isa("amx"):
            a = run()
        with mk.use_isa("avx512vnni"):
            v = run()
        assert np.array_equal(a, expect) and np.array_equal(v, expect), (hw, cin, cout)


def test_fused_block_uses_amx():
    g = torch.Generator().manual_seed(3)
    cin, chid, cout = 64, 384, 96  # V2 block 11 (no residual)
    wt = [_rand(g, s, "int8") for s in [(chid, cin, 1, 1), (chid, 1, 3, 3), (cout, chid, 1, 1)]]

    def qp(c):
        return torch.rand(c, generator=g) * 1e-3 + 1e-3, torch.zeros(c, dtype=torch.int32), None
    packs = qops.QInvertedResidualPacks(qops.qconv1x1_pack(wt[0], *qp(chid)), qops.qdwconv2d_pack(wt[1], *qp(chid)),
                                        qops.qconv1x1_pack(wt[2], *qp(cout)), chid, cout, 3)
    x = _rand(g, (1, cin, 14, 14), "uint8").contiguous(memory_format=torch.channels_last)
    qparams = [(0.05, 128)] * 3
    with mk.use_isa("amx"):
        info = qops.qinverted_residual_info(x, packs, 0.03, 128, qparams, 1)
        ya = qops.qinverted_residual(x, packs, 0.03, 128, qparams, 1)
    with mk.use_isa("avx512vnni"):
        yv = qops.qinverted_residual(x, packs, 0.03, 128, qparams, 1)
    assert AMX_NAME in info["kernel"], info["kernel"]
    assert torch.equal(ya, yv) and ya.float().std() > 2
