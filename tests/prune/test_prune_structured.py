"""Structured channel pruning: invariants on every model and attention type."""
import pytest
import torch
from torch import nn

from mobilekernels.models import (MODELS, CBAM, ECA, SqueezeExcitation, count_macs, count_params,
                                  get_model)
from mobilekernels.prune import (PREFERRED_CHANNEL_TILE, ChannelPruner, iterative_prune,
                                 prune_channels)

ATTENTIONS = [None, "se", "eca", "cbam"]
# smooth random images (white noise would average out to the same features for every sample)
X = nn.functional.interpolate(torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2,
                              size=(64, 64), mode="bilinear", align_corners=False)


def _randomize(model, seed=0):
    """Random weights and BN affine (then :func:`_calibrate`)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / p[0].numel()) ** 0.5)
            elif name.endswith("weight"):  # norm scale
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return _calibrate(model)


def _calibrate(model, seed=0):
    """BN statistics from random smooth images, so the signal reaches the output
    (outputs depend on the input) and BN is far from identity."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(2):
            x = nn.functional.interpolate(torch.randn(8, 3, 8, 8, generator=g) * 2, size=(64, 64))
            model(x.to(next(model.parameters()).dtype))
    for m in bns:
        m.momentum = 0.1
    return model.eval()


def _zero_channels(model, group, idx):
    """Zero every producer weight of channels ``idx`` (filters, biases, BN affine)."""
    with torch.no_grad():
        for mem in group.members:
            m = model.get_submodule(mem.module)
            if mem.role in ("out", "dw", "bn"):
                m.weight[idx] = 0
                if m.bias is not None:
                    m.bias[idx] = 0


def _model(name, attention):
    return _randomize(get_model(name, width_mult=0.5, num_classes=10, attention=attention))


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_pruning_zero_channels_keeps_outputs(name, attention):
    # float64: the check is exact up to rounding, and deep float32 nets amplify rounding
    model, X = _model(name, attention).double(), globals()["X"].double()
    pruner = ChannelPruner(model, X)
    sizes = {n: len(k) for n, k in pruner.plan(0.5).items()}
    assert sizes, "nothing to prune"
    gen = torch.Generator().manual_seed(1)
    expected_keep = {}
    for gname, n_keep in sizes.items():
        g = pruner.group(gname)
        perm = torch.randperm(g.size, generator=gen)
        _zero_channels(model, g, perm[n_keep:])
        expected_keep[gname] = perm[:n_keep].sort().values
    _calibrate(model)  # zero channels stay exactly zero (BN affine is zero)
    with torch.no_grad():
        before, feat_before = model(X), model.features(X)
    assert (feat_before[0] - feat_before[1]).abs().max() > 0.1  # features depend on the input
    result = pruner.prune(0.5)
    assert {k: v.tolist() for k, v in pruner.plan(0.5).items()} == \
        {k: v.tolist() for k, v in expected_keep.items()}  # the zero channels were the ones removed
    pruned = result.model.eval()
    with torch.no_grad():
        after, feat_after = pruned(X), pruned.features(X)
    assert after.shape == before.shape == (2, 10)
    assert feat_after.shape[1] < feat_before.shape[1]  # the last conv lost channels too
    head = next(g for g in pruner.groups
                if "in" in {m.role for m in g.members if m.module.startswith("classifier")})
    assert torch.allclose(feat_after, feat_before[:, expected_keep[head.name]], atol=1e-9, rtol=1e-9)
    assert torch.allclose(after, before, atol=1e-9, rtol=1e-9), (after - before).abs().max()
    # the original is untouched (inplace=False)
    assert count_params(model) == result.params_before


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_pruned_model_is_smaller_ordinary_and_consistent(name, attention):
    model = _model(name, attention)
    result = ChannelPruner(model, X).prune(0.5)
    pruned = result.model
    # counts are reported truthfully and drop
    assert result.params_after == count_params(pruned) < result.params_before == count_params(model)
    assert result.macs_after == count_macs(pruned, X[:1]) < result.macs_before == count_macs(model, X[:1])
    assert result.params_after < 0.5 * result.params_before
    # ordinary model: same module types, a new forward on other resolutions, trainable
    assert {type(m) for m in pruned.modules()} == {type(m) for m in model.modules()}
    out = pruned.train()(torch.randn(3, 3, 72, 56))
    out.sum().backward()
    # kernel-friendly channel counts, and structural invariants
    for gname, (before, after) in result.channels.items():
        assert after % PREFERRED_CHANNEL_TILE == 0 and after < before, gname
    mods = dict(pruned.named_modules())
    for mname, m in mods.items():
        if isinstance(m, nn.Conv2d) and m.groups > 1:
            assert m.groups == m.in_channels == m.out_channels == m.weight.shape[0], mname
        if isinstance(m, nn.BatchNorm2d):
            assert m.weight.shape[0] == m.running_mean.shape[0] == m.num_features
        if hasattr(m, "use_res_connect") and m.use_res_connect:
            assert m.in_channels == m.out_channels, mname
        if isinstance(m, (SqueezeExcitation, CBAM)):
            assert m.fc1.in_channels == m.fc2.out_channels
        if isinstance(m, ECA):
            assert m.channel_index is None or len(m.channel_index) == m.num_channels
    last_conv = [m for m in pruned.features[-1].modules() if isinstance(m, nn.Conv2d)][-1]
    head_linear = pruned.classifier[0 if name.startswith("mobilenet_v3") else 1]
    assert head_linear.in_features == last_conv.out_channels


def _tiny():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def test_importance_l1_l2_bn_rank_differently():
    model = _tiny()
    with torch.no_grad():
        w = torch.full((16, 3, 3, 3), 0.01)
        w[0].view(-1)[:4] = 1.0   # L1 ~ 4.2, L2 ~ 2.0
        w[1].view(-1)[0] = 3.0    # L1 ~ 3.3, L2 ~ 3.0
        model[0].weight.copy_(w)
        model[1].weight.copy_(torch.linspace(0.1, 1.6, 16))  # BN scale: largest = last channel
    kw = dict(round_to=1, example_input=torch.randn(2, 3, 8, 8))
    first = {}
    for imp in ("l1", "l2", "bn"):
        pr = ChannelPruner(model, kw["example_input"])
        keep = pr.plan(15 / 16, importance=imp, round_to=1)["0"]
        first[imp] = keep.tolist()
    assert first == {"l1": [0], "l2": [1], "bn": [15]}


def test_round_to_ratios_ignore_and_global():
    model = _randomize(get_model("mobilenet_v2", width_mult=1.0, num_classes=10))
    pr = ChannelPruner(model, X)
    plan = pr.plan(0.3, round_to=16)
    assert all(len(k) % 16 == 0 for k in plan.values())
    exact = pr.plan(0.5, round_to=1)
    assert all(len(exact[g.name]) == round(g.size / 2) for g in pr.groups if g.name in exact)
    target = pr.groups[2].name
    over = pr.plan(0.5, ratios={target: 0.75})
    assert len(over[target]) == pr.group(target).size // 4
    ign = pr.plan(0.5, ignore=["features.0", "classifier"])
    assert "features.0.0" not in ign and "classifier.0" not in ign and "features.1.conv.1" in ign
    glob = pr.plan(0.5, scope="global", round_to=8)
    fracs = {len(k) / pr.group(n).size for n, k in glob.items()}
    assert len(fracs) > 3  # global ranking prunes layers unevenly
    kept = sum(len(glob.get(g.name, range(g.size))) for g in pr.groups)
    total = sum(g.size for g in pr.groups)
    assert 0.4 < kept / total < 0.6
    assert count_params(pr.apply(glob)) < count_params(model)
    with pytest.raises(ValueError, match="scope='layer'"):
        pr.plan(0.5, scope="global", ratios={target: 0.1})
    with pytest.raises(KeyError, match="no channel group"):
        pr.plan(0.5, ratios={"nope": 0.1})


def test_prune_channels_inplace_and_copy():
    model = _randomize(get_model("mobilenet_v1", width_mult=0.25, num_classes=10))
    n = count_params(model)
    small = prune_channels(model, 0.5)
    assert count_params(model) == n and count_params(small) < n
    same = prune_channels(model, 0.5, inplace=True)
    assert same is model and count_params(model) == count_params(small)


def test_iterative_prune_schedule():
    model = _randomize(get_model("mobilenet_v2", width_mult=0.5, num_classes=10))
    calls, history = [], []

    def fine_tune(m, step):
        calls.append(step)
        opt = torch.optim.SGD(m.parameters(), lr=0.01)  # new params after pruning
        m.train()
        loss = nn.functional.cross_entropy(m(X), torch.tensor([1, 2]))
        loss.backward()
        opt.step()

    out = iterative_prune(model, 0.75, 2, fine_tune, history=history, round_to=1, example_input=X)
    assert calls == [0, 1] and len(history) == 2
    assert history[1].params_after == count_params(out) < history[0].params_after < history[0].params_before
    g0 = history[0].channels["features.2.conv.0.0"]
    assert g0 == (48, 24)  # 1 - sqrt(0.25) = 0.5 per step
    assert history[1].channels["features.2.conv.0.0"] == (24, 12)
