"""Pruning: unstructured magnitude masks and structured channel removal (pure PyTorch).

* :func:`magnitude_prune`, :func:`bake`, :func:`sparsity_report`: masks, no speed-up.
* :func:`prune_channels`, :class:`ChannelPruner`: physically smaller models that stay
  ordinary ``nn.Module`` trees, dependency-aware (depthwise, residual adds, BN,
  SE / ECA / CBAM, classifier). Kept channel counts are multiples of
  :data:`PREFERRED_CHANNEL_TILE` (the kernels' tile) by default.
* :func:`iterative_prune`, :func:`iterative_magnitude_prune`: prune -> fine-tune loops.
"""
from .graph import ChannelGroup, Member, UnsupportedLayerError, build_groups
from .schedule import iterative_magnitude_prune, iterative_prune, sparsity_schedule
from .structured import (PREFERRED_CHANNEL_TILE, ChannelPruner, PruningResult, channel_importance,
                         prune_channels)
from .unstructured import bake, format_sparsity, magnitude_prune, sparsity_report

__all__ = [
    "PREFERRED_CHANNEL_TILE", "ChannelPruner", "PruningResult", "prune_channels", "channel_importance",
    "ChannelGroup", "Member", "UnsupportedLayerError", "build_groups",
    "magnitude_prune", "bake", "sparsity_report", "format_sparsity",
    "iterative_prune", "iterative_magnitude_prune", "sparsity_schedule",
]
