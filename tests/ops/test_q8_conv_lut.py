"""The activation table in the int8 conv epilogues (``_C.q8_gemm`` / ``_C.q8_dwconv`` with
``lut``): byte for byte the conv's output looked up afterwards (what a separate ``_C.q8_lut`` pass
gives), on every ISA path, 1 and 2 threads; and ``QConv`` (Hardswish after a conv) giving the same
bytes on its first call (conv, then the table pass) and its cached calls (table in the epilogue)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import mobilekernels as mk
from mobilekernels import _C, qops


def _table(g):
    return torch.randint(0, 256, (256,), generator=g, dtype=torch.int64).to(torch.uint8)


def _gemm(x, packed, m, k, n, nt, lut=None):
    y = torch.empty(m * n, dtype=torch.uint8)
    ys = 8.0 * k ** 0.5  # outputs spread over ~100 codes, few saturated
    args = (packed.data_ptr(), packed.numel(), x.data_ptr(), m, k, n, 0.05, 128, False, ys, 120, False, 0, 255,
            y.data_ptr(), nt)
    _C.q8_gemm(*args) if lut is None else _C.q8_gemm(*args, lut.data_ptr())
    return y


@pytest.mark.parametrize("m,k,n", [(1, 7, 5), (7, 33, 24), (13, 80, 67), (49, 160, 96), (196, 80, 120),
                                   (9, 300, 40), (200, 24, 72)])
@pytest.mark.parametrize("nt", [1, 2])
def test_gemm_table_equals_conv_then_table(isa, m, k, n, nt):
    g = torch.Generator().manual_seed(m * 1000 + k + n)
    x = torch.randint(0, 256, (m * k,), generator=g, dtype=torch.int64).to(torch.uint8)
    w = torch.randint(-128, 128, (n, k, 1, 1), generator=g, dtype=torch.int64).to(torch.int8)
    packed = qops.qconv1x1_pack(w, torch.rand(n, generator=g) + 0.5, torch.zeros(n, dtype=torch.int32),
                                torch.randint(-3000, 3000, (n,), generator=g, dtype=torch.int32))
    lut = _table(g)
    plain = _gemm(x, packed, m, k, n, nt)
    fused = _gemm(x, packed, m, k, n, nt, lut)
    assert plain.numel() < 100 or plain.unique().numel() > 8  # the table sees many different codes
    assert torch.equal(fused, lut[plain.long()]), f"[{mk.get_isa()}] m={m} k={k} n={n} nt={nt}"


def _dw(x, packed, shape, nt, lut=None):
    n, h, w, c, kk, s = shape
    p = kk // 2
    oh, ow = (h + 2 * p - kk) // s + 1, (w + 2 * p - kk) // s + 1
    y = torch.empty(n * oh * ow * c, dtype=torch.uint8)
    args = (packed.data_ptr(), packed.numel(), x.data_ptr(), n, h, w, c, 1, kk, kk, s, s, 1, 1, p, p, oh, ow,
            0.05, 128, False, 10.0 * kk, 120, False, 0, 255, y.data_ptr(), nt)
    _C.q8_dwconv(*args) if lut is None else _C.q8_dwconv(*args, lut.data_ptr())
    return y


@pytest.mark.parametrize("shape", [(1, 14, 14, 48, 3, 1), (3, 9, 11, 33, 3, 2), (1, 7, 7, 200, 5, 1),
                                   (1, 14, 14, 480, 3, 1), (1, 5, 6, 7, 3, 1)])
@pytest.mark.parametrize("nt", [1, 2])
def test_dwconv_table_equals_conv_then_table(isa, shape, nt):
    n, h, w, c, kk, s = shape
    g = torch.Generator().manual_seed(h * 100 + c + kk)
    x = torch.randint(0, 256, (n * h * w * c,), generator=g, dtype=torch.int64).to(torch.uint8)
    wt = torch.randint(-128, 128, (c, 1, kk, kk), generator=g, dtype=torch.int64).to(torch.int8)
    packed = qops.qdwconv2d_pack(wt, torch.rand(c, generator=g) + 0.5, torch.zeros(c, dtype=torch.int32),
                                 torch.randint(-20000, 20000, (c,), generator=g, dtype=torch.int32))
    lut = _table(g)
    plain = _dw(x, packed, shape, nt)
    fused = _dw(x, packed, shape, nt, lut)
    assert plain.unique().numel() > 8  # the table sees many different codes
    assert torch.equal(fused, lut[plain.long()]), f"[{mk.get_isa()}] {shape} nt={nt}"


@pytest.mark.parametrize("nt", [1, 2])
def test_qconv_hardswish_first_and_cached_calls_agree(isa, nt):
    """QConv's first call runs the conv then the table pass; later calls the fused epilogue."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1), nn.BatchNorm2d(24), nn.Hardswish(),
                          nn.Conv2d(24, 24, 3, 1, 1, groups=24), nn.Hardswish(),
                          nn.Conv2d(24, 40, 1), nn.Hardswish()).eval()
    calib = [torch.randn(2, 3, 32, 32) for _ in range(2)]
    q = mk.quantize(model, calib, progress=False)
    q.replay = False  # the step-by-step path (QConv.forward_int)
    x = torch.randn(2, 3, 32, 32)
    old = torch.get_num_threads()
    torch.set_num_threads(nt)
    try:
        with torch.inference_mode():
            first, second, third = q(x), q(x), q(x)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(first, second) and torch.equal(second, third)
