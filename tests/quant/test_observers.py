"""Activation observers: the MSE observer's clipping range against min-max and percentile.

Quality is measured on the data itself: the mean squared error of fake-quantizing every
observed value with the observer's ``(scale, zero_point)``.
"""
from __future__ import annotations

import pytest
import torch

from mobilekernels.quant import MinMaxObserver, MSEObserver, PercentileObserver, quantize
from mobilekernels.quant.observers import fake_quantize, make_observer


def _observe(obs, v, chunks=4):
    for part in v.chunk(chunks):
        obs.update(part)
    return obs


def _qmse(obs, v):
    s, z = obs.qparams()
    return float(((fake_quantize(v, s, z) - v) ** 2).mean())


def _heavy(kind, n=200_000, seed=0):
    torch.manual_seed(seed)
    if kind == "laplace":
        return torch.distributions.Laplace(0.0, 1.0).sample((n,))
    if kind == "student_t":  # df 3: finite variance, rare values 50-100x the typical one
        return torch.distributions.StudentT(3.0).sample((n,))
    if kind == "relu_student_t":
        return torch.distributions.StudentT(3.0).sample((n,)).clamp_min(0)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["laplace", "student_t", "relu_student_t"])
def test_mse_range_beats_minmax_on_heavy_tails(kind):
    v = _heavy(kind)
    mm, mse = _observe(MinMaxObserver(), v), _observe(MSEObserver(), v)
    lo, hi = mse.range()
    assert mm.range()[0] <= lo <= 0.0 <= hi <= mm.range()[1]
    assert hi < mm.range()[1], "a heavy tail should be clipped"
    assert _qmse(mse, v) < 0.95 * _qmse(mm, v), (kind, _qmse(mse, v), _qmse(mm, v))
    if kind == "relu_student_t":
        assert lo == 0.0


def test_mse_not_worse_than_percentile_where_percentile_overclips():
    # a few large values that matter (0.05 % of the mass): 99.99 % clips them away
    torch.manual_seed(1)
    v = torch.cat([torch.rand(100_000), 50 + torch.rand(50)])
    pct, mse = _observe(PercentileObserver(99.9), v), _observe(MSEObserver(), v)
    assert _qmse(mse, v) < 0.5 * _qmse(pct, v)


def test_mse_keeps_the_full_range_of_uniform_data():
    torch.manual_seed(2)
    v = torch.rand(100_000) * 4 - 1
    lo, hi = _observe(MSEObserver(), v).range()
    assert lo == pytest.approx(-1.0, abs=0.02) and hi == pytest.approx(3.0, abs=0.03)


def test_mse_histogram_rebins_when_the_range_grows():
    # small values first, the outliers only in the last batch: the histogram must re-bin the old
    # counts, not drop them, and end up where one pass over everything ends up
    torch.manual_seed(3)
    small = torch.randn(3, 50_000) * 0.1
    tail = torch.tensor([-40.0, 40.0, 7.0])
    obs = MSEObserver()
    for b in small:
        obs.update(b)
    obs.update(tail)
    assert float(obs.hist.sum()) == 150_003
    once = _observe(MSEObserver(), torch.cat([small.reshape(-1), tail]), chunks=1)
    v = torch.cat([small.reshape(-1), tail])
    assert _qmse(obs, v) == pytest.approx(_qmse(once, v), rel=0.02)  # the objective is flat near its minimum
    assert abs(obs.range()[0] - once.range()[0]) < 1.0 and abs(obs.range()[1] - once.range()[1]) < 1.0
    assert _qmse(obs, v) < 0.9 * _qmse(_observe(MinMaxObserver(), v), v)


def test_mse_degenerate_inputs():
    obs = _observe(MSEObserver(), torch.zeros(1000))
    assert obs.range() == (0.0, 0.0)
    s, z = obs.qparams()
    assert s > 0 and z == 0
    neg = _observe(MSEObserver(), -torch.rand(10_000) - 0.5)
    lo, hi = neg.range()
    assert hi == 0.0 and -1.6 < lo < -1.3
    with pytest.raises(RuntimeError, match="no data"):
        MSEObserver().range()
    assert isinstance(make_observer("mse"), MSEObserver)


def test_quantize_with_mse_observer_matches_its_reference():
    from mobilekernels.models import get_model

    torch.manual_seed(0)
    m = get_model("mobilenet_v2", num_classes=10, width_mult=0.35).eval()
    g = torch.Generator().manual_seed(1)
    calib = [torch.randn(4, 3, 32, 32, generator=g) for _ in range(3)]
    q = quantize(m, calib, observer="mse", progress=False)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    step = float(q.steps[-1].out_scale)
    assert ((q(x) - q.reference(x)).abs() / step).max() <= 4.0 + 1e-3
    mm = quantize(m, calib, observer="minmax", progress=False)
    # clipping: at least one activation gets a finer step than min-max gives it
    assert any(float(a.out_scale) < float(b.out_scale) * 0.99
               for a, b in zip(q.modules(), mm.modules()) if hasattr(a, "out_scale") and hasattr(b, "out_scale"))
