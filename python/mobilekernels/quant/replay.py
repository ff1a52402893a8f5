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

import threading
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
        b.emit(_C.q8_im2col, src, n, h, w, c, kh, kw, sh, sw, dh, dw, t, bt, l, r, int(z), to, to=to)
    like = torch.empty(shape, dtype=torch.uint8, memory_format=torch.channels_last)
    fn, out_shape, mid = st._call_template(like, s, z, ys, yz)
    src, to = b.cur, b.dst(_numel(out_shape))
    b.emit(fn, st.packed.data_ptr(), st.packed.numel(), src, *mid, to, b.nt, to=to)
    if st.post is not None:  # the activation's lookup table, in place on the conv output
        b.keep(st.lut)
        b.emit(_C.q8_lut, st.lut.data_ptr(), to, _numel(out_shape), to=to)
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
    b.emit(_C.q8_mul_channel_gate, x, n, h * w, c, s, z, g, gs, gz, ys, yz, to, to=to)
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
        b.emit(_C.q8_global_avgpool, src, n, h * w, c, s, z, ys, yz, to, to=to)
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


def _tensor_state(ts) -> tuple:
    return tuple(t.data_ptr() for t in ts), tuple(0 if t.is_inference() else t._version for t in ts)


def plan_key(model, x: torch.Tensor) -> tuple:
    """What a plan depends on besides the buffers (checked separately, see Plan.current)."""
    fuse = tuple(m.fuse for m in model.modules() if isinstance(m, QBlock))
    return (tuple(x.shape), torch.get_num_threads(), _chain.config_epoch(), fuse)


class Plan:
    """Segments of replayed C++ calls and Python steps, built from a validated step-by-step run:
    ``record[i]`` is ``(shape, scale, zero_point)`` after step ``i``."""

    def __init__(self, model, key, record):
        self.key = key
        self.lock = threading.Lock()
        self.tensors = _state_tensors(model)
        self.state = _tensor_state(self.tensors)
        self.in_shape = key[0]
        self.in_qparams = model.in_qparams()
        self.out_qparams = record[-1][1:]
        nt = key[1]
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

    def current(self, key) -> bool:
        return key == self.key and _tensor_state(self.tensors) == self.state

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
                                           part.bufs[0].data_ptr())
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
    plan = Plan(model, plan_key(model, x), record)
    return plan if plan.calls else None
