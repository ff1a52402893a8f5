"""Unstructured magnitude pruning: exact sparsity, masks survive fine-tuning, bake, report."""
import pytest
import torch
from torch import nn

from mobilekernels.models import mobilenet_v2, mobilenet_v3_small
from mobilekernels.prune import (bake, format_sparsity, iterative_magnitude_prune, magnitude_prune,
                                 sparsity_report, sparsity_schedule)
from mobilekernels.prune.unstructured import prunable_layers

X = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([0, 1, 2, 3])


def _model():
    torch.manual_seed(0)
    return mobilenet_v3_small(width_mult=0.5, num_classes=4)


def _weights(model):
    return [m.weight.detach() for _, m in prunable_layers(model)]


def test_global_sparsity_is_exact_and_prunes_the_smallest():
    model = _model()
    magnitude_prune(model, 0.7)
    rows = sparsity_report(model)
    total = rows[-1]
    assert total["layer"] == "total"
    assert total["zeros"] == round(0.7 * total["params"])
    # every surviving weight is at least as large as every pruned one (across layers)
    kept = torch.cat([m.weight_orig[m.weight_mask.bool()].abs() for _, m in prunable_layers(model)])
    gone = torch.cat([m.weight_orig[~m.weight_mask.bool()].abs() for _, m in prunable_layers(model)])
    assert gone.max() <= kept.min()
    # global: layers end up with different sparsities
    assert len({round(r["sparsity"], 2) for r in rows[:-1]}) > 3


def test_per_layer_sparsity_and_report():
    model = _model()
    masks = magnitude_prune(model, 0.5, scope="layer", exclude=["classifier"])
    rows = {r["layer"]: r for r in sparsity_report(model)}
    for name, mask in masks.items():
        n = mask.numel()
        assert rows[name]["zeros"] == round(0.5 * n) == int((mask == 0).sum())
        assert rows[name]["masked"]
    assert rows["classifier.0"]["sparsity"] == 0 and not rows["classifier.0"]["masked"]
    text = format_sparsity(sparsity_report(model))
    assert "features.0.0" in text and text.splitlines()[-1].startswith("total")


def test_masks_hold_during_fine_tuning_and_bake():
    model = _model()
    magnitude_prune(model, 0.6)
    zero_before = [w == 0 for w in _weights(model)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model.train()(X), Y).backward()
        opt.step()
    for z, w in zip(zero_before, _weights(model)):
        assert (w[z] == 0).all()
    model.eval()
    with torch.no_grad():
        out = model(X)
    bake(model)
    for _, m in prunable_layers(model):
        assert not hasattr(m, "weight_mask") and isinstance(m.weight, nn.Parameter)
    with torch.no_grad():
        assert torch.equal(model(X), out)
    assert abs(sparsity_report(model)[-1]["sparsity"] - 0.6) < 1e-3
    assert not any(k.endswith("_orig") or k.endswith("_mask") for k in model.state_dict())


def test_masks_only_grow_and_iterative_schedule():
    model = mobilenet_v2(width_mult=0.25, num_classes=4)
    magnitude_prune(model, 0.5)
    first = [w == 0 for w in _weights(model)]
    magnitude_prune(model, 0.3)  # lower target: nothing comes back
    assert all(torch.equal(a, w == 0) for a, w in zip(first, _weights(model)))
    sched = sparsity_schedule(0.8, 4)
    assert sched[-1] == pytest.approx(0.8) and sched == sorted(sched) and sched[0] > 0
    steps = []
    m2 = iterative_magnitude_prune(mobilenet_v2(width_mult=0.25, num_classes=4), 0.8, 4,
                                   lambda m, s: steps.append((s, sparsity_report(m)[-1]["sparsity"])))
    assert [s for s, _ in steps] == [0, 1, 2, 3]
    assert [v for _, v in steps] == pytest.approx(sched, abs=1e-3)
    assert sparsity_report(bake(m2))[-1]["sparsity"] == pytest.approx(0.8, abs=1e-4)


def test_errors():
    with pytest.raises(ValueError, match="scope"):
        magnitude_prune(_model(), 0.5, scope="net")
    with pytest.raises(ValueError, match="no layer"):
        magnitude_prune(nn.Sequential(nn.ReLU()), 0.5)
