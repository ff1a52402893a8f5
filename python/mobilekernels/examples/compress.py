"""End-to-end compression on real data: teacher -> distilled MobileNet -> pruned MobileNet.

    python -m mobilekernels.examples.compress [--quick] [--seed 0] [--threads 1]

Data: scikit-learn's digits (1,797 real 8x8 handwritten digits), upscaled to 32x32,
grey replicated to 3 channels, stratified 75/25 split (1,347 train / 450 test),
random shifts of up to 3 pixels while training. With one seed throughout:

1. teacher: a plain 5-layer CNN, width 16 (dense 3x3 convs: strong on 32x32 digits, quick
   to train);
2. student alone: MobileNetV1 0.5x trained with cross-entropy;
3. student distilled: the same student, same initial weights, batches and epochs,
   trained with ``DistillationLoss(alpha, T)``;
4. pruned: 50% of the distilled student's channels removed in steps
   (``iterative_prune``: 2 steps, L1 importance, multiples of 8), each step fine-tuned
   for 6 epochs with distillation.

Prints one table: test accuracy, parameters, MACs per image and CPU latency
(median over interleaved rounds of repeated runs, one thread, eval mode, batch
of test images). Needs scikit-learn and tqdm. Training uses one thread by default,
so a seed reproduces its numbers; across seeds (which also change the split) the
450-image test accuracies move by 1-2 points (see the seed study in the README).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ..distill import DistillationLoss, Distiller
from ..models import count_macs, count_params, get_model, measure_latency
from ..prune import iterative_prune

__all__ = ["digits_tensors", "digits_loaders", "make_teacher", "train", "compare_latency", "main"]


def digits_tensors(size: int = 32, test_size: float = 0.25, seed: int = 0):
    """``(x_train, y_train, x_test, y_test)``: float ``(N, 3, size, size)`` standardised
    with train statistics, int64 labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.tensor(data.target, dtype=torch.long)
    idx_tr, idx_te = train_test_split(list(range(len(y))), test_size=test_size,
                                      stratify=data.target, random_state=seed)
    x_tr, x_te = x[idx_tr], x[idx_te]
    mean, std = x_tr.mean(), x_tr.std()
    return (((x_tr - mean) / std).repeat(1, 3, 1, 1), y[idx_tr],
            ((x_te - mean) / std).repeat(1, 3, 1, 1), y[idx_te])


class ShiftedImages(Dataset):
    """Random translation by up to ``shift`` pixels (edge padding), from a seeded generator."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, shift: int = 3, seed: int = 0) -> None:
        self.x = F.pad(x, (shift,) * 4, mode="replicate")
        self.y, self.shift, self.size = y, shift, x.shape[-1]
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        a, b = torch.randint(0, 2 * self.shift + 1, (2,), generator=self.generator).tolist()
        return self.x[i, :, a:a + self.size, b:b + self.size], self.y[i]


def digits_loaders(batch_size: int = 32, size: int = 32, seed: int = 0, shift: int = 3,
                   limit: Optional[int] = None):
    """Train loader (seeded shuffling and shifts) and test loader; ``limit`` caps the
    number of training images (for quick runs)."""
    x_tr, y_tr, x_te, y_te = digits_tensors(size, seed=seed)
    if limit is not None:
        x_tr, y_tr = x_tr[:limit], y_tr[:limit]
    data = ShiftedImages(x_tr, y_tr, shift, seed) if shift else TensorDataset(x_tr, y_tr)
    train_loader = DataLoader(data, batch_size=batch_size, shuffle=True,
                              generator=torch.Generator().manual_seed(seed))
    return train_loader, DataLoader(TensorDataset(x_te, y_te), batch_size=256)


def make_teacher(width: int = 32, num_classes: int = 10) -> nn.Sequential:
    """Plain CNN: five 3x3 conv-BN-ReLU layers (total stride 8), pooling, linear."""
    def block(i: int, o: int, s: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

    w = width
    return nn.Sequential(*block(3, w, 1), *block(w, 2 * w, 2), *block(2 * w, 2 * w, 1),
                         *block(2 * w, 4 * w, 2), *block(4 * w, 4 * w, 2), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * w, num_classes))


def _reseed(loader: DataLoader, seed: int) -> None:
    torch.manual_seed(seed)
    if loader.generator is not None:
        loader.generator.manual_seed(seed)
    gen = getattr(loader.dataset, "generator", None)
    if gen is not None:
        gen.manual_seed(seed + 1)


def train(model: nn.Module, loader: DataLoader, epochs: int, lr: float,
          teacher: Optional[nn.Module] = None, alpha: float = 0.9, temperature: float = 4.0,
          seed: int = 0, progress: bool = True) -> nn.Module:
    """AdamW with a one-cycle schedule; with ``teacher``, ``DistillationLoss(alpha, T)``.
    Reseeds torch, the shuffling and the shifts: same seed, same batches."""
    _reseed(loader, seed)
    total = epochs * len(loader)
    loss = DistillationLoss(alpha, temperature) if teacher is not None else None
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    Distiller(model, teacher, loss, optimizer=opt, progress=progress, scheduler_interval="step",
              scheduler=lambda o: torch.optim.lr_scheduler.OneCycleLR(o, lr, total_steps=total,
                                                                      pct_start=0.2)).fit(loader, epochs)
    return model.eval()


def compare_latency(models: dict[str, nn.Module], x: torch.Tensor, rounds: int = 7, runs: int = 15,
                    threads: int = 1) -> dict[str, float]:
    """Median latency (ms) per model; rounds interleave the models so load changes on a
    shared machine hit all of them alike."""
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(measure_latency(model, x, runs=runs, warmup=3, threads=threads))
    return {k: statistics.median(v) for k, v in times.items()}


def _table(rows: list[dict], lat_cols: list[str]) -> str:
    head = ["model", "accuracy (%)", "params", "MACs / image"] + lat_cols
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in rows:
        cells = [r["name"], f"{r['accuracy']:.2f}", f"{r['params']:,}", f"{r['macs'] / 1e6:.2f} M"]
        cells += [f"{r[c]:.2f}" for c in lat_cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--student", default="mobilenet_v1")
    p.add_argument("--width", type=float, default=0.5, help="student width_mult")
    p.add_argument("--teacher-width", type=int, default=16)
    p.add_argument("--teacher-epochs", type=int, default=10)
    p.add_argument("--student-epochs", type=int, default=12)
    p.add_argument("--finetune-epochs", type=int, default=6, help="per pruning step")
    p.add_argument("--prune-ratio", type=float, default=0.5)
    p.add_argument("--prune-steps", type=int, default=2)
    p.add_argument("--alpha", type=float, default=0.9)
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--lr", type=float, default=1e-2, help="student peak learning rate")
    p.add_argument("--teacher-lr", type=float, default=5e-3)
    p.add_argument("--finetune-lr", type=float, default=5e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: reproducible numbers)")
    p.add_argument("--latency-batch", type=int, default=64)
    p.add_argument("--quick", action="store_true", help="tiny run for smoke tests (numbers meaningless)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        a.teacher_epochs = a.student_epochs = a.finetune_epochs = 1
        a.prune_steps, a.width, a.latency_batch, a.teacher_width = 1, 0.25, 8, 8
    progress = not a.no_progress
    old_threads = torch.get_num_threads()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    try:
        train_loader, test_loader = digits_loaders(seed=a.seed, limit=64 if a.quick else None)
        kd = dict(alpha=a.alpha, temperature=a.temperature, seed=a.seed, progress=progress)

        def say(msg: str) -> None:
            print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)

        torch.manual_seed(a.seed)
        teacher = train(make_teacher(a.teacher_width), train_loader, a.teacher_epochs, a.teacher_lr,
                        seed=a.seed, progress=progress)
        say("teacher trained")
        torch.manual_seed(a.seed)
        init = get_model(a.student, num_classes=10, width_mult=a.width)
        alone = train(copy.deepcopy(init), train_loader, a.student_epochs, a.lr, seed=a.seed,
                      progress=progress)
        say("student trained alone")
        distilled = train(copy.deepcopy(init), train_loader, a.student_epochs, a.lr, teacher, **kd)
        say("student distilled")
        x_ex = next(iter(test_loader))[0][:2]

        def fine_tune(model: nn.Module, step: int) -> nn.Module:
            return train(model, train_loader, a.finetune_epochs, a.finetune_lr, teacher, **kd)

        pruned = iterative_prune(copy.deepcopy(distilled), a.prune_ratio, a.prune_steps, fine_tune,
                                 example_input=x_ex)
        say(f"pruned {a.prune_ratio:.0%} of the channels in {a.prune_steps} step(s), fine-tuned")

        models = {"teacher (plain CNN)": teacher, f"student {a.student} {a.width}x alone": alone,
                  f"student {a.student} {a.width}x distilled": distilled,
                  f"distilled + pruned {a.prune_ratio:.0%} channels": pruned}
        x_b = next(iter(test_loader))[0][:a.latency_batch]
        lat_b = compare_latency(models, x_b, rounds=2 if a.quick else 7, runs=3 if a.quick else 15,
                                threads=1)
        lat_1 = compare_latency(models, x_b[:1], rounds=2 if a.quick else 7, runs=3 if a.quick else 30,
                                threads=1)
        say("latency measured")
    finally:
        torch.set_num_threads(old_threads)
    col_b, col_1 = f"latency batch {a.latency_batch} (ms)", "latency batch 1 (ms)"
    rows = []
    for name, m in models.items():
        rows.append({"name": name, "accuracy": Distiller.evaluate(m, test_loader)["accuracy"],
                     "params": count_params(m), "macs": count_macs(m, x_ex[:1]),
                     col_b: lat_b[name], col_1: lat_1[name]})
    print()
    print(f"digits 32x32, {len(train_loader.dataset)} train / {len(test_loader.dataset)} test images, "
          f"seed {a.seed}, {a.threads} training thread(s); latency: 1 thread, median of interleaved runs")
    print(_table(rows, [col_b, col_1]))
    _, r_alone, r_kd, r_pr = rows
    print(f"\ndistilled vs alone: {r_kd['accuracy'] - r_alone['accuracy']:+.2f} points; "
          f"pruned vs distilled: {r_pr['accuracy'] - r_kd['accuracy']:+.2f} points, "
          f"{r_kd[col_b] / r_pr[col_b]:.2f}x faster at batch {a.latency_batch}, "
          f"{r_kd[col_1] / r_pr[col_1]:.2f}x at batch 1, "
          f"MACs -{1 - r_pr['macs'] / r_kd['macs']:.0%}, params -{1 - r_pr['params'] / r_kd['params']:.0%}")
    return {"rows": rows, "args": vars(a), "seconds": time.perf_counter() - t0}


if __name__ == "__main__":
    main()
