"""Python overhead of a converted model: chained runs vs per-module calls, and per block.

Run pinned, one thread (the machine is shared: medians of many interleaved samples):
    nice -n -20 taskset -c 1 python bench/bench_chain.py [--samples 61] [--cpu-time]

Three ways to run the same converted MobileNetV2 (random init, fixed seed, batch 1), outputs
checked bit-identical:
  * "torch.ops": each fused block / 1x1 through the registered ``torch.ops`` packed op, as the
    modules did before their eager fast paths (their old forward, patched in here);
  * "per module": ``convert(chain=False)``, each module calling ``_C`` directly;
  * "chained": ``convert()`` (chain=True), features[1:] as one C++ call.
And one fused block (features[3], 24->144->24 at 8x8) in each module mode against the bare
``_C`` call on the same pointers into a preallocated output: the difference is the per-block
overhead outside the kernel. ``--cpu-time`` times with the thread's CPU clock instead of the
wall clock (less sensitive to other processes taking the core).
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

import mobilekernels as mk
from mobilekernels import _C
from mobilekernels.models import mobilenet_v2
from mobilekernels.nn import InvertedResidual, PointwiseConv2d


def _old_ir_forward(self, x):
    # InvertedResidual.forward before the eager fast path (inference branch).
    if torch.is_grad_enabled() and (x.requires_grad or any(
            t is not None and t.requires_grad for t in self._weights())) and not torch.compiler.is_compiling():
        return self._unfused(x)
    epk, dpk, ppk = self._pack()
    return torch.ops.mobilekernels.inverted_residual_packed(
        x, epk, dpk, ppk, self.hidden_channels, self.out_channels, self.kernel_size, self.stride,
        self.padding, *self.activations, self.residual, self.band_rows)


def _old_pw_forward(self, x):
    if torch.compiler.is_compiling() or torch.is_grad_enabled() and (self.weight.requires_grad or x.requires_grad):
        return torch.ops.mobilekernels.conv1x1(x, self.weight, self.bias, self.activation)
    return torch.ops.mobilekernels.conv1x1_packed(x, self._pack(), self.out_channels, self.activation)


@contextlib.contextmanager
def _old_forwards():
    saved = InvertedResidual.forward, PointwiseConv2d.forward
    InvertedResidual.forward, PointwiseConv2d.forward = _old_ir_forward, _old_pw_forward
    try:
        yield
    finally:
        InvertedResidual.forward, PointwiseConv2d.forward = saved


def _timed(fn, mode, clock):
    if mode == "torch.ops":
        with _old_forwards():
            t0 = clock()
            fn()
            return clock() - t0
    t0 = clock()
    fn()
    return clock() - t0


def compare(cases: dict, samples: int, target_s: float, clock) -> dict:
    """cases: name -> (mode, fn). Interleaved samples; each sample repeats fn ~target_s."""
    reps = {}
    for name, (mode, fn) in cases.items():
        def many(n, fn=fn):
            def run():
                for _ in range(n):
                    fn()
            return run
        _timed(fn, mode, time.perf_counter)  # warm-up
        n = 1
        while _timed(many(n), mode, time.perf_counter) < target_s / 4 and n < 1 << 14:
            n *= 2
        reps[name] = (n, many(n))
    times = {name: [] for name in cases}
    for _ in range(samples):
        for name, (mode, _) in cases.items():
            n, run = reps[name]
            times[name].append(_timed(run, mode, clock) / n)
    return {k: (statistics.median(v), min(v), max(v)) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=61)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cpu-time", action="store_true")
    args = ap.parse_args()
    clock = time.thread_time if args.cpu_time else time.perf_counter
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = mobilenet_v2().eval()
    chained, plain = mk.convert(model), mk.convert(model, chain=False)
    print(f"torch {torch.__version__}, {args.threads} thread(s), isa {mk.get_isa()}, {args.samples} samples, "
          f"{'thread CPU time' if args.cpu_time else 'wall time'}")
    with torch.inference_mode():
        for size, target in ((224, 0.1), (8, 0.01)):
            x = torch.randn(1, 3, size, size)
            ref = plain(x)
            with _old_forwards():
                assert torch.equal(plain(x), ref)
            assert torch.equal(chained(x), ref)
            res = compare({"torch.ops": ("torch.ops", lambda: plain(x)), "per module": ("new", lambda: plain(x)),
                           "chained": ("new", lambda: chained(x))}, args.samples, target, clock)
            for name, (med, lo, hi) in res.items():
                print(f"MobileNetV2 {size:3d}x{size:<3d} {name:10s}: {med * 1e3:7.3f} ms "
                      f"(min {lo * 1e3:.3f}, max {hi * 1e3:.3f})")

        block = plain.model.features[3]
        x = torch.randn(1, 24, 8, 8).contiguous(memory_format=torch.channels_last)
        out = torch.empty(1, 24, 8, 8).contiguous(memory_format=torch.channels_last)
        block(x)
        epk, dpk, ppk = block._pack()
        args_ = (1, 8, 8, 24, 144, 24, 3, 1, 1, 1, 1, 1, True, 2, 2, 0, True, 0)

        def bare():
            _C.f32_inverted_residual(x.data_ptr(), epk.data_ptr(), epk.numel(), dpk.data_ptr(), dpk.numel(),
                                     ppk.data_ptr(), ppk.numel(), out.data_ptr(), *args_, torch.get_num_threads())

        bare()
        assert torch.equal(out, block(x))
        res = compare({"torch.ops": ("torch.ops", lambda: block(x)), "per module": ("new", lambda: block(x)),
                       "bare _C": ("new", bare)}, args.samples, 0.01, clock)
        base = res["bare _C"][0]
        for name, (med, lo, hi) in res.items():
            extra = f", overhead {(med - base) * 1e6:5.1f} us" if name != "bare _C" else ""
            print(f"block 24->144->24 8x8 {name:10s}: {med * 1e6:6.1f} us (min {lo * 1e6:.1f}){extra}")


if __name__ == "__main__":
    main()
