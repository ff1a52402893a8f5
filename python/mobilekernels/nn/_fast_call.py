"""A cheaper ``__call__`` for our modules' eager inference path.

``nn.Module.__call__`` costs ~1.6 us per call on the 2-core Xeon here (the compiled-call
indirection, the tracing-state query, eight hook-dict checks, ``*args`` packed twice), as much as
the kernel of a 14x14 depthwise layer. A module with an eager fast path defines
``_eager_call(x)`` (the result, or None when the call must take the ordinary route);
``__call__`` tries it only when nothing that ``nn.Module.__call__`` would honour is present: one
positional argument, no module or global hooks, no ``module.compile()``. Everything else (hooks,
keyword arguments, compile, fx / jit tracing, modes, autograd) goes through ``nn.Module.__call__``
looked up at call time, so torch.fx's patching of it still sees our modules.
"""
from __future__ import annotations

from torch import nn
from torch.nn.modules import module as _module

# torch's global hook registries: dicts mutated in place by register_module_*_hook, never rebound.
_GLOBAL_HOOKS = (_module._global_forward_pre_hooks, _module._global_forward_hooks,
                 _module._global_backward_pre_hooks, _module._global_backward_hooks)
_Module = nn.Module


class FastCallMixin:
    """Put before the ``nn.Module`` base; the class defines ``_eager_call(x)`` next to its
    ``forward`` (which tries it first). A subclass that overrides ``forward``, or an instance
    whose ``forward`` is replaced, gets ``nn.Module.__call__`` and so its own ``forward``."""

    _fast_call_ok = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        owner = [next(c for c in cls.__mro__ if name in c.__dict__) for name in ("_eager_call", "forward")]
        cls._fast_call_ok = owner[0] is owner[1]

    def _eager_call(self, x):  # pragma: no cover - every user overrides it
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and not kwargs and self._fast_call_ok and self._compiled_call_impl is None and not (
                "forward" in self.__dict__
                or self._forward_pre_hooks or self._forward_hooks or self._backward_pre_hooks
                or self._backward_hooks or _GLOBAL_HOOKS[0] or _GLOBAL_HOOKS[1] or _GLOBAL_HOOKS[2]
                or _GLOBAL_HOOKS[3]):
            out = self._eager_call(args[0])
            if out is not None:
                return out
        return _Module.__call__(self, *args, **kwargs)
