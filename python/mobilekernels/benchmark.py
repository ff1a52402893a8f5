"""``python -m mobilekernels bench``: whole MobileNets, ours against PyTorch, in one process.

For each model (random init, fixed seed, 224x224) and thread count it times PyTorch eager fp32
(NCHW and channels_last), PyTorch int8 (FX post-training quantization on the default ``x86``
engine), ONNX Runtime fp32 when installed, ``mobilekernels.convert`` fp32 and
``mobilekernels.quantize`` int8 (calibrated on 4 random batches); checks that our fp32 output
agrees with PyTorch's and our int8 output with its fake-quantized float reference; prints one table (median ms, min/max, speed-up against eager NCHW)
and writes a JSON file and a PNG bar chart. (Peak memory: see bench/bench_blocks.py --rss.)
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import warnings
from pathlib import Path

import torch

from ._timing import compare

MODELS = {"mobilenet_v2": "mobilenet_v2", "mobilenet_v3_large": "mobilenet_v3_large"}


def _torch_int8(model: torch.nn.Module, x: torch.Tensor):
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping("x86"), (x,))
        g = torch.Generator().manual_seed(1)
        for _ in range(4):
            prepared(torch.randn(x.shape, generator=g))
        return convert_fx(prepared)


def _onnxruntime(model: torch.nn.Module, x: torch.Tensor, threads: int):
    import io

    import onnxruntime as ort  # optional

    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, opset_version=17, dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    xn = x.numpy()
    return lambda: sess.run(None, {name: xn})


def _realistic_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Random-init MobileNets end with near-zero logits (zero-init residual BN); give every
    BatchNorm trained-looking statistics so outputs, and int8 agreement checks, mean something."""
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    return model


def build_variants(name: str, batch: int, res: int, threads: int):
    """[(label, fn or None, note)] for one model at one thread count; also the agreement check."""
    import mobilekernels as mk
    from . import models

    torch.manual_seed(0)
    model = _realistic_bn(models.get_model(name).eval())
    x = torch.randn(batch, 3, res, res)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    ours = mk.convert(model)
    ref = model(x)
    got = ours(x)
    err = ((got - ref).abs().max() / ref.abs().max()).item()
    if err > 1e-3:
        raise RuntimeError(f"{name}: mobilekernels fp32 output differs from PyTorch (rel err {err:.2e})")
    variants = [("torch fp32 NCHW", lambda: model(x), ""), ("torch fp32 channels_last", lambda: model_cl(x_cl), "")]
    try:
        q = _torch_int8(model, x)
        variants.append(("torch int8 (x86 engine)", lambda: q(x), ""))
    except Exception as e:  # noqa: BLE001 - report, do not hide
        variants.append(("torch int8 (x86 engine)", None, f"failed: {type(e).__name__}: {e}"[:80]))
    try:
        variants.append(("onnxruntime fp32", _onnxruntime(model, x, threads), ""))
    except ImportError:
        variants.append(("onnxruntime fp32", None, "not installed"))
    variants.append(("mobilekernels fp32", lambda: ours(x), f"rel err vs torch {err:.1e}"))
    g = torch.Generator().manual_seed(1)
    calib = [torch.randn(x.shape, generator=g) for _ in range(4)]
    qours = mk.quantize(model, calib, progress=False)
    qerr = ((qours(x) - qours.reference(x)).abs().max() / qours.reference(x).abs().max()).item()
    if not qerr <= 0.1:  # a few output steps at most; nan (all-zero output) fails too
        raise RuntimeError(f"{name}: mobilekernels int8 output differs from its fake-quant reference ({qerr:.2e})")
    variants.append(("mobilekernels int8", lambda: qours(x), f"rel err vs fake-quant {qerr:.1e}"))
    return variants


def run(models: list[str], threads: list[int], batch: int, res: int, samples: int, progress=None) -> list[dict]:
    results = []
    with torch.inference_mode():
        for name in models:
            for nt in threads:
                torch.set_num_threads(nt)
                variants = build_variants(name, batch, res, nt)
                timed = [v for v in variants if v[1] is not None]
                stats = compare([v[1] for v in timed], samples=samples, sample_s=0.05)
                by_label = {v[0]: s for v, s in zip(timed, stats)}
                base = by_label["torch fp32 NCHW"]["median"]
                for label, fn, note in variants:
                    row = {"model": name, "threads": nt, "batch": batch, "variant": label, "note": note}
                    if fn is not None:
                        s = by_label[label]
                        row.update(median_ms=s["median"] * 1e3, min_ms=s["min"] * 1e3, max_ms=s["max"] * 1e3,
                                   speedup=base / s["median"])
                    results.append(row)
                if progress is not None:
                    progress()
    return results


def print_table(results: list[dict], console) -> None:
    from rich.table import Table

    table = Table(title="Whole-model forward, batch %d (median of interleaved samples)" % results[0]["batch"])
    for col in ("model", "threads", "variant", "median ms", "min-max ms", "vs torch NCHW", "note"):
        table.add_column(col, justify="left" if col in ("model", "variant", "note") else "right")
    for r in results:
        if "median_ms" in r:
            table.add_row(r["model"], str(r["threads"]), r["variant"], f"{r['median_ms']:.2f}",
                          f"{r['min_ms']:.2f}-{r['max_ms']:.2f}", f"{r['speedup']:.2f}x", r["note"])
        else:
            table.add_row(r["model"], str(r["threads"]), r["variant"], "-", "-", "-", r["note"])
    console.print(table)


def plot(results: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    timed = [r for r in results if "median_ms" in r]
    groups = sorted({(r["model"], r["threads"]) for r in timed})
    labels = list(dict.fromkeys(r["variant"] for r in timed))
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(groups)), 4))
    width = 0.8 / len(labels)
    for i, lab in enumerate(labels):
        vals = [next((r["speedup"] for r in timed if (r["model"], r["threads"]) == g and r["variant"] == lab), 0)
                for g in groups]
        ax.bar([k + i * width for k in range(len(groups))], vals, width, label=lab)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(groups))])
    ax.set_xticklabels([f"{m}\n{t} thread(s)" for m, t in groups])
    ax.set_ylabel("speed-up vs PyTorch eager NCHW")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mobilekernels bench", description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--samples", type=int, default=9)
    ap.add_argument("--json", type=Path, default=Path("mobilekernels_bench.json"))
    ap.add_argument("--png", type=Path, default=Path("mobilekernels_bench.png"))
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.progress import Progress

    import mobilekernels as mk

    console = Console(width=None if os.isatty(1) else 150)
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    header = (f"cpu: {cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; torch {torch.__version__}; "
              f"mobilekernels {mk.__version__} isa {mk.get_isa()}")
    console.print(header)
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("benchmarking", total=len(args.model) * len(args.threads))
        results = run(args.model, args.threads, args.batch, args.resolution, args.samples,
                      progress=lambda: prog.advance(task))
    print_table(results, console)
    args.json.write_text(json.dumps({"machine": header, "results": results}, indent=1))
    wrote = [str(args.json)] + ([str(args.png)] if plot(results, args.png) else [])
    console.print("wrote " + ", ".join(wrote))
    return 0
