"""Knowledge distillation: the seed's loss, its KL form, and a small trainer (pure PyTorch)."""
from .losses import (DistillationLoss, distillation_loss, kd_kl_divergence, soft_cross_entropy,
                     teacher_entropy, to_timm, to_torchdistill)
from .trainer import Distiller

__all__ = ["DistillationLoss", "distillation_loss", "kd_kl_divergence", "soft_cross_entropy",
           "teacher_entropy", "to_timm", "to_torchdistill", "Distiller"]
