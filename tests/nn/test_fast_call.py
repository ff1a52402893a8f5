"""The modules' own ``__call__`` (nn/_fast_call.py): it skips ``nn.Module.__call__`` only when
that would do nothing but call forward; hooks, compile and fx tracing behave as with torch's."""
import pytest
import torch
import torch.fx
from torch import nn

import mobilekernels as mk
from mobilekernels.nn import _fast_call


def _modules():
    torch.manual_seed(0)
    return {
        "depthwise": (mk.nn.DepthwiseConv2d(8, 8, 3, 1, 1, activation="relu6"), (2, 8, 5, 6)),
        "pointwise": (mk.nn.PointwiseConv2d(8, 12, 1, activation="relu"), (2, 8, 5, 6)),
        "stem": (mk.nn.StemConv2d(3, 16, 3, 2, 1, activation="relu6"), (2, 3, 9, 9)),
        "block": (mk.nn.InvertedResidual(8, 32, 8, stride=1), (2, 8, 5, 6)),
    }


CASES = list(_modules())


def _make(name):
    m, shape = _modules()[name]
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    return m.eval(), x


@pytest.mark.parametrize("name", CASES)
def test_plain_call_takes_the_fast_path(name, monkeypatch):
    m, x = _make(name)
    with torch.no_grad():
        ref = m.forward(x)
        calls = []
        monkeypatch.setattr(nn.Module, "__call__", lambda *a, **k: calls.append(1))
        out = m(x)
    assert not calls, "a plain eager call went through nn.Module.__call__"
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


@pytest.mark.parametrize("name", CASES)
def test_module_hooks_run(name):
    m, x = _make(name)
    seen = []
    h1 = m.register_forward_pre_hook(lambda mod, args: seen.append("pre"))
    h2 = m.register_forward_hook(lambda mod, args, out: out * 2)
    with torch.no_grad():
        ref = m.forward(x)
        out = m(x)
    assert seen == ["pre"]
    torch.testing.assert_close(out, ref * 2)
    h1.remove(), h2.remove()
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref)


@pytest.mark.parametrize("name", CASES)
def test_global_hooks_run(name):
    m, x = _make(name)
    seen = []
    handles = [nn.modules.module.register_module_forward_pre_hook(lambda mod, args: seen.append("pre")),
               nn.modules.module.register_module_forward_hook(lambda mod, args, out: seen.append("post"))]
    try:
        with torch.no_grad():
            m(x)
    finally:
        for h in handles:
            h.remove()
    assert "pre" in seen and "post" in seen
    assert not any(_fast_call._GLOBAL_HOOKS)


def test_backward_hook_runs():
    m, x = _make("depthwise")
    x.requires_grad_(True)
    grads = []
    m.register_full_backward_hook(lambda mod, gin, gout: grads.append(gout[0].shape))
    m.train()
    m(x).sum().backward()
    assert grads and grads[0] == (2, 8, 5, 6)


@pytest.mark.parametrize("name", ["depthwise", "pointwise"])
def test_keyword_argument_and_bad_arity(name):
    m, x = _make(name)
    with torch.no_grad():
        torch.testing.assert_close(m(x=x), m.forward(x))
        with pytest.raises(TypeError):
            m(x, x)
        with pytest.raises(TypeError):
            m()


def test_module_compile_is_honoured(monkeypatch):
    m, x = _make("depthwise")
    calls = []
    monkeypatch.setattr(m, "_compiled_call_impl", lambda *a: calls.append(a) or "compiled")
    assert m(x) == "compiled" and len(calls) == 1


def test_fx_symbolic_trace_sees_the_module_call():
    """fx patches nn.Module.__call__ while tracing; our __call__ must still reach the patched
    one (a leaf module is then recorded as call_module, else traced through into our op)."""
    m, x = _make("depthwise")
    seq = nn.Sequential(m, nn.ReLU())

    class LeafTracer(torch.fx.Tracer):
        def is_leaf_module(self, mod, qualname):
            return isinstance(mod, mk.nn.DepthwiseConv2d) or super().is_leaf_module(mod, qualname)

    graph = LeafTracer().trace(seq)
    assert [n.target for n in graph.nodes if n.op == "call_module"] == ["0", "1"]
    gm = torch.fx.symbolic_trace(seq)  # default tracer: through forward, into the registered op
    assert torch.ops.mobilekernels.dwconv2d.default in [n.target for n in gm.graph.nodes] or \
        torch.ops.mobilekernels.dwconv2d in [n.target for n in gm.graph.nodes]
    with torch.no_grad():
        torch.testing.assert_close(gm(x), seq(x))


def test_subclass_forward_and_instance_forward_are_honoured():
    class Doubled(mk.nn.DepthwiseConv2d):
        def forward(self, x):
            return super().forward(x) * 2

    class Plain(mk.nn.DepthwiseConv2d):  # no override: keeps the fast path
        pass

    m, x = _make("depthwise")
    d, p = Doubled(8, 8, 3, 1, 1, activation="relu6").eval(), Plain(8, 8, 3, 1, 1, activation="relu6").eval()
    d.load_state_dict(m.state_dict()), p.load_state_dict(m.state_dict())
    assert not Doubled._fast_call_ok and Plain._fast_call_ok and mk.nn.SEInvertedResidual._fast_call_ok
    with torch.no_grad():
        ref = m(x)
        torch.testing.assert_close(d(x), ref * 2)
        torch.testing.assert_close(p(x), ref)
        m.forward = lambda t: torch.zeros(1)
        assert torch.equal(m(x), torch.zeros(1))
