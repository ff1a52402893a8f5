"""One depthwise layer (conv kxk groups=C + bias + ReLU6, torch's ``padding=k//2``) as an
in-memory TFLite model run by LiteRT, whose interpreter hands float models to the XNNPACK
delegate by default: bench_dwconv.py's XNNPACK column and its test. The model is written by the
package's exporter (``mobilekernels._tflite_export``, the benchmark's whole-model XNNPACK column).
"""
from __future__ import annotations

import torch
from torch import nn

from mobilekernels import _tflite_export as tfl


def pads_differ(h: int, w: int, k: int, stride: int) -> bool:
    """Whether TFLite's SAME pads other pixels than torch's ``padding=k//2`` (then the exporter
    writes an explicit PAD before a VALID conv: stride 2 on even sizes puts SAME's odd pixel
    after, torch's before)."""
    p = k // 2
    return any(tfl.torch_pads(n, k, stride, p) != tfl.same_pads(n, k, stride) for n in (h, w))


def runner(x_nchw: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, threads: int,
           xnnpack: bool = True):
    """``(invoke, output, info)``: ``invoke()`` runs the model on ``x`` (set once as NHWC; the
    copy-in is not timed, the interpreter preallocates the output); ``output()`` returns the
    result as an NCHW tensor; ``info`` says whether XNNPACK took the whole graph and whether a
    PAD op is used."""
    c, _, k, _ = weight.shape
    layer = nn.Sequential(nn.Conv2d(c, c, k, stride, k // 2, groups=c), nn.ReLU6()).eval()
    with torch.no_grad():
        layer[0].weight.copy_(weight)
        layer[0].bias.copy_(bias)
    invoke, output, undelegated = tfl.runner(layer, x_nchw, threads, xnnpack)
    _, _, h, w = x_nchw.shape
    return invoke, output, {"xnnpack": not undelegated, "pad_op": pads_differ(h, w, k, stride)}
