"""Short deterministic distillation run on real data (scikit-learn digits).

Deterministic: one torch thread (conftest), fixed seeds for weights, shuffling and
dropout; the student-alone and distilled runs start from the same weights and see
the same batches, so only the loss differs. The student (a small MLP on 200 labelled
images, 16x16) is weak enough for the teacher's soft targets to matter; the
MobileNet version of this comparison is ``python -m mobilekernels.examples.compress``.
"""
import copy

import pytest
import torch
from torch import nn

pytest.importorskip("sklearn")

from mobilekernels.distill import Distiller  # noqa: E402
from mobilekernels.examples.compress import digits_loaders, make_teacher, train  # noqa: E402


@pytest.fixture(scope="module")
def data_and_teacher():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test conftest fixture
    try:
        train_all, test = digits_loaders(batch_size=32, size=16, shift=0)
        torch.manual_seed(0)
        teacher = train(make_teacher(16), train_all, 5, 5e-3, progress=False)
    finally:
        torch.set_num_threads(old)
    few, _ = digits_loaders(batch_size=32, size=16, shift=0, limit=200)
    return teacher, few, test


def test_teacher_is_strong(data_and_teacher):
    teacher, _, test = data_and_teacher
    assert Distiller.evaluate(teacher, test)["accuracy"] > 97.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distilled_student_beats_student_alone(data_and_teacher, seed):
    teacher, few, test = data_and_teacher
    torch.manual_seed(seed)
    init = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 32), nn.ReLU(), nn.Linear(32, 10))
    alone = train(copy.deepcopy(init), few, 10, 5e-3, seed=seed, progress=False)
    distilled = train(copy.deepcopy(init), few, 10, 5e-3, teacher, alpha=0.9, temperature=4.0,
                      seed=seed, progress=False)
    r_alone, r_kd = Distiller.evaluate(alone, test), Distiller.evaluate(distilled, test)
    assert r_kd["accuracy"] > r_alone["accuracy"] + 0.5, (r_alone, r_kd)
    assert r_kd["loss"] < r_alone["loss"], (r_alone, r_kd)
    # same seed -> same numbers (the comparison is not luck of the draw)
    again = train(copy.deepcopy(init), few, 10, 5e-3, seed=seed, progress=False)
    assert Distiller.evaluate(again, test) == r_alone
