"""fp32 stem convolution: mobilekernels' StemConv2d against torch, same run, interleaved.

The MobileNet stems, ``Conv2d(3, C, 3, stride 2, padding 1)`` + activation on a 224x224 batch-1
input (V2: 32 channels + ReLU6, V3: 16 + Hardswish): ours on an NCHW input (read in place, what
a converted model now does) and on channels_last, torch on NCHW and on channels_last. Outputs
are checked against torch first. Prints medians (min..max), GFLOP/s and ratios.

    python bench/bench_stem.py [--threads 1] [--samples 11] [--clock wall|thread]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compare, machine_line  # noqa: E402

import mobilekernels as mk  # noqa: E402

STEMS = [("mobilenet_v2", 32, "relu6"), ("mobilenet_v3", 16, "hardswish")]
_ACT = {"relu6": F.relu6, "hardswish": F.hardswish}


def bench_stem(cout: int, act: str, size: int, samples: int) -> tuple[float, dict]:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, cout, 3, 2, 1).eval()
    ours = mk.nn.StemConv2d.from_conv(conv, activation=act).eval()
    x = torch.randn(1, 3, size, size)
    xcl = x.contiguous(memory_format=torch.channels_last)
    f = _ACT[act]
    fns = {"ours_nchw": lambda: ours(x), "ours_channels_last": lambda: ours(xcl),
           "torch_nchw": lambda: f(conv(x)), "torch_channels_last": lambda: f(conv(xcl))}
    for fn in fns.values():
        torch.testing.assert_close(fn(), f(conv(x)), rtol=1e-4, atol=1e-4)
    oh = (size - 1) // 2 + 1
    return 2 * oh * oh * cout * 27, dict(zip(fns, compare(list(fns.values()), samples=samples)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samples", type=int, default=11)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--clock", choices=["wall", "thread"], default="wall",
                    help="thread: CPU time of the calling thread (one thread only; robust to neighbours)")
    args = ap.parse_args()
    if args.clock == "thread":
        if args.threads != 1:
            ap.error("--clock thread measures the calling thread only: use --threads 1")
        time.perf_counter = time.thread_time  # compare() reads time.perf_counter
    torch.set_num_threads(args.threads)
    print(machine_line(), f"threads {args.threads}, clock {args.clock}, kernel {mk.ops.conv2d_stem_kernel_name()}")
    with torch.no_grad():
        for name, cout, act in STEMS:
            flops, res = bench_stem(cout, act, args.size, args.samples)
            print(f"{name} stem 3->{cout} 3x3/2 {args.size}x{args.size} + {act}")
            for k, r in res.items():
                print(f"  {k:20s} {r['median'] * 1e6:8.1f} us ({r['min'] * 1e6:.1f}..{r['max'] * 1e6:.1f})"
                      f"  {flops / r['median'] / 1e9:5.1f} GFLOP/s")
            base = res["ours_nchw"]["median"]
            print("  torch_nchw / ours_nchw {:.2f}x, torch_channels_last / ours_nchw {:.2f}x".format(
                res["torch_nchw"]["median"] / base, res["torch_channels_last"]["median"] / base))


if __name__ == "__main__":
    main()
