"""The uint8 glue of the replayed int8 network (ops/q8_codec_op.h) on the shapes its SIMD paths and
threads take (kernels/q8-stem: input quantization rows and im2col rows per ISA; pooling sums in
16-channel blocks flushed every 256 pixels; passes over 64 KB split between threads), each ISA
forced, 1 and 2 threads: bit-exact to the torch expressions of the step-by-step path."""
from __future__ import annotations

import pytest
import torch

import mobilekernels as mk
from mobilekernels import _C
from mobilekernels.quant.modules import QAvgPool, QConv, _mul_gate
from mobilekernels.quant.observers import quantize_tensor

_STEM_LEVELS = [lv for lv in ("scalar", "avx2", "neon") if lv in _C.compiled_isas()]


@pytest.fixture(params=[pytest.param(lv, id=lv, marks=pytest.mark.skipif(lv not in _C.supported_isas(),
                                                                         reason=f"this CPU lacks {lv}"))
                        for lv in _STEM_LEVELS])
def stem_isa(request):
    """The stem kernels' levels (kernels/q8-stem: scalar, avx2, neon), each forced in turn."""
    with mk.use_isa(request.param):
        yield request.param


def _ptr(t):
    return t.data_ptr()


@pytest.mark.parametrize("n,c,h,w", [(1, 3, 224, 224), (3, 3, 17, 29), (1, 3, 5, 7), (2, 1, 64, 130), (1, 4, 9, 16),
                                     (2, 5, 40, 131), (1, 3, 1, 1)])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "row_strided"])
@pytest.mark.parametrize("threads", [1, 2])
def test_quantize_input(n, c, h, w, layout, threads, stem_isa):
    g = torch.Generator().manual_seed(n * 1000 + c * 100 + w)
    scale, zp = 0.0173, 121
    x = torch.randn(n, c, h, w, generator=g) * 1.5
    flat = x.view(-1)
    k = min(64, flat.numel())
    flat[:k] = (torch.arange(k) - 32 + 0.5)[:k] * scale  # exact ties of x / scale
    if flat.numel() > 80:
        flat[70:76] = torch.tensor([float("nan"), 1e30, -1e30, -0.0, 255.5 * scale, -121.5 * scale])
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "row_strided":  # rows and channels apart, W contiguous
        x = torch.cat([x, x], 2)[:, :, ::2]
    ref = quantize_tensor(x.contiguous(memory_format=torch.channels_last), scale, zp)
    ref = torch.where(torch.isnan(x), torch.zeros_like(ref), ref)  # ours: NaN -> 0 (torch: unspecified)
    out = torch.full(x.shape, 7, dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    _C.q8_quantize_f32(_ptr(x), *x.shape, *x.stride(), scale, zp, _ptr(out), threads)
    assert torch.equal(out, ref)


@pytest.mark.parametrize("shape,k,stride,pads,dil", [
    ((1, 3, 224, 224), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),   # the MobileNet stem
    ((3, 3, 33, 31), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),     # odd sizes, batch 3
    ((1, 3, 20, 20), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),     # stride 1
    ((2, 2, 15, 19), (3, 3), (2, 1), (0, 2, 1, 0), (2, 1)),     # K = 18, row dilation, uneven padding
    ((1, 1, 30, 30), (5, 5), (2, 2), (2, 2, 2, 2), (1, 1)),     # K = 25
    ((1, 4, 12, 9), (2, 3), (1, 2), (1, 0, 2, 1), (1, 1)),      # K = 24, C = 4
    ((1, 3, 13, 11), (3, 3), (2, 2), (1, 1, 1, 1), (1, 2)),     # column dilation: scalar gather
    ((2, 5, 9, 7), (3, 2), (1, 2), (0, 2, 1, 0), (1, 1)),       # K = 30, kw * C = 10
    ((1, 8, 6, 6), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),       # K = 8: scalar gather
    ((1, 3, 3, 3), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),       # rows shorter than one 16-byte load
])
@pytest.mark.parametrize("threads", [1, 2])
def test_im2col(shape, k, stride, pads, dil, threads, stem_isa):
    g = torch.Generator().manual_seed(sum(shape) + k[0])
    q = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g).contiguous(memory_format=torch.channels_last)
    t, b, l, r = pads
    conv = QConv("c", "Conv2d", torch.randn(6, shape[1], *k), None, stride, (0, 0), dil)
    conv.pads = pads
    ref = conv._im2col(q, 93).contiguous(memory_format=torch.channels_last)
    n, c, h, w = shape
    out = torch.full(ref.shape, 7, dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    _C.q8_im2col(_ptr(q), n, h, w, c, *k, *stride, *dil, t, b, l, r, 93, _ptr(out), threads)
    assert torch.equal(out, ref)


@pytest.mark.parametrize("n,c,h,w", [(1, 120, 28, 28), (1, 960, 7, 7), (3, 17, 5, 3), (2, 72, 17, 17),
                                     (1, 40, 56, 56), (1, 33, 1, 1), (2, 200, 30, 30)])
@pytest.mark.parametrize("threads", [1, 2])
def test_global_avgpool(n, c, h, w, threads):
    g = torch.Generator().manual_seed(c + h)
    q = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g).contiguous(
        memory_format=torch.channels_last)
    q[0, 0] = 255  # a saturated channel (16-bit partial sums at their largest)
    q[-1, -1] = 7
    step = QAvgPool("pool")
    step.out_scale.fill_(0.0173)
    step.out_zp.fill_(11)
    for s, z in [(0.02, 128), (0.0173, 11), (0.5, 0)]:
        ref, ys, yz = step.forward_int(q, s, z)
        out = torch.empty(n, c, dtype=torch.uint8)
        _C.q8_global_avgpool(_ptr(q), n, h * w, c, s, z, ys, yz, _ptr(out), threads)
        assert torch.equal(out, ref.reshape(n, c))


@pytest.mark.parametrize("n,c,h,w", [(1, 120, 28, 28), (1, 672, 14, 14), (3, 17, 3, 5), (2, 4100, 2, 5)])
@pytest.mark.parametrize("threads", [1, 2])
def test_channel_gate(n, c, h, w, threads):
    g = torch.Generator().manual_seed(c)
    x = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g).contiguous(memory_format=torch.channels_last)
    gate = torch.randint(0, 256, (n, c, 1, 1), dtype=torch.uint8, generator=g).contiguous(
        memory_format=torch.channels_last)
    for s, z, gs, gz, ys, yz in [(0.02, 128, 1 / 255, 0, 0.03, 110), (0.1, 3, 0.004, 17, 0.07, 0)]:
        ref = _mul_gate(x, s, z, gate, gs, gz, ys, yz)
        out = torch.empty_like(x)
        _C.q8_mul_channel_gate(_ptr(x), n, h * w, c, s, z, _ptr(gate), gs, gz, ys, yz, _ptr(out), threads)
        assert torch.equal(out, ref)
