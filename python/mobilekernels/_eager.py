"""When a functional wrapper may call an op's CPU implementation directly instead of going
through ``torch.ops.mobilekernels.*`` (the dispatcher costs tens of microseconds per call).

Direct is safe only when nothing would observe or transform the call: not under
``torch.compile`` / dynamo nor ``torch.jit.trace``, no torch-function mode (e.g. ``torch.device``) and no
torch-dispatch mode (``FlopCounterMode``, ``make_fx`` / non-strict export proxies, fake tensor
mode, a user's logging mode: they must see the ``mobilekernels::*`` op), no functorch
transform (vmap / grad wrap plain-typed tensors), every tensor argument exactly
``torch.Tensor`` or ``nn.Parameter`` (a module's weight passed as is: Parameter disables
``__torch_function__``, so the op would see it as a plain tensor; no other subclass, FakeTensor
or fx Proxy), and no autograd needed (grad disabled, or no tensor argument requires grad). Otherwise the wrapper calls the registered op,
which handles all of these. Every check is a C-level flag read (~0.1 us each).
"""
from __future__ import annotations

import torch

_Tensor = torch.Tensor
_Parameter = torch.nn.Parameter
_PLAIN = (_Tensor, _Parameter)  # the exact types a direct call takes
_dispatch_modes = torch._C._len_torch_dispatch_stack  # counts infra modes (fake, proxy) too
_function_mode = torch._C._is_torch_function_mode_enabled
_functorch = torch._C._are_functorch_transforms_active
_grad_enabled = torch._C.is_grad_enabled
_compiling = torch.compiler.is_compiling
_jit_tracing = torch._C._get_tracing_state  # not None while torch.jit.trace records


def unobserved() -> bool:
    """No compilation, torch-function / torch-dispatch mode, functorch transform or jit trace is
    active: nothing would miss a direct C++ call. The ``nn`` modules' eager paths test this
    too (plus their own tensor-type and grad checks)."""
    return not (_compiling() or _dispatch_modes() or _function_mode() or _functorch()
                or _jit_tracing() is not None)


def eager(tensors: tuple, optional: tuple = ()) -> bool:
    """True when the direct CPU call may replace the registered op: ``tensors`` (required
    arguments) are all exactly ``torch.Tensor`` or ``nn.Parameter``, ``optional`` ones that or
    None, and no mode, transform, compilation or autograd is involved (see the module docstring)."""
    if not unobserved():
        return False
    grad = _grad_enabled()
    for t in tensors:
        if type(t) not in _PLAIN or (grad and t.requires_grad):
            return False
    for t in optional:
        if t is not None and (type(t) not in _PLAIN or (grad and t.requires_grad)):
            return False
    return True


# Validated-call caches of the fast paths (one dict per op) hold at most this many entries.
MAX_CALLS = 256


def remember(cache: dict, key, call):
    """Store ``call`` under ``key``; a full cache is emptied first (a caller feeding ever-new
    shapes must not grow it without end). Returns ``call``."""
    if len(cache) >= MAX_CALLS:
        cache.clear()
    cache[key] = call
    return call
