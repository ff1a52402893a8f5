"""Model cost: parameter count, hook-based MAC count, measured CPU latency."""
from __future__ import annotations

import statistics
import time
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

__all__ = ["count_params", "count_macs", "measure_latency"]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (BN running stats are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _conv_macs(m: nn.Module, out: Tensor) -> int:
    k = 1
    for s in m.kernel_size:
        k *= s
    return out.numel() * (m.in_channels // m.groups) * k


def count_macs(model: nn.Module, input_size: Union[Sequence[int], Tensor] = (1, 3, 224, 224),
               per_sample: bool = True) -> int:
    """Multiply-accumulates of Conv1d/2d and Linear layers for one forward pass.

    ``input_size`` is a shape or an example tensor. Elementwise ops (BN, activations,
    attention gating, residual adds) are not counted, as in the papers' MAC figures.
    With ``per_sample`` (default) the count is for one sample of the batch.
    """
    x = input_size if isinstance(input_size, Tensor) else torch.randn(*input_size)
    total = 0

    def hook(m: nn.Module, inp: tuple, out: Tensor) -> None:
        nonlocal total
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            total += _conv_macs(m, out)
        else:  # Linear: every output element costs in_features MACs
            total += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x[:1] if per_sample else x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


def measure_latency(model: nn.Module, input_size: Union[Sequence[int], Tensor] = (1, 3, 224, 224),
                    runs: int = 50, warmup: int = 10, threads: Optional[int] = None) -> float:
    """Median wall-clock time (milliseconds) of ``model(x)`` in eval mode, no grad.

    ``threads`` temporarily sets ``torch.set_num_threads`` (None keeps the current value).
    """
    x = input_size if isinstance(input_size, Tensor) else torch.randn(*input_size)
    old_threads = torch.get_num_threads()
    was_training = model.training
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        model.eval()
        times = []
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            for _ in range(runs):
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old_threads)
        model.train(was_training)
    return statistics.median(times) * 1e3
