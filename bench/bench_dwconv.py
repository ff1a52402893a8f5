"""fp32 depthwise: mobilekernels against F.conv2d (NCHW and channels_last), same run.

Runs the 17 MobileNetV2 depthwise layers (bench/shapes/mobilenet_v2_dw.txt) at batch 1 with
bias and ReLU6 (fused in ours: mobilekernels.nn.DepthwiseConv2d; conv2d + in-place relu6 in
PyTorch) at each thread count and
prints per-layer medians, GFLOP/s and ratios, plus the summed 17-layer time.

    python bench/bench_dwconv.py [--threads 1 2] [--samples 11] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compare, machine_line, read_shapes  # noqa: E402

import mobilekernels as mk  # noqa: E402


def bench_layer(h, w, c, k, s, samples):
    torch.manual_seed(0)
    x = torch.randn(1, c, h, w)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    weight, bias = torch.randn(c, 1, k, k), torch.randn(c)
    p = k // 2
    # What a user runs: the drop-in module (weights packed once, eager inference path).
    layer = mk.nn.DepthwiseConv2d(c, c, k, s, p, activation="relu6").eval()
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    ours = lambda: layer(x_cl)  # noqa: E731
    nchw = lambda: F.relu6(F.conv2d(x, weight, bias, s, p, 1, c), inplace=True)  # noqa: E731
    cl = lambda: F.relu6(F.conv2d(x_cl, weight, bias, s, p, 1, c), inplace=True)  # noqa: E731
    ref = F.conv2d(x.double(), weight.double(), bias.double(), s, p, 1, c).clamp(0, 6)
    err = (ours().double() - ref).abs().max().item()
    if err > 1e-3:
        raise RuntimeError(f"mismatch {err} on {h}x{w}x{c} k{k} s{s}")
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    flops = 2 * oh * ow * c * k * k
    return flops, compare([ours, nchw, cl], samples=samples)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--samples", type=int, default=11)
    ap.add_argument("--json", type=Path, help="write results as JSON")
    args = ap.parse_args(argv)
    console = Console()
    console.print(machine_line() + f"; mobilekernels isa {mk.get_isa()}")
    shapes = read_shapes("mobilenet_v2_dw.txt")
    results = []
    with torch.no_grad():
        for nt in args.threads:
            torch.set_num_threads(nt)
            table = Table(title=f"fp32 depthwise + bias + ReLU6, batch 1, {nt} thread(s) (median us)")
            for col in ("layer HxWxC k s", "kernel", "ours", "GFLOP/s", "torch NCHW", "torch CL",
                        "vs NCHW", "vs CL"):
                table.add_column(col, justify="right")
            tot = [0.0, 0.0, 0.0]
            for (h, w, c, k, s) in shapes:
                flops, (o, n, cl) = bench_layer(h, w, c, k, s, args.samples)
                kname = mk.ops.dwconv2d_kernel_name((1, c, h, w), (c, 1, k, k), (s, s), (k // 2,) * 4, (1, 1))
                tot = [tot[0] + o["median"], tot[1] + n["median"], tot[2] + cl["median"]]
                table.add_row(f"{h}x{w}x{c} k{k} s{s}", kname, f"{o['median']*1e6:.1f}",
                              f"{flops / o['median'] / 1e9:.1f}", f"{n['median']*1e6:.1f}",
                              f"{cl['median']*1e6:.1f}", f"{n['median']/o['median']:.2f}x",
                              f"{cl['median']/o['median']:.2f}x")
                results.append({"threads": nt, "shape": [h, w, c, k, s], "kernel": kname, "flops": flops,
                                "ours": o, "torch_nchw": n, "torch_channels_last": cl})
            table.add_row("sum of 17", "", f"{tot[0]*1e6:.1f}", "", f"{tot[1]*1e6:.1f}", f"{tot[2]*1e6:.1f}",
                          f"{tot[1]/tot[0]:.2f}x", f"{tot[2]/tot[0]:.2f}x", style="bold")
            console.print(table)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_line(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
