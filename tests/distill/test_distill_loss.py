"""Distillation loss values against a hand computation, forms, mappings, errors."""
import math

import pytest
import torch
import torch.nn.functional as F

from mobilekernels.distill import (DistillationLoss, distillation_loss, kd_kl_divergence,
                                   soft_cross_entropy, teacher_entropy, to_timm, to_torchdistill)


def _softmax(z, T):
    e = [math.exp(v / T) for v in z]
    s = sum(e)
    return [v / s for v in e]


def _hand(zs, zt, y, alpha, T):
    """Seed loss by hand for one sample, plain floats."""
    p_s1 = _softmax(zs, 1.0)
    hard = -math.log(p_s1[y])
    p_t, p_s = _softmax(zt, T), _softmax(zs, T)
    soft = -sum(a * math.log(b) for a, b in zip(p_t, p_s))
    kl = sum(a * math.log(a / b) for a, b in zip(p_t, p_s))
    return (1 - alpha) * hard + alpha * T * T * soft, (1 - alpha) * hard + alpha * T * T * kl


SAMPLES = [([2.0, -1.0, 0.5], [1.5, 0.2, -0.3], 0), ([0.1, 0.3, 3.0], [-2.0, 1.0, 2.5], 2)]


@pytest.mark.parametrize("alpha,T", [(0.5, 4.0), (0.9, 2.0), (0.0, 3.0), (1.0, 1.0), (0.3, 0.5)])
def test_matches_hand_computation(alpha, T):
    zs = torch.tensor([s for s, _, _ in SAMPLES], dtype=torch.float64)
    zt = torch.tensor([t for _, t, _ in SAMPLES], dtype=torch.float64)
    y = torch.tensor([c for _, _, c in SAMPLES])
    hand = [_hand(s, t, c, alpha, T) for s, t, c in SAMPLES]
    ce_ref = sum(h[0] for h in hand) / len(hand)
    kl_ref = sum(h[1] for h in hand) / len(hand)
    assert DistillationLoss(alpha, T)(zs, zt, y).item() == pytest.approx(ce_ref, rel=1e-12)
    assert DistillationLoss(alpha, T, form="kl")(zs, zt, y).item() == pytest.approx(kl_ref, rel=1e-12)
    assert distillation_loss(zs, zt, y, alpha, T).item() == pytest.approx(ce_ref, rel=1e-12)


def test_one_worked_number():
    # z_S = [1, 0], z_T = [0, 1], y = 0, alpha = 0.5, T = 2:
    # P_S(T=1) = [e/(e+1), 1/(e+1)];  P_T(T=2) = [1/(1+e^.5), e^.5/(1+e^.5)] = P_S(T=2) reversed
    zs, zt = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    loss = DistillationLoss(0.5, 2.0)(zs, zt, torch.tensor([0]))
    a = 1 / (1 + math.exp(0.5))
    hard = math.log(1 + math.exp(-1))
    soft = -(a * math.log(1 - a) + (1 - a) * math.log(a))
    assert loss.item() == pytest.approx(0.5 * hard + 0.5 * 4 * soft, rel=1e-6)


def test_exact_mapping_between_forms_and_same_gradients():
    torch.manual_seed(0)
    zs = torch.randn(8, 10, dtype=torch.float64, requires_grad=True)
    zt = torch.randn(8, 10, dtype=torch.float64)
    y = torch.randint(0, 10, (8,))
    alpha, T = 0.7, 3.0
    ce = DistillationLoss(alpha, T, "ce")(zs, zt, y)
    kl = DistillationLoss(alpha, T, "kl")(zs, zt, y)
    assert ce.item() == pytest.approx(kl.item() + alpha * T ** 2 * teacher_entropy(zt, T).item(), rel=1e-12)
    g_ce, = torch.autograd.grad(ce, zs)
    g_kl, = torch.autograd.grad(kl, zs)
    assert torch.allclose(g_ce, g_kl, atol=1e-12)
    # H(P_T, P_S) = KL + H(P_T); KL(P || P) = 0
    assert soft_cross_entropy(zs, zt, T).item() == pytest.approx(
        kd_kl_divergence(zs, zt, T).item() + teacher_entropy(zt, T).item(), rel=1e-12)
    assert kd_kl_divergence(zt, zt, T).item() == pytest.approx(0.0, abs=1e-12)
    # the teacher gets no gradient even if it requires one
    zt.requires_grad_(True)
    DistillationLoss(alpha, T)(zs, zt, y).backward()
    assert zt.grad is None


def test_other_libraries_weight_the_other_term():
    torch.manual_seed(1)
    zs, zt, y = torch.randn(4, 5), torch.randn(4, 5), torch.randint(0, 5, (4,))
    alpha, T = 0.8, 4.0
    td = to_torchdistill(alpha)
    assert td == {"alpha": pytest.approx(0.2), "beta": 0.8}
    # torchdistill KDLoss: alpha * CE + beta * T^2 * KL(batchmean)
    kl = F.kl_div(F.log_softmax(zs / T, 1), F.softmax(zt / T, 1), reduction="batchmean")
    torchdistill_value = td["alpha"] * F.cross_entropy(zs, y) + td["beta"] * T ** 2 * kl
    ours = DistillationLoss(alpha, T, "kl")(zs, zt, y)
    assert ours.item() == pytest.approx(torchdistill_value.item(), rel=1e-5)
    tm = to_timm(alpha)
    timm_value = tm["task_loss_weight"] * F.cross_entropy(zs, y) + tm["distill_loss_weight"] * T ** 2 * kl
    assert ours.item() == pytest.approx(timm_value.item(), rel=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(alpha=1.5, temperature=2.0), "alpha"),
    (dict(alpha=-0.1, temperature=2.0), "alpha"),
    (dict(alpha=0.5, temperature=0.0), "temperature"),
    (dict(alpha=0.5, temperature=2.0, form="js"), "form"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistillationLoss(**kwargs)
