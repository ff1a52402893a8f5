"""Non-temporal output stores of the fp32 depthwise op (``mk.set_nontemporal_stores``): the same
bits as normal stores on every fp32 ISA level, shape and thread count, on module calls, the
functional op and ``out=`` (aligned or not), and the mode switch itself."""
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import mobilekernels as mk

# (N, C, H, W, k, stride): 3x3 s1/s2 (two-row blocks, sweeps, channel groups), 5x5, 7x7, odd
# sizes, batch 2; channels multiples of 16 (streamable) and not (never streamed).
SHAPES = [(1, 16, 13, 11, 3, 1), (1, 32, 17, 9, 3, 2), (2, 48, 9, 14, 3, 1), (1, 96, 14, 14, 3, 1),
          (1, 64, 12, 10, 5, 1), (1, 32, 15, 13, 5, 2), (2, 16, 11, 8, 7, 1), (1, 40, 10, 9, 3, 1),
          (1, 32, 56, 56, 3, 1)]


def _layer(c, k, s):
    torch.manual_seed(c * 31 + k)
    m = mk.nn.DepthwiseConv2d(c, c, k, s, k // 2, activation="relu6").eval()
    return m


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n,c,h,w,k,s", SHAPES)
def test_streamed_output_is_bit_identical(f32_isa, n, c, h, w, k, s, threads):
    m = _layer(c, k, s)
    x = torch.randn(n, c, h, w).contiguous(memory_format=torch.channels_last)
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            with mk.use_nontemporal_stores("never"):
                normal = m(x)
            with mk.use_nontemporal_stores("always"):
                streamed = m(x)
                functional = mk.ops.dwconv2d(x, m.weight, m.bias, s, k // 2, activation="relu6")
    finally:
        torch.set_num_threads(prev)
    assert torch.equal(normal, streamed)
    assert torch.equal(normal, functional)
    ref = F.conv2d(x.double(), m.weight.double(), m.bias.double(), s, k // 2, 1, c).clamp(0, 6)
    torch.testing.assert_close(streamed.double(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("offset", [0, 1, 4, 16])
def test_out_at_any_alignment(f32_isa, offset):
    # out= in storage that starts `offset` floats into a 64-byte aligned block: only an aligned
    # output may be streamed; the others fall back to normal stores (a misaligned streaming store
    # would fault), and all four give the same bits.
    c, h = 32, 20
    m = _layer(c, 3, 1)
    x = torch.randn(1, c, h, h).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        with mk.use_nontemporal_stores("never"):
            want = m(x)
        storage = torch.empty(want.numel() + 64)
        out = storage[offset:offset + want.numel()].view(1, h, h, c).permute(0, 3, 1, 2)
        assert out.is_contiguous(memory_format=torch.channels_last)
        with mk.use_nontemporal_stores("always"):
            got = mk.ops.dwconv2d(x, m.weight, m.bias, 1, 1, activation="relu6", out=out)
    assert got.data_ptr() == out.data_ptr()
    assert torch.equal(got, want)


def test_mode_switch():
    assert mk.get_nontemporal_stores() == "auto"
    with mk.use_nontemporal_stores("always") as mode:
        assert mode == "always" and mk.get_nontemporal_stores() == "always"
        with mk.use_nontemporal_stores("never"):
            assert mk.get_nontemporal_stores() == "never"
        assert mk.get_nontemporal_stores() == "always"
    assert mk.get_nontemporal_stores() == "auto"
    for bad in ("sometimes", "", None, 1):
        with pytest.raises(ValueError, match="nontemporal"):
            mk.set_nontemporal_stores(bad)
    assert mk.get_nontemporal_stores() == "auto"


@pytest.mark.parametrize("value,want", [("never", "never"), ("always", "always"), ("auto", "auto")])
def test_environment_variable(value, want):
    env = dict(os.environ, MOBILEKERNELS_NT_STORES=value)
    got = subprocess.run([sys.executable, "-c", "import mobilekernels as mk; print(mk.get_nontemporal_stores())"],
                         env=env, capture_output=True, text=True, check=True).stdout.split()[-1]
    assert got == want


def test_bad_environment_variable_is_a_clear_error():
    env = dict(os.environ, MOBILEKERNELS_NT_STORES="fast")
    r = subprocess.run([sys.executable, "-c", "import mobilekernels"], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "MOBILEKERNELS_NT_STORES" in r.stderr
