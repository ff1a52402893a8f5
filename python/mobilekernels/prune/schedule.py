"""Iterative prune -> fine-tune schedules (structured and unstructured)."""
from __future__ import annotations

from typing import Callable, Optional

from torch import nn

from .structured import ChannelPruner, PruningResult, check_ratio
from .unstructured import magnitude_prune

__all__ = ["iterative_prune", "iterative_magnitude_prune", "sparsity_schedule"]

FineTune = Callable[[nn.Module, int], Optional[nn.Module]]


def iterative_prune(model: nn.Module, ratio: float, steps: int, fine_tune: Optional[FineTune] = None,
                    history: Optional[list[PruningResult]] = None, **prune_kwargs) -> nn.Module:
    """Remove ``ratio`` of the channels in ``steps`` rounds, calling ``fine_tune(model, step)``
    after each (it trains in place or returns a new model; build the optimizer inside it,
    parameters are replaced by pruning).

    Each round removes ``1 - (1 - ratio) ** (1 / steps)`` of the current channels of every
    group, so the kept fraction after all rounds is ``1 - ratio`` up to ``round_to`` rounding.
    ``prune_kwargs`` go to :meth:`ChannelPruner.prune` (importance, scope, round_to, ...);
    ``history`` (a list) receives each round's :class:`PruningResult`.
    """
    check_ratio(ratio)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    step_ratio = 1 - (1 - ratio) ** (1 / steps)
    example_input = prune_kwargs.pop("example_input", None)
    for step in range(steps):
        result = ChannelPruner(model, example_input).prune(step_ratio, **prune_kwargs)
        model = result.model
        if history is not None:
            history.append(result)
        if fine_tune is not None:
            model = fine_tune(model, step) or model
    return model


def sparsity_schedule(final: float, steps: int, initial: float = 0.0, power: float = 3.0) -> list[float]:
    """Zhu & Gupta (2017) cubic schedule: ``s_t = final + (initial - final)(1 - t/steps)^power``,
    for ``t = 1..steps`` (last value = ``final``)."""
    check_ratio(final, "final sparsity")
    check_ratio(initial, "initial sparsity")
    return [final + (initial - final) * (1 - t / steps) ** power for t in range(1, steps + 1)]


def iterative_magnitude_prune(model: nn.Module, sparsity: float, steps: int,
                              fine_tune: Optional[FineTune] = None, **kwargs) -> nn.Module:
    """Unstructured: raise the mask sparsity along :func:`sparsity_schedule`, fine-tuning
    after each step. Masks stay on; call :func:`bake` at the end."""
    for step, s in enumerate(sparsity_schedule(sparsity, steps)):
        magnitude_prune(model, s, **kwargs)
        if fine_tune is not None:
            model = fine_tune(model, step) or model
    return model
