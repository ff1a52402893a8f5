"""The benchmarks' core check: _C.core_probe's contract and the "shared core" verdict."""
import math
import time

import pytest

import mobilekernels as mk
from mobilekernels import _timing


@pytest.mark.parametrize("threads", [1, 2])
def test_core_probe_reports_every_thread(threads):
    t0 = time.perf_counter()
    got = mk._C.core_probe(threads, 0.05)
    dt = time.perf_counter() - t0
    assert len(got) == threads
    assert all(math.isfinite(v) and v > 0.05 for v in got)  # even the plain-float loop does more
    assert dt >= 0.02  # it ran its loop (about 0.05 s), not returned at once


@pytest.mark.parametrize("args", [(0, 0.1), (-1, 0.1), (2000, 0.1), (1, 0.0), (1, -1.0), (1, 11.0),
                                  (1, float("nan"))])
def test_core_probe_bad_arguments(args):
    with pytest.raises(ValueError):
        mk._C.core_probe(*args)


@pytest.mark.parametrize("alone, together, shared", [(100.0, [99.0, 101.0], False), (100.0, [100.0, 52.0], True),
                                                     (100.0, [86.0], False), (100.0, [84.0, 100.0], True)])
def test_core_check_verdict(monkeypatch, alone, together, shared):
    calls = []

    def fake(threads, seconds):
        calls.append(threads)
        return [alone] if len(calls) == 1 else together[:threads]

    monkeypatch.setattr(mk._C, "core_probe", fake)
    monkeypatch.setattr("os.cpu_count", lambda: len(together))
    check = _timing.core_check(0.01)
    assert check == {"alone": alone, "together": together, "shared": shared}
    assert calls == [1, len(together)]
    line = _timing.core_check_line(check)
    assert ("unreliable" in line) == shared
    assert "/".join(f"{v:.0f}" for v in together) in line
