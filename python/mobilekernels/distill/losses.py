r"""Knowledge-distillation losses (Hinton et al. 2015).

Notation: ``z_S``, ``z_T`` student / teacher logits, ``y`` the labels,
``P = softmax(z / T)`` at temperature ``T``, ``H(p, q) = -sum p log q``.

**Seed form** (``form="ce"``, the default)::

    L = (1 - alpha) * H(y, P_S) + alpha * T^2 * H(P_T, P_S)

**KL form** (``form="kl"``, what most libraries implement)::

    L_KL = (1 - alpha) * H(y, P_S) + alpha * T^2 * KL(P_T || P_S)

Exact mapping: ``H(P_T, P_S) = KL(P_T || P_S) + H(P_T)``, so
``L = L_KL + alpha * T^2 * H(P_T)``. The extra term depends only on the teacher:
both forms have identical gradients for the student; only the reported value differs
(``L_KL`` is 0 when the student matches the teacher on the soft term).

Conventions: the hard-label term uses the student's ordinary probabilities
(``T = 1``), as in Hinton et al.; the seed's formula with ``P = softmax(z/T)`` is
read that way, and both agree at ``T = 1``. ``T^2`` keeps the soft-term gradients
on the same scale as ``T`` changes. Reductions are means over the batch
(``batchmean`` for KL). ``alpha`` weighs the *distillation* term.

Other libraries put their weight on the **other** term:

* torchdistill ``KDLoss(temperature, alpha, beta)``: ``alpha * CE + beta * T^2 * KL`` with
  ``beta = 1 - alpha`` by default, i.e. their ``alpha`` = our ``1 - alpha``
  (:func:`to_torchdistill`).
* timm ``LogitDistillationTask``: ``task_loss_weight * CE + distill_loss_weight * T^2 * KL``;
  given only ``task_loss_weight`` it uses ``distill = 1 - task``, so
  ``task_loss_weight`` = our ``1 - alpha`` (:func:`to_timm`). With neither weight given timm
  uses 1 and 1, which is ``2 x`` our loss at ``alpha = 0.5``.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DistillationLoss", "distillation_loss", "soft_cross_entropy", "kd_kl_divergence",
           "teacher_entropy", "to_torchdistill", "to_timm"]


def _check(alpha: float, temperature: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def soft_cross_entropy(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """``H(P_T, P_S)`` at temperature ``T``, mean over the batch. Logits: ``(N, classes)``."""
    p_t = F.softmax(teacher_logits / temperature, dim=-1)
    return -(p_t * F.log_softmax(student_logits / temperature, dim=-1)).sum(-1).mean()


def kd_kl_divergence(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """``KL(P_T || P_S)`` at temperature ``T``, mean over the batch (``batchmean``)."""
    return F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                    F.log_softmax(teacher_logits / temperature, dim=-1),
                    reduction="batchmean", log_target=True)


def teacher_entropy(teacher_logits: Tensor, temperature: float) -> Tensor:
    """``H(P_T)``, mean over the batch: the constant between the two forms."""
    logp = F.log_softmax(teacher_logits / temperature, dim=-1)
    return -(logp.exp() * logp).sum(-1).mean()


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, target: Tensor,
                      alpha: float = 0.5, temperature: float = 4.0, form: str = "ce") -> Tensor:
    """Functional :class:`DistillationLoss`. ``target``: class indices ``(N,)``."""
    _check(alpha, temperature)
    teacher_logits = teacher_logits.detach()
    hard = F.cross_entropy(student_logits, target)
    if form == "ce":
        soft = soft_cross_entropy(student_logits, teacher_logits, temperature)
    elif form == "kl":
        soft = kd_kl_divergence(student_logits, teacher_logits, temperature)
    else:
        raise ValueError(f"form must be 'ce' or 'kl', got {form!r}")
    return (1 - alpha) * hard + alpha * temperature ** 2 * soft


class DistillationLoss(nn.Module):
    """``(1 - alpha) * H(y, P_S) + alpha * T^2 * H(P_T, P_S)`` (see the module docstring).

    ``forward(student_logits, teacher_logits, target)``; ``form="kl"`` swaps the
    soft cross-entropy for ``KL(P_T || P_S)`` (same gradients, value lower by
    ``alpha * T^2 * H(P_T)``).
    """

    def __init__(self, alpha: float = 0.5, temperature: float = 4.0, form: str = "ce") -> None:
        super().__init__()
        _check(alpha, temperature)
        if form not in ("ce", "kl"):
            raise ValueError(f"form must be 'ce' or 'kl', got {form!r}")
        self.alpha, self.temperature, self.form = float(alpha), float(temperature), form

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, target: Tensor) -> Tensor:
        return distillation_loss(student_logits, teacher_logits, target, self.alpha, self.temperature,
                                 self.form)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, temperature={self.temperature}, form={self.form!r}"


def to_torchdistill(alpha: float) -> dict[str, float]:
    """torchdistill ``KDLoss`` weights giving our loss (KL form): ``{"alpha": 1 - a, "beta": a}``."""
    _check(alpha, 1.0)
    return {"alpha": 1.0 - alpha, "beta": alpha}


def to_timm(alpha: float) -> dict[str, float]:
    """timm ``LogitDistillationTask`` weights giving our loss (KL form)."""
    _check(alpha, 1.0)
    return {"task_loss_weight": 1.0 - alpha, "distill_loss_weight": alpha}
