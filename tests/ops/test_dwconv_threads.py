"""fp32 depthwise at 1, 2 and 3 threads against a float64 reference, per ISA: the op splits
rows into runs, about 4 per thread, that divide among the threads (or runs times two channel
halves when none do; the kernels pair rows within a run into two-row blocks, so runs of odd
length end in a one-row block); calls of fewer than 4 rows per thread with enough channels
split channels only, two chunks per thread over all rows; other calls with few rows take 1-row
items times channel chunks. Results must not depend on the thread count: every element is summed in the
same order."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mobilekernels as mk

SHAPES = [
    # (N, C, H, W, stride)
    (1, 32, 15, 15, 1),
    (1, 32, 15, 15, 2),
    (2, 40, 14, 14, 1),
    (3, 24, 7, 9, 2),
    (1, 120, 7, 7, 1),   # few rows: channel chunks over all rows (4 of 32, the last 24)
    (1, 200, 7, 7, 1),   # 7 rows: channel chunks over all rows, tail chunk of 8 (3 threads: 48s)
    (1, 200, 14, 14, 1),  # 14 rows: runs of rows at 2 and 3 threads
    (2, 70, 7, 7, 2),    # 8 rows over two images: chunks of 32, tail of 6
    (1, 96, 14, 14, 2),  # 7 rows, chunks of 32 (3 threads: 32)
    (2, 21, 3, 5, 1),    # few rows over two images, channel tail
    (1, 16, 1, 6, 2),
    (1, 24, 28, 28, 2),
    (1, 48, 28, 28, 1),  # 7 runs of 4 rows would split 4:3 at 2 threads: runs of 3 (and halves at 3)
    (1, 40, 14, 14, 1),  # 7 runs of 2 rows: two channel chunks (32 + 8) instead
    (2, 37, 13, 61, 2),  # 3x3 s2 row sweeps (AVX2: 16..32 outputs): odd W, channel tail
    (1, 24, 9, 56, 1),   # 3x3 s1 row sweeps (AVX2: 48..64 outputs): odd row count
    (2, 19, 6, 49, 1),   # 3x3 s1 row sweeps at the narrow end, channel tail
]


# 5x5 padding 2 (AVX2 / AVX-512 pair rows reading no padding row; their border columns and the
# one-row blocks' skip the same taps): MobileNetV3-Large's layers with fewer channels, odd sizes.
SHAPES_5X5 = [
    (1, 72, 28, 28, 2),
    (1, 40, 28, 28, 1),
    (1, 96, 14, 14, 2),
    (1, 120, 7, 7, 1),
    (2, 37, 11, 13, 1),
    (2, 21, 9, 8, 2),
]


def _threads_agree_with_reference(shape, k):
    n, c, h, w, s = shape
    g = torch.Generator().manual_seed(n * 1000 + c * 10 + h + s)
    x = torch.randn(n, c, h, w, generator=g)
    wt, b = torch.randn(c, 1, k, k, generator=g), torch.randn(c, generator=g)
    ref = F.conv2d(x.double(), wt.double(), b.double(), s, k // 2, 1, c).clamp(0, 6).float()
    prev = torch.get_num_threads()
    outs = []
    try:
        for nt in (1, 2, 3):
            torch.set_num_threads(nt)
            outs.append(mk.ops.dwconv2d(x, wt, b, s, k // 2, 1, "relu6"))
    finally:
        torch.set_num_threads(prev)
    torch.testing.assert_close(outs[0], ref, rtol=1e-5, atol=1e-5)
    for y in outs[1:]:
        assert torch.equal(y, outs[0])


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_dwconv_threads_match_reference(f32_isa, shape):
    _threads_agree_with_reference(shape, 3)


@pytest.mark.parametrize("shape", SHAPES_5X5, ids=lambda s: "x".join(map(str, s)))
def test_dwconv_5x5_threads_match_reference(f32_isa, shape):
    _threads_agree_with_reference(shape, 5)
