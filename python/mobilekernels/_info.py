"""``mobilekernels.info()``: what this machine has, what was compiled, what each shape runs."""
from __future__ import annotations

import torch

from . import _C
from ._dispatch import get_isa
from ._ops import dwconv2d_kernel_name
from ._pwops import conv1x1_kernel_name
from ._qops import kernel_names as q8_kernel_names

# Representative depthwise shapes (input NHWC, kernel, stride, dilation) to show kernel picks.
_DW_SHAPES = [
    ((1, 112, 112, 32), (3, 3), 1, 1),
    ((1, 112, 112, 96), (3, 3), 2, 1),
    ((1, 28, 28, 72), (5, 5), 1, 1),
    ((1, 14, 14, 480), (7, 7), 2, 1),
    ((1, 28, 28, 64), (3, 3), 1, 2),
    ((1, 17, 17, 33), (3, 5), 3, 1),
]


def info() -> dict:
    """Return a dict: CPU features, compiled and supported ISA levels, the active level,
    torch version and threads, and the kernel the fp32 depthwise op picks for sample shapes."""
    kernels = {}
    for (n, h, w, c), (kh, kw), s, d in _DW_SHAPES:
        pad = (d * (kh - 1) // 2, d * (kw - 1) // 2)
        key = f"dwconv2d {h}x{w}x{c} k{kh}x{kw} s{s} d{d}"
        kernels[key] = dwconv2d_kernel_name((n, c, h, w), (c, 1, kh, kw), (s, s),
                                            (pad[0], pad[0], pad[1], pad[1]), (d, d))
    kernels["conv1x1 (fp32 GEMM, every shape)"] = conv1x1_kernel_name()
    for op, name in q8_kernel_names().items():
        kernels[f"{op} (int8)"] = name
    return {
        "version": __import__("mobilekernels").__version__,
        "cpu_features": _C.cpu_features(),
        "compiled_isas": list(_C.compiled_isas()),
        "supported_isas": list(_C.supported_isas()),
        "best_isa": _C.best_isa(),
        "active_isa": get_isa(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "kernels": kernels,
    }


def format_info(d: dict) -> str:
    lines = []
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(f"{k}:")
            lines.extend(f"  {kk:<40} {vv}" for kk, vv in v.items())
        else:
            lines.append(f"{k:<16} {', '.join(v) if isinstance(v, list) else v}")
    return "\n".join(lines)
