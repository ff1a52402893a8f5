"""Which ISA path runs: chosen once at import (best supported, or ``MOBILEKERNELS_ISA``),
logged, and overridable with :func:`set_isa` / :func:`use_isa`."""
from __future__ import annotations

import contextlib
import logging
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


def _init() -> str:
    try:
        isa = _C.get_isa()
    except ValueError as e:  # bad MOBILEKERNELS_ISA: say so at import, clearly
        raise ValueError(f"MOBILEKERNELS_ISA: {e}") from None
    log.info("mobilekernels: dispatch level %s (cpu: %s)", isa, _C.cpu_features())
    return isa


_init()
