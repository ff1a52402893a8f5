"""Quantized steps of a :class:`~mobilekernels.quant.QuantizedModel`.

Every step runs in three modes on the same module:

* ``forward_int(q, s, z) -> (q, s, z)``: the int8 inference path; ``q`` is a uint8 NCHW-shaped
  (channels_last in memory) tensor with per-tensor scale ``s`` and zero point ``z``;
* ``forward_float(x, mode)`` with ``mode`` "float" (the BN-folded float model), "observe" (same,
  feeding the activation observers during calibration) or "fake" (after ``freeze``: the float
  reference with fake quantization at the same points and scales, dequantized int8 weights).

Where the int8 work runs is reported by ``rows()`` (for ``QuantizedModel.summary()``):
``KERNEL`` = our int8 kernels (``qconv1x1`` / ``qdwconv2d``), ``TORCH_INT`` = integer tensors
in torch ops (lookup tables, requantized adds, pooling), ``FLOAT`` = dequantize -> float op ->
quantize (no int8 path).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .. import _C, qops
from .._checks import conv_padding, dw_geometry
from .._eager import unobserved
from ..nn._pack_cache import cached_call, remember_call, tensor_key
from .observers import (dequantize_tensor, fake_quantize, make_observer, quantize_tensor,
                        quantize_weight_per_channel)

KERNEL, TORCH_INT, FLOAT = "int8 mobilekernels", "int8 torch int ops", "float fallback"


def _scalar(v: float, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(v, dtype=dtype)


class QStep(nn.Module):
    """Base: one output activation with an observer and ``out_scale`` / ``out_zp`` buffers."""

    where = FLOAT

    def __init__(self, name: str, what: str) -> None:
        super().__init__()
        self.name, self.what = name, what
        self.register_buffer("out_scale", _scalar(1.0))
        self.register_buffer("out_zp", _scalar(0, torch.int64))
        self.observer = None

    def start_observing(self, observer: str, percentile: float) -> None:
        self.observer = make_observer(observer, percentile)

    def out_qparams(self) -> tuple[float, int]:
        return float(self.out_scale), int(self.out_zp)

    def _act(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        if mode == "observe":
            self.observer.update(x)
        elif mode == "fake":
            x = fake_quantize(x, *self.out_qparams())
        return x

    def _freeze_out(self) -> tuple[float, int]:
        s, z = self.observer.qparams()
        self.out_scale.fill_(s)
        self.out_zp.fill_(z)
        self.observer = None
        return s, z

    def freeze(self, s: float, z: int) -> tuple[float, int]:
        return self._freeze_out()

    def rows(self) -> list[tuple[str, str, str, str]]:
        return [(self.name, self.what, self.where, self.note())]

    def note(self) -> str:
        return ""


def _lut_for(act: nn.Module, s_in: float, z_in: int, s_out: float, z_out: int) -> torch.Tensor:
    x = dequantize_tensor(torch.arange(256, dtype=torch.uint8), s_in, z_in)
    with torch.no_grad():
        return quantize_tensor(act(x), s_out, z_out)


def _apply_lut(lut: torch.Tensor, q: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """``lut[q]`` for a uint8 [N, C, H, W] tensor, channels_last out. Eager: our table kernel
    (``_C.q8_lut``, AVX2 / NEON) on the NHWC bytes, in place when ``inplace`` (a conv's fresh
    output) else on a copy; measured 0.18 -> 0.04 ms on the V3 stem's 1x16x112x112 (thread CPU
    time). Otherwise index_select with int32 indices (~6x faster than ``lut[q.long()]``)."""
    if (type(q) is torch.Tensor and q.dtype == torch.uint8 and q.device.type == "cpu" and lut.dtype == torch.uint8
            and lut.numel() == 256 and lut.is_contiguous() and q.is_contiguous(memory_format=torch.channels_last)
            and unobserved()):
        out = q if inplace else q.clone(memory_format=torch.channels_last)
        if out.numel():
            _C.q8_lut(lut.data_ptr(), out.data_ptr(), out.numel())
        return out
    n, c, h, w = q.shape
    flat = q.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).reshape(-1)
    return lut.index_select(0, flat.int()).reshape(n, h, w, c).permute(0, 3, 1, 2)


class QConv(QStep):
    """Conv2d or Linear (+ folded BatchNorm) (+ fused ReLU / ReLU6) (+ an elementwise activation
    such as Hardswish applied as a 256-entry lookup table on the uint8 output).

    Kinds: ``pointwise`` (1x1, stride 1, no padding) -> ``qconv1x1``; ``depthwise`` -> ``qdwconv2d``;
    ``im2col`` (any other groups=1 conv, e.g. the 3x3 stem): uint8 patches gathered in torch
    (padding reads the zero point) then ``qconv1x1`` over ``Cin*kh*kw`` channels; ``float``
    (grouped, not depthwise): dequantize -> conv -> quantize.
    """

    def __init__(self, name: str, what: str, weight: torch.Tensor, bias: Optional[torch.Tensor],
                 stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups: int = 1, act: str = "none",
                 post: Optional[nn.Module] = None) -> None:
        super().__init__(name, what)
        if weight.dim() == 2:
            weight = weight[:, :, None, None]
        cout, cpg, kh, kw = weight.shape
        self.in_channels, self.out_channels = cpg * groups, cout
        self.kernel, self.stride, self.dilation, self.groups = (kh, kw), tuple(stride), tuple(dilation), groups
        self.pads = conv_padding(padding, self.kernel, self.stride, self.dilation)
        self.act, self.post = act, post
        if groups > 1 and groups == self.in_channels:
            self.kind = "depthwise"
        elif groups == 1 and self.kernel == (1, 1) and self.stride == (1, 1) and self.pads == (0, 0, 0, 0):
            self.kind = "pointwise"
        elif groups == 1:
            self.kind = "im2col"
        else:
            self.kind = "float"
        self.where = FLOAT if self.kind == "float" else KERNEL
        self.register_buffer("weight_f", weight.detach().float().clone())
        self.register_buffer("bias", (bias if bias is not None else torch.zeros(cout)).detach().float().clone())
        self.register_buffer("weight", torch.zeros(cout, cpg, kh, kw, dtype=torch.int8))
        self.register_buffer("w_scale", torch.ones(cout))
        self.register_buffer("packed", torch.zeros(0, dtype=torch.uint8))
        self.register_buffer("in_scale", _scalar(1.0))
        self.register_buffer("in_zp", _scalar(0, torch.int64))
        if post is not None:  # conv output (before the LUT) has its own qparams
            self.register_buffer("mid_scale", _scalar(1.0))
            self.register_buffer("mid_zp", _scalar(0, torch.int64))
            self.register_buffer("lut", torch.zeros(256, dtype=torch.uint8))
            self.mid_observer = None

    def note(self) -> str:
        op = {"pointwise": "qconv1x1", "depthwise": f"qdwconv2d {self.kernel[0]}x{self.kernel[1]} s{self.stride[0]}",
              "im2col": f"im2col {self.kernel[0]}x{self.kernel[1]} s{self.stride[0]} (torch gather) + qconv1x1",
              "float": f"grouped conv groups={self.groups}: float"}[self.kind]
        parts = [op]
        if self.act != "none":
            parts.append(f"{self.act} fused")
        if self.post is not None:
            parts.append(f"{type(self.post).__name__} as uint8 LUT")
        return ", ".join(parts)

    def start_observing(self, observer: str, percentile: float) -> None:
        super().start_observing(observer, percentile)
        if self.post is not None:
            self.mid_observer = make_observer(observer, percentile)

    # -- float / fake ---------------------------------------------------------------------
    def _float_weight(self, mode: str) -> torch.Tensor:
        if mode == "fake":
            return self.weight.float() * self.w_scale.reshape(-1, 1, 1, 1)
        return self.weight_f

    def forward_float(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        t, b, l, r = self.pads
        x = F.pad(x, (l, r, t, b)) if any(self.pads) else x
        y = F.conv2d(x, self._float_weight(mode), self.bias, self.stride, 0, self.dilation, self.groups)
        if self.act == "relu":
            y = y.clamp_min(0)
        elif self.act == "relu6":
            y = y.clamp(0, 6)
        if self.post is not None:
            if mode == "observe":
                self.mid_observer.update(y)
            elif mode == "fake":
                y = fake_quantize(y, float(self.mid_scale), int(self.mid_zp))
            y = self.post(y)
        return self._act(y, mode)

    # -- int8 -----------------------------------------------------------------------------
    def freeze(self, s: float, z: int) -> tuple[float, int]:
        self.in_scale.fill_(s)
        self.in_zp.fill_(z)
        wq, ws = quantize_weight_per_channel(self.weight_f)
        self.weight.copy_(wq)
        self.w_scale.copy_(ws)
        if self.post is not None:
            ms, mz = self.mid_observer.qparams()
            self.mid_scale.fill_(ms)
            self.mid_zp.fill_(mz)
            self.mid_observer = None
        out = self._freeze_out()
        if self.post is not None:
            self.lut.copy_(_lut_for(self.post, ms, mz, *out))
        if self.kind != "float":
            bias_q = qops.quantize_bias(self.bias, s, ws)
            if self.kind == "depthwise":
                self.packed = qops.qdwconv2d_pack(wq, ws, 0, bias_q)
            else:
                self.packed = qops.qconv1x1_pack(wq.reshape(wq.shape[0], -1, 1, 1), ws, 0, bias_q)
        self.weight_f = None
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "packed" in state_dict:
            self.packed = torch.empty_like(state_dict[prefix + "packed"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _im2col(self, q: torch.Tensor, z: int) -> torch.Tensor:
        """uint8 [N, C, H, W] -> [N, C*kh*kw, OH, OW] (channels_last), channel index c*kh*kw + k."""
        t, b, l, r = self.pads
        x = q.permute(0, 2, 3, 1)  # NHWC view
        if any(self.pads):
            x = F.pad(x.permute(0, 3, 1, 2), (l, r, t, b), value=z).permute(0, 2, 3, 1)
        n, hp, wp, c = x.shape
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        oh, ow = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
        taps = [x[:, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
                for i in range(kh) for j in range(kw)]
        cols = torch.stack(taps, dim=-1).reshape(n, oh, ow, c * kh * kw)
        return cols.permute(0, 3, 1, 2)

    def forward_int(self, q: torch.Tensor, s: float, z: int):
        ys, yz = (float(self.mid_scale), int(self.mid_zp)) if self.post is not None else self.out_qparams()
        if self.kind == "float":
            x = dequantize_tensor(q, s, z)
            y = self.forward_float(x, "fake")  # fake weights: same numbers as the reference
            return quantize_tensor(y, *self.out_qparams()).contiguous(memory_format=torch.channels_last), \
                *self.out_qparams()
        x = q if self.kind != "im2col" else self._im2col(q, z)
        # The activation's table: in the conv's epilogue on the cached C++ call, else (first call,
        # traced or observed runs) as a pass on the conv's own new output; same bytes either way.
        lut = self.lut if self.post is not None else None
        y, fused = self._run_int8(x, s, z, ys, yz, lut)
        if lut is not None and not fused:
            y = _apply_lut(lut, y, inplace=True)  # y: this conv's own new tensor
        return (y, *self.out_qparams())


    # Eager calls reuse the validated C++ arguments of the int8 op (no torch.ops dispatch, no
    # per-call re-validation), keyed on everything they depend on; the first call of a key goes
    # through the registered op, which validates. (V3-Large int8 runs ~40 such steps per forward.)
    _calls: Optional[dict] = None

    def _run_op(self, x, s, z, ys, yz):
        if self.kind == "depthwise":
            return qops.qdwconv2d(x, self.packed, self.out_channels, self.kernel, s, z, ys, yz, self.stride,
                                  self.pads, self.dilation, activation=self.act)
        return qops.qconv1x1(x, self.packed, self.out_channels, s, z, ys, yz, activation=self.act)

    def _run_int8(self, x, s, z, ys, yz, lut=None):
        """(output, whether ``lut`` was applied in the C++ call's epilogue)."""
        if type(x) is not torch.Tensor or not unobserved():
            return self._run_op(x, s, z, ys, yz), False
        key = (x.shape, x.dtype, s, z, ys, yz, tensor_key(self.packed), self.act, self.kind)
        call = cached_call(self, key)
        if call is None:
            y = self._run_op(x, s, z, ys, yz)  # validates every argument
            remember_call(self, key, self._call_template(x, s, z, ys, yz))
            return y, False
        fn, shape, mid = call
        out = torch.empty(shape, dtype=torch.uint8, memory_format=torch.channels_last)
        if out.numel() == 0:
            return out, False
        x = x.contiguous(memory_format=torch.channels_last)
        # The C++ call reads 256 table bytes from this address unchecked: only a plain table.
        fuse = (lut is not None and type(lut) is torch.Tensor and lut.dtype == torch.uint8 and lut.numel() == 256
                and lut.is_contiguous() and lut.device.type == "cpu")
        fn(self.packed.data_ptr(), self.packed.numel(), x.data_ptr(), *mid, out.data_ptr(), torch.get_num_threads(),
           lut.data_ptr() if fuse else 0)
        return out, fuse

    def _call_template(self, x, s, z, ys, yz):
        """(C++ function, output shape, its arguments between x and out), as the op passes them."""
        y_min, y_max = qops.output_range(self.act, ys, yz, torch.uint8)
        quant = (float(s), int(z), x.dtype == torch.int8, float(ys), int(yz), False, y_min, y_max)
        if self.kind == "depthwise":
            n, c, h, w, m, oh, ow = dw_geometry(x.shape, self.out_channels, self.kernel, self.stride, self.pads,
                                                self.dilation)
            mid = (n, h, w, c, m, *self.kernel, *self.stride, *self.dilation, self.pads[0], self.pads[2], oh, ow)
            return _C.q8_dwconv, (n, self.out_channels, oh, ow), mid + quant
        n, cin, h, w = (int(v) for v in x.shape)
        return _C.q8_gemm, (n, self.out_channels, h, w), (n * h * w, cin, self.out_channels) + quant

    def __getstate__(self):
        state = super().__getstate__().copy()
        state["_calls"] = None
        return state


class QLut(QStep):
    """A standalone elementwise activation as a uint8 lookup table."""

    where = TORCH_INT

    def __init__(self, name: str, act: nn.Module) -> None:
        super().__init__(name, type(act).__name__)
        self.act = act
        self.register_buffer("lut", torch.zeros(256, dtype=torch.uint8))

    def note(self) -> str:
        return "256-entry uint8 lookup table"

    def forward_float(self, x, mode):
        return self._act(self.act(x), mode)

    def freeze(self, s, z):
        out = self._freeze_out()
        self.lut.copy_(_lut_for(self.act, s, z, *out))
        return out

    def forward_int(self, q, s, z):
        return (_apply_lut(self.lut, q), *self.out_qparams())


class QFloat(QStep):
    """Any other module: dequantize -> float module -> quantize."""

    def __init__(self, name: str, module: nn.Module, why: str = "no int8 path") -> None:
        super().__init__(name, type(module).__name__)
        self.module, self.why = module, why

    def note(self) -> str:
        return self.why

    def forward_float(self, x, mode):
        return self._act(self.module(x), mode)

    def forward_int(self, q, s, z):
        with torch.no_grad():
            y = self.module(dequantize_tensor(q, s, z))
        return quantize_tensor(y, *self.out_qparams()).contiguous(memory_format=torch.channels_last), \
            *self.out_qparams()


class QAvgPool(QStep):
    """Global average pooling: mean of the uint8 codes, requantized (fp32, half to even)."""

    where = TORCH_INT

    def __init__(self, name: str, what: str = "AdaptiveAvgPool2d") -> None:
        super().__init__(name, what)

    def note(self) -> str:
        return "integer sum, fp32 requantize"

    def forward_float(self, x, mode):
        return self._act(x.mean((2, 3), keepdim=True), mode)

    def forward_int(self, q, s, z):
        n, c, h, w = q.shape
        acc = q.sum((2, 3), keepdim=True, dtype=torch.int32) - z * h * w
        ys, yz = self.out_qparams()
        y = torch.clamp(torch.round(acc.float() * (s / (h * w * ys))) + yz, 0, 255).to(torch.uint8)
        return y.contiguous(memory_format=torch.channels_last), ys, yz


class QFlatten(nn.Module):
    """``nn.Flatten`` on [N, C, 1, 1] activations: kept 4-D inside (Linear runs as a 1x1 conv)."""

    where = TORCH_INT

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def start_observing(self, observer, percentile):
        pass

    def freeze(self, s, z):
        return s, z

    def _check(self, x):
        if x.dim() != 4 or x.shape[2:] != (1, 1):
            raise ValueError(f"{self.name}: Flatten is supported only on [N, C, 1, 1] (after global pooling), "
                             f"got {tuple(x.shape)}")

    def forward_float(self, x, mode):
        self._check(x)
        return x

    def forward_int(self, q, s, z):
        self._check(q)
        return q, s, z

    def rows(self):
        return [(self.name, "Flatten", TORCH_INT, "no-op (kept [N, C, 1, 1])")]


def qadd(a: torch.Tensor, sa: float, za: int, b: torch.Tensor, sb: float, zb: int, so: float, zo: int,
         dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """The int8 residual add on integer codes: ``(a - za) * sa/so + (b - zb) * sb/so`` in fp32
    (each ratio rounded to fp32, products and sum rounded separately), round half to even,
    ``+ zo``, clamp to ``dtype``. The fused ``qinverted_residual`` op reproduces it bit for bit."""
    lo, hi = (0, 255) if dtype == torch.uint8 else (-128, 127)
    acc = (a.float() - za) * (sa / so) + (b.float() - zb) * (sb / so)
    out = torch.clamp(torch.round(acc) + zo, lo, hi).to(dtype)
    return out.contiguous(memory_format=torch.channels_last)


class QBlock(QStep):
    """Inverted-residual / depthwise-separable block: its body steps, then the residual add
    in int8 (``(a - za) * sa/sy + (b - zb) * sb/sy`` in fp32 on the integer codes, rounded half
    to even).

    When the body is ``[1x1 expand,] depthwise kxk, 1x1 project`` (ReLU / ReLU6 fused as clamps,
    other elementwise activations such as Hardswish as lookup tables; no attention), the int8
    path runs the whole block as one
    ``qinverted_residual`` call (:class:`mobilekernels.nn.QuantizedInvertedResidual`, built from
    these steps' packs): bit-exact to running the steps and the add one after another
    (``_unfused_int``), without materialising the expanded tensor. ``fuse=False`` turns it off."""

    where = TORCH_INT

    def __init__(self, name: str, what: str, steps: list, residual: bool, fuse: bool = True) -> None:
        super().__init__(name, what)
        self.steps = nn.ModuleList(steps)
        self.residual = residual
        self.fuse = fuse
        self._fused_cache = None  # (key, QuantizedInvertedResidual); not a submodule: shares the packs

    def fusable_convs(self):
        """``(expand or None, depthwise, project)`` QConv steps when the fused block can run them."""
        convs = list(self.steps)
        if len(convs) not in (2, 3) or not all(isinstance(c, QConv) for c in convs):
            return None
        e, d, p = ([None] + convs) if len(convs) == 2 else convs
        # A lookup-table activation (QConv.post: Hardswish...) runs inside the fused block too.
        ok = (e is None or e.kind == "pointwise") and p.kind == "pointwise" and d.kind == "depthwise" \
            and d.kernel[0] == d.kernel[1] and d.stride[0] == d.stride[1] and tuple(d.dilation) == (1, 1) \
            and d.in_channels == d.out_channels
        return (e, d, p) if ok else None

    def _fused(self, s: float, z: int):
        convs = self.fusable_convs() if self.fuse else None
        if convs is None or any(c.packed.numel() == 0 for c in convs if c is not None):
            return None
        from ..nn.quantized_block import QuantizedInvertedResidual

        # Rebuilt when a pack or table is replaced or changed in place, or the qparams change.
        key = (s, z, self.out_qparams()) + tuple(tensor_key(c.packed) for c in convs if c) \
            + tuple((tensor_key(c.lut), float(c.mid_scale), int(c.mid_zp), c.out_qparams())
                    for c in convs if c is not None and c.post is not None)
        if self._fused_cache is None or self._fused_cache[0] != key:
            block = QuantizedInvertedResidual.from_qconvs(*convs, s, z, self.residual,
                                                          self.out_qparams() if self.residual else None)
            self._fused_cache = (key, block)
        return self._fused_cache[1]

    def start_observing(self, observer, percentile):
        for st in self.steps:
            st.start_observing(observer, percentile)
        if self.residual:
            super().start_observing(observer, percentile)

    def forward_float(self, x, mode):
        y = x
        for st in self.steps:
            y = st.forward_float(y, mode)
        return self._act(x + y, mode) if self.residual else y

    def freeze(self, s, z):
        for st in self.steps:
            s, z = st.freeze(s, z)
        if not self.residual:
            self.out_scale.fill_(s)
            self.out_zp.fill_(z)
            return s, z
        return self._freeze_out()

    def forward_int(self, q, s, z):
        fused = self._fused(s, z)
        if fused is not None:
            return (fused.forward_codes(q, s, z), *fused.output_qparams())
        return self._unfused_int(q, s, z)

    def _unfused_int(self, q, s, z):
        y, ys, yz = q, s, z
        for st in self.steps:
            y, ys, yz = st.forward_int(y, ys, yz)
        if not self.residual:
            return y, ys, yz
        os_, oz = self.out_qparams()
        return qadd(q, s, z, y, ys, yz, os_, oz), os_, oz

    def is_fused(self) -> bool:
        return self.fuse and self.fusable_convs() is not None

    def rows(self):
        out = [r for st in self.steps for r in st.rows()]
        if self.is_fused():
            tag = "fused qinverted_residual: "
            out = [(n, w, where, tag + note) for n, w, where, note in out]
        if self.residual:
            out.append((self.name + ".add", "residual add", KERNEL,
                        "fused qinverted_residual: int8 add after each band's project conv") if self.is_fused()
                       else (self.name + ".add", "residual add", TORCH_INT, "integer codes, fp32 requantize"))
        return out


class QSE(QStep):
    """Squeeze-and-excitation in int8: global pool (integer sum), ``fc1`` (+ReLU fused) and ``fc2``
    on ``qconv1x1`` over ``[N, C, 1, 1]``, the gate activation (sigmoid / hard-sigmoid) as a
    uint8 lookup table, then ``x * gate`` on the integer codes with an fp32 requantization."""

    where = TORCH_INT

    def __init__(self, name: str, se: nn.Module) -> None:
        super().__init__(name, type(se).__name__)
        act = {nn.ReLU: "relu", nn.ReLU6: "relu6"}.get(type(se.activation))
        self.pool = QAvgPool(name + ".avgpool")
        self.fc1 = QConv(name + ".fc1", "Conv2d+" + type(se.activation).__name__, se.fc1.weight, se.fc1.bias,
                         act=act or "none", post=None if act else se.activation)
        self.fc2 = QConv(name + ".fc2", "Conv2d+" + type(se.scale_activation).__name__, se.fc2.weight,
                         se.fc2.bias, post=se.scale_activation)

    def start_observing(self, observer, percentile):
        for sub in (self.pool, self.fc1, self.fc2):
            sub.start_observing(observer, percentile)
        super().start_observing(observer, percentile)

    def forward_float(self, x, mode):
        g = self.fc2.forward_float(self.fc1.forward_float(self.pool.forward_float(x, mode), mode), mode)
        return self._act(x * g, mode)

    def freeze(self, s, z):
        self.fc2.freeze(*self.fc1.freeze(*self.pool.freeze(s, z)))
        return self._freeze_out()

    def forward_int(self, q, s, z):
        g, gs, gz = self.fc2.forward_int(*self.fc1.forward_int(*self.pool.forward_int(q, s, z)))
        ys, yz = self.out_qparams()
        acc = (q.float() - z) * ((g.float() - gz) * (s * gs / ys))
        out = torch.clamp(torch.round(acc) + yz, 0, 255).to(torch.uint8)
        return out.contiguous(memory_format=torch.channels_last), ys, yz

    def rows(self):
        return (self.pool.rows() + self.fc1.rows() + self.fc2.rows()
                + [(self.name + ".mul", self.what + " x * gate", TORCH_INT, "integer codes, fp32 requantize")])


def _mul_gate(q: torch.Tensor, s: float, z: int, g: torch.Tensor, gs: float, gz: int, ys: float, yz: int):
    """``x * gate`` on integer codes (``gate`` broadcast: [N, C, 1, 1] or [N, 1, H, W]), one fp32
    requantization, half to even; channels_last uint8 out."""
    acc = (q.float() - z) * ((g.float() - gz) * (s * gs / ys))
    return torch.clamp(torch.round(acc) + yz, 0, 255).to(torch.uint8).contiguous(memory_format=torch.channels_last)


def _requant(acc: torch.Tensor, ys: float, yz: int) -> torch.Tensor:
    """fp32 values in output-scale units -> uint8 codes (round half to even, clamp)."""
    return torch.clamp(torch.round(acc) + yz, 0, 255).to(torch.uint8)


def eca_as_conv1x1(eca: nn.Module) -> torch.Tensor:
    """ECA's 1-D conv across channels (zero padded, no bias) as the equivalent banded
    ``[C, C, 1, 1]`` weight of a 1x1 conv over the pooled ``[N, C, 1, 1]`` vector:
    ``W[i, j] = w[j - i + pad]``. After pruning the band is built at the original channel
    positions and sliced, which is what ECA computes on zeros in the removed channels."""
    conv = eca.conv
    k, pad = conv.kernel_size[0], conv.padding[0]
    w = conv.weight.detach().float().reshape(k)
    full = eca.full_channels if eca.channel_index is not None else eca.num_channels
    t = torch.arange(full)[None, :] - torch.arange(full)[:, None] + pad  # tap index of W[i, j]
    band = torch.where((t >= 0) & (t < k), w[t.clamp(0, k - 1)], torch.zeros(()))
    if eca.channel_index is not None:
        idx = eca.channel_index
        band = band.index_select(0, idx).index_select(1, idx)
    return band[:, :, None, None].contiguous()


class QECA(QStep):
    """ECA in int8, as SE: global pool (integer sum); the 1-D conv across channels as a banded
    ``C x C`` 1x1 conv on ``qconv1x1`` over ``[N, C, 1, 1]`` with the sigmoid as a uint8 lookup
    table; ``x * gate`` on the integer codes with an fp32 requantization."""

    where = TORCH_INT

    def __init__(self, name: str, eca: nn.Module) -> None:
        super().__init__(name, type(eca).__name__)
        k = eca.conv.kernel_size[0]
        self.pool = QAvgPool(name + ".avgpool")
        self.gate = QConv(name + ".conv", f"Conv1d k{k} as banded 1x1+{type(eca.scale_activation).__name__}",
                          eca_as_conv1x1(eca), None, post=eca.scale_activation)

    def start_observing(self, observer, percentile):
        self.pool.start_observing(observer, percentile)
        self.gate.start_observing(observer, percentile)
        super().start_observing(observer, percentile)

    def forward_float(self, x, mode):
        return self._act(x * self.gate.forward_float(self.pool.forward_float(x, mode), mode), mode)

    def freeze(self, s, z):
        self.gate.freeze(*self.pool.freeze(s, z))
        return self._freeze_out()

    def forward_int(self, q, s, z):
        g, gs, gz = self.gate.forward_int(*self.pool.forward_int(q, s, z))
        ys, yz = self.out_qparams()
        return _mul_gate(q, s, z, g, gs, gz, ys, yz), ys, yz

    def rows(self):
        return (self.pool.rows() + self.gate.rows()
                + [(self.name + ".mul", "ECA x * gate", TORCH_INT, "integer codes, fp32 requantize")])


class QCBAM(QStep):
    """CBAM in int8. Channel gate: average pool (integer sum) and max pool (integer max: exact,
    keeps the input's qparams) each through the shared MLP (``fc1`` + ReLU fused, ``fc2`` on
    ``qconv1x1``; one int8 copy per branch, as their input scales differ), the two logits added
    on integer codes, the sigmoid as a lookup table, ``x1 = x * gate`` on integer codes. Spatial
    gate: channel max (integer) and channel mean (integer sum) of ``x1`` requantized into one
    2-channel uint8 map, the 7x7 conv with BatchNorm folded on the im2col + ``qconv1x1`` path,
    sigmoid as a lookup table, ``x1 * gate`` on integer codes."""

    where = TORCH_INT
    _POINTS = ("sum", "cgate", "x1", "cat")  # activations quantized inside the block

    def __init__(self, name: str, cbam: nn.Module) -> None:
        super().__init__(name, type(cbam).__name__)
        from ..nn.block import _fold_bn

        self.full_channels = cbam.full_channels
        self.gate_act = cbam.scale_activation
        self.avgpool = QAvgPool(name + ".avgpool")
        fc1, fc2 = cbam.fc1, cbam.fc2
        self.fc1_avg = QConv(name + ".fc1[avg]", "Conv2d+ReLU", fc1.weight, fc1.bias, act="relu")
        self.fc2_avg = QConv(name + ".fc2[avg]", "Conv2d", fc2.weight, fc2.bias)
        self.fc1_max = QConv(name + ".fc1[max]", "Conv2d+ReLU", fc1.weight, fc1.bias, act="relu")
        self.fc2_max = QConv(name + ".fc2[max]", "Conv2d", fc2.weight, fc2.bias)
        sc = cbam.spatial_conv
        w, b = _fold_bn(sc, cbam.spatial_bn)
        self.spatial = QConv(name + ".spatial_conv", "Conv2d+BN+" + type(cbam.scale_activation).__name__, w, b,
                             sc.stride, sc.padding, sc.dilation, sc.groups, post=cbam.scale_activation)
        for p in self._POINTS:
            self.register_buffer(p + "_scale", _scalar(1.0))
            self.register_buffer(p + "_zp", _scalar(0, torch.int64))
        self.register_buffer("lut", torch.zeros(256, dtype=torch.uint8))
        self.points: Optional[dict] = None

    def _subs(self):
        return (self.avgpool, self.fc1_avg, self.fc2_avg, self.fc1_max, self.fc2_max, self.spatial)

    def _qp(self, p: str) -> tuple[float, int]:
        return float(getattr(self, p + "_scale")), int(getattr(self, p + "_zp"))

    def _point(self, p: str, x: torch.Tensor, mode: str) -> torch.Tensor:
        if mode == "observe":
            self.points[p].update(x)
        elif mode == "fake":
            x = fake_quantize(x, *self._qp(p))
        return x

    def start_observing(self, observer, percentile):
        for sub in self._subs():
            sub.start_observing(observer, percentile)
        self.points = {p: make_observer(observer, percentile) for p in self._POINTS}
        super().start_observing(observer, percentile)

    def _channel_stats(self, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c_max = x1.amax(1, keepdim=True)
        if self.full_channels is None:
            return c_max, x1.mean(1, keepdim=True)
        if self.full_channels > x1.shape[1]:  # removed channels count as zeros
            c_max = c_max.clamp_min(0)
        return c_max, x1.sum(1, keepdim=True) / self.full_channels

    def forward_float(self, x, mode):
        a = self.fc2_avg.forward_float(self.fc1_avg.forward_float(self.avgpool.forward_float(x, mode), mode), mode)
        m = self.fc2_max.forward_float(self.fc1_max.forward_float(x.amax((2, 3), keepdim=True), mode), mode)
        g = self._point("cgate", self.gate_act(self._point("sum", a + m, mode)), mode)
        x1 = self._point("x1", x * g, mode)
        cat = self._point("cat", torch.cat(self._channel_stats(x1), 1), mode)
        return self._act(x1 * self.spatial.forward_float(cat, mode), mode)

    def freeze(self, s, z):
        self.fc2_avg.freeze(*self.fc1_avg.freeze(*self.avgpool.freeze(s, z)))
        self.fc2_max.freeze(*self.fc1_max.freeze(s, z))
        for p in self._POINTS:
            ps, pz = self.points[p].qparams()
            getattr(self, p + "_scale").fill_(ps)
            getattr(self, p + "_zp").fill_(pz)
        self.points = None
        self.lut.copy_(_lut_for(self.gate_act, *self._qp("sum"), *self._qp("cgate")))
        self.spatial.freeze(*self._qp("cat"))
        return self._freeze_out()

    def forward_int(self, q, s, z):
        a, as_, az = self.fc2_avg.forward_int(*self.fc1_avg.forward_int(*self.avgpool.forward_int(q, s, z)))
        mq = q.amax((2, 3), keepdim=True).contiguous(memory_format=torch.channels_last)
        m, ms, mz = self.fc2_max.forward_int(*self.fc1_max.forward_int(mq, s, z))
        ts, tz = self._qp("sum")
        t = _requant((a.float() - az) * (as_ / ts) + (m.float() - mz) * (ms / ts), ts, tz)
        g = _apply_lut(self.lut, t.contiguous(memory_format=torch.channels_last))
        s1, z1 = self._qp("x1")
        x1 = _mul_gate(q, s, z, g, *self._qp("cgate"), s1, z1)
        cs, cz = self._qp("cat")
        c_max = x1.amax(1, keepdim=True)
        full = self.full_channels or x1.shape[1]
        if full > x1.shape[1]:
            c_max = c_max.clamp_min(z1)
        c_sum = x1.sum(1, keepdim=True, dtype=torch.int32) - z1 * x1.shape[1]
        cat = torch.cat([_requant((c_max.float() - z1) * (s1 / cs), cs, cz),
                         _requant(c_sum.float() * (s1 / (full * cs)), cs, cz)], 1)
        gq, gs, gz = self.spatial.forward_int(cat.contiguous(memory_format=torch.channels_last), cs, cz)
        ys, yz = self.out_qparams()
        return _mul_gate(x1, s1, z1, gq, gs, gz, ys, yz), ys, yz

    def rows(self):
        out = [r for sub in self._subs()[:5] for r in sub.rows()]
        out.append((self.name + ".mul_c", "CBAM x * channel gate", TORCH_INT,
                    "avg+max logits added on integer codes, sigmoid LUT, fp32 requantize"))
        out.append((self.name + ".pool_c", "channel max / mean", TORCH_INT, "integer max / sum, fp32 requantize"))
        out += self.spatial.rows()
        out.append((self.name + ".mul_s", "CBAM x * spatial gate", TORCH_INT, "integer codes, fp32 requantize"))
        return out
