"""``ChainedSequential``: an ``nn.Sequential`` whose runs of our fp32 layers execute as one C++ call.

Same children, same ``state_dict`` keys, same results (bit for bit) as the ``nn.Sequential`` it
replaces. In eager inference (grad off, not compiling, float32 CPU 4-D input) each maximal run
of at least two chainable layers, ``InvertedResidual``, ``SEInvertedResidual``,
``PointwiseConv2d`` and ``DepthwiseConv2d`` (exactly these types, so a subclass with its own forward is never
bypassed) goes through one cached :class:`mobilekernels._chain.Chain`: validated once per
input shape, intermediate activations in preallocated buffers, no Python between the layers.
Nested plain Sequentials holding only such layers and ``nn.Identity`` (e.g. a converted
``Conv2dNormActivation``) are looked into; every other child runs as usual.

With grad on, under ``torch.compile``/export, with a forward hook or pre-hook on any module the
chain would skip, or for any other input, ``forward`` is exactly ``nn.Sequential.forward``.

Cache invalidation: a chain is keyed on the input shape and (per call) on the data_ptr and
version of every parameter it reads, so in-place weight updates, ``load_state_dict`` and
replaced parameters rebuild it; a change of children or of a layer's settings rebuilds the
plan. The thread count is read per call (``torch.get_num_threads()``) and passed to C++.
"""
from __future__ import annotations

from operator import attrgetter

import torch
from torch import nn
from torch.nn.modules import module as _module

from . import _pack_cache
from .block import InvertedResidual
from .depthwise import DepthwiseConv2d
from .pointwise import PointwiseConv2d
from .se_block import SEInvertedResidual
from .. import _chain
from .._eager import unobserved

_KINDS = {InvertedResidual: "inverted_residual", SEInvertedResidual: "se_inverted_residual",
          PointwiseConv2d: "conv1x1", DepthwiseConv2d: "dwconv"}
# Global hooks fire on every module call; chained layers are not called, so any of them
# switches chaining off.
_GLOBAL_HOOKS = tuple(getattr(_module, n) for n in (
    "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
    "_global_backward_pre_hooks", "_global_forward_hooks_always_called") if hasattr(_module, n))
_MAX_SHAPES = 4  # chains kept per run (each holds its activation buffers)
_version = attrgetter("_version")
_data_ptr = torch.Tensor.data_ptr


def _is_plain_sequential(m) -> bool:
    """A Sequential whose forward is Sequential's (ours computes the same, chained)."""
    return isinstance(m, nn.Sequential) and type(m).forward in (nn.Sequential.forward, ChainedSequential.forward)


def _chainable_only(seq: nn.Sequential) -> bool:
    """A plain Sequential of chainable layers and Identity only (at any depth)."""
    for m in seq._modules.values():
        if _is_plain_sequential(m):
            if not _chainable_only(m):
                return False
        elif type(m) not in _KINDS and type(m) is not nn.Identity:
            return False
    return True


def _weights(m) -> list:
    ts = m._weights() if type(m) in (InvertedResidual, SEInvertedResidual) else (m.weight, m.bias)
    return [t for t in ts if t is not None]


class _Run:
    """A maximal run of chainable layers, with its chains per input shape."""

    def __init__(self, names, modules):
        self.names = names
        self.modules = modules
        self.steps = [(_KINDS[type(m)], m) for m in modules]
        self.tensors = tuple(t for m in modules for t in _weights(m))
        self.chains: dict = {}

    def weight_key(self):
        ts = self.tensors
        try:
            return tuple(map(_data_ptr, ts)), tuple(map(_version, ts))
        except RuntimeError:  # inference tensors have no version counter
            return tuple(map(_pack_cache.tensor_key, ts))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype is not torch.float32 or x.device.type != "cpu" or x.dim() != 4:
            return self.call_modules(x)  # their own errors / paths
        shape = x.shape
        key = self.weight_key()
        entry = self.chains.get(shape)
        if entry is None or entry[0] != key:
            entry = (key, self.build(shape))
            if shape not in self.chains and len(self.chains) >= _MAX_SHAPES:
                del self.chains[next(iter(self.chains))]
            self.chains[shape] = entry
        chain = entry[1]
        if chain is None:
            return self.call_modules(x)
        return chain.run(x)

    def build(self, shape):
        try:
            return _chain.Chain(self.steps, shape)
        except ValueError:
            # The layers do not accept this input (channels, size): run them one by one, so the
            # layer at fault raises its own, precise error.
            return None

    def call_modules(self, x):
        for m in self.modules:
            x = m(x)
        return x


class _Plan:
    """What the forward does for the current children: segments (a child module or a _Run),
    the containers whose children it was built from, and the hook dicts that disable it."""

    def __init__(self, seq: nn.Sequential):
        self.containers = [seq]
        self.segments: list = []
        hooked = []
        run_names, run_mods = [], []

        def flush():
            if len(run_mods) >= 2:
                self.segments.append(_Run(list(run_names), list(run_mods)))
            else:
                self.segments.extend(run_mods)
            run_names.clear()
            run_mods.clear()

        def walk(container, prefix):
            for name, m in container._modules.items():
                if m is None:
                    continue
                if type(m) in _KINDS:
                    run_names.append(prefix + name)
                    run_mods.append(m)
                    hooked.append(m)
                elif type(m) is nn.Identity:
                    hooked.append(m)  # skipped: a no-op unless hooked
                elif _is_plain_sequential(m) and _chainable_only(m):
                    self.containers.append(m)
                    hooked.append(m)
                    walk(m, prefix + name + ".")
                else:
                    flush()
                    self.segments.append(m)

        walk(seq, "")
        flush()
        self.hook_dicts = tuple(d for m in hooked for d in (m._forward_hooks, m._forward_pre_hooks)) + _GLOBAL_HOOKS
        self.token = self.structure()
        self.epoch = _chain.config_epoch()

    def structure(self):
        return tuple(tuple(c._modules.values()) for c in self.containers)

    def current(self) -> bool:
        return self.epoch == _chain.config_epoch() and self.token == self.structure()

    def runs(self) -> list["_Run"]:
        return [s for s in self.segments if isinstance(s, _Run)]


class ChainedSequential(nn.Sequential):
    """``nn.Sequential`` running each run of >= 2 chainable fp32 layers as one C++ call in eager
    inference (see the module docstring). ``chained_runs()`` lists them;
    ``describe_chains(x_shape)`` shows the kernels each chained step runs."""

    _chain_plan = None

    @classmethod
    def from_sequential(cls, seq: nn.Sequential) -> "ChainedSequential":
        """Turn a plain ``nn.Sequential`` into a ChainedSequential in place (same object,
        children, hooks and state_dict); returns it."""
        if type(seq) is not nn.Sequential:
            raise TypeError(f"from_sequential expects a plain nn.Sequential, got {type(seq).__name__}")
        seq.__class__ = cls
        return seq

    def _plan(self) -> _Plan:
        plan = self._chain_plan
        if plan is None or not plan.current():
            plan = _Plan(self)
            self.__dict__["_chain_plan"] = plan
        return plan

    def chained_runs(self) -> list[list[str]]:
        """Child names (dotted for nested ones) of each run executed as one chain."""
        return [r.names for r in self._plan().runs()]

    def describe_chains(self, x_shape) -> str:
        """The steps and kernels of each chain for input ``x_shape`` (NCHW), in order, as text.
        Only runs reached by following the shapes of the chained runs are described."""
        lines = []
        with torch.no_grad():
            x = torch.zeros(x_shape).contiguous(memory_format=torch.channels_last)
            for seg in self._plan().segments:
                if isinstance(seg, _Run):
                    chain = _chain.Chain(seg.steps, tuple(x.shape))
                    lines.append(f"chain {seg.names[0]}..{seg.names[-1]} ({len(seg.names)} layers):")
                    lines += ["  " + line for line in chain.describe().splitlines()]
                x = seg(x)
        return "\n".join(lines)

    def forward(self, x):
        if torch.is_grad_enabled() or type(x) is not torch.Tensor or not unobserved():
            return super().forward(x)
        plan = self._plan()
        if any(plan.hook_dicts):
            return super().forward(x)
        for seg in plan.segments:
            x = seg(x)
        return x

    def __getstate__(self):
        state = super().__getstate__().copy()
        state.pop("_chain_plan", None)  # holds C++ chains: rebuilt on first use
        return state
