"""Torch modes that record what runs, for tests that check a forward's ``mobilekernels`` ops are
visible to modes (FlopCounterMode, make_fx and logging modes build on these hooks)."""
from __future__ import annotations

from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode


class RecordOps(TorchDispatchMode):
    """Names of the ops dispatched under it (e.g. ``mobilekernels.dwconv2d.default``)."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))


class RecordFunctions(TorchFunctionMode):
    """Names of the torch functions called under it (an op packet prints as
    ``mobilekernels.<op>``)."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))


def mk_ops(names):
    """The ``mobilekernels`` entries of a recorded name list."""
    return [s for s in names if "mobilekernels." in s or "mobilekernels::" in s]
