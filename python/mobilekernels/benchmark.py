"""``python -m mobilekernels bench``: whole MobileNets, ours against PyTorch, ONNX Runtime and XNNPACK.

For each model (random init, fixed seed, 224x224) and thread count it times, in one process,
PyTorch eager fp32 (NCHW and channels_last), PyTorch int8 (FX post-training quantization on the
default ``x86`` engine), ONNX Runtime fp32 and int8 (when installed: the model exported with
``torch.onnx.export``, int8 by ``onnxruntime.quantization.quantize_static``, QDQ, per-channel
weights), XNNPACK fp32 (when ``ai-edge-litert`` is installed: the model, BN folded, as an in-memory
TFLite flatbuffer run by LiteRT, which delegates float graphs to XNNPACK; input set once as NHWC,
the copy-in not timed; see ``_tflite_export``), XNNPACK int8 (our ``mobilekernels.quantize``
model, every scale and zero point as ours, as an int8 TFLite graph on XNNPACK's QS8 path; see
``_tflite_export_q8``), ``mobilekernels.convert`` fp32 and ``mobilekernels.quantize`` int8.
Every int8 variant is calibrated on the same 4 random batches.
It checks that the fp32 outputs agree with PyTorch's and our int8 output with its fake-quantized
float reference, and reports each int8 variant's error against fp32 (max relative error and top-1
agreement on 8 held-out random inputs).

Peak memory: each variant's forward also runs in a fresh process (forked from a clean
``multiprocessing`` forkserver that has only imported torch and mobilekernels): the variant is
built, freed memory is returned to the OS (``malloc_trim``), the RSS high-water mark is reset
(``/proc/self/clear_refs``) and the growth of that mark over the loaded-model RSS is read
(``VmHWM - VmRSS``) for the first forward (includes weight packs built on first use and runtime
arenas) and for the next one after another trim (activations and scratch of a warm forward;
memory a runtime keeps in its own arena after the first call counts only in the first).

Prints one table (median ms, min-max, speed-up against eager NCHW, peak MB, note) and writes a
JSON file and a PNG bar chart.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import copy
import ctypes
import gc
import json
import logging
import multiprocessing
import os
import platform
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from ._timing import compare, core_check, core_check_line

MODELS = {"mobilenet_v2": "mobilenet_v2", "mobilenet_v3_large": "mobilenet_v3_large",
          "mobilenet_v3_small": "mobilenet_v3_small", "mobilenet_v1": "mobilenet_v1"}
DEFAULT_MODELS = ("mobilenet_v2", "mobilenet_v3_large")  # the others on request (--model)
VARIANTS = ("torch fp32 NCHW", "torch fp32 channels_last", "torch int8 (x86 engine)", "onnxruntime fp32",
            "onnxruntime int8", "xnnpack fp32", "xnnpack int8", "mobilekernels fp32", "mobilekernels int8")
# ``--unfused``: our models with every block run as its separate layers (convert / quantize with
# fuse_blocks=False), for the fused-against-unfused time and peak memory of a whole network.
UNFUSED_VARIANTS = ("mobilekernels fp32 unfused", "mobilekernels int8 unfused")
N_EVAL = 8  # held-out random inputs for the int8-vs-fp32 error


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


@dataclass
class Setup:
    """One model at one input shape: the float model, the timed input, the calibration batches
    every int8 variant uses, held-out inputs and a directory for the ONNX files."""

    name: str
    batch: int
    res: int
    workdir: Path
    model: torch.nn.Module = field(init=False)
    x: torch.Tensor = field(init=False)
    calib: list = field(init=False)
    evals: list = field(init=False)

    def __post_init__(self) -> None:
        from . import models

        torch.manual_seed(0)
        self.model = _realistic_bn(models.get_model(self.name).eval())
        shape = (self.batch, 3, self.res, self.res)
        self.x = torch.randn(shape)
        g = torch.Generator().manual_seed(1)
        self.calib = [torch.randn(shape, generator=g) for _ in range(4)]
        g = torch.Generator().manual_seed(3)
        self.evals = [torch.randn(shape, generator=g) for _ in range(N_EVAL)]

    def quantized(self):
        """Our int8 model (``mobilekernels.quantize`` on ``calib``, blocks fused), made once: the
        "mobilekernels int8" and "xnnpack int8" variants run the same one."""
        if "_quantized" not in self.__dict__:
            import mobilekernels as mk

            self.__dict__["_quantized"] = mk.quantize(self.model, self.calib, progress=False)
        return self.__dict__["_quantized"]

    def onnx_path(self, kind: str) -> Path:
        return self.workdir / f"{self.name}_b{self.batch}_r{self.res}_{kind}.onnx"


def _rel(got: torch.Tensor, ref: torch.Tensor) -> float:
    return ((got - ref).abs().max() / ref.abs().max()).item()


def _vs_fp32(fn: Callable[[torch.Tensor], torch.Tensor], st: Setup) -> str:
    """Max relative error against the float model and top-1 agreement on the held-out inputs."""
    with torch.no_grad():
        refs = torch.cat([st.model(x) for x in st.evals])
        got = torch.cat([torch.as_tensor(fn(x)).reshape(refs.shape[0] // N_EVAL, -1) for x in st.evals])
    top1 = int((got.argmax(1) == refs.argmax(1)).sum())
    return f"vs fp32 {_rel(got, refs):.1e}, top-1 {top1}/{refs.shape[0]}"


def _torch_int8(st: Setup):
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(copy.deepcopy(st.model).eval(), get_default_qconfig_mapping("x86"), (st.x,))
        for c in st.calib:
            prepared(c)
        return convert_fx(prepared)


def _ort_reduce_range() -> bool:
    """7-bit weights where ONNX Runtime's u8s8 GEMM runs on vpmaddubsw (AVX2 / AVX-512 without
    VNNI), whose saturating int16 pair sums lose accuracy with full-range weights: measured on
    MobileNetV2 here (Zen 3) 6e-2 relative logit error without, 2e-2 with, same speed."""
    from . import _C

    return "vnni" not in _C.cpu_features()


def _onnx_files(st: Setup, int8: bool) -> Path:
    """Export (legacy TorchScript exporter: needs no onnxscript, ~2 s) and, for int8, quantize
    (QDQ, per-channel int8 weights, uint8 activations, min-max calibration on ``st.calib``) once
    per model and shape; later thread counts and the memory probes reuse the files. QDQ, not
    QOperator: ORT fuses the QDQ pairs into the same int8 kernels and ran MobileNetV2 ~4% faster
    (9.7 vs 10.1 ms at 1 thread here)."""
    fp32 = st.onnx_path("fp32")
    if not fp32.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(st.model, (st.x,), str(fp32), opset_version=17, dynamo=False,
                              input_names=["x"], output_names=["y"])
    if not int8:
        return fp32
    q = st.onnx_path("int8")
    if not q.exists():
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = iter([{"x": c.numpy()} for c in st.calib])

            def get_next(self):
                return next(self.it, None)

        pre = st.onnx_path("pre")
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer logs its progress at INFO / WARNING
        try:
            quant_pre_process(str(fp32), str(pre))
            quantize_static(str(pre), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            reduce_range=_ort_reduce_range())
        finally:
            root.setLevel(level)
    return q


def _ort_session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # ORT's pool threads spin after each run by default; interleaved with torch's and our
    # OpenMP regions in one process they hold the second core and every other variant's
    # 2-thread barrier waits on a descheduled thread (measured: ours 10 -> 62 ms at 2 threads).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": x.numpy()})[0]


def _xnnpack_variant(st: Setup, threads: int, check: bool) -> tuple[Optional[Callable], str]:
    """The model (BN folded) as an in-memory TFLite flatbuffer run by LiteRT, whose interpreter
    delegates float graphs to XNNPACK; ``num_threads`` = the row's thread count."""
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        return None, "not installed"
    from . import _tflite_export

    try:
        invoke, output, undelegated = _tflite_export.runner(st.model, st.x, threads)
        note = "NHWC in" + (f"; not delegated: {','.join(undelegated)}" if undelegated else "")
        if check:
            invoke()
            with torch.no_grad():
                err = _rel(output(), st.model(st.x))
            if err > 1e-3:
                return None, f"failed: output differs from torch (rel err {err:.1e})"
            note += f"; rel err vs torch {err:.1e}"
    except Exception as e:  # noqa: BLE001 - a broken optional runtime is reported, not fatal
        return None, f"failed: {type(e).__name__}: {e}"[:80]
    return invoke, note


XNNPACK_INT8_MAX_LSB = 8  # measured at most 3 output codes apart (tests/test_tflite_export_q8.py)


def _xnnpack_int8_variant(st: Setup, threads: int, check: bool) -> tuple[Optional[Callable], str]:
    """Our int8 model as an int8 TFLite flatbuffer (``_tflite_export_q8``) run by LiteRT's XNNPACK
    delegate (QS8); checked against our int8 output (same scales: a few output codes apart)."""
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        return None, "not installed"
    from . import _tflite_export, _tflite_export_q8

    q = st.quantized()
    try:
        flat = _tflite_export_q8.export_q8(q, tuple(st.x.shape))
    except NotImplementedError as e:
        return None, f"n/a: {e}"[:120]
    try:
        it = _tflite_export.interpreter(flat, threads)
        undelegated = _tflite_export.undelegated_ops(it)
        x_index, y_index = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

        def run(x: torch.Tensor) -> torch.Tensor:
            it.set_tensor(x_index, x.permute(0, 2, 3, 1).contiguous().numpy())
            it.invoke()
            return torch.from_numpy(it.get_tensor(y_index).copy())

        note = "NHWC in" + (f"; not delegated: {','.join(undelegated)}" if undelegated else "")
        if check:
            with torch.no_grad():
                lsb = (run(st.x) - q(st.x)).abs().max().item() / float(q.steps[-1].out_scale)
            if not lsb <= XNNPACK_INT8_MAX_LSB:
                return None, f"failed: output {lsb:.0f} codes from ours int8"
            note += f"; vs ours int8 {lsb:.0f} LSB; " + _vs_fp32(run, st)
        run(st.x)  # the timed input, set once
    except Exception as e:  # noqa: BLE001 - a broken optional runtime is reported, not fatal
        return None, f"failed: {type(e).__name__}: {e}"[:80]
    return it.invoke, note


def build_variant(label: str, st: Setup, threads: int, check: bool = True) -> tuple[Optional[Callable], str]:
    """``(fn, note)`` for one variant (``fn`` None when it cannot run, with the reason). With
    ``check`` the outputs are compared with the references (a mismatch of ours raises)."""
    import mobilekernels as mk

    model, x = st.model, st.x
    if label == "torch fp32 NCHW":
        return (lambda: model(x)), ""
    if label == "torch fp32 channels_last":
        m_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        return (lambda: m_cl(x_cl)), ""
    if label == "torch int8 (x86 engine)":
        try:
            q = _torch_int8(st)
        except Exception as e:  # noqa: BLE001 - report, do not hide
            return None, f"failed: {type(e).__name__}: {e}"[:80]
        return (lambda: q(x)), (_vs_fp32(q, st) if check else "")
    if label.startswith("onnxruntime"):
        int8 = label.endswith("int8")
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return None, "not installed"
        try:
            run = _ort_session(_onnx_files(st, int8), threads)
            note = ""
            if check and int8:
                note = ("QDQ per-channel" + (", 7-bit w" if _ort_reduce_range() else "") + "; "
                        + _vs_fp32(lambda t: torch.from_numpy(run(t)), st))
            elif check:
                with torch.no_grad():
                    err = _rel(torch.from_numpy(run(x)), model(x))
                if err > 1e-3:
                    return None, f"failed: output differs from torch (rel err {err:.1e})"
                note = f"rel err vs torch {err:.1e}"
        except Exception as e:  # noqa: BLE001 - a broken optional runtime is reported, not fatal
            return None, f"failed: {type(e).__name__}: {e}"[:80]
        return (lambda: run(x)), note
    if label == "xnnpack fp32":
        return _xnnpack_variant(st, threads, check)
    if label == "xnnpack int8":
        return _xnnpack_int8_variant(st, threads, check)
    if label in ("mobilekernels fp32", "mobilekernels fp32 unfused"):
        ours = mk.convert(model, fuse_blocks=not label.endswith("unfused"))
        note = ""
        if check:
            with torch.no_grad():
                err = _rel(ours(x), model(x))
            if err > 1e-3:
                raise RuntimeError(f"{st.name}: mobilekernels fp32 output differs from PyTorch (rel err {err:.2e})")
            note = f"rel err vs torch {err:.1e}"
        return (lambda: ours(x)), note
    if label in ("mobilekernels int8", "mobilekernels int8 unfused"):
        q = (mk.quantize(model, st.calib, progress=False, fuse_blocks=False) if label.endswith("unfused")
             else st.quantized())
        note = ""
        if check:
            with torch.no_grad():
                qerr = _rel(q(x), q.reference(x))
            if not qerr <= 0.1:  # a few output steps at most; nan (all-zero output) fails too
                raise RuntimeError(f"{st.name}: mobilekernels int8 output differs from its fake-quant reference "
                                   f"({qerr:.2e})")
            note = f"vs fake-quant {qerr:.1e}; " + _vs_fp32(q, st)
        return (lambda: q(x)), note
    raise ValueError(f"unknown variant {label!r}")


# ------------------------------------------------------------------------------------------
# peak memory of one forward, in a fresh process


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _settle() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc: give freed heap pages back to the OS
    except (OSError, AttributeError):
        pass


def _peak_of(fn: Callable[[], object]) -> float:
    """MB the RSS high-water mark rises above the current RSS during ``fn()``."""
    _settle()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to VmRSS (Linux >= 4.0)
    before = _status_kib("VmRSS")
    out = fn()
    peak = _status_kib("VmHWM") - before
    del out
    return max(0, peak) / 1024


def memory_probe(name: str, batch: int, res: int, threads: int, label: str, workdir: str) -> dict:
    """Runs in a fresh process: build one variant, then the peak RSS growth of its first and of
    its next forward over the loaded-model RSS, in MB."""
    torch.set_num_threads(threads)
    with torch.no_grad():
        st = Setup(name, batch, res, Path(workdir))
        fn, _ = build_variant(label, st, threads, check=False)
    with torch.inference_mode():
        first = _peak_of(fn)
        nxt = _peak_of(fn)
    return {"peak_first_mb": first, "peak_mb": nxt}


def memory_supported() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _status_kib("VmHWM")
        return True
    except (OSError, KeyError):
        return False


def measure_memory(jobs: list[tuple], progress=None) -> list[dict]:
    """``memory_probe(*job)`` for every job, each in its own fresh process (one at a time, so
    probes never share the machine with each other)."""
    out = []
    # forkserver: every probe is forked from a server that imported torch and mobilekernels but
    # never ran OpenMP (forking after OpenMP ran can hang with libgomp), so a probe starts in
    # well under a second instead of re-importing everything as a spawned process would.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "mobilekernels", "mobilekernels.benchmark"])
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx, max_tasks_per_child=1) as pool:
        for job in jobs:
            try:
                out.append(pool.submit(memory_probe, *job).result())
            except Exception as e:  # noqa: BLE001 - one failed probe leaves a gap, not a crash
                out.append({"memory_error": f"{type(e).__name__}: {e}"[:80]})
            if progress is not None:
                progress()
    return out


def run(models: list[str], threads: list[int], batch: int, res: int, samples: int, progress=None,
        memory: str = "first", memory_progress=None, variant_labels=VARIANTS) -> list[dict]:
    """Timing rows for every model x thread count x variant; ``memory`` "first" adds peak memory
    at the first thread count of ``threads``, "all" at every one, "none" skips it."""
    results = []
    with tempfile.TemporaryDirectory(prefix="mk_bench_") as workdir:
        for name in models:
            for nt in threads:
                torch.set_num_threads(nt)
                # built under no_grad (packs made under inference_mode would be inference
                # tensors, which caches keyed on tensor versions cannot use), timed under inference_mode
                with torch.no_grad():
                    st = Setup(name, batch, res, Path(workdir))
                    variants = [(label, *build_variant(label, st, nt)) for label in variant_labels]
                timed = [v for v in variants if v[1] is not None]
                with torch.inference_mode():
                    stats = compare([v[1] for v in timed], samples=samples, sample_s=0.05)
                by_label = {v[0]: s for v, s in zip(timed, stats)}
                base = by_label["torch fp32 NCHW"]["median"]
                group = []
                for label, fn, note in variants:
                    row = {"model": name, "threads": nt, "batch": batch, "variant": label, "note": note}
                    if fn is not None:
                        s = by_label[label]
                        row.update(median_ms=s["median"] * 1e3, min_ms=s["min"] * 1e3, max_ms=s["max"] * 1e3,
                                   speedup=base / s["median"])
                    group.append(row)
                del variants, timed, st
                if memory == "all" or (memory == "first" and nt == threads[0]):
                    todo = [r for r in group if "median_ms" in r]
                    mems = measure_memory([(name, batch, res, nt, r["variant"], workdir) for r in todo],
                                          memory_progress)
                    for r, m in zip(todo, mems):
                        r.update(m)
                results += group
                if progress is not None:
                    progress()
    return results


def _mem_cell(r: dict) -> str:
    if "peak_mb" in r:
        return f"{r['peak_first_mb']:.1f} / {r['peak_mb']:.1f}"
    return "err" if "memory_error" in r else "-"


TABLE_CAPTION = ("peak MB: growth of the process's peak RSS over the loaded model during the first / the next "
                 "forward, each variant in a fresh process (first: + weight packs made on first use, runtime "
                 "arenas; next: activations and scratch of a warm forward)")


XNNPACK_CAPTION = ("xnnpack fp32: LiteRT's interpreter (XNNPACK delegate, num_threads = threads) on the model "
                   "exported to TFLite, BN folded; its NHWC float32 input is set once, the copy-in is not timed")
XNNPACK_INT8_CAPTION = ("xnnpack int8: the same on our int8 model exported to int8 TFLite with our scales and zero "
                        "points (activations = our uint8 codes - 128, our per-channel int8 weights; float input "
                        "quantized and logits dequantized inside the graph; Hardswish as int8 ADD + MUL)")


def print_table(results: list[dict], console) -> None:
    from rich.table import Table

    timed = {r["variant"] for r in results if "median_ms" in r}
    captions = ([TABLE_CAPTION] if any("peak_mb" in r for r in results) else []) + (
        [XNNPACK_CAPTION] if "xnnpack fp32" in timed else []) + (
        [XNNPACK_INT8_CAPTION] if "xnnpack int8" in timed else [])
    table = Table(title="Whole-model forward, batch %d (median of interleaved samples)" % results[0]["batch"],
                  caption="\n".join(captions) or None)
    for col in ("model", "threads", "variant", "median ms", "min-max ms", "vs torch NCHW", "peak MB", "note"):
        table.add_column(col, justify="left" if col in ("model", "variant", "note") else "right")
    for r in results:
        if "median_ms" in r:
            table.add_row(r["model"], str(r["threads"]), r["variant"], f"{r['median_ms']:.2f}",
                          f"{r['min_ms']:.2f}-{r['max_ms']:.2f}", f"{r['speedup']:.2f}x", _mem_cell(r), r["note"])
        else:
            table.add_row(r["model"], str(r["threads"]), r["variant"], "-", "-", "-", "-", r["note"])
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
    ap.add_argument("--model", nargs="+", default=list(DEFAULT_MODELS), choices=list(MODELS))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--samples", type=int, default=9)
    ap.add_argument("--json", type=Path, default=Path("mobilekernels_bench.json"))
    ap.add_argument("--png", type=Path, default=Path("mobilekernels_bench.png"))
    ap.add_argument("--memory", choices=("first", "all", "none"), default="first",
                    help="peak memory of each variant's forward, one fresh process per variant (Linux): at the "
                         "first --threads value (default), at every one, or not at all")
    ap.add_argument("--unfused", action="store_true",
                    help="also time (and measure the memory of) our fp32 and int8 models with every block "
                         "unfused (fuse_blocks=False)")
    args = ap.parse_args(argv)
    labels = VARIANTS + (UNFUSED_VARIANTS if args.unfused else ())

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
    before = core_check_line(core_check())
    console.print("before: " + before)
    memory = args.memory if memory_supported() else "none"
    if args.memory != memory:
        console.print("peak memory: needs Linux /proc/self/clear_refs; not measured")
    groups = len(args.model) * len(args.threads)
    probes = len(args.model) * len(labels) * {"all": len(args.threads), "first": 1, "none": 0}[memory]
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("timing", total=groups)
        mtask = prog.add_task("peak memory (fresh process per variant)", total=probes,
                              visible=probes > 0)
        results = run(args.model, args.threads, args.batch, args.resolution, args.samples,
                      progress=lambda: prog.advance(task), memory=memory,
                      memory_progress=lambda: prog.advance(mtask), variant_labels=labels)
    after = core_check_line(core_check())
    print_table(results, console)
    console.print("after: " + after)
    args.json.write_text(json.dumps({"machine": header, "core_check": {"before": before, "after": after},
                                     "results": results}, indent=1))
    wrote = [str(args.json)] + ([str(args.png)] if plot(results, args.png) else [])
    console.print("wrote " + ", ".join(wrote))
    return 0
