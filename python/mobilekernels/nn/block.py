"""``InvertedResidual``: the fused fp32 MobileNetV2/V3 block, built from a torch block.

``InvertedResidual.from_torch(block)`` accepts a torchvision-style block (``.conv`` Sequential
of [Conv-BN-act expand], dw Conv-BN-act, project Conv, BN; ``use_res_connect``), mobilekernels'
own ``models.blocks.InvertedResidual`` and a MobileNetV3-style ``.block``. A block with a
``SqueezeExcitation`` between the depthwise and the project conv becomes the sibling
:class:`~mobilekernels.nn.SEInvertedResidual` (``nn/se_block.py``); other attention (ECA,
CBAM) is refused. BatchNorm is folded into the convs (running statistics: convert a model in
eval mode).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ._fast_call import FastCallMixin
from ._pack_cache import cached_call, remember_call, tensor_key
from .. import _C, _chain, _ops, _pwops
from .._eager import unobserved
from .._checks import conv_padding

_ACT_NAMES = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Hardswish: "hardswish"}


def _fold_bn(conv: nn.Conv2d, bn: Optional[nn.BatchNorm2d]):
    """(weight, bias) of conv followed by bn in eval mode, folded in float64."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if bn is not None:
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError("cannot fold a BatchNorm2d without running statistics")
        scale = (bn.weight.detach().double() if bn.weight is not None else 1.0) / torch.sqrt(
            bn.running_var.double() + bn.eps)
        shift = bn.bias.detach().double() if bn.bias is not None else 0.0
        w = w * scale.reshape(-1, 1, 1, 1)
        b = (b - bn.running_mean.double()) * scale + shift
    return w.float(), b.float()


_GATE_NAMES = {nn.Hardsigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid"}


def _is_se(m: nn.Module) -> bool:
    """A torchvision / mobilekernels ``SqueezeExcitation`` (avgpool -> fc1 -> act -> fc2 -> gate,
    times the input) whose parts the fused SE block computes."""
    if type(m).__name__ != "SqueezeExcitation":
        return False
    fc1, fc2 = getattr(m, "fc1", None), getattr(m, "fc2", None)
    pool = getattr(m, "avgpool", None)
    return (isinstance(fc1, nn.Conv2d) and isinstance(fc2, nn.Conv2d) and isinstance(pool, nn.AdaptiveAvgPool2d)
            and pool.output_size in (1, (1, 1)) and type(getattr(m, "activation", None)) in _ACT_NAMES
            and type(getattr(m, "scale_activation", None)) in _GATE_NAMES
            and all(c.kernel_size == (1, 1) and c.groups == 1 and c.stride == (1, 1) and c.padding == (0, 0)
                    and c.dilation == (1, 1) for c in (fc1, fc2)))


def _leaves(m: nn.Module) -> list[nn.Module]:
    if _is_se(m):
        return [m]
    kids = list(m.children())
    if not kids:
        return [m]
    if isinstance(m, nn.Sequential):
        return [leaf for k in kids for leaf in _leaves(k)]
    raise ValueError(f"unsupported module {type(m).__name__} in the block (attention other than SqueezeExcitation is not fused)")


def _stages(body: nn.Module):
    """Group the flattened body into (conv, bn or None, activation name) stages; also return the
    SqueezeExcitation, if any, and the number of stages before it."""
    stages: list[list] = []
    se = None
    for leaf in _leaves(body):
        if _is_se(leaf):
            if se is not None:
                raise ValueError("more than one SqueezeExcitation in the block")
            se = (leaf, len(stages))
        elif isinstance(leaf, nn.Conv2d):
            stages.append([leaf, None, "none"])
        elif not stages:
            raise ValueError(f"block body starts with {type(leaf).__name__}, expected a Conv2d")
        elif isinstance(leaf, nn.BatchNorm2d) and stages[-1][1] is None and stages[-1][2] == "none":
            stages[-1][1] = leaf
        elif type(leaf) in _ACT_NAMES and stages[-1][2] == "none":
            stages[-1][2] = _ACT_NAMES[type(leaf)]
        elif isinstance(leaf, (nn.Identity, nn.Dropout)) and not (isinstance(leaf, nn.Dropout) and leaf.training):
            continue
        else:
            raise ValueError(f"unsupported module {type(leaf).__name__} in the block (only Conv2d, BatchNorm2d, "
                             "ReLU, ReLU6, Hardswish are fused)")
    return [tuple(s) for s in stages], se  # type: ignore[misc]


class InvertedResidual(FastCallMixin, nn.Module):
    """Fused inverted residual: 1x1 expand (+act) -> kxk depthwise stride s (+act) -> 1x1
    project (+act, usually none) -> + x when ``residual``. fp32, NCHW-shaped, channels_last out.

    Parameters hold the BN-folded weights in torch layouts: ``expand_weight [Chid, Cin, 1, 1]``
    (absent for t == 1), ``dw_weight [Chid, 1, k, k]``, ``project_weight [Cout, Chid, 1, 1]`` and
    their biases. Inference runs the fused op on packs cached until a weight changes; with
    autograd on, it runs our three differentiable ops instead (same math, unfused).
    ``band_rows`` (0 = automatic) forces the output rows per band, for benchmarking.

    Eager inference (no grad, not compiling) calls the C++ op directly, skipping the
    ``torch.ops`` dispatcher: the geometry is validated once per input shape and cached until a
    setting changes; under ``torch.compile``/export the registered op runs.
    """

    _calls = None  # input shape -> (output shape, C++ arguments); see _eager
    _pack_ptrs = None

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding=None, expand: Optional[bool] = None,
                 activations=("relu6", "relu6", "none"), residual: Optional[bool] = None, band_rows: int = 0):
        super().__init__()
        expand = hidden_channels != in_channels if expand is None else expand
        if not expand and hidden_channels != in_channels:
            raise ValueError(f"without expansion hidden_channels ({hidden_channels}) must equal in_channels ({in_channels})")
        if len(activations) != 3 or any(a not in _ops.ACTIVATIONS for a in activations):
            raise ValueError(f"activations must be three of {sorted(_ops.ACTIVATIONS)}, got {activations!r}")
        pads = conv_padding(kernel_size // 2 if padding is None else padding, (kernel_size,) * 2, (stride,) * 2, (1, 1))
        self.in_channels, self.hidden_channels, self.out_channels = in_channels, hidden_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, list(pads)
        self.activations = tuple(activations)
        self.residual = (stride == 1 and in_channels == out_channels) if residual is None else bool(residual)
        self.band_rows = band_rows
        f32 = dict(dtype=torch.float32)
        if expand:
            self.expand_weight = nn.Parameter(torch.empty(hidden_channels, in_channels, 1, 1, **f32))
            self.expand_bias = nn.Parameter(torch.zeros(hidden_channels, **f32))
        else:
            self.register_parameter("expand_weight", None)
            self.register_parameter("expand_bias", None)
        self.dw_weight = nn.Parameter(torch.empty(hidden_channels, 1, kernel_size, kernel_size, **f32))
        self.dw_bias = nn.Parameter(torch.zeros(hidden_channels, **f32))
        self.project_weight = nn.Parameter(torch.empty(out_channels, hidden_channels, 1, 1, **f32))
        self.project_bias = nn.Parameter(torch.zeros(out_channels, **f32))
        for w in (self.expand_weight, self.dw_weight, self.project_weight):
            if w is not None:
                nn.init.kaiming_uniform_(w, a=5 ** 0.5)
        self._packs = None
        self._pack_key = None

    @classmethod
    def from_torch(cls, block: nn.Module, band_rows: int = 0) -> "InvertedResidual":
        """Fold and fuse a torch inverted-residual block (see the module docstring); a block with
        a SqueezeExcitation after its depthwise conv gives an ``SEInvertedResidual``."""
        body = getattr(block, "conv", None)
        if not isinstance(body, nn.Sequential):
            body = getattr(block, "block", None)
        if not isinstance(body, nn.Sequential):
            raise ValueError(f"{type(block).__name__} has no .conv / .block Sequential to fuse")
        stages, se = _stages(body)
        if len(stages) not in (2, 3):
            raise ValueError(f"expected [expand,] depthwise, project convs, found {len(stages)} convs")
        if se is not None:
            if se[1] != len(stages) - 1:
                raise ValueError("the SqueezeExcitation must sit between the depthwise and the project conv")
            from .se_block import SEInvertedResidual

            if not issubclass(cls, SEInvertedResidual):
                cls = SEInvertedResidual
        else:
            from .se_block import SEInvertedResidual

            if issubclass(cls, SEInvertedResidual):
                raise ValueError(f"{type(block).__name__} has no SqueezeExcitation to fuse")
        ex = stages[0] if len(stages) == 3 else None
        dw, pr = stages[-2], stages[-1]
        dconv, pconv = dw[0], pr[0]
        if ex is not None and (ex[0].kernel_size != (1, 1) or ex[0].groups != 1 or ex[0].stride != (1, 1)):
            raise ValueError(f"expand conv must be 1x1 stride 1 ungrouped, got {ex[0]}")
        if (dconv.groups != dconv.in_channels or dconv.out_channels != dconv.in_channels
                or dconv.kernel_size[0] != dconv.kernel_size[1] or dconv.stride[0] != dconv.stride[1]
                or dconv.dilation != (1, 1)):
            raise ValueError(f"depthwise conv must be square, groups == channels, no multiplier/dilation, got {dconv}")
        if pconv.kernel_size != (1, 1) or pconv.groups != 1 or pconv.stride != (1, 1):
            raise ValueError(f"project conv must be 1x1 stride 1 ungrouped, got {pconv}")
        cin = ex[0].in_channels if ex is not None else dconv.in_channels
        residual = bool(getattr(block, "use_res_connect", False))
        pad = dconv.padding if isinstance(dconv.padding, str) else tuple(dconv.padding)
        se_kw = {}
        if se is not None:
            mod = se[0]
            se_kw = dict(squeeze_channels=mod.fc1.out_channels, se_activation=_ACT_NAMES[type(mod.activation)],
                         gate=_GATE_NAMES[type(mod.scale_activation)])
            if mod.fc1.in_channels != dconv.in_channels or mod.fc2.out_channels != dconv.in_channels:
                raise ValueError(f"SqueezeExcitation on {mod.fc1.in_channels} channels after a depthwise conv of "
                                 f"{dconv.in_channels}")
        m = cls(cin, dconv.in_channels, pconv.out_channels, kernel_size=dconv.kernel_size[0], stride=dconv.stride[0],
                padding=pad, expand=ex is not None, activations=(ex[2] if ex else "none", dw[2], pr[2]),
                residual=residual, band_rows=band_rows, **se_kw)
        with torch.no_grad():
            if ex is not None:
                w, b = _fold_bn(ex[0], ex[1])
                m.expand_weight.copy_(w)
                m.expand_bias.copy_(b)
            for (conv, bn, _), wp, bp in ((dw, m.dw_weight, m.dw_bias), (pr, m.project_weight, m.project_bias)):
                w, b = _fold_bn(conv, bn)
                wp.copy_(w)
                bp.copy_(b)
            if se is not None:
                for conv, wp, bp in ((se[0].fc1, m.fc1_weight, m.fc1_bias), (se[0].fc2, m.fc2_weight, m.fc2_bias)):
                    w, b = _fold_bn(conv, None)
                    wp.copy_(w)
                    bp.copy_(b)
        return m

    def extra_repr(self) -> str:
        return (f"{self.in_channels}->{self.hidden_channels}->{self.out_channels}, k={self.kernel_size}, "
                f"stride={self.stride}, activations={self.activations}, residual={self.residual}")

    def _weights(self):
        return (self.expand_weight, self.expand_bias, self.dw_weight, self.dw_bias, self.project_weight,
                self.project_bias)

    def _pack(self):
        key = tuple(tensor_key(t) for t in self._weights())
        if self._pack_key != key:
            ew, eb, dw, db, pw, pb = self._weights()
            epk = _pwops.pack_pw(ew, eb) if ew is not None else None
            self._packs = (epk, _ops.pack_dw(dw, db), _pwops.pack_pw(pw, pb))
            self._pack_ptrs = ((epk.data_ptr(), epk.numel()) if epk is not None else (0, 0)) + tuple(
                v for p in self._packs[1:] for v in (p.data_ptr(), p.numel()))
            self._pack_key = key
        return self._packs

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if _chain.invalidates(name):  # a setting or weight changed: cached calls and chains are stale
            self.__dict__["_calls"] = None
            _chain.config_changed()

    def _call_args(self, shape):
        """The validated C++ arguments after the output pointer, for input ``shape``."""
        return _pwops._ir_args(shape, self.in_channels, self.hidden_channels, self.out_channels, self.kernel_size,
                               self.stride, list(self.padding), self.activations, self.residual, self.band_rows,
                               self.expand_weight is not None)

    # The C++ entry point: (x, *self._pack_ptrs, out, *args, num_threads), as the binding takes them.
    _cpp_run = staticmethod(_C.f32_inverted_residual)

    def _plan_call(self, shape):
        """Validate a fused call for input ``shape`` once; cache (output shape, C++ arguments)."""
        args = self._call_args(shape)
        _, _, _, oh, ow = _pwops._ir_geometry(shape, self.in_channels, self.hidden_channels, self.out_channels,
                                              self.kernel_size, self.stride, self.padding, self.activations,
                                              self.residual)
        return remember_call(self, shape, ((shape[0], self.out_channels, oh, ow), args))

    def _eager(self, x: torch.Tensor) -> torch.Tensor:
        """The fused op without the dispatcher (same C++ call as ``inverted_residual_packed``)."""
        if x.dtype is not torch.float32 or x.device.type != "cpu" or x.dim() != 4:
            _pwops._check_x(x)  # raises the precise error
        shape = x.shape
        call = cached_call(self, shape)
        if call is None:
            _pwops._check_x(x)
            call = self._plan_call(shape)
        self._pack()
        out_shape, args = call
        out = torch.empty(out_shape, dtype=torch.float32, memory_format=torch.channels_last)
        if out_shape[0] == 0:
            return out
        x = x.contiguous(memory_format=torch.channels_last)
        self._cpp_run(x.data_ptr(), *self._pack_ptrs, out.data_ptr(), *args, torch.get_num_threads())
        return out

    def _unfused(self, x: torch.Tensor) -> torch.Tensor:
        ae, ad, ap = self.activations
        y = x
        if self.expand_weight is not None:
            y = torch.ops.mobilekernels.conv1x1(y, self.expand_weight, self.expand_bias, ae)
        y = torch.ops.mobilekernels.dwconv2d(y, self.dw_weight, self.dw_bias, [self.stride] * 2, self.padding,
                                            [1, 1], ad)
        y = self._after_depthwise(y)
        y = torch.ops.mobilekernels.conv1x1(y, self.project_weight, self.project_bias, ap)
        return y + x if self.residual else y

    def _after_depthwise(self, y: torch.Tensor) -> torch.Tensor:
        """Hook of the unfused path between depthwise and project (SEInvertedResidual scales here)."""
        return y

    def _eager_call(self, x):
        # Eager inference (cheapest checks first); None: forward's other routes decide.
        if not torch.is_grad_enabled() and type(x) is torch.Tensor and unobserved():
            return self._eager(x)
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._eager_call(x)
        if out is not None:
            return out
        if torch.is_grad_enabled() and (x.requires_grad or any(
                t is not None and t.requires_grad for t in self._weights())) and not torch.compiler.is_compiling():
            return self._unfused(x)  # the fused op is inference-only
        if not unobserved():  # compile / export / jit trace / a torch mode records the op
            return self._traced_op(x)
        if type(x) is torch.Tensor:  # grad on, but nothing requires it
            return self._eager(x)
        return self._packed_op(x)

    def _traced_op(self, x: torch.Tensor) -> torch.Tensor:
        """The registered op on the raw weights: what torch.compile / export record."""
        return torch.ops.mobilekernels.inverted_residual(x, *self._weights(), self.stride, self.padding,
                                                         *self.activations, self.residual)

    def _packed_op(self, x: torch.Tensor) -> torch.Tensor:
        """The registered op on the packs (tensor subclasses, fx proxies)."""
        epk, dpk, ppk = self._pack()
        return torch.ops.mobilekernels.inverted_residual_packed(
            x, epk, dpk, ppk, self.hidden_channels, self.out_channels, self.kernel_size, self.stride,
            self.padding, *self.activations, self.residual, self.band_rows)

    def scratch_info(self, x_shape, num_threads: Optional[int] = None) -> dict:
        """Kernels, band height, per-thread scratch bytes and busy threads for input ``x_shape``."""
        return _pwops.inverted_residual_info(x_shape, self.in_channels, self.hidden_channels, self.out_channels,
                                             self.kernel_size, self.stride, self.padding, self.activations,
                                             self.residual, self.band_rows, num_threads,
                                             expand=self.expand_weight is not None)

    def __getstate__(self):
        state = super().__getstate__().copy()
        # derived: rebuilt on first use
        state["_packs"], state["_pack_key"], state["_pack_ptrs"], state["_calls"] = None, None, None, None
        return state
