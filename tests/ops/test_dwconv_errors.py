"""Bad input to the fp32 depthwise op: a clear Python exception, never a crash."""
from __future__ import annotations

import pytest
import torch

import mobilekernels as mk

X = torch.randn(1, 4, 8, 8)
W = torch.randn(4, 1, 3, 3)


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(x=X.double()), TypeError, "x must be torch.float32"),
    (dict(x=X.to(torch.int32)), TypeError, "x must be torch.float32"),
    (dict(x=torch.randn(4, 8, 8)), ValueError, "4-D"),
    (dict(x=torch.empty(1, 4, 8, 8, device="meta")), ValueError, "CPU"),
    (dict(weight=W.double()), TypeError, "weight must be torch.float32"),
    (dict(weight=torch.randn(4, 2, 3, 3)), ValueError, "in_channels / groups must be 1"),
    (dict(weight=torch.randn(6, 1, 3, 3)), ValueError, "not a positive multiple of the 4 input channels"),
    (dict(weight=torch.randn(4, 3, 3)), ValueError, "4-D"),
    (dict(bias=torch.randn(5)), ValueError, "bias has 5 elements"),
    (dict(bias=torch.randn(4, 1)), ValueError, "1-D"),
    (dict(padding=-1), ValueError, ">= 0"),
    (dict(padding=5), ValueError, "larger than the dilated kernel extent"),
    (dict(padding="full"), ValueError, "'same' or 'valid'"),
    (dict(padding="same", stride=2), ValueError, "not supported for strided"),
    (dict(stride=0), ValueError, "stride must be >= 1"),
    (dict(dilation=(1, 0)), ValueError, "dilation must be >= 1"),
    (dict(activation="gelu"), ValueError, "activation must be one of"),
    (dict(x=torch.randn(1, 4, 2, 2), padding=0), ValueError, "larger than the padded input"),
    (dict(x=torch.randn(1, 4, 8, 1), weight=torch.randn(4, 1, 1, 3), padding=0), ValueError, "larger than the padded input"),
    (dict(x=torch.randn(1, 0, 8, 8), weight=torch.randn(4, 1, 3, 3)), ValueError, "zero-size"),
    (dict(x=torch.randn(1, 4, 0, 8)), ValueError, "zero-size"),
    (dict(weight=torch.randn(0, 1, 3, 3)), ValueError, "zero output channels"),
    (dict(stride=1.5), ValueError, "int or a pair"),
])
def test_bad_input(kwargs, exc, msg):
    args = dict(x=X, weight=W, bias=None, stride=1, padding=1, dilation=1, activation="none")
    args.update(kwargs)
    with pytest.raises(exc, match=msg):
        mk.ops.dwconv2d(**args)


def test_raw_op_validates_too():
    # Direct torch.ops calls bypass the typed wrapper: the op itself validates.
    with pytest.raises(ValueError, match="padding must be four ints >= 0"):
        torch.ops.mobilekernels.dwconv2d(X, W, None, [1, 1], [-1, 0, 0, 0], [1, 1], "none")
    with pytest.raises(ValueError, match="stride"):
        torch.ops.mobilekernels.dwconv2d(X, W, None, [0, 1], [1, 1, 1, 1], [1, 1], "none")


def test_foreign_pack_rejected():
    packed = mk.ops.dwconv2d_pack(torch.randn(8, 1, 3, 3))
    with pytest.raises(ValueError, match="packed for another shape"):
        mk.ops.dwconv2d_packed(X, packed, 4, 3, 1, 1)
    with pytest.raises(ValueError, match="not a mobilekernels depthwise weight pack"):
        mk.ops.dwconv2d_packed(X, torch.zeros_like(packed), 8, 3, 1, 1)
    with pytest.raises(ValueError, match="packed for another shape"):
        mk.ops.dwconv2d_packed(X, mk.ops.dwconv2d_pack(torch.randn(4, 1, 5, 5)), 4, 3, 1, 1)
    with pytest.raises(TypeError, match="packed must be torch.float32"):
        mk.ops.dwconv2d_packed(X, packed.double(), 8, 3, 1, 1)


def test_set_isa_errors():
    with pytest.raises(ValueError, match="unknown ISA"):
        mk.set_isa("sse9")
    unsupported = [lv for lv in mk._C.compiled_isas() if lv not in mk._C.supported_isas()]
    for lv in unsupported:
        with pytest.raises(ValueError, match="not supported"):
            mk.set_isa(lv)


def test_bad_env_isa_is_a_clear_import_error():
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", "import mobilekernels"], env={**os.environ, "MOBILEKERNELS_ISA": "bogus"},
                       capture_output=True, text=True)
    assert r.returncode != 0 and "MOBILEKERNELS_ISA" in r.stderr and "unknown ISA 'bogus'" in r.stderr
