"""int8 pointwise (1x1) conv: mobilekernels against PyTorch's quantized engines, same run.

Runs the MobileNetV2 1x1 layers (bench/shapes/mobilenet_v2_pw.txt, distinct shapes by default)
at batch 1 on quint8 channels_last tensors: ours through ``nn.QuantizedConv2d`` (zero-copy
quint8 in/out) and the raw ``torch.ops.mobilekernels.qconv1x1`` op on uint8 tensors; PyTorch
through ``torch.ao.nn.quantized.Conv2d`` with each available engine (x86, fbgemm, onednn,
qnnpack). Interleaved timing (bench/common.py), medians with min/max, GOP/s = 2*H*W*Cin*Cout/t.

    python bench/bench_q8_pw.py [--threads 1] [--samples 9] [--all] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.ao.nn.quantized import Conv2d as TorchQConv2d

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compare, machine_line, read_shapes  # noqa: E402

import mobilekernels as mk  # noqa: E402
from mobilekernels import qops  # noqa: E402
from mobilekernels.nn import QuantizedConv2d  # noqa: E402

ENGINES = [e for e in ("x86", "fbgemm", "onednn", "qnnpack") if e in torch.backends.quantized.supported_engines]


def make_torch(engine, cin, cout, qw, bias, scale, zp):
    torch.backends.quantized.engine = engine
    m = TorchQConv2d(cin, cout, 1)
    if engine == "qnnpack":  # qnnpack wants per-tensor weights
        qw = torch.quantize_per_tensor(qw.dequantize(), float(qw.dequantize().abs().max() / 127), 0, torch.qint8)
    m.set_weight_bias(qw, bias)
    m.scale, m.zero_point = scale, zp

    def run(x=None):
        torch.backends.quantized.engine = engine
        return m(x)
    return run


def bench_layer(h, w, cin, cout, samples):
    g = torch.Generator().manual_seed(cin * cout)
    wf = torch.randn(cout, cin, 1, 1, generator=g) * 0.2
    qw = torch.quantize_per_channel(wf, wf.abs().amax(dim=(1, 2, 3)) / 127, torch.zeros(cout, dtype=torch.int64), 0,
                                    torch.qint8)
    bias = torch.randn(cout, generator=g)
    xq = torch.quantize_per_tensor(torch.randn(1, cin, h, w, generator=g), 0.03, 64, torch.quint8)
    xq = torch._make_per_tensor_quantized_tensor(xq.int_repr().clamp(0, 127), 0.03, 64)  # reduce_range inputs
    xq = xq.contiguous(memory_format=torch.channels_last)
    fns, names = [], []
    torch_mods = {e: make_torch(e, cin, cout, qw, bias, 0.05, 10) for e in ENGINES}
    ours = QuantizedConv2d.from_torch(make_torch_module(cin, cout, qw, bias))
    ours(xq)  # pack once
    xu8 = xq.int_repr().contiguous(memory_format=torch.channels_last)
    packed = ours.packed
    fns.append(lambda: ours(xq))
    names.append("ours module")
    fns.append(lambda: torch.ops.mobilekernels.qconv1x1(xu8, packed, cout, 0.03, 64, 0.05, 10, torch.uint8, 0, 255))
    names.append("ours op")
    for e, f in torch_mods.items():
        fns.append(lambda f=f: f(xq))
        names.append(f"torch {e}")
    # Agreement check before timing: within one step of torch x86 on these reduce_range inputs.
    if "x86" in torch_mods:
        d = (ours(xq).int_repr().int() - torch_mods["x86"](xq).int_repr().int()).abs().max().item()
        if d > 1:
            raise RuntimeError(f"ours differs from torch x86 by {d} steps on {h}x{w}x{cin}->{cout}")
    res = compare(fns, samples=samples)
    return 2.0 * h * w * cin * cout, names, res


def make_torch_module(cin, cout, qw, bias):
    m = TorchQConv2d(cin, cout, 1)
    m.set_weight_bias(qw, bias)
    m.scale, m.zero_point = 0.05, 10
    return m


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--samples", type=int, default=9)
    ap.add_argument("--all", action="store_true", help="every layer, not only distinct shapes")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    shapes = read_shapes("mobilenet_v2_pw.txt")
    if not args.all:
        shapes = list(dict.fromkeys(shapes))
    print(machine_line() + f"; mobilekernels isa {mk.get_isa()} ({qops.kernel_names()['qconv1x1']})")
    out = []
    with torch.inference_mode():
        for nt in args.threads:
            torch.set_num_threads(nt)
            print(f"\nint8 1x1 conv, batch 1, {nt} thread(s): GOP/s median [min-max of per-sample]; ratio = ours module / best torch")
            header = None
            totals = {}
            for h, w, cin, cout in shapes:
                ops, names, res = bench_layer(h, w, cin, cout, args.samples)
                if header is None:
                    header = names
                    print(f"{'layer':<18}" + "".join(f"{n:>22}" for n in names) + f"{'ratio':>8}")
                gops = [ops / r["median"] / 1e9 for r in res]
                cells = [f"{ops / r['median'] / 1e9:7.1f} [{ops / r['max'] / 1e9:5.0f}-{ops / r['min'] / 1e9:4.0f}]" for r in res]
                best_torch = max(gops[2:]) if len(gops) > 2 else float("nan")
                print(f"{f'{h}x{w}x{cin}->{cout}':<18}" + "".join(f"{c:>22}" for c in cells) + f"{gops[0] / best_torch:8.2f}")
                for n, r in zip(names, res):
                    totals[n] = totals.get(n, 0.0) + r["median"]
                out.append({"threads": nt, "shape": [h, w, cin, cout], "ops": ops,
                            "results": {n: r for n, r in zip(names, res)}})
            print("summed median time (us): " + ", ".join(f"{n} {t * 1e6:.0f}" for n, t in totals.items()))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
