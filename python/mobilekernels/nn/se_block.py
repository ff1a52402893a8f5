"""``SEInvertedResidual``: the fused fp32 MobileNetV3 block with squeeze-excitation.

Built by ``InvertedResidual.from_torch`` (or ``SEInvertedResidual.from_torch``) from a block
whose body holds a ``SqueezeExcitation`` (torchvision's or ``models.attention``'s) between the
depthwise and the project conv. Same settings and eager / compile / autograd paths as
:class:`~mobilekernels.nn.InvertedResidual`, plus the SE's ``fc1``/``fc2`` 1x1 weights, its
activation (``se_activation``, ReLU in V3) and its gate (``hardsigmoid`` in V3, or ``sigmoid``).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ._pack_cache import tensor_key
from .block import InvertedResidual
from .. import _C, _ops, _pwops, _seops


class SEInvertedResidual(InvertedResidual):
    """Fused 1x1 expand (+act) -> kxk depthwise (+act) -> SE (mean, fc1 + act, fc2 + gate, scale)
    -> 1x1 project (+ x). Extra parameters: ``fc1_weight [Csq, Chid, 1, 1]``, ``fc1_bias``,
    ``fc2_weight [Chid, Csq, 1, 1]``, ``fc2_bias``. The C++ op keeps the whole depthwise output
    of a call in one buffer (SE needs its mean before projecting): see
    ``csrc/ops/f32_se_inverted_residual_op.h``."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, squeeze_channels: int,
                 kernel_size: int = 3, stride: int = 1, padding=None, expand: Optional[bool] = None,
                 activations=("hardswish", "hardswish", "none"), se_activation: str = "relu",
                 gate: str = "hardsigmoid", residual: Optional[bool] = None, band_rows: int = 0):
        if se_activation not in _ops.ACTIVATIONS:
            raise ValueError(f"se_activation must be one of {sorted(_ops.ACTIVATIONS)}, got {se_activation!r}")
        if gate not in _seops.GATES:
            raise ValueError(f"gate must be one of {sorted(_seops.GATES)}, got {gate!r}")
        if squeeze_channels < 1:
            raise ValueError(f"squeeze_channels must be >= 1, got {squeeze_channels}")
        super().__init__(in_channels, hidden_channels, out_channels, kernel_size, stride, padding, expand,
                         activations, residual, band_rows)
        self.squeeze_channels, self.se_activation, self.gate = squeeze_channels, se_activation, gate
        f32 = dict(dtype=torch.float32)
        self.fc1_weight = nn.Parameter(torch.empty(squeeze_channels, hidden_channels, 1, 1, **f32))
        self.fc1_bias = nn.Parameter(torch.zeros(squeeze_channels, **f32))
        self.fc2_weight = nn.Parameter(torch.empty(hidden_channels, squeeze_channels, 1, 1, **f32))
        self.fc2_bias = nn.Parameter(torch.zeros(hidden_channels, **f32))
        for w in (self.fc1_weight, self.fc2_weight):
            nn.init.kaiming_uniform_(w, a=5 ** 0.5)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", se={self.squeeze_channels} {self.se_activation}/{self.gate}")

    def _weights(self):
        return super()._weights() + (self.fc1_weight, self.fc1_bias, self.fc2_weight, self.fc2_bias)

    def _pack(self):
        key = tuple(tensor_key(t) for t in self._weights())
        if self._pack_key != key:
            ew, eb, dw, db, pw, pb, f1w, f1b, f2w, f2b = self._weights()
            epk = _pwops.pack_pw(ew, eb) if ew is not None else None
            self._packs = (epk, _ops.pack_dw(dw, db), _pwops.pack_pw(pw, pb), _pwops.pack_pw(f1w, f1b),
                           _pwops.pack_pw(f2w, f2b))
            self._pack_ptrs = ((epk.data_ptr(), epk.numel()) if epk is not None else (0, 0)) + tuple(
                v for p in self._packs[1:] for v in (p.data_ptr(), p.numel()))
            self._pack_key = key
        return self._packs

    def _call_args(self, shape):
        return _seops.se_args(shape, self.in_channels, self.hidden_channels, self.out_channels,
                              self.squeeze_channels, self.kernel_size, self.stride, list(self.padding),
                              self.activations, self.se_activation, self.gate, self.residual, self.band_rows,
                              self.expand_weight is not None)

    # (x, *self._pack_ptrs [expand, dw, project, fc1, fc2 with numels], out, *args, num_threads)
    _cpp_run = staticmethod(_C.f32_se_inverted_residual)

    def _se_scale(self, d: torch.Tensor) -> torch.Tensor:
        s = d.mean((2, 3), keepdim=True)
        s = F.conv2d(s, self.fc1_weight, self.fc1_bias)
        s = {"none": lambda v: v, "relu": F.relu, "relu6": F.relu6, "hardswish": F.hardswish}[self.se_activation](s)
        s = F.conv2d(s, self.fc2_weight, self.fc2_bias)
        return F.hardsigmoid(s) if self.gate == "hardsigmoid" else torch.sigmoid(s)

    def _after_depthwise(self, y: torch.Tensor) -> torch.Tensor:
        return y * self._se_scale(y)

    def _traced_op(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mobilekernels.se_inverted_residual(x, *self._weights(), self.stride, self.padding,
                                                            *self.activations, self.se_activation, self.gate,
                                                            self.residual)

    def _packed_op(self, x: torch.Tensor) -> torch.Tensor:
        epk, dpk, ppk, f1pk, f2pk = self._pack()
        return torch.ops.mobilekernels.se_inverted_residual_packed(
            x, epk, dpk, ppk, f1pk, f2pk, self.hidden_channels, self.out_channels, self.squeeze_channels,
            self.kernel_size, self.stride, self.padding, *self.activations, self.se_activation, self.gate,
            self.residual, self.band_rows)

    def scratch_info(self, x_shape, num_threads: Optional[int] = None) -> dict:
        """Kernels and the depthwise-output buffer bytes for input ``x_shape`` (the expand rows'
        per-thread scratch is the plain block's, see ``InvertedResidual.scratch_info``)."""
        return _seops.se_inverted_residual_info(x_shape, self.in_channels, self.hidden_channels, self.out_channels,
                                                self.squeeze_channels, self.kernel_size, self.stride, self.padding,
                                                self.activations, self.se_activation, self.gate, self.residual,
                                                self.band_rows, expand=self.expand_weight is not None)
