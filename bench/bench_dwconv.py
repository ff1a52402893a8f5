"""fp32 depthwise: mobilekernels against F.conv2d (NCHW and channels_last), XNNPACK and ONNX Runtime, same run.

Runs the 17 MobileNetV2 depthwise layers (bench/shapes/mobilenet_v2_dw.txt) at batch 1 with
bias and ReLU6 (fused in ours: mobilekernels.nn.DepthwiseConv2d; conv2d + in-place relu6 in
PyTorch) at each thread count and
prints per-layer medians, GFLOP/s and ratios, plus the summed 17-layer time. All columns are
timed interleaved in one `compare()` call per layer and checked against float64 F.conv2d first.

Extra columns, each only when its runtime is installed (tools/setup.sh installs both):
  XNNPACK  one-op TFLite model (bench/tflite_dw.py: NHWC, DEPTHWISE_CONV_2D + fused RELU6) run by
           LiteRT (`ai-edge-litert`), whose default XNNPACK delegate must take the whole graph
           (checked); `interpreter.invoke()` with the input set once and the output buffer
           preallocated by the interpreter (ours and torch allocate their output in every call).
  ORT      one-node ONNX model (bench/onnx_dw.py: NCHW, Conv group=C + Clip) in ONNX Runtime,
           `session.run` (allocates its output), same session settings as `python -m mobilekernels bench`.
--tflite-builtin adds TFLite's own kernels (no delegate): XNNPACK on vs off, same model.

"floor": one streaming pass (`_C.stream_probe`, same threads) that reads the layer's input once
and writes its output once: the time of the memory traffic alone, from the same cache state.
"ours / floor" near 1 means the layer is bound by the memory system, not by the kernel.

    python bench/bench_dwconv.py [--threads 1 2] [--samples 11] [--json out.json] [--tflite-builtin]
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
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


def available(module: str, what: str, console) -> bool:
    if importlib.util.find_spec(module) is not None:
        return True
    console.print(f"note: {module} is not installed: no {what} column (tools/setup.sh installs it)")
    return False


def bench_layer(h, w, c, k, s, samples, nt, extras=()):
    """``(flops, timings)``: timings maps "ours", "torch_nchw", "torch_channels_last", "floor" and each of
    ``extras`` ("xnnpack", "ort", "tflite_builtin") to {median, min, max} seconds, plus
    "xnnpack_pad_op" (whether the TFLite model needs a PAD op to pad like torch)."""
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
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    floor_out = torch.empty(c * oh * ow)
    floor = lambda: mk._C.stream_probe(x_cl.data_ptr(), x_cl.numel(), floor_out.data_ptr(),  # noqa: E731
                                       floor_out.numel(), nt)
    fns = {"ours": ours, "torch_nchw": nchw, "torch_channels_last": cl, "floor": floor}
    outputs = {"ours": ours}
    info = {}
    for name in extras:
        if name in ("xnnpack", "tflite_builtin"):
            import tflite_dw

            invoke, output, tinfo = tflite_dw.runner(x, weight, bias, s, nt, xnnpack=name == "xnnpack")
            if name == "xnnpack":
                if not tinfo["xnnpack"]:
                    raise RuntimeError(f"LiteRT did not delegate the whole graph to XNNPACK on {h}x{w}x{c} s{s}")
                info["xnnpack_pad_op"] = tinfo["pad_op"]
            fns[name] = invoke
            outputs[name] = lambda invoke=invoke, output=output: (invoke(), output())[1]
        elif name == "ort":
            import onnx_dw

            run = onnx_dw.runner(x, weight, bias, s, nt)
            fns[name] = run
            outputs[name] = lambda run=run: torch.from_numpy(run())
    ref = F.conv2d(x.double(), weight.double(), bias.double(), s, p, 1, c).clamp(0, 6)
    for name, out in outputs.items():
        err = (out().double() - ref).abs().max().item()
        if err > 1e-3:
            raise RuntimeError(f"{name}: mismatch {err} on {h}x{w}x{c} k{k} s{s}")
    flops = 2 * oh * ow * c * k * k
    return flops, dict(zip(fns, compare(list(fns.values()), samples=samples)), **info)


COLUMNS = {"xnnpack": "XNNPACK", "ort": "ORT", "tflite_builtin": "TFLite builtin"}
DISTRIBUTIONS = {"xnnpack": "ai-edge-litert", "ort": "onnxruntime"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--samples", type=int, default=11)
    ap.add_argument("--json", type=Path, help="write results as JSON")
    ap.add_argument("--tflite-builtin", action="store_true",
                    help="also time the TFLite model without the XNNPACK delegate (TFLite's own kernels)")
    args = ap.parse_args(argv)
    console = Console(width=max(Console().width, 260))  # no wrapping when piped (80 columns)
    console.print(machine_line() + f"; mobilekernels isa {mk.get_isa()}")
    extras = []
    if available("ai_edge_litert", "XNNPACK (LiteRT)", console):
        extras.append("xnnpack")
        if args.tflite_builtin:
            extras.append("tflite_builtin")
    if available("onnxruntime", "ONNX Runtime", console):
        extras.append("ort")
    versions = {DISTRIBUTIONS[e]: importlib.metadata.version(DISTRIBUTIONS[e]) for e in extras if e in DISTRIBUTIONS}
    if versions:
        console.print("; ".join(f"{d} {v}" for d, v in versions.items()))
    shapes = read_shapes("mobilenet_v2_dw.txt")
    results = []
    with torch.no_grad():
        for nt in args.threads:
            torch.set_num_threads(nt)
            table = Table(title=f"fp32 depthwise + bias + ReLU6, batch 1, {nt} thread(s) (median us; "
                                f"'A vs B' = B time / A time)")
            cols = ["layer HxWxC k s", "kernel", "ours", "GFLOP/s", "floor", "ours / floor", "torch NCHW", "torch CL"]
            cols += [COLUMNS[e] for e in extras] + ["ours vs NCHW", "ours vs CL"]
            cols += [f"{COLUMNS[e]} vs CL" for e in extras] + (["ours vs XNNPACK"] if "xnnpack" in extras else [])
            for col in cols:
                table.add_column(col, justify="right")
            names = ["ours", "floor", "torch_nchw", "torch_channels_last"] + extras
            tot = dict.fromkeys(names, 0.0)

            def cells(t):
                o, cl = t["ours"], t["torch_channels_last"]
                row = [f"{t['floor']*1e6:.1f}", f"{o/t['floor']:.2f}"]
                row += [f"{t[n]*1e6:.1f}" for n in ["torch_nchw", "torch_channels_last"] + extras]
                row += [f"{t['torch_nchw']/o:.2f}x", f"{cl/o:.2f}x"] + [f"{cl/t[e]:.2f}x" for e in extras]
                return row + ([f"{t['xnnpack']/o:.2f}x"] if "xnnpack" in extras else [])

            for (h, w, c, k, s) in shapes:
                flops, t = bench_layer(h, w, c, k, s, args.samples, nt, extras)
                kname = mk.ops.dwconv2d_kernel_name((1, c, h, w), (c, 1, k, k), (s, s), (k // 2,) * 4, (1, 1))
                med = {n: t[n]["median"] for n in names}
                for n in names:
                    tot[n] += med[n]
                table.add_row(f"{h}x{w}x{c} k{k} s{s}", kname, f"{med['ours']*1e6:.1f}",
                              f"{flops / med['ours'] / 1e9:.1f}", *cells(med))
                results.append({"threads": nt, "shape": [h, w, c, k, s], "kernel": kname, "flops": flops, **t})
            table.add_row("sum of 17", "", f"{tot['ours']*1e6:.1f}", "", *cells(tot), style="bold")
            console.print(table)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_line(), "versions": versions, "results": results},
                                        indent=1))


if __name__ == "__main__":
    main()
