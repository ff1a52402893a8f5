"""``QuantizedInvertedResidual``: the fused int8 inverted-residual block as a module.

Runs ``torch.ops.mobilekernels.qinverted_residual`` (see ``mobilekernels._qblockops``): bit-exact
to its three int8 convs run one after another (``qconv1x1`` -> ``qdwconv2d`` -> ``qconv1x1``)
plus the int8 residual add of ``mobilekernels.quant``, without materialising the expanded
tensor. Activations are ReLU / ReLU6 clamps in the quantized range, and/or per stage a 256-entry
uint8 lookup table after the requantization (Hardswish and other elementwise activations, as
``mobilekernels.quant``'s ``QConv`` steps run them: ``QConv.post`` / ``QConv.lut``).

Built from already-quantized pieces (:meth:`from_qconvs`): ``mobilekernels.quant`` conv steps
(``QConv``, what ``mk.quantize`` makes) or :class:`~mobilekernels.nn.QuantizedConv2d` modules.
The packs depend on the input scale of each conv (int32 biases are in units of
``in_scale * w_scale``), so the block is made for one input scale ``x_scale``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .. import _qblockops, qops
from .._checks import conv_padding
from .._eager import unobserved
from .._C import q8_inverted_residual as _run_q8_block
from ._pack_cache import cached_call, remember_call, tensor_key

_FUSABLE_ACTS = ("none", "relu", "relu6")


class QuantizedInvertedResidual(nn.Module):
    """int8 expand 1x1 (optional) -> depthwise kxk stride s -> project 1x1 (-> + x), fused.

    State (in ``state_dict``): the three uint8 packs (``expand_packed`` empty for t == 1), a
    float64 ``qparams`` buffer ``[x_scale, x_zp, e_scale, e_zp, d_scale, d_zp, p_scale, p_zp,
    out_scale, out_zp]`` (each stage's requantization), the uint8 ``luts`` ``[3, 256]`` and
    float64 ``lut_qparams`` ``[3, 3]`` rows ``(has_table, scale, zp)``: a stage with a table
    outputs the table's ``(scale, zp)``.

    ``forward(x)`` takes and returns ``torch.quint8`` tensors (channels_last out; the input's
    codes are read through ``int_repr()``); :meth:`forward_codes` takes plain uint8 codes with
    their scale and zero point (no copy when channels_last).
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding=None, activations=("relu6", "relu6", "none"),
                 residual: Optional[bool] = None) -> None:
        super().__init__()
        for a in activations:
            if a not in _FUSABLE_ACTS:
                raise ValueError(f"activation {a!r} cannot be fused into the int8 block (only {_FUSABLE_ACTS}: "
                                 "Hardswish is not a clamp in the quantized range)")
        self.in_channels, self.hidden_channels, self.out_channels = in_channels, hidden_channels, out_channels
        self.kernel_size, self.stride = int(kernel_size), int(stride)
        k = self.kernel_size
        self.pads = conv_padding(k // 2 if padding is None else padding, (k, k), (1, 1), (1, 1))
        self.activations = tuple(activations)
        self.residual = stride == 1 and in_channels == out_channels if residual is None else bool(residual)
        self.register_buffer("expand_packed", torch.zeros(0, dtype=torch.uint8))
        self.register_buffer("dw_packed", torch.zeros(0, dtype=torch.uint8))
        self.register_buffer("project_packed", torch.zeros(0, dtype=torch.uint8))
        self.register_buffer("qparams", torch.tensor([1.0, 0] * 5, dtype=torch.float64))
        self.register_buffer("luts", torch.zeros(3, 256, dtype=torch.uint8))
        self.register_buffer("lut_qparams", torch.tensor([[0.0, 1.0, 0.0]] * 3, dtype=torch.float64))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_qconvs(cls, expand, dw, project, x_scale: float, x_zero_point: int, residual: Optional[bool] = None,
                    out_qparams: Optional[tuple] = None) -> "QuantizedInvertedResidual":
        """From quantized convs: ``mobilekernels.quant`` ``QConv`` steps (frozen, as
        ``mk.quantize`` leaves them) or ``mobilekernels.nn.QuantizedConv2d`` modules. ``expand``
        None for t == 1. ``x_scale`` / ``x_zero_point``: the block input's qparams;
        ``out_qparams``: ``(scale, zero_point)`` of the residual sum (needed with a residual)."""
        convs = [expand, dw, project]
        info = [_conv_info(c, i) if c is not None else None for i, c in enumerate(convs)]
        e, d, p = info
        if d is None or p is None:
            raise ValueError("dw and project convs are required")
        if not d["depthwise"] or d["kernel"][0] != d["kernel"][1] or d["stride"][0] != d["stride"][1] \
                or d["dilation"] != (1, 1) or d["in"] != d["out"]:
            raise ValueError("dw must be a square depthwise conv (groups == channels, multiplier 1, dilation 1)")
        if p["depthwise"] or p["kernel"] != (1, 1) or (e is not None and (e["depthwise"] or e["kernel"] != (1, 1))):
            raise ValueError("expand and project must be 1x1 convs")
        cin = e["in"] if e is not None else d["in"]
        chid = d["in"]
        if e is not None and e["out"] != chid or p["in"] != chid:
            raise ValueError(f"channel counts do not chain: expand {e and (e['in'], e['out'])}, dw {chid}, "
                             f"project {(p['in'], p['out'])}")
        acts = ("none" if e is None else e["act"], d["act"], p["act"])
        m = cls(cin, chid, p["out"], d["kernel"][0], d["stride"][0], d["pads"], acts, residual)
        if m.residual and out_qparams is None:
            raise ValueError("a residual block needs out_qparams=(scale, zero_point) of the sum")
        in_scale = float(x_scale)
        packs = []
        luts, lut_qp = torch.zeros(3, 256, dtype=torch.uint8), torch.tensor([[0.0, 1.0, 0.0]] * 3, dtype=torch.float64)
        for i, (c, inf) in enumerate(zip(convs, info)):
            if c is None:
                packs.append(torch.zeros(0, dtype=torch.uint8))
                continue
            packs.append(inf["pack"](in_scale))
            in_scale = inf["scale"]
            if inf.get("lut") is not None:
                luts[i].copy_(inf["lut"])
                lut_qp[i] = torch.tensor([1.0, inf["lut_scale"], inf["lut_zp"]], dtype=torch.float64)
                in_scale = inf["lut_scale"]
        m.luts, m.lut_qparams = luts, lut_qp
        m.expand_packed, m.dw_packed, m.project_packed = packs
        os_, oz = out_qparams if m.residual else (1.0, 0)
        q = [float(x_scale), int(x_zero_point)]
        q += [e["scale"], e["zp"]] if e is not None else [1.0, 0]
        q += [d["scale"], d["zp"], p["scale"], p["zp"], float(os_), int(oz)]
        m.qparams = torch.tensor(q, dtype=torch.float64)
        return m

    @classmethod
    def from_torch(cls, block: nn.Module, x_scale: float, x_zero_point: int) -> "QuantizedInvertedResidual":
        """From a PyTorch-quantized (``torch.ao`` convert) torchvision-style block: ``block.conv``
        holds quantized ``Conv2d`` / ``ConvReLU2d`` (directly or inside Conv-BN-act Sequentials),
        ``block.use_res_connect`` and, with a residual, ``block.skip_add`` (a ``QFunctional``
        whose scale / zero point are the sum's). A quantized module does not know its input's
        qparams: pass the previous layer's output ``x_scale`` / ``x_zero_point``. Results equal
        our unfused int8 ops (torch's quantized add may differ by one step: it divides by the
        output scale where we multiply by a scale ratio)."""
        from torch.ao.nn.quantized import Conv2d as TorchQConv2d

        from .quantized import QuantizedConv2d

        body = getattr(block, "conv", None)
        if not isinstance(body, nn.Sequential) or not hasattr(block, "use_res_connect"):
            raise TypeError(f"from_torch expects a torchvision-style block with .conv (Sequential) and "
                            f".use_res_connect, got {type(block).__name__}")
        convs = [m for m in body.modules() if isinstance(m, TorchQConv2d)]
        others = [m for m in body.modules() if not isinstance(m, (TorchQConv2d, nn.Sequential, nn.Identity))
                  and not any(m is c or any(m is x for x in c.modules()) for c in convs)]
        if others or len(convs) not in (2, 3):
            raise ValueError(f"expected 2 or 3 quantized convs (expand?, depthwise, project) and nothing else in "
                             f"block.conv, got {[type(m).__name__ for m in convs + others]}")
        q = [QuantizedConv2d.from_torch(c) for c in convs]
        expand, dw, project = ([None] + q) if len(q) == 2 else q
        residual = bool(block.use_res_connect)
        out = None
        if residual:
            add = getattr(block, "skip_add", None)
            if add is None or not hasattr(add, "scale"):
                raise ValueError("a residual block needs a quantized skip_add (torch.ao QFunctional) for the "
                                 "sum's scale and zero point")
            out = (float(add.scale), int(add.zero_point))
        return cls.from_qconvs(expand, dw, project, x_scale, x_zero_point, residual, out)

    # -- running --------------------------------------------------------------------------
    def _packs(self) -> qops.QInvertedResidualPacks:
        if self.dw_packed.numel() == 0:
            raise RuntimeError("QuantizedInvertedResidual has no weights: build it with from_qconvs "
                               "or load a state_dict")
        return qops.QInvertedResidualPacks(self.expand_packed if self.expand_packed.numel() else None, self.dw_packed,
                                           self.project_packed, self.hidden_channels, self.out_channels,
                                           self.kernel_size)

    def input_qparams(self) -> tuple[float, int]:
        return float(self.qparams[0]), int(self.qparams[1])

    def output_qparams(self) -> tuple[float, int]:
        q = self.qparams
        if self.residual:
            return float(q[8]), int(q[9])
        if self.lut_qparams[2, 0]:
            return float(self.lut_qparams[2, 1]), int(self.lut_qparams[2, 2])
        return float(q[6]), int(q[7])

    def _lut_call(self) -> tuple:
        """(luts, lut_qparams) for qops.qinverted_residual: None where a stage has no table."""
        lq = self.lut_qparams.tolist()
        if not any(r[0] for r in lq):
            return None, None
        return (tuple(self.luts[i] if lq[i][0] else None for i in range(3)),
                tuple((lq[i][1], int(lq[i][2])) if lq[i][0] else None for i in range(3)))

    # Eager calls skip the torch.ops dispatcher and the per-call validation: the validated
    # arguments of the C++ call are cached per (input shape, dtype, qparams, packs, settings)
    # (measured ~60 us of Python per block and call before, on MobileNetV2's 17 blocks).
    _calls: Optional[dict] = None

    def forward_codes(self, q: torch.Tensor, scale: float, zero_point: int, band_rows: int = 0) -> torch.Tensor:
        """uint8 / int8 codes ``[N, Cin, H, W]`` with their qparams -> uint8 codes (channels_last)
        with :meth:`output_qparams`. ``scale`` must be the one the block was built for."""
        if type(q) is torch.Tensor and unobserved():
            key = (q.shape, q.dtype, scale, zero_point, band_rows, tensor_key(self.expand_packed),
                   tensor_key(self.dw_packed), tensor_key(self.project_packed), tensor_key(self.qparams),
                   tensor_key(self.luts), tensor_key(self.lut_qparams), self.stride, tuple(self.pads), tuple(self.activations), self.residual)
            call = cached_call(self, key)
            if call is None:
                call = remember_call(self, key, self._prepare_call(q, scale, zero_point, band_rows))
            out_shape, ptrs, args = call
            out = torch.empty(out_shape, dtype=torch.uint8, memory_format=torch.channels_last)
            if out_shape[0] == 0:
                return out
            q = q.contiguous(memory_format=torch.channels_last)  # no copy when already NHWC
            _run_q8_block(q.data_ptr(), *ptrs, out.data_ptr(), *args, torch.get_num_threads())
            return out
        return self._forward_codes_op(q, scale, zero_point, band_rows)

    def _op_qparams(self, scale):
        """(input scale, stage (scale, zp) pairs, residual (scale, zp)) for a call at ``scale``."""
        xs = float(self.qparams[0])
        if float(scale) != xs:
            raise ValueError(f"this block was packed for input scale {xs!r}, got {scale!r} (the int32 biases "
                             "depend on it): rebuild it with from_qconvs for the new scale")
        qp = self.qparams.tolist()
        return xs, [(qp[2], int(qp[3])), (qp[4], int(qp[5])), (qp[6], int(qp[7]))], (qp[8], int(qp[9]))

    def _prepare_call(self, q, scale, zero_point, band_rows):
        """Validate once (the registered op's own checks) and return what the C++ call needs."""
        packs = self._packs()
        xs, stages, out_qp = self._op_qparams(scale)
        op_args = qops._block_call_args(q, packs, xs, int(zero_point), stages, self.stride, self.pads,
                                        self.activations, self.residual, out_qp, torch.uint8)
        (n, oh, ow), args = _qblockops._args(*op_args, band_rows, *qops._lut_args(*self._lut_call()))
        e = packs.expand
        ptrs = (0 if e is None else e.data_ptr(), 0 if e is None else e.numel(), packs.dw.data_ptr(),
                packs.dw.numel(), packs.project.data_ptr(), packs.project.numel())
        return (n, self.out_channels, oh, ow), ptrs, args

    def _forward_codes_op(self, q, scale, zero_point, band_rows=0):
        """The same through the registered op (traceable; validates every call)."""
        packs = self._packs()
        xs, stages, out_qp = self._op_qparams(scale)
        luts, lut_qp = self._lut_call()
        return qops.qinverted_residual(q, packs, xs, int(zero_point), stages, self.stride, self.pads,
                                       self.activations, self.residual, out_qp, torch.uint8, band_rows, luts, lut_qp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dtype != torch.quint8:
            raise TypeError(f"QuantizedInvertedResidual expects a torch.quint8 tensor, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.qscheme() != torch.per_tensor_affine:
            raise ValueError(f"input must be per-tensor quantized, got {x.qscheme()}")
        x = x.contiguous(memory_format=torch.channels_last)
        y = self.forward_codes(x.int_repr(), float(x.q_scale()), int(x.q_zero_point()))
        s, z = self.output_qparams()
        return torch._make_per_tensor_quantized_tensor(y, s, z)

    def info(self, x_shape, num_threads: Optional[int] = None) -> dict:
        """Kernels, band rows, scratch bytes per thread, busy threads, expanded-tensor bytes."""
        qp = self.qparams.tolist()
        stages = [(qp[2], int(qp[3])), (qp[4], int(qp[5])), (qp[6], int(qp[7]))]
        x = torch.empty((1, 1, 1, 1), dtype=torch.uint8).expand(tuple(x_shape))  # only its shape is read
        luts, lut_qp = self._lut_call()
        return qops.qinverted_residual_info(x, self._packs(), qp[0], int(qp[1]), stages, self.stride, self.pads,
                                            self.activations, self.residual, (qp[8], int(qp[9])),
                                            num_threads=num_threads, luts=luts, lut_qparams=lut_qp)

    def __getstate__(self):
        state = super().__getstate__().copy()
        state["_calls"] = None  # raw pointers: rebuilt on first use
        return state

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("expand_packed", "dw_packed", "project_packed"):  # packs change size
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        if prefix + "qparams" in state_dict and prefix + "luts" not in state_dict:  # saved before tables existed
            state_dict = dict(state_dict)
            state_dict[prefix + "luts"] = torch.zeros(3, 256, dtype=torch.uint8)
            state_dict[prefix + "lut_qparams"] = torch.tensor([[0.0, 1.0, 0.0]] * 3, dtype=torch.float64)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.hidden_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, pads={self.pads}, activations={self.activations}, residual={self.residual}")


def _conv_info(c, index: int) -> dict:
    """Shape, activation, output qparams and a pack(in_scale) of one quantized conv."""
    from ..quant.modules import QConv
    from .quantized import QuantizedConv2d

    stage = ("expand", "dw", "project")[index]
    if isinstance(c, QConv):
        if c.kind not in ("pointwise", "depthwise") or c.packed.numel() == 0:
            raise ValueError(f"{stage}: a frozen pointwise or depthwise QConv is needed (kind {c.kind}, "
                             f"packed {c.packed.numel() > 0})")
        s, z = c.out_qparams()
        lut = {}
        if c.post is not None:  # conv requantized to the table's input qparams, then the table
            lut = dict(lut=c.lut, lut_scale=s, lut_zp=z)
            s, z = float(c.mid_scale), int(c.mid_zp)
        packed, packed_scale = c.packed, float(c.in_scale)

        def pack(in_scale: float) -> torch.Tensor:
            if in_scale != packed_scale:
                raise ValueError(f"{stage}: the QConv was packed for input scale {packed_scale!r}, the block feeds "
                                 f"it {in_scale!r}")
            return packed

        return dict(depthwise=c.kind == "depthwise", kernel=tuple(c.kernel), stride=tuple(c.stride),
                    dilation=tuple(c.dilation), pads=tuple(c.pads), act=c.act, scale=s, zp=z, pack=pack,
                    **lut, **{"in": c.in_channels, "out": c.out_channels})
    if isinstance(c, QuantizedConv2d):
        if c.activation not in _FUSABLE_ACTS:
            raise ValueError(f"{stage}: activation {c.activation!r} cannot be fused")
        return dict(depthwise=c.depthwise, kernel=tuple(c.kernel_size), stride=tuple(c.stride),
                    dilation=tuple(c.dilation), pads=tuple(c.pads), act=c.activation, scale=c.scale, zp=c.zero_point,
                    pack=lambda in_scale: c._pack(in_scale).clone(), **{"in": c.in_channels, "out": c.out_channels})
    raise TypeError(f"{stage} must be a mobilekernels quant QConv or nn.QuantizedConv2d, got {type(c).__name__}")
