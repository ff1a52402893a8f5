"""The uint8 lookup-table activations of mobilekernels.quant outside fused blocks run on our
table kernel (_C.q8_lut) in eager mode: equal to ``lut[q]`` on every ISA, odd sizes, [N, C, 1, 1]
gates, in place only when asked; other layouts fall back to index_select."""
from __future__ import annotations

import pytest
import torch

from mobilekernels.quant.modules import _apply_lut


@pytest.mark.parametrize("shape", [(1, 16, 112, 112), (3, 5, 7, 9), (2, 33, 1, 1), (1, 1, 1, 1), (0, 4, 3, 3),
                                   (1, 3, 1, 31)])
def test_apply_lut_equals_indexing(isa, shape):
    g = torch.Generator().manual_seed(sum(shape))
    lut = torch.randint(0, 256, (256,), generator=g, dtype=torch.uint8)
    q = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    want = lut[q.long()]
    keep = q.clone()
    got = _apply_lut(lut, q)
    assert torch.equal(got, want) and torch.equal(q, keep)  # not in place unless asked
    assert got.is_contiguous(memory_format=torch.channels_last)
    got2 = _apply_lut(lut, q, inplace=True)
    assert torch.equal(got2, want) and got2.data_ptr() == q.data_ptr()


def test_apply_lut_other_layouts_fall_back():
    g = torch.Generator().manual_seed(1)
    lut = torch.randint(0, 256, (256,), generator=g, dtype=torch.uint8)
    q = torch.randint(0, 256, (2, 6, 5, 4), generator=g, dtype=torch.uint8)  # NCHW-contiguous
    assert torch.equal(_apply_lut(lut, q), lut[q.long()])
    qs = q.contiguous(memory_format=torch.channels_last)[:, :, ::2]  # strided
    assert torch.equal(_apply_lut(lut, qs), lut[qs.long()])
