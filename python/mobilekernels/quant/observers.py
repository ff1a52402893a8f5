"""Activation observers (per tensor, uint8 asymmetric) and per-channel symmetric int8 weights.

* :class:`MinMaxObserver`: running min / max over every calibration batch.
* :class:`PercentileObserver`: the ``percentile`` / ``100 - percentile`` quantiles of a bounded,
  seeded random sample of the observed values (at most ``max_samples`` per batch and
  ``max_total`` kept in all), which clips rare outliers.
* :class:`MSEObserver`: a histogram of every observed value (2048 bins over the running range,
  re-binned when the range grows); the range is the clipping ``(lo, hi)`` that minimises the
  expected squared quantization error of that histogram: values inside the range cost the
  rounding noise ``scale**2 / 12``, values outside cost their squared distance to the clipped
  end (rounding error computed per bin when a step is wider than a bin). Searched over bin edges
  (lo <= 0 <= hi) by coordinate descent, first on every 8th edge, then on every edge near it.

All always include 0 in the range (so real zero is exact, zero padding is exact) and turn
``(lo, hi)`` into ``scale = (hi - lo) / 255``, ``zero_point = round(-lo / scale)``.
"""
from __future__ import annotations

import math

import torch

OBSERVERS = ("minmax", "percentile", "mse")
_MIN_SCALE = 1e-8


def qparams_from_range(lo: float, hi: float) -> tuple[float, int]:
    """uint8 ``(scale, zero_point)`` covering ``[min(lo, 0), max(hi, 0)]``."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"observed a non-finite activation range [{lo}, {hi}]")
    if hi == lo:  # only zeros seen (e.g. a dead ReLU): any scale is exact; 1.0 keeps the next bias in int32
        return 1.0, 0
    scale = max((hi - lo) / 255.0, _MIN_SCALE)
    zp = int(min(255, max(0, round(-lo / scale))))
    return scale, zp


class MinMaxObserver:
    """Running min / max."""

    def __init__(self) -> None:
        self.lo, self.hi, self.count = math.inf, -math.inf, 0

    def update(self, x: torch.Tensor) -> None:
        x = x.detach()
        if x.numel():
            lo, hi = torch.aminmax(x.float())
            self.lo, self.hi = min(self.lo, float(lo)), max(self.hi, float(hi))
            self.count += 1

    def range(self) -> tuple[float, float]:
        if not self.count:
            raise RuntimeError("observer saw no data")
        return self.lo, self.hi

    def qparams(self) -> tuple[float, int]:
        return qparams_from_range(*self.range())


class PercentileObserver(MinMaxObserver):
    """Quantiles ``(100 - p, p)`` of a random sample of the observed values."""

    def __init__(self, percentile: float = 99.99, max_samples: int = 1 << 15, max_total: int = 1 << 18,
                 seed: int = 0) -> None:
        super().__init__()
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {percentile}")
        self.percentile, self.max_samples, self.max_total = percentile, max_samples, max_total
        self.samples: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def update(self, x: torch.Tensor) -> None:
        super().update(x)
        v = x.detach().float().reshape(-1)
        if v.numel() > self.max_samples:
            v = v[torch.randint(0, v.numel(), (self.max_samples,), generator=self.generator)]
        self.samples.append(v.clone())
        total = sum(s.numel() for s in self.samples)
        if total > self.max_total:  # keep a uniform subsample of everything so far
            allv = torch.cat(self.samples)
            self.samples = [allv[torch.randperm(allv.numel(), generator=self.generator)[: self.max_total // 2]]]

    def range(self) -> tuple[float, float]:
        super().range()
        v = torch.cat(self.samples)
        q = torch.tensor([1.0 - self.percentile / 100.0, self.percentile / 100.0])
        lo, hi = torch.quantile(v, q).tolist()
        return lo, hi


class MSEObserver(MinMaxObserver):
    """Clipping range minimising the quantization MSE of a histogram of the observed values."""

    def __init__(self, bins: int = 2048, levels: int = 256) -> None:
        super().__init__()
        if bins < 16:
            raise ValueError(f"bins must be >= 16, got {bins}")
        self.bins, self.levels = bins, levels
        self.hist = torch.zeros(bins, dtype=torch.float64)
        self.edges_lo, self.edges_hi = 0.0, 0.0  # histogram span, always contains 0

    def _edges(self) -> torch.Tensor:
        return torch.linspace(self.edges_lo, self.edges_hi, self.bins + 1, dtype=torch.float64)

    def update(self, x: torch.Tensor) -> None:
        super().update(x)
        v = x.detach().float().reshape(-1)
        if not v.numel():
            return
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)
        if lo < self.edges_lo or hi > self.edges_hi:
            if hi == lo:  # all zeros so far: any span holds them
                hi = 1e-8
            old_edges, old = self._edges(), self.hist
            self.edges_lo, self.edges_hi = lo, hi
            self.hist = torch.zeros(self.bins, dtype=torch.float64)
            if old.sum() > 0:  # move the old counts to the new bins by their centres
                centres = (old_edges[:-1] + old_edges[1:]) / 2
                self.hist += torch.histogram(centres, self._edges(), weight=old).hist
        lo, hi = self.edges_lo, self.edges_hi  # histc: float32, ~5x faster than torch.histogram here
        self.hist += torch.histc(v.clamp(lo, hi), self.bins, lo, hi).double()

    def _errors(self, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """Expected squared error of the histogram for each candidate range ``(lo[k], hi[k])``,
        quantized exactly as :func:`qparams_from_range` does (the zero point is rounded, so the
        representable span ``[qlo, qhi]`` is shifted by less than a step). A bin's values are
        taken as uniform over the bin: outside the span they cost the squared distance of the
        bin centre to the span's end, inside it ``scale**2 / 12`` when the bin is wider than a
        step, else the rounding error of the bin centre plus the bin's own variance (so a step
        much wider than the data, which rounds most values to 0, is charged what it loses)."""
        e = self._edges()
        c = ((e[:-1] + e[1:]) / 2)[None, :]
        w2 = float(e[1] - e[0]) ** 2
        steps = self.levels - 1
        scale = ((hi - lo) / steps).clamp_min(_MIN_SCALE)[:, None]
        zp = torch.round(-lo[:, None] / scale).clamp(0, steps)
        qlo, qhi = -zp * scale, (steps - zp) * scale
        rounded = torch.clamp(torch.round(c / scale) + zp, 0, steps) - zp
        inside = torch.where(scale * scale <= w2, scale * scale / 12, (c - rounded * scale) ** 2 + w2 / 12)
        err = torch.where(c < qlo, (c - qlo) ** 2, torch.where(c > qhi, (c - qhi) ** 2, inside))
        return err @ self.hist

    def _best(self, neg: torch.Tensor, pos: torch.Tensor, lo: float, hi: float) -> tuple[float, float]:
        """Coordinate descent over the candidate ends: best hi for the current lo, then best lo
        for that hi, until neither moves."""
        for _ in range(8):
            new_hi = float(pos[self._errors(torch.full_like(pos, lo), pos).argmin()])
            new_lo = float(neg[self._errors(neg, torch.full_like(neg, new_hi)).argmin()])
            if (new_lo, new_hi) == (lo, hi):
                break
            lo, hi = new_lo, new_hi
        return lo, hi

    def range(self) -> tuple[float, float]:
        super().range()
        if self.edges_hi <= self.edges_lo or self.hist.sum() == 0:
            return self.lo, self.hi
        e = self._edges()
        neg, pos = e[e <= 0], e[e >= 0]  # candidate ends: bin edges on each side of 0
        stride = max(1, self.bins // 256)  # coarse pass on every stride-th edge, then every edge near it
        lo, hi = self._best(neg.flip(0)[::stride].flip(0), pos[::stride], float(neg[0]), float(pos[-1]))
        near = lambda v, ends: ends[(ends - v).abs() <= stride * float(e[1] - e[0]) * 1.001]  # noqa: E731
        return self._best(near(lo, neg), near(hi, pos), lo, hi)


def make_observer(name: str, percentile: float = 99.99):
    if name == "minmax":
        return MinMaxObserver()
    if name == "percentile":
        return PercentileObserver(percentile)
    if name == "mse":
        return MSEObserver()
    raise ValueError(f"observer must be one of {OBSERVERS}, got {name!r}")


def quantize_weight_per_channel(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: ``(int8 weight, float32 scale [Cout])`` with
    ``scale = max|w[oc]| / 127`` (1.0 for an all-zero channel), values in [-127, 127]."""
    w = w.detach().float()
    amax = w.reshape(w.shape[0], -1).abs().amax(1)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    q = torch.round(w / scale.reshape(-1, *([1] * (w.dim() - 1)))).clamp_(-127, 127).to(torch.int8)
    return q, scale


def quantize_tensor(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """float -> uint8: ``clamp(round_half_even(x / scale) + zero_point, 0, 255)``."""
    return torch.clamp(torch.round(x / scale) + zero_point, 0, 255).to(torch.uint8)


def dequantize_tensor(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    return (q.to(torch.float32) - zero_point) * scale


def fake_quantize(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """quantize then dequantize in float (the reference the int8 model is compared with)."""
    return (torch.clamp(torch.round(x / scale) + zero_point, 0, 255) - zero_point) * scale
