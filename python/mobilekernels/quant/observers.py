"""Activation observers (per tensor, uint8 asymmetric) and per-channel symmetric int8 weights.

* :class:`MinMaxObserver`: running min / max over every calibration batch.
* :class:`PercentileObserver`: the ``percentile`` / ``100 - percentile`` quantiles of a bounded,
  seeded random sample of the observed values (at most ``max_samples`` per batch and
  ``max_total`` kept in all), which clips rare outliers.

Both always include 0 in the range (so real zero is exact, zero padding is exact) and turn
``(lo, hi)`` into ``scale = (hi - lo) / 255``, ``zero_point = round(-lo / scale)``.
"""
from __future__ import annotations

import math

import torch

OBSERVERS = ("minmax", "percentile")
_MIN_SCALE = 1e-8


def qparams_from_range(lo: float, hi: float) -> tuple[float, int]:
    """uint8 ``(scale, zero_point)`` covering ``[min(lo, 0), max(hi, 0)]``."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"observed a non-finite activation range [{lo}, {hi}]")
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


def make_observer(name: str, percentile: float = 99.99):
    if name == "minmax":
        return MinMaxObserver()
    if name == "percentile":
        return PercentileObserver(percentile)
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
