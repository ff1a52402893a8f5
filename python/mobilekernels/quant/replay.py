"""A quantized network replayed as a flat list of C++ calls.

The step-by-step int8 path (``QuantizedModel.steps``, each ``forward_int``) spends a third of a
MobileNetV2 forward in Python and torch glue at batch 1: per-step argument checks, cache-key
building, ``torch.empty`` of every output, torch ops for the input quantization, pooling and
adds, and the garbage collector those objects wake. A :class:`Plan` is built once per (input
shape, thread count, settings) from a validated step-by-step run: each step becomes one or more
calls of the same C++ functions the steps call (``_C.q8_gemm``, ``_C.q8_dwconv``,
``_C.q8_inverted_residual``, the table kernel ``_C.q8_lut``) plus the uint8 glue of
``ops/q8_codec_op.h`` (quantize, dequantize, global average pool, im2col, the int8 residual add,
the SE / ECA gate), with every argument, pointers included, fixed. Activations live in three
byte buffers owned by the plan (two ping-pong, one for a tensor pinned across a block); a run is
the quantization of the input, ``fn(*args)`` for each call, and the dequantization into a new
float tensor. Steps with no C++ form (float fallbacks, CBAM) run through their own
``forward_int`` between plan segments.

Bit-exact with the step-by-step path: the calls are the same kernels with the same arguments and
the glue functions reproduce the torch expressions they replace (tests/quant/test_replay.py).
A plan is rebuilt when the input shape or dtype, the thread count, a setting (``set_isa``, a
block's ``fuse``) or any buffer it reads (replaced or modified in place) changes.
"""
from __future__ import annotations

import operator
import threading
import weakref
from typing import Optional

import torch

from .. import _C, _chain
from .modules import QECA, QSE, QAvgPool, QBlock, QConv, QFlatten, QLut

__all__ = ["Plan", "build_plan"]


class _Unplannable(Exception):
    """A step with no C++ form: it runs through its own forward_int."""


def _nhwc_view(buf: torch.Tensor, shape) -> torch.Tensor:
    """[N, C, H, W] channels_last uint8 view of the start of a flat byte buffer."""
    n, c, h, w = shape
    return buf[: n * c * h * w].view(n, h, w, c).permute(0, 3, 1, 2)


_BIG = 3  # activation buffers: the current one, a pinned block input / gated tensor, a free one


class _Builder:
    """Collects the C++ calls of one segment. Activations live in ``_BIG`` big byte buffers
    (placeholders ``("big", i)`` until the segment is closed and the buffers exist): each call
    reads ``cur`` and writes the lowest-numbered buffer that is neither ``cur`` nor pinned (a
    residual block pins its input, an attention gate the tensor it scales), so consecutive calls
    ping-pong between two buffers that stay in cache. The small vectors of an attention gate get
    buffers of their own (``("small", i)``)."""

    def __init__(self, nt: int, in_bytes: int):
        self.nt = nt
        self.calls: list = []                  # (fn, args)
        self.big = [in_bytes] + [0] * (_BIG - 1)  # bytes each big buffer must hold
        self.small: list[int] = []
        self.refs: list = []                   # tensors whose pointers the calls hold
        self.cur = ("big", 0)
        self.pinned: set = set()

    def mark(self):
        return len(self.calls), list(self.big), len(self.small), len(self.refs), self.cur, set(self.pinned)

    def reset(self, mark):
        calls, self.big, small, refs, self.cur, self.pinned = mark
        del self.calls[calls:], self.small[small:], self.refs[refs:]

    def big_dst(self, nbytes: int):
        i = next(i for i in range(_BIG) if ("big", i) != self.cur and ("big", i) not in self.pinned)
        self.big[i] = max(self.big[i], nbytes)
        return ("big", i)

    def small_dst(self, nbytes: int):
        self.small.append(nbytes)
        return ("small", len(self.small) - 1)

    def dst(self, nbytes: int):
        """Where the next activation goes: small buffers stay small (inside a gate)."""
        return self.small_dst(nbytes) if self.cur[0] == "small" else self.big_dst(nbytes)

    def emit(self, fn, *args, to):
        self.calls.append((fn, args))
        self.cur = to

    def keep(self, *tensors):
        self.refs.extend(t for t in tensors if t is not None)

    def close(self, in_shape, out_shape):
        bufs = [torch.zeros(max(n, 1), dtype=torch.uint8) for n in self.big]  # touched now, not in a run
        small = [torch.zeros(max(n, 1), dtype=torch.uint8) for n in self.small]
        ptrs = {("big", i): t.data_ptr() for i, t in enumerate(bufs)}
        ptrs.update({("small", i): t.data_ptr() for i, t in enumerate(small)})
        calls = [(fn, tuple(ptrs[a] if type(a) is tuple else a for a in args)) for fn, args in self.calls]
        return _Segment(calls, bufs + small, bufs[self.cur[1]] if self.cur[0] == "big" else small[self.cur[1]],
                        tuple(in_shape), tuple(out_shape), self.refs)


class _Segment:
    """C++ calls from big buffer 0 (``bufs[0]``) to ``out``."""

    def __init__(self, calls, bufs, out, in_shape, out_shape, refs):
        self.calls, self.bufs, self.out = calls, bufs, out
        self.in_shape, self.out_shape, self.refs = in_shape, out_shape, refs

    def run(self):
        for fn, args in self.calls:
            fn(*args)
        return _nhwc_view(self.out, self.out_shape)


def _numel(shape) -> int:
    n, c, h, w = shape
    return n * c * h * w


def _emit_conv(b: _Builder, st: QConv, shape, s, z):
    ys, yz = (float(st.mid_scale), int(st.mid_zp)) if st.post is not None else st.out_qparams()
    b.keep(st.packed)
    n = shape[0]
    if st.kind == "im2col":
        (kh, kw), (sh, sw), (dh, dw) = st.kernel, st.stride, st.dilation
        t, bt, l, r = st.pads
        _, c, h, w = shape
        oh = _C.q8_im2col_out_size(h, kh, sh, dh, t, bt)
        ow = _C.q8_im2col_out_size(w, kw, sw, dw, l, r)
        shape = (n, c * kh * kw, oh, ow)
        src, to = b.cur, b.dst(_numel(shape))
        b.emit(_C.q8_im2col, src, n, h, w, c, kh, kw, sh, sw, dh, dw, t, bt, l, r, int(z), to, b.nt, to=to)
    like = torch.empty(shape, dtype=torch.uint8, memory_format=torch.channels_last)
    fn, out_shape, mid = st._call_template(like, s, z, ys, yz)
    src, to = b.cur, b.dst(_numel(out_shape))
    b.emit(fn, st.packed.data_ptr(), st.packed.numel(), src, *mid, to, b.nt, to=to)
    if st.post is not None:  # the activation's lookup table, in the conv call's epilogue (its lut)
        b.keep(st.lut)
        b.calls[-1] = (fn, b.calls[-1][1] + (st.lut.data_ptr(),))
    return tuple(out_shape), *st.out_qparams()


def _emit_gate(b: _Builder, st, convs, shape, s, z):
    """SE / ECA: pool -> gate convs (+ LUTs) into small buffers, then x * gate from the pinned x."""
    x = b.cur
    b.pinned.add(x)
    n, c, h, w = shape
    gshape, gs, gz = _emit_step(b, st.pool, shape, s, z, small=True)
    for conv in convs:
        gshape, gs, gz = _emit_step(b, conv, gshape, gs, gz)
    if tuple(gshape) != (n, c, 1, 1):
        raise _Unplannable
    b.pinned.discard(x)
    ys, yz = st.out_qparams()
    g = b.cur
    b.cur = x
    to = b.big_dst(_numel(shape))
    b.emit(_C.q8_mul_channel_gate, x, n, h * w, c, s, z, g, gs, gz, ys, yz, to, b.nt, to=to)
    return shape, ys, yz


def _emit_step(b: _Builder, st, shape, s, z, small: bool = False):
    """Append the calls of one step; returns (shape, s, z) after it or raises _Unplannable."""
    n = shape[0]
    if isinstance(st, QFlatten):
        return shape, s, z
    if isinstance(st, QLut):
        if b.cur in b.pinned:
            raise _Unplannable  # the table works in place; a pinned input is read again later
        b.keep(st.lut)
        b.emit(_C.q8_lut, st.lut.data_ptr(), b.cur, _numel(shape), to=b.cur)
        return shape, *st.out_qparams()
    if isinstance(st, QAvgPool):
        _, c, h, w = shape
        ys, yz = st.out_qparams()
        src, to = b.cur, (b.small_dst(n * c) if small else b.dst(n * c))
        b.emit(_C.q8_global_avgpool, src, n, h * w, c, s, z, ys, yz, to, b.nt, to=to)
        return (n, c, 1, 1), ys, yz
    if isinstance(st, QSE):
        return _emit_gate(b, st, (st.fc1, st.fc2), shape, s, z)
    if isinstance(st, QECA):
        return _emit_gate(b, st, (st.gate,), shape, s, z)
    if isinstance(st, QBlock):
        fused = st._fused(s, z)
        if fused is not None:
            like = torch.empty(shape, dtype=torch.uint8, memory_format=torch.channels_last)
            out_shape, ptrs, args = fused._prepare_call(like, s, z, 0)
            b.keep(fused.expand_packed, fused.dw_packed, fused.project_packed)
            src, to = b.cur, b.dst(_numel(out_shape))
            b.emit(_C.q8_inverted_residual, src, *ptrs, to, *args, b.nt, to=to)
            return tuple(out_shape), *fused.output_qparams()
        x, xs, xz = b.cur, s, z
        if st.residual:
            b.pinned.add(x)  # the add reads the block input after the body
        y_shape = shape
        for sub in st.steps:
            y_shape, s, z = _emit_step(b, sub, y_shape, s, z)
        if not st.residual:
            return y_shape, s, z
        b.pinned.discard(x)
        os_, oz = st.out_qparams()
        y = b.cur
        to = b.big_dst(_numel(shape))
        b.emit(_C.q8_add, x, xs, xz, y, s, z, os_, oz, to, _numel(shape), False, False, False, to=to)
        return shape, os_, oz
    if isinstance(st, QConv) and st.kind in ("pointwise", "depthwise", "im2col"):
        return _emit_conv(b, st, shape, s, z)
    raise _Unplannable


def _state_tensors(model) -> list:
    """Every buffer the int8 path reads (packs, tables, qparams); the float and unpacked weights
    are not read by it."""
    skip = {"weight_f", "weight", "w_scale", "bias"}
    return [t for name, t in model.named_buffers() if name.rsplit(".", 1)[-1] not in skip]


def _version_owners(tensors) -> list:
    """One tensor per distinct version counter among ``tensors``: a view shares its base's
    counter (quantize() keeps the scalar qparams as views of one flat tensor per dtype, so ~400
    scalars of V3-Large are 2 checks). Inference tensors have no counter (not tracked, as before)."""
    seen, owners = set(), []
    for t in tensors:
        if t.is_inference():
            continue
        o = t if t._base is None else t._base
        if id(o) not in seen:
            seen.add(id(o))
            owners.append(o)
    return owners


# Module structure epoch: torch's global buffer / module registration hooks (a buffer or
# submodule assigned, load_state_dict replacing a pack, a step swapped) bump it. Installed with the
# first plan; one integer increment per assignment, so a forward checks one int instead of walking
# the module tree. Only assignments on our modules (or subclasses of them) and on the torch
# containers of planned models count: a quantized model holds nothing else, and an unrelated model
# built in the same process (e.g. a module made inside some other forward) must not force a plan
# rebuild per call.
_structure = [0]
_hooks: list = []
_hooks_lock = threading.Lock()
_CONTAINERS = (torch.nn.ModuleList, torch.nn.Sequential, torch.nn.ModuleDict)
_watched = weakref.WeakSet()  # the containers inside planned models
_ours: dict = {}  # module type -> whether it is (derived from) one of ours


def _is_ours(t: type) -> bool:
    got = _ours.get(t)
    if got is None:
        got = _ours[t] = any(c.__module__.startswith("mobilekernels.") for c in t.__mro__)
    return got


def _bump(module=None, *_) -> None:
    if module is None or _is_ours(type(module)) or module in _watched:
        _structure[0] += 1


def _watch_structure() -> None:
    with _hooks_lock:
        if not _hooks:
            mm = torch.nn.modules.module
            _hooks.append(mm.register_module_buffer_registration_hook(_bump))
            _hooks.append(mm.register_module_module_registration_hook(_bump))


def structure_changed() -> None:
    """Invalidate every plan (for changes the hooks do not see, e.g. ``Module._apply``)."""
    _bump()


_VERSION = operator.attrgetter("_version")
_PTR = torch.Tensor.data_ptr
_FUSE = operator.attrgetter("fuse")


class Plan:
    """Segments of replayed C++ calls and Python steps, built from a validated step-by-step run:
    ``record[i]`` is ``(shape, scale, zero_point)`` after step ``i``.

    Current while the input shape, the thread count, the settings epoch (``set_isa``, module
    settings), the module structure epoch, every block's ``fuse`` and the version counter and
    data pointer of every buffer it read (one check per shared counter) are unchanged: ~20 us on
    V3-Large (95 counters) against ~500 us for the module walk and per-buffer checks before."""

    def __init__(self, model, x, record):
        _watch_structure()
        self.lock = threading.Lock()
        self.in_shape = tuple(x.shape)
        nt = self.threads = torch.get_num_threads()
        self.blocks = [m for m in model.modules() if isinstance(m, QBlock)]
        self.fuse = tuple(map(_FUSE, self.blocks))
        self.tensors = _state_tensors(model)  # held: their ids and pointers stay valid
        self.in_qparams = model.in_qparams()
        self.out_qparams = record[-1][1:]
        self.parts: list = []  # _Segment | (step, in_scale, in_zp)
        shape, (s, z) = self.in_shape, self.in_qparams
        b, b_in = _Builder(nt, _numel(shape)), shape
        for st, after in zip(model.steps, record):
            mark = b.mark()
            try:
                got = _emit_step(b, st, shape, s, z)
            except _Unplannable:
                b.reset(mark)
                if b.calls or not self.parts:
                    self.parts.append(b.close(b_in, shape))
                self.parts.append((st, s, z))
                shape, s, z = after
                b, b_in = _Builder(nt, _numel(shape)), shape
                continue
            if (tuple(got[0]), *got[1:]) != (tuple(after[0]), *after[1:]):
                raise RuntimeError(f"plan of step {st.name} disagrees with its run: {got} vs {after}")
            shape, s, z = got
        if b.calls or not self.parts:
            self.parts.append(b.close(b_in, shape))
        self.out_shape = tuple(shape)
        self.calls = sum(len(p.calls) for p in self.parts if isinstance(p, _Segment))
        self.python_steps = [p[0].name for p in self.parts if not isinstance(p, _Segment)]
        # state last: building may have registered modules (fused-block caches)
        self.owners = _version_owners(self.tensors)
        self.versions = tuple(map(_VERSION, self.owners))
        self.ptrs = tuple(map(_PTR, self.owners))
        self.config = _chain.config_epoch()
        _watched.update(m for m in model.modules() if isinstance(m, _CONTAINERS))
        self.structure = _structure[0]

    def current(self, x: torch.Tensor) -> bool:
        """Whether this plan still computes what the steps would for ``x``."""
        return (x.shape == self.in_shape and torch.get_num_threads() == self.threads
                and _chain.config_epoch() == self.config and _structure[0] == self.structure
                and tuple(map(_FUSE, self.blocks)) == self.fuse
                and tuple(map(_VERSION, self.owners)) == self.versions
                and tuple(map(_PTR, self.owners)) == self.ptrs)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """float input [N, C, H, W] (any strides) -> float output, channels_last."""
        if x.dtype != torch.float32:
            x = x.float()
        with self.lock:
            q = None
            for i, part in enumerate(self.parts):
                if isinstance(part, _Segment):
                    if i == 0:
                        n, c, h, w = part.in_shape
                        _C.q8_quantize_f32(x.data_ptr(), n, c, h, w, *x.stride(), *self.in_qparams,
                                           part.bufs[0].data_ptr(), self.threads)
                    else:
                        _nhwc_view(part.bufs[0], part.in_shape).copy_(q)
                    q = part.run()
                else:
                    st, s, z = part
                    q, _, _ = st.forward_int(q, s, z)
            y = torch.empty(q.shape, dtype=torch.float32, memory_format=torch.channels_last)
            q = q.contiguous(memory_format=torch.channels_last)
            _C.q8_dequantize_f32(q.data_ptr(), q.numel(), *self.out_qparams, y.data_ptr())
        return y


def build_plan(model, x: torch.Tensor, record) -> Optional[Plan]:
    """A plan for inputs shaped like ``x``, or None when it would not save anything (every step
    runs in Python)."""
    plan = Plan(model, x, record)
    return plan if plan.calls else None
