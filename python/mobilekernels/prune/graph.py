"""Channel dependency groups, found by tracing the model with ``torch.fx``.

A *group* is a set of channels that must be removed together: every tensor whose
channel axis is tied to another (depthwise conv in = out, BatchNorm, activations,
residual ``+``, attention gating, pooling, flatten of a 1x1 map) shares one
channel space. Each group lists its members and the role each plays:

========  ==================================================================
``out``   Conv2d (groups=1) / Linear producing the channels: slice dim 0 + bias
``dw``    depthwise Conv2d (in = out = groups): slice dim 0, keep groups = C
``in``    Conv2d (groups=1) / Linear consuming them: slice dim 1
``bn``    BatchNorm: slice weight, bias, running stats
``attn``  SE / ECA / CBAM leaf: ``module.prune_channels(keep)``
========  ==================================================================

The squeeze channels inside SE / CBAM form their own groups (``fc1`` out, ``fc2`` in).
Channel spaces that reach the model input or output are fixed. Any op the tracer
cannot follow raises :class:`UnsupportedLayerError` naming the layer.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from ..models.attention import CBAM, ECA, SqueezeExcitation

__all__ = ["UnsupportedLayerError", "Member", "ChannelGroup", "build_groups", "ATTENTION_LEAVES"]

ATTENTION_LEAVES = (SqueezeExcitation, ECA, CBAM)

_PASS_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid, nn.GELU,
                 nn.Tanh, nn.LeakyReLU, nn.Identity, nn.Dropout, nn.Dropout2d, nn.AvgPool2d,
                 nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_PASS_FUNCS = {F.relu, F.relu6, F.hardswish, F.hardsigmoid, F.silu, F.gelu, F.leaky_relu, F.dropout,
               torch.relu, torch.sigmoid, torch.tanh, F.adaptive_avg_pool2d, F.adaptive_max_pool2d,
               F.avg_pool2d, F.max_pool2d, torch.clamp}
_PASS_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "clamp", "clamp_", "clamp_min",
                 "contiguous", "clone", "detach"}
_BINARY = {operator.add, operator.iadd, operator.mul, operator.imul, operator.sub, operator.truediv,
           torch.add, torch.mul, torch.sub, torch.div}
_BINARY_METHODS = {"add", "add_", "mul", "mul_", "sub", "div"}
_RESHAPE_FUNCS = {torch.flatten}
_RESHAPE_METHODS = {"flatten", "view", "reshape", "squeeze", "mean", "amax", "sum"}


class UnsupportedLayerError(ValueError):
    """The model has a layer or op that channel pruning cannot follow."""


@dataclass(frozen=True)
class Member:
    module: str
    role: str  # "out" | "dw" | "in" | "bn" | "attn"


@dataclass
class ChannelGroup:
    """Channels pruned together. ``name`` is the first producing module."""
    name: str
    size: int
    members: list[Member] = field(default_factory=list)
    kind: str = "feature"  # or "attention" (SE/CBAM squeeze channels)

    def modules(self, role: Optional[str] = None) -> list[str]:
        return [m.module for m in self.members if role is None or m.role == role]

    def __repr__(self) -> str:
        roles = ", ".join(f"{m.role}:{m.module}" for m in self.members)
        return f"ChannelGroup({self.name!r}, size={self.size}, {roles})"


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, ATTENTION_LEAVES) or super().is_leaf_module(m, qualname)


def _where(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path, typ = list(stack.values())[-1]
        tname = getattr(typ, "__name__", str(typ))
        return f"op {node.target!r} in layer {path!r} ({tname})"
    return f"op {getattr(node.target, '__name__', node.target)!r} (node {node.name!r})"


def _shape(node) -> Optional[torch.Size]:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return getattr(meta, "shape", None)


class _Spaces:
    """Union-find over channel spaces with member lists."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.size: list[int] = []
        self.members: list[tuple[int, Member]] = []  # (space, member) in graph order
        self.fixed: set[int] = set()

    def new(self, size: int) -> int:
        self.parent.append(len(self.parent))
        self.size.append(size)
        return len(self.parent) - 1

    def find(self, s: int) -> int:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def union(self, a: int, b: int, what: str) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if self.size[ra] != self.size[rb]:
                raise UnsupportedLayerError(f"{what}: joins {self.size[ra]} and {self.size[rb]} channels")
            self.parent[rb] = ra
        return ra

    def add(self, s: int, member: Member) -> None:
        self.members.append((s, member))

    def members_by_root(self) -> dict[int, list[Member]]:
        out: dict[int, list[Member]] = {}
        for s, m in self.members:
            lst = out.setdefault(self.find(s), [])
            if m not in lst:
                lst.append(m)
        return out


def build_groups(model: nn.Module, example_input: torch.Tensor) -> list[ChannelGroup]:
    """Trace ``model`` and return its prunable channel groups, in graph order."""
    for name, m in model.named_modules():
        if hasattr(m, "weight_mask") or hasattr(m, "parametrizations"):
            raise UnsupportedLayerError(f"layer {name!r} carries an unstructured mask or parametrization; "
                                        "bake it first (mobilekernels.prune.bake)")
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # data-dependent control flow etc.
        raise UnsupportedLayerError(f"cannot trace {type(model).__name__} with torch.fx: {e}") from e
    gm = fx.GraphModule(model, graph)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example_input)
    finally:
        model.train(was_training)

    modules = dict(model.named_modules())
    sp = _Spaces()
    space: dict[fx.Node, Optional[int]] = {}
    first_in: dict[str, int] = {}
    first_out: dict[str, int] = {}
    order: list[int] = []
    leaves: list[str] = []

    def new_for(node: fx.Node) -> Optional[int]:
        shape = _shape(node)
        if shape is None or len(shape) < 2:
            return None
        s = sp.new(int(shape[1]))
        order.append(s)
        return s

    def input_space(node: fx.Node, what: str) -> int:
        arg = node.args[0] if node.args else None
        s = space.get(arg) if isinstance(arg, fx.Node) else None
        if s is None:
            raise UnsupportedLayerError(f"{what}: input has no channel axis")
        return s

    for node in graph.nodes:
        if node.op == "placeholder":
            s = new_for(node)
            if s is not None:
                sp.fixed.add(s)
            space[node] = s
        elif node.op == "output":
            for arg in _flat(node.args):
                if isinstance(arg, fx.Node) and space.get(arg) is not None:
                    sp.fixed.add(space[arg])
        elif node.op == "get_attr":
            raise UnsupportedLayerError(f"parameter/buffer {node.target!r} is used directly in forward; "
                                        "channel pruning only follows modules")
        elif node.op == "call_module":
            space[node] = _module_node(node, modules[node.target], sp, space, first_in, first_out,
                                       new_for, input_space, leaves)
        elif node.op in ("call_function", "call_method"):
            space[node] = _function_node(node, sp, space, new_for, input_space)
        else:
            raise UnsupportedLayerError(f"unsupported graph node {node.op} {_where(node)}")

    groups: list[ChannelGroup] = []
    seen: set[int] = set()
    fixed = {sp.find(s) for s in sp.fixed}
    by_root = sp.members_by_root()
    for s in order:
        r = sp.find(s)
        if r in seen:
            continue
        seen.add(r)
        members = by_root.get(r, [])
        producers = [m.module for m in members if m.role == "out"]
        if r in fixed or not producers:
            continue
        groups.append(ChannelGroup(producers[0], sp.size[r], members))
    for name in leaves:
        leaf = modules[name]
        for p, c in leaf.hidden_pairs():
            size = getattr(leaf, p).out_channels
            groups.append(ChannelGroup(f"{name}.{p}", size, [Member(f"{name}.{p}", "out"),
                                                             Member(f"{name}.{c}", "in")], "attention"))
    return groups


def _flat(args):
    for a in args:
        if isinstance(a, (tuple, list)):
            yield from _flat(a)
        elif isinstance(a, dict):
            yield from _flat(list(a.values()))
        else:
            yield a


def _module_node(node, m, sp, space, first_in, first_out, new_for, input_space, leaves):
    name = node.target
    what = f"layer {name!r} ({type(m).__name__})"

    def consume(s):
        sp.add(s, Member(name, "in"))
        if name in first_in:
            sp.union(first_in[name], s, what)
        first_in.setdefault(name, s)

    def produce():
        s = new_for(node)
        sp.add(s, Member(name, "out"))
        if name in first_out:
            s = sp.union(first_out[name], s, what)
        first_out.setdefault(name, s)
        return s

    if isinstance(m, nn.Conv2d):
        s = input_space(node, what)
        if m.groups == 1:
            consume(s)
            return produce()
        if m.groups == m.in_channels == m.out_channels:
            sp.add(s, Member(name, "dw"))
            return s
        raise UnsupportedLayerError(f"{what}: grouped conv with groups={m.groups}, in={m.in_channels}, "
                                    f"out={m.out_channels}; only groups=1 and depthwise are supported")
    if isinstance(m, nn.Linear):
        shape = _shape(node.args[0])
        if shape is None or len(shape) != 2:
            raise UnsupportedLayerError(f"{what}: only (N, features) inputs are supported, got {shape}")
        consume(input_space(node, what))
        return produce()
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        s = input_space(node, what)
        sp.add(s, Member(name, "bn"))
        return s
    if isinstance(m, ATTENTION_LEAVES):
        s = input_space(node, what)
        sp.add(s, Member(name, "attn"))
        if name not in leaves:
            leaves.append(name)
        return s
    if isinstance(m, _PASS_MODULES):
        return input_space(node, what)
    if isinstance(m, nn.Flatten):
        return _reshape(node, input_space(node, what), what)
    raise UnsupportedLayerError(f"{what} is not supported by channel pruning")


def _reshape(node, s, what):
    """Ops that keep axes 0 and 1 (N, C) and only reshape or reduce spatial axes."""
    src, out = _shape(node.args[0]), _shape(node)
    if src is None or out is None or len(out) < 2 or tuple(out[:2]) != tuple(src[:2]):
        raise UnsupportedLayerError(f"{what}: changes the channel axis "
                                    f"{tuple(src or ())} -> {tuple(out or ())}")
    if node.target in ("mean", "amax", "sum"):
        dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        dims = dims if isinstance(dims, (tuple, list)) else [dims]
        if any(d is None or d % len(src) in (0, 1) for d in dims):
            raise UnsupportedLayerError(f"{what}: reduces over the batch or channel axis")
    return s


def _function_node(node, sp, space, new_for, input_space):
    what = _where(node)
    t = node.target
    if (node.op == "call_method" and t in ("size", "dim")) or t is getattr:
        return None  # shape queries: no tensor flows on
    if t is operator.getitem and isinstance(node.args[0], fx.Node) and _shape(node.args[0]) is None:
        return None  # indexing a shape tuple
    if (node.op == "call_function" and t in _PASS_FUNCS) or (node.op == "call_method" and t in _PASS_METHODS):
        return input_space(node, what)
    if (node.op == "call_function" and t in _RESHAPE_FUNCS) or \
            (node.op == "call_method" and t in _RESHAPE_METHODS):
        return _reshape(node, input_space(node, what), what)
    if (node.op == "call_function" and t in _BINARY) or (node.op == "call_method" and t in _BINARY_METHODS):
        out = _shape(node)
        if out is None or len(out) < 2:
            raise UnsupportedLayerError(f"{what}: result has no channel axis")
        result = None
        for a in node.args[:2]:
            s, shape = space.get(a) if isinstance(a, fx.Node) else None, _shape(a)
            if s is None:
                continue
            if len(shape) == len(out) and shape[1] == out[1]:
                result = s if result is None else sp.union(result, s, what)
            elif shape[1] == 1:
                sp.fixed.add(s)  # broadcast along channels: keep that operand whole
            else:
                raise UnsupportedLayerError(f"{what}: cannot align operand {tuple(shape)} with {tuple(out)}")
        if result is None:
            raise UnsupportedLayerError(f"{what}: no operand carries the output channels")
        return result
    raise UnsupportedLayerError(f"{what} is not supported by channel pruning")
