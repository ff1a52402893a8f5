"""``mobilekernels.convert(model)``: an inference copy of a model running on our fp32 kernels.

What it does, walking the module tree:

* whole inverted-residual blocks (torchvision-style ``.conv`` / ``.block`` Sequentials, and
  mobilekernels' own V1/V2/V3 blocks) without attention become one fused
  :class:`~mobilekernels.nn.InvertedResidual` (BatchNorm folded, wide tensor never materialised);
  those with a SqueezeExcitation after the depthwise conv (MobileNetV3) one fused
  :class:`~mobilekernels.nn.SEInvertedResidual` (SE computed inside the C++ call);
* inside everything else, ``Conv2d [-> BatchNorm2d] [-> ReLU | ReLU6 | Hardswish]`` runs in a
  Sequential are folded: depthwise convs become :class:`~mobilekernels.nn.DepthwiseConv2d`, 1x1
  convs :class:`~mobilekernels.nn.PointwiseConv2d`, ungrouped convs on at most
  ``STEM_MAX_IN_CHANNELS`` input channels (the stem) :class:`~mobilekernels.nn.StemConv2d`
  (activation fused in all three); other convs stay PyTorch ``nn.Conv2d`` with the BatchNorm
  folded in;
* everything else (ECA/CBAM, SE outside a fused block, pooling, classifier) stays
  in PyTorch, reported;
* with ``chain=True`` (default), every plain ``nn.Sequential`` holding a run of two or more of
  our layers (e.g. ``features``) becomes a :class:`~mobilekernels.nn.ChainedSequential`: same
  children and state_dict, but in eager inference each such run is one C++ call on
  preallocated buffers (bit-identical output, ~1 ms less Python per MobileNetV2 forward).

The result wraps the model so the input is made channels_last once; our layers keep it so.
When the model's first layer is a ``StemConv2d`` (which reads NCHW in place) that copy is
skipped: every layer of ours takes any layout, so this only saves the copy.
``summary()`` lists what was replaced and what was left, and why, and which runs are chained.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .nn import ChainedSequential, DepthwiseConv2d, InvertedResidual, PointwiseConv2d, SEInvertedResidual
from .nn import StemConv2d
from ._checks import conv_padding
from .nn.block import _fold_bn

_ACTS = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Hardswish: "hardswish"}
# Ungrouped convs on this many input channels or fewer run on StemConv2d (kh * kw * Cin
# broadcasts per output pixel: built for the RGB stem, no faster than a GEMM for wide inputs).
STEM_MAX_IN_CHANNELS = 4


@dataclass
class Change:
    """One line of the conversion report."""

    name: str
    original: str
    result: str
    note: str = ""


class ConvertedModel(nn.Module):
    """A converted model: channels_last input once, then the rewritten module tree."""

    def __init__(self, model: nn.Module, report: list[Change]):
        super().__init__()
        self.model = model
        self.report = report

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _first_layer(self.model).__class__ is StemConv2d:  # reads any layout: no copy in front
            return self.model(x)
        return self.model(x.contiguous(memory_format=torch.channels_last))

    def summary(self) -> str:
        """A table of replaced and kept layers."""
        rows = [("layer", "was", "now", "note")] + [(c.name, c.original, c.result, c.note) for c in self.report]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
        fused = sum(c.result.startswith(("InvertedResidual", "SEInvertedResidual")) for c in self.report)
        ours = sum(c.result in ("DepthwiseConv2d", "PointwiseConv2d", "StemConv2d") for c in self.report)
        kept = sum(c.result.startswith("kept") for c in self.report)
        se = sum(c.result.startswith("SEInvertedResidual") for c in self.report)
        with_se = f" ({se} with squeeze-excitation)" if se else ""
        lines.append(f"{fused} fused blocks{with_se}, {ours} single layers on mobilekernels, {kept} kept in PyTorch")
        runs = [r for m in self.model.modules() if isinstance(m, ChainedSequential) for r in m.chained_runs()]
        if runs:
            lines.append(f"{len(runs)} chained runs ({sum(map(len, runs))} layers) run as one C++ call each "
                         "in eager inference")
        return "\n".join(lines)


def convert(model: nn.Module, *, fuse_blocks: bool = True, inplace: bool = False,
            chain: bool = True) -> ConvertedModel:
    """Return an inference (eval-mode) copy of ``model`` whose convolutions run on our kernels.

    Args:
        model: any ``nn.Module``; BatchNorm folding uses its running statistics.
        fuse_blocks: replace whole inverted-residual blocks by the fused kernel.
        inplace: rewrite ``model`` itself instead of a deep copy.
        chain: turn plain Sequentials holding runs of our layers into ``ChainedSequential``
            (one C++ call per run in eager inference; same children, state_dict and output).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"convert expects an nn.Module, got {type(model).__name__}")
    m = model if inplace else copy.deepcopy(model)
    m.eval()
    report: list[Change] = []
    if isinstance(m, nn.Sequential):
        _convert_sequential(m, "", report)
    _convert_tree(m, "", report, fuse_blocks)
    if chain:
        _chain_sequentials(m, report)
    return ConvertedModel(m, report)


def _chain_sequentials(model: nn.Module, report: list[Change]) -> None:
    for name, seq in list(model.named_modules()):
        if type(seq) is not nn.Sequential:
            continue
        ChainedSequential.from_sequential(seq)
        runs = seq.chained_runs()
        if not runs:  # nothing to chain: leave it plain
            seq.__class__ = nn.Sequential
            continue
        note = "; ".join(f"{r[0]}..{r[-1]} ({len(r)} layers) in one call" for r in runs)
        report.append(Change(name or "(model)", "Sequential", "ChainedSequential", note))


def _is_block(m: nn.Module) -> bool:
    body = getattr(m, "conv", None)
    if not isinstance(body, nn.Sequential):
        body = getattr(m, "block", None)
    return isinstance(body, nn.Sequential) and (hasattr(m, "use_res_connect") or "Residual" in type(m).__name__)


def _convert_tree(parent: nn.Module, prefix: str, report: list[Change], fuse: bool) -> None:
    for name, child in list(parent.named_children()):
        full = prefix + name
        if fuse and _is_block(child):
            try:
                new = InvertedResidual.from_torch(child)
                setattr(parent, name, new)
                report.append(Change(full, type(child).__name__, f"{type(new).__name__} (fused)",
                                     "with squeeze-excitation" if isinstance(new, SEInvertedResidual) else ""))
                continue
            except ValueError as e:  # e.g. ECA/CBAM inside: convert its layers one by one instead
                report.append(Change(full, type(child).__name__, "kept (layers converted)", f"not fused: {e}"))
        if isinstance(child, nn.Sequential):
            _convert_sequential(child, full, report)
        _convert_tree(child, full + ".", report, fuse)
        if isinstance(child, nn.BatchNorm2d) and not isinstance(parent, nn.Sequential):
            report.append(Change(full, "BatchNorm2d", "kept in PyTorch", "not after a conv in a Sequential"))


def _convert_sequential(seq: nn.Sequential, prefix: str, report: list[Change]) -> None:
    mods = list(seq)
    i = 0
    while i < len(mods):
        conv = mods[i]
        if type(conv) is not nn.Conv2d:
            i += 1
            continue
        j = i + 1
        bn = mods[j] if j < len(mods) and isinstance(mods[j], nn.BatchNorm2d) else None
        j += bn is not None
        act = _ACTS.get(type(mods[j])) if j < len(mods) else None
        name = f"{prefix}.{i}" if prefix else str(i)
        new, fused_act = _replace_conv(conv, bn, act)
        seq[i] = new
        if bn is not None:
            seq[i + 1] = nn.Identity()
        if fused_act:
            seq[j] = nn.Identity()
        what = type(new).__name__ if type(new) is not nn.Conv2d else "kept in PyTorch"
        note = ("BN folded" if bn is not None else "") + (f", {act} fused" if fused_act else "")
        if type(new) is nn.Conv2d:
            note = (note + "; " if note else "") + _why_not(conv)
        report.append(Change(name, "Conv2d" + ("+BN" if bn is not None else ""), what, note.strip(", ")))
        i = j + (1 if fused_act else 0)


def _first_layer(model: nn.Module) -> nn.Module:
    """The module reached by following first children down from ``model``: the first layer
    of the usual ``features``-first CNNs (a cheap attribute walk, done per forward so a layer
    swapped in afterwards counts)."""
    m = model
    while True:
        children = m._modules
        if not children:
            return m
        first = next(iter(children.values()))
        if first is None:
            return m
        m = first


def _stem_ok(conv: nn.Conv2d) -> bool:
    if conv.groups != 1 or conv.in_channels > STEM_MAX_IN_CHANNELS or conv.padding_mode != "zeros":
        return False
    try:
        conv_padding(conv.padding, conv.kernel_size, conv.stride, conv.dilation)
    except ValueError:  # padding beyond the kernel extent: torch's conv handles it
        return False
    return True


def _why_not(conv: nn.Conv2d) -> str:
    return (f"no kernel for {conv.kernel_size} groups={conv.groups} stride={conv.stride} "
            f"({conv.in_channels}->{conv.out_channels})")


def _replace_conv(conv: nn.Conv2d, bn, act):
    """(replacement module, whether the activation was fused into it)."""
    w, b = _fold_bn(conv, bn) if (bn is not None or conv.bias is not None) else (conv.weight.detach(), None)
    ok_pad = conv.padding_mode == "zeros"
    depthwise = conv.groups == conv.in_channels and conv.out_channels % conv.in_channels == 0 and ok_pad
    pointwise = (tuple(conv.kernel_size) == (1, 1) and tuple(conv.stride) == (1, 1) and conv.groups == 1
                 and conv.padding in ((0, 0), "valid") and tuple(conv.dilation) == (1, 1))
    if depthwise:
        new = DepthwiseConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                              conv.dilation, bias=True, activation=act or "none")
    elif pointwise:
        new = PointwiseConv2d(conv.in_channels, conv.out_channels, bias=True, activation=act or "none")
    elif _stem_ok(conv):
        new = StemConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                         conv.dilation, bias=True, activation=act or "none")
    else:
        new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                        conv.dilation, conv.groups, bias=b is not None, padding_mode=conv.padding_mode)
        act = None
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
        elif new.bias is not None:
            new.bias.zero_()
    return new.eval(), act is not None
