"""Per-call overhead of the converted model: chained vs per-module, and per-block overhead.

Run pinned on a quiet core, one thread:
    nice -n -20 taskset -c 1 python bench/bench_chain.py [--samples 41]

Prints medians (min/max) of interleaved samples:
  * a converted MobileNetV2 (random init, fixed seed) at 224x224 and 8x8, batch 1, with
    ``convert(chain=True)`` and ``chain=False`` (older trees without the option: only "off");
  * one fused block (MobileNetV2 features[3], 24->144->24, 8x8): the module call vs the bare
    ``_C`` call on the same pointers into a preallocated output; the difference is the
    per-block overhead outside the kernel.
"""
from __future__ import annotations

import argparse
import inspect

import torch

import mobilekernels as mk
from mobilekernels import _C, _timing
from mobilekernels.models import mobilenet_v2


def _convert(model, chain):
    if "chain" in inspect.signature(mk.convert).parameters:
        return mk.convert(model, chain=chain)
    if chain:
        return None
    return mk.convert(model)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=41)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = mobilenet_v2().eval()
    models = {name: _convert(model, chain) for name, chain in (("chain on", True), ("chain off", False))}
    models = {k: v for k, v in models.items() if v is not None}
    print(f"torch {torch.__version__}, {args.threads} thread(s), isa {mk.get_isa()}, {args.samples} samples")
    with torch.inference_mode():
        for size, sample_s in ((224, 0.2), (8, 0.02)):
            x = torch.randn(1, 3, size, size)
            names = list(models)
            ys = [models[n](x) for n in names]
            for y in ys[1:]:
                assert torch.equal(y, ys[0]), "chained and per-module outputs differ"
            res = _timing.compare([lambda m=models[n]: m(x) for n in names], samples=args.samples,
                                  sample_s=sample_s)
            for n, r in zip(names, res):
                print(f"MobileNetV2 {size}x{size} {n:9s}: {r['median'] * 1e3:8.3f} ms "
                      f"(min {r['min'] * 1e3:.3f}, max {r['max'] * 1e3:.3f})")

        block = models["chain off"].model.features[3]
        x = torch.randn(1, 24, 8, 8).contiguous(memory_format=torch.channels_last)
        block(x)
        epk, dpk, ppk = block._pack()
        out = torch.empty(1, 24, 8, 8).contiguous(memory_format=torch.channels_last)
        args_ = (1, 8, 8, 24, 144, 24, 3, 1, 1, 1, 1, 1, True, 2, 2, 0, True, 0)

        def bare():
            _C.f32_inverted_residual(x.data_ptr(), epk.data_ptr(), epk.numel(), dpk.data_ptr(), dpk.numel(),
                                     ppk.data_ptr(), ppk.numel(), out.data_ptr(), *args_, torch.get_num_threads())

        bare()
        assert torch.equal(out, block(x))
        r_mod, r_bare = _timing.compare([lambda: block(x), bare], samples=args.samples)
        print(f"block 24->144->24 8x8: module {r_mod['median'] * 1e6:.1f} us, bare _C call "
              f"{r_bare['median'] * 1e6:.1f} us, overhead {(r_mod['median'] - r_bare['median']) * 1e6:.1f} us")


if __name__ == "__main__":
    main()
