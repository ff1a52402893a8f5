"""Shared pytest fixtures: every ISA path is forced in turn with ``mobilekernels.use_isa``."""
from __future__ import annotations

import pytest
import torch

import mobilekernels as mk
from mobilekernels import _C

# Levels whose kernels differ for the families we ship; each test that takes the `isa`
# fixture runs once per level. A level this CPU cannot execute is reported as skipped with
# the reason (AVX-512 on an AVX2-only machine); its code is still covered by the C++ tests on
# any machine that has it.
X86_LEVELS = ["scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "amx"]
ARM_LEVELS = ["scalar", "neon", "neondot", "neoni8mm"]
_compiled = set(_C.compiled_isas())
_supported = set(_C.supported_isas())
LEVELS = [lv for lv in (X86_LEVELS if "avx2" in _compiled else ARM_LEVELS) if lv in _compiled]


def isa_params(levels=None):
    return [pytest.param(lv, id=lv, marks=pytest.mark.skipif(lv not in _supported, reason=f"this CPU lacks {lv}"))
            for lv in (levels or LEVELS)]


# Levels at which the fp32 families have distinct kernels (others fall back to one of these).
F32_LEVELS = [lv for lv in ["scalar", "avx2", "avx512", "neon"] if lv in _compiled]


@pytest.fixture(params=isa_params(F32_LEVELS))
def f32_isa(request):
    """Run the test once per fp32 kernel level (scalar / avx2 / avx512 or scalar / neon)."""
    with mk.use_isa(request.param):
        yield request.param


@pytest.fixture(params=isa_params())
def isa(request):
    """Run the test with ISA level `request.param` forced, then restore."""
    with mk.use_isa(request.param):
        yield request.param


@pytest.fixture
def single_thread():
    """One intra-op thread: deterministic results and no slowdown on a shared 2-core box
    (folders of whole-model tests make it autouse in their own conftest.py)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
