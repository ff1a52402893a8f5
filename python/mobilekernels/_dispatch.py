"""Which ISA path runs: chosen once at import (best supported, or ``MOBILEKERNELS_ISA``),
logged, and overridable with :func:`set_isa` / :func:`use_isa`."""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

from . import _C

log = logging.getLogger("mobilekernels")


def get_isa() -> str:
    """Name of the active ISA level (e.g. ``"avx2"``)."""
    return _C.get_isa()


def set_isa(name: str) -> None:
    """Force an ISA level for every kernel: ``scalar | avx2 | avxvnni | avx512 | avx512vnni |
    amx | neon | neondot | neoni8mm | auto``. A family without a kernel at that level falls back
    along its chain (e.g. ``avx512vnni`` runs the fp32 depthwise on ``avx512``).

    Raises ``ValueError`` for an unknown name or a level this CPU or build cannot run.
    """
    if not isinstance(name, str):
        raise TypeError(f"set_isa expects a string, got {type(name).__name__}")
    _C.set_isa(name)
    log.info("mobilekernels: ISA forced to %s", _C.get_isa())


@contextlib.contextmanager
def use_isa(name: str) -> Iterator[str]:
    """Context manager: run the block on ISA ``name``, then restore the previous level."""
    previous = get_isa()
    set_isa(name)
    try:
        yield get_isa()
    finally:
        _C.set_isa(previous)


_NT_MODES = ("auto", "always", "never")


def get_nontemporal_stores() -> str:
    """Store policy of the fp32 depthwise op's output: ``auto | always | never``."""
    return _C.get_nontemporal_stores()


def set_nontemporal_stores(mode: str) -> None:
    """How the fp32 depthwise op writes its output. ``auto`` (default): with non-temporal
    (cache-bypassing) stores when one thread's share of the layer's input + output exceeds the
    L2 cache, where normal stores would evict input the next rows read; ``always`` / ``never``
    force one kind (tests, A/B benchmarks). Results are identical either way. Also set by the
    environment variable ``MOBILEKERNELS_NT_STORES`` at import."""
    if not isinstance(mode, str) or mode not in _NT_MODES:
        raise ValueError(f"nontemporal stores: expected one of {_NT_MODES}, got {mode!r}")
    _C.set_nontemporal_stores(mode)


@contextlib.contextmanager
def use_nontemporal_stores(mode: str) -> Iterator[str]:
    """Context manager: :func:`set_nontemporal_stores` for the block, then restore."""
    previous = get_nontemporal_stores()
    set_nontemporal_stores(mode)
    try:
        yield mode
    finally:
        _C.set_nontemporal_stores(previous)


def _init() -> str:
    nt = os.environ.get("MOBILEKERNELS_NT_STORES")
    if nt:
        try:
            set_nontemporal_stores(nt)
        except ValueError as e:
            raise ValueError(f"MOBILEKERNELS_NT_STORES: {e}") from None
    try:
        isa = _C.get_isa()
    except ValueError as e:  # bad MOBILEKERNELS_ISA: say so at import, clearly
        raise ValueError(f"MOBILEKERNELS_ISA: {e}") from None
    log.info("mobilekernels: dispatch level %s (cpu: %s)", isa, _C.cpu_features())
    return isa


_init()
