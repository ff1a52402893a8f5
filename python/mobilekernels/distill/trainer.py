"""A small training helper for distillation (and plain training), with a tqdm bar.

>>> d = Distiller(student, teacher, DistillationLoss(alpha=0.7, temperature=4))
>>> history = d.fit(train_loader, epochs=10, val_loader=test_loader)
>>> Distiller.evaluate(student, test_loader)["accuracy"]

* The teacher is frozen (``requires_grad=False``) and kept in eval mode; only the
  student (plus hint regressors) is trained. ``teacher=None`` trains the student
  alone with cross-entropy (the baseline).
* ``hints=[("features.6", "features.10")]``: FitNets-style feature-map hints; a 1x1
  conv regressor maps the student map to the teacher's channels (resized to the
  teacher's spatial size) and ``hint_weight * MSE`` is added to the loss.
* Loaders yield ``(inputs, targets)``; ``optimizer`` is an optimizer or a callable
  ``params -> optimizer`` (default AdamW, lr 1e-3, built at the first batch);
  ``scheduler`` a callable ``optimizer -> lr scheduler``, stepped every ``"epoch"`` or ``"step"``.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

try:  # tqdm is an optional dependency: without it there is simply no progress bar
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    def tqdm(iterable, **kwargs):  # type: ignore[no-redef]
        class _NoBar:
            def __iter__(self):
                return iter(iterable)

            def set_postfix(self, **kw):
                pass
        return _NoBar()

from .losses import DistillationLoss

__all__ = ["Distiller"]

OptimizerLike = Union[torch.optim.Optimizer, Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]]


def _default_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)


class Distiller:
    def __init__(self, student: nn.Module, teacher: Optional[nn.Module] = None,
                 loss: Optional[nn.Module] = None, optimizer: Optional[OptimizerLike] = None,
                 hints: Sequence[tuple[str, str]] = (), hint_weight: float = 1.0,
                 scheduler: Optional[Callable[[torch.optim.Optimizer], object]] = None,
                 scheduler_interval: str = "epoch", progress: bool = True,
                 device: Union[str, torch.device] = "cpu") -> None:
        if hints and teacher is None:
            raise ValueError("hints need a teacher")
        self.device = torch.device(device)
        self.student = student.to(self.device)
        self.teacher = teacher
        if teacher is not None:
            teacher.to(self.device).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
        self.loss = loss if loss is not None else (DistillationLoss() if teacher is not None else None)
        self._optimizer_arg = optimizer or _default_optimizer
        self.optimizer: Optional[torch.optim.Optimizer] = None
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self._scheduler_fn = scheduler
        self.scheduler = None
        self.scheduler_interval = scheduler_interval
        self.hints = list(hints)
        self.hint_weight = hint_weight
        self.regressors = nn.ModuleList()
        self.progress = progress
        self._feats: dict[str, Tensor] = {}
        self._handles = []
        for s_name, t_name in self.hints:
            self._hook(self.student, s_name, "s:" + s_name)
            self._hook(teacher, t_name, "t:" + t_name)

    def _hook(self, model: nn.Module, name: str, key: str) -> None:
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"hint layer {name!r} not found in {type(model).__name__}") from None
        self._handles.append(module.register_forward_hook(
            lambda m, i, o: self._feats.__setitem__(key, o)))

    def _setup(self, x: Tensor) -> None:
        """At the first batch: build hint regressors from the feature shapes, then the optimizer."""
        if self.hints:
            with torch.no_grad():
                was = self.student.training
                self.student.eval()
                self.student(x[:1])
                self.teacher(x[:1])
                self.student.train(was)
            for s_name, t_name in self.hints:
                cs, ct = self._feats["s:" + s_name].shape[1], self._feats["t:" + t_name].shape[1]
                self.regressors.append(nn.Conv2d(cs, ct, 1, bias=False).to(self.device))
        params = list(self.student.parameters()) + list(self.regressors.parameters())
        if isinstance(self._optimizer_arg, torch.optim.Optimizer):
            self.optimizer = self._optimizer_arg
            if len(self.regressors):
                self.optimizer.add_param_group({"params": list(self.regressors.parameters())})
        else:
            self.optimizer = self._optimizer_arg(params)
        if self._scheduler_fn is not None:
            self.scheduler = self._scheduler_fn(self.optimizer)

    def hint_loss(self) -> Tensor:
        total = torch.zeros((), device=self.device)
        for (s_name, t_name), reg in zip(self.hints, self.regressors):
            fs, ft = reg(self._feats["s:" + s_name]), self._feats["t:" + t_name]
            if fs.shape[-2:] != ft.shape[-2:]:
                fs = F.interpolate(fs, size=ft.shape[-2:], mode="bilinear", align_corners=False)
            total = total + F.mse_loss(fs, ft)
        return total

    def step(self, x: Tensor, y: Tensor) -> float:
        """One optimisation step on a batch; returns the loss."""
        x, y = x.to(self.device), y.to(self.device)
        if self.optimizer is None:
            self._setup(x)
        self.student.train()
        logits = self.student(x)
        if self.teacher is None:
            loss = F.cross_entropy(logits, y)
        else:
            self.teacher.eval()
            with torch.no_grad():
                t_logits = self.teacher(x)
            loss = self.loss(logits, t_logits, y)
            if self.hints:
                loss = loss + self.hint_weight * self.hint_loss()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        return float(loss.detach())

    def train_epoch(self, loader: Iterable, epoch: int = 0, epochs: int = 1) -> float:
        """One pass over ``loader``; returns the mean batch loss."""
        total, n = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=not self.progress)
        for x, y in bar:
            total += self.step(x, y)
            n += 1
            bar.set_postfix(loss=f"{total / n:.4f}")
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        return total / max(1, n)

    def fit(self, train_loader: Iterable, epochs: int, val_loader: Optional[Iterable] = None
            ) -> list[dict[str, float]]:
        """Train for ``epochs``; returns per-epoch ``{"epoch", "loss"[, "val_accuracy"]}``."""
        history = []
        for epoch in range(epochs):
            row = {"epoch": epoch + 1, "loss": self.train_epoch(train_loader, epoch, epochs)}
            if val_loader is not None:
                row["val_accuracy"] = self.evaluate(self.student, val_loader, self.device)["accuracy"]
            history.append(row)
        return history

    def close(self) -> None:
        """Remove the hint hooks."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    @staticmethod
    @torch.no_grad()
    def evaluate(model: nn.Module, loader: Iterable, device: Union[str, torch.device] = "cpu"
                 ) -> dict[str, float]:
        """``{"accuracy": %, "loss": mean cross-entropy}`` of ``model`` in eval mode."""
        was = model.training
        model.eval()
        correct = count = 0
        loss = 0.0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            loss += float(F.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
            count += len(y)
        model.train(was)
        return {"accuracy": 100.0 * correct / max(1, count), "loss": loss / max(1, count)}
