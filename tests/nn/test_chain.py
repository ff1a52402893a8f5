"""ChainedSequential / convert(chain=True): runs of our layers as one C++ call must give exactly
the per-module result (same kernels), rebuild when weights, settings or children change, and
step aside for autograd, torch.compile/export, hooks and bad input."""
from __future__ import annotations

import copy
import io
import threading

import pytest
import torch
from torch import nn

import mobilekernels as mk
from mobilekernels.models import mobilenet_v1, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small
from mobilekernels.nn import ChainedSequential

# v3l / v3s: SE blocks (SEInvertedResidual) chained with plain fused blocks.
MODELS = {"v2": mobilenet_v2, "v3l": mobilenet_v3_large, "v3s": mobilenet_v3_small, "v1": mobilenet_v1}


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
    return model.eval()


_converted: dict = {}


def _pair(name: str):
    """(chained, unchained) conversions of one random model, built once per test session."""
    if name not in _converted:
        torch.manual_seed(0)
        model = _randomize_bn(MODELS[name](num_classes=10))
        _converted[name] = (mk.convert(model), mk.convert(model, chain=False))
    return _converted[name]


def _chains_built(model: nn.Module) -> int:
    """Number of C++ chains actually built (not fallen back) in the model's ChainedSequentials."""
    return sum(entry[1] is not None for m in model.modules() if isinstance(m, ChainedSequential)
               for run in m._plan().runs() for entry in run.chains.values())


def _chained_seqs(model):
    return [m for m in model.modules() if isinstance(m, ChainedSequential)]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_chained_equals_unchained(f32_isa, name, batch, threads):
    chained, plain = _pair(name)
    assert _chained_seqs(chained) and not _chained_seqs(plain)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.randn(batch, 3, 37, 35, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            y = chained(x)
            ref = plain(x)
            again = chained(x)  # from the cache
    finally:
        torch.set_num_threads(saved)
    assert torch.equal(y, ref)
    assert torch.equal(again, ref)
    assert _chains_built(chained) >= 1


def test_inference_mode_and_non_channels_last_input():
    chained, plain = _pair("v2")
    feats, ref_feats = chained.model.features, plain.model.features
    x = torch.randn(2, 3, 30, 30)  # NCHW-contiguous, straight into the Sequential
    with torch.inference_mode():
        assert torch.equal(feats(x), ref_feats(x))
    assert _chains_built(feats) >= 1


def _fresh(name="v2", seed=1):
    torch.manual_seed(seed)
    model = _randomize_bn(MODELS[name](num_classes=6), seed)
    return mk.convert(model), mk.convert(model, chain=False)


def test_in_place_weight_change_rebuilds_the_chain():
    chained, plain = _fresh()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        y0 = chained(x)
        for m in (chained, plain):  # a weight in the middle of the chain, changed in place
            m.model.features[5].project_weight.mul_(1.5)
        y1 = chained(x)
        assert not torch.equal(y1, y0)
        assert torch.equal(y1, plain(x))
        # the last chained layer (nested in a Conv2dNormActivation), replaced through .data
        for m in (chained, plain):
            w = m.model.features[18][0].weight
            w.data = w.data * 0.5
        y2 = chained(x)
        assert not torch.equal(y2, y1)
        assert torch.equal(y2, plain(x))


def test_load_state_dict_rebuilds_the_chain():
    chained, _ = _fresh(seed=1)
    _, other_plain = _fresh(seed=2)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        chained(x)
        chained.load_state_dict(other_plain.state_dict())
        assert torch.equal(chained(x), other_plain(x))


def test_settings_and_children_changes_are_seen():
    chained, plain = _fresh()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        chained(x)
        for m in (chained, plain):
            m.model.features[4].activations = ("relu", "relu", "relu6")
            m.model.features[3].band_rows = 1
        y = chained(x)
        assert torch.equal(y, plain(x))
        # replacing a child: the run is split around a PyTorch module
        for m in (chained, plain):
            m.model.features[9] = nn.Hardswish()
        assert torch.equal(chained(x), plain(x))
        runs = chained.model.features.chained_runs()
        assert [r[0] for r in runs] == ["1", "10"] and runs[0][-1] == "8"
        # train()/eval() does not touch the plan
        epoch = mk._chain.config_epoch()
        chained.train().eval()
        assert mk._chain.config_epoch() == epoch


def test_state_dict_keys_unchanged():
    for name in MODELS:
        chained, plain = _pair(name)
        assert list(chained.state_dict()) == list(plain.state_dict())
        assert not any("chain" in k or "pack" in k for k in chained.state_dict())


def test_pickle_whole_converted_model_after_use():
    chained, plain = _fresh()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y = chained(x)  # caches C++ chains, which must not be pickled
    buf = io.BytesIO()
    torch.save(chained, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert isinstance(loaded.model.features, ChainedSequential)
    with torch.no_grad():
        assert torch.equal(loaded(x), y)
        assert torch.equal(copy.deepcopy(chained)(x), y)
    assert _chains_built(loaded) >= 1


def test_torch_compile_and_export_of_chained_model():
    chained, _ = _fresh(name="v3l")
    chained.requires_grad_(False)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        eager = chained(x)
        compiled = torch.compile(chained, fullgraph=True, backend="aot_eager")(x)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    ep = torch.export.export(chained, (x,))
    assert any("mobilekernels.inverted_residual" in str(n.target) for n in ep.graph.nodes)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), eager, rtol=1e-5, atol=1e-5)


def test_grad_mode_falls_back_to_the_plain_forward():
    chained, plain = _fresh()
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    y = chained(x)
    assert y.requires_grad
    y.sum().backward()
    assert x.grad is not None and chained.model.features[5].dw_weight.grad is not None
    assert _chains_built(chained) == 0
    with torch.no_grad():
        torch.testing.assert_close(y.detach(), plain(x), rtol=1e-4, atol=1e-4)


def test_forward_hooks_on_chained_layers_still_fire():
    chained, plain = _fresh()
    x = torch.randn(1, 3, 32, 32)
    seen = []
    h = chained.model.features[7].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        assert torch.equal(chained(x), plain(x))
    assert seen == [torch.Size([1, 64, 2, 2])]
    h.remove()
    with torch.no_grad():
        chained(x)
    assert len(seen) == 1 and _chains_built(chained) >= 1


def test_bad_input_gives_python_errors():
    chained, _ = _fresh()
    feats = chained.model.features
    with torch.no_grad():
        with pytest.raises(ValueError, match="channels"):
            feats[1:](torch.randn(1, 5, 16, 16))  # a slice is a ChainedSequential too
        with pytest.raises(TypeError, match="float32"):
            feats[1:](torch.randn(1, 32, 16, 16, dtype=torch.float64))
        with pytest.raises(ValueError):
            feats[1:](torch.randn(1, 32, 0, 16))
        # an input too small for a stride-2 block's padded kernel cannot be built: the layer raises
        y = feats[1:](torch.randn(0, 32, 16, 16))  # empty batch is fine
    assert y.shape == (0, 1280, 1, 1)


def test_concurrent_callers_share_one_chain():
    chained, plain = _fresh()
    xs = [torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    with torch.no_grad():
        refs = [plain(x) for x in xs]
        chained(xs[0])
    errors = []

    def work(i):
        with torch.no_grad():
            for _ in range(10):
                if not torch.equal(chained(xs[i]), refs[i]):
                    errors.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_summary_and_describe():
    chained, plain = _pair("v2")
    s = chained.summary()
    assert "ChainedSequential" in s and "1..18.0 (18 layers)" in s and "1 chained runs (18 layers)" in s
    assert "Chained" not in plain.summary()
    text = chained.model.features.describe_chains((1, 3, 32, 32))
    assert text.startswith("chain 1..18.0 (18 layers):") and "inverted_residual" in text and "conv1x1" in text
    assert len(text.splitlines()) == 19


def test_nested_and_mixed_sequentials():
    torch.manual_seed(4)
    pw = mk.nn.PointwiseConv2d(8, 16, activation="relu")
    dw = mk.nn.DepthwiseConv2d(16, 32, 3, stride=2, padding=1, activation="hardswish")  # multiplier 2
    blk = mk.nn.InvertedResidual(32, 64, 32, kernel_size=5, stride=1)
    inner = nn.Sequential(dw, nn.Identity())
    seq = nn.Sequential(pw, inner, blk, nn.ReLU(), mk.nn.PointwiseConv2d(32, 8), mk.nn.PointwiseConv2d(8, 4))
    ref = copy.deepcopy(seq)
    ChainedSequential.from_sequential(seq)
    assert seq.chained_runs() == [["0", "1.0", "2"], ["4", "5"]]
    x = torch.randn(2, 8, 11, 9)
    with torch.no_grad():
        assert torch.equal(seq(x), ref(x))
    assert _chains_built(seq) == 2
    with pytest.raises(TypeError, match="plain nn.Sequential"):
        ChainedSequential.from_sequential(mk.nn.PointwiseConv2d(2, 2))


def test_se_blocks_in_the_chain_follow_weight_and_setting_changes():
    chained, plain = _fresh(name="v3l", seed=3)
    x = torch.randn(2, 3, 33, 29)
    with torch.no_grad():
        y0 = chained(x)
        assert torch.equal(y0, plain(x))
        for m in (chained, plain):  # an SE weight in the middle of the chain, changed in place
            assert type(m.model.features[5]) is mk.nn.SEInvertedResidual
            m.model.features[5].fc1_weight.mul_(3.0)
        y1 = chained(x)
        assert not torch.equal(y1, y0) and torch.equal(y1, plain(x))
        for m in (chained, plain):
            m.model.features[12].gate = "sigmoid"
        y2 = chained(x)
        assert not torch.equal(y2, y1) and torch.equal(y2, plain(x))
    text = chained.model.features.describe_chains((1, 3, 64, 64))
    assert text.count("se_inverted_residual") == 8 and "se sigmoid" in text
