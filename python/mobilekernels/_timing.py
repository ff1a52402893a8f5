"""Interleaved timing with median/min/max, shared by the package's benchmark and bench/."""
from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence


def _calls_per_sample(fn: Callable[[], object], target_s: float) -> int:
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= target_s / 4 or n >= 1 << 16:
            return max(1, int(n * target_s / max(dt, 1e-9)))
        n *= 2


def compare(fns: Sequence[Callable[[], object]], samples: int = 11, sample_s: float = 0.02) -> list[dict]:
    """Time several functions interleaved (sample i of every fn, then sample i+1...), so slow
    drifts of a shared noisy machine hit them alike. Returns per-fn {median, min, max} seconds
    per call."""
    for fn in fns:  # warm-up (packs, caches, thread pools)
        fn()
    reps = [_calls_per_sample(fn, sample_s) for fn in fns]
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(samples):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(reps[i]):
                fn()
            times[i].append((time.perf_counter() - t0) / reps[i])
    return [{"median": statistics.median(t), "min": min(t), "max": max(t)} for t in times]


def core_check(seconds: float = 0.2) -> dict:
    """FMA throughput of one thread alone, then of every core at once (``_C.core_probe``).

    On a shared VM the SMT sibling of a vCPU can be busy with someone else's work: that vCPU
    then gets about half its FMA throughput, which neither the load average nor steal time
    shows, and multi-thread timings taken meanwhile mean little. ``shared`` is True when some
    core ran below 85% of the one-thread rate while all ran at once."""
    import os

    from . import _C

    alone = _C.core_probe(1, seconds)[0]
    together = _C.core_probe(os.cpu_count() or 1, seconds)
    return {"alone": alone, "together": together, "shared": min(together) < 0.85 * alone}


def core_check_line(check: dict) -> str:
    per_core = "/".join(f"{v:.0f}" for v in check["together"])
    flag = " - some core was shared: multi-thread figures unreliable" if check["shared"] else ""
    return f"FMA GFLOP/s: one thread {check['alone']:.0f}, every core at once {per_core}{flag}"
