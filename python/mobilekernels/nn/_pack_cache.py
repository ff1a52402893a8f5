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


class CachedPackMixin:
    """For conv modules with ``weight``/``bias``: ``_pack()`` returns ``self._make_pack(weight,
    bias)`` rebuilt only when either changes; the pack is derived state, left out of pickles
    and state_dicts."""

    _packed = None
    _pack_key = None

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
        # Runs on every eager call: the parameters are read from _parameters, not through
        # nn.Module.__getattr__ (~0.9 us each), and the key skips is_inference() unless the
        # version counter is missing (inference tensors raise RuntimeError on _version).
        params = self._parameters
        w, b = params["weight"], params.get("bias")
        try:
            key = ((w.data_ptr(), w._version), None if b is None else (b.data_ptr(), b._version))
        except RuntimeError:
            key = (tensor_key(w), tensor_key(b))
        if self._pack_key != key:
            self._packed = self._make_pack(w, b)
            self._pack_key = key
        return self._packed

    def __getstate__(self):
        state = super().__getstate__().copy()
        state["_packed"], state["_pack_key"] = None, None  # derived: rebuilt on first use
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
