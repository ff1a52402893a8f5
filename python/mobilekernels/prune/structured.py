"""Structured (channel / filter) pruning that physically removes channels.

>>> pruned = prune_channels(model, 0.5, importance="l1")           # smaller ordinary model
>>> result = ChannelPruner(model).prune(0.5, scope="global")       # + report
>>> result.params_before, result.params_after, result.macs_after

Dependencies come from :mod:`.graph`: depthwise convs keep in = out = groups,
residual adds prune together, BN / SE / ECA / CBAM shrink with their conv, the
classifier input follows the last conv. Kept counts are multiples of ``round_to``
(default :data:`PREFERRED_CHANNEL_TILE`), at least ``round_to``; groups with at most
``round_to`` channels are left alone. Kept channels keep their order.

Importance of channel ``c`` of a group, summed over the group's producers
(``out`` and ``dw`` members): ``"l1"`` = sum |W[c]|, ``"l2"`` = sqrt(sum W[c]^2),
``"bn"`` = sum |gamma[c]| of its BatchNorms (``"l2"`` for groups without BN).
With ``scope="global"`` scores are divided by their group mean and ranked
across all groups, so layers lose different fractions.

Pruning replaces parameters: build the optimizer after pruning.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from ..models.profile import count_macs, count_params
from .graph import ChannelGroup, UnsupportedLayerError, build_groups

__all__ = ["PREFERRED_CHANNEL_TILE", "ChannelPruner", "PruningResult", "prune_channels",
           "channel_importance", "check_ratio"]

#: Channel multiple the mobilekernels kernels prefer (vector tile); default ``round_to``.
PREFERRED_CHANNEL_TILE = 8

IMPORTANCE = ("l1", "l2", "bn")


def check_ratio(ratio: float, what: str = "ratio") -> float:
    if not isinstance(ratio, (int, float)) or not 0.0 <= float(ratio) < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {ratio!r}")
    return float(ratio)


def _default_input(model: nn.Module) -> Tensor:
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise UnsupportedLayerError(f"{type(model).__name__} has no Conv2d; pass example_input")
    return torch.randn(2, first.in_channels, 64, 64, generator=torch.Generator().manual_seed(0))


def channel_importance(model: nn.Module, group: ChannelGroup, method: str = "l1") -> Tensor:
    """Score of every channel of ``group`` (shape ``(group.size,)``, higher = keep)."""
    if method not in IMPORTANCE:
        raise ValueError(f"unknown importance {method!r}; expected one of {IMPORTANCE}")
    score = torch.zeros(group.size, dtype=torch.float64)
    if method == "bn":
        bns = [model.get_submodule(n) for n in group.modules("bn")]
        bns = [b for b in bns if b.weight is not None]
        if bns:
            for b in bns:
                score += b.weight.detach().abs().double()
            return score
        method = "l2"
    for m in group.members:
        if m.role not in ("out", "dw"):
            continue
        w = model.get_submodule(m.module).weight.detach().double().flatten(1)
        score += w.abs().sum(1) if method == "l1" else w.pow(2).sum(1)
    return score if method == "l1" else score.sqrt()


def _n_keep(n: int, keep_frac: float, round_to: int) -> int:
    if n <= round_to:
        return n
    k = int(n * keep_frac / round_to + 0.5) * round_to
    return min(n, max(round_to, k))


def _slice_param(mod: nn.Module, name: str, keep: Tensor, dim: int) -> None:
    p = getattr(mod, name)
    if p is None:
        return
    data = p.data.index_select(dim, keep).clone()
    if isinstance(p, nn.Parameter):
        setattr(mod, name, nn.Parameter(data, requires_grad=p.requires_grad))
    else:
        setattr(mod, name, data)


def _apply_group(model: nn.Module, group: ChannelGroup, keep: Tensor) -> None:
    n = len(keep)
    for mem in group.members:
        m = model.get_submodule(mem.module)
        if mem.role in ("out", "dw"):
            _slice_param(m, "weight", keep, 0)
            _slice_param(m, "bias", keep, 0)
            if isinstance(m, nn.Linear):
                m.out_features = n
            else:
                m.out_channels = n
                if mem.role == "dw":
                    m.in_channels = m.groups = n
        elif mem.role == "in":
            _slice_param(m, "weight", keep, 1)
            if isinstance(m, nn.Linear):
                m.in_features = n
            else:
                m.in_channels = n
        elif mem.role == "bn":
            for name in ("weight", "bias", "running_mean", "running_var"):
                _slice_param(m, name, keep, 0)
            m.num_features = n
        elif mem.role == "attn":
            m.prune_channels(keep)


@dataclass
class PruningResult:
    """Pruned model plus what changed. ``channels[name] = (before, after)``; MACs per sample."""
    model: nn.Module
    channels: dict[str, tuple[int, int]] = field(default_factory=dict)
    params_before: int = 0
    params_after: int = 0
    macs_before: int = 0
    macs_after: int = 0

    def summary(self) -> str:
        p = 1 - self.params_after / max(1, self.params_before)
        m = 1 - self.macs_after / max(1, self.macs_before)
        return (f"params {self.params_before:,} -> {self.params_after:,} (-{p:.1%}), "
                f"MACs {self.macs_before:,} -> {self.macs_after:,} (-{m:.1%})")


class ChannelPruner:
    """Dependency groups of ``model`` and the means to prune them.

    ``example_input`` (default ``randn(2, C_in, 64, 64)``) is only used to trace shapes.
    """

    def __init__(self, model: nn.Module, example_input: Optional[Tensor] = None) -> None:
        self.model = model
        self.example_input = _default_input(model) if example_input is None else example_input
        self.groups: list[ChannelGroup] = build_groups(model, self.example_input)
        self._by_name = {g.name: g for g in self.groups}

    def group(self, name: str) -> ChannelGroup:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no channel group {name!r}; groups: {list(self._by_name)}") from None

    def plan(self, ratio: float = 0.5, *, importance: str = "l1", scope: str = "layer",
             round_to: int = PREFERRED_CHANNEL_TILE, ratios: Optional[Mapping[str, float]] = None,
             ignore: Sequence[str] = (), include_attention: bool = True) -> dict[str, Tensor]:
        """Kept channel indices (sorted) for every group that loses channels.

        ``ratio`` is the fraction of channels to remove (per group, or overall with
        ``scope="global"``). ``ratios`` overrides it for named groups (per-layer scope);
        groups with a producer named in ``ignore`` (or inside it) are not pruned, nor the
        SE / CBAM squeeze channels when ``include_attention`` is False.
        """
        check_ratio(ratio)
        if scope not in ("layer", "global"):
            raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
        if not isinstance(round_to, int) or round_to < 1:
            raise ValueError(f"round_to must be a positive int, got {round_to!r}")
        ratios = dict(ratios or {})
        for name, r in ratios.items():
            self.group(name)
            check_ratio(r, f"ratio for group {name!r}")
        if ratios and scope == "global":
            raise ValueError("per-group ratios need scope='layer'")

        def ignored(g: ChannelGroup) -> bool:
            return (not include_attention and g.kind == "attention") or any(
                p == i or p.startswith(i + ".") for p in g.modules("out") + g.modules("dw") for i in ignore)

        groups = [g for g in self.groups if not ignored(g)]
        scores = {g.name: channel_importance(self.model, g, importance) for g in groups}
        keep_n: dict[str, int] = {}
        if scope == "layer":
            for g in groups:
                keep_n[g.name] = _n_keep(g.size, 1 - ratios.get(g.name, ratio), round_to)
        else:
            normed = {k: s / s.mean().clamp_min(1e-12) for k, s in scores.items()}
            flat = torch.cat(list(normed.values())) if normed else torch.zeros(0)
            n_remove = int(ratio * flat.numel())
            thr = flat.kthvalue(n_remove).values if n_remove > 0 else None
            for g in groups:
                kept = g.size if thr is None else int((normed[g.name] > thr).sum())
                keep_n[g.name] = _n_keep(g.size, kept / g.size, round_to)
        plan = {}
        for g in groups:
            k = keep_n[g.name]
            if k < g.size:
                idx = torch.topk(scores[g.name], k, sorted=False).indices
                plan[g.name] = idx.sort().values
        return plan

    def apply(self, plan: Mapping[str, Tensor], inplace: bool = False) -> nn.Module:
        """Remove every channel not listed in ``plan[group]``; returns the (copied) model."""
        model = self.model if inplace else copy.deepcopy(self.model)
        for name, keep in plan.items():
            g = self.group(name)
            keep = torch.as_tensor(keep, dtype=torch.long)
            if keep.numel() == 0 or keep.numel() > g.size or keep.unique().numel() != keep.numel() \
                    or int(keep.min()) < 0 or int(keep.max()) >= g.size:
                raise ValueError(f"group {name!r}: invalid kept indices for {g.size} channels")
            _apply_group(model, g, keep.sort().values)
        return model

    def prune(self, ratio: float = 0.5, inplace: bool = False, **plan_kwargs) -> PruningResult:
        """:meth:`plan` + :meth:`apply`, with parameter / MAC counts before and after."""
        x = self.example_input[:1]
        params_before, macs_before = count_params(self.model), count_macs(self.model, x)
        plan = self.plan(ratio, **plan_kwargs)
        sizes = {g.name: g.size for g in self.groups}
        model = self.apply(plan, inplace=inplace)
        return PruningResult(model, {k: (sizes[k], len(v)) for k, v in plan.items()},
                             params_before, count_params(model), macs_before, count_macs(model, x))


def prune_channels(model: nn.Module, ratio: float = 0.5, *, importance: str = "l1",
                   scope: str = "layer", round_to: int = PREFERRED_CHANNEL_TILE,
                   ratios: Optional[Mapping[str, float]] = None, ignore: Sequence[str] = (),
                   example_input: Optional[Tensor] = None, inplace: bool = False) -> nn.Module:
    """Remove ``ratio`` of the channels of ``model``; returns a smaller ordinary model.

    See :class:`ChannelPruner` for the details and :class:`PruningResult` for a report.
    """
    check_ratio(ratio)
    pruner = ChannelPruner(model, example_input)
    plan = pruner.plan(ratio, importance=importance, scope=scope, round_to=round_to,
                       ratios=ratios, ignore=ignore)
    return pruner.apply(plan, inplace=inplace)
