"""int8 depthwise conv: mobilekernels int8 against our own fp32 depthwise and PyTorch's
quantized engines, same run, on the MobileNetV2 depthwise layers (bench/shapes/mobilenet_v2_dw.txt),
batch 1, bias + ReLU6 fused, channels_last. Reports median us and the int8 / fp32 speedup.

    python bench/bench_q8_dw.py [--threads 1] [--samples 9] [--clock wall|thread]

The summed line counts each distinct shape as often as it occurs in the 17 layers. With
--clock thread (one thread only) times are the calling thread's CPU time: robust to other
processes sharing the cores.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.ao.nn.quantized import Conv2d as TorchQConv2d

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compare, machine_line, read_shapes  # noqa: E402

import mobilekernels as mk  # noqa: E402
from mobilekernels import qops  # noqa: E402

ENGINES = [e for e in ("x86", "fbgemm", "onednn") if e in torch.backends.quantized.supported_engines]


def bench_layer(h, w, c, k, s, samples):
    g = torch.Generator().manual_seed(c)
    p = k // 2
    x = torch.randn(1, c, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    wf, bias = torch.randn(c, 1, k, k, generator=g) * 0.3, torch.randn(c, generator=g)
    f32_packed = mk.ops.dwconv2d_pack(wf, bias)
    ws = wf.abs().amax(dim=(1, 2, 3)) / 127
    qw = torch.quantize_per_channel(wf, ws, torch.zeros(c, dtype=torch.int64), 0, torch.qint8)
    xq = torch.quantize_per_tensor(x, 0.03, 64, torch.quint8).contiguous(memory_format=torch.channels_last)
    xu8 = xq.int_repr().contiguous(memory_format=torch.channels_last)
    q8_packed = qops.qdwconv2d_pack(qw.int_repr(), ws, 0, qops.quantize_bias(bias, 0.03, ws))
    fns = [lambda: qops.qdwconv2d(xu8, q8_packed, c, k, 0.03, 64, 0.05, 10, s, p, activation="relu6"),
           lambda: mk.ops.dwconv2d_packed(x, f32_packed, c, k, s, p, 1, "relu6")]
    names = ["ours int8", "ours fp32"]
    for e in ENGINES:
        torch.backends.quantized.engine = e
        m = TorchQConv2d(c, c, k, s, p, groups=c)
        m.set_weight_bias(qw, bias)
        m.scale, m.zero_point = 0.05, 10

        def run(m=m, e=e):
            torch.backends.quantized.engine = e
            return m(xq)
        fns.append(run)
        names.append(f"torch {e}")
    return names, compare(fns, samples=samples)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--samples", type=int, default=9)
    ap.add_argument("--clock", choices=["wall", "thread"], default="wall",
                    help="thread: CPU time of the calling thread (one thread only; robust to neighbours)")
    args = ap.parse_args(argv)
    if args.clock == "thread":
        if args.threads != [1]:
            ap.error("--clock thread measures the calling thread only: use --threads 1")
        time.perf_counter = time.thread_time  # compare() reads time.perf_counter
    print(machine_line() + f"; isa {mk.get_isa()} ({qops.kernel_names()['qdwconv2d']})")
    layers = read_shapes("mobilenet_v2_dw.txt")
    shapes = list(dict.fromkeys(layers))
    with torch.inference_mode():
        for nt in args.threads:
            torch.set_num_threads(nt)
            print(f"\ndepthwise, batch 1, {nt} thread(s), clock {args.clock}: median us [min-max]; "
                  "speedup = fp32 / int8")
            header = False
            totals = {}
            for h, w, c, k, s in shapes:
                names, res = bench_layer(h, w, c, k, s, args.samples)
                if not header:
                    print(f"{'layer':<20}" + "".join(f"{n:>22}" for n in names) + f"{'speedup':>9}")
                    header = True
                cells = [f"{r['median'] * 1e6:7.0f} [{r['min'] * 1e6:5.0f}-{r['max'] * 1e6:5.0f}]" for r in res]
                print(f"{f'{h}x{w}x{c} k{k}s{s}':<20}" + "".join(f"{c_:>22}" for c_ in cells)
                      + f"{res[1]['median'] / res[0]['median']:9.2f}")
                for n, r in zip(names, res):
                    totals[n] = totals.get(n, 0.0) + r["median"] * layers.count((h, w, c, k, s))
            print(f"summed median us over the {len(layers)} layers: "
                  + ", ".join(f"{n} {t * 1e6:.0f}" for n, t in totals.items())
                  + f"; fp32 / int8 {totals['ours fp32'] / totals['ours int8']:.2f}")


if __name__ == "__main__":
    main()
