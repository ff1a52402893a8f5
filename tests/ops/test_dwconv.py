"""fp32 depthwise op against torch.nn.functional.conv2d in float64, every ISA path forced.

Tolerance (documented in docs/architecture.md): |ours - ref| <= 1e-5 * M elementwise, where
M = conv(|x|, |w|) + |b| in float64 is the magnitude of the terms summed: a relative bound on
the fp32 accumulation that holds whatever the cancellation, and that one wrong tap breaks.
"""
from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

import mobilekernels as mk

ACTS = ["none", "relu", "relu6", "hardswish"]


def reference(x, w, b, stride, padding, dilation, act):
    c = x.shape[1]
    pad = padding
    if isinstance(padding, tuple) and len(padding) == 4:  # (top, bottom, left, right)
        x = F.pad(x, (padding[2], padding[3], padding[0], padding[1]))
        pad = 0
    xd, wd = x.double(), w.double()
    bd = b.double() if b is not None else None
    y = F.conv2d(xd, wd, bd, stride, pad, dilation, c)
    mag = F.conv2d(xd.abs(), wd.abs(), bd.abs() if bd is not None else None, stride, pad, dilation, c)
    if act == "relu":
        y = y.relu()
    elif act == "relu6":
        y = y.clamp(0, 6)
    elif act == "hardswish":
        y = F.hardswish(y)
    return y, mag


def check(x, w, b, stride=1, padding=0, dilation=1, act="none"):
    y = mk.ops.dwconv2d(x, w, b, stride, padding, dilation, act)
    ref, mag = reference(x, w, b, stride, padding, dilation, act)
    assert y.shape == ref.shape
    assert y.dtype == torch.float32
    assert y.is_contiguous(memory_format=torch.channels_last)
    err = (y.double() - ref).abs()
    bound = 1e-5 * (mag + 1e-30) * (1.0 if act != "hardswish" else 2.5)  # hardswish scales by up to ~2.5
    bad = err > bound
    assert not bad.any(), f"max err {err.max().item():.3g} at {bad.nonzero()[0].tolist()} (bound {bound[bad][0].item():.3g})"
    return y


CHANNELS = [1, 3, 7, 8, 15, 16, 17, 31, 33, 100, 960]
SIZES = [(1, 1), (2, 3), (5, 5), (7, 9), (13, 6), (14, 14), (17, 17), (28, 31), (56, 56), (112, 112)]


def random_cases(seed: int, count: int):
    """A reproducible random walk over the grid: channels x sizes x kernel x stride x padding x
    dilation x batch x activation, keeping the total work bounded (wide channels get small maps)."""
    rng = random.Random(seed)
    cases = []
    while len(cases) < count:
        c = rng.choice(CHANNELS)
        h, w = rng.choice(SIZES)
        if c * h * w > 300_000:
            continue
        k = rng.choice([(3, 3), (5, 5), (7, 7), (3, 3), (1, 1), (3, 5), (2, 2)])
        s = rng.choice([1, 2, 1, 3, (1, 2)])
        d = rng.choice([1, 1, 1, 2, (2, 1)])
        dd = (d, d) if isinstance(d, int) else d
        ext = (dd[0] * (k[0] - 1), dd[1] * (k[1] - 1))
        pad = rng.choice(["half", 0, "same", "valid", "asym"])
        if pad == "half":
            pad = (ext[0] // 2, ext[1] // 2)
        elif pad == "same" and s != 1:
            pad = 0
        elif pad == "asym":
            pad = (rng.randint(0, ext[0]), rng.randint(0, ext[0]), rng.randint(0, ext[1]), rng.randint(0, ext[1]))
        ph = (pad[0] + pad[1]) if isinstance(pad, tuple) and len(pad) == 4 else (2 * pad[0] if isinstance(pad, tuple) else (ext[0] if pad == "same" else 0))
        pw = (pad[2] + pad[3]) if isinstance(pad, tuple) and len(pad) == 4 else (2 * pad[1] if isinstance(pad, tuple) else (ext[1] if pad == "same" else 0))
        if h + ph < ext[0] + 1 or w + pw < ext[1] + 1:
            continue
        cases.append((rng.choice([1, 1, 2, 3]), c, h, w, k, s, pad, d, rng.choice(ACTS), rng.random() < 0.8))
    return cases


@pytest.mark.parametrize("case", random_cases(1234, 60), ids=lambda c: "n%d_c%d_%dx%d_k%s_s%s_p%s_d%s_%s_b%d" % (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]))
def test_random_grid(f32_isa, case):
    n, c, h, w, k, s, pad, d, act, has_bias = case
    g = torch.Generator().manual_seed(hash(case) & 0xFFFF)
    x = torch.randn(n, c, h, w, generator=g)
    wt = torch.randn(c, 1, *k, generator=g)
    b = torch.randn(c, generator=g) if has_bias else None
    check(x, wt, b, s, pad, d, act)


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("act", ACTS)
def test_fast_paths_every_activation(f32_isa, k, s, act):
    torch.manual_seed(k * 10 + s)
    x = torch.randn(2, 17, 11, 12)
    check(x, torch.randn(17, 1, k, k), torch.randn(17), s, k // 2, 1, act)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("s", [1, 2])
def test_every_row_width(f32_isa, k, s):
    # Output widths 1..20 (W odd and even): the fixed paths cut rows into balanced blocks of
    # every width, with compile-time borders for 3-wide kernels at padding 1 and run-time
    # checked borders for the other paddings; 13 channels leave a vector tail.
    torch.manual_seed(k * 10 + s)
    wt, b = torch.randn(13, 1, k, k), torch.randn(13)
    for w in range(1, 21):
        for pad in (0, k // 2, k - 1):
            if w + 2 * pad < k:
                continue
            x = torch.randn(2, 13, 5, w)
            check(x, wt, b, s, pad, 1, ACTS[w % 4])


def test_stride2_row_sweep_widths(f32_isa):
    # 3x3 stride 2 at padding 1, output widths 12..34 (AVX2 sweeps rows of 16..32 outputs
    # channels outer), W odd (last output's third column is padding) and even; 13 channels
    # leave a vector tail; the top row reads padding (not swept), the others do not.
    torch.manual_seed(23)
    wt, b = torch.randn(13, 1, 3, 3), torch.randn(13)
    for w in range(23, 69):
        x = torch.randn(2, 13, 6, w)
        check(x, wt, b, 2, 1, 1, ACTS[w % 4])


@pytest.mark.parametrize("c,h,w,s", [(32, 112, 112, 1), (96, 112, 112, 2), (144, 56, 56, 1), (960, 7, 7, 1),
                                     (144, 56, 56, 2), (192, 28, 28, 2)])
def test_mobilenet_layers(f32_isa, c, h, w, s):
    torch.manual_seed(c)
    x = torch.randn(1, c, h, w).contiguous(memory_format=torch.channels_last)
    check(x, torch.randn(c, 1, 3, 3), torch.randn(c), s, 1, 1, "relu6")


@pytest.mark.parametrize("c,h,w,s", [(72, 56, 56, 2), (120, 28, 28, 1), (672, 14, 14, 2), (960, 7, 7, 1),
                                     (72, 28, 28, 2)])
def test_mobilenet_v3_5x5_layers(f32_isa, c, h, w, s):
    # MobileNetV3-Large's 5x5 layers, padding 2: two-row blocks on AVX2 / AVX-512 where a row
    # pair reads no padding row, compile-time border columns (0..2 on each side).
    torch.manual_seed(c + s)
    x = torch.randn(1, c, h, w).contiguous(memory_format=torch.channels_last)
    check(x, torch.randn(c, 1, 5, 5), torch.randn(c), s, 2, 1, "hardswish")


@pytest.mark.parametrize("m", [2, 3])
def test_depth_multiplier(f32_isa, m):
    torch.manual_seed(m)
    x = torch.randn(2, 5, 9, 8)
    check(x, torch.randn(5 * m, 1, 3, 3), torch.randn(5 * m), 1, 1, 1, "relu")
    check(x, torch.randn(5 * m, 1, 5, 3), None, 2, (2, 1), 1, "none")


def test_memory_formats_and_views(f32_isa):
    torch.manual_seed(0)
    w, b = torch.randn(16, 1, 3, 3), torch.randn(16)
    base = torch.randn(2, 16, 20, 20)
    for x in (base, base.contiguous(memory_format=torch.channels_last), base[:, :, 2:15, 3:19],
              base.permute(0, 1, 3, 2), base[::2]):
        check(x, w, b, 1, 1, 1, "none")


def test_channels_last_input_is_not_copied(monkeypatch):
    x = torch.randn(1, 8, 6, 6).contiguous(memory_format=torch.channels_last)
    seen = []
    from mobilekernels import _C, _ops

    real, real_run = _C.f32_dwconv, _C.F32DwconvCall.run

    def spy(inp, *a):
        seen.append(inp)
        return real(inp, *a)

    def spy_run(self, inp, *a):
        seen.append(inp)
        return real_run(self, inp, *a)

    monkeypatch.setattr(_ops._C, "f32_dwconv", spy)  # the registered op's CPU impl
    monkeypatch.setattr(_C.F32DwconvCall, "run", spy_run)  # the eager paths (functional, module)
    w = torch.randn(8, 1, 3, 3)
    mk.ops.dwconv2d(x, w, padding=1)
    torch.ops.mobilekernels.dwconv2d(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1], "none")
    with torch.no_grad():
        mk.nn.DepthwiseConv2d(8, 8, 3, padding=1)(x)
    assert seen == [x.data_ptr()] * 3


def test_empty_batch():
    y = mk.ops.dwconv2d(torch.randn(0, 4, 5, 5), torch.randn(4, 1, 3, 3), torch.randn(4), padding=1)
    assert y.shape == (0, 4, 5, 5)


def test_threads_agree():
    torch.manual_seed(0)
    x = torch.randn(1, 160, 7, 7)
    w, b = torch.randn(160, 1, 3, 3), torch.randn(160)
    prev = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1 = mk.ops.dwconv2d(x, w, b, 1, 1)
        torch.set_num_threads(2)
        y2 = mk.ops.dwconv2d(x, w, b, 1, 1)
    finally:
        torch.set_num_threads(prev)
    assert torch.equal(y1, y2)  # same kernel, same per-element order: bitwise equal


def test_packed_matches_unpacked(f32_isa):
    torch.manual_seed(1)
    x, w, b = torch.randn(2, 24, 9, 9), torch.randn(24, 1, 5, 5), torch.randn(24)
    packed = mk.ops.dwconv2d_pack(w, b)
    y1 = mk.ops.dwconv2d_packed(x, packed, 24, 5, 2, 2, 1, "hardswish")
    y2 = mk.ops.dwconv2d(x, w, b, 2, 2, 1, "hardswish")
    assert torch.equal(y1, y2)


def test_isa_switch_really_changes_kernel():
    # fp32 depthwise has its own kernel at scalar / avx2 / avx512 / neon; the int8-only levels
    # (avxvnni, avx512vnni, amx, neondot, neoni8mm) fall back to one of those.
    levels = [lv for lv in ("scalar", "avx2", "avx512", "neon") if lv in mk._C.supported_isas()]
    names = set()
    for lv in levels:
        with mk.use_isa(lv):
            names.add(mk.ops.dwconv2d_kernel_name((1, 32, 56, 56), (32, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1)))
    assert len(names) == len(levels), names
