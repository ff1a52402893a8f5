"""The public int8 residual add (qops.qadd / torch.ops.mobilekernels.qadd): bit-exact to the
torch-op reference mobilekernels.quant.modules.qadd over random shapes, layouts, qparams, uint8
and int8 inputs and outputs, rounding ties and saturation; clear errors on bad input; opcheck."""
from __future__ import annotations

import math
import random

import pytest
import torch

from mobilekernels import qops
from mobilekernels.quant.modules import qadd as ref_qadd

CL = torch.channels_last
RANGE = {torch.uint8: (0, 255), torch.int8: (-128, 127)}
DTYPES = [torch.uint8, torch.int8]


def _codes(g, shape, dtype):
    lo, hi = RANGE[dtype]
    return torch.randint(lo, hi + 1, shape, generator=g, dtype=torch.int64).to(dtype)


def _layout(t, kind):
    if kind == "cl":
        return t.contiguous(memory_format=CL)
    if kind == "nchw":
        return t.contiguous()
    # a strided view: every other column of a wider tensor
    wide = torch.zeros(*t.shape[:3], 2 * t.shape[3], dtype=t.dtype)
    wide[..., ::2] = t
    return wide[..., ::2]


def _check(a, sa, za, b, sb, zb, so, zo, dt):
    ref = ref_qadd(a, sa, za, b, sb, zb, so, zo, dt)
    for out in (qops.qadd(a, sa, za, b, sb, zb, so, zo, dt),
                torch.ops.mobilekernels.qadd(a, sa, za, b, sb, zb, so, zo, dt)):
        assert out.dtype == dt and out.shape == a.shape
        assert out.is_contiguous(memory_format=CL)
        assert torch.equal(out, ref), (out.int() - ref.int()).abs().max()
    return ref


@pytest.mark.parametrize("seed", range(40))
def test_random_bit_exact(isa, seed):  # each level: the baseline loop, or AVX-512 from avx512 up
    rnd = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    shape = (rnd.choice([0, 1, 3]) if seed % 10 == 0 else rnd.choice([1, 3]), rnd.randint(1, 37),
             rnd.randint(1, 9), rnd.randint(1, 9))
    da, db, dt = rnd.choice(DTYPES), rnd.choice(DTYPES), rnd.choice(DTYPES)
    a = _layout(_codes(g, shape, da), rnd.choice(["cl", "nchw", "strided"]))
    b = _layout(_codes(g, shape, db), rnd.choice(["cl", "nchw", "strided"]))
    scale = lambda: math.exp(rnd.uniform(math.log(1e-3), math.log(1.0)))  # noqa: E731
    zp = lambda d: rnd.randint(*RANGE[d])  # noqa: E731
    _check(a, scale(), zp(da), b, scale(), zp(db), scale(), zp(dt), dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_ties_round_half_even_and_saturation(isa, dt):
    lo, hi = RANGE[dt]
    a = torch.arange(lo, hi + 1, dtype=torch.int64).to(dt).reshape(1, 1, 16, 16)
    b = a.flip(2)
    # ratio 0.5 and b at its zero point: every odd a - za is an exact tie
    for zo in (lo, 0 if dt == torch.int8 else 128, hi):
        _check(a, 0.5, 3 if dt == torch.int8 else 131, b, 0.25, 0, 1.0, zo, dt)
        _check(a, 0.5, 0 if dt == torch.int8 else 128, b, 0.5, 0 if dt == torch.int8 else 128, 1.0, zo, dt)
    _check(a, 1.0, 0, b, 1.0, 0, 1e-3, 0 if dt == torch.int8 else 128, dt)  # saturates both ways
    _check(a, 1e-6, 0, b, 1e-6, 0, 1.0, 5, dt)  # everything rounds to zero


@pytest.mark.parametrize("xd,yd", [(torch.uint8, torch.uint8), (torch.int8, torch.int8), (torch.uint8, torch.int8)])
def test_accepts_qconv1x1_output(xd, yd):
    g = torch.Generator().manual_seed(1)
    x = _codes(g, (2, 16, 5, 7), xd).contiguous(memory_format=CL)
    pk = qops.qconv1x1_pack(_codes(g, (16, 16, 1, 1), torch.int8), 0.002)
    xz = 3 if xd == torch.int8 else 131
    y = qops.qconv1x1(x, pk, 16, 0.05, xz, 0.04, -5 if yd == torch.int8 else 120, yd)
    out = _check(x, 0.05, xz, y, 0.04, -5 if yd == torch.int8 else 120, 0.07, 10, yd)
    assert out.shape == x.shape


@pytest.mark.parametrize("grad", [False, True])
def test_opcheck(grad):
    g = torch.Generator().manual_seed(2)
    a = _codes(g, (2, 5, 3, 4), torch.uint8).contiguous(memory_format=CL)
    b = _codes(g, (2, 5, 3, 4), torch.int8)
    with torch.set_grad_enabled(grad):
        torch.library.opcheck(torch.ops.mobilekernels.qadd.default, (a, 0.05, 120, b, 0.03, -3, 0.06, 7, torch.int8))
        torch.library.opcheck(torch.ops.mobilekernels.qadd.default, (a, 0.05, 120, a, 0.03, 1, 0.06, 7, torch.uint8))


def test_compile():
    g = torch.Generator().manual_seed(3)
    a, b = (_codes(g, (1, 8, 4, 4), torch.uint8).contiguous(memory_format=CL) for _ in range(2))
    f = torch.compile(lambda a, b: qops.qadd(a, 0.05, 120, b, 0.04, 100, 0.07, 110), fullgraph=True)
    assert torch.equal(f(a, b), ref_qadd(a, 0.05, 120, b, 0.04, 100, 0.07, 110))


def _bad():
    g = torch.Generator().manual_seed(4)
    a = _codes(g, (1, 4, 3, 3), torch.uint8)
    i8 = _codes(g, (1, 4, 3, 3), torch.int8)
    return [
        ((a, 0.1, 1, a[:, :3], 0.1, 1, 0.1, 1), ValueError, "same shape"),
        ((a[0], 0.1, 1, a[0], 0.1, 1, 0.1, 1), ValueError, "4-D"),
        ((a.float(), 0.1, 1, a, 0.1, 1, 0.1, 1), TypeError, "a must be torch.uint8 or torch.int8"),
        ((a, 0.1, 1, a.int(), 0.1, 1, 0.1, 1), TypeError, "b must be torch.uint8 or torch.int8"),
        ((a, 0.1, 1, a, 0.1, 1, 0.1, 1, torch.int32), TypeError, "out_dtype"),
        ((a, 0.1, -1, a, 0.1, 1, 0.1, 1), ValueError, "a_zero_point -1 is outside"),
        ((a, 0.1, 1, i8, 0.1, 128, 0.1, 1), ValueError, "b_zero_point 128 is outside"),
        ((a, 0.1, 1, a, 0.1, 1, 0.1, 128, torch.int8), ValueError, "out_zero_point 128 is outside"),
        ((a, 0.0, 1, a, 0.1, 1, 0.1, 1), ValueError, "a_scale must be finite and > 0"),
        ((a, 0.1, 1, a, float("inf"), 1, 0.1, 1), ValueError, "b_scale must be finite"),
        ((a, 0.1, 1, a, 0.1, 1, -0.1, 1), ValueError, "out_scale"),
        ((a, 1e30, 1, a, 0.1, 1, 1e-30, 1), ValueError, "ratio too large"),
    ]


@pytest.mark.parametrize("case", _bad(), ids=lambda c: c[2] if isinstance(c, str) else None)
@pytest.mark.parametrize("path", ["wrapper", "op"])
def test_bad_input(case, path):
    args, exc, msg = case
    fn = qops.qadd if path == "wrapper" else torch.ops.mobilekernels.qadd
    if path == "op" and len(args) == 8:
        args = (*args, torch.uint8)
    with pytest.raises(exc, match=msg):
        fn(*args)
