"""Distiller contract: frozen eval-mode teacher, trained student, hints, any models."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mobilekernels.distill import DistillationLoss, Distiller
from mobilekernels.models import mobilenet_v1, mobilenet_v3_small


def _data(n=32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=8)


class Probe(nn.Module):
    """A teacher that records the mode it was called in."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(),
                                  nn.Dropout(0.5))
        self.head = nn.Linear(12, 4)
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.head(self.body(x).mean((2, 3)))


def test_teacher_frozen_student_trained():
    torch.manual_seed(0)
    teacher, student = Probe().train(), mobilenet_v1(width_mult=0.25, num_classes=4)
    t_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    s_before = [p.detach().clone() for p in student.parameters()]
    d = Distiller(student, teacher, DistillationLoss(0.7, 3.0), progress=False)
    hist = d.fit(_data(), 2, val_loader=_data(16))
    assert [h["epoch"] for h in hist] == [1, 2] and all("val_accuracy" in h for h in hist)
    assert teacher.modes and not any(teacher.modes)  # always called in eval mode
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in t_state.items())  # BN stats too
    assert any(not torch.equal(a, b) for a, b in zip(s_before, student.parameters()))


def test_student_alone_is_cross_entropy():
    torch.manual_seed(0)
    student = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 4))
    d = Distiller(student, progress=False, optimizer=lambda p: torch.optim.SGD(p, lr=0.0))
    x, y = next(iter(_data()))
    loss = d.step(x, y)
    assert loss == pytest.approx(nn.functional.cross_entropy(student(x), y).item(), rel=1e-6)


def test_hints_build_regressors_and_train_them():
    torch.manual_seed(0)
    teacher = mobilenet_v3_small(width_mult=0.5, num_classes=4)
    student = mobilenet_v1(width_mult=0.25, num_classes=4)
    opt = torch.optim.SGD(student.parameters(), lr=0.01)
    d = Distiller(student, teacher, optimizer=opt, hints=[("features.3", "features.2")], hint_weight=2.0,
                  progress=False)
    x, y = next(iter(_data()))
    d.step(x, y)
    reg = d.regressors[0]
    assert reg.in_channels == 32 and reg.out_channels == 16  # student 0.25x: 128/4; teacher 0.5x: 24/2 -> 16
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["params"][0] is reg.weight
    w = reg.weight.detach().clone()
    d.step(x, y)
    assert not torch.equal(w, reg.weight)
    assert d.hint_loss().item() > 0
    d.close()


def test_bad_arguments():
    s = mobilenet_v1(width_mult=0.25, num_classes=4)
    with pytest.raises(ValueError, match="need a teacher"):
        Distiller(s, hints=[("features.1", "features.1")])
    with pytest.raises(ValueError, match="'nope' not found"):
        Distiller(s, Probe(), hints=[("nope", "body")])
    with pytest.raises(ValueError, match="scheduler_interval"):
        Distiller(s, scheduler_interval="batch")
