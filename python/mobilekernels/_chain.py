"""Runs of fp32 layers executed by one C++ call (``_C.F32Chain``), and what invalidates them.

A chain is built for one input shape from *steps*, each a module of ours (fused
``InvertedResidual`` / ``SEInvertedResidual``, ``PointwiseConv2d``, ``DepthwiseConv2d``) with its current weight packs.
The C++ side validates every step at build time and plans two ping-pong activation buffers,
so a run is one call with the GIL released; the last step writes the output tensor allocated
here. The packs are referenced by raw pointer in C++, so :class:`Chain` keeps the pack tensors
alive for as long as the chain exists.

Invalidation (checked by the caller, :class:`mobilekernels.nn.ChainedSequential`):
  * weights: every parameter's :func:`~mobilekernels.nn._pack_cache.tensor_key` (data_ptr,
    version), compared per call;
  * settings (stride, activations, band_rows ...): the modules call :func:`config_changed` when
    a public attribute is set, which bumps a global epoch; one integer compare per call.
"""
from __future__ import annotations

import torch

from . import _C

_epoch = 0

# Setting one of these on a module does not change what its inference forward computes.
_NEUTRAL = frozenset({"training"})


def config_changed() -> None:
    """Called by our modules when a public attribute changes: cached calls and chains are stale."""
    global _epoch
    _epoch += 1


def config_epoch() -> int:
    return _epoch


def invalidates(name: str) -> bool:
    """Whether setting attribute ``name`` on one of our modules may change its inference result."""
    return not name.startswith("_") and name not in _NEUTRAL


class Chain:
    """One built ``_C.F32Chain`` plus the pack tensors it points into.

    ``steps`` are ``(kind, module)`` pairs, kind in ``inverted_residual | se_inverted_residual |
    conv1x1 | dwconv``;
    ``x_shape`` is the NCHW shape the chain will be run on. Raises ``ValueError`` (from C++)
    naming the step when the modules do not fit together or the input shape.
    """

    __slots__ = ("chain", "packs", "out_shape")

    def __init__(self, steps, x_shape):
        n, c, h, w = (int(v) for v in x_shape)
        chain = _C.F32Chain(n, h, w, c)
        packs = []
        for kind, m in steps:
            if kind == "inverted_residual":
                epk, dpk, ppk = m._pack()
                packs += [p for p in (epk, dpk, ppk) if p is not None]
                ae, ad, ap = (_act(a) for a in m.activations)
                pt, pb, pl, pr = m.padding
                chain.add_inverted_residual(
                    m.in_channels, m.hidden_channels, m.out_channels, m.kernel_size, m.stride, pt, pb, pl, pr,
                    epk is not None, ae, ad, ap, bool(m.residual), int(m.band_rows),
                    epk.data_ptr() if epk is not None else 0, epk.numel() if epk is not None else 0,
                    dpk.data_ptr(), dpk.numel(), ppk.data_ptr(), ppk.numel())
            elif kind == "se_inverted_residual":
                epk, dpk, ppk, f1pk, f2pk = m._pack()
                packs += [p for p in (epk, dpk, ppk, f1pk, f2pk) if p is not None]
                ae, ad, ap = (_act(a) for a in m.activations)
                pt, pb, pl, pr = m.padding
                chain.add_se_inverted_residual(
                    m.in_channels, m.hidden_channels, m.out_channels, m.squeeze_channels, m.kernel_size, m.stride,
                    pt, pb, pl, pr, epk is not None, ae, ad, ap, _act(m.se_activation), _gate(m.gate),
                    bool(m.residual), int(m.band_rows),
                    epk.data_ptr() if epk is not None else 0, epk.numel() if epk is not None else 0,
                    dpk.data_ptr(), dpk.numel(), ppk.data_ptr(), ppk.numel(), f1pk.data_ptr(), f1pk.numel(),
                    f2pk.data_ptr(), f2pk.numel())
            elif kind == "conv1x1":
                pk = m._pack()
                packs.append(pk)
                chain.add_conv1x1(m.out_channels, _act(m.activation), pk.data_ptr(), pk.numel())
            elif kind == "dwconv":
                pk = m._pack()
                packs.append(pk)
                plan = m._plan  # the settings its own eager path uses
                (kh, kw), (sh, sw), (dh, dw) = plan.kernel, plan.stride, plan.dilation
                pt, pb, pl, pr = plan.padding
                chain.add_dwconv(plan.cout, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, plan.act_code,
                                 pk.data_ptr(), pk.numel())
            else:
                raise ValueError(f"unknown chain step kind {kind!r}")
        on, oh, ow, oc = chain.output_shape
        self.chain, self.packs, self.out_shape = chain, packs, (on, oc, oh, ow)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: float32 CPU tensor of the built shape; returns a new channels_last output."""
        out = torch.empty(self.out_shape, dtype=torch.float32, memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        self.chain.run(x.data_ptr(), out.data_ptr(), torch.get_num_threads())
        return out

    def describe(self) -> str:
        return self.chain.describe()


def _act(name: str) -> int:
    from ._pwops import _act  # imported late: the op modules import this one

    return _act(name)


def _gate(name: str) -> int:
    from ._seops import _gate

    return _gate(name)
