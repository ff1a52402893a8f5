"""Fused inverted residual (fp32 or int8) against our unfused three ops (and PyTorch eager), same run.

For each of MobileNetV2's 17 blocks (bench/shapes/mobilenet_v2_blocks.txt, scaled to --res) at
--batch (default 1) and each thread count: the fused op (prepacked), our three ops in sequence (conv1x1 ->
dwconv2d -> conv1x1, + x), PyTorch eager channels_last with BN folded (conv2d + relu6 in place,
three convs, + x), and the fused op's scratch bytes of the whole call (per-thread scratch x busy
threads + the buffers threads share, int8's small-image channel split) against the bytes of
the expanded N x H x W x Cin*t tensor of the whole batch (the README's per-thread, per-image
figure is a different ratio). Medians of interleaved samples (min-max in JSON).

    python bench/bench_blocks.py [--res 224] [--threads 1 2] [--samples 11] [--band 0] [--json out.json]
    python bench/bench_blocks.py --rss   # peak RSS of a whole MobileNetV2 features forward, fused vs unfused
    python bench/bench_blocks.py --dtype int8   # the int8 block (qinverted_residual)

int8 (``--dtype int8``): the fused ``qinverted_residual`` against ``qconv1x1 -> qdwconv2d ->
qconv1x1`` (+ ``qops.qadd``, our C++ int8 residual add, what ``mk.quantize``'s replay runs
unfused) and against the three int8 convs alone (the add left out, the fairest kernel-to-kernel
ratio); uint8 activations, int8 per-channel weights, relu6 clamps; scratch against the bytes of
the uint8 expanded tensor. Every run first checks the fused output equals the unfused one.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compare, machine_line, read_shapes  # noqa: E402
import common  # noqa: E402

import mobilekernels as mk  # noqa: E402
from mobilekernels import ops_block  # noqa: E402


def block_fns(h, w, cin, t, cout, s, band, batch=1):
    torch.manual_seed(0)
    chid = cin * t
    x = torch.randn(batch, cin, h, w).contiguous(memory_format=torch.channels_last)
    ew = torch.randn(chid, cin, 1, 1) / cin ** 0.5 if t != 1 else None
    eb = torch.randn(chid) if t != 1 else None
    dw, db = torch.randn(chid, 1, 3, 3) / 3, torch.randn(chid)
    pw, pb = torch.randn(cout, chid, 1, 1) / chid ** 0.5, torch.randn(cout)
    res = s == 1 and cin == cout
    packs = ops_block.inverted_residual_pack(ew, eb, dw, db, pw, pb)
    pads = [1, 1, 1, 1]

    def fused():
        return ops_block.inverted_residual_packed(x, packs, s, pads, residual=res, band_rows=band)

    def unfused():
        y = x
        if packs.expand is not None:
            y = ops_block.conv1x1_packed(y, packs.expand, chid, "relu6")
        y = mk.ops.dwconv2d_packed(y, packs.dw, chid, 3, s, 1, 1, "relu6")
        y = ops_block.conv1x1_packed(y, packs.project, cout, "none")
        return y.add_(x) if res else y

    def eager():
        y = x
        if ew is not None:
            y = F.relu6(F.conv2d(y, ew, eb), inplace=True)
        y = F.relu6(F.conv2d(y, dw, db, s, 1, 1, chid), inplace=True)
        y = F.conv2d(y, pw, pb)
        return y.add_(x) if res else y

    with torch.no_grad():
        ref = fused()
        for name, fn in (("unfused", unfused), ("eager", eager)):
            err = (fn() - ref).abs().max().item()
            if err > 1e-3 * max(1.0, ref.abs().max().item()):
                raise RuntimeError(f"{name} disagrees with fused by {err} on {h}x{w} {cin}x{t}->{cout} s{s}")
    info = ops_block.inverted_residual_info((batch, cin, h, w), cin, chid, cout, 3, s, pads, band_rows=band)
    info["expanded_bytes"] = batch * h * w * chid * 4
    return fused, unfused, eager, info


def block_fns_q8(h, w, cin, t, cout, s, band, batch=1):
    from mobilekernels import qops

    g = torch.Generator().manual_seed(0)
    chid = cin * t

    def codes(shape):
        return torch.randint(-127, 128, shape, generator=g, dtype=torch.int8)

    def wq(c, in_scale, k):  # per-channel scales putting the real accumulator std near 4
        return (4.0 / (in_scale * 74 * 74 * k ** 0.5) * (torch.rand(c, generator=g) * 0.5 + 0.75), 0,
                torch.randint(-2000, 2000, (c,), generator=g, dtype=torch.int32))

    xs, xz = 0.03, 110
    qp = [(0.047, 90), (0.047, 95), (0.05, 128)]
    oq = (0.06, 125)
    x = torch.randint(0, 256, (batch, cin, h, w), generator=g, dtype=torch.uint8)
    x = x.contiguous(memory_format=torch.channels_last)
    epk = qops.qconv1x1_pack(codes((chid, cin, 1, 1)), *wq(chid, xs, cin)) if t != 1 else None
    dpk = qops.qdwconv2d_pack(codes((chid, 1, 3, 3)), *wq(chid, qp[0][0] if t != 1 else xs, 9))
    ppk = qops.qconv1x1_pack(codes((cout, chid, 1, 1)), *wq(cout, qp[1][0], chid))
    packs = qops.QInvertedResidualPacks(epk, dpk, ppk, chid, cout, 3)
    res = s == 1 and cin == cout
    pads = [1, 1, 1, 1]

    def fused():
        return qops.qinverted_residual(x, packs, xs, xz, qp, s, pads, residual=res, out_qparams=oq, band_rows=band)

    def convs():
        y, ys, yz = x, xs, xz
        if epk is not None:
            y = qops.qconv1x1(y, epk, chid, ys, yz, *qp[0], activation="relu6")
            ys, yz = qp[0]
        y = qops.qdwconv2d(y, dpk, chid, 3, ys, yz, *qp[1], s, 1, activation="relu6")
        return qops.qconv1x1(y, ppk, cout, *qp[1], *qp[2])

    def unfused():
        y = convs()
        return qops.qadd(x, xs, xz, y, *qp[2], *oq) if res else y  # our C++ int8 add, as the replay runs it

    with torch.no_grad():
        if not torch.equal(fused(), unfused()):
            raise RuntimeError(f"int8 fused differs from unfused on {h}x{w} {cin}x{t}->{cout} s{s}")
    info = qops.qinverted_residual_info(x, packs, xs, xz, qp, s, pads, residual=res, out_qparams=oq, band_rows=band)
    return fused, unfused, convs, info


def peak_rss(res: int, mode: str, batch: int = 1) -> None:
    """Print VmHWM of one MobileNetV2 ``features`` forward (stem + 17 blocks + last conv) with
    fused blocks or our unfused three ops, the peak reset just before (/proc/self/clear_refs)."""
    from torch import nn

    from mobilekernels.models.blocks import InvertedResidual as TorchBlock
    from mobilekernels.models.mobilenet_v2 import mobilenet_v2

    def hwm_kb() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    class Unfused(nn.Module):
        def __init__(self, fused):
            super().__init__()
            self.fused = fused

        def forward(self, x):
            return self.fused._unfused(x)

    feats = mobilenet_v2().eval().features
    fused = nn.Sequential(*[mk.nn.InvertedResidual.from_torch(b) if isinstance(b, TorchBlock) else b for b in feats])
    unfused = nn.Sequential(*[Unfused(b) if isinstance(b, mk.nn.InvertedResidual) else b for b in fused])
    net = fused if mode == "fused" else unfused
    x = torch.randn(batch, 3, res, res).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        Path("/proc/self/clear_refs").write_text("5")  # peak := current resident set
        base = hwm_kb()
        net(x)
        peak = hwm_kb()
    print(json.dumps({"mode": mode, "peak_rss_kb": peak, "forward_growth_kb": peak - base}))


def rss_report(res: int, threads: int) -> None:
    """Each mode in a fresh process, so no allocator cache from the other mode hides its peak."""
    import subprocess

    for mode in ("unfused", "fused"):
        out = subprocess.run([sys.executable, __file__, "--rss-mode", mode, "--res", str(res), "--threads",
                              str(threads)], capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"MobileNetV2 features forward {res}x{res} batch 1, {threads} thread(s), {mode:>7}: peak RSS "
              f"{r['peak_rss_kb']/1024:.1f} MB, +{r['forward_growth_kb']/1024:.1f} MB during the forward")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, default=224, help="network input size (blocks scale with it)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--samples", type=int, default=11)
    ap.add_argument("--band", type=int, default=0, help="force output rows per band (0 = automatic)")
    ap.add_argument("--batch", type=int, default=1,
                    help="images per call (the issue's figure is batch 1; a larger batch shows the fusion "
                         "where the unfused expanded tensors no longer fit the last-level cache)")
    ap.add_argument("--json", type=Path, help="write results as JSON")
    ap.add_argument("--clock", choices=["wall", "thread", "process"], default="wall",
                    help="'thread': CPU time of the calling thread (1 thread only; immune to other "
                         "processes taking the core on a shared machine); 'process': CPU time of all "
                         "the process's threads (any thread count: total work, blind to idle waits; "
                         "run with OMP_WAIT_POLICY=passive so that waiting threads do not spin)")
    ap.add_argument("--dtype", choices=["f32", "int8"], default="f32", help="fp32 block or the int8 block")
    ap.add_argument("--rss", action="store_true", help="only measure whole-network peak RSS, fused vs unfused")
    ap.add_argument("--rss-mode", choices=["fused", "unfused"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads[0])
    if args.rss_mode:
        return peak_rss(args.res, args.rss_mode)
    if args.rss:
        return rss_report(args.res, args.threads[0])
    console = Console(width=200)
    console.print(machine_line() + f"; mobilekernels isa {mk.get_isa()}, gemm {ops_block.conv1x1_kernel_name()}, "
                  f"clock {args.clock}")
    if args.clock == "thread":
        if args.threads != [1]:
            ap.error("--clock thread measures the calling thread only: use --threads 1")
        time.perf_counter = time.thread_time  # compare() (mobilekernels._timing) reads time.perf_counter
    elif args.clock == "process":
        time.perf_counter = time.process_time
    shapes = [(-(-h * args.res // 224), -(-w * args.res // 224), cin, t, cout, s)
              for (h, w, cin, t, cout, s) in read_shapes("mobilenet_v2_blocks.txt")]
    if args.dtype == "int8":
        from mobilekernels import qops

        console.print(f"int8: {qops.kernel_names()}")
        # the third column: the three int8 convs alone (the add left out, the fairest kernel-to-kernel ratio)
        spec = dict(prefix="int8 ", make=block_fns_q8, cols=("band", "unfused+add", "3 convs", "convs/fused"),
                    keys=("unfused_with_add", "unfused_convs"), extra={"dtype": "int8"}, scratch_fmt=".1f")
    else:
        spec = dict(prefix="", make=block_fns, cols=("band(/tile)", "unfused", "torch CL", "torch/fused"),
                    keys=("unfused", "torch_channels_last"), extra={}, scratch_fmt=".0f")
    results = run_tables(args, console, shapes, **spec)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_line(), "results": results}, indent=1))


def band_column(info, chid):
    tile = info.get("channel_tile", chid)  # band height / channel tile when tiled (fp32)
    images = info.get("group_images", 1)  # whole images per work item (int8, small images)
    return str(info["band_rows"]) + (f"/{tile}" if tile < chid else "") + (f" x{images}img" if images > 1 else "")


def run_tables(args, console, shapes, prefix, make, cols, keys, extra, scratch_fmt):
    """One table per thread count: per block the fused op, the unfused sequence and a third
    variant (``make`` returns the three callables and the fused op's info), their ratios, and
    the fused op's scratch of the whole call (all threads, shared buffers included) against the
    expanded tensor of the whole batch."""
    results = []
    with torch.no_grad():
        for nt in args.threads:
            torch.set_num_threads(nt)
            table = Table(title=f"{prefix}MobileNetV2 blocks at {args.res}, batch {args.batch}, {nt} thread(s): median us")
            for col in ("#", "HxW Cin t Cout s", cols[0], "fused", cols[1], cols[2], "unf/fused", cols[3],
                        "scratch KB (call)", "expanded KB (batch)", "ratio"):
                table.add_column(col, justify="right")
            tot = [0.0, 0.0, 0.0]
            for i, (h, w, cin, t, cout, s) in enumerate(shapes, 1):
                fused, unfused, third, info = make(h, w, cin, t, cout, s, args.band, args.batch)
                f, u, e = compare([fused, unfused, third], samples=args.samples)
                tot = [tot[0] + f["median"], tot[1] + u["median"], tot[2] + e["median"]]
                scratch = info["scratch_bytes_per_thread"] * info["threads"] + info.get("scratch_bytes_shared", 0)
                expanded = info["expanded_bytes"]
                table.add_row(str(i), f"{h}x{w} {cin} {t} {cout} {s}", band_column(info, cin * t),
                              f"{f['median']*1e6:.0f}", f"{u['median']*1e6:.0f}", f"{e['median']*1e6:.0f}",
                              f"{u['median']/f['median']:.2f}x", f"{e['median']/f['median']:.2f}x",
                              f"{scratch/1024:{scratch_fmt}}", f"{expanded/1024:.0f}", f"1/{expanded/scratch:.1f}")
                results.append({**extra, "threads": nt, "res": args.res, "batch": args.batch,
                                "block": [h, w, cin, t, cout, s], "info": info, "fused": f, keys[0]: u, keys[1]: e,
                                "scratch_bytes": scratch, "expanded_bytes": expanded})
            table.add_row("", "sum of 17", "", f"{tot[0]*1e6:.0f}", f"{tot[1]*1e6:.0f}", f"{tot[2]*1e6:.0f}",
                          f"{tot[1]/tot[0]:.2f}x", f"{tot[2]/tot[0]:.2f}x", "", "", "", style="bold")
            console.print(table)
    return results


if __name__ == "__main__":
    main()
