"""A :func:`mobilekernels.quantize` model as an in-memory int8 TFLite flatbuffer, for LiteRT's
XNNPACK delegate (its QS8 path: int8 activations with a per-tensor scale and zero point, int8
weights symmetric per output channel, int32 bias): the benchmark's "xnnpack int8" column.

The graph is walked from the quantized model's steps, not traced, so every tensor carries the
scale and zero point our quantization chose:

* activations: ours are uint8 with zero point ``z``; the int8 tensor with zero point ``z - 128``
  holds the same values (``q_int8 = q_uint8 - 128``), so the mapping is exact;
* weights: ours are already int8, symmetric per output channel (zero point 0): copied as they
  are (OHWI for CONV_2D, 1HWC for DEPTHWISE_CONV_2D), with the same scales; bias int32 in units
  of ``input scale * weight scale`` as ours (``qops.quantize_bias``);
* input: float32 NHWC, QUANTIZE inside the graph (ours quantizes the float input too); output:
  DEQUANTIZE to float32 (+ RESHAPE to ``[N, classes]``), as ours returns float logits.

Steps -> ops: ``QConv`` (1x1, depthwise, the stem; Linear as a 1x1 CONV_2D on ``[N, 1, 1, C]``)
with ReLU / ReLU6 fused as the op's activation; a Hardswish after a conv -> the conv into its
own (mid) scale, then Hardswish into the step's; a standalone Hardswish -> Hardswish; global
average pooling -> MEAN; a block's residual add -> ADD (int8, requantized to the add's scale);
squeeze-excitation -> MEAN, two 1x1 CONV_2D, MUL (broadcast); Flatten -> nothing (kept 4-D).

What differs from ours (each a rounding, not a value, difference):

* Hardswish: LiteRT 2.3's XNNPACK delegate takes HARD_SWISH in float only, so by default it is
  ``x * relu6(x + 3) / 6`` as int8 ADD (into [0, 6]: the saturation is the relu6) and MUL, the
  1/6 folded into the scales of the tensors downstream (see :class:`_Q8Graph`): whole graph on
  XNNPACK, one more rounding than our table (measured: at most 2 codes per layer, as the
  HARD_SWISH form). ``hardswish="op"`` keeps TFLite's HARD_SWISH, which then runs in TFLite's
  own kernels between delegate partitions (MobileNetV3-Large 224: 1.7x slower, 1 thread);
* Hardsigmoid after a conv (the SE gate): TFLite has no int8 hard-sigmoid, so
  ``relu6(y + 3) / 6`` is folded into the conv (weights scaled by 1/6 = the same int8 weights
  with scales / 6; bias ``(b + 3) / 6``) and clamped at 1 (RELU_N1_TO_1; at 0 by the gate's
  zero point, the lowest code): ours rounds the conv output to its mid scale first, then maps
  it through a table;
* requantization: XNNPACK rounds its own way (fp32 scale, or TFLite's fixed-point multiplier
  in its own kernels), ours fp32 half to even: +-1 output LSB per layer;
* the pooled mean, the residual add and the SE multiply requantize once from integer sums /
  products in both, in different orders of rounding.

Steps TFLite int8 cannot express raise ``NotImplementedError`` naming the step (ECA, CBAM,
float fallbacks, other table activations).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import qops
from ._tflite_export import _Builder, runner_of, same_pads
from .quant.modules import QAvgPool, QBlock, QConv, QFlatten, QLut, QSE


def _pads(size: int, k: int, s: int, before: int, after: int) -> tuple[int, int]:
    """(before, after) padding of one axis as actually read: ``after`` trimmed to what the last
    output reads (the conv's output size is unchanged)."""
    out = (size + before + after - k) // s + 1
    return before, max(min(after, (out - 1) * s + k - size - before), 0)


class _Q8Graph:
    """The int8 TFLite graph of one QuantizedModel for one NCHW input shape.

    Every activation is ``(tensor, shape, s, z, f)``: its int8 codes are ours (``q - 128``), with
    our scale ``s`` and zero point ``z``, and the tensor declares the scale ``f * s``, i.e. holds
    ``f`` times the real value (``f`` = 1 except after a decomposed Hardswish, see
    :meth:`hardswish`). A conv reading a tensor of factor ``f`` takes weight scales ``ws / f``
    (same int8 weights, same int32 bias): exact. Pooling and the SE multiply carry the factor; a
    residual add has its project conv produce the block input's factor."""

    def __init__(self, hardswish: str) -> None:
        if hardswish not in ("mul", "op"):
            raise ValueError(f"hardswish must be 'mul' or 'op', got {hardswish!r}")
        self.B = _Builder()
        self.S = self.B.S
        self.hardswish_mode = hardswish
        self.acts: list[int] = []  # every int8 activation tensor, in graph order

    # -- tensors ----------------------------------------------------------------------------
    def act(self, name: str, shape_nhwc, s: float, z: int, f: float = 1.0) -> int:
        """int8 activation tensor with our uint8 ``(s, z)``: zero point ``z - 128``, scale ``f * s``."""
        t = self.B.tensor(name, shape_nhwc, self.S.TensorType.INT8, quant=([f * s], [int(z) - 128], 0))
        self.acts.append(t)
        return t

    def op(self, code, inputs, outputs, opt_type=0, opt=None) -> None:
        self.B.op(code, inputs, outputs, opt_type, opt)

    def add(self, a: int, b: int, out: int) -> None:
        self.op(self.S.BuiltinOperator.ADD, [a, b], [out], self.S.BuiltinOptions.AddOptions, self.S.AddOptionsT())

    def mul(self, a: int, b: int, out: int) -> None:
        self.op(self.S.BuiltinOperator.MUL, [a, b], [out], self.S.BuiltinOptions.MulOptions, self.S.MulOptionsT())

    # -- steps ------------------------------------------------------------------------------
    def step(self, st, x: int, shape: tuple, s: float, z: int, f: float, want_f: float = 1.0):
        """Append ``st`` reading ``x`` (NHWC ``shape``, qparams ``s``, ``z``, factor ``f``).
        Returns ``(tensor, shape, s, z, f)`` of its output; a conv (or a block ending in one)
        gives factor ``want_f``."""
        if isinstance(st, QFlatten):
            if shape[1:3] != (1, 1):
                raise NotImplementedError(f"{st.name}: Flatten of an HxW > 1 map")
            return x, shape, s, z, f
        if isinstance(st, QConv):
            return self.conv(st, x, shape, s, z, f, want_f)
        if isinstance(st, QBlock):
            y = (x, shape, s, z, f)
            for i, sub in enumerate(st.steps):
                last = i == len(st.steps) - 1
                y = self.step(sub, *y, want_f=f if (last and st.residual) else 1.0)
            if not st.residual:
                return y
            if y[4] != f:
                raise NotImplementedError(f"{st.name}: residual add of tensors of different scale factors")
            os_, oz = st.out_qparams()
            out = self.act(st.name + ".add", y[1], os_, oz, f)
            self.add(x, y[0], out)
            return out, y[1], os_, oz, f
        if isinstance(st, QAvgPool):
            return self.mean(st.name, x, shape, *st.out_qparams(), f)
        if isinstance(st, QSE):
            g = self.mean(st.pool.name, x, shape, *st.pool.out_qparams(), f)
            g = self.conv(st.fc2, *self.conv(st.fc1, *g), want_f=1.0)
            ys, yz = st.out_qparams()
            out = self.act(st.name + ".mul", shape, ys, yz, f)
            self.mul(x, g[0], out)
            return out, shape, ys, yz, f
        if isinstance(st, QLut):
            if not isinstance(st.act, nn.Hardswish):
                raise NotImplementedError(f"{st.name}: {type(st.act).__name__} as an int8 table (only Hardswish maps "
                                          f"to TFLite int8 ops here)")
            return self.hardswish(st.name, x, shape, s, z, f, *st.out_qparams())
        what = getattr(st, "what", type(st).__name__)
        why = getattr(st, "why", None) or "no TFLite int8 mapping"
        raise NotImplementedError(f"{getattr(st, 'name', '?')}: {what} ({why})")

    def hardswish(self, name: str, x: int, shape, s: float, z: int, f: float, ys: float, yz: int):
        """``x * relu6(x + 3) / 6``. "op": TFLite's HARD_SWISH (int8; XNNPACK's delegate takes it
        only in float, so TFLite's own kernel runs it between delegate partitions). "mul": two
        int8 ops the delegate takes: ``t = ADD(x, 3)`` into the scale ``6 / 255``, zero point
        -128 (the int8 range is exactly [0, 6]: saturation is the relu6), then ``MUL(x, t)`` =
        6 x hardswish, declared at scale ``6 f^2 ys`` so its codes are hardswish's at ``ys``."""
        S = self.S
        if self.hardswish_mode == "op":
            out = self.act(name, shape, ys, yz, f)
            if f != 1.0:
                raise NotImplementedError(f"{name}: HARD_SWISH on a scaled tensor")
            self.op(S.BuiltinOperator.HARD_SWISH, [x], [out], S.BuiltinOptions.HardSwishOptions,
                    S.HardSwishOptionsT())
            return out, shape, ys, yz, 1.0
        three = self.B.const(name + "_three", np.array([127], np.int8), quant=([3.0 * f / 127], [0], 0))
        t = self.B.tensor(name + "_relu6", shape, S.TensorType.INT8, quant=([6.0 * f / 255], [-128], 0))
        self.add(x, three, t)
        fo = 6.0 * f * f
        out = self.act(name, shape, ys, yz, fo)
        self.mul(x, t, out)
        return out, shape, ys, yz, fo

    def mean(self, name: str, x: int, shape, ys: float, yz: int, f: float):
        S = self.S
        oshape = (shape[0], 1, 1, shape[3])
        out = self.act(name, oshape, ys, yz, f)
        opt = S.ReducerOptionsT()
        opt.keepDims = True
        self.op(S.BuiltinOperator.MEAN, [x, self.B.const(name + "_axes", np.array([1, 2], np.int32))], [out],
                S.BuiltinOptions.ReducerOptions, opt)
        return out, oshape, ys, yz, f

    def conv(self, st: QConv, x: int, shape, s: float, z: int, f: float, want_f: float = 1.0):
        S, B = self.S, self.B
        if st.kind == "float":
            raise NotImplementedError(f"{st.name}: grouped conv (groups={st.groups}) has no int8 path")
        if abs(float(st.in_scale) - s) > 1e-12 * s or int(st.in_zp) != z:
            raise ValueError(f"{st.name}: input qparams ({s}, {z}) are not the step's ({float(st.in_scale)}, "
                             f"{int(st.in_zp)})")
        post = st.post
        fo = 1.0 if (post is not None or st.act == "relu6") else want_f  # clamps at 6 / 1 need factor 1
        # weight scales: input factor f divided out, output factor fo in (bias scale = s * ws * fo)
        w, ws, bias = st.weight, st.w_scale.double() * (fo / f), st.bias.double() * fo
        fused = {"none": S.ActivationFunctionType.NONE, "relu": S.ActivationFunctionType.RELU,
                 "relu6": S.ActivationFunctionType.RELU6}[st.act]
        ys, yz = st.out_qparams()
        if post is not None and isinstance(post, nn.Hardsigmoid):
            # relu6(y + 3) / 6 folded into the conv: same int8 weights at scales / 6, bias (b + 3) / 6
            if st.act != "none" or yz != 0:
                raise NotImplementedError(f"{st.name}: Hardsigmoid after {st.act} / with output zero point {yz}")
            ws, bias = ws / 6.0, (bias + 3.0) / 6.0
            fused, post = S.ActivationFunctionType.RELU_N1_TO_1, None
            cs, cz = ys, yz
        elif post is not None:
            if not isinstance(post, nn.Hardswish):
                raise NotImplementedError(f"{st.name}: {type(post).__name__} after a conv (only ReLU, ReLU6, "
                                          f"Hardswish, Hardsigmoid map to TFLite int8)")
            cs, cz = float(st.mid_scale), int(st.mid_zp)
        else:
            cs, cz = ys, yz
        n, h, wd, c = shape
        kh, kw = st.kernel
        (sh, sw), (dh, dw) = st.stride, st.dilation
        t, b, l, r = st.pads
        keh, kew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
        pads_h, pads_w = _pads(h, keh, sh, t, b), _pads(wd, kew, sw, l, r)
        oshape = (n, (h + t + b - keh) // sh + 1, (wd + l + r - kew) // sw + 1, st.out_channels)
        if (pads_h, pads_w) == ((0, 0), (0, 0)):
            padding = S.Padding.VALID
        elif (pads_h, pads_w) == (same_pads(h, keh, sh), same_pads(wd, kew, sw)):
            padding = S.Padding.SAME
        else:  # int8 PAD fills with the zero point (real 0), as ours pads
            paddings = B.const(st.name + "_paddings", np.array([[0, 0], pads_h, pads_w, [0, 0]], np.int32))
            padded = self.act(st.name + "_padded", (n, h + sum(pads_h), wd + sum(pads_w), c), s, z, f)
            self.op(S.BuiltinOperator.PAD, [x, paddings], [padded], S.BuiltinOptions.PadOptions, S.PadOptionsT())
            x, padding = padded, S.Padding.VALID
        # bias scale: the product of the float32 scales TFLite stores (its kernels check it)
        s32, ws32 = np.float32(s * f), ws.numpy().astype(np.float32)
        bias_q = qops.quantize_bias(bias, float(s32), torch.from_numpy(ws32).double()).numpy()
        bt = B.const(st.name + "_bias", bias_q.astype(np.int32), quant=((s32 * ws32).tolist(), [0] * len(ws32), 0))
        wq = w.numpy()
        if st.kind == "depthwise":
            wt = B.const(st.name + "_weight", np.ascontiguousarray(wq.transpose(1, 2, 3, 0)),  # 1HWC
                         quant=(ws32.tolist(), [0] * len(ws32), 3))
            opt = S.DepthwiseConv2DOptionsT()
            opt.depthMultiplier = st.out_channels // st.in_channels
            code, opt_type = S.BuiltinOperator.DEPTHWISE_CONV_2D, S.BuiltinOptions.DepthwiseConv2DOptions
        else:
            wt = B.const(st.name + "_weight", np.ascontiguousarray(wq.transpose(0, 2, 3, 1)),  # OHWI
                         quant=(ws32.tolist(), [0] * len(ws32), 0))
            opt = S.Conv2DOptionsT()
            code, opt_type = S.BuiltinOperator.CONV_2D, S.BuiltinOptions.Conv2DOptions
        opt.padding, opt.strideH, opt.strideW = padding, sh, sw
        opt.dilationHFactor, opt.dilationWFactor = dh, dw
        opt.fusedActivationFunction = fused
        out = self.act(st.name + ("_conv" if post is not None else ""), oshape, cs, cz, fo)
        self.op(code, [x, wt, bt], [out], opt_type, opt)
        if post is not None:  # Hardswish: mid scale -> the step's
            return self.hardswish(st.name, out, oshape, cs, cz, fo, ys, yz)
        return out, oshape, ys, yz, fo


def export_q8(qmodel, input_shape: tuple[int, int, int, int], hardswish: str = "mul",
              all_outputs: bool = False) -> bytes:
    """int8 TFLite flatbuffer of the :class:`~mobilekernels.quant.QuantizedModel` ``qmodel`` for
    one NCHW ``input_shape``: input float32 NHWC ``[N, H, W, C]``, output float32 (logits
    ``[N, classes]``). Raises ``NotImplementedError`` naming the first step it cannot map.

    ``hardswish``: "mul" (default: ADD + MUL, whole graph on XNNPACK) or "op" (HARD_SWISH, which
    LiteRT's XNNPACK delegate leaves to TFLite's kernels); see :meth:`_Q8Graph.hardswish`.
    ``all_outputs``: every int8 activation (named after its step: ``features.3.conv.0.0``,
    ``features.3.add``, ``...block.2.mul``) is also a graph output, for layer-by-layer tests."""
    from .quant.quantize import QuantizedModel

    if not isinstance(qmodel, QuantizedModel):
        raise TypeError(f"export_q8 expects a mobilekernels QuantizedModel, got {type(qmodel).__name__}")
    if len(input_shape) != 4:
        raise ValueError(f"input_shape must be NCHW, got {input_shape}")
    g = _Q8Graph(hardswish)
    S, B = g.S, g.B
    n, c, h, w = (int(v) for v in input_shape)
    shape = (n, h, w, c)
    x_in = B.tensor("input", shape)
    s, z = qmodel.in_qparams()
    x = g.act("input_q", shape, s, z)
    g.op(S.BuiltinOperator.QUANTIZE, [x_in], [x])
    f = 1.0
    for st in qmodel.steps:
        x, shape, s, z, f = g.step(st, x, shape, s, z, f)
    if f != 1.0:
        raise NotImplementedError("the model ends in a decomposed Hardswish: export with hardswish='op'")
    y = B.tensor("output_nhwc" if qmodel.flatten_output else "output", shape)
    g.op(S.BuiltinOperator.DEQUANTIZE, [x], [y])
    if qmodel.flatten_output:
        if shape[1:3] != (1, 1):
            raise NotImplementedError("flattened output of an HxW > 1 map (NHWC order differs)")
        flat = (shape[0], shape[3])
        opt = S.ReshapeOptionsT()
        opt.newShape = list(flat)
        out = B.tensor("output", flat)
        g.op(S.BuiltinOperator.RESHAPE, [y, B.const("output_shape", np.array(flat, np.int32))], [out],
             S.BuiltinOptions.ReshapeOptions, opt)
        y = out
    extra = list(g.acts) if all_outputs else []
    return B.finish([x_in], [y] + extra, "mobilekernels int8 export")


def runner_q8(qmodel, x_nchw: torch.Tensor, threads: int, xnnpack: bool = True, hardswish: str = "mul"):
    """``(invoke, output, undelegated)`` as :func:`mobilekernels._tflite_export.runner`, for the
    int8 export of ``qmodel``."""
    return runner_of(export_q8(qmodel, tuple(x_nchw.shape), hardswish), x_nchw, threads, xnnpack)


__all__ = ["export_q8", "runner_q8"]
