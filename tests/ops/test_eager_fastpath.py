"""The functional wrappers' eager fast path (``mobilekernels._eager``): a plain eager call skips
the dispatcher and gives bit for bit what the registered op gives; anything that must see the
op (dispatch / function modes, FlopCounterMode, make_fx, torch.compile, vmap, autograd) gets the
registered op; bad input raises the same errors either way; the cached validated calls cannot go
stale."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import mobilekernels as mk
from mobilekernels import _eager, ops, ops_block, qops
from recording_modes import RecordFunctions, RecordOps

CL = torch.channels_last
WRAPPER_MODULES = (ops, ops_block, qops)


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _fp32(seed=0, cin=5, chid=12, cout=5, h=7, w=6, n=2, layout=CL):
    g = _g(seed)
    x = torch.randn(n, cin, h, w, generator=g).contiguous(memory_format=layout)
    t = dict(x=x, ew=torch.randn(chid, cin, 1, 1, generator=g), eb=torch.randn(chid, generator=g),
             dw=torch.randn(chid, 1, 3, 3, generator=g), db=torch.randn(chid, generator=g),
             pw=torch.randn(cout, chid, 1, 1, generator=g), pb=torch.randn(cout, generator=g),
             f1w=torch.randn(3, chid, 1, 1, generator=g), f1b=torch.randn(3, generator=g),
             f2w=torch.randn(chid, 3, 1, 1, generator=g), f2b=torch.randn(chid, generator=g))
    t["y"] = torch.randn(n, chid, h, w, generator=g).contiguous(memory_format=layout)
    return t


def _q8(seed=0, cin=5, chid=12, cout=5, h=7, w=6, n=2, xdt=torch.uint8, expand=True):
    g = _g(seed)
    lo = 0 if xdt == torch.uint8 else -128
    x = torch.randint(lo, lo + 256, (n, cin, h, w), generator=g, dtype=torch.int64).to(xdt)
    wq = lambda *s: torch.randint(-128, 128, s, generator=g, dtype=torch.int64).to(torch.int8)  # noqa: E731
    epk = qops.qconv1x1_pack(wq(chid, cin, 1, 1), torch.rand(chid, generator=g) * 0.002 + 0.001) if expand else None
    hid = chid if expand else cin
    dpk = qops.qdwconv2d_pack(wq(hid, 1, 3, 3), 0.01, 0, torch.randint(-500, 500, (hid,), generator=g,
                                                                          dtype=torch.int32))
    ppk = qops.qconv1x1_pack(wq(cout, hid, 1, 1), 0.002)
    xzp = 128 + lo + 3
    packs = qops.QInvertedResidualPacks(epk, dpk, ppk, hid, cout, 3)
    return dict(x=x.contiguous(memory_format=CL), xzp=xzp, packs=packs, wq=wq, g=g)


def _cases():
    """name -> (wrapper, op name, f(seed) -> args, kwargs); fp32 raw-weight cases first."""
    c = {}
    c["dwconv2d"] = (ops.dwconv2d, "dwconv2d",
                     lambda t: ((t["y"], t["dw"], t["db"], 1, 1, 1, "relu6"), {}))
    c["dwconv2d_nchw_same"] = (ops.dwconv2d, "dwconv2d",
                                  lambda t: ((t["y"].contiguous(), t["dw"], None, 1, "same", 1, "hardswish"), {}))
    c["dwconv2d_packed"] = (ops.dwconv2d_packed, "dwconv2d_packed",
                            lambda t: ((t["y"], ops.dwconv2d_pack(t["dw"], t["db"]), 12, 3, 2, 1, 1, "relu"), {}))
    c["dwconv2d_pack"] = (ops.dwconv2d_pack, "dwconv2d_pack", lambda t: ((t["dw"], t["db"]), {}))
    c["conv1x1"] = (ops_block.conv1x1, "conv1x1", lambda t: ((t["x"], t["ew"], t["eb"], "relu6"), {}))
    c["conv1x1_pack"] = (ops_block.conv1x1_pack, "conv1x1_pack", lambda t: ((t["ew"], None), {}))
    c["conv1x1_packed"] = (ops_block.conv1x1_packed, "conv1x1_packed",
                           lambda t: ((t["x"], ops_block.conv1x1_pack(t["ew"], t["eb"]), 12, "hardswish"), {}))
    c["inverted_residual"] = (ops_block.inverted_residual, "inverted_residual",
                              lambda t: ((t["x"], t["ew"], t["eb"], t["dw"], t["db"], t["pw"], t["pb"]), {}))
    c["inverted_residual_packed"] = (
        ops_block.inverted_residual_packed, "inverted_residual_packed",
        lambda t: ((t["x"], ops_block.inverted_residual_pack(t["ew"], t["eb"], t["dw"], t["db"], t["pw"], t["pb"]), 2),
                   dict(activations=("hardswish", "relu", "none"))))
    c["se_inverted_residual"] = (
        ops_block.se_inverted_residual, "se_inverted_residual",
        lambda t: ((t["x"], t["ew"], t["eb"], t["dw"], t["db"], t["pw"], t["pb"], t["f1w"], t["f1b"], t["f2w"],
                    t["f2b"]), {}))
    c["qconv1x1"] = (qops.qconv1x1, "qconv1x1",
                     lambda q: ((q["x"], q["packs"].expand, 12, 0.05, q["xzp"], 0.04, 120, torch.int8, "relu"), {}))
    c["qconv1x1_pack"] = (qops.qconv1x1_pack, "qconv1x1_pack", lambda q: ((q["wq"](7, 5), 0.01, 3), {}))
    c["qdwconv2d"] = (qops.qdwconv2d, "qdwconv2d",
                      lambda q: ((q["x"], qops.qdwconv2d_pack(q["wq"](10, 1, 3, 3), 0.01), 10, 3, 0.05, q["xzp"],
                                  0.04, 100, 2, 1, 1, torch.uint8, "relu6"), {}))
    c["qdwconv2d_pack"] = (qops.qdwconv2d_pack, "qdwconv2d_pack",
                           lambda q: ((q["wq"](6, 1, 5, 5), torch.rand(6) + 0.1, torch.zeros(6, dtype=torch.int32)),
                                      {}))
    c["qinverted_residual"] = (qops.qinverted_residual, "qinverted_residual",
                               lambda q: ((q["x"], q["packs"], 0.05, q["xzp"], [(0.05, 120), (0.05, 125), (0.05, 130)]),
                                          dict(out_qparams=(0.06, 128))))
    c["qinverted_residual_lut_s2"] = (
        qops.qinverted_residual, "qinverted_residual",
        lambda q: ((q["x"], q["packs"], 0.05, q["xzp"], [(0.05, 120), (0.05, 125), (0.05, 130)], 2),
                   dict(activations=("none", "relu", "none"), luts=(torch.arange(256).to(torch.uint8).flip(0), None,
                                                                    None), lut_qparams=((0.05, 128), None, None))))
    c["qadd"] = (qops.qadd, "qadd", lambda q: ((q["x"], 0.05, q["xzp"], q["x"].flip(2), 0.03, 100, 0.06, 7), {}))
    c["qadd_int8"] = (qops.qadd, "qadd",
                      lambda q: ((q["x"], 0.05, q["xzp"], (q["x"] ^ 0x55).contiguous(), 0.03, 100, 0.06, -7,
                                  torch.int8), {}))
    return c


CASES = _cases()


def _inputs(name, seed=0):
    wrapper, op, make = CASES[name]
    return wrapper, op, make(_q8(seed) if wrapper.__module__.endswith("qops") else _fp32(seed))


@pytest.fixture
def registered_only(monkeypatch):
    """Turn the fast path off in every wrapper module: each call runs the registered op."""
    for m in WRAPPER_MODULES:
        monkeypatch.setattr(m, "eager", lambda *a, **k: False)


class Spy:
    """Wraps the wrapper modules' ``eager`` predicate and records what it answered."""

    def __init__(self, monkeypatch):
        self.answers = []
        real = _eager.eager

        def spy(*a, **k):
            r = real(*a, **k)
            self.answers.append(r)
            return r

        for m in WRAPPER_MODULES:
            monkeypatch.setattr(m, "eager", spy)


def _profiled_ops(fn):
    """mobilekernels:: events the profiler records at the dispatcher (it sets no mode)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return [e.name for e in prof.events() if e.name.startswith("mobilekernels::")]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad_on"])
def test_fast_path_equals_registered_op(name, grad, monkeypatch):
    wrapper, op, (args, kwargs) = _inputs(name)
    spy = Spy(monkeypatch)
    with torch.set_grad_enabled(grad):
        assert _profiled_ops(lambda: wrapper(*args, **kwargs)) == []
        fast = wrapper(*args, **kwargs)
        fast2 = wrapper(*args, **kwargs)  # a cached call, where the wrapper keeps one
    assert spy.answers and all(spy.answers), "the fast path was not taken for a plain eager call"
    for m in WRAPPER_MODULES:
        monkeypatch.setattr(m, "eager", lambda *a, **k: False)
    with torch.set_grad_enabled(grad):
        assert any(e == f"mobilekernels::{op}" for e in _profiled_ops(lambda: wrapper(*args, **kwargs)))
        ref = wrapper(*args, **kwargs)
    for out in (fast, fast2):
        assert out.dtype == ref.dtype and out.shape == ref.shape and out.stride() == ref.stride()
        assert torch.equal(out, ref)


def test_fast_path_skips_the_dispatcher(monkeypatch):
    """Checked independently of the spy: the profiler sees no mobilekernels op on the fast path."""
    wrapper, op, (args, kwargs) = _inputs("qinverted_residual")
    with torch.no_grad():
        assert _profiled_ops(lambda: wrapper(*args, **kwargs)) == []


@pytest.mark.parametrize("name", list(CASES))
def test_dispatch_mode_sees_the_op(name):
    wrapper, op, (args, kwargs) = _inputs(name)
    with torch.no_grad(), RecordOps() as mode:
        wrapper(*args, **kwargs)
    assert f"mobilekernels.{op}.default" in mode.names


@pytest.mark.parametrize("name", ["dwconv2d_packed", "conv1x1", "qinverted_residual", "qadd"])
def test_function_mode_sees_the_op(name):
    wrapper, op, (args, kwargs) = _inputs(name)
    with torch.no_grad(), RecordFunctions() as mode:
        wrapper(*args, **kwargs)
    assert any(f"mobilekernels.{op}" in s for s in mode.names)


@pytest.mark.parametrize("name", ["dwconv2d", "dwconv2d_packed", "conv1x1_packed", "inverted_residual_packed",
                                  "qconv1x1", "qinverted_residual", "qadd"])
def test_flop_counter_and_make_fx_see_the_op(name, monkeypatch):
    from torch.fx.experimental.proxy_tensor import make_fx

    wrapper, op, (args, kwargs) = _inputs(name)
    spy = Spy(monkeypatch)
    with torch.no_grad(), FlopCounterMode(display=False):
        out = wrapper(*args, **kwargs)
    assert spy.answers and not any(spy.answers)
    with torch.no_grad():
        assert torch.equal(out, wrapper(*args, **kwargs))
    tensors = [a for a in args if isinstance(a, torch.Tensor)]

    def f(*ts):
        it = iter(ts)
        return wrapper(*[next(it) if isinstance(a, torch.Tensor) else a for a in args], **kwargs)

    gm = make_fx(f)(*tensors)
    assert f"mobilekernels.{op}.default" in str(gm.graph)


class _Sub(torch.Tensor):
    pass


def test_predicate():
    x = torch.ones(2)
    with torch.no_grad():
        assert _eager.eager((x,), (None,))
        assert _eager.eager((torch.nn.Parameter(x),))  # a module's weight passed as is
        assert _eager.eager((x,), (torch.nn.Parameter(x),))
        assert not _eager.eager((x.as_subclass(_Sub),))  # other subclasses: the registered op
        assert not _eager.eager((x,), (x.as_subclass(_Sub),))
        assert not _eager.eager((None,))  # a missing required tensor: the registered op reports it
        assert _eager.eager((x.requires_grad_(),))  # grad disabled: no autograd needed
        with torch.device("cpu"):  # a torch-function mode
            assert not _eager.eager((x,))
        with FlopCounterMode(display=False):
            assert not _eager.eager((x,))
        from torch._subclasses.fake_tensor import FakeTensorMode
        with FakeTensorMode():
            assert not _eager.eager((x,))
        seen = []
        torch.func.vmap(lambda t: (seen.append(_eager.eager((t,))), t)[1])(torch.ones(3, 2))
        assert seen == [False]
    y = torch.ones(2)
    assert _eager.eager((y,))
    assert not _eager.eager((y.requires_grad_(),))  # grad on and needed
    assert not _eager.eager((torch.ones(1),), (y,))
    assert not _eager.eager((torch.nn.Parameter(torch.ones(1)),))  # grad on, a trainable Parameter


@pytest.mark.parametrize("name", ["dwconv2d_packed", "conv1x1_packed", "inverted_residual_packed", "qconv1x1",
                                  "qinverted_residual", "qadd"])
def test_jit_trace_records_the_op(name):
    import warnings

    wrapper, op, (args, kwargs) = _inputs(name)
    x = args[0]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(lambda x: wrapper(x, *args[1:], **kwargs), (x,), check_trace=False)
        assert torch.equal(traced(x), wrapper(*args, **kwargs))
    assert f"mobilekernels::{op}" in str(traced.graph)


def test_compile_records_the_op():
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(str(gm.graph))
        return gm.forward

    t = _fp32()
    pk = ops.dwconv2d_pack(t["dw"], t["db"])
    f = torch.compile(lambda y: ops.dwconv2d_packed(y, pk, 12, 3, 1, 1, 1, "relu6"), backend=backend, fullgraph=True)
    with torch.no_grad():
        out = f(t["y"])
        assert torch.equal(out, ops.dwconv2d_packed(t["y"], pk, 12, 3, 1, 1, 1, "relu6"))
    assert graphs and "mobilekernels.dwconv2d_packed" in graphs[0]


@pytest.mark.parametrize("mode", ["recording", "flops"])
def test_a_mode_ignoring_fast_path_is_caught(mode, monkeypatch):
    """The tests above can fail: with the dispatch-mode check broken, a mode misses the op."""
    monkeypatch.setattr(_eager, "_dispatch_modes", lambda: 0)
    wrapper, op, (args, kwargs) = _inputs("qconv1x1")
    spy = Spy(monkeypatch)
    with torch.no_grad(), (RecordOps() if mode == "recording" else FlopCounterMode(display=False)) as m:
        wrapper(*args, **kwargs)
    if mode == "recording":
        assert f"mobilekernels.{op}.default" not in m.names
    assert all(spy.answers)


@pytest.mark.parametrize("wrapper,make_ref", [
    (lambda t, x: ops.dwconv2d(x, t["dw"], t["db"], 1, 1, 1, "relu6"),
     lambda t, x: F.relu6(F.conv2d(x, t["dw"], t["db"], 1, 1, 1, 12))),
    (lambda t, x: ops_block.conv1x1(x, t["pw"], t["pb"], "hardswish"),
     lambda t, x: F.hardswish(F.conv2d(x, t["pw"], t["pb"])))])
def test_gradients_flow(wrapper, make_ref):
    t = _fp32()
    grads = []
    for fn in (wrapper, make_ref):
        x = t["y"].clone().requires_grad_()
        w = [t[k].clone().requires_grad_() for k in ("dw", "db", "pw", "pb")]
        tt = dict(t, dw=w[0], db=w[1], pw=w[2], pb=w[3])
        out = fn(tt, x)
        assert out.requires_grad and out.grad_fn is not None
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        grads.append([x.grad] + [p.grad for p in w])
    for a, b in zip(*grads):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _bad_inputs():
    """(name, f(inputs) -> (args, kwargs)) of calls every path must reject the same way."""
    t, q = _fp32(), _q8()
    pk, qpk = ops.dwconv2d_pack(t["dw"], t["db"]), q["packs"]
    ppk = ops_block.conv1x1_pack(t["ew"], t["eb"])
    irp = ops_block.inverted_residual_pack(t["ew"], t["eb"], t["dw"], t["db"], t["pw"], t["pb"])
    QP = [(0.05, 120), (0.05, 125), (0.05, 130)]
    return [
        (ops.dwconv2d, (t["y"].double(), t["dw"], t["db"]), {}),
        (ops.dwconv2d, (t["y"], t["dw"][:5], t["db"]), {}),
        (ops.dwconv2d, (t["y"], t["dw"], t["db"], 1, 1, 1, "gelu"), {}),
        (ops.dwconv2d, (t["y"], t["dw"], t["db"][:3]), {}),
        (ops.dwconv2d_packed, (t["y"], pk, 12, 3, 1, 1, 1, "gelu"), {}),
        (ops.dwconv2d_packed, (t["y"], pk, 0, 3, 1, 1, 1), {}),
        (ops.dwconv2d_packed, (t["y"], pk[:-1], 12, 3, 1, 1, 1), {}),
        (ops.dwconv2d_packed, (t["y"], pk.double(), 12, 3), {}),
        (ops.dwconv2d_packed, (t["y"][0], pk, 12, 3), {}),
        (ops.dwconv2d_packed, (t["y"], pk, 12.0, 3), {}),
        (ops.dwconv2d_packed, (t["y"], pk, 12, 3, 1, 1, 1, None), {}),
        (ops.dwconv2d_packed, (None, pk, 12, 3), {}),
        (ops.dwconv2d_packed, (t["y"], pk, 13, 3), {}),
        (ops.dwconv2d_packed, (t["y"][:, :, :2, :2], pk, 12, 5, 1, 0), {}),
        (ops.dwconv2d_pack, (t["dw"].double(), None), {}),
        (ops_block.conv1x1, (t["x"], t["ew"][:, :3], None), {}),
        (ops_block.conv1x1, (t["x"], t["ew"], None, 3), {}),
        (ops_block.conv1x1_packed, (t["x"], ppk, 13), {}),
        (ops_block.conv1x1_packed, (t["x"], ppk, 0), {}),
        (ops_block.conv1x1_packed, (t["x"][:, :4], ppk, 12), {}),
        (ops_block.conv1x1_pack, (t["ew"][0], None), {}),
        (ops_block.inverted_residual, (t["x"], t["ew"], t["eb"], t["dw"], t["db"], t["pw"][:, :4], t["pb"]), {}),
        (ops_block.inverted_residual, (t["x"], t["ew"], t["eb"], t["dw"], t["db"], t["pw"], t["pb"], 2),
         dict(residual=True)),
        (ops_block.inverted_residual_packed, (t["x"], irp, 1, None, ("relu6", "gelu", "none")), {}),
        (ops_block.inverted_residual_packed, (t["x"], irp), dict(band_rows=-1)),
        (ops_block.inverted_residual_packed, (t["x"][:, :3], irp), {}),
        (ops_block.inverted_residual_packed, (t["x"], irp._replace(hidden_channels=11)), {}),
        (ops_block.se_inverted_residual, (t["x"], t["ew"], t["eb"], t["dw"], t["db"], t["pw"], t["pb"], t["f1w"],
                                          t["f1b"], t["f2w"][:5], t["f2b"]), {}),
        (ops_block.se_inverted_residual, (t["x"], t["ew"], t["eb"], t["dw"], t["db"], t["pw"], t["pb"], t["f1w"],
                                          t["f1b"], t["f2w"], t["f2b"]), dict(gate="tanh")),
        (qops.qconv1x1, (q["x"], qpk.expand, 12, 0.05, 300, 0.04, 120), {}),
        (qops.qconv1x1, (q["x"], qpk.expand, 12, 0.05, True, 0.04, 120), {}, "valid"),  # the schema makes it 1
        (qops.qconv1x1, (q["x"], qpk.expand, 13, 0.05, 128, 0.04, 120), {}),
        (qops.qconv1x1, (q["x"].float(), qpk.expand, 12, 0.05, 128, 0.04, 120), {}),
        (qops.qconv1x1, (q["x"], qpk.expand, 12, float("nan"), 128, 0.04, 120), {}),
        (qops.qconv1x1, (q["x"], qpk.expand[:-1], 12, 0.05, 128, 0.04, 120), {}),
        (qops.qdwconv2d, (q["x"], qpk.dw, 12, 3, 0.05, 128, 0.04, 100), {}),
        (qops.qdwconv2d, (q["x"], qpk.dw, 5, 3, 0.05, -1, 0.04, 100), {}),
        (qops.qdwconv2d_pack, (q["x"], 0.01), {}),
        (qops.qconv1x1_pack, (q["wq"](3, 4), -0.01), {}),
        (qops.qinverted_residual, (q["x"], qpk, 0.05, 128, QP), {}),  # residual without out_qparams
        (qops.qinverted_residual, (q["x"], qpk, 0.05, 128, QP), dict(out_qparams=(0.06, 300))),
        (qops.qinverted_residual, (q["x"], qpk, 0.05, 400, QP), dict(out_qparams=(0.06, 3))),
        (qops.qinverted_residual, (q["x"][:, :4], qpk, 0.05, 128, QP), dict(out_qparams=(0.06, 3))),
        (qops.qinverted_residual, (q["x"].to(torch.int8), qpk, 0.05, 128, QP), dict(out_qparams=(0.06, 3))),
        (qops.qinverted_residual, (q["x"], qpk, 0.05, 128, QP), dict(out_qparams=(0.06, 3), band_rows=-2)),
        (qops.qinverted_residual, (q["x"], qpk._replace(dw=qpk.project), 0.05, 128, QP), dict(out_qparams=(0.06, 3))),
        (qops.qinverted_residual, (q["x"], qpk, 0.05, 128, [(0.05, 1.5), (0.05, 125), (0.05, 130)]),
         dict(out_qparams=(0.06, 3))),
        (qops.qadd, (q["x"], 0.05, 128, q["x"][:, :4], 0.05, 128, 0.1, 0), {}),
        # odd but valid: types the op schema converts (the wrappers then take the registered op)
        (ops_block.inverted_residual, (t["x"], t["ew"], t["eb"], t["dw"], t["db"], t["pw"], t["pb"]),
         dict(residual=1), "valid"),
        (qops.qconv1x1, (q["x"], qpk.expand, 12, 0.05, np.int64(128), 0.04, 120), {}, "valid"),
        (qops.qadd, (q["x"], 1, 128, q["x"], 0.05, np.int32(128), 0.1, 0), {}, "valid"),
        (qops.qinverted_residual, (q["x"], qpk, 0.05, np.int16(128), QP), dict(out_qparams=(0.06, 3)), "valid"),
        (ops.dwconv2d_packed, (t["y"], pk, np.int64(12), 3, 1, 1, 1, "relu"), {}, "valid"),
        (qops.qadd, (q["x"], 0.05, 128, q["x"].float(), 0.05, 128, 0.1, 0), {}),
        (qops.qadd, (q["x"], 0.05, 128, q["x"], 0.05, 128, 0.1, 0, torch.float32), {}),
        (qops.qadd, (q["x"], 0.05, 128, q["x"], 0.05, 128, 0.1, 200, torch.int8), {}),
        (qops.qadd, (q["x"], 0.05, 128, q["x"].to(torch.int8), 0.05, 128, 0.1, 0), {}),
        (qops.qadd, (q["x"], 0.05, 128, q["x"], 0.0, 128, 0.1, 0), {}),
        (qops.qadd, (q["x"], 0.05, 128, q["x"], 1e30, 128, 1e-30, 0), {}),
        (qops.qadd, (q["x"][0], 0.05, 128, q["x"][0], 0.05, 128, 0.1, 0), {}),
        (qops.qadd, (q["x"], 0.05, 128.0, q["x"], 0.05, 128, 0.1, 0), {}),
        (qops.qadd, (q["x"], "0.05", 128, q["x"], 0.05, 128, 0.1, 0), {}),
    ]


BAD = _bad_inputs()


def _outcome(fn, args, kwargs):
    """The error (type, message), or the result of a call that an odd argument did not break."""
    try:
        out = fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 (any error: it must be the same on both paths)
        return type(e), str(e)
    return "ok", out


def _same(a, b) -> bool:
    if a[0] == "ok" and b[0] == "ok":
        return a[1].dtype == b[1].dtype and torch.equal(a[1], b[1])
    return a == b


@pytest.mark.parametrize("i", range(len(BAD)))
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad_on"])
def test_bad_input_same_error(i, grad, monkeypatch):
    fn, args, kwargs, *valid = BAD[i]
    with torch.set_grad_enabled(grad):
        fast = _outcome(fn, args, kwargs)
        fast_again = _outcome(fn, args, kwargs)
        for m in WRAPPER_MODULES:
            monkeypatch.setattr(m, "eager", lambda *a, **k: False)
        registered = _outcome(fn, args, kwargs)
    assert _same(fast, registered) and _same(fast_again, registered)
    assert (registered[0] == "ok") == bool(valid), registered


def test_cached_calls_do_not_go_stale():
    """Same shapes and scalars, different tensor facts: each call is validated as new."""
    t = _fp32()
    pk = ops.dwconv2d_pack(t["dw"], t["db"])
    with torch.no_grad():
        ops.dwconv2d_packed(t["y"], pk, 12, 3, 1, 1)
        with pytest.raises(TypeError, match="x must be torch.float32"):
            ops.dwconv2d_packed(t["y"].double(), pk, 12, 3, 1, 1)
        with pytest.raises(ValueError):  # a pack of another kernel size: C++ checks the size
            ops.dwconv2d_packed(t["y"], ops.dwconv2d_pack(t["dw"][:, :, :2, :2], None), 12, 3, 1, 1)
        nchw = t["y"].contiguous()
        assert torch.equal(ops.dwconv2d_packed(nchw, pk, 12, 3, 1, 1), ops.dwconv2d_packed(t["y"], pk, 12, 3, 1, 1))
    q = _q8(cin=6)
    qp = [(0.05, 120), (0.05, 125), (0.05, 130)]
    with torch.no_grad():
        out = qops.qinverted_residual(q["x"], q["packs"], 0.05, q["xzp"], qp, out_qparams=(0.06, 128))
        # another expand pack of the same byte size (Cin 5 and 6 pad alike) but made for 5 inputs
        other = qops.qconv1x1_pack(q["wq"](12, 5, 1, 1), 0.002)
        assert other.numel() == q["packs"].expand.numel()
        with pytest.raises(ValueError, match="channels"):
            qops.qinverted_residual(q["x"], q["packs"]._replace(expand=other), 0.05, q["xzp"], qp,
                                    out_qparams=(0.06, 128))
        x8 = (q["x"].to(torch.int16) - 128).to(torch.int8)
        y8 = qops.qinverted_residual(x8.contiguous(memory_format=CL), q["packs"], 0.05, q["xzp"] - 128, qp,
                                     out_qparams=(0.06, 128))
        with pytest.raises(TypeError):
            qops.qinverted_residual(q["x"].float(), q["packs"], 0.05, q["xzp"], qp, out_qparams=(0.06, 128))
    for m in WRAPPER_MODULES:
        m_eager = m.eager
        m.eager = lambda *a, **k: False
    try:
        ref = qops.qinverted_residual(q["x"], q["packs"], 0.05, q["xzp"], qp, out_qparams=(0.06, 128))
        ref8 = qops.qinverted_residual(x8.contiguous(memory_format=CL), q["packs"], 0.05, q["xzp"] - 128, qp,
                                       out_qparams=(0.06, 128))
    finally:
        for m in WRAPPER_MODULES:
            m.eager = m_eager
    assert torch.equal(out, ref) and torch.equal(y8, ref8)


def test_cache_is_bounded():
    from mobilekernels import _ops, _pwops, _qblockops, _qops

    t = _fp32()
    pk = ops.dwconv2d_pack(t["dw"], t["db"])
    with torch.no_grad():
        for h in range(3, 3 + _eager.MAX_CALLS + 20):
            ops.dwconv2d_packed(torch.zeros(1, 12, h, 3), pk, 12, 3, 1, 1)
    assert 0 < len(_ops._EAGER_CALLS) <= _eager.MAX_CALLS
    for cache in (_qblockops._EAGER_CALLS, _pwops._EAGER_IR_CALLS, _pwops._EAGER_PW_CALLS, _qops._EAGER_CALLS):
        assert len(cache) <= _eager.MAX_CALLS


def test_module_forward_unchanged():
    """nn modules that import the helpers (DwPlan, _ir_args, _check_x) still match the wrappers."""
    t = _fp32()
    conv = torch.nn.Conv2d(12, 12, 3, 1, 1, groups=12)
    m = mk.nn.DepthwiseConv2d.from_conv(conv, activation="relu6")
    with torch.no_grad():
        ref = ops.dwconv2d(t["y"], conv.weight.detach(), conv.bias.detach(), 1, 1, 1, "relu6")
        assert torch.equal(m(t["y"]), ref)
