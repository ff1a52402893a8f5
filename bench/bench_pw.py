"""fp32 1x1 convolution: mobilekernels against torch channels_last and XNNPACK, same run.

Runs every MobileNetV2 1x1 layer (bench/shapes/mobilenet_v2_pw.txt, in network order) at batch
1 with bias and ReLU6: our drop-in `mobilekernels.nn.PointwiseConv2d` (fused ReLU6), `nn.Conv2d`
+ in-place relu6 on a channels_last input, and, where LiteRT (`ai-edge-litert`) is installed, the
same layer exported to TFLite (`mobilekernels._tflite_export`) on the XNNPACK delegate
(`invoke()` only: input set once, output preallocated; whole-graph delegation checked). Every
output is checked against ours first. Prints per-layer medians, GFLOP/s and ratios.

    python bench/bench_pw.py [--threads 1 2] [--samples 9] [--json out.json]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compare, machine_line, read_shapes  # noqa: E402

import mobilekernels as mk  # noqa: E402


def bench_layer(h, w, cin, cout, threads, samples, xnnpack):
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, 1).eval()
    x = torch.randn(1, cin, h, w).contiguous(memory_format=torch.channels_last)
    ours = mk.nn.PointwiseConv2d.from_conv(conv, activation="relu6").eval()
    fns = {"ours": lambda: ours(x), "torch_channels_last": lambda: F.relu6(conv(x), inplace=True)}
    want = ours(x)
    if xnnpack:
        from mobilekernels import _tflite_export as tfl

        invoke, output, undelegated = tfl.runner(nn.Sequential(conv, nn.ReLU6()).eval(), x, threads)
        if undelegated:
            raise RuntimeError(f"XNNPACK did not take the whole graph ({undelegated}) on {h}x{w} {cin}->{cout}")
        invoke()
        err = (output() - want).abs().max().item()
        if err > 1e-3 * max(1.0, want.abs().max().item()):
            raise RuntimeError(f"XNNPACK differs from ours by {err} on {h}x{w} {cin}->{cout}")
        fns["xnnpack"] = invoke
    return 2 * h * w * cin * cout, dict(zip(fns, compare(list(fns.values()), samples=samples)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--samples", type=int, default=9)
    ap.add_argument("--json", type=Path, help="write results as JSON")
    args = ap.parse_args(argv)
    console = Console(width=max(Console().width, 160))
    console.print(machine_line() + f"; mobilekernels isa {mk.get_isa()}")
    xnnpack = importlib.util.find_spec("ai_edge_litert") is not None
    if not xnnpack:
        console.print("note: ai_edge_litert is not installed: no XNNPACK column (tools/setup.sh installs it)")
    names = ["ours", "torch_channels_last"] + (["xnnpack"] if xnnpack else [])
    results = []
    with torch.no_grad():
        for nt in args.threads:
            torch.set_num_threads(nt)
            table = Table(title=f"fp32 1x1 conv + bias + ReLU6, batch 1, {nt} thread(s) (median us; "
                                f"'A vs B' = B time / A time)")
            cols = ["layer HxW Cin->Cout", "ours", "GFLOP/s", "torch CL"] + (["XNNPACK", "GFLOP/s "] if xnnpack else [])
            cols += ["ours vs CL"] + (["ours vs XNNPACK"] if xnnpack else [])
            for col in cols:
                table.add_column(col, justify="right")
            tot, flops_sum = dict.fromkeys(names, 0.0), 0
            for (h, w, cin, cout) in read_shapes("mobilenet_v2_pw.txt"):
                flops, t = bench_layer(h, w, cin, cout, nt, args.samples, xnnpack)
                med = {n: t[n]["median"] for n in names}
                flops_sum += flops
                for n in names:
                    tot[n] += med[n]
                row = [f"{h}x{w} {cin}->{cout}", f"{med['ours']*1e6:.1f}", f"{flops/med['ours']/1e9:.1f}",
                       f"{med['torch_channels_last']*1e6:.1f}"]
                if xnnpack:
                    row += [f"{med['xnnpack']*1e6:.1f}", f"{flops/med['xnnpack']/1e9:.1f}"]
                row += [f"{med['torch_channels_last']/med['ours']:.2f}x"]
                row += [f"{med['xnnpack']/med['ours']:.2f}x"] if xnnpack else []
                table.add_row(*row)
                results.append({"threads": nt, "shape": [h, w, cin, cout], "flops": flops, **t})
            row = ["sum", f"{tot['ours']*1e6:.0f}", f"{flops_sum/tot['ours']/1e9:.1f}",
                   f"{tot['torch_channels_last']*1e6:.0f}"]
            if xnnpack:
                row += [f"{tot['xnnpack']*1e6:.0f}", f"{flops_sum/tot['xnnpack']/1e9:.1f}"]
            row += [f"{tot['torch_channels_last']/tot['ours']:.2f}x"]
            row += [f"{tot['xnnpack']/tot['ours']:.2f}x"] if xnnpack else []
            table.add_row(*row, style="bold")
            console.print(table)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_line(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
