"""Keys for the derived weight packs the modules cache (rebuilt when a weight changes)."""
from __future__ import annotations

from typing import Optional

import torch


def tensor_key(t: Optional[torch.Tensor]):
    """(storage pointer, version) of a parameter; inference tensors (made under
    ``torch.inference_mode``) have no version counter, so only their pointer counts."""
    if t is None:
        return None
    return (t.data_ptr(), 0 if t.is_inference() else t._version)


_NOT_A_PARAMETER = object()


def params_require_grad(module) -> bool:
    """Whether the weight or bias of a conv module requires grad (read as attributes, so a
    parametrized weight counts too)."""
    w, b = module.weight, module.bias
    return w.requires_grad or (b is not None and b.requires_grad)


def _rare_key(w, b):
    """The pack key when the fast one fails: inference tensors (no version counter), or None
    when weight or bias is not in ``_parameters`` (e.g. under ``torch.nn.utils.parametrize``)."""
    if w is None or b is _NOT_A_PARAMETER:
        return None
    return (tensor_key(w), tensor_key(b))


class CachedPackMixin:
    """For conv modules with ``weight``/``bias``: ``_pack()`` returns ``self._make_pack(weight,
    bias)`` rebuilt only when either changes; ``_pack_ref()`` the same pack as ``(tensor,
    data_ptr, numel)`` for the eager C++ calls. The pack is derived state, left out of pickles
    and state_dicts."""

    _pack_state = None  # (key, packed, packed.data_ptr(), packed.numel())

    def _make_pack(self, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def _copy_params_from(self, conv):
        """Copy weight (and bias) from a torch conv of the same shape; returns self."""
        with torch.no_grad():
            self.weight.copy_(conv.weight)
            if conv.bias is not None:
                self.bias.copy_(conv.bias)
        return self

    def _pack(self) -> torch.Tensor:
        return self._pack_ref()[1]

    @property
    def _packed(self) -> Optional[torch.Tensor]:
        """The cached pack, None before the first eager call (for tests and tools)."""
        state = self._pack_state
        return None if state is None else state[1]

    def _pack_ref(self) -> tuple:
        # Runs on every eager call: the parameters are read from _parameters, not through
        # nn.Module.__getattr__ (~0.2 us each), the key is one flat tuple, and is_inference() is
        # only asked when the version counter is missing (inference tensors raise on _version).
        params = self._parameters
        w, b = params.get("weight"), params.get("bias", _NOT_A_PARAMETER)
        try:
            key = (w.data_ptr(), w._version) if b is None else (w.data_ptr(), w._version, b.data_ptr(), b._version)
        except (RuntimeError, AttributeError):
            key = _rare_key(w, b)
            if key is None:  # weight or bias not a registered parameter (parametrized): not cached
                packed = self._make_pack(self.weight, self.bias)
                return (None, packed, packed.data_ptr(), packed.numel())
        state = self._pack_state
        if state is None or state[0] != key:
            packed = self._make_pack(w, b)
            # through __dict__: nn.Module.__setattr__ is slow, and our modules' hooks there would
            # take it for a setting change
            state = self.__dict__["_pack_state"] = (key, packed, packed.data_ptr(), packed.numel())
        return state

    def __getstate__(self):
        state = super().__getstate__().copy()
        state.pop("_pack_state", None)  # derived: rebuilt on first use
        return state


# Eager fast paths cache the validated arguments of their C++ call per key (input shape, plus
# whatever else the call depends on) in ``module.__dict__["_calls"]``: written through __dict__
# so modules whose __setattr__ invalidates caches do not see it as a setting change. Bounded,
# since a module fed ever-new input sizes would otherwise grow it without end.
MAX_CACHED_CALLS = 64


def cached_call(module, key):
    calls = module.__dict__.get("_calls")
    return calls.get(key) if calls is not None else None


def remember_call(module, key, call):
    calls = module.__dict__.get("_calls")
    if calls is None or len(calls) >= MAX_CACHED_CALLS:
        calls = module.__dict__["_calls"] = {}
    calls[key] = call
    return call
