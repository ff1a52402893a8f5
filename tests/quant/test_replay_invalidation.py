"""When a replay plan (quant/replay.py) must be rebuilt, beyond tests/quant/test_replay.py: the
cheap per-call check (shared version counters of the scalar qparams, the module-structure epoch
of torch's registration hooks) sees every change the step-by-step path would see."""
from __future__ import annotations

import copy
import io

import torch
from torch import nn

from mobilekernels.models import get_model
from mobilekernels.quant import quantize
from mobilekernels.quant.modules import QBlock, QConv


def _quantized(name="mobilenet_v3_small", attention="se"):
    torch.manual_seed(0)
    m = get_model(name, num_classes=10, width_mult=0.35, attention=attention).eval()
    g = torch.Generator().manual_seed(1)
    return quantize(m, [torch.randn(4, 3, 32, 32, generator=g) for _ in range(2)], progress=False)


def _stepwise(q, x):
    q.replay = False
    try:
        return q(x)
    finally:
        q.replay = True


def _plan(q):
    return q.__dict__.get("_replay_plan")


def _check_rebuilt(q, x, old):
    assert torch.equal(q(x), _stepwise(q, x))
    assert _plan(q) is not old
    p = _plan(q)
    assert torch.equal(q(x), _stepwise(q, x)) and _plan(q) is p  # and current again


def test_scalar_qparams_share_one_counter_per_dtype():
    q = _quantized()
    x = torch.randn(2, 3, 32, 32)
    q(x)
    plan = _plan(q)
    scalars = [t for t in q.buffers() if t.dim() == 0]
    assert len(scalars) > 50 and all(t._base is not None for t in scalars)
    assert len({id(t._base) for t in scalars}) == 2  # float64 scales, int64 zero points
    assert len(plan.owners) < len(plan.tensors) // 3
    # every scalar's in-place change is seen through the shared counter
    for t in (q.in_scale, scalars[len(scalars) // 2], scalars[-1]):
        p = _plan(q)
        t.mul_(1)  # same value, new version: rebuilt (and still equal)
        _check_rebuilt(q, x, p)


def test_buffer_and_module_replacement_rebuilds():
    q = _quantized()
    x = torch.randn(2, 3, 32, 32)
    q(x)
    # a buffer replaced by assignment (not in place)
    step = next(s for s in q.steps if isinstance(s, QConv))
    p = _plan(q)
    step.out_scale = torch.tensor(float(step.out_scale) * 1.5, dtype=torch.float64)
    _check_rebuilt(q, x, p)
    # a pack replaced by one that differs
    conv = next(s for s in q.modules() if isinstance(s, QConv) and s.kind == "pointwise")
    p = _plan(q)
    packed = conv.packed.clone()
    packed[-64:] = packed[-64:].flip(0)  # change a few weight bytes (the header stays valid)
    conv.packed = packed
    _check_rebuilt(q, x, p)
    # a step module swapped for a copy with another fuse setting
    i, block = next((i, s) for i, s in enumerate(q.steps) if isinstance(s, QBlock) and s.is_fused())
    other = copy.deepcopy(block)
    other.fuse = False
    p = _plan(q)
    q.steps[i] = other
    _check_rebuilt(q, x, p)
    assert not any(b is block for b in _plan(q).blocks)


def test_module_apply_rebuilds():
    q = _quantized()
    x = torch.randn(2, 3, 32, 32)
    q(x)
    p = _plan(q)
    q.float()  # float64 scales become float32 tensors (other values): _apply bypasses the hooks
    assert q.in_scale.dtype == torch.float32
    _check_rebuilt(q, x, p)


def test_copies_share_counters_again():
    q = _quantized()
    x = torch.randn(2, 3, 32, 32)
    buf = io.BytesIO()
    torch.save(q, buf)
    buf.seek(0)
    for c in (copy.deepcopy(q), torch.load(buf, weights_only=False)):
        c(x)
        plan = _plan(c)
        assert len(plan.owners) < len(plan.tensors) // 3
        step = next(s for s in c.steps if isinstance(s, QConv))
        step.out_scale.mul_(1.25)
        _check_rebuilt(c, x, plan)
        assert not torch.equal(c(x), q(x))  # the original kept its scales
        assert torch.equal(q(x), _stepwise(q, x))


def test_plan_kept_across_calls_with_python_steps():
    """Python steps between segments (float fallback, max pool) register nothing, so the plan stays."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 1, groups=2), nn.MaxPool2d(2),
                      nn.Conv2d(8, 12, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 5)).eval()
    q = quantize(m, [torch.randn(4, 3, 32, 32) for _ in range(2)], progress=False)
    x = torch.randn(3, 3, 32, 32)
    ref = _stepwise(q, x)
    q(x)
    p = _plan(q)
    assert p.python_steps
    for _ in range(3):
        assert torch.equal(q(x), ref) and _plan(q) is p


def test_load_state_dict_rebuilds():
    q = _quantized()
    other = _quantized()
    with torch.no_grad():
        for t in other.buffers():
            if t.dim() == 0 and t.dtype == torch.float64:
                t.mul_(1.1)  # other scales everywhere
    x = torch.randn(2, 3, 32, 32)
    q(x)
    p = _plan(q)
    q.load_state_dict(other.state_dict())
    assert all(t._base is not None for t in q.buffers() if t.dim() == 0)  # copied in place: still views
    _check_rebuilt(q, x, p)
    assert torch.equal(q(x), other(x))


def test_unrelated_modules_do_not_invalidate_the_plan():
    """Modules built elsewhere in the process (buffers and submodules registered on torch's own
    or the user's classes) leave the plan current; a container inside the model still counts."""
    q = _quantized()
    x = torch.randn(2, 3, 32, 32)
    q(x)
    p = _plan(q)
    for _ in range(3):
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))  # registers modules and buffers
        assert torch.equal(q(x), _stepwise(q, x)) and _plan(q) is p
    q.steps[1] = copy.deepcopy(q.steps[1])  # the model's own container changed: rebuilt, same result
    _check_rebuilt(q, x, p)
