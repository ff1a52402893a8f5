"""Typed functional wrappers for the fp32 pointwise conv and the fused inverted-residual blocks
(``torch.ops.mobilekernels.conv1x1*`` / ``inverted_residual*`` / ``se_inverted_residual``).

A plain eager call runs the op's CPU implementation directly (no dispatcher, same validation
and result); when an input needs grad, under torch.compile, export or any torch mode the
registered op runs (``_eager``).

Tensors are NCHW-shaped as in torch; a ``channels_last`` input is read in place (it is NHWC in
memory) and results come back ``channels_last``. Activations: ``none | relu | relu6 | hardswish``.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import torch

from . import _ops, _pwops, _seops
from ._checks import check_tensor, conv_padding
from ._eager import eager

ACTS_V2 = ("relu6", "relu6", "none")


def conv1x1(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
            activation: str = "none") -> torch.Tensor:
    """``activation(F.conv2d(x, weight, bias))`` for a 1x1, stride-1, ungrouped ``weight``
    ``[Cout, Cin, 1, 1]``: one GEMM of ``(N*H*W) x Cin`` by ``Cin x Cout``. Differentiable."""
    if type(activation) is str and eager((x, weight), (bias,)):  # no dispatcher (see _eager)
        return _pwops._conv1x1_cpu(x, weight, bias, activation)
    return torch.ops.mobilekernels.conv1x1(x, weight, bias, activation)


def conv1x1_pack(weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Pack a ``[Cout, Cin, 1, 1]`` weight (and bias) once for :func:`conv1x1_packed`."""
    if eager((weight,), (bias,)):
        return _pwops.pack_pw(weight, bias)
    return torch.ops.mobilekernels.conv1x1_pack(weight, bias)


def conv1x1_packed(x: torch.Tensor, packed: torch.Tensor, out_channels: int,
                   activation: str = "none") -> torch.Tensor:
    """:func:`conv1x1` on a prepacked weight (inference only)."""
    if type(out_channels) is int and type(activation) is str and eager((x, packed)):
        return _pwops.conv1x1_packed_eager(x, packed, out_channels, activation)
    return torch.ops.mobilekernels.conv1x1_packed(x, packed, out_channels, activation)


def _pads(kernel: int, padding) -> list[int]:
    return list(conv_padding(kernel // 2 if padding is None else padding, (kernel, kernel), (1, 1), (1, 1)))


def _block_args(x, dw_weight, project_weight, stride, residual):
    """Checks shared by the raw-weight block ops; returns (kernel size, residual flag)."""
    check_tensor("x", x, torch.float32, 4)
    check_tensor("dw_weight", dw_weight, torch.float32, 4)
    check_tensor("project_weight", project_weight, torch.float32, 4)
    if residual is None:
        residual = stride == 1 and x.shape[1] == project_weight.shape[0]
    return int(dw_weight.shape[2]), residual


def inverted_residual(x: torch.Tensor, expand_weight: Optional[torch.Tensor], expand_bias: Optional[torch.Tensor],
                      dw_weight: torch.Tensor, dw_bias: Optional[torch.Tensor], project_weight: torch.Tensor,
                      project_bias: Optional[torch.Tensor], stride: int = 1, padding=None,
                      activations: Sequence[str] = ACTS_V2, residual: Optional[bool] = None) -> torch.Tensor:
    """The fused MobileNetV2/V3 (no SE) block on raw (BN-folded) weights, packing every call:

    ``y = act_p(project(act_d(dw(act_e(expand(x)))))) (+ x)``

    Args:
        expand_weight: ``[Chid, Cin, 1, 1]`` or None (the t == 1 block, Chid == Cin).
        dw_weight: ``[Chid, 1, k, k]``; ``padding`` defaults to ``k // 2`` (any torch form).
        project_weight: ``[Cout, Chid, 1, 1]``.
        activations: (expand, depthwise, project) activation names.
        residual: add ``x``; default ``stride == 1 and Cin == Cout``.
    """
    k, residual = _block_args(x, dw_weight, project_weight, stride, residual)
    acts = _acts(activations)
    args = (x, expand_weight, expand_bias, dw_weight, dw_bias, project_weight, project_bias, stride,
            _pads(k, padding), *acts, residual)
    if _plain(stride, residual, acts) and eager((x, dw_weight, project_weight),
                                                (expand_weight, expand_bias, dw_bias, project_bias)):
        return _pwops._inverted_residual_cpu(*args)
    return torch.ops.mobilekernels.inverted_residual(*args)


class InvertedResidualPacks(NamedTuple):
    """The three packs of a block (``expand`` None for t == 1) and the shape facts they encode."""
    expand: Optional[torch.Tensor]
    dw: torch.Tensor
    project: torch.Tensor
    hidden_channels: int
    out_channels: int
    kernel: int


def inverted_residual_pack(expand_weight, expand_bias, dw_weight, dw_bias, project_weight,
                           project_bias) -> InvertedResidualPacks:
    """Pack a block's (BN-folded) weights once for :func:`inverted_residual_packed`."""
    epk = conv1x1_pack(expand_weight, expand_bias) if expand_weight is not None else None
    dpk = _ops.pack_dw(dw_weight, dw_bias) if eager((dw_weight,), (dw_bias,)) else \
        torch.ops.mobilekernels.dwconv2d_pack(dw_weight, dw_bias)
    return InvertedResidualPacks(epk, dpk,
                                 conv1x1_pack(project_weight, project_bias), int(dw_weight.shape[0]),
                                 int(project_weight.shape[0]), int(dw_weight.shape[2]))


def inverted_residual_packed(x: torch.Tensor, packs: InvertedResidualPacks, stride: int = 1, padding=None,
                             activations: Sequence[str] = ACTS_V2, residual: Optional[bool] = None,
                             band_rows: int = 0) -> torch.Tensor:
    """:func:`inverted_residual` on prepacked weights (inference). ``band_rows`` forces the
    number of output rows per band (0 = chosen from the cache budget)."""
    check_tensor("x", x, torch.float32, 4)
    if residual is None:
        residual = stride == 1 and x.shape[1] == packs.out_channels
    acts = _acts(activations)
    args = (x, packs.expand, packs.dw, packs.project, packs.hidden_channels, packs.out_channels, packs.kernel,
            stride, _pads(packs.kernel, padding), *acts, residual, band_rows)
    if (_plain(stride, residual, acts) and type(band_rows) is int and type(packs.hidden_channels) is int
            and type(packs.out_channels) is int and type(packs.kernel) is int
            and eager((x, packs.dw, packs.project), (packs.expand,))):
        return _pwops.inverted_residual_packed_eager(*args)
    return torch.ops.mobilekernels.inverted_residual_packed(*args)


def se_inverted_residual(x: torch.Tensor, expand_weight: Optional[torch.Tensor], expand_bias: Optional[torch.Tensor],
                         dw_weight: torch.Tensor, dw_bias: Optional[torch.Tensor], project_weight: torch.Tensor,
                         project_bias: Optional[torch.Tensor], fc1_weight: torch.Tensor, fc1_bias: Optional[torch.Tensor],
                         fc2_weight: torch.Tensor, fc2_bias: Optional[torch.Tensor], stride: int = 1, padding=None,
                         activations: Sequence[str] = ("hardswish", "hardswish", "none"), se_activation: str = "relu",
                         gate: str = "hardsigmoid", residual: Optional[bool] = None) -> torch.Tensor:
    """The fused MobileNetV3 block with squeeze-excitation on raw (BN-folded) weights, packing
    every call (inference only):

    ``d = act_d(dw(act_e(expand(x))))``,
    ``y = act_p(project(d * gate(fc2(se_activation(fc1(mean_hw(d))))))) (+ x)``

    ``fc1_weight [Csq, Chid, 1, 1]``, ``fc2_weight [Chid, Csq, 1, 1]``; ``gate`` is
    ``hardsigmoid`` (relu6(v + 3) / 6) or ``sigmoid``; the rest as :func:`inverted_residual`.
    """
    k, residual = _block_args(x, dw_weight, project_weight, stride, residual)
    acts = _acts(activations)
    args = (x, expand_weight, expand_bias, dw_weight, dw_bias, project_weight, project_bias, fc1_weight, fc1_bias,
            fc2_weight, fc2_bias, stride, _pads(k, padding), *acts, se_activation, gate, residual)
    if (_plain(stride, residual, (*acts, se_activation, gate))
            and eager((x, dw_weight, project_weight, fc1_weight, fc2_weight),
                      (expand_weight, expand_bias, dw_bias, project_bias, fc1_bias, fc2_bias))):
        return _seops._se_inverted_residual_cpu(*args)
    return torch.ops.mobilekernels.se_inverted_residual(*args)


def _plain(stride, residual, names) -> bool:
    """The scalar arguments have the exact types the op schema converts to (else the registered
    op runs and raises or converts them as before)."""
    return type(stride) is int and type(residual) is bool and all(type(a) is str for a in names)


def _acts(activations: Sequence[str]) -> tuple[str, str, str]:
    if isinstance(activations, str) or len(activations) != 3:
        raise ValueError(f"activations must be three names (expand, depthwise, project), got {activations!r}")
    return tuple(activations)  # type: ignore[return-value]


inverted_residual_info = _pwops.inverted_residual_info
se_inverted_residual_info = _seops.se_inverted_residual_info
conv1x1_kernel_name = _pwops.conv1x1_kernel_name
