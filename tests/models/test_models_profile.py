"""MAC counter against hand counts; latency helper contract."""
import torch
from torch import nn

from mobilekernels.models import count_macs, count_params, measure_latency


def test_count_macs_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),  # depthwise
                          nn.Conv2d(8, 16, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    expected = 8 * 8 * 8 * 27 + 4 * 4 * 8 * 9 + 4 * 4 * 16 * 8 + 16 * 10
    assert count_macs(model, (1, 3, 8, 8)) == expected
    assert count_macs(model, (4, 3, 8, 8)) == expected  # per sample by default
    assert count_macs(model, (4, 3, 8, 8), per_sample=False) == 4 * expected
    assert count_params(model) == (8 * 27 + 8) + 16 + (8 * 9 + 8) + (16 * 8 + 16) + (16 * 10 + 10)


def test_measure_latency_restores_state():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)).train()
    threads = torch.get_num_threads()
    ms = measure_latency(model, (1, 3, 16, 16), runs=5, warmup=1, threads=1)
    assert ms > 0
    assert model.training and torch.get_num_threads() == threads
