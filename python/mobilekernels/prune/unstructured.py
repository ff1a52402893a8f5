"""Unstructured magnitude pruning: zero the smallest weights, keep masks while fine-tuning.

>>> magnitude_prune(model, 0.8)                 # global: 80% of all conv/linear weights
>>> magnitude_prune(model, 0.8, scope="layer")  # 80% of every layer
>>> ...fine-tune: masked weights stay exactly zero (weight = weight_orig * weight_mask)...
>>> bake(model)                                 # plain ``weight`` tensors with the zeros
>>> print(format_sparsity(sparsity_report(model)))

Masks use ``torch.nn.utils.prune`` re-parametrisation, so gradients and optimizer
updates of masked weights cannot revive them. Calling :func:`magnitude_prune`
again ranks the current (masked) weights; masks only grow. Unstructured zeros
do not make dense kernels faster; use :mod:`.structured` for speed.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import prune as torch_prune

from .structured import check_ratio

__all__ = ["magnitude_prune", "bake", "sparsity_report", "format_sparsity", "prunable_layers"]

DEFAULT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)


def prunable_layers(model: nn.Module, layer_types: Sequence[type] = DEFAULT_TYPES,
                    exclude: Sequence[str] = ()) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of layers with a ``weight`` of the given types, minus ``exclude``
    (exact names or prefixes ending a path component)."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, tuple(layer_types)) and getattr(m, "weight", None) is not None:
            if not any(name == e or name.startswith(e + ".") for e in exclude):
                out.append((name, m))
    return out


def _effective(m: nn.Module) -> Tensor:
    """Current masked weight (``weight`` itself is only refreshed at forward time)."""
    if hasattr(m, "weight_mask"):
        return (m.weight_orig * m.weight_mask).detach()
    return m.weight.detach()


def _smallest_mask(values: Tensor, k: int) -> Tensor:
    """1 everywhere except at the ``k`` smallest entries of ``values`` (flat)."""
    mask = torch.ones(values.numel(), dtype=torch.bool)
    if k > 0:
        mask[torch.topk(values.flatten(), k, largest=False, sorted=False).indices] = False
    return mask


def magnitude_prune(model: nn.Module, sparsity: float, scope: str = "global",
                    layer_types: Sequence[type] = DEFAULT_TYPES, exclude: Sequence[str] = ()
                    ) -> dict[str, Tensor]:
    """Mask the ``sparsity`` fraction of smallest-|w| weights; returns ``{layer: mask}``.

    ``scope="global"`` ranks all selected weights together (layers end up with
    different sparsities), ``"layer"`` prunes each layer to ``sparsity``.
    """
    check_ratio(sparsity, "sparsity")
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    layers = prunable_layers(model, layer_types, exclude)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no layer of types {[t.__name__ for t in layer_types]}")
    mags = [_effective(m).abs().flatten() for _, m in layers]
    if scope == "global":
        flat = torch.cat(mags)
        keep = _smallest_mask(flat, int(round(sparsity * flat.numel()))).split([t.numel() for t in mags])
    else:
        keep = [_smallest_mask(t, int(round(sparsity * t.numel()))) for t in mags]
    masks = {}
    for (name, m), k in zip(layers, keep):
        mask = k.view_as(m.weight).to(m.weight.dtype)
        if hasattr(m, "weight_mask"):  # already masked: masks only grow
            m.weight_mask.mul_(mask)
            m.weight = _effective(m)  # refresh now, not at the next forward
        else:
            torch_prune.custom_from_mask(m, "weight", mask)
        masks[name] = m.weight_mask.detach().clone()
    return masks


def bake(model: nn.Module) -> nn.Module:
    """Make masks permanent: ``weight`` becomes a plain parameter holding the zeros."""
    for _, m in model.named_modules():
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                torch_prune.remove(m, hook._tensor_name)
    return model


def sparsity_report(model: nn.Module, layer_types: Sequence[type] = DEFAULT_TYPES
                    ) -> list[dict[str, object]]:
    """Actual fraction of zero weights per layer (masked or baked), plus a ``"total"`` row."""
    rows = []
    zeros = total = 0
    for name, m in prunable_layers(model, layer_types):
        w = _effective(m)
        z, n = int((w == 0).sum()), w.numel()
        rows.append({"layer": name, "type": type(m).__name__, "params": n, "zeros": z, "sparsity": z / n,
                     "masked": hasattr(m, "weight_mask")})
        zeros, total = zeros + z, total + n
    rows.append({"layer": "total", "type": "", "params": total, "zeros": zeros,
                 "sparsity": zeros / max(1, total), "masked": None})
    return rows


def format_sparsity(rows: list[dict[str, object]], max_rows: Optional[int] = None) -> str:
    """Plain-text table of :func:`sparsity_report` rows."""
    body = rows[:-1] if max_rows is None else rows[:-1][:max_rows]
    width = max(len(str(r["layer"])) for r in rows)
    lines = [f"{'layer':<{width}}  {'params':>10}  {'sparsity':>8}"]
    for r in body + rows[-1:]:
        lines.append(f"{r['layer']:<{width}}  {r['params']:>10,}  {r['sparsity']:>8.2%}")
    return "\n".join(lines)
