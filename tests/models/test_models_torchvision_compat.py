"""torchvision state_dicts load into our V2/V3.

torchvision is not installed (and nothing is downloaded): the reference module trees
are built here from torchvision's documented layout with plain ``nn`` modules, their
random weights are loaded with ``strict=True`` and both models must agree.
"""
from functools import partial

import pytest
import torch
from torch import nn

from mobilekernels.models import load_weights, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small


def _cna(i, o, k=1, s=1, g=1, act=nn.ReLU6, bn=nn.BatchNorm2d):
    layers = [nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), bn(o)]
    return nn.Sequential(*layers, *([act()] if act else []))


def _div(v):
    n = max(8, int(v + 4) // 8 * 8)
    return n + 8 if n < 0.9 * v else n


class TvV2Block(nn.Module):
    def __init__(self, i, o, s, t):
        super().__init__()
        h = i * t
        layers = ([_cna(i, h)] if t != 1 else []) + [_cna(h, h, 3, s, h), nn.Conv2d(h, o, 1, bias=False),
                                                      nn.BatchNorm2d(o)]
        self.conv = nn.Sequential(*layers)
        self.res = s == 1 and i == o

    def forward(self, x):
        return x + self.conv(x) if self.res else self.conv(x)


class TvV2(nn.Module):
    def __init__(self):
        super().__init__()
        feats, c = [_cna(3, 32, 3, 2)], 32
        for t, o, n, s in [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                           [6, 160, 3, 2], [6, 320, 1, 1]]:
            for j in range(n):
                feats.append(TvV2Block(c, o, s if j == 0 else 1, t))
                c = o
        feats.append(_cna(c, 1280))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


class TvSE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(c, _div(c // 4), 1), nn.Conv2d(_div(c // 4), c, 1)
        self.activation, self.scale_activation = nn.ReLU(), nn.Hardsigmoid()

    def forward(self, x):
        return x * self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))


class TvV3Block(nn.Module):
    def __init__(self, i, k, e, o, se, hs, s):
        super().__init__()
        bn = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        act = nn.Hardswish if hs else nn.ReLU
        layers = [_cna(i, e, act=act, bn=bn)] if e != i else []
        layers += [_cna(e, e, k, s, e, act=act, bn=bn)] + ([TvSE(e)] if se else [])
        layers += [_cna(e, o, act=None, bn=bn)]
        self.block = nn.Sequential(*layers)
        self.res = s == 1 and i == o

    def forward(self, x):
        return self.block(x) + x if self.res else self.block(x)


class TvV3(nn.Module):
    def __init__(self, rows, last):
        super().__init__()
        bn = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        feats = [_cna(3, 16, 3, 2, act=nn.Hardswish, bn=bn)]
        feats += [TvV3Block(i, k, e, o, se, a == "HS", s) for i, k, e, o, se, a, s in rows]
        c = rows[-1][3]
        feats.append(_cna(c, 6 * c, act=nn.Hardswish, bn=bn))
        self.features = nn.Sequential(*feats)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(6 * c, last), nn.Hardswish(), nn.Dropout(0.2),
                                        nn.Linear(last, 1000))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


LARGE = [(16, 3, 16, 16, 0, "RE", 1), (16, 3, 64, 24, 0, "RE", 2), (24, 3, 72, 24, 0, "RE", 1),
         (24, 5, 72, 40, 1, "RE", 2), (40, 5, 120, 40, 1, "RE", 1), (40, 5, 120, 40, 1, "RE", 1),
         (40, 3, 240, 80, 0, "HS", 2), (80, 3, 200, 80, 0, "HS", 1), (80, 3, 184, 80, 0, "HS", 1),
         (80, 3, 184, 80, 0, "HS", 1), (80, 3, 480, 112, 1, "HS", 1), (112, 3, 672, 112, 1, "HS", 1),
         (112, 5, 672, 160, 1, "HS", 2), (160, 5, 960, 160, 1, "HS", 1), (160, 5, 960, 160, 1, "HS", 1)]
SMALL = [(16, 3, 16, 16, 1, "RE", 2), (16, 3, 72, 24, 0, "RE", 2), (24, 3, 88, 24, 0, "RE", 1),
         (24, 5, 96, 40, 1, "HS", 2), (40, 5, 240, 40, 1, "HS", 1), (40, 5, 240, 40, 1, "HS", 1),
         (40, 5, 120, 48, 1, "HS", 1), (48, 5, 144, 48, 1, "HS", 1), (48, 5, 288, 96, 1, "HS", 2),
         (96, 5, 576, 96, 1, "HS", 1), (96, 5, 576, 96, 1, "HS", 1)]

CASES = {
    "v2": (TvV2, mobilenet_v2),
    "v3_large": (lambda: TvV3(LARGE, 1280), mobilenet_v3_large),
    "v3_small": (lambda: TvV3(SMALL, 1024), mobilenet_v3_small),
}

# spot checks of torchvision key names and shapes
KNOWN = {
    "v2": {"features.1.conv.0.0.weight": (32, 1, 3, 3), "features.1.conv.1.weight": (16, 32, 1, 1),
           "features.2.conv.0.0.weight": (96, 16, 1, 1), "features.2.conv.3.running_var": (24,),
           "features.18.0.weight": (1280, 320, 1, 1), "classifier.1.weight": (1000, 1280)},
    "v3_large": {"features.4.block.2.fc1.weight": (24, 72, 1, 1), "features.4.block.3.1.bias": (40,),
                 "features.16.0.weight": (960, 160, 1, 1), "classifier.0.weight": (1280, 960),
                 "classifier.3.weight": (1000, 1280)},
    "v3_small": {"features.1.block.1.fc2.weight": (16, 8, 1, 1), "features.12.0.weight": (576, 96, 1, 1),
                 "classifier.0.weight": (1024, 576)},
}


def _randomize(model):
    g = torch.Generator().manual_seed(1)
    sd = {k: (torch.rand(v.shape, generator=g) + 0.5 if "running_var" in k else
              torch.randn(v.shape, generator=g) * 0.1) if v.is_floating_point() else v
          for k, v in model.state_dict().items()}
    model.load_state_dict(sd)


@pytest.mark.parametrize("case", sorted(CASES))
def test_torchvision_state_dict_loads_and_matches(case, tmp_path):
    ref_cls, builder = CASES[case]
    ref = ref_cls()
    _randomize(ref)
    ours = builder()
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert list(ref_sd) == list(our_sd)  # same names, same order
    assert all(ref_sd[k].shape == our_sd[k].shape for k in ref_sd)
    for k, shape in KNOWN[case].items():
        assert tuple(our_sd[k].shape) == shape, k
    path = tmp_path / "tv.pth"
    torch.save(ref_sd, path)
    loaded = builder(weights=str(path)).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(loaded(x), ref.eval()(x), atol=1e-4, rtol=1e-4)


def test_load_weights_checkpoint_formats(tmp_path):
    ref = mobilenet_v3_small(width_mult=0.5, num_classes=5)
    _randomize(ref)
    x = torch.randn(1, 3, 64, 64)
    expected = ref.eval()(x)
    for i, obj in enumerate([{"state_dict": ref.state_dict()},
                             {"model": {"module." + k: v for k, v in ref.state_dict().items()}}]):
        torch.save(obj, tmp_path / f"ck{i}.pth")
        m = load_weights(mobilenet_v3_small(width_mult=0.5, num_classes=5), tmp_path / f"ck{i}.pth")
        assert torch.allclose(m.eval()(x), expected, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="no downloads"):
        load_weights(ref, tmp_path / "missing.pth")
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_weights(mobilenet_v3_small(width_mult=0.75, num_classes=5), tmp_path / "ck0.pth")
